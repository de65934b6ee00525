"""Fault matrix: bad input, bad stores and kills, end to end through the ``memeprobe`` CLI.

Every case runs a real command (in-process with click's CliRunner, or as a subprocess where a real
SIGKILL or a file-size limit is needed) on a small synthetic sample and asserts three things:
the exit code; one clear message naming the file/id, without a traceback; and that nothing was
lost or half-written (store verifies, store bytes unchanged or rows equal to a clean run, no partial
output files). ``python tests/test_faults.py`` runs every case and prints the matrix as a table.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from click.testing import CliRunner  # noqa: E402

from memeprobe.cli import main  # noqa: E402
from memeprobe.data import load_dataset  # noqa: E402
from memeprobe.demo.synthetic import make_sample  # noqa: E402
from memeprobe.errors import MemeprobeError  # noqa: E402
from memeprobe.store import FeatureStore  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SET, EMBED = "pixels", "image_embed"
DONE, FAILED = 1, 2
ROW = 5  # the meme every single-row case damages (a train meme of the sample)


# ---------------------------------------------------------------- running commands
@dataclass
class Run:
    command: str
    exit_code: int
    output: str  # stdout + stderr


def _memeprobe() -> list[str]:
    exe = Path(sys.executable).with_name("memeprobe")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "from memeprobe.cli import main; main(prog_name='memeprobe')"]


class Lab:
    """A temp folder with a base sample (40 memes, 64 px PNGs) and its clean ``pixels`` store."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.base = self.root / "base"
        make_sample(self.base, n=40, seed=0, image_size=64)
        self.dataset = load_dataset(self.base)
        self.clean = self.root / "clean" / "s.h5"
        self.clean.parent.mkdir()
        run = self.featurize(self.base, self.clean)
        assert run.exit_code == 0, run.output
        self.ref = read_set(self.clean)

    def short(self, text: str) -> str:
        return text.replace(str(self.root) + os.sep, "").replace(str(REPO) + os.sep, "")

    def cli(self, *args) -> Run:
        """The CLI in-process; an unexpected exception is shown with its traceback in the output."""
        args = [str(a) for a in args]
        res = CliRunner().invoke(main, args)
        out = res.output
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            out += "".join(traceback.format_exception(res.exception))
        return Run("memeprobe " + self.short(" ".join(args)), res.exit_code, out)

    def featurize(self, data, store, *extra) -> Run:
        return self.cli("featurize", "all", data, "--store", store, "--featurizer", SET, "--workers", 0,
                        "--no-progress", *extra)

    def copy(self, name: str) -> Path:
        """A copy of the base sample (same dataset fingerprint: it covers ids, texts, image paths)."""
        dst = self.root / name
        shutil.copytree(self.base, dst)
        return dst

    def image(self, data: Path, row: int = ROW) -> Path:
        return data / self.dataset.memes[row].image

    def where(self, row: int = ROW) -> str:
        m = self.dataset.memes[row]
        return f"{m.split}/{m.id}"


