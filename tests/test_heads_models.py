"""Heads on synthetic arrays with a planted signal: fusion, multi-label thresholds, save/load, seeds."""
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from memeprobe.errors import MemeprobeError
from memeprobe.heads._losses import bce, focal, make_loss
from memeprobe.heads.ensemble import EnsembleHead
from memeprobe.heads.factory import create_head, head_config
from memeprobe.heads.persist import load_model, save_model
from memeprobe.heads.thresholds import tune_thresholds
from memeprobe.heads.tuned import TunedHead

torch.set_num_threads(1)
D = 8


def interaction(n, seed):
    """y depends on the sign of image[0] * text[0]: invisible to each modality alone and to a linear model."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, D)), rng.normal(size=(n, D))
    return np.hstack([a, b]).astype(np.float32), ((a[:, 0] * b[:, 0]) > 0).astype(int)


@pytest.fixture(scope="module")
def xor_data():
    return interaction(2500, 0), interaction(500, 1), interaction(500, 2)


def _auroc(head, X, y):
    return roc_auc_score(y, head.positive_proba(X))


def test_fusion_beats_unimodal_and_linear_on_an_interaction(xor_data):
    (X, y), (Xd, yd), (Xt, yt) = xor_data
    fast = dict(epochs=15, patience=4, lr=3e-3, hidden=(64,), seed=0)
    align = create_head("fusion", fusion="align", split=D, proj_dim=32, blocks=(D, D), **fast).fit(X, y, Xd, yd)
    cross = create_head("fusion", fusion="cross", split=D, proj_dim=8, blocks=(D, D), **fast).fit(X, y, Xd, yd)
    image_only = create_head("mlp", blocks=(D,), **fast).fit(X[:, :D], y, Xd[:, :D], yd)
    linear = create_head("logreg", blocks=(D, D)).fit(X, y, Xd, yd)
    a_image = roc_auc_score(yt, image_only.positive_proba(Xt[:, :D]))
    a_linear = _auroc(linear, Xt, yt)
    assert abs(a_image - 0.5) < 0.1 and abs(a_linear - 0.5) < 0.1
    assert _auroc(align, Xt, yt) > 0.85
    assert _auroc(cross, Xt, yt) > 0.85


def test_late_and_concat_and_attention_train(xor_data):
    (X, y), (Xd, yd), _ = xor_data
    late = create_head("fusion", fusion="late", split=D, blocks=(D, D), epochs=2, hidden=(16,)).fit(X, y, Xd, yd)
    assert late.positive_proba(Xd).shape == (500,)
    # attention over 4 region tokens of width 2 plus one text vector; signal: token 3 plus text[0]
    rng = np.random.default_rng(0)
    R = rng.normal(size=(1500, 4, 2)).astype(np.float32)
    T = rng.normal(size=(1500, 4)).astype(np.float32)
    yy = (R[:, 3, 0] + T[:, 0] > 0).astype(int)
    XX = np.hstack([R.reshape(1500, -1), T])
    att = create_head("fusion", fusion="attention", split=8, image_tokens=4, text_tokens=1, d_model=16, n_heads=2,
                      n_layers=1, epochs=12, lr=3e-3, norm="none", blocks=(8, 4))
    att.fit(XX[:1000], yy[:1000], XX[1000:1250], yy[1000:1250])
    assert roc_auc_score(yy[1250:], att.positive_proba(XX[1250:])) > 0.85
    with pytest.raises(MemeprobeError, match="not divisible"):
        create_head("fusion", fusion="attention", split=8, image_tokens=3, blocks=(8, 4), epochs=1).fit(XX, yy)


def multilabel(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12)).astype(np.float32)
    logits = X[:, :4] * 1.5 - np.array([1.0, 2.0, 2.5, 3.0])  # rare classes: 0.5 is far too high a cut
    return X, (rng.random((n, 4)) < 1 / (1 + np.exp(-logits))).astype(int)


@pytest.mark.parametrize("name", ["logreg", "mlp"])
def test_per_class_thresholds_beat_fixed_half(name):
    (X, Y), (Xd, Yd), (Xt, Yt) = multilabel(3000, 0), multilabel(800, 1), multilabel(800, 2)
    cfg = {"epochs": 10} if name == "mlp" else {}
    head = create_head(name, blocks=(12,), **cfg).fit(X, Y, Xd, Yd)
    P = head.positive_proba(Xt)
    assert P.shape == (800, 4)
    t = tune_thresholds(Yd, head.positive_proba(Xd))
    np.testing.assert_array_equal(head.thresholds_, t)  # selected on dev: the head's fit tuned them there
    assert (t < 0.5).all()
    assert f1_score(Yt, P >= t, average="macro") > f1_score(Yt, P >= 0.5, average="macro") + 0.05


def test_logreg_picks_C_on_dev_and_handles_a_constant_class():
    (X, Y), (Xd, Yd) = multilabel(600, 3), multilabel(300, 4)
    Y[:, 3] = 0
    head = create_head("logreg", blocks=(12,), n_C=4).fit(X, Y, Xd, Yd).estimator_
    assert head.C_ in [c for c, _ in head.path_] and len(head.path_) == 4
    assert max(s for _, s in head.path_) == dict(head.path_)[head.C_]
    assert np.all(head.positive_proba(X)[:, 3] < 0.01)


@pytest.mark.parametrize("name,cfg", [
    ("logreg", {}),
    ("mlp", {"epochs": 2, "hidden": (16, 8), "loss": "focal", "label_smoothing": 0.1, "class_weight": "balanced"}),
    ("fusion", {"fusion": "cross", "split": D, "proj_dim": 4, "epochs": 2, "norm": "l2+standard"}),
    ("fusion", {"fusion": "cross", "split": D, "proj_dim": 4, "cross_rank": 2, "epochs": 2}),
    ("mlp", {"epochs": 2, "hidden": (16,), "precision": "bf16"}),
])
def test_save_load_round_trip_gives_identical_predictions(tmp_path, xor_data, name, cfg):
    (X, y), (Xd, yd), (Xt, _) = xor_data
    head = create_head(name, blocks=(D, D), **cfg).fit(X, y, Xd, yd)
    path = save_model(tmp_path / "m.pt", head, {"feature_sets": ["x:a"]})
    again, meta = load_model(path)
    assert meta == {"feature_sets": ["x:a"]}
    assert type(again.estimator_) is type(head.estimator_)
    assert again.estimator_.get_params() == head.estimator_.get_params()
    np.testing.assert_array_equal(again.thresholds_, head.thresholds_)
    np.testing.assert_array_equal(again.positive_proba(Xt), head.positive_proba(Xt))
    np.testing.assert_array_equal(again.predict(Xt), head.predict(Xt))


def test_low_rank_cross_fusion_still_learns_the_interaction(xor_data):
    (X, y), (Xd, yd), (Xt, yt) = xor_data
    head = create_head("fusion", fusion="cross", split=D, proj_dim=8, cross_rank=4, blocks=(D, D), epochs=15,
                       patience=4, lr=3e-3, hidden=(64,), seed=0).fit(X, y, Xd, yd)
    assert _auroc(head, Xt, yt) > 0.85


def test_unknown_precision_is_a_clear_error(xor_data):
    (X, y), (Xd, yd), _ = xor_data
    with pytest.raises(MemeprobeError, match="'precision' parameter of MLPHead must be"):
        create_head("mlp", blocks=(D, D), epochs=1, precision="fp8").fit(X, y, Xd, yd)


def test_seeds_reproducible_and_ensemble_round_trip(tmp_path, xor_data):
    (X, y), (Xd, yd), (Xt, _) = xor_data
    cfg = dict(blocks=(D, D), epochs=2, hidden=(16,))
    p0 = create_head("mlp", seed=0, **cfg).fit(X, y, Xd, yd).positive_proba(Xt)
    p0b = create_head("mlp", seed=0, **cfg).fit(X, y, Xd, yd).positive_proba(Xt)
    p1 = create_head("mlp", seed=1, **cfg).fit(X, y, Xd, yd).positive_proba(Xt)
    np.testing.assert_array_equal(p0, p0b)
    assert not np.allclose(p0, p1)
    members = [create_head("mlp", seed=s, **cfg).fit(X, y) for s in (0, 1)]
    ens = TunedHead(EnsembleHead.from_fitted(members), cv="prefit").fit(X, y)
    np.testing.assert_allclose(ens.positive_proba(Xt), (members[0].positive_proba(Xt) + members[1].positive_proba(Xt)) / 2)
    # prefit: the thresholds are tuned on the members' out-of-fold probabilities, nothing is refitted
    np.testing.assert_array_equal(ens.oof_, (members[0].oof_ + members[1].oof_) / 2)
    np.testing.assert_array_equal(ens.thresholds_, tune_thresholds(y, ens.oof_))
    again, _ = load_model(save_model(tmp_path / "e.pt", ens))
    np.testing.assert_array_equal(again.predict(Xt), ens.predict(Xt))


def test_losses():
    z = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.isclose(focal(z, t, gamma=0.0), bce(z, t))
    assert focal(z, t, gamma=2.0) < bce(z, t)  # down-weights easy examples
    smoothed = bce(z, t, label_smoothing=0.2)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z, t * 0.8 + 0.1)
    assert torch.isclose(smoothed, expected)
    with pytest.raises(MemeprobeError, match="unknown loss"):
        make_loss("hinge")


def test_factory_errors_and_config():
    assert head_config("mlp")["hidden"] == (256,)
    with pytest.raises(MemeprobeError, match="no parameter"):
        create_head("mlp", hiden=3)
    with pytest.raises(MemeprobeError, match="unknown head"):
        create_head("svm")
    X = np.zeros((4, 5), np.float32)
    with pytest.raises(MemeprobeError, match="blocks"):
        create_head("logreg", blocks=(2, 2)).fit(X, np.array([0, 1, 0, 1]))
    with pytest.raises(MemeprobeError, match="unlabeled"):
        create_head("logreg").fit(X, np.array([0, 1, -1, 1]))
