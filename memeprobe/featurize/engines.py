"""The featurize engines as data: name → ``"module:Class"``, imported only when chosen (the CLI's --engine
choices and RunConfig's check come from here without importing torch or ray)."""
from __future__ import annotations

from memeprobe.registry import resolve

ENGINES = {
    "local": "memeprobe.featurize.local_engine:LocalEngine",
    "ray": "memeprobe.featurize.ray_engine:RayEngine",
}


def create_engine(cfg):
    """The engine ``cfg.engine`` names (a checked :class:`~memeprobe.featurize.config.RunConfig`), for ``cfg``."""
    return resolve(ENGINES[cfg.engine])(cfg)