def spawn(args, log: Path, preexec_fn=None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    with open(log, "w") as out:
        return subprocess.Popen(_memeprobe() + [str(a) for a in args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, preexec_fn=preexec_fn)


def read_set(store: Path) -> tuple[np.ndarray, np.ndarray]:
    """(status, image_embed) of the pixels set."""
    with FeatureStore.open(store) as st:
        return st.status(SET, "image").copy(), st.read(SET, EMBED)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- shared assertions
def message(run: Run) -> str:
    """The one line a user reads: the ``error:`` line, else the ``failed`` lines, else the last line."""
    lines = run.output.splitlines()
    for prefix in ("error:", "failed "):
        hits = [ln for ln in lines if ln.startswith(prefix)]
        if hits:
            return " | ".join(hits)
    return lines[-1] if lines else ""


def assert_clear(run: Run, code: int, *names: str, prefix: str = "error:") -> None:
    """Exit ``code``, exactly one ``prefix`` line, naming every one of ``names``, no traceback."""
    assert "Traceback" not in run.output, run.output
    assert run.exit_code == code, f"exit {run.exit_code}, expected {code}:\n{run.output}"
    hits = [ln for ln in run.output.splitlines() if ln.startswith(prefix)]
    assert len(hits) == 1, f"expected one {prefix!r} line:\n{run.output}"
    for name in names:
        assert str(name) in hits[0], f"{str(name)!r} not named in: {hits[0]}"


def assert_verifies(lab: Lab, store: Path) -> None:
    run = lab.cli("store", "verify", store)
    assert run.exit_code == 0 and run.output.strip() == "ok", run.output
    assert not list(store.parent.glob(store.name + ".tmp-*")), "temporary store file left behind"


def assert_no_store(store: Path) -> None:
    left = sorted(p.name for p in store.parent.glob(store.name + "*") if not p.name.endswith(".lock"))
    assert not left, f"a refused run left files behind: {left}"


def assert_one_row_failed(lab: Lab, store: Path, run: Run, *names: str) -> None:
    """Exit 3, one ``failed`` line naming the meme and ``names``, every other row equal to the clean run."""
    assert_clear(run, 3, f"failed {lab.where()} {SET}/image", *names, prefix="failed ")
    assert "completed with 1 failures" in run.output, run.output
    assert_verifies(lab, store)
    status, values = read_set(store)
    others = np.arange(len(status)) != ROW
    assert status[ROW] == FAILED and (status[others] == DONE).all(), status
    np.testing.assert_array_equal(values[others], lab.ref[1][others])


# ---------------------------------------------------------------- the cases
CASES: dict = {}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn
    return register


def _bad_image(lab: Lab, name: str, damage) -> tuple[Run, Path, Path]:
    data = lab.copy(name)
    image = lab.image(data)
    damage(image)
    store = lab.root / f"{name}.h5"
    return lab.featurize(data, store), store, image


@case("corrupt image")
def corrupt_image(lab):
    def damage(p):  # PNG signature and header intact, compressed pixel data overwritten
        b = bytearray(p.read_bytes())
        start = b.index(b"IDAT") + 8
        b[start:start + 64] = bytes(range(64))
        p.write_bytes(bytes(b))
    run, store, image = _bad_image(lab, "corrupt", damage)
    assert_one_row_failed(lab, store, run, image)
    return run


@case("0-byte image")
def empty_image(lab):
    run, store, image = _bad_image(lab, "empty_image", lambda p: p.write_bytes(b""))
    assert_one_row_failed(lab, store, run, image, "0 bytes")
    return run


@case("truncated image")
def truncated_image(lab):
    run, store, image = _bad_image(lab, "truncated", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]))
    assert_one_row_failed(lab, store, run, image)
    return run


