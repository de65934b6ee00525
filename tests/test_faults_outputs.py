"""Fault matrix of outputs (issue 24 items 1, 2, 5, 8): every case runs a real ``memeprobe`` command on
real files and checks the exit code, the one line, and the state of every file afterwards.

1. an output never replaces what the run reads (store, model, dataset, clean-ids folder, search space), nor
   a memeprobe file of another kind unless ``--replace KIND``;
2. names from data (split names) never become paths outside ``--out``;
5. CSV files for people are formula-safe; competition formats keep exact ids and say so once;
8. stale temp files are cleaned, a read-only disk is one line, deep / U+2028 JSON lines are read or named,
   constant features are one line.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memeprobe.data.records import Dataset, Meme
from memeprobe.errors import OutputError
from memeprobe.leakage.manifest import read_clean_ids
from tests.test_faults import SET, Lab, assert_clear, sha

DEEP = 100_000  # nesting that overflows Python's stack in json.loads


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with its sha256: the state a refused run must keep."""
    return {p.relative_to(folder).as_posix(): sha(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("outputs"))
    lab.model = lab.root / "clean" / "m.pt"
    run = lab.cli("train-head", "logreg", "--store", lab.clean, "--feature-set", SET, "--out", lab.model)
    assert run.exit_code == 0, run.output
    return lab


def _work(lab: Lab, name: str) -> Path:
    """A fresh folder with a copy of the clean store (and its model) to damage."""
    d = lab.root / name
    d.mkdir()
    shutil.copy(lab.clean, d / "s.h5")
    shutil.copy(lab.model, d / "m.pt")
    return d


# ---------------------------------------------------------------- 1. an output never replaces an input
@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "dotdot"])
def test_predict_out_is_the_store_under_any_name(lab, alias):
    d = _work(lab, f"predict_store_{alias}")
    out = {"same": d / "s.h5", "symlink": d / "link.h5", "hardlink": d / "hard.h5",
           "dotdot": d / "sub" / ".." / "s.h5"}[alias]
    if alias == "symlink":
        out.symlink_to("s.h5")
    elif alias == "hardlink":
        os.link(d / "s.h5", out)
    elif alias == "dotdot":
        (d / "sub").mkdir()
    before = tree(d)
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", out)
    assert_clear(run, 2, str(out), "is the store this run reads", "choose another path")
    assert tree(d) == before


def test_predict_out_is_the_model(lab):
    d = _work(lab, "predict_model")
    before = tree(d)
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", d / "m.pt")
    assert_clear(run, 2, "m.pt", "is the model this run reads")
    assert tree(d) == before


def test_train_head_out_is_the_store(lab):
    d = _work(lab, "train_store")
    before = tree(d)
    run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET, "--out", d / "s.h5")
    assert_clear(run, 2, "s.h5", "is the store this run reads")
    assert tree(d) == before  # no model, no runs.jsonl line


def test_output_over_a_memeprobe_file_of_another_kind_needs_replace(lab):
    d = _work(lab, "other_kind")
    other = d / "other.h5"
    shutil.copy(lab.clean, other)  # another store, not read by this run
    before = tree(d)
    run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET, "--out", other)
    assert_clear(run, 2, "other.h5", "HDF5 file", "(--replace)")
    assert tree(d) == before
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", d / "m2.pt")
    assert run.exit_code == 0, run.output  # a new path: fine
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", other)
    assert_clear(run, 2, "other.h5", "HDF5 file", "(--replace)")
    assert sha(other) == before["other.h5"]
    # the explicit flag for that kind lets it through
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", other,
                  "--replace", "store")
    assert run.exit_code == 0, run.output
    assert other.read_text().startswith("id,proba,label\n")
    assert sha(d / "s.h5") == before["s.h5"] and sha(d / "m.pt") == before["m.pt"]


def test_model_over_the_runs_table_and_two_outputs_at_one_path(lab):
    d = _work(lab, "runs_kind")
    run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET)
    assert run.exit_code == 0, run.output
    before = tree(d)
    run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET, "--out", d / "runs.jsonl")
    assert_clear(run, 2, "runs.jsonl", "is a runs table")
    assert tree(d) == before
    run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET, "--out", d / "x",
                  "--plots", d / "x")
    assert_clear(run, 2, "two outputs of this run")
    assert tree(d) == before and not (d / "x").exists()


