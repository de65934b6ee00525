"""Metrics and threshold tuning against sklearn and independent small computations."""
import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from memeprobe.errors import MemeprobeError
from memeprobe.heads.metrics import (auroc, binary_metrics, bootstrap_auroc_ci, decision_ci, dev_score,
                                     mami_weighted_f1, multilabel_metrics)
from memeprobe.heads.thresholds import best_threshold, tune_thresholds


def _scores(n, seed, signal=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    return y, np.round(p, 2)  # rounding makes ties, which both AUROC and tuning must handle


def test_auroc_equals_pairwise_probability_with_ties():
    y, p = _scores(300, 0)
    pos, neg = p[y == 1], p[y == 0]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size
    assert auroc(y, p) == pytest.approx(expected, abs=1e-12)
    assert np.isnan(auroc(np.ones(5), np.linspace(0, 1, 5)))


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_more_data():
    y, p = _scores(200, 1)
    low, high = bootstrap_auroc_ci(y, p, n_boot=300, seed=0)
    assert low < auroc(y, p) < high
    y2, p2 = _scores(3000, 1)
    low2, high2 = bootstrap_auroc_ci(y2, p2, n_boot=300, seed=0)
    assert (high2 - low2) < (high - low) / 2
    y3 = np.array([0] * 50 + [1] * 50)
    assert bootstrap_auroc_ci(y3, y3 * 0.5 + 0.25, n_boot=50) == (1.0, 1.0)


def test_binary_metrics_match_sklearn():
    y, p = _scores(400, 2)
    m = binary_metrics(y, p, threshold=0.6, n_boot=0)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["acc@0.5"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert m["acc"] == pytest.approx(accuracy_score(y, p >= 0.6))
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.6))
    # MAMI sub-task A: the mean of the F1 of both classes, from raw counts
    pred = (p >= 0.6).astype(int)
    f1s = []
    for cls in (1, 0):
        tp = np.sum((pred == cls) & (y == cls))
        fp = np.sum((pred == cls) & (y != cls))
        fn = np.sum((pred != cls) & (y == cls))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    assert m["macro_f1"] == pytest.approx(np.mean(f1s))
    assert (m["n"], m["positives"]) == (400, int(y.sum()))


def _mami_reference(Y, pred):
    """The MAMI scorer's sub-task B written out: per category mean F1 of both classes, weighted by gold positives."""
    total, weights = 0.0, 0
    for k in range(Y.shape[1]):
        g, q = Y[:, k].astype(bool), pred[:, k].astype(bool)
        f1s = []
        for cls in (True, False):
            tp = np.sum((q == cls) & (g == cls))
            fp = np.sum((q == cls) & (g != cls))
            fn = np.sum((q != cls) & (g == cls))
            prec = tp / (tp + fp) if tp else 0.0
            rec = tp / (tp + fn) if tp else 0.0
            f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        total += np.mean(f1s) * g.sum()
        weights += g.sum()
    return total / weights


def test_multilabel_metrics_semeval_and_mami_scorers():
    rng = np.random.default_rng(3)
    Y = (rng.random((150, 4)) < [0.4, 0.2, 0.1, 0.05]).astype(int)
    Y[:, 3] = 0  # a class without positives: no F1 (None), left out of the macro averages
    P = np.clip(Y * 0.5 + rng.random(Y.shape) * 0.6, 0, 1)
    t = np.array([0.5, 0.4, 0.6, 0.5])
    m = multilabel_metrics(Y, P, t, names=list("abcd"))
    pred = (P >= t).astype(int)
    assert pred[:, 3].any()  # d is predicted: sklearn's zero_division would make its F1 0, not 1
    assert m["micro_f1"] == pytest.approx(f1_score(Y, pred, average="micro", zero_division=1))
    assert m["macro_f1"] == pytest.approx(f1_score(Y, pred, average="macro", labels=[0, 1, 2]))
    assert m["macro_f1@0.5"] == pytest.approx(f1_score(Y, P >= 0.5, average="macro", labels=[0, 1, 2]))
    assert (m["classes"], m["macro_classes"], m["macro_auroc_classes"]) == (4, 3, 3)
    assert m["per_class_f1"]["d"] is None and m["per_class_positives"] == dict(zip("abcd", Y.sum(0).tolist()))
    for k, name in enumerate("abc"):
        assert m["per_class_f1"][name] == pytest.approx(f1_score(Y[:, k], pred[:, k]))
    assert "mami_b_f1" not in m and "mami_a_f1" not in m  # only metrics that fit the dataset
    assert mami_weighted_f1(Y, pred) == pytest.approx(_mami_reference(Y, pred))