def _bomb_png(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims width x height 1-bit pixels (zlib packs the zeros)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + b"\0" * ((width + 7) // 8)
    raw = zlib.compress(row * 256, 9)  # the first rows only: decoding would fail late, the size check is first
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


@case("decompression-bomb image")
def bomb_image(lab):
    run, store, image = _bad_image(lab, "bomb", lambda p: p.write_bytes(_bomb_png(40000, 40000)))
    assert_one_row_failed(lab, store, run, image, "decompression bomb", "--max-pixels")
    return run


@case("missing image")
def missing_image(lab):
    run, store, image = _bad_image(lab, "missing", lambda p: p.unlink())
    assert_one_row_failed(lab, store, run, image, "missing")
    return run


@case("JPEG bytes in .png (must work)")
def wrong_extension(lab):
    from PIL import Image

    def damage(p):
        with Image.open(p) as im:
            rgb = im.convert("RGB")
        rgb.save(p, format="JPEG", quality=95)  # keeps the .png name
        assert p.read_bytes()[:3] == b"\xff\xd8\xff"
    run, store, _ = _bad_image(lab, "jpeg_in_png", damage)
    assert "Traceback" not in run.output and run.exit_code == 0, run.output
    assert "0 failures" in run.output and not any(ln.startswith("failed ") for ln in run.output.splitlines())
    assert_verifies(lab, store)
    status, values = read_set(store)
    assert (status == DONE).all()
    others = np.arange(len(status)) != ROW
    np.testing.assert_array_equal(values[others], lab.ref[1][others])
    # the row holds features of this very picture (JPEG round trip): close to the PNG's, not zeros
    a, b = values[ROW].astype(np.float64), lab.ref[1][ROW].astype(np.float64)
    assert np.abs(a).sum() > 0 and a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.99
    return run


def _bad_annotations(lab: Lab, name: str, edit) -> tuple[Run, Path, Path]:
    """Edit train.jsonl of a copy, featurize it: must be refused before any store file exists."""
    data = lab.copy(name)
    f = data / "train.jsonl"
    f.write_bytes(edit(f.read_bytes()))
    store = lab.root / f"{name}.h5"
    run = lab.featurize(data, store)
    assert_no_store(store)
    return run, store, f


def _edit_row(i: int, **fields):
    def edit(raw: bytes) -> bytes:
        lines = raw.decode().splitlines()
        lines[i] = json.dumps({**json.loads(lines[i]), **fields})
        return ("\n".join(lines) + "\n").encode()
    return edit


@case("truncated JSONL line")
def truncated_jsonl(lab):
    def edit(raw):
        lines = raw.split(b"\n")
        lines[2] = lines[2][:25]
        return b"\n".join(lines)
    run, _, f = _bad_annotations(lab, "trunc_jsonl", edit)
    assert_clear(run, 2, f"{f} line 3")
    return run


@case("non-UTF-8 text")
def non_utf8(lab):
    def edit(raw):
        lines = raw.split(b"\n")
        text = json.loads(lines[3])["text"]
        lines[3] = lines[3].replace(text.encode(), "caf\u00e9 ".encode("latin-1") + text.encode())
        return b"\n".join(lines)
    run, _, f = _bad_annotations(lab, "latin1", edit)
    assert_clear(run, 2, str(f), "line 4", "UTF-8")
    return run


@case("empty text")
def empty_text(lab):
    meme = json.loads((lab.base / "train.jsonl").read_text().splitlines()[1])
    run, store, f = _bad_annotations(lab, "empty_text", _edit_row(1, text="  "))
    assert_clear(run, 2, f"'{meme['id']}'", str(f), "--allow-empty-text")
    # the fix it names works, with the real offline text encoder: the empty text gets a finite embedding
    kept = lab.cli("featurize", "all", f.parent, "--store", store, "--preset", "offline", "--allow-empty-text",
                   "--workers", 0, "--no-progress")
    assert kept.exit_code == 0 and "Traceback" not in kept.output, kept.output
    assert_verifies(lab, store)
    with FeatureStore.open(store) as st:
        row = int(np.flatnonzero((st.ids == meme["id"]) & (st.splits == "train"))[0])
        assert st.texts[row].strip() == "" and (st.status(SET, "image") == DONE).all()
        assert (st.status("st-minilm", "text") == DONE).all()
        emb = st.read("st-minilm", "text_embed", [row]).astype(np.float32)
        assert np.isfinite(emb).all() and np.linalg.norm(emb) > 0
    return run


@case("duplicate ids")
def duplicate_ids(lab):
    first = json.loads((lab.base / "train.jsonl").read_text().splitlines()[0])["id"]
    run, _, f = _bad_annotations(lab, "dup_ids", _edit_row(4, id=first))
    assert_clear(run, 2, str(f), "line 5", f"duplicate id '{first}'")
    return run


@case("unknown label")
def unknown_label(lab):
    run, _, f = _bad_annotations(lab, "bad_label", _edit_row(2, label=2))
    line = json.loads((lab.base / "train.jsonl").read_text().splitlines()[2])
    assert_clear(run, 2, str(f), "line 3", line["id"], "unknown label value 2")
    return run


def _store_copy(lab: Lab, name: str) -> Path:
    store = lab.root / name / "s.h5"
    store.parent.mkdir()
    shutil.copy(lab.clean, store)
    return store


@case("store from a newer schema")
def newer_schema(lab):
    import h5py

    from memeprobe.store.schema import SCHEMA_VERSION

    store = _store_copy(lab, "newer")
    with h5py.File(store, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    before = sha(store)
    run = lab.featurize(lab.base, store)
    assert_clear(run, 2, str(store), f"schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}", "upgrade memeprobe")
    assert sha(store) == before and not list(store.parent.glob("*.tmp-*"))
    info = lab.cli("store", "info", store)
    assert_clear(info, 2, str(store), "newer memeprobe")
    return run


@case("store/dataset mismatch")
def store_mismatch(lab):
    store = _store_copy(lab, "mismatch")
    other = lab.root / "other"
    make_sample(other, n=44, seed=1, image_size=64)
    before = sha(store)
    run = lab.featurize(other, store)
    assert_clear(run, 2, str(store), "another dataset", "40 memes", "44 memes", "--overwrite")
    assert sha(store) == before
    assert_verifies(lab, store)
    return run


def _read_only_dir(lab: Lab) -> tuple[Path, object]:
    """A folder this process cannot create files in: mode 0555, or /sys when running as root."""
    if os.geteuid() != 0:
        d = lab.root / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d, lambda: d.chmod(0o755)
    d = Path("/sys")
    try:
        (d / "memeprobe-probe").touch()
    except OSError:
        return d, lambda: None
    pytest.skip("running as root with no read-only folder to test")


@case("immutable store file (chattr +i)")
def immutable_store(lab):
    store = _store_copy(lab, "immutable")
    if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode:
        pytest.skip("chattr +i is not allowed here")
    try:
        before = sha(store)
        run = lab.featurize(lab.base, store, "--overwrite")
        assert_clear(run, 2, str(store), "permission denied")
        assert "RuntimeError" not in run.output and sha(store) == before
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)
    return run


@case("read-only store path")
def read_only(lab):
    folder, restore = _read_only_dir(lab)
    store = folder / "faults-s.h5"
    try:
        run = lab.featurize(lab.base, store)
        assert_clear(run, 2, str(store), "choose a writable --store path")
        assert_no_store(store)
    finally:
        restore()
    return run


def _file_limit(nbytes: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))
    return preexec


@case("disk full on write (file-size limit)")
def disk_full(lab):
    store = _store_copy(lab, "full")
    before = sha(store)
    log = store.parent / "log.txt"
    # --downscale changes the identity of the set: --overwrite rebuilds it (a copy-on-write structural change)
    args = ["featurize", "all", lab.base, "--store", store, "--featurizer", SET, "--downscale", 32, "--overwrite",
            "--workers", 0, "--no-progress"]
    proc = spawn(args, log, preexec_fn=_file_limit(store.stat().st_size // 2))
    code = proc.wait(timeout=120)
    run = Run("memeprobe " + lab.short(" ".join(map(str, args))) + "  # RLIMIT_FSIZE", code, log.read_text())
    assert_clear(run, 2, str(store), "disk is full")
    assert sha(store) == before
    assert_verifies(lab, store)
    return run


def _kill_when(proc: subprocess.Popen, ready, timeout=120.0) -> None:
    """SIGKILL ``proc``'s process group as soon as ``ready()`` is true; fails if it ends first."""
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, "the command finished before it could be killed; make it slower"
        assert time.monotonic() - t0 < timeout, "timed out waiting for the kill point"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _done_rows(store: Path) -> int:
    try:
        with FeatureStore.open(store) as st:
            return int((st.status(SET, "image") == DONE).sum()) if SET in st.feature_sets() else 0
    except MemeprobeError:  # not there yet / being created
        return 0


@case("SIGKILL during featurize, then resume")
def kill_featurize(lab):
    data = lab.root / "kill_data"
    make_sample(data, n=60, seed=2, image_size=512)  # bigger pictures: a window to kill in
    clean = lab.root / "kill_clean.h5"
    assert lab.featurize(data, clean).exit_code == 0
    ref_status, ref = read_set(clean)
    assert (ref_status == DONE).all()
    store = lab.root / "kill" / "s.h5"
    store.parent.mkdir()
    args = ["featurize", "all", data, "--store", store, "--featurizer", SET, "--batch-size", 2, "--workers", 0,
            "--no-progress"]
    proc = spawn(args, store.parent / "log.txt")
    _kill_when(proc, lambda: _done_rows(store) >= 6)
    assert_verifies(lab, store)
    status, values = read_set(store)
    done = status == DONE
    assert 6 <= done.sum() < len(status), f"{done.sum()} rows done at the kill"
    np.testing.assert_array_equal(values[done], ref[done])  # every row done before the kill = clean run
    run = lab.featurize(data, store)
    assert "Traceback" not in run.output and run.exit_code == 0, run.output
    assert f"{len(status) - done.sum()} rows to do ({done.sum()} done" in run.output, run.output  # resumed
    assert_verifies(lab, store)
    status, values = read_set(store)
    assert (status == DONE).all()
    np.testing.assert_array_equal(values, ref)  # row by row equal to the run without a kill
    return Run(f"memeprobe {lab.short(' '.join(map(str, args)))}  # SIGKILL at {done.sum()}/{len(status)} rows, "
               f"then: {run.command}", run.exit_code, run.output)


@case("SIGKILL during sweep, then runs list")
def kill_sweep(lab):
    store = _store_copy(lab, "sweep")
    before = sha(store)
    runs = store.parent / "runs.jsonl"
    args = ["sweep", "--store", store, "--feature-set", SET, "--heads", "mlp", "--n-configs", 60, "--jobs", 1]

    def lines():
        return runs.read_bytes().count(b"\n") if runs.exists() else 0
    _kill_when(spawn(args, store.parent / "log.txt"), lambda: lines() >= 2)
    raw = runs.read_text()
    assert raw.endswith("\n"), "the kill left a half-written run record"
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) >= 2 and len(records) < 60
    run = lab.cli("runs", "list", "--store", store)
    assert "Traceback" not in run.output and run.exit_code == 0, run.output
    table = run.output.splitlines()
    assert len(table) == len(records) + 1 and all(r["run_id"] in run.output for r in records), run.output
    assert sha(store) == before  # a sweep only reads the store
    assert_verifies(lab, store)
    return Run(f"memeprobe {lab.short(' '.join(map(str, args)))}  # SIGKILL after {len(records)} runs, "
               f"then: {run.command}", run.exit_code, f"{len(records)} complete runs listed\n")


def _relabeled(lab: Lab, name: str, split: str, label: int) -> Path:
    """A store of a copy whose ``split`` memes all carry ``label``."""
    data = lab.copy(name)
    f = data / f"{split}.jsonl"
    f.write_text("".join(json.dumps({**json.loads(ln), "label": label}) + "\n" for ln in f.read_text().splitlines()))
    store = lab.root / f"{name}.h5"
    assert lab.featurize(data, store).exit_code == 0
    return store


@case("single-class train split")
def single_class_train(lab):
    store = _relabeled(lab, "one_class_train", "train", 0)
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--out", store.parent / "m1.pt")
    assert_clear(run, 2, "training split", "only one class")
    assert not (store.parent / "m1.pt").exists()
    return run


@case("dev split with one class (--select-on dev)")
def single_class_dev(lab):
    store = _relabeled(lab, "one_class_dev", "dev_seen", 1)
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--select-on", "dev")
    assert_clear(run, 2, "dev split", "only one class")
    return run


@case("malformed runs.jsonl")
def malformed_runs(lab):
    store = _store_copy(lab, "bad_runs")
    (store.parent / "runs.jsonl").write_text('{"run_id": "a", "metrics": {}}\n[1, 2]\n')
    run = lab.cli("runs", "list", "--store", store)
    assert_clear(run, 2, "runs.jsonl line 2")
    return run


@case("crafted model file (device cuda:3)")
def crafted_model(lab):
    import torch

    store = _store_copy(lab, "crafted")
    model = store.parent / "m.pt"
    assert lab.cli("train-head", "mlp", "--store", store, "--feature-set", SET, "--epochs", 1, "--out", model).exit_code == 0
    d = torch.load(model, weights_only=True)
    d["model"]["params"]["device"] = "cuda:3"
    torch.save(d, model)
    out = store.parent / "sub.csv"
    run = lab.cli("predict", model, "--store", store, "--split", "test_unseen", "--out", out)
    assert_clear(run, 2, str(model), "cuda:3")
    assert not out.exists()
    return run


def _leakage_report(lab: Lab, name: str, data: Path | None = None) -> tuple[Run, Path]:
    out = lab.root / name
    return lab.cli("leakage", "report", data or lab.base, "--out", out), out


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@case("leakage: stale clean_ids beside a new report")
def leak_stale_clean_ids(lab):
    run, out = _leakage_report(lab, "leak_stale")
    assert run.exit_code == 0, run.output
    stale = out / "clean_ids" / "dev_seen.txt"
    ids = stale.read_text().splitlines()
    leaked = next(m.id for m in lab.dataset.split("dev_seen") if m.id not in ids)
    stale.write_text("".join(f"{i}\n" for i in ids + [leaked]))  # one more "clean" id than the report says
    run = lab.cli("train-head", "logreg", "--store", lab.clean, "--feature-set", SET, "--clean-ids", out)
    assert_clear(run, 2, "dev_seen.txt", f"{len(ids) + 1} ids", f"{len(ids)} clean ids", "manifest.json")
    return run


@case("leakage: disk full while writing the report")
def leak_disk_full(lab):
    run, out = _leakage_report(lab, "leak_full")
    assert run.exit_code == 0, run.output
    before = _tree(out)
    limit = max((out / f).stat().st_size for f in before) // 2
    args = ["leakage", "report", lab.base, "--out", out]
    code = spawn(args, out.parent / "leak_full.log", preexec_fn=_file_limit(limit)).wait(timeout=300)
    run = Run("memeprobe " + lab.short(" ".join(map(str, args))) + "  # RLIMIT_FSIZE", code,
              (out.parent / "leak_full.log").read_text())
    assert_clear(run, 2, str(out), "disk is full")
    assert _tree(out) == before, "the earlier report was changed"
    assert not list(out.parent.glob(".leak_full.*")), "a temporary report folder was left behind"
    return run


def _renamed_dev(lab: Lab, name: str, rename) -> tuple[Path, list[dict]]:
    """A copy whose dev_seen ids are ``rename(id)``; returns it and the dev rows."""
    data = lab.copy(name)
    f = data / "dev_seen.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    for r in rows:
        r["id"] = rename(r["id"])
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, rows


@case("leakage: ids that start a spreadsheet formula")
def leak_formula_ids(lab):
    data, rows = _renamed_dev(lab, "leak_formula", lambda i: f"=HYPERLINK(\"http://evil/{i}\")")
    run, out = _leakage_report(lab, "leak_formula_out", data)
    assert run.exit_code == 0 and "Traceback" not in run.output, run.output
    import csv

    with open(out / "pairs.csv", newline="") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    formulas = [c for c in cells if c.startswith(("=", "+", "-", "@")) and not c.lstrip("-").isdigit()]
    assert not formulas, f"formula cells in pairs.csv: {formulas[:3]}"  # (-1: no label, a number)
    exact = {p["id_b"] for p in json.loads((out / "report.json").read_text())["pairs"]} | set(
        (out / "clean_ids" / "dev_seen.txt").read_text().splitlines())
    assert {r["id"] for r in rows} <= exact  # report.json and clean_ids keep the exact ids
    return Run(run.command, run.exit_code, "pairs.csv: formula cells start with ' (report.json keeps exact ids)\n")


@case("leakage: every meme has the same caption")
def leak_one_caption(lab):
    data = lab.copy("leak_caption")
    for f in data.glob("*.jsonl"):
        f.write_text("".join(json.dumps({**json.loads(ln), "text": "same words"}) + "\n"
                             for ln in f.read_text().splitlines()))
    n = len(lab.dataset.memes)
    run = lab.cli("leakage", "report", data, "--out", lab.root / "leak_caption_out", "--max-group-pairs", 50, "--json")
    assert run.exit_code == 0 and "Traceback" not in run.output, run.output
    doc = json.loads((lab.root / "leak_caption_out" / "report.json").read_text())
    assert doc["groups"][0]["size"] == n and len(doc["pairs"]) <= 5 * n < n * (n - 1) // 2
    clean = {s: len((lab.root / "leak_caption_out" / "clean_ids" / f"{s}.txt").read_text().splitlines())
             for s in ("dev_seen", "test_unseen")}
    assert clean == {"dev_seen": 0, "test_unseen": 0}  # every eval meme has a train copy
    return Run(run.command, run.exit_code, f"one group of {n}, {len(doc['pairs'])} pairs listed "
               f"(not {n * (n - 1) // 2}), no clean eval meme\n")


# ---------------------------------------------------------------- issue 13: store integrity and locking
def _flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([b ^ mask]))


def _train(lab: Lab, store: Path, out: Path) -> Run:
    return lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--out", out)


@case("lock file deleted under a writer (#13.1)")
def lock_deleted(lab):
    store = _store_copy(lab, "lock_rm")
    first = FeatureStore.open_or_create(store, lab.dataset)  # a featurize that is still running
    try:
        batch = {a: first.read(SET, a, [ROW]) for a, s in first.arrays(SET).items() if s.modality == "image"}
        os.unlink(str(store) + ".lock")  # rm S.h5.lock
        second = lab.featurize(lab.base, store, "--overwrite", "--downscale", 32)  # a second writer gets in
        assert second.exit_code == 0, second.output
        try:
            first.write_rows(SET, [ROW], batch, "image")
            raise AssertionError("the first writer wrote after its lock file was deleted")
        except MemeprobeError as e:
            run = Run(f"(writer 1 running) rm s.h5.lock; {second.command}; writer 1 commits", 2, f"error: {e}")
    finally:
        first.close()
    assert_clear(run, 2, str(store), "lock file", "removed or replaced", "without marking this batch done")
    assert_verifies(lab, store)
    return run


@case("flipped feature byte (#13.3)")
def flipped_byte(lab):
    import h5py

    store = _store_copy(lab, "flip")
    with h5py.File(store, "r") as f:
        ds = f[f"features/{SET}/{EMBED}"]
        start = ROW // ds.chunks[0] * ds.chunks[0]
        offset = ds.id.get_chunk_info_by_coord((start, 0)).byte_offset + (ROW - start) * ds[0].nbytes
    _flip(store, offset + 3, 0x01)  # one bit of one feature value of one row
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and f"1 done rows do not match their checksum (e.g. {lab.where()})" in verify.output
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), f"{SET}/{EMBED}", "checksum", lab.where())
    assert not (store.parent / "m.pt").exists()
    return run


