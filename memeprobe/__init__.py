"""memeprobe: featurize memes once with frozen encoders, probe cross-split leakage, train light heads on a CPU."""
from memeprobe._compat import install_import_hook

__version__ = "0.1.0"

install_import_hook()  # torchvision next to a CPU-only torch: see memeprobe._compat
