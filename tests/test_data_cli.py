"""``memeprobe data summary`` (tables and --json) and ``memeprobe make-sample`` through the CLI."""
import json

from tests.helpers import cli, make_hm, write_jsonl


def run(*args):
    return cli(*args).output


def test_summary_json_counts(tmp_path):
    make_hm(tmp_path)
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "00003.png").write_bytes(b"x")
    s = json.loads(run("data", "summary", tmp_path, "--json"))
    assert s["format"] == "hateful_memes" and s["binary_name"] == "hateful"
    assert s["splits"]["train"] == {"n": 3, "labeled": 3, "label_counts": {"0": 1, "1": 2}, "images_found": 0,
                                    "images_missing": 3, "no_image": 0, "empty_text": 0, "duplicate_ids": 0}
    assert s["splits"]["dev_unseen"]["images_found"] == 1 and s["splits"]["dev_unseen"]["images_missing"] == 2
    assert s["splits"]["test_unseen"]["labeled"] == 0
    assert s["notes"] == ["dev_seen and dev_unseen share 2 ids (both splits kept)"]


def test_summary_human_tables(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [
        {"id": 1, "text": "a", "labels": ["x", "y"]}, {"id": 2, "text": "b", "labels": ["y"]}])
    out = run("data", "summary", tmp_path / "train.jsonl")
    lines = out.splitlines()
    assert lines[0].startswith("format: generic")
    header = lines[2].split()
    assert header[:3] == ["split", "memes", "labeled"]
    assert lines[3].split()[:3] == ["train", "2", "2"]
    label_rows = {ln.split()[0]: ln.split()[1:] for ln in lines[5:]}
    assert label_rows == {"label": ["train"], "x": ["1"], "y": ["2"]}


def test_every_data_command_has_help():
    for args in (["data", "--help"], ["data", "summary", "--help"], ["make-sample", "--help"]):
        assert "Usage:" in run(*args)
    assert "--allow-empty-text" not in run("data", "summary", "--help")  # summary counts empty texts instead


def test_make_sample_writes_a_loadable_dataset(tmp_path):
    out = tmp_path / "sample"
    text = run("make-sample", out, "--n", 40, "--seed", 3)
    rows = {f.stem: sum(1 for line in f.read_text().splitlines() if line.strip()) for f in out.glob("*.jsonl")}
    assert sum(rows.values()) == 40
    assert f"wrote 40 memes to {out}" in text
    for split, n in rows.items():
        assert f"{split} {n}" in text
    assert (out / "ground_truth.json").is_file() and str(out / "ground_truth.json") in text
    s = json.loads(run("data", "summary", out, "--json"))
    assert s["format"] == "hateful_memes"
    assert all(v["images_missing"] == 0 and v["images_found"] == v["n"] for v in s["splits"].values())
