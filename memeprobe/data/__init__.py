"""Dataset adapters: every supported format becomes one :class:`Dataset` of :class:`Meme` records."""
from memeprobe.data.formats import FORMATS
from memeprobe.data.loading import detect_format, load_dataset
from memeprobe.data.records import Dataset, Meme

__all__ = ["Dataset", "FORMATS", "Meme", "detect_format", "load_dataset"]