def test_mami_b_scores_only_the_four_types_when_misogynous_is_a_column_too():
    rng = np.random.default_rng(4)
    types = (rng.random((200, 4)) < [0.3, 0.3, 0.2, 0.1]).astype(int)
    Y = np.column_stack([types.max(1), types])  # --target all: misogynous first, then the four types
    P = np.clip(Y * 0.4 + rng.random(Y.shape) * 0.7, 0, 1)
    m = multilabel_metrics(Y, P, 0.5, names=["misogynous", "shaming", "stereotype", "objectification", "violence"])
    pred = (P >= 0.5).astype(int)
    assert m["mami_b_f1"] == pytest.approx(_mami_reference(Y[:, 1:], pred[:, 1:]))
    assert m["mami_b_f1"] != pytest.approx(_mami_reference(Y, pred))


@pytest.mark.parametrize("metric", ["accuracy", "f1", "macro_f1"])
def test_best_threshold_matches_brute_force(metric):
    y, p = _scores(250, 4, signal=0.7)
    t = best_threshold(y, p, metric)

    def value(th):
        pred = (p >= th).astype(int)
        if metric == "accuracy":
            return accuracy_score(y, pred)
        return f1_score(y, pred, average="binary" if metric == "f1" else "macro", zero_division=0)

    cands = np.unique(p)
    brute = max(value(c) for c in itertools.chain(cands, [cands[-1] + 1]))
    assert value(t) == pytest.approx(brute)
    assert not np.isin(t, p)  # a midpoint, not glued to a score


def test_tune_thresholds_per_class_and_errors():
    rng = np.random.default_rng(5)
    Y = (rng.random((300, 3)) < 0.3).astype(int)
    P = np.clip(0.15 + 0.25 * Y + 0.2 * rng.random((300, 3)), 0, 1)  # positives ~0.4-0.6: 0.5 is a poor cut
    t = tune_thresholds(Y, P)
    assert t.shape == (3,)
    tuned = f1_score(Y, P >= t, average="macro")
    assert tuned > f1_score(Y, P >= 0.5, average="macro") + 0.1
    assert tune_thresholds(np.zeros(10, int), np.linspace(0, 1, 10))[0] == 0.5  # one class: default kept
    with pytest.raises(MemeprobeError, match="unknown threshold metric"):
        best_threshold(Y[:, 0], P[:, 0], "recall")


def test_dev_score_auroc_or_macro_ap():
    y, p = _scores(200, 6)
    assert dev_score(y[:, None], p[:, None]) == pytest.approx(roc_auc_score(y, p))
    Y = np.stack([y, 1 - y, np.zeros_like(y)], 1)
    from sklearn.metrics import average_precision_score

    expected = np.mean([average_precision_score(y, p), average_precision_score(1 - y, 1 - p)])
    assert dev_score(Y, np.stack([p, 1 - p, p], 1)) == pytest.approx(expected)


