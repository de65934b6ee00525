"""The heads are scikit-learn classifiers: sklearn's own estimator checks (over the plain heads, the ensemble and
the TunedHead wrapper that create_head makes), clone, pickling, NotFittedError."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from memeprobe.errors import ConfigError, DatasetError
from memeprobe.heads.ensemble import EnsembleHead
from memeprobe.heads.factory import create_head, head_class
from memeprobe.heads.tuned import TunedHead

# tiny but learnable settings: the checks fit each head dozens of times on a few hundred rows
FAST = {
    "logreg": dict(C=1.0),
    "mlp": dict(hidden=(16,), epochs=20, lr=1e-2, batch_size=64),
    "fusion": dict(fusion="concat", split=1, hidden=(16,), epochs=20, lr=1e-2, batch_size=64, norm="standard"),
    "retrieval": dict(k=5),
}
HEADS = [head_class(name)(**cfg) for name, cfg in FAST.items()]
ENSEMBLE = EnsembleHead([create_head("logreg", C=1.0), create_head("retrieval", k=5)])
TUNED = [create_head("logreg", cv=3, **FAST["logreg"]), create_head("retrieval", **FAST["retrieval"]),
         TunedHead(EnsembleHead([head_class("logreg")(C=1.0), head_class("retrieval")(k=5)], weights=None), cv=3)]

# expected failures, each with its reason (the rest of sklearn's checks pass)
EXPECTED_FAILURES = {
    # a one-column 2-D y is memeprobe's one-label multi-label target (`labels` with one class): it stays
    # 2-D, with (n, 1) probabilities, instead of being flattened with a DataConversionWarning
    "check_supervised_y_2d": "a one-column 2-D target is a one-label multi-label target",
    # class_weight is None or "balanced" (positives weighted per output); per-class weight dicts are refused
    "check_class_weight_classifiers": "class_weight takes None or 'balanced', not a dict",
}
FUSION_FAILURES = {  # a fusion head splits X into an image and a text part: one column cannot be split
    "check_fit2d_1feature": "fusion needs two parts",
}


TUNED_FAILURES = {  # as sklearn's TunedThresholdClassifierCV: predict follows the tuned thresholds
    "check_classifiers_train": "predict decides at the tuned thresholds, not at probability 0.5",
}


def _expected_failures(estimator):
    if isinstance(estimator, TunedHead):
        return {**_expected_failures(estimator.estimator), **TUNED_FAILURES}
    if isinstance(estimator, EnsembleHead):
        return {"check_supervised_y_2d": EXPECTED_FAILURES["check_supervised_y_2d"]}
    out = dict(EXPECTED_FAILURES)
    if estimator.name == "fusion":
        out.update(FUSION_FAILURES)
    if "class_weight" not in estimator.get_params():
        out.pop("check_class_weight_classifiers")
    return out


@parametrize_with_checks([*HEADS, ENSEMBLE, *TUNED], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.mark.parametrize("name", list(FAST))
def test_not_fitted_clone_pickle_and_shapes(name):
    X, y = _data()
    head = head_class(name)(**FAST[name])
    with pytest.raises(NotFittedError):
        head.predict_proba(X)
    assert not hasattr(head, "transform")  # sklearn would take a head for a transformer
    fitted = clone(head).fit(X, y)
    assert list(fitted.classes_) == [0, 1] and fitted.predict_proba(X).shape == (len(X), 2)
    np.testing.assert_allclose(fitted.predict_proba(X)[:, 1], fitted.positive_proba(X))
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert fitted.score(X, y) > 0.8
    # string classes and a multi-hot target
    names = np.array(["cat", "dog", "eel"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    multi = clone(head).fit(X, names)
    assert list(multi.classes_) == ["cat", "dog", "eel"] and set(multi.predict(X)) <= set(names)
    np.testing.assert_allclose(multi.predict_proba(X).sum(1), 1.0)
    Y = np.column_stack([y, X[:, 2] > 0, X[:, 3] > 0]).astype(int)
    ml = clone(head).fit(X, Y)
    assert ml.predict_proba(X).shape == (len(X), 3) and ml.predict(X).shape == (len(X), 3)


def test_fitted_fusion_pickles_and_ensemble_clones():
    X, y = _data(200)
    for fusion in ("align", "cross", "attention"):
        head = head_class("fusion")(fusion=fusion, split=2, hidden=(8,), epochs=2, d_model=8, n_heads=2,
                                    n_layers=1).fit(X, y)
        again = pickle.loads(pickle.dumps(head))
        np.testing.assert_array_equal(again.predict_proba(X), head.predict_proba(X))
    ens = clone(ENSEMBLE)
    assert ens.members[0] is not ENSEMBLE.members[0] and ens.get_params()["weights"] == "oof"
    assert cross_val_score(ens, X, y, cv=3).mean() > 0.8  # an estimator sklearn's tools can drive
    p = pickle.loads(pickle.dumps(ens.fit(X, y))).predict_proba(X)
    np.testing.assert_allclose(p, ens.predict_proba(X))


def test_parameters_are_validated_at_fit_with_memeprobe_errors():
    X, y = _data()
    with pytest.raises(ConfigError, match="'norm' parameter of LogRegHead"):
        create_head("logreg", norm="l3").fit(X, y)
    with pytest.raises(ConfigError, match="'fusion' parameter of FusionHead"):
        create_head("fusion", fusion="sum", split=2).fit(X, y)
    with pytest.raises(ConfigError, match="'k' parameter of RetrievalHead"):
        create_head("retrieval", k=0).fit(X, y)
    with pytest.raises(DatasetError, match="only one class"):
        create_head("logreg").fit(X, np.ones(len(X), int))
    with pytest.raises(ConfigError, match="non-negative weights"):
        EnsembleHead([create_head("logreg")], weights=[-1.0]).fit(X, y)


def test_string_class_head_saves_and_loads(tmp_path):
    from memeprobe.heads.persist import load_model, save_model

    X, _ = _data(150)
    names = np.array(["cat", "dog", "eel"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    head = create_head("logreg", C=1.0).fit(X, names)
    again, _ = load_model(save_model(tmp_path / "m.pt", head))
    assert list(again.classes_) == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(again.predict(X), head.predict(X))
    np.testing.assert_allclose(again.predict_proba(X), head.predict_proba(X))
