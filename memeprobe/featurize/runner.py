"""The featurize run: reader → encoder → writer for each featurizer and modality, on an engine.

Rows the store marks "to do" are read (decoded / tokenised: :mod:`~memeprobe.featurize.reader`),
encoded (:mod:`~memeprobe.featurize.encoder`) and written batch by batch by this process
(:mod:`~memeprobe.featurize.writer`, durable when ``write`` returns), so a killed run resumes where it
stopped. A bad image marks its row failed with the reason and the run goes on. The local engine runs
the stages here (DataLoader workers read); the Ray engine (:mod:`~memeprobe.featurize.ray_engine`)
runs reading and encoding on a Ray cluster while this process stays the only writer.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field

from memeprobe.errors import MemeprobeError
from memeprobe.featurize.encoder import Encoder, resolve_device
from memeprobe.featurize.reader import Collate, ImageItems, TextItems, batches_by_length
from memeprobe.featurize.spec import Options, create_featurizer
from memeprobe.featurize.writer import StoreWriter

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenisers run in forked workers instead

CPU_BATCH = {"image": 32, "text": 128}  # --batch-size auto on CPU
CUDA_START_BATCH = 1024  # --batch-size auto on CUDA: halved on out-of-memory until it fits


@dataclass
class RunConfig:
    """How to run (does not change the features, so not part of the provenance)."""

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


@dataclass
class Summary:
    """What one run did (``failed`` counts failed rows among the selected rows, old and new)."""

    rows: int = 0  # selected rows
    written: int = 0  # (row, modality) pairs encoded and written in this run
    new_failures: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (split/id, set/modality, reason)
    truncated: dict[str, int] = field(default_factory=dict)  # set name -> texts truncated in this run
    timings: dict[str, tuple[int, float]] = field(default_factory=dict)  # "set/modality" -> (rows, encode-loop seconds)
    seconds: float = 0.0
    store_bytes: int = 0

    @property
    def failed(self) -> int:
        return len(self.failures)

    def line(self, store_path) -> str:
        items = self.written + self.new_failures
        rate = items / self.seconds if self.seconds > 0 else 0.0
        return (f"featurized {self.rows} rows: {self.written} written, {self.failed} failures, "
                f"{self.seconds:.1f} s, {rate:.1f} items/s, store {store_path} {self.store_bytes / 1e6:.1f} MB")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def batch_size(cfg: RunConfig, modality: str, device) -> int:
    """Items per batch: ``cfg.batch_size`` or, for auto, 32/128 on CPU and CUDA_START_BATCH on CUDA."""
    if cfg.batch_size != "auto":
        return int(cfg.batch_size)
    return CUDA_START_BATCH if device.type == "cuda" else CPU_BATCH[modality]


class LocalEngine:
    """This process: DataLoader workers read (decode / tokenise), the model encodes, the store writes."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def driver_device(self):
        return resolve_device(self.cfg.device)

    def run(self, f, modality, todo, dataset, writer, store) -> str:
        """Featurize ``todo`` rows of one modality into ``writer``; returns how it ran (for the log)."""
        from torch.utils.data import DataLoader

        cfg = self.cfg
        if f.device is None:
            f.load(self.driver_device())
        batch = batch_size(cfg, modality, f.device)
        workers = min(4, os.cpu_count() or 1) if cfg.workers is None else cfg.workers
        workers = workers if len(todo) > batch else 0  # one batch: a worker only adds start-up time
        common = dict(num_workers=workers, pin_memory=f.device.type == "cuda", persistent_workers=False)
        if workers:
            common["prefetch_factor"] = 2
        if modality == "image":
            loader = DataLoader(ImageItems.of(f, dataset, todo), batch_size=batch, collate_fn=Collate(), **common)
        else:
            items = TextItems.of(dataset, todo)
            loader = DataLoader(items, batch_sampler=batches_by_length(items.texts, batch),
                                collate_fn=Collate(f.text_collate()), **common)
        encode = Encoder(f, modality, batch, cfg.batch_size == "auto", cfg.channels_last)
        for rows, inputs, failures in loader:
            writer.fail([r for r, _ in failures], [why for _, why in failures])
            if len(rows):
                writer.write(rows, encode(inputs))
        return f"batch size {encode.batch_size}, {workers} workers, {f.device}"


