"""Store writers in subprocesses: SIGKILL at random moments then resume; readers and a second writer meanwhile."""
import importlib.util
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from memeprobe.errors import MemeprobeError
from memeprobe.store import DONE, FAILED, FeatureStore

WRITER = textwrap.dedent('''
    """Deterministic store writer: resumes whatever is not done, prints each batch once it is durable."""
    import sys
    import time
    from pathlib import Path

    import numpy as np

    from memeprobe.data.records import Dataset, Meme
    from memeprobe.store import ArraySpec, FeatureStore

    N, BATCH = 240, 8
    SETS = {
        "fs": {"image_embed": ArraySpec((16,), "image"), "image_regions": ArraySpec((3, 5), "image"),
               "text_embed": ArraySpec((12,), "text", "float32")},
        "fs2": {"text_embed": ArraySpec((6,), "text")},
    }

    def dataset():
        memes = [Meme(f"{i:05d}", ("train", "dev", "test")[i % 3], f"caption {i}", f"img/{i:05d}.png",
                      None if i % 3 == 2 else i % 2) for i in range(N)]
        return Dataset(Path("/nowhere"), "hateful_memes", memes, binary_name="hateful")

    def values(name, array, rows):
        rows = np.asarray(rows, dtype=np.float64)
        shape = SETS[name][array].shape
        k = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
        return ((rows.reshape(-1, *[1] * len(shape)) * 7 + k * 3 + len(array)) % 1000) / 8.0

    def failing(name, modality, row):
        return name == "fs" and modality == "text" and row % 37 == 5

    def fill(st, name, pause):
        for mod in sorted({s.modality for s in SETS[name].values()}):
            todo = np.flatnonzero(st.status(name, mod) == 0)
            for b in range(0, len(todo), BATCH):
                rows = todo[b:b + BATCH]
                bad = np.array([failing(name, mod, r) for r in rows], dtype=bool)
                if bad.any():
                    st.mark_failed(name, rows[bad], mod, [f"row {r} is broken" for r in rows[bad]])
                    print("failed", name, mod, *rows[bad], flush=True)
                good = rows[~bad]
                arrays = [a for a, s in SETS[name].items() if s.modality == mod]
                st.write_rows(name, good, {a: values(name, a, good) for a in arrays}, mod)
                print("written", name, mod, *good, flush=True)
                time.sleep(pause)

    if __name__ == "__main__":
        pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
        print("start", flush=True)
        st = FeatureStore.open_or_create(sys.argv[1], dataset())
        print("created", flush=True)
        st.add_feature_set("fs", SETS["fs"], {"encoder": "test:fs", "preprocessing": "none"})
        print("added fs", flush=True)
        fill(st, "fs", pause)
        st.add_feature_set("fs2", SETS["fs2"], {"encoder": "test:fs2"})
        print("added fs2", flush=True)
        fill(st, "fs2", pause)
        st.close()
        print("finished", flush=True)
''')


