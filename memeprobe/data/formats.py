"""The dataset formats, one registry: name -> adapter module (``detect(path) -> bool``,
``load(path, **opts) -> Dataset``), in detection order."""
from memeprobe.data import generic, hateful_memes, mami, semeval2021_task6

FORMATS = {
    "hateful_memes": hateful_memes,
    "semeval2021_task6": semeval2021_task6,
    "mami": mami,
    "generic": generic,
}
