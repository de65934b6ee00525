"""Every number the heads print follows one protocol (issue 25): sweep ranks by the out-of-fold score and leaves dev
untouched, a class without positives has no F1 and macro averages leave it out, runs best ranks by the dataset's
official metric, multi-label and MAMI runs carry bootstrap CIs. Synthetic stores; the official metrics also on the
real datasets' stores (their labels, synthetic features; skipped without ../shared/data)."""
import json
import math
import shlex

import numpy as np
import pytest

from memeprobe.data import load_dataset
from memeprobe.data.mami import LABEL_NAMES as MAMI_TYPES
from memeprobe.store import ArraySpec, FeatureStore
from tests.test_heads_cli import make_store, run


def _runs(folder):
    return [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines()]


def test_sweep_ranks_out_of_fold_and_reproduces_without_selecting_on_dev(tmp_path):
    store = make_store(tmp_path / "s.h5")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"logreg": {"C": [0.0001, 0.01, 1.0], "norm": ["l2", "none"]}}))
    r = run("sweep", "--store", store, "--feature-set", "img", "--feature-set", "txt", "--space", space,
            "--search", "grid", "--jobs", 1, "--out", tmp_path / "best.pt", "--top", 6)
    assert r.exit_code == 0, r.output
    runs = _runs(tmp_path)
    assert all(x["select_on"] == "train" and x["in_sample"] == ["train"] and "cv" in x["metrics"] for x in runs)
    assert all(set(x["baselines"]) >= {"cv", "dev_seen"} for x in runs)  # trivial baselines beside every score
    best = max(runs, key=lambda x: x["metrics"]["cv"]["auroc"])
    assert f'"run": "{best["run_id"]}"' in r.output
    assert "out-of-fold on train (cv.auroc" in r.output and "dev_seen untouched" in r.output
    table = r.output.split("untouched:\n")[1].splitlines()
    assert table[0].split()[-2:] == ["cv.auroc", "dev_seen.auroc"]
    cv_col = [float(line.split()[-2]) for line in table[1:7]]
    assert cv_col == sorted(cv_col, reverse=True)  # ranked by the out-of-fold score, not by dev
    command = next(line for line in r.output.splitlines() if line.startswith("reproduce it with: "))
    args = shlex.split(command.removeprefix("reproduce it with: "))
    assert "--select-on" not in args and args[args.index("--dev-split") + 1] == "dev_seen"
    args[-1] = str(tmp_path / "again.pt")
    r = run(*args[1:], "--bootstrap", 0)
    assert r.exit_code == 0, r.output
    again = _runs(tmp_path)[-1]
    assert again["in_sample"] == ["train"]  # dev untouched by the reproduced run too
    for split in ("cv", "dev_seen"):
        assert again["metrics"][split]["auroc"] == best["metrics"][split]["auroc"]
        assert again["metrics"][split]["acc"] == best["metrics"][split]["acc"]


NAMES = ("Smears", "Loaded Language", "Name calling/Labeling", "Doubt")


def test_a_class_without_dev_positives_shows_a_dash_everywhere(tmp_path):
    store = make_store(tmp_path / "se.h5", fmt="semeval2021_task6", classes=NAMES, binary=None, absent_in_dev=(3,))
    r = run("train-head", "logreg", "--store", store, "--feature-set", "img", "--bootstrap", 200,
            "--out", tmp_path / "m.pt")
    assert r.exit_code == 0, r.output
    rec = _runs(tmp_path)[-1]
    dev, cv = rec["metrics"]["dev_seen"], rec["metrics"]["cv"]
    assert dev["per_class_f1"]["Doubt"] is None and dev["per_class_positives"]["Doubt"] == 0
    assert (dev["classes"], dev["macro_classes"]) == (4, 3) and (cv["classes"], cv["macro_classes"]) == (4, 4)
    assert dev["macro_f1"] == pytest.approx(np.mean([dev["per_class_f1"][n] for n in NAMES[:3]]))
    line = next(x for x in r.output.splitlines() if x.strip().endswith(" Doubt"))
    assert line.split()[:2] == ["–", "0"]  # per-class table: no F1, 0 positives
    assert "dev_seen: macro averages cover 3 of 4 classes (1 without positives in dev_seen" in r.output
    assert "macro_f1_ci" in r.output and "micro_f1_ci" in r.output  # multi-label runs print CIs like binary ones
    assert dev["micro_f1_ci_low"] <= dev["micro_f1"] <= dev["micro_f1_ci_high"]
    assert dev["macro_f1_ci_low"] <= dev["macro_f1"] <= dev["macro_f1_ci_high"]
    assert all(b["macro_classes"] == 3 for b in rec["baselines"]["dev_seen"].values())  # the baselines too
    r = run("predict", tmp_path / "m.pt", "--store", store, "--split", "dev_seen", "--out", tmp_path / "p.json")
    assert r.exit_code == 0 and "macro averages cover 3 of 4 classes" in r.output, r.output