@case("forked child keeps a killed writer's lock (#13.4)")
def forked_child(lab):
    store = _store_copy(lab, "fork")
    code = ("import os, sys, time\nfrom memeprobe.data import load_dataset\nfrom memeprobe.store import FeatureStore\n"
            f"st = FeatureStore.open_or_create({str(store)!r}, load_dataset({str(lab.base)!r}))\n"
            "if os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\nprint('locked', flush=True)\ntime.sleep(60)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        proc.send_signal(signal.SIGKILL)  # the writer dies; its forked child (a DataLoader worker) lives on
        proc.wait(timeout=10)
        run = lab.featurize(lab.base, store)  # resumes at once, not refused naming a dead pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
    assert run.exit_code == 0 and "Traceback" not in run.output and "0 rows to do" in run.output, run.output
    assert_verifies(lab, store)
    return run


@case("symlinked lock file (#13.5)")
def symlinked_lock(lab):
    store = _store_copy(lab, "lock_link")
    victim = store.parent / "victim.txt"
    victim.write_text("precious\n")
    Path(str(store) + ".lock").unlink(missing_ok=True)
    os.symlink(victim, str(store) + ".lock")
    run = lab.featurize(lab.base, store)
    assert_clear(run, 2, "symbolic link")
    assert victim.read_text() == "precious\n"
    return run


@case("failure reasons zero-filled (#13.14)")
def reasons_zero_filled(lab):
    import h5py

    data = lab.copy("reasons")
    lab.image(data).write_bytes(b"not a png")
    store = lab.root / "reasons.h5"
    run = lab.featurize(data, store)
    assert run.exit_code == 3, run.output
    with h5py.File(store, "r") as f:
        raw = f[f"features/{SET}/_reason/image"][()]
    assert raw[ROW].strip(b"\0") and all(r.strip(b"\0") == b"" for i, r in enumerate(raw) if i != ROW)
    return run


@case("symlinked store path (#13.15)")
def symlinked_store(lab):
    real = _store_copy(lab, "store_link")
    link = real.parent / "link.h5"
    os.symlink(real.name, link)
    run = lab.featurize(lab.base, link, "--overwrite", "--downscale", 32)  # a structural change
    assert run.exit_code == 0, run.output
    assert link.is_symlink() and os.readlink(link) == real.name
    with FeatureStore.open(real) as st:
        assert st.provenance(SET)["preprocessing"]["downscale"] == 32
    return run


@case("NaN in a done row, store without checksums (#13.13)")
def nan_unchecked(lab):
    import h5py

    store = _store_copy(lab, "nan")
    with h5py.File(store, "r+") as f:
        del f[f"features/{SET}/_checksum"]  # written before checksums
        f[f"features/{SET}/{EMBED}"][ROW, 0] = np.nan
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "1 done rows hold NaN/inf" in verify.output, verify.output
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), f"{SET}/{EMBED}", "NaN/inf", lab.where())
    return run