def test_outputs_stay_out_of_the_clean_ids_report(lab):
    d = _work(lab, "clean_ids_tree")
    rep = d / "rep"
    assert lab.cli("leakage", "report", lab.base, "--out", rep, "--no-progress").exit_code == 0
    before = tree(d)
    for ids, extra in [(rep, ["--out", rep / "m.pt"]), (rep, ["--plots", rep / "plots"]),
                       (rep, ["--out", rep / "manifest.json"]),
                       (rep / "clean_ids", ["--out", rep / "report.json"])]:  # the report above is read too
        run = lab.cli("train-head", "logreg", "--store", d / "s.h5", "--feature-set", SET, "--clean-ids", ids, *extra)
        assert_clear(run, 2, str(extra[1]), "clean-ids folder")
        assert tree(d) == before


def test_leakage_report_never_replaces_the_dataset(lab):
    data = lab.copy("leak_inputs_data")
    d = lab.root / "leak_inputs"
    d.mkdir()
    shutil.copy(lab.clean, d / "s.h5")
    cases = [(data, "is the dataset this run reads"), (data / "img", "is the image folder this run reads"),
             (data / "report", "is inside the dataset this run reads"),
             (lab.root, "holds the"), (d, "holds the store this run reads")]
    before_data, before_d = tree(data), tree(d)
    for out, says in cases:
        run = lab.cli("leakage", "report", data, "--store", d / "s.h5", "--out", out, "--no-progress")
        assert_clear(run, 2, str(out), says)
        assert tree(data) == before_data and tree(d) == before_d


def test_store_export_and_sweep_space_are_inputs(lab):
    d = _work(lab, "export_sweep")
    (d / "s.npz").symlink_to("s.h5")
    space = d / "space.json"
    space.write_text(json.dumps({"logreg": {"C": [0.1, 1.0]}}))
    before = tree(d)
    run = lab.cli("store", "export", d / "s.h5", "-f", SET, "--to", d / "s.npz")
    assert_clear(run, 2, "s.npz", "is the store this run reads")
    run = lab.cli("sweep", "--store", d / "s.h5", "--feature-set", SET, "--space", space, "--out", space,
                  "--jobs", 1)
    assert_clear(run, 2, "space.json", "is the search space this run reads")
    assert tree(d) == before


def test_make_sample_never_replaces_another_kind(lab):
    from memeprobe.demo.synthetic import make_sample

    d = lab.root / "sample_kind"
    d.mkdir()
    assert lab.cli("leakage", "report", lab.base, "--out", d / "rep", "--no-progress").exit_code == 0
    before = tree(d)
    with pytest.raises(OutputError, match="leakage report folder"):
        make_sample(d / "rep", n=40, overwrite=True)
    assert tree(d) == before


# ---------------------------------------------------------------- 2. names from data never become paths
def _generic(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir()
    f = folder / "memes.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f


@pytest.mark.parametrize("split", ["../escaped", "/tmp/abs", "a\\b", ".."])
def test_split_names_that_are_paths_are_refused_where_read(lab, split):
    name = f"split_{abs(hash(split))}"
    rows = [{"id": i, "text": f"caption {i}", "label": i % 2, "split": "train" if i < 6 else split} for i in range(10)]
    f = _generic(lab.root / name, rows)
    out = lab.root / f"{name}_out"
    before = tree(lab.root)
    run = lab.cli("leakage", "report", f, "--split-col", "split", "--out", out, "--no-progress")
    assert_clear(run, 2, str(f), "line 7", repr(split), "cannot be a file name")
    assert tree(lab.root) == before and not out.exists()


def _store_with_splits(lab: Lab, name: str, eval_split: str) -> Path:
    """A store whose meme table holds ``eval_split`` (made before split names were checked: the builder is
    bypassed, as an old store or a Python caller could)."""
    from memeprobe.featurize.runner import RunConfig, featurize
    from memeprobe.featurize.spec import expand

    memes = [Meme(m.id, m.split if m.split == "train" else eval_split, m.text, m.image, m.label)
             for m in lab.dataset.memes]
    ds = Dataset(lab.base, "hateful_memes", memes, binary_name="hateful")
    store = lab.root / name / "s.h5"
    store.parent.mkdir()
    featurize(ds, store, expand([SET], None), cfg=RunConfig(workers=0, progress=False), log=lambda m: None)
    return store, ds


def test_split_names_from_an_old_store_stay_inside_plots_and_reports(lab):
    store, ds = _store_with_splits(lab, "old_split", "../../escaped")
    before = tree(lab.root)
    plots = store.parent / "plots"
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--dev-split", "../../escaped",
                  "--plots", plots)
    assert_clear(run, 2, "../../escaped", "cannot name a file", str(plots))
    assert tree(lab.root) == before

    from memeprobe.leakage.analysis import LeakageConfig, analyze
    from memeprobe.leakage.report import write_report

    with pytest.warns(UserWarning, match="image checks turned off"):
        result = analyze(ds, None, LeakageConfig(), check_images=False)
    with pytest.raises(OutputError, match="cannot name a file"):
        write_report(result, ds, store.parent / "rep")
    assert tree(lab.root) == before
    # and a clean-id list is never read from outside the folder
    rep = store.parent / "ids"
    rep.mkdir()
    (store.parent / "escaped.txt").write_text("1\n")  # ids/clean_ids/../../escaped.txt
    (rep / "train.txt").write_text("1\n")
    assert set(read_clean_ids(rep, ["train", "../../escaped"])) == {"train"}


