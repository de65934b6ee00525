"""Dataset adapters: every supported format becomes one :class:`Dataset` of :class:`Meme` records."""
from memeprobe.data.records import Dataset, Meme

__all__ = ["Dataset", "Meme"]