@case("bad JSON in the 'arrays' attribute (#13.13)")
def bad_arrays_attr(lab):
    import h5py

    store = _store_copy(lab, "bad_arrays")
    with h5py.File(store, "r+") as f:
        f[f"features/{SET}"].attrs["arrays"] = '{"image_embed": '
    for args in (("store", "info", store), ("store", "verify", store)):
        assert_clear(lab.cli(*args), 2, str(store), "'arrays' attribute")
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), "'arrays' attribute")
    return run


@case("bad JSON in the 'provenance' attribute (#13.13)")
def bad_provenance_attr(lab):
    import h5py

    store = _store_copy(lab, "bad_prov")
    with h5py.File(store, "r+") as f:
        f[f"features/{SET}"].attrs["provenance"] = "[1, "
    assert_clear(lab.cli("store", "info", store), 2, str(store), "'provenance' attribute")
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "'provenance' attribute is not a JSON object" in verify.output, verify.output
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), "'provenance' attribute")
    return run


@case("bit flip in an HDF5 object header (#13.13)")
def header_flip(lab):
    import h5py

    store = _store_copy(lab, "header")
    with h5py.File(store, "r") as f:
        header = h5py.h5o.get_info(f[f"features/{SET}/{EMBED}"].id).addr
    _flip(store, header)  # the object header's version byte
    verify = lab.cli("store", "verify", store)
    assert_clear(verify, 2, str(store), "damaged", "object header")
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), "damaged")
    return run


