"""train-head measures every split selection did not see against train on the head's features, warns where a
split clearly differs, and keeps the measurement in runs.jsonl."""
import json

from click.testing import CliRunner

from memeprobe.cli import main
from tests.test_leakage_shift import shifted  # noqa: F401 (the fixture: test_unseen moved away from train)


def test_train_head_warns_for_a_shifted_split_and_records_it(shifted, tmp_path):  # noqa: F811
    _, path = shifted
    res = CliRunner().invoke(main, ["train-head", "logreg", "--store", str(path), "--feature-set", "st-fake",
                                    "--bootstrap", "50"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [line.split(":")[1].strip() for line in lines if line.startswith("shift: ")] == [
        "dev_seen vs train", "test_unseen vs train"]  # the untouched dev split and the unlabelled one
    warned = [line for line in lines if line.startswith("warning: ")]
    assert len(warned) == 1 and warned[0].startswith("warning: test_unseen differs from train (domain AUROC ")
    assert warned[0].endswith("CV and dev estimates assume it does not")
    record = [json.loads(line) for line in (path.parent / "runs.jsonl").read_text().splitlines()][-1]
    by_split = {r["split"]: r for r in record["shift"]}
    assert by_split["test_unseen"]["differs"] and not by_split["dev_seen"]["differs"]
    assert by_split["test_unseen"]["features"] == "st-fake" and record["shift_notes"] == []


def test_a_split_selection_used_is_not_measured(shifted, tmp_path):  # noqa: F811
    _, path = shifted
    res = CliRunner().invoke(main, ["train-head", "logreg", "--store", str(path), "--feature-set", "st-fake",
                                    "--select-on", "train+dev", "--bootstrap", "50"])
    assert res.exit_code == 0, res.output
    assert [line.split(":")[1].strip() for line in res.output.splitlines() if line.startswith("shift: ")] == [
        "test_unseen vs train"]
