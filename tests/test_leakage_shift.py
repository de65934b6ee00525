"""The shift audit (leakage.shift): AUROC, ridge probe and folds against sklearn, chance for a split drawn like
train, a clear verdict for a shifted one, coverage, label priors, and the audit in the report's files and page."""
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from memeprobe.cli import main
from memeprobe.data import load_dataset
from memeprobe.demo.synthetic import make_sample
from memeprobe.errors import ConfigError
from memeprobe.leakage import shift
from memeprobe.leakage.analysis import analyze
from memeprobe.leakage.report import terminal_table, write_report
from memeprobe.store import ArraySpec, FeatureStore
from tests.test_leakage_html import dom, needs_chromium


def test_auroc_matches_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=400).astype(float)  # many ties
    pos = rng.random(400) < 0.3
    assert shift.auroc(scores, pos) == pytest.approx(roc_auc_score(pos, scores), abs=1e-12)
    counts = rng.integers(0, 3, size=(4, 400))  # bootstrap-like weights = rows repeated
    want = [roc_auc_score(np.repeat(pos, c), np.repeat(scores, c)) for c in counts]
    assert shift.auroc(scores, pos, counts) == pytest.approx(want, abs=1e-12)


def test_out_of_fold_ridge_probe_is_sklearns_ridge_per_fold():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(np.float32)
    targets = np.column_stack([y, rng.permutation(y)])
    fold = np.arange(300) % 5
    got = shift.out_of_fold(X, targets, fold)
    for f in range(5):
        train = fold != f
        model = Ridge(alpha=shift.RIDGE * train.sum(), solver="cholesky").fit(X[train], targets[train])
        np.testing.assert_allclose(got[~train], model.predict(X[~train]), atol=2e-4)


def test_identical_vectors_and_given_groups_stay_in_one_fold():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    X[10] = X[150]  # identical vectors: one group
    groups = np.full(200, -1)
    groups[[3, 160, 170]] = 7  # a duplicate group from the report
    gid = shift.group_ids(X, groups)
    assert gid[10] == gid[150] and gid[3] == gid[160] == gid[170] and len(np.unique(gid)) == 200 - 1 - 2
    in_split = np.arange(200) >= 140
    fold = shift.fold_of(in_split, gid, 5, np.random.default_rng(0))
    assert fold[10] == fold[150] and fold[3] == fold[160] == fold[170]
    for f in range(5):  # both sides dealt evenly
        assert abs((in_split & (fold == f)).sum() - 12) <= 2 and abs((~in_split & (fold == f)).sum() - 28) <= 2