def test_split_names_equal_on_a_case_insensitive_disk_are_refused(lab):
    rows = [{"id": i, "text": f"caption {i}", "label": i % 2, "split": ["train", "Dev", "dev"][i % 3]}
            for i in range(12)]
    f = _generic(lab.root / "case_splits", rows)
    out = lab.root / "case_splits_out"
    run = lab.cli("leakage", "report", f, "--split-col", "split", "--out", out, "--no-progress")
    assert_clear(run, 2, "'Dev'", "'dev'", "case-insensitive")
    assert not out.exists() and not list(lab.root.glob(".case_splits_out*"))


# ---------------------------------------------------------------- 5. formula-safe CSVs
FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+2", "-3", "@SUM(A1)"]


def _formula_dataset(lab: Lab) -> tuple[Path, Path]:
    """A generic dataset whose ids and class names start spreadsheet formulas, featurized."""
    classes = ["=cmd|' /C calc'!A0", "@benign", "+plus"]
    rows = [{"id": f"{FORMULAS[i % 4]}{i}", "text": f"caption {i}", "image": f"img/{m.image.split('/')[-1]}",
             "label": classes[i % 3], "split": "train" if i < 30 else "test"}
            for i, m in enumerate(lab.dataset.memes)]
    folder = lab.root / "formula"
    _generic(folder, rows)
    shutil.copytree(lab.base / "img", folder / "img")
    store = folder / "s.h5"
    run = lab.featurize(folder / "memes.jsonl", store, "--split-col", "split")
    assert run.exit_code == 0, run.output
    return folder, store


def test_generic_prediction_csv_is_formula_safe(lab):
    import csv

    folder, store = _formula_dataset(lab)
    model, out = folder / "m.pt", folder / "pred.csv"
    run = lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--dev-split", "none",
                  "--out", model)
    assert run.exit_code == 0, run.output
    run = lab.cli("predict", model, "--store", store, "--split", "test", "--out", out)
    assert run.exit_code == 0 and "Traceback" not in run.output, run.output
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], cells[:12]
    assert rows[0] == ["id", "label", "proba_+plus", "proba_=cmd|' /C calc'!A0", "proba_@benign"]
    assert {r[0] for r in rows[1:]} == {f"'{m}" for m in (f"{FORMULAS[i % 4]}{i}" for i in range(30, 40))}
    assert all(r[1] == "" or r[1].startswith("'") for r in rows[1:]) and any(r[1] for r in rows[1:])


def test_competition_format_keeps_exact_ids_and_says_so_once(lab):
    data = lab.copy("formula_hm")
    f = data / "test_unseen.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    for r in rows:
        r["id"] = f"={r['id']}"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store, model, out = data / "s.h5", data / "m.pt", data / "sub.csv"
    assert lab.featurize(data, store).exit_code == 0
    assert lab.cli("train-head", "logreg", "--store", store, "--feature-set", SET, "--out", model).exit_code == 0
    run = lab.cli("predict", model, "--store", store, "--split", "test_unseen", "--out", out)
    assert run.exit_code == 0, run.output
    notes = [ln for ln in run.output.splitlines() if "would run them as formulas" in ln]
    assert len(notes) == 1 and f"{len(rows)} id(s)" in notes[0], run.output
    assert [ln.split(",")[0] for ln in out.read_text().splitlines()[1:]] == [r["id"] for r in rows]


# ---------------------------------------------------------------- 8. smaller ones
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_files_and_old_reports_are_removed_by_the_next_writer(lab):
    d = _work(lab, "stale")
    dead, alive = _dead_pid(), os.getppid()
    stale = [f".sub.csv.tmp-{dead}", f".rep.tmp-{dead}/report.json", f".rep.old-{dead}/report.json",
             f".rep.old-{dead}/clean_ids/dev_seen.txt"]
    kept = [f".sub.csv.tmp-{alive}", f".other.csv.tmp-{dead}", f".rep.old-{alive}/report.json", ".sub.csv.tmp-x"]
    for name in stale + kept:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text("left by a killed run")
    run = lab.cli("predict", d / "m.pt", "--store", d / "s.h5", "--split", "test_unseen", "--out", d / "sub.csv")
    assert run.exit_code == 0, run.output
    run = lab.cli("leakage", "report", lab.base, "--out", d / "rep", "--no-progress")
    assert run.exit_code == 0, run.output
    left = {p.name for p in d.iterdir() if p.name.startswith(".")}
    assert left == {n.split("/")[0] for n in kept}
    assert (d / "rep" / "manifest.json").is_file() and (d / "sub.csv").is_file()


