"""Local engine: this process loads each featurizer, DataLoader workers read (decode / tokenise), the model
encodes and the store writes, one job after the other."""
from __future__ import annotations

from memeprobe.featurize import batching
from memeprobe.featurize.base import Prepared, Preprocess
from memeprobe.featurize.encoder import Encoder, resolve_device
from memeprobe.heap import default_heap, reuse_freed_memory
from memeprobe.threads import recheck


class LocalEngine:
    """The local engine of ``cfg`` (a :class:`~memeprobe.featurize.config.RunConfig`)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def run(self, ready, jobs, dataset, progress) -> None:
        """Make ``ready`` (the featurizers with work) ready, declare their sets (``progress.declare``), then
        featurize every job's rows into its writer (``progress.writer(j)``), ending each with ``progress.finish``."""
        device = resolve_device(self.cfg.device)
        if device.type == "cpu":
            reuse_freed_memory()
        for f in ready:
            f.load(device)  # the provenance names what load() actually read
        progress.declare({f.name: Prepared.of(f) for f in ready})
        for j, job in enumerate(jobs):
            progress.finish(j, self._run(job, Preprocess.of(job.f), dataset, progress.writer(j)))

    def _run(self, job, pre, dataset, writer) -> str:
        from torch.utils.data import DataLoader  # lazy: torch

        cfg, f = self.cfg, job.f
        cuda = f.device.type == "cuda"
        batch = batching.batch_size(cfg.batch_size, job.modality, cuda)
        workers = batching.workers(cfg.workers, len(job.todo), batch)
        extra = dict(prefetch_factor=2) if workers else {}
        loader = DataLoader(job.items(dataset, job.todo, pre.transform), batch_sampler=job.batches(dataset, batch),
                            collate_fn=job.collate(pre), num_workers=workers, pin_memory=cuda,
                            persistent_workers=False, worker_init_fn=default_heap, **extra)
        encode = Encoder(f, job.modality, batch, batching.halves(cfg.batch_size, cuda), cfg.channels_last)
        for rows, inputs, failures in loader:
            recheck()  # the machine got busier or quieter: move torch's threads
            writer.batch(rows, encode(inputs) if len(rows) else None, failures)
        return f"batch size {encode.batch_size}, {workers} workers, {f.device}"
