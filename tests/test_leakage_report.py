"""The report folder: written as a whole with a manifest, clean-id lists checked against it, odd ids."""
import json
import shutil
import warnings

import pytest

from memeprobe.data import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.errors import MemeprobeError, ReportError
from memeprobe.leakage.manifest import read_clean_ids
from memeprobe.leakage.analysis import analyze
from memeprobe.leakage.manifest import file_sha256
from memeprobe.leakage.report import spreadsheet_safe, write_report


def _report(root, out, **edits):
    """Analyse ``root`` (dev_seen rows edited: index -> new id) and write the report to ``out``."""
    if edits:
        f = root / "dev_seen.jsonl"
        rows = [json.loads(line) for line in f.read_text().splitlines()]
        for k, new_id in edits.items():
            rows[int(k[1:])]["id"] = new_id
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_dataset(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds, check_images=False)
    return result, write_report(result, ds, out)


@pytest.fixture
def sample(tmp_path):
    make_sample(tmp_path / "a", n=60, seed=0, image_size=64)
    return tmp_path / "a"


def test_manifest_lists_every_file_and_clean_counts(sample, tmp_path):
    result, paths = _report(sample, tmp_path / "out")
    doc = json.loads(paths["manifest"].read_text())
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert sorted(doc["files"]) == [f for f in files if f != "manifest.json"]
    for name, entry in doc["files"].items():
        assert entry["sha256"] == file_sha256(tmp_path / "out" / name)
    assert doc["clean_ids"] == {s: len(ids) for s, ids in result.clean_ids.items()}
    clean = read_clean_ids(tmp_path / "out", ["dev_seen", "test_unseen"])
    assert clean == {s: set(ids) for s, ids in result.clean_ids.items()}
    assert read_clean_ids(tmp_path / "out" / "clean_ids", ["dev_seen"])["dev_seen"] == set(result.clean_ids["dev_seen"])
    assert not list(tmp_path.glob(".out.*")), "temporary folders left behind"


def test_stale_clean_ids_beside_a_new_report_are_refused(sample, tmp_path):
    make_sample(tmp_path / "b", n=80, seed=1, image_size=64)
    _report(sample, tmp_path / "old")
    _report(tmp_path / "b", tmp_path / "new")
    stale = tmp_path / "new" / "clean_ids" / "dev_seen.txt"
    shutil.copy(tmp_path / "old" / "clean_ids" / "dev_seen.txt", stale)
    with pytest.raises(ReportError, match="dev_seen.txt .* does not match .*manifest.json"):
        read_clean_ids(tmp_path / "new", ["dev_seen"])
    with pytest.raises(MemeprobeError, match="does not match"):
        read_clean_ids(tmp_path / "new" / "clean_ids", ["dev_seen"])
    shutil.copytree(tmp_path / "old" / "clean_ids", tmp_path / "new" / "clean_ids", dirs_exist_ok=True)
    shutil.copy(tmp_path / "old" / "manifest.json", tmp_path / "new")  # old lists + manifest, new report.json
    with pytest.raises(MemeprobeError, match=r"new/(pairs.csv|report.html|report.json) differs from the file"):
        read_clean_ids(tmp_path / "new", ["dev_seen"])
    shutil.rmtree(tmp_path / "new")
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    (tmp_path / "new" / "report.json").unlink()
    with pytest.raises(MemeprobeError, match="report.json is missing"):
        read_clean_ids(tmp_path / "new", ["dev_seen"])
    (tmp_path / "old" / "manifest.json").unlink()  # report.json without its manifest: unfinished or older
    with pytest.raises(MemeprobeError, match="no manifest.json"):
        read_clean_ids(tmp_path / "old", ["dev_seen"])


def test_a_second_report_replaces_the_first_as_a_whole(sample, tmp_path):
    out = tmp_path / "out"
    _report(sample, out)
    before = (out / "report.json").read_text()
    (out / "clean_ids" / "extra_split.txt").write_text("x\n")
    (out / "notes.md").write_text("my notes")
    with pytest.raises(MemeprobeError, match=r"not part of a leakage report \(clean_ids/extra_split.txt, notes.md\)"):
        _report(sample, out)
    assert (out / "notes.md").read_text() == "my notes" and (out / "report.json").read_text() == before
    (out / "notes.md").unlink()
    (out / "clean_ids" / "extra_split.txt").unlink()
    (out / "manifest.json").unlink()  # a report without a manifest (older memeprobe) is replaced too
    _report(sample, out)
    assert (out / "manifest.json").is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(MemeprobeError, match="thesis.tex"):
        _report(sample, other)
    assert [p.name for p in other.iterdir()] == ["thesis.tex"]
    with pytest.raises(MemeprobeError, match="is a file"):
        _report(sample, other / "thesis.tex")
    assert (other / "thesis.tex").read_text() == "keep me"


def test_odd_ids_round_trip_through_clean_id_lists(sample, tmp_path):
    odd = ["sp\u2028x", "sp ace", "x\x85y", "=1+1"]  # ids a line-splitter other than "\n" would break
    result, _ = _report(sample, tmp_path / "out", **{f"r{k}": i for k, i in enumerate(odd)})
    assert set(odd) <= set(result.clean_ids["dev_seen"]) | set(result.pairs.id_b)
    read = read_clean_ids(tmp_path / "out", ["dev_seen"])["dev_seen"]
    assert read == set(result.clean_ids["dev_seen"])


def test_pairs_csv_neutralises_formulas_and_report_json_keeps_exact_ids(sample, tmp_path):
    import pandas as pd

    train = [json.loads(line) for line in (sample / "train.jsonl").read_text().splitlines()]
    f = sample / "dev_seen.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"]  # (the loader strips a leading tab)
    for k, i in enumerate(evil):  # each a copy of a train text: they are in pairs
        rows[k].update(id=i, text=train[k]["text"])
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, paths = _report(sample, tmp_path / "out")
    csv = pd.read_csv(paths["csv"], dtype={"id_a": str, "id_b": str}, keep_default_na=False)
    assert set(evil) <= set(pd.DataFrame(json.loads(paths["json"].read_text())["pairs"]).id_b)
    assert {f"'{i}" for i in evil} <= set(csv.id_b)
    text_cells = csv.select_dtypes(exclude="number").to_numpy().ravel()
    assert not [c for c in text_cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert csv.label_a.dtype.kind == "i" and (csv.label_a >= -1).all()  # numbers stay numbers
    cells = spreadsheet_safe(pd.DataFrame({"t": ["\tx", "\rx", "a=b", "", "x-"], "n": [-1, 2, 3, 4, 5]}))
    assert cells.t.tolist() == ["'\tx", "'\rx", "a=b", "", "x-"] and cells.n.tolist() == [-1, 2, 3, 4, 5]


def test_cli_reports_stages_as_plain_lines_when_stderr_is_not_a_terminal(sample, tmp_path):
    from click.testing import CliRunner

    from memeprobe.cli import main
    from memeprobe.leakage.analysis import STAGES

    run = CliRunner().invoke(main, ["leakage", "report", str(sample), "--out", str(tmp_path / "o"), "--json"])
    assert run.exit_code == 0, run.output
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("leakage: ")]
    assert [ln.split(" (")[0][len("leakage: "):] for ln in lines] == [STAGES[0], STAGES[1], STAGES[4],
                                                                       "writing the report"]
    assert "\r" not in run.stderr and json.loads(run.stdout)["files"]
    quiet = CliRunner().invoke(main, ["leakage", "report", str(sample), "--out", str(tmp_path / "o"), "--no-progress"])
    assert quiet.exit_code == 0 and "leakage: " not in quiet.stderr