def test_plots_name_split_features_scores_support_and_na():
    from matplotlib import pyplot as plt
    from sklearn.metrics import average_precision_score, roc_auc_score

    from memeprobe.heads._plots import figures

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1)
    figs = figures(y, p, ["hateful"], [0.5], split="dev_seen", features="st-minilm:text_embed")
    roc, pr = figs["roc"].axes[0], figs["pr"].axes[0]
    assert "dev_seen" in roc.get_title() and "st-minilm:text_embed" in roc.get_title()
    assert [t.get_text() for t in roc.get_legend().get_texts()] == [f"hateful (AUROC {roc_auc_score(y, p):.3f})"]
    assert [t.get_text() for t in pr.get_legend().get_texts()] == [f"hateful (AP {average_precision_score(y, p):.3f})"]
    assert "per_class_f1" not in figs
    # 12 classes (a legend on the multi-class ROC too); class 11 has no gold positive in this split
    Y = (rng.random((200, 12)) < 0.3).astype(int)
    Y[:, 11] = 0
    P = np.clip(0.4 * Y + 0.6 * rng.random((200, 12)), 0, 1)
    names = [f"c{k}" for k in range(12)]
    figs = figures(Y, P, names, np.full(12, 0.5), split="dev", features="clip")
    assert len(figs["roc"].axes[0].get_legend().get_texts()) == 11  # every class with both values
    bars = figs["per_class_f1"].axes[0]
    ticks = [t.get_text() for t in bars.get_yticklabels()]
    assert ticks[0] == f"c0 (n={Y[:, 0].sum()})" and ticks[11] == "c11 (n=0)"
    values = [t.get_text() for t in bars.texts]
    assert values[11] == "–" and values[0] != "–" and bars.patches[11].get_width() == 0
    assert float(values[0]) == pytest.approx(f1_score(Y[:, 0], P[:, 0] >= 0.5), abs=0.005)
    assert "per-class F1" in bars.get_title() and "dev" in bars.get_title()
    for fig in figs.values():
        plt.close(fig)


def test_f1_bootstrap_cis_are_those_of_the_resampled_rows_scored_by_sklearn():
    rng = np.random.default_rng(5)
    names = ["misogynous", "shaming", "stereotype", "objectification", "violence"]
    types = (rng.random((120, 4)) < [0.3, 0.3, 0.2, 0.1]).astype(int)
    Y = np.column_stack([types.max(1), types])
    pred = np.where(rng.random(Y.shape) < 0.8, Y, 1 - Y)
    ci = decision_ci(Y, pred, names, n_boot=200, seed=7)
    idx = np.random.default_rng(7).integers(0, len(Y), (200, len(Y)))  # the same resamples
    def pct(scores):
        return pytest.approx([np.quantile(scores, 0.025), np.quantile(scores, 0.975)])
    assert [ci["micro_f1_ci_low"], ci["micro_f1_ci_high"]] == pct(
        [f1_score(Y[i], pred[i], average="micro") for i in idx])
    assert [ci["mami_a_f1_ci_low"], ci["mami_a_f1_ci_high"]] == pct(
        [f1_score(Y[i, 0], pred[i, 0], average="macro", labels=[0, 1]) for i in idx])
    assert [ci["mami_b_f1_ci_low"], ci["mami_b_f1_ci_high"]] == pct([_mami_reference(Y[i, 1:], pred[i, 1:]) for i in idx])
    m = multilabel_metrics(Y, pred, 0.5, names, n_boot=200, seed=7)
    assert m["micro_f1_ci_low"] < m["micro_f1"] < m["micro_f1_ci_high"]
    assert m["mami_a_f1_ci_low"] < m["mami_a_f1"] < m["mami_a_f1_ci_high"]
    b = binary_metrics(Y[:, 0], pred[:, 0] * 0.6 + 0.2, 0.5, n_boot=200, seed=7)  # MAMI task A as a binary target
    assert b["macro_f1"] == pytest.approx(m["mami_a_f1"])
    assert (b["macro_f1_ci_low"], b["macro_f1_ci_high"]) == pytest.approx((ci["mami_a_f1_ci_low"],
                                                                           ci["mami_a_f1_ci_high"]))


def test_a_split_without_positives_has_no_f1_and_macro_leaves_the_class_out():
    y, p = np.zeros(40, int), np.linspace(0, 1, 40)
    m = binary_metrics(y, p, 0.5, n_boot=50)
    pred = (p >= 0.5).astype(int)
    assert m["f1"] is None and m["macro_classes"] == 1
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, pos_label=0))  # the negative class alone
