"""Frozen encoders that turn memes into store arrays.

Heavy libraries (torch, open_clip, timm, transformers) are imported only when a featurizer is
created; torchvision's CPU fix is installed by ``import memeprobe`` (see :mod:`memeprobe._compat`).
"""
from memeprobe.featurize.config import RunConfig
from memeprobe.featurize.runner import Summary, featurize
from memeprobe.featurize.spec import PRESETS, Options, Spec, create_featurizer, expand, parse_spec

__all__ = ["PRESETS", "Options", "RunConfig", "Spec", "Summary", "create_featurizer", "expand", "featurize", "parse_spec"]