def _writer_module(tmp_path):
    path = tmp_path / "writer.py"
    path.write_text(WRITER)
    spec = importlib.util.spec_from_file_location("store_writer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return path, mod


def _run(script, store, kill=None):
    """Run the writer; ``kill`` = ("line", text) | ("written", k) | ("delay", seconds). Returns stdout lines."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, str(script), str(store)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    if kill and kill[0] == "delay":
        time.sleep(kill[1])
        p.send_signal(signal.SIGKILL)
    elif kill:
        written = 0
        for line in p.stdout:
            lines.append(line.strip())
            written += line.startswith("written")
            if (kill[0] == "line" and line.startswith(kill[1])) or (kill[0] == "written" and written >= kill[1]):
                p.send_signal(signal.SIGKILL)
                break
    out, err = p.communicate(timeout=60)
    lines += out.split("\n")
    if not kill:
        assert p.returncode == 0, err
    else:
        assert p.returncode in (0, -signal.SIGKILL), err
    return [x for x in lines if x]


def _reported(lines):
    """{(set, modality): rows reported written} and {(set, modality): rows reported failed}."""
    written, failed = {}, {}
    for line in lines:
        word, *rest = line.split()
        if word in ("written", "failed"):
            target = written if word == "written" else failed
            target.setdefault((rest[0], rest[1]), set()).update(int(r) for r in rest[2:])
    return written, failed


def _check_reported(store, mod, written, failed, context):
    with FeatureStore.open(store) as st:
        assert st.verify() == [], context
        for (name, modality), rows in written.items():
            rows = np.array(sorted(rows))
            assert (st.status(name, modality)[rows] == DONE).all(), context
            for array, spec in mod.SETS[name].items():
                if spec.modality == modality:
                    want = mod.values(name, array, rows).astype(spec.dtype)
                    np.testing.assert_array_equal(st.read(name, array, rows), want, err_msg=context)
        for (name, modality), rows in failed.items():
            assert (st.status(name, modality)[sorted(rows)] == FAILED).all(), context


def _snapshot(store):
    with FeatureStore.open(store) as st:
        snap = {"ids": st.ids.tolist(), "label": st.label.tolist(), "sets": st.feature_sets()}
        for name in st.feature_sets():
            snap[name] = {a: st.read(name, a) for a in st.arrays(name)}
            snap[name]["_status"] = {m: st.status(name, m) for m in st.modalities(name)}
            snap[name]["_failures"] = st.failures(name)
            prov = st.provenance(name)
            snap[name]["_identity"] = (prov["encoder"], prov.get("preprocessing"))
    return snap


def test_sigkill_at_random_moments_loses_nothing_and_resumes(tmp_path):
    script, mod = _writer_module(tmp_path)
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    store = tmp_path / "crash.h5"
    kills = [("line", "start"), ("line", "created"), ("delay", rng.uniform(0.0, 0.6)),
             ("written", rng.randint(1, 5)), ("line", "added fs2"), ("written", rng.randint(1, 20)),
             ("delay", rng.uniform(0.3, 1.5)), ("written", rng.randint(1, 40))]
    written, failed = {}, {}
    for i, kill in enumerate(kills):
        lines = _run(script, store, kill)
        w, f = _reported(lines)
        for key, rows in w.items():
            written.setdefault(key, set()).update(rows)
        for key, rows in f.items():
            failed.setdefault(key, set()).update(rows)
        context = f"seed {seed}, kill {i} {kill}"
        if store.exists():
            _check_reported(store, mod, written, failed, context)
        else:
            assert not written, context
    lines = _run(script, store)
    assert lines[-1] == "finished"
    assert not list(tmp_path.glob("crash.h5.tmp-*")), "a writer that finished left temp files"

    clean = tmp_path / "clean.h5"
    _run(script, clean)
    got, want = _snapshot(store), _snapshot(clean)
    assert got["sets"] == want["sets"] == ["fs", "fs2"]
    for name in want["sets"]:
        for key in want[name]:
            if key.startswith("_"):
                if isinstance(want[name][key], dict):
                    for m in want[name][key]:
                        np.testing.assert_array_equal(got[name][key][m], want[name][key][m], err_msg=f"seed {seed}")
                else:
                    assert got[name][key] == want[name][key], f"seed {seed}"
            else:
                np.testing.assert_array_equal(got[name][key], want[name][key], err_msg=f"seed {seed} {name}/{key}")
    fs_failures = [r for r, m, _ in want["fs"]["_failures"]]
    assert fs_failures == [r for r in range(mod.N) if r % 37 == 5]
    with FeatureStore.open(store) as st:
        assert st.verify() == []
        x, ids, y = st.load("fs", ["image_embed", "image_regions"])
        assert x.shape == (mod.N, 16 + 15)
        np.testing.assert_array_equal(x[:, :16], mod.values("fs", "image_embed", np.arange(mod.N)).astype("f2"))


def test_readers_never_crash_while_a_writer_appends_and_a_second_writer_is_refused(tmp_path):
    script, mod = _writer_module(tmp_path)
    store = tmp_path / "live.h5"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, str(script), str(store), "0.01"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in p.stdout), daemon=True)
    reader.start()
    while "added fs" not in lines and p.poll() is None:
        time.sleep(0.01)
    with pytest.raises(MemeprobeError, match=f"being written by another process \\(pid {p.pid}\\)"):
        FeatureStore.open_or_create(store, mod.dataset())
    loads = 0
    seen_partial = False
    while p.poll() is None:
        with FeatureStore.open(store) as st:
            assert st.verify() == []
            for name in st.feature_sets():
                for array, spec in mod.SETS[name].items():
                    x, ids, y, rows = st.load_rows(name, [array], missing="drop")
                    want = mod.values(name, array, rows).astype(spec.dtype).reshape(len(rows), int(np.prod(spec.shape)))
                    np.testing.assert_array_equal(x, want.astype(np.float32))
                    np.testing.assert_array_equal(ids, st.ids[rows])
                    seen_partial |= 0 < len(rows) < mod.N
                    loads += 1
    reader.join()
    assert p.wait() == 0, p.stderr.read()
    assert lines[-1] == "finished"
    assert seen_partial and loads > 10, (loads, seen_partial)