@case("declared shape differs from the stored one (#13.13)")
def shape_mismatch(lab):
    import h5py

    store = _store_copy(lab, "shape")
    with h5py.File(store, "r+") as f:
        g = f[f"features/{SET}"]
        values = g[EMBED][()]
        del g[EMBED]
        g.create_dataset(EMBED, data=values[:, :-1])
    run = _train(lab, store, store.parent / "m.pt")
    assert_clear(run, 2, str(store), f"array '{EMBED}' is stored as", "but declared")
    return run


@case("NUL byte in a text (#13.13)")
def nul_text(lab):
    meme = json.loads((lab.base / "train.jsonl").read_text().splitlines()[2])
    run, _, f = _bad_annotations(lab, "nul_text", _edit_row(2, text="caf\x00e"))
    assert_clear(run, 2, str(f), "line 3", meme["id"], "NUL byte")
    assert "store" not in message(run)
    return run


@case("id with a newline (#13.13)")
def newline_id(lab):
    run, _, f = _bad_annotations(lab, "newline_id", _edit_row(2, id="12\n34"))
    assert_clear(run, 2, str(f), "line 3", "'12\\n34'", "control character")
    return run


# ---------------------------------------------------------------- pytest and script entry points
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("faults"))


@pytest.mark.parametrize("name", list(CASES))
def test_fault(lab, name):
    CASES[name](lab)


