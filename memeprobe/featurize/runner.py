"""The featurize run: reader → encoder → writer for each job (featurizer × modality), on an engine.

Rows the store marks "to do" are read (decoded / tokenised: :mod:`~memeprobe.featurize.reader`),
encoded (:mod:`~memeprobe.featurize.encoder`) and committed by this process as they come
(:mod:`~memeprobe.featurize.writer`: durable before they are reported), so a killed run resumes where it
stopped, with either engine. A bad image marks its row failed with the reason and the run goes on.

Every run takes the same path: the store's rows to do give the jobs; the engine makes each featurizer
that has work (or a feature set to create) ready, once: the local engine
(:mod:`~memeprobe.featurize.local_engine`) loads it here (DataLoader workers read); the Ray engine
(:mod:`~memeprobe.featurize.ray_engine`) prepares it without weights on the cluster while its actors load,
and reads and encodes there while this process stays the only writer. Engines are named in
:mod:`~memeprobe.featurize.engines`, the batch policy of both in :mod:`~memeprobe.featurize.batching`. A ready featurizer's :class:`~memeprobe.featurize.base.Prepared` declares (or checks) its
feature set before the first row is written.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from memeprobe.errors import MemeprobeError
from memeprobe.featurize import batching
from memeprobe.featurize.base import Preprocess
from memeprobe.featurize.config import RunConfig
from memeprobe.featurize.engines import create_engine
from memeprobe.featurize.reader import Collate, ImageItems, TextItems
from memeprobe.featurize.spec import Options, create_featurizer
from memeprobe.featurize.writer import StoreWriter
from memeprobe.store import DONE, FAILED, TODO, FeatureStore

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenisers run in forked workers instead


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


@dataclass
class Job:
    """One featurizer on one modality and the store rows it still has to do."""

    f: object
    modality: str
    todo: np.ndarray

    def items(self, dataset, rows, transform=None):
        """The reader's items of ``rows`` (picklable; item i reads as (row, input or None, failure reason));
        images pre-processed by ``transform`` (Ray tasks bind it later: ``items.bound(transform)``)."""
        if self.modality == "image":
            return ImageItems.of(dataset, rows, self.f.options, transform)
        return TextItems.of(dataset, rows)

    def batches(self, dataset, size) -> list[list[int]]:
        """Positions in ``todo`` per batch (:func:`~memeprobe.featurize.batching.batches`)."""
        texts = [dataset.memes[r].text for r in self.todo] if self.modality == "text" else None
        return batching.batches(self.modality, texts, len(self.todo), size)

    def collate(self, pre: Preprocess) -> Collate:
        return Collate.of(self.modality, pre)


class Progress:
    """The run's side of the store: declares the ready featurizers' feature sets; each job's writer and
    progress bar; logs when the first rows are written (the start-up) and, when a job ends, its rows,
    seconds (since the previous job ended, so the jobs' seconds add up to the run) and how it ran."""

    def __init__(self, jobs, store, cfg, summary, log, replace=(), start=None):
        self.jobs, self.store, self.cfg, self.summary, self.log = jobs, store, cfg, summary, log
        self.replace = set(replace)  # feature sets that --overwrite replaces (their identity differs)
        self.writers, self.bars, self.mark = {}, {}, time.perf_counter()
        self.start, self.first = start or self.mark, None

    def declare(self, prepared: dict) -> None:
        """Create each ``{name: Prepared}`` feature set, or check that the stored one has the same arrays and
        identity (a resume); before any row of it is written."""
        for name, p in prepared.items():
            self.store.add_feature_set(name, p.arrays, p.provenance, overwrite=name in self.replace)

    def writer(self, j: int) -> StoreWriter:
        if j not in self.writers:
            job = self.jobs[j]
            self.bars[j] = tqdm(total=len(job.todo), desc=f"{job.f.name}/{job.modality}", unit="item",
                                disable=not self.cfg.progress, file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
            self.writers[j] = StoreWriter(self.store, job.f.name, job.modality, self.summary,
                                          progress=lambda n, bar=self.bars[j]: self._tick(bar, n))
        return self.writers[j]

    def _tick(self, bar, n: int) -> None:
        if self.first is None:
            self.first = time.perf_counter()
            self.log(f"first rows written {self.first - self.start:.1f} s after the start ({n} items)")
        bar.update(n)

    def finish(self, j: int, how: str) -> None:
        job, writer = self.jobs[j], self.writer(j)
        writer.flush()
        now = time.perf_counter()
        self.bars.pop(j).close()
        seconds, self.mark = now - self.mark, now
        key = f"{job.f.name}/{job.modality}"
        self.summary.timings[key] = (len(job.todo), seconds)
        self.log(f"{key}: {len(job.todo)} rows in {seconds:.1f} s ({len(job.todo) / max(seconds, 1e-9):.1f} items/s, {how})")
        if writer.truncated:
            self.summary.truncated[job.f.name] = self.summary.truncated.get(job.f.name, 0) + writer.truncated
            self.log(f"{key}: {writer.truncated} texts were longer than the token limit and truncated "
                     "(flagged per row in text_truncated)")

    def close(self) -> None:
        """Commit what is still waiting (rows encoded before an interruption are kept) and close the bars."""
        try:
            for writer in self.writers.values():
                writer.flush()
        finally:
            for bar in self.bars.values():
                bar.close()


def _replaces(store, f, overwrite: bool) -> bool:
    """Whether ``f``'s feature set is to be created, or replaced by ``overwrite`` because its identity differs;
    False for a stored set of the same identity (checked from the provenance, without weights)."""
    if f.name not in store.feature_sets():
        return True
    try:
        store.add_feature_set(f.name, store.arrays(f.name), f.provenance())  # a no-op when the identity is the same
        return False
    except MemeprobeError:
        if overwrite:
            return True
        raise


def featurize(dataset, store_path, specs, options: Options | None = None, modalities=("image", "text"),
              cfg: RunConfig | None = None, log=_stderr) -> Summary:
    """Featurize ``dataset`` into the store at ``store_path`` with every spec; returns the summary."""
    options, cfg = options or Options(), cfg or RunConfig()
    cfg.check()
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
        jobs, ready, replace, failed = [], [], [], 0
        for f in featurizers:
            mods = [m for m in f.modalities if m in modalities]
            if not mods:
                log(f"{f.name}: skipped (it has no {'/'.join(modalities)} modality)")
                continue
            new = _replaces(store, f, cfg.overwrite)
            for modality in mods:
                status = np.full(len(rows), TODO, np.uint8) if new else store.status(f.name, modality)[rows]
                pending = (status == TODO) | ((status == FAILED) if cfg.retry_failed else False)
                log(f"{f.name}/{modality}: {int(pending.sum())} rows to do ({int((status == DONE).sum())} done, "
                    f"{int((status == FAILED).sum())} failed before)")
                failed += 0 if cfg.retry_failed else int((status == FAILED).sum())
                if pending.any():
                    jobs.append(Job(f, modality, rows[pending]))
            if new or any(job.f is f for job in jobs):  # work to do, or a feature set to create
                ready.append(f)
                replace += [f.name] if new else []
        if ready:
            with engine:
                progress = Progress(jobs, store, cfg, summary, log, replace, t0)
                try:
                    engine.run(ready, jobs, dataset, progress)
                finally:
                    progress.close()
        elif any(m in modalities for f in featurizers for m in f.modalities):
            log("nothing to do: every selected row is done" + (f" or failed ({failed} failed; --retry-failed tries "
                                                               "them again)" if failed else ""))
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
