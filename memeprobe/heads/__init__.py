"""memeprobe.heads: light heads on cached features, metrics, thresholds, sweeps and submissions.

Modules (imported lazily so ``memeprobe --help`` stays fast):
``factory`` (``create_head(name, **config)``, ``head_config``), ``base`` (``Head``, ``load_model``),
``logreg`` / ``mlp`` / ``fusion`` (the heads), ``ensemble``, ``losses``, ``metrics``, ``thresholds``,
``features`` (store → arrays), ``experiment`` (fit + tune + score), ``sweep``, ``runs``,
``submission``, ``plots``, ``report`` (printed tables), ``api`` (``train_head``, ``predict``, ``sweep``,
``store_runs``: the Python API) and ``commands`` (``train-head``, ``predict``, ``sweep``, ``runs``: the CLI over it).
"""
