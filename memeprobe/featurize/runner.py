"""The featurize loop: resumable, batched, DataLoader workers for decoding/tokenising, durable writes.

For each featurizer and modality: rows the store marks "to do" are decoded/tokenised in worker
processes, encoded on the device under ``torch.inference_mode`` (bf16 autocast on CUDA) and
written batch by batch with ``store.write_rows`` (durable when it returns), so a killed run resumes
where it stopped. A bad image marks its row failed with the reason and the run goes on.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from memeprobe.errors import MemeprobeError
from memeprobe.data.images import DEFAULT_MAX_PIXELS, ImageFailure, load_image
from memeprobe.featurize.spec import Options, create_featurizer

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


# -- worker-side datasets and collate functions (module level: picklable) -------------------------
class ImageItems:
    """Map-style dataset: index → (row, transformed image or None, failure reason)."""

    def __init__(self, rows, paths, transform, max_pixels, downscale):
        self.rows, self.paths, self.transform = rows, paths, transform
        self.max_pixels, self.downscale = max_pixels, downscale

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        try:
            image = load_image(self.paths[i], self.max_pixels, self.downscale)
            return int(self.rows[i]), self.transform(image), ""
        except ImageFailure as e:
            return int(self.rows[i]), None, str(e)
        except Exception as e:  # a transform that chokes on one odd image must not stop the run
            return int(self.rows[i]), None, f"preprocessing failed: {type(e).__name__}: {e}"


class TextItems:
    def __init__(self, rows, texts):
        self.rows, self.texts = rows, texts

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return int(self.rows[i]), self.texts[i], ""


class Collate:
    """Splits items into ok/failed; collates images with default_collate or texts with the tokeniser."""

    def __init__(self, text_collate=None):
        self.text_collate = text_collate

    def __call__(self, items):
        from torch.utils.data import default_collate

        ok = [(r, x) for r, x, why in items if not why]
        bad = [(r, why) for r, x, why in items if why]
        inputs = None
        if ok:
            payload = [x for _, x in ok]
            inputs = self.text_collate(payload) if self.text_collate else default_collate(payload)
        return [r for r, _ in ok], inputs, bad


# -- main-process helpers -----------------------------------------------------------------------
def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MemeprobeError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return dev


def _to_device(inputs, device, channels_last):
    import torch

    out = {}
    for k, v in inputs.items():
        if isinstance(v, torch.Tensor) and k != "size":
            v = v.to(device, non_blocking=True)
            if channels_last and v.ndim == 4:
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class _Encoder:
    """Runs a featurizer on batches, splitting them and halving the batch size on CUDA out-of-memory."""

    def __init__(self, featurizer, modality, device, batch_size, auto, channels_last):
        self.f, self.modality, self.device = featurizer, modality, device
        self.batch_size, self.auto, self.channels_last = batch_size, auto, channels_last

    def __call__(self, inputs) -> dict:
        import torch

        fn = self.f.encode_image if self.modality == "image" else self.f.encode_text
        n = len(next(v for v in inputs.values() if isinstance(v, torch.Tensor)))
        parts, start = [], 0
        while start < n:
            stop = min(n, start + self.batch_size)
            chunk = {k: v[start:stop] for k, v in inputs.items()}
            try:
                with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda"):
                    parts.append(fn(_to_device(chunk, self.device, self.channels_last)))
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if not self.auto or self.batch_size == 1:
                    raise MemeprobeError(f"{self.f.name}: out of GPU memory at batch size {self.batch_size}; "
                                         "use a smaller --batch-size (or --batch-size auto)") from None
                self.batch_size //= 2
                _stderr(f"{self.f.name}/{self.modality}: out of GPU memory, batch size now {self.batch_size}")
                continue
            start = stop
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _batches_by_length(texts, batch_size):
    """Index batches of similar text length (less padding), longest first."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def _run_modality(store, f, modality, todo, dataset, cfg, device, summary, log):
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    auto = cfg.batch_size == "auto"
    batch = (CUDA_START_BATCH if device.type == "cuda" else CPU_BATCH[modality]) if auto else int(cfg.batch_size)
    workers = min(4, os.cpu_count() or 1) if cfg.workers is None else cfg.workers
    n_batches = -(-len(todo) // batch)
    workers = workers if n_batches > 1 else 0  # one batch: a worker only adds start-up time
    common = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=False)
    if workers:
        common["prefetch_factor"] = 2
    memes = dataset.memes
    if modality == "image":
        paths = [dataset.image_path(memes[r]) for r in todo]
        items = ImageItems(todo, paths, f.image_transform(), f.options.max_pixels or DEFAULT_MAX_PIXELS,
                           f.options.downscale)
        loader = DataLoader(items, batch_size=batch, collate_fn=Collate(), **common)
    else:
        texts = [memes[r].text for r in todo]
        items = TextItems(todo, texts)
        loader = DataLoader(items, batch_sampler=_batches_by_length(texts, batch),
                            collate_fn=Collate(f.text_collate()), **common)
    channels_last = cfg.channels_last and modality == "image" and getattr(f, "model", None) is not None
    if channels_last:
        import torch

        f.model.to(memory_format=torch.channels_last)
    encode = _Encoder(f, modality, device, batch, auto and device.type == "cuda", channels_last)
    truncated, t0 = 0, time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"{f.name}/{modality}", unit="item", disable=not cfg.progress,
               file=sys.stderr, mininterval=1.0, dynamic_ncols=True)
    with bar:
        for rows, inputs, bad in loader:
            if bad:
                store.mark_failed(f.name, [r for r, _ in bad], modality, [why for _, why in bad])
                summary.new_failures += len(bad)
            if rows:
                values = encode(inputs)
                store.write_rows(f.name, rows, values, modality)
                summary.written += len(rows)
                if "text_truncated" in values:
                    truncated += int(values["text_truncated"].sum())
            bar.update(len(rows) + len(bad))
    seconds = time.perf_counter() - t0
    summary.timings[f"{f.name}/{modality}"] = (len(todo), seconds)
    log(f"{f.name}/{modality}: {len(todo)} rows in {seconds:.1f} s ({len(todo) / max(seconds, 1e-9):.1f} items/s, "
        f"batch size {encode.batch_size}, {workers} workers, {device})")
    if truncated:
        summary.truncated[f.name] = summary.truncated.get(f.name, 0) + truncated
        log(f"{f.name}/{modality}: {truncated} texts were longer than the token limit and truncated "
            "(flagged per row in text_truncated)")


