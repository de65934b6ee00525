"""memeprobe.heads: light heads on cached features, their decisions, model files, metrics, sweeps and submissions.

The public names (``__all__``) are imported on first use, so ``import memeprobe.heads`` (and ``memeprobe --help``)
loads neither torch nor sklearn:

* ``HEADS`` (:mod:`.kinds`): every head kind by name, ``train-head``'s choices: ``logreg``, ``mlp``, ``fusion``,
  ``retrieval``, ``ensemble``, ``span``.
* ``create_head(kind, **config)`` / ``head_config(kind)`` (:mod:`.factory`): a head wrapped in a ``TunedHead``
  (:mod:`.tuned`), whose ``fit`` does the out-of-fold predictions, the threshold and decision-rule choice and the
  refit, so ``create_head(...).fit(X, y).predict(X)`` decides as the model ``train-head`` saves.
* ``save_model`` / ``load_model`` (:mod:`.persist`): the one model file format of every kind, checked on load.
* ``train_head``, ``train_spans``, ``predict``, ``store_runs`` (:mod:`.api`, with ``api.sweep``): the Python API the
  commands (:mod:`.commands`: ``train-head``, ``predict``, ``sweep``, ``runs``) print.

Inside: the heads (:mod:`.base`, :mod:`.logreg`, :mod:`.training` + :mod:`.mlp` / :mod:`.fusion` / :mod:`.span`,
:mod:`.retrieval`, :mod:`.ensemble`), :mod:`.choices` (option names as data), :mod:`.selection` (folds),
:mod:`.thresholds`, :mod:`.metrics`, :mod:`._losses`, :mod:`._experiment` (fit + score), :mod:`.validate` (model
file rules), :mod:`._matching` (a model against a store), :mod:`._report` (printed tables), :mod:`.runs`,
:mod:`.sweep`, :mod:`.submission`, :mod:`._plots`. The arrays come from :mod:`memeprobe.store.features`.
"""
from memeprobe.registry import lazy_names

_PUBLIC = {
    "HEADS": "memeprobe.heads.kinds:HEADS",
    "create_head": "memeprobe.heads.factory:create_head",
    "head_config": "memeprobe.heads.factory:head_config",
    "head_class": "memeprobe.heads.factory:head_class",
    "TunedHead": "memeprobe.heads.tuned:TunedHead",
    "EnsembleHead": "memeprobe.heads.ensemble:EnsembleHead",
    "save_model": "memeprobe.heads.persist:save_model",
    "load_model": "memeprobe.heads.persist:load_model",
    "train_head": "memeprobe.heads.api:train_head",
    "train_spans": "memeprobe.heads.api:train_spans",
    "predict": "memeprobe.heads.api:predict",
    "store_runs": "memeprobe.heads.api:store_runs",
}
__all__ = list(_PUBLIC)

__getattr__ = lazy_names(__name__, _PUBLIC)
