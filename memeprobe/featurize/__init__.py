"""Frozen encoders that turn memes into store arrays.

Importing this package first makes torchvision importable next to a CPU-only torch
(see :mod:`memeprobe._compat`); every featurizer module relies on that.
"""
from memeprobe._compat import ensure_torchvision_ops

ensure_torchvision_ops()
