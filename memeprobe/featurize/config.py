"""How a featurize run runs (``RunConfig``), checked against one constraint dict before any heavy import
(torch, ray): a bad option costs nothing. None of it changes the features, so none of it is provenance."""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from memeprobe.featurize.engines import ENGINES
from memeprobe.params import Choices, Range, check


@dataclass
class RunConfig:
    """How to run (does not change the features, so not part of the provenance); checked against :data:`CONSTRAINTS`."""

    device: str = "auto"  # auto | cpu | cuda[:N]
    batch_size: int | str = "auto"
    workers: int | None = None  # None = min(4, cpu count)
    splits: list[str] | None = None
    limit: int | None = None
    overwrite: bool = False
    retry_failed: bool = False
    channels_last: bool = False
    progress: bool = True
    engine: str = "local"  # a key of ENGINES
    ray_address: str | None = None  # join this Ray cluster (None = start a local one)
    ray_actors: int = 1  # encoder actors (each holds one model copy; one GPU each when encoding on CUDA)

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """ConfigError naming the first option that :data:`CONSTRAINTS` does not allow (also after a change)."""
        check(CONSTRAINTS, vars(self), "featurize")


CONSTRAINTS = {  # RunConfig's options, in the vocabulary of memeprobe.params
    "device": [str],
    "batch_size": [Choices({"auto"}), Range(Integral, 1, None)],
    "workers": [None, Range(Integral, 0, None)],
    "splits": [None, list, tuple],
    "limit": [None, Range(Integral, 1, None)],
    "overwrite": ["boolean"], "retry_failed": ["boolean"], "channels_last": ["boolean"], "progress": ["boolean"],
    "engine": [Choices(ENGINES)],
    "ray_address": [None, str],
    "ray_actors": [Range(Integral, 1, None)],
}