@pytest.fixture
def read_only_dir(lab):
    """A tmpfs holding an earlier report and a submission, remounted read-only (needs mount rights)."""
    d = lab.root / "ro"
    d.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "memeprobe-test", str(d)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        assert lab.cli("leakage", "report", lab.base, "--out", d / "rep", "--no-progress").exit_code == 0
        (d / "sub.csv").write_text("id,proba,label\n")
        assert subprocess.run(["mount", "-o", "remount,ro", str(d)], capture_output=True).returncode == 0
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_read_only_file_system_is_one_line(lab, read_only_dir):
    d = read_only_dir
    before = tree(d)
    runs = [lab.cli("leakage", "report", lab.base, "--out", d / "rep", "--no-progress"),
            lab.cli("predict", lab.model, "--store", lab.clean, "--split", "test_unseen", "--out", d / "sub.csv"),
            lab.cli("train-head", "logreg", "--store", lab.clean, "--feature-set", SET, "--out", d / "new" / "m.pt"),
            lab.cli("make-sample", d / "sample")]
    for run, out in zip(runs, ["rep", "sub.csv", "new/m.pt", "sample"]):
        assert_clear(run, 2, f"cannot write {d / out}", "Read-only file system", "choose a writable path")
    assert tree(d) == before


def test_json_nested_too_deep_is_one_line(lab):
    deep = "[" * DEEP + "]" * DEEP
    data = lab.copy("deep_jsonl")
    f = data / "dev_seen.jsonl"
    lines = f.read_text().splitlines()
    lines[2] = '{"id": "1", "img": "img/x.png", "text": ' + deep + "}"
    f.write_text("\n".join(lines) + "\n")
    run = lab.cli("data", "summary", data)
    assert_clear(run, 2, str(f), "line 3", "nested too deeply")
    runs = lab.root / "deep_runs.jsonl"
    runs.write_text('{"run_id": "a", "metrics": {}}\n' + deep + "\n")
    run = lab.cli("runs", "list", "--runs", runs)
    assert_clear(run, 2, str(runs), "line 2")
    cell = lab.root / "deep_cell"
    cell.mkdir()
    (cell / "train.csv").write_text('id,text,label\n1,a,"' + "[" * DEEP + '"\n')
    run = lab.cli("data", "summary", cell / "train.csv")
    assert_clear(run, 2, "train.csv line 2", "not valid JSON")
    assert len(run.output) < 1000


def test_jsonl_strings_with_unicode_line_separators_are_read(lab):
    from memeprobe.data import load_dataset

    data = lab.copy("u2028")
    texts = {}
    for f in data.glob("*.jsonl"):
        rows = [json.loads(line) for line in f.read_text(encoding="utf-8").split("\n") if line]
        for k, r in enumerate(rows):
            r["text"] = f"{r['text']}\u2028second\u2029third\x85fourth\x1c{k}"
            texts[(f.stem, r["id"])] = r["text"]
        f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run = lab.cli("data", "summary", data, "--json")
    assert run.exit_code == 0, run.output
    assert sum(s["n"] for s in json.loads(run.output)["splits"].values()) == len(lab.dataset.memes)
    assert {(m.split, m.id): m.text for m in load_dataset(data).memes} == texts
    runs = data / "runs.jsonl"
    runs.write_text(json.dumps({"run_id": "u", "time": "t\u2028x", "metrics": {"dev": {"auroc": 0.5}}},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    run = lab.cli("runs", "list", "--runs", runs, "--metric", "dev.auroc")
    assert run.exit_code == 0 and "0.5000" in run.output, run.output


def test_constant_features_are_one_line(lab):
    data = lab.copy("constant")
    first = sorted((data / "img").iterdir())[0]
    for p in (data / "img").iterdir():
        if p != first:
            shutil.copy(first, p)
    d = lab.root / "constant_store"
    d.mkdir()
    assert lab.featurize(data, d / "s.h5").exit_code == 0
    before = tree(d)
    for head in ("logreg", "mlp", "retrieval"):
        run = lab.cli("train-head", head, "--store", d / "s.h5", "--feature-set", SET, "--out", d / "m.pt")
        assert_clear(run, 2, "constant", "nothing to learn")
        assert tree(d) == before
