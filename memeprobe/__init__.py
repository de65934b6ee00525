"""memeprobe: featurize memes once with frozen encoders, probe cross-split leakage, train light heads on a CPU."""
from memeprobe._compat import install_import_hook

__version__ = "0.1.0"

install_import_hook()  # torchvision next to a CPU-only torch: see memeprobe._compat

__all__ = ["open_store", "load_dataset", "Store"]  # the notebook API (memeprobe/api.py)


def __getattr__(name):
    """The notebook API, imported on first use (``import memeprobe`` stays light for the CLI)."""
    if name in __all__:
        from memeprobe import api

        return getattr(api, name)
    raise AttributeError(f"module 'memeprobe' has no attribute {name!r}")
