"""The names the heads' options accept, as data: no torch, no sklearn, so the commands' choices and ``--help``
load nothing else. The modules that implement them (normalisation, losses, fusions, thresholds, selection,
submissions, searches) import their list from here; the head kinds are the registry in :mod:`.kinds`."""
import numpy as np

NORMS = ("l2", "standard", "l2+standard", "none")  # input normalisation per array
LOSSES = ("bce", "focal")  # losses of the torch heads
FUSIONS = ("concat", "late", "align", "cross", "attention")  # two-modality fusion variants
CLASS_WEIGHTS = ("balanced",)  # besides None: positives weighted by n_neg / n_pos
PRECISIONS = ("fp32", "bf16")  # the torch heads' forward pass
METRICS = ("accuracy", "f1", "macro_f1")  # what a decision threshold is tuned for
SELECT_ON = ("train", "train+dev", "dev")  # where hyper-parameters and thresholds are chosen
NO_DEV = "none"  # --dev-split none: no dev split
FORMATS = ("hateful_memes", "mami", "semeval2021", "csv")  # submission files
SEARCHES = ("grid", "random")  # hyper-parameter searches
# the search space of `sweep --heads` (see memeprobe.heads.sweep)
DEFAULT_SPACE = {
    "logreg": {
        "C": [float(c) for c in np.logspace(-3, 2, 11)],
        "norm": ["l2+standard", "l2"],
        "class_weight": [None, "balanced"],
    },
    "mlp": {
        "hidden": [[128], [256], [256, 128]],
        "dropout": [0.1, 0.3, 0.5],
        "lr": [3e-4, 1e-3, 3e-3],
        "weight_decay": [1e-4, 1e-2, 1e-1],
        "loss": ["bce", "focal"],
    },
}