def test_mami_runs_print_bootstrap_cis_of_the_task_scores(tmp_path):
    store = make_store(tmp_path / "mami.h5", fmt="mami", classes=MAMI_TYPES, binary="misogynous")
    r = run("train-head", "logreg", "--store", store, "--feature-set", "img", "--feature-set", "txt",
            "--target", "all", "--bootstrap", 200)
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[1].split()  # stderr has the thread plan's line
    assert {"mami_a_f1", "mami_a_f1_ci", "mami_b_f1", "mami_b_f1_ci"} <= set(header)
    dev = _runs(tmp_path)[-1]["metrics"]["dev_seen"]
    assert dev["mami_a_f1_ci_low"] < dev["mami_a_f1"] < dev["mami_a_f1_ci_high"]
    assert dev["mami_b_f1_ci_low"] < dev["mami_b_f1"] < dev["mami_b_f1_ci_high"]
    r = run("train-head", "logreg", "--store", store, "--feature-set", "img", "--feature-set", "txt",
            "--target", "label", "--bootstrap", 200)
    assert r.exit_code == 0 and "macro_f1_ci" in r.output, r.output  # task A as a binary target: its CI too
    binary = _runs(tmp_path)[-1]["metrics"]["dev_seen"]
    assert binary["macro_f1_ci_low"] < binary["macro_f1"] < binary["macro_f1_ci_high"]


def test_runs_best_ranks_by_the_official_metric_out_of_fold(tmp_path):
    store = make_store(tmp_path / "se.h5", fmt="semeval2021_task6", classes=NAMES, binary=None)
    for C in ("0.001", "0.1", "10"):
        assert run("train-head", "logreg", "--store", store, "--feature-set", "img", "--C", C,
                   "--bootstrap", 0).exit_code == 0
    assert run("train-head", "logreg", "--store", store, "--feature-set", "img", "--select-on", "dev",
               "--bootstrap", 0).exit_code == 0  # no out-of-fold score: left out of the default ranking
    runs = _runs(tmp_path)
    r = run("runs", "best", "--store", store, "--top", 3)
    assert r.exit_code == 0, r.output
    assert "ranked by micro-F1 (SemEval-2021 T6), out-of-fold" in r.output and "dev_seen shown untouched" in r.output
    assert "1 of 4 runs left out" in r.output
    best = max(runs[:3], key=lambda x: x["metrics"]["cv"]["micro_f1"])
    assert f'"run": "{best["run_id"]}"' in r.output and "cv.micro_f1" in r.output and "dev_seen.micro_f1" in r.output
    r = run("runs", "best", "--store", store, "--metric", "dev_seen.macro_f1")  # --metric says otherwise
    by_macro = max(runs, key=lambda x: x["metrics"]["dev_seen"]["macro_f1"])
    assert r.exit_code == 0 and f'"run": "{by_macro["run_id"]}"' in r.output
    r = run("runs", "list", "--store", store)
    assert r.exit_code == 0 and "cv.micro_f1" in r.output and all(x["run_id"] in r.output for x in runs)


# ---------------------------------------------------------------- the real datasets' labels
def _real_store(path, root):
    """A store of the real dataset at ``root`` with one 8-d feature set that carries its labels plus noise."""
    ds = load_dataset(root)
    st = FeatureStore.create(path, ds)
    n = len(st.ids)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8))
    y = np.column_stack([st.label[:, None] if st.binary_name is not None else np.zeros((n, 0)),
                         st.labels if len(st.label_names) else np.zeros((n, 0))])[:, :8]
    X[:, :y.shape[1]] += 1.5 * np.clip(y, 0, 1)
    st.add_feature_set("f", {"text_embed": ArraySpec((8,), "text")}, {"encoder": "synthetic:labels"})
    st.write_rows("f", np.arange(n), {"text_embed": X.astype(np.float16)}, "text")
    st.close()
    return path


@pytest.mark.parametrize("folder, targets, expected", [
    ("hateful_memes", ("label",), "AUROC (Hateful Memes)"),
    ("mami", ("label", "all", "labels"), "task-A macro-F1 (MAMI)"),
    ("semeval2021_task6", ("labels",), "micro-F1 (SemEval-2021 T6)"),
])
def test_runs_best_on_the_real_datasets_uses_their_official_metric(shared_data, tmp_path, folder, targets, expected):
    store = _real_store(tmp_path / "s.h5", shared_data / folder)
    for target in targets:
        assert run("train-head", "logreg", "--store", store, "--feature-set", "f", "--target", target, "--C", "1",
                   "--bootstrap", 0).exit_code == 0
    runs = _runs(tmp_path)
    r = run("runs", "best", "--store", store)
    assert r.exit_code == 0 and f"ranked by {expected}, out-of-fold" in r.output, r.output
    key = {"AUROC (Hateful Memes)": {"label": "auroc"}, "micro-F1 (SemEval-2021 T6)": {"labels": "micro_f1"},
           "task-A macro-F1 (MAMI)": {"label": "macro_f1", "all": "mami_a_f1"}}[expected]
    ranked = [x for x in runs if x["target"] in key]
    best = max(ranked, key=lambda x: x["metrics"]["cv"][key[x["target"]]])
    assert f'"run": "{best["run_id"]}"' in r.output
    if folder == "mami":  # task A from the binary target and from --target all is one score; task B is another
        assert "1 of 3 runs left out" in r.output
        a, b = (next(x for x in runs if x["target"] == t)["metrics"]["validation"] for t in ("label", "all"))
        assert not math.isnan(a["macro_f1"]) and not math.isnan(b["mami_a_f1"])
    if folder == "semeval2021_task6":  # 63 dev memes: techniques without dev positives have no F1
        dev = runs[-1]["metrics"]["dev"]
        absent = [n for n, c in dev["per_class_positives"].items() if c == 0]
        assert absent and all(dev["per_class_f1"][n] is None for n in absent)
        assert dev["macro_classes"] == dev["classes"] - len(absent)
