"""`memeprobe demo` end to end as a user runs it: every stage works, and fusion beats both modalities."""
import csv
import json
import re

from tests.helpers import cli


def test_demo_runs_end_to_end_and_fusion_beats_each_modality(tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", out)  # the defaults a user gets (1000 memes)

    auroc = {m.group(1).strip(): float(m.group(2))
             for m in re.finditer(r"^(text only \(logreg\)|image only \(logreg\)|text\+image \([^)]*\))\s+([0-9.]+)",
                                  result.output, re.M)}
    assert len(auroc) == 5, result.output
    best_unimodal = max(auroc["text only (logreg)"], auroc["image only (logreg)"])
    assert auroc["text+image (fusion, align)"] > best_unimodal + 0.2

    truth = json.loads((out / "data" / "ground_truth.json").read_text())
    with open(out / "submission_test_unseen.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [m["id"] for m in truth["memes"] if m["split"] == "test_unseen"]
    assert (out / "leakage" / "report.html").is_file()
    assert len((out / "runs.jsonl").read_text().splitlines()) == 5
