"""Selection by cross-validation, thresholds that generalise, decision rules, baselines, retrieval head."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.errors import DatasetError, MemeprobeError, ModelError
from memeprobe.heads._experiment import run_experiment
from memeprobe.heads.factory import create_head
from memeprobe.heads.metrics import baselines
from memeprobe.heads.persist import load_model, save_model
from memeprobe.heads.runs import append_runs, read_runs
from memeprobe.heads.selection import cv_folds, duplicate_groups
from memeprobe.heads.submission import read_submission, write_mami
from memeprobe.heads.thresholds import decide, fit_rule, tune_thresholds
from memeprobe.store.features import Features

torch.set_num_threads(1)


def linear(n, seed, d=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0.4).astype(int)


def feats(X, y):
    return Features(X, np.array([f"m{i}" for i in range(len(X))]), y, np.arange(len(X)), [X.shape[1]], ["text"])


def test_folds_stratify_and_keep_duplicates_together():
    X, y = linear(300, 0)
    X[100:110] = X[0]  # ten copies of row 0
    folds = cv_folds(y, 5, 0, duplicate_groups(X))
    assert len(folds) == 5 and sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(300))
    home = [i for i, (_, te) in enumerate(folds) if 0 in te]
    assert all(set(range(100, 110)) <= set(folds[h][1]) for h in home)
    rates = [y[te].mean() for _, te in folds]
    assert max(rates) - min(rates) < 0.12
    Y = (np.random.default_rng(1).random((200, 4)) < [0.5, 0.2, 0.05, 0.03]).astype(int)
    for _, te in cv_folds(Y, 5, 0):  # iterative stratification: every class reaches every fold it can
        assert (Y[te].sum(0)[:3] >= 1).all()


def test_single_class_training_split_is_refused():
    X, _ = linear(50, 0)
    with pytest.raises(DatasetError, match="only one class"):
        run_experiment("logreg", {}, {"train": feats(X, np.zeros(50, int))}, "train", None, ["y"])


def test_dev_with_one_class_is_refused_when_selecting_on_dev():
    (X, y), (Xd, _) = linear(200, 0), linear(40, 1)
    data = {"train": feats(X, y), "dev": feats(Xd, np.ones(40, int))}
    with pytest.raises(DatasetError, match="dev split used for selection"):
        run_experiment("logreg", {}, data, "train", "dev", ["y"], select_on="dev")
    res = run_experiment("logreg", {}, data, "train", "dev", ["y"])  # the default leaves dev alone
    assert "cv" in res.metrics and res.in_sample == ["train"]


def test_default_protocol_never_looks_at_dev_labels():
    (X, y), (Xd, yd) = linear(400, 0), linear(150, 1)
    a = run_experiment("logreg", {}, {"train": feats(X, y), "dev": feats(Xd, yd)}, "train", "dev", ["y"])
    b = run_experiment("logreg", {}, {"train": feats(X, y), "dev": feats(Xd, 1 - yd)}, "train", "dev", ["y"])
    assert a.model.estimator_.C_ == b.model.estimator_.C_ and np.array_equal(a.model.thresholds_, b.model.thresholds_)
    assert np.allclose(a.model.estimator_.coef_, b.model.estimator_.coef_)
    assert a.metrics["dev"]["auroc"] == pytest.approx(1 - b.metrics["dev"]["auroc"])
    # the out-of-fold estimate is an estimate: close to the untouched split, far below in-sample for a 1-NN vote
    assert abs(a.metrics["cv"]["auroc"] - a.metrics["dev"]["auroc"]) < 0.06
    # dev selection marks dev as in-sample
    c = run_experiment("logreg", {}, {"train": feats(X, y), "dev": feats(Xd, yd)}, "train", "dev", ["y"],
                       select_on="dev")
    assert c.in_sample == ["train", "dev"] and "cv" not in c.metrics


def test_mlp_gets_out_of_fold_thresholds_too():
    X, y = linear(300, 0)
    res = run_experiment("mlp", {"epochs": 3}, {"train": feats(X, y)}, "train", None, ["y"])
    assert res.model.oof_.shape == (300,) and "cv" in res.metrics
    assert any("assumes the selection data's prior" in n for n in res.notes)


def test_thresholds_shrink_towards_global_for_rare_classes():
    rng = np.random.default_rng(0)
    Y = (rng.random((400, 3)) < [0.4, 0.3, 0.005]).astype(int)
    P = np.clip(0.35 * Y + rng.random(Y.shape) * 0.7, 0, 1)
    glob = tune_thresholds(Y, P, "f1", shrinks=(np.inf,))
    assert np.allclose(glob, glob[0])
    t = tune_thresholds(Y, P, "f1", shrinks=(20.0,))
    own = tune_thresholds(Y, P, "f1", shrinks=(0.0,))
    w = Y.sum(0) / (Y.sum(0) + 20)
    assert np.allclose(t, w * own + (1 - w) * glob[0])
    assert abs(t[2] - glob[0]) < abs(own[2] - glob[0]) or own[2] == glob[0]


def test_decision_rule_cardinality_and_mami_hierarchy():
    Y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    rule = fit_rule(Y)
    assert rule["min_labels"] == 1 and rule["max_labels"] == 2 and rule["parent"] == -1
    P = np.array([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    assert decide(P, [0.5] * 3, rule).tolist() == [[0, 0, 1], [1, 1, 0]]
    names = ["misogynous", "shaming", "stereotype", "objectification", "violence"]
    mami = fit_rule(np.array([[0, 0, 0, 0, 0], [1, 1, 0, 0, 0]]), names)
    assert mami["parent"] == 0 and mami["min_labels"] == 0
    pred = decide(np.array([[0.2, 0.9, 0.9, 0.1, 0.1], [0.8, 0.9, 0.1, 0.1, 0.1]]), [0.5] * 5, mami)
    assert pred.tolist() == [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0]]


def test_mami_answer_never_has_a_type_without_misogynous(tmp_path):
    write_mami(tmp_path / "answer.txt", ["a", "b"], np.array([[0, 1, 1, 0, 0], [1, 0, 1, 0, 0]]))
    assert read_submission(tmp_path / "answer.txt", "mami") == [("a", [0, 0, 0, 0, 0]), ("b", [1, 0, 1, 0, 0])]


def test_trivial_baselines():
    y_ref = np.array([0] * 70 + [1] * 30)
    y = np.array([0] * 40 + [1] * 60)
    b = baselines(y_ref, y)
    assert b["majority"]["acc"] == pytest.approx(0.4) and b["majority"]["auroc"] == pytest.approx(0.5)
    assert 0.4 < b["random"]["acc"] < 0.6
    Y_ref = np.array([[1, 1, 0]] * 5 + [[1, 0, 0]] * 3 + [[0, 1, 1]] * 2)
    m = baselines(Y_ref, np.array([[1, 1, 0], [0, 1, 0]]), ["a", "b", "c"])
    assert m["most-frequent set"]["micro_f1"] == pytest.approx(6 / 7)  # {a, b} twice: tp 3, fp 1, fn 0
    assert "top-2 labels" in m and "random" in m


def test_retrieval_head_leave_one_out_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 16))
    c = rng.integers(0, 6, 600)
    X = (centers[c] + 0.5 * rng.normal(size=(600, 16))).astype(np.float32)
    y = (c % 2).astype(int) ^ (rng.random(600) < 0.1)  # 10 % label noise
    res = run_experiment("retrieval", {}, {"train": feats(X[:500], y[:500]), "test": feats(X[500:], y[500:])},
                         "train", None, ["y"])
    assert res.metrics["test"]["auroc"] > 0.8 and res.metrics["cv"]["auroc"] > 0.8
    assert res.model.estimator_.k_ in (5, 10, 20, 50, 100) and res.model.estimator_.temperature_ in (0.05, 0.1, 0.2, 0.5)
    Y = np.column_stack([y, (c >= 3).astype(int)])
    head = create_head("retrieval").fit(X[:500], Y[:500])
    # a row is never voted on by its own copy: predicting the training rows gives the leave-one-out estimate
    assert np.allclose(head.oof_, head.positive_proba(X[:500]))
    assert not np.allclose(head.oof_, create_head("retrieval", k=1).fit(X[:500], Y[:500]).oof_)


def test_retrieval_copies_of_a_query_do_not_vote():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 30)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    Q = np.eye(30, dtype=np.float32)[:20]  # queries orthogonal to each other: never each other's neighbours
    with_copies = create_head("retrieval", k=5, temperature=0.1).fit(np.vstack([X, Q]), np.r_[y, np.ones(20, int)])
    without = create_head("retrieval", k=5, temperature=0.1).fit(X, y)
    # each query's copy (labelled 1) is left out of its vote: the same 5 rows of X vote in both heads
    assert np.allclose(with_copies.positive_proba(Q), without.positive_proba(Q), atol=1e-6)
    assert not np.allclose(with_copies.positive_proba(Q * 1.001 + 0.01), without.positive_proba(Q * 1.001 + 0.01))


def test_crafted_model_files_get_one_clear_error(tmp_path):
    X, y = linear(200, 0)
    save_model(tmp_path / "m.pt", create_head("mlp", hidden=(8,), epochs=1).fit(X, y))
    good = torch.load(tmp_path / "m.pt", weights_only=True)
    cases = {"missing key": lambda d: d["model"].pop("fitted"),
             "device": lambda d: d["model"]["params"].__setitem__("device", "cuda:3"),
             "huge hidden": lambda d: d["model"]["params"].__setitem__("hidden", [100000]),
             "bad type": lambda d: d["model"]["fitted"].__setitem__("blocks", "6")}
    for name, spoil in cases.items():
        d = torch.load(tmp_path / "m.pt", weights_only=True)
        spoil(d)
        torch.save(d, tmp_path / "bad.pt")
        with pytest.raises(ModelError, match="bad.pt"):
            load_model(tmp_path / "bad.pt")
    assert good["model"]["fitted"]["rule"] == {"min_labels": 0, "max_labels": 0, "parent": -1}


def test_runs_table_appends_atomically_and_names_a_bad_line(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_runs(path, [{"run_id": "a", "metrics": {}}])
    append_runs(path, [{"run_id": "b", "metrics": {}}])
    assert [r["run_id"] for r in read_runs(path)] == ["a", "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["runs.jsonl"]  # no temp file left
    with open(path, "a") as f:
        f.write("[1, 2]\n")
    with pytest.raises(MemeprobeError, match="line 3"):
        read_runs(path)


def test_cli_table_shows_cv_baselines_and_gap(tmp_path):
    from tests.test_heads_cli import make_store

    store = make_store(tmp_path / "hm.h5")
    r = CliRunner().invoke(main, ["train-head", "logreg", "--store", str(store), "--feature-set", "img",
                                  "--feature-set", "txt", "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 0, r.output
    for text in ("cv (out-of-fold)", "· majority", "· random", "gap", "untouched: dev_seen", "assumes"):
        assert text in r.output
    record = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])
    assert record["select_on"] == "train" and record["in_sample"] == ["train"]
    assert record["baselines"]["dev_seen"]["majority"]["auroc"] == pytest.approx(0.5)
    r = CliRunner().invoke(main, ["train-head", "logreg", "--store", str(store), "--feature-set", "img",
                                  "--select-on", "dev"])
    assert r.exit_code == 0 and "dev_seen (in-sample)" in r.output


def test_single_label_multiclass_gets_argmax_decisions_and_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(450, 6)).astype(np.float32)
    c = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(450, 3)), 1)
    Y = np.eye(3, dtype=int)[c]
    res = run_experiment("logreg", {}, {"train": feats(X[:350], Y[:350]), "test": feats(X[350:], Y[350:])},
                         "train", None, ["low", "mid", "high"])
    assert res.model.rule_ == {"min_labels": 1, "max_labels": 1, "parent": -1}
    pred = res.model.predict(X[350:])
    assert (pred.sum(1) == 1).all()
    assert np.array_equal(pred.argmax(1), res.model.positive_proba(X[350:]).argmax(1))
    assert res.metrics["test"]["accuracy"] > 0.7 and res.metrics["test"]["accuracy"] == pytest.approx(
        (pred.argmax(1) == c[350:]).mean())


def test_select_on_train_plus_dev_cross_validates_and_refits_on_both():
    (X, y), (Xd, yd) = linear(300, 0), linear(100, 1)
    res = run_experiment("logreg", {}, {"train": feats(X, y), "dev": feats(Xd, yd)}, "train", "dev", ["y"],
                         select_on="train+dev")
    assert res.in_sample == ["train", "dev"] and res.model.oof_.shape == (400,)
    assert res.metrics["cv"]["n"] == 400
    with pytest.raises(MemeprobeError, match="needs a dev split"):
        run_experiment("logreg", {}, {"train": feats(X, y)}, "train", None, ["y"], select_on="train+dev")


def test_ensemble_of_head_kinds_weights_from_out_of_fold(tmp_path):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 6))
    c = rng.integers(0, 8, 700)
    X = (centers[c] + rng.normal(size=(700, 6))).astype(np.float32)
    y = ((c % 2) ^ (X[:, 0] > 1)).astype(int)  # part cluster identity (kNN), part linear
    res = run_experiment("ensemble", {"members": ["logreg", "retrieval"]},
                         {"train": feats(X[:500], y[:500]), "test": feats(X[500:], y[500:])}, "train", None, ["y"])
    model = res.model.estimator_
    assert model.weights_.sum() == pytest.approx(1) and len(model.estimators_) == 2
    members_oof = [roc_auc_score(y[:500], m.oof_) for m in model.estimators_]
    assert res.metrics["cv"]["auroc"] >= max(members_oof) - 1e-9  # the grid holds each member alone
    expected = sum(w * m.positive_proba(X[500:]) for w, m in zip(model.weights_, model.estimators_))
    assert np.allclose(model.positive_proba(X[500:]), expected)
    save_model(tmp_path / "e.pt", res.model)
    assert np.allclose(load_model(tmp_path / "e.pt")[0].positive_proba(X[500:]), expected)
    with pytest.raises(MemeprobeError, match="two or more member heads"):
        run_experiment("ensemble", {"members": ["logreg"]}, {"train": feats(X, y)}, "train", None, ["y"])


def test_retrieval_contrastive_projection_learns_the_label_direction(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12)).astype(np.float32)
    X[:, 0] *= 0.3  # the label lives in a low-variance direction that plain cosine kNN mostly ignores
    y = (X[:, 0] > 0).astype(int)
    data = {"train": feats(X[:450], y[:450]), "test": feats(X[450:], y[450:])}
    plain = run_experiment("retrieval", {}, data, "train", None, ["y"])
    proj = run_experiment("retrieval", {"proj_dim": 4, "epochs": 60, "lr": 0.05}, data, "train", None, ["y"])
    assert proj.metrics["test"]["auroc"] > plain.metrics["test"]["auroc"] + 0.05
    assert proj.model.oof_.shape == (450,)  # out-of-fold from k-fold refits, not leave-one-out
    save_model(tmp_path / "p.pt", proj.model)
    assert np.allclose(load_model(tmp_path / "p.pt")[0].positive_proba(X[450:]), proj.model.positive_proba(X[450:]))
