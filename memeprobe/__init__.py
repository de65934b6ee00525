"""memeprobe: featurize memes once with frozen encoders, probe cross-split leakage, train light heads on a CPU."""
import importlib

from memeprobe._compat import install_import_hook

__version__ = "0.1.0"

install_import_hook()  # torchvision next to a CPU-only torch: see memeprobe._compat

_API = {"open_store": "memeprobe.api", "load_dataset": "memeprobe.api", "Store": "memeprobe.api",
        "train_head": "memeprobe.heads.api", "predict": "memeprobe.heads.api"}
__all__ = list(_API)  # the notebook API


def __getattr__(name):
    """The notebook API, imported on first use: this file runs before every memeprobe module, so it imports none
    of the layers above it (and ``import memeprobe`` stays light for the CLI)."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'memeprobe' has no attribute {name!r}")