def matrix() -> int:
    """Run every case, print case | command | exit code | message | ok; return the number of failures."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="memeprobe-faults-") as tmp:
        t0 = time.perf_counter()
        lab = Lab(Path(tmp))
        for name, fn in CASES.items():
            t = time.perf_counter()
            try:
                run = fn(lab)
                rows.append((name, run.command, str(run.exit_code), lab.short(message(run)), "ok"))
            except pytest.skip.Exception as e:
                rows.append((name, "", "", "", f"skipped: {e.msg}"))
            except Exception as e:  # AssertionError or a bug: the row says which
                why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                rows.append((name, "", "", "", f"FAIL: {lab.short(why)}"))
            rows[-1] = rows[-1] + (f"{time.perf_counter() - t:.1f}s",)
        total = time.perf_counter() - t0
    header = ("case", "command", "exit", "message", "ok", "time")
    limits = (40, 100, 4, 110, 90, 8)
    cut = [tuple(c if len(c) <= n else c[:n - 3] + "..." for c, n in zip(r, limits)) for r in rows]
    widths = [max(len(r[i]) for r in cut + [header]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths)] + cut:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    failed = sum(r[4].startswith("FAIL") for r in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} cases ok in {total:.1f} s")
    return failed


if __name__ == "__main__":
    sys.exit(1 if matrix() else 0)