def gaussian_splits(seed=0, n_train=2000, n_split=500, dim=32, offset=0.5):
    """train and ``same`` from one Gaussian, ``moved`` with its mean moved along 4 axes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train + 2 * n_split, dim)).astype(np.float32)
    X[n_train + n_split:, :4] += offset
    splits = np.array(["train"] * n_train + ["same"] * n_split + ["moved"] * n_split, dtype=object)
    return X, splits


def test_a_split_drawn_like_train_is_at_chance_and_a_moved_one_differs():
    X, splits = gaussian_splits(seed=1)  # over data seeds 0-11 ``same`` scores 0.508 +- 0.020 (0.454 at seed 0)
    prepared = shift.Shifts(X, splits, features="gauss")
    same, moved = prepared.measure("same", seed=0), prepared.measure("moved", seed=0)
    assert abs(same.auroc - 0.5) < 0.05 and same.ci[0] < 0.5 < same.ci[1]
    assert not same.differs and same.warning() is None
    assert abs(same.permutation_mean - 0.5) < 0.02 and same.permutation_p95 < 0.56
    assert moved.auroc > 0.65 and moved.ci[0] > moved.permutation_p95 and moved.differs
    assert moved.warning().startswith("moved differs from train (domain AUROC ") and "on gauss" in moved.warning()
    assert 0.01 < same.uncovered < 0.12  # about 1 - COVER for a split drawn like train
    again = shift.Shifts(X, splits, features="gauss").measure("moved", seed=0)  # seeded: the same numbers
    assert (again.auroc, again.ci, again.permutation_p95) == (moved.auroc, moved.ci, moved.permutation_p95)
    with pytest.raises(ConfigError, match="is the train split"):
        prepared.measure("train")


def test_a_split_far_from_train_is_uncovered_even_where_a_linear_classifier_is_blind():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 16)).astype(np.float32)
    X[:600, 8:] *= 0.1  # train mostly in the first 8 dimensions, the split in the last 8: about orthogonal
    X[600:, :8] *= 0.1
    splits = np.array(["train"] * 600 + ["far"] * 100, dtype=object)
    r = shift.Shifts(X, splits).measure("far")
    assert r.uncovered > 0.95 and r.distance[r.in_split].min() > r.radius
    assert not r.differs  # same means, other directions: no linear boundary, which is why coverage is measured too


def test_too_few_groups_a_side_is_refused():
    X, splits = gaussian_splits(n_train=50, n_split=3)
    with pytest.raises(ConfigError, match="at least 5 groups a side"):
        shift.Shifts(X, splits).measure("same")


def test_prior_differences_with_newcombe_intervals():
    train = np.array([[1]] * 30 + [[0]] * 70 + [[-1]] * 5)
    other = np.array([[1]] * 20 + [[0]] * 30)
    (p,) = shift.prior_differences(train, other, ["hateful"], "dev")
    assert (p["n_train"], p["n_split"], p["train_share"], p["split_share"]) == (100, 50, 0.3, 0.4)
    assert p["difference"] == pytest.approx(0.1)
    # Newcombe (1998) method 10 for 20/50 - 30/100 (his worked example's method), computed by hand from Wilson
    lo1, hi1 = shift._wilson(20, 50)
    lo0, hi0 = shift._wilson(30, 100)
    assert p["ci"][0] == pytest.approx(0.1 - np.hypot(0.4 - lo1, hi0 - 0.3), abs=1e-4)
    assert p["ci"][1] == pytest.approx(0.1 + np.hypot(hi1 - 0.4, 0.3 - lo0), abs=1e-4)
    assert p["ci"][0] < 0 < p["ci"][1]


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """The synthetic sample with a fake text store in which test_unseen is moved away from train."""
    root = tmp_path_factory.mktemp("shift")
    make_sample(root, n=300, seed=0)
    ds = load_dataset(root)
    splits = np.array([m.split for m in ds.memes])
    rng = np.random.default_rng(5)
    vec = rng.normal(size=(len(ds.memes), 16)).astype(np.float32)
    vec[splits == "test_unseen", :3] += 1.5
    path = tmp_path_factory.mktemp("shift-store") / "shift.h5"  # runs.jsonl goes beside it, outside the dataset
    with FeatureStore.create(path, ds) as st:
        st.add_feature_set("st-fake", {"text_embed": ArraySpec((16,), "text", "float32")}, {"encoder": "test"})
        st.write_rows("st-fake", np.arange(len(ds.memes)), {"text_embed": vec}, "text")
    return root, path


def test_the_report_audits_every_split_against_train(shifted, tmp_path):
    root, path = shifted
    ds = load_dataset(root)
    with FeatureStore.open(path) as st, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds, st, check_images=False)
    by_split = {r.split: r for r in result.shift.results}
    assert set(by_split) == {"dev_seen", "test_unseen"}  # the unlabelled split too
    assert by_split["test_unseen"].differs and not by_split["dev_seen"].differs
    assert [p["split"] for p in result.shift.priors] == ["dev_seen"]  # test_unseen has no labels
    text = terminal_table(result)
    assert "domain AUROC" in text and "test_unseen" in text.split("domain AUROC")[1]
    paths = write_report(result, ds, tmp_path / "r")
    doc = json.loads(paths["json"].read_text())
    audit = {d["split"]: d for d in doc["shift"]["domain"]}
    assert audit["test_unseen"]["differs"] and audit["test_unseen"]["features"] == "st-fake/text_embed"
    assert audit["test_unseen"]["ci"][0] <= audit["test_unseen"]["auroc"] <= audit["test_unseen"]["ci"][1]
    page = paths["html"].read_text()
    assert page.count('class="shift-histogram"') == 2 and 'id="shift-priors"' in page
    assert page.count('class="shift-meme"') == 2 * 2 * 8


def test_the_report_without_a_store_gives_priors_and_says_why(shifted, tmp_path):
    root, _ = shifted
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--no-images", "--no-progress",
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "shift: no feature store given" in res.output and "dev_seen" in res.output.split("difference")[1]
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--no-images", "--no-progress", "--json",
                                    "--out", str(tmp_path / "r"), "--replace", "report"])
    doc = json.loads(res.stdout)
    assert doc["shift"]["domain"] == [] and [p["split"] for p in doc["shift"]["priors"]] == ["dev_seen"]


@needs_chromium
def test_the_shift_section_renders_in_chromium(shifted, tmp_path):
    root, path = shifted
    res = CliRunner().invoke(main, ["leakage", "report", str(root), "--store", str(path), "--no-progress",
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    page = dom(tmp_path / "r" / "report.html", tmp_path)
    assert 'id="shift"' in page and page.count('data-shift="') == 2
    assert page.count('class="shift-side split-like"') == page.count('class="shift-side train-like"') == 2


def test_against_train_measures_a_heads_features_and_notes_what_it_cannot(shifted):
    _, path = shifted
    with FeatureStore.open(path) as st:
        results, notes = shift.against_train(st, ["st-fake"], ["dev_seen", "test_unseen", "nope"])
    by_split = {r.split: r for r in results}
    assert set(by_split) == {"dev_seen", "test_unseen"} and by_split["test_unseen"].differs
    assert by_split["test_unseen"].warning().startswith("test_unseen differs from train (domain AUROC")
    assert by_split["dev_seen"].warning() is None and by_split["test_unseen"].features == "st-fake"
    assert len(notes) == 1 and notes[0].startswith("nope: no shift measured")


def test_features_wider_than_the_rows_are_reduced_for_the_classifier():
    X, splits = gaussian_splits(n_train=400, n_split=100, dim=2100, offset=1.0)
    r = shift.Shifts(X, splits).measure("moved")
    assert r.dims == 600 and r.differs  # 600 rows: 600 principal components carry all there is
    assert r.auroc > 0.65  # not scored backwards (as a whitened probe with as many inputs as rows would)
    assert shift.Shifts(*gaussian_splits(n_train=400, n_split=100)).measure("moved").dims == 32


def test_a_non_finite_vector_is_left_out_and_counted():
    X, splits = gaussian_splits(n_train=300, n_split=60)
    X[5, 3] = np.nan
    X[310, 0] = np.inf
    prepared = shift.Shifts(X, splits)
    assert prepared.non_finite == 2 and len(prepared.X) == len(X) - 2 and 5 not in prepared.rows
    r = prepared.measure("moved")
    assert np.isfinite(r.auroc) and r.n_train == 299 and np.isfinite(r.scores).all()
