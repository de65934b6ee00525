"""Issue 13's store items: a lock that cannot be unlinked or symlinked away, per-row checksums,
zero-filled reasons, symlinked store paths, and forked children that do not keep the lock."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xxhash

from memeprobe.errors import StoreError, StoreLockedError
from memeprobe.store import FeatureStore
from memeprobe.store.checksums import row_checksums
from tests.test_store import ARRAYS, _dataset


def _filled(path):
    st = FeatureStore.create(path, _dataset())
    st.add_feature_set("f", ARRAYS, {"encoder": "e"})
    st.write_rows("f", np.arange(10), {"text_embed": np.arange(40.0).reshape(10, 4)}, "text")
    return st


def test_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = tmp_path / "s.h5"
    FeatureStore.create(path, _dataset()).close()
    os.unlink(str(path) + ".lock")
    os.symlink(victim, str(path) + ".lock")
    with pytest.raises(StoreError, match="symbolic link"):
        FeatureStore.open_or_create(path, _dataset())
    assert victim.read_text() == "precious\n"


def test_unlinked_lock_does_not_let_a_second_writer_in_silently(tmp_path):
    path = tmp_path / "s.h5"
    first = _filled(path)
    os.unlink(str(path) + ".lock")  # what `rm S.h5.lock` did to a running featurize
    second = FeatureStore.open_or_create(path, _dataset())  # takes a fresh lock file
    with pytest.raises(StoreLockedError):
        first.write_rows("f", [10, 11], {"text_embed": np.ones((2, 4))}, "text")
    assert (first.status("f", "text")[10:12] == 0).all()  # nothing reported written
    second.write_rows("f", [12], {"text_embed": np.ones((1, 4))}, "text")
    second.close()
    first.close()
    with FeatureStore.open(path) as st:
        assert st.status("f", "text")[:13].tolist() == [1] * 10 + [0, 0, 1]


def test_flipped_feature_byte_is_caught_by_verify_and_by_loads(tmp_path):
    path = tmp_path / "s.h5"
    _filled(path).close()
    with h5py.File(path, "r+") as f:
        values = f["features/f/text_embed"][3]
        values[1] = -values[1] - 1.0  # a finite, plausible wrong value (NaN checks cannot see it)
        f["features/f/text_embed"][3] = values
    with FeatureStore.open(path) as st:
        assert any("checksum" in p for p in st.verify())
        with pytest.raises(StoreError, match="checksum"):
            st.read("f", "text_embed", np.arange(10))
        good = st.read("f", "text_embed", np.arange(10), check=False)
        assert good.shape == (10, 4)


def test_reason_column_is_zero_filled(tmp_path):
    path = tmp_path / "s.h5"
    st = _filled(path)
    st.mark_failed("f", [20], "text", "empty text")
    st.close()
    with h5py.File(path, "r") as f:
        group = f["features/f/_reason"]
        assert list(group)
        for modality in group:
            raw = group[modality][()]
            assert raw[20].strip(b"\x00") == (b"empty text" if modality == "text" else b"")
            assert all(r.strip(b"\x00") == b"" for i, r in enumerate(raw) if i != 20)  # no heap bytes


def test_symlinked_store_stays_a_symlink_after_a_structural_change(tmp_path):
    real = tmp_path / "data" / "real.h5"
    real.parent.mkdir()
    _filled(real).close()
    link = tmp_path / "s.h5"
    os.symlink(real, link)
    with FeatureStore.open_or_create(link, _dataset()) as st:
        st.add_feature_set("g", {"x": ARRAYS["text_embed"]}, {"encoder": "g"})  # copy-on-write + rename
    assert link.is_symlink() and Path(os.readlink(link)) == real
    with FeatureStore.open(real) as st:
        assert st.feature_sets() == ["f", "g"]


def test_forked_child_does_not_keep_a_killed_writers_lock(tmp_path):
    path = tmp_path / "s.h5"
    FeatureStore.create(path, _dataset()).close()
    code = textwrap.dedent(f"""
        import os, sys, time
        from memeprobe.store import FeatureStore
        from tests.test_store import _dataset
        st = FeatureStore.open_or_create({str(path)!r}, _dataset())
        if os.fork() == 0:  # a DataLoader-like worker that outlives its parent for a while
            time.sleep(30)
            os._exit(0)
        print("locked", flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        proc.send_signal(signal.SIGKILL)  # the writer dies; its forked child lives on
        proc.wait(timeout=10)
        time.sleep(0.2)
        with FeatureStore.open_or_create(path, _dataset()) as st:  # not refused naming a dead pid
            assert st.feature_sets() == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def _mulsum64_reference(row: bytes) -> int:
    """SCHEMA.md's row checksum in plain Python integers (pins the on-disk format)."""
    m = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    row += b"\0" * (-len(row) % 8)
    words = [int.from_bytes(row[i:i + 8], "little") for i in range(0, len(row), 8)]
    total = sum((mix(((j + 1) * 0x9E3779B97F4A7C15) & m) | 1) * w for j, w in enumerate(words)) & m
    return mix(total) or 1


@pytest.mark.parametrize("dtype,shape", [("float16", (1024,)), ("float32", (5,)), ("bool", (3,)), ("int8", (2, 3))])
def test_row_checksum_matches_its_definition_and_names_every_flipped_byte(dtype, shape):
    rng = np.random.default_rng(0)
    values = (rng.normal(size=(4, *shape)) * 50).astype(dtype)
    sums = row_checksums(values)
    assert sums.tolist() == [_mulsum64_reference(r.tobytes()) for r in values]
    raw = values.copy().reshape(4, -1).view(np.uint8)
    for byte in range(raw.shape[1]):
        for mask in (0x01, 0x80, 0xFF):
            raw[2, byte] ^= mask
            changed = row_checksums(raw.view(values.dtype).reshape(values.shape)) != sums
            raw[2, byte] ^= mask
            assert changed.tolist() == [False, False, True, False], (byte, mask)


def test_new_sets_name_their_checksum_and_schema_2_xxh3_sets_stay_checked(tmp_path):
    path = tmp_path / "s.h5"
    _filled(path).close()
    with h5py.File(path, "r") as f:
        assert f["features/f/_checksum"].attrs["algorithm"] == "mulsum64" and f.attrs["schema_version"] == 3
    # the same store as schema 2 wrote it: xxh3-64 checksums and no algorithm attribute
    with h5py.File(path, "r+") as f:
        sums = f["features/f/_checksum"]
        del sums.attrs["algorithm"]
        sums["text_embed"][:10] = [xxhash.xxh3_64_intdigest(r.tobytes()) for r in f["features/f/text_embed"][:10]]
        f.attrs["schema_version"] = 2
    with FeatureStore.open(path) as st:
        assert st.verify() == [] and st.read("f", "text_embed", np.arange(10)).shape == (10, 4)
    with FeatureStore.open_or_create(path, _dataset()) as st:  # the first writer migrates to schema 3
        st.write_rows("f", [10], {"text_embed": np.ones((1, 4))}, "text")
    with h5py.File(path, "r+") as f:
        assert f.attrs["schema_version"] == 3 and f["features/f/_checksum"].attrs["algorithm"] == "xxh3-64"
        assert f["features/f/_checksum/text_embed"][10] == xxhash.xxh3_64_intdigest(np.ones(4, np.float32).tobytes())
        f["features/f/text_embed"][4, 0] += 1
    with FeatureStore.open(path) as st:
        assert st.verify() == ["feature set 'f' array 'text_embed': 1 done rows do not match their checksum "
                               "(e.g. train/00004)"]