def featurize(dataset, store_path, specs, options: Options | None = None, modalities=("image", "text"),
              cfg: RunConfig | None = None, log=_stderr) -> Summary:
    """Featurize ``dataset`` into the store at ``store_path`` with every spec; returns the summary."""
    from memeprobe.store import DONE, FAILED, TODO, FeatureStore

    options, cfg = options or Options(), cfg or RunConfig()
    t0 = time.perf_counter()
    summary = Summary()
    featurizers = [create_featurizer(s, options) for s in specs]  # every spec and its weights checked first
    store = FeatureStore.open_or_create(store_path, dataset)
    try:
        rows = store.rows(cfg.splits)
        if cfg.limit is not None:
            rows = rows[: cfg.limit]
        summary.rows = len(rows)
        device = None
        for f in featurizers:
            mods = [m for m in f.modalities if m in modalities]
            if not mods:
                log(f"{f.name}: skipped (it has no {'/'.join(modalities)} modality)")
                continue
            if f.name in store.feature_sets() and not cfg.overwrite:
                store.add_feature_set(f.name, store.arrays(f.name), f.provenance())  # the store checks identity
            else:
                device = device or resolve_device(cfg.device)
                f.load(device)  # the provenance names what load() actually read
                store.add_feature_set(f.name, f.arrays(), f.provenance(), overwrite=cfg.overwrite)
            for modality in mods:
                status = store.status(f.name, modality)[rows]
                pending = (status == TODO) | ((status == FAILED) if cfg.retry_failed else False)
                todo = rows[pending]
                log(f"{f.name}/{modality}: {len(todo)} rows to do ({int((status == DONE).sum())} done, "
                    f"{int((status == FAILED).sum())} failed before)")
                if not len(todo):
                    continue
                if f.device is None:
                    device = device or resolve_device(cfg.device)
                    f.load(device)
                _run_modality(store, f, modality, todo, dataset, cfg, f.device, summary, log)
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