# engine name → "module:Class" (imported only when chosen); the CLI's --engine choices come from here
ENGINES = {
    "local": "memeprobe.featurize.runner:LocalEngine",
    "ray": "memeprobe.featurize.ray_engine:RayEngine",
}


def create_engine(cfg: RunConfig):
    if cfg.engine not in ENGINES:
        raise MemeprobeError(f"unknown engine {cfg.engine!r}; choose from {', '.join(ENGINES)}")
    module, _, cls = ENGINES[cfg.engine].partition(":")
    return getattr(importlib.import_module(module), cls)(cfg)


def _run_modality(engine, store, f, modality, todo, dataset, cfg, summary, log):
    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"{f.name}/{modality}", unit="item", disable=not cfg.progress,
               file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
    with bar:
        writer = StoreWriter(store, f.name, modality, summary, progress=bar.update)
        how = engine.run(f, modality, todo, dataset, writer, store)
    seconds = time.perf_counter() - t0
    summary.timings[f"{f.name}/{modality}"] = (len(todo), seconds)
    log(f"{f.name}/{modality}: {len(todo)} rows in {seconds:.1f} s ({len(todo) / max(seconds, 1e-9):.1f} items/s, {how})")
    if writer.truncated:
        summary.truncated[f.name] = summary.truncated.get(f.name, 0) + writer.truncated
        log(f"{f.name}/{modality}: {writer.truncated} texts were longer than the token limit and truncated "
            "(flagged per row in text_truncated)")


def featurize(dataset, store_path, specs, options: Options | None = None, modalities=("image", "text"),
              cfg: RunConfig | None = None, log=_stderr) -> Summary:
    """Featurize ``dataset`` into the store at ``store_path`` with every spec; returns the summary."""
    from memeprobe.store import DONE, FAILED, TODO, FeatureStore

    options, cfg = options or Options(), cfg or RunConfig()
    t0 = time.perf_counter()
    summary = Summary()
    featurizers = [create_featurizer(s, options) for s in specs]  # every spec and its weights checked first
    engine = create_engine(cfg)
    store = FeatureStore.open_or_create(store_path, dataset)
    if store.label_update:
        log(store.label_update)
    try:
        rows = store.rows(cfg.splits)
        if cfg.limit is not None:
            rows = rows[: cfg.limit]
        summary.rows = len(rows)
        with engine:
            for f in featurizers:
                mods = [m for m in f.modalities if m in modalities]
                if not mods:
                    log(f"{f.name}: skipped (it has no {'/'.join(modalities)} modality)")
                    continue
                if f.name in store.feature_sets() and not cfg.overwrite:
                    store.add_feature_set(f.name, store.arrays(f.name), f.provenance())  # the store checks identity
                else:
                    f.load(engine.driver_device())  # the provenance names what load() actually read
                    store.add_feature_set(f.name, f.arrays(), f.provenance(), overwrite=cfg.overwrite)
                for modality in mods:
                    status = store.status(f.name, modality)[rows]
                    pending = (status == TODO) | ((status == FAILED) if cfg.retry_failed else False)
                    todo = rows[pending]
                    log(f"{f.name}/{modality}: {len(todo)} rows to do ({int((status == DONE).sum())} done, "
                        f"{int((status == FAILED).sum())} failed before)")
                    if len(todo):
                        _run_modality(engine, store, f, modality, todo, dataset, cfg, summary, log)
        selected = set(rows.tolist())
        for f in featurizers:
            if f.name in store.feature_sets():
                summary.failures += [(f"{store.splits[r]}/{store.ids[r]}", f"{f.name}/{m}", why)
                                     for r, m, why in store.failures(f.name) if r in selected and m in modalities]
    finally:
        store.close()
    summary.seconds = time.perf_counter() - t0
    summary.store_bytes = os.path.getsize(store_path)
    return summary
