"""Ray engine: reading and encoding on a Ray cluster, writing here (the store stays the one ledger).

``ray.data.from_items(todo rows)`` → ``map_batches(read_rows)`` (CPU tasks: decode / pre-process,
failures as data) → ``map_batches(EncoderActor)`` (``ray_actors`` actors, one model copy and, when
encoding on CUDA, one GPU each) → this process iterates the results and writes each batch with the
same :class:`~memeprobe.featurize.writer.StoreWriter` as the local engine, as it arrives, so a killed
run resumes from the store exactly as a local one does. Needs the ``[ray]`` extra. (A SIGKILLed process
that started its own local cluster leaves Ray's two node agents behind; ``ray stop`` ends them.)
"""
from __future__ import annotations

import os
import re

import numpy as np

from memeprobe.errors import ConfigError, MemeprobeError
from memeprobe.featurize.reader import read_image

LOCAL_OBJECT_STORE = 512 * 1024**2  # bytes of shared memory for a cluster started here (batches stream through)
_OUR_ERROR = re.compile(r"memeprobe\.errors\.\w+: (.+)")


def _our_error(e: Exception) -> MemeprobeError | None:
    """The memeprobe error a Ray worker raised, from the (wrapped) exception Ray hands the driver."""
    texts = []
    while e is not None:
        texts.append(str(e))
        e = getattr(e, "cause", None) or e.__cause__
    found = [m.group(1).strip() for t in texts for m in _OUR_ERROR.finditer(t)]
    return MemeprobeError(found[-1]) if found else None


def read_rows(batch: dict, modality: str, transform, max_pixels, downscale) -> dict:
    """Reader stage on Ray: ``{"row", "source"}`` → ``{"row", "error", "item"}`` (item: numpy inputs of one
    row, or its text; None with the reason in ``error`` when the row failed)."""
    n = len(batch["row"])
    items, errors = np.empty(n, dtype=object), np.full(n, "", dtype=object)
    for i, source in enumerate(batch["source"]):
        if modality == "text":
            items[i] = str(source)
            continue
        item, errors[i] = read_image(source, transform, max_pixels, downscale)
        items[i] = None if item is None else {k: np.asarray(v) for k, v in item.items()}
    return {"row": batch["row"], "error": errors, "item": items}


class EncoderActor:
    """Encoder stage on Ray: loads the featurizer once, encodes the rows that read; failed rows pass through
    with zero-filled arrays (the driver only marks them failed)."""

    def __init__(self, spec, options, modality, device, batch_size, auto, provenance, arrays, actors):
        from memeprobe.featurize.encoder import Encoder, resolve_device
        from memeprobe.featurize.spec import create_featurizer

        self.f = create_featurizer(spec, options)
        device = resolve_device(device)
        if device.type == "cpu":  # Ray pins a 1-CPU worker to 1 thread; torch's own default is every core
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // actors))
        self.f.load(device)
        if self.f.provenance() != provenance:
            raise MemeprobeError(f"{self.f.name}: this Ray worker reads other weights or pre-processing than the "
                                 f"store records ({self.f.provenance()} != {provenance}); give every node the same files")
        self.modality, self.arrays = modality, arrays
        self.collate = None if modality == "image" else self.f.text_collate()
        self.encode = Encoder(self.f, modality, batch_size, auto)

    def __call__(self, batch: dict) -> dict:
        from torch.utils.data import default_collate

        ok = np.flatnonzero(batch["error"] == "")
        out = {a: np.zeros((len(batch["row"]), *shape), dtype) for a, (shape, dtype) in self.arrays.items()}
        if len(ok):
            payload = [batch["item"][i] for i in ok]
            values = self.encode(self.collate(payload) if self.collate else default_collate(payload))
            for a in out:
                with np.errstate(over="ignore", invalid="ignore"):
                    out[a][ok] = values[a]
        return {"row": batch["row"], "error": batch["error"], **out}


class RayEngine:
    """Joins ``cfg.ray_address`` or starts a local cluster with this machine's cores, on first use; shuts
    down what it started when the run ends."""

    def __init__(self, cfg):
        self.cfg, self.started = cfg, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.started:
            import ray

            ray.shutdown()
            self.started = False

    def driver_device(self):
        import torch

        return torch.device("cpu")  # the driver only learns the arrays and provenance; actors encode

    def _ray(self):
        try:
            import ray
            import ray.data
        except ImportError:
            raise ConfigError("the Ray engine needs Ray Data: pip install 'memeprobe[ray]'") from None
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if self.cfg.ray_address:
                ray.init(address=self.cfg.ray_address, **kw)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE, **kw)
            self.started = True
            ray.data.DataContext.get_current().enable_progress_bars = False
        return ray

    def _device(self, ray) -> str:
        """Where actors encode: cfg.device, with auto = cuda when the cluster has GPUs."""
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.cfg.device == "auto":
            return "cuda" if gpus > 0 else "cpu"
        if self.cfg.device.startswith("cuda") and not gpus:
            raise ConfigError("encoding on cuda was asked for but the Ray cluster has no GPU")
        return self.cfg.device

    def run(self, f, modality, todo, dataset, writer, store) -> str:
        from memeprobe.data.images import DEFAULT_MAX_PIXELS
        from memeprobe.featurize.reader import batches_by_length
        from memeprobe.featurize.runner import CPU_BATCH, CUDA_START_BATCH

        cfg, ray = self.cfg, self._ray()
        device = self._device(ray)
        gpus = 1 if device.startswith("cuda") else 0
        auto = cfg.batch_size == "auto"
        batch = (CUDA_START_BATCH if gpus else CPU_BATCH[modality]) if auto else int(cfg.batch_size)
        memes = dataset.memes
        if modality == "image":
            sources = [str(dataset.image_path(memes[r])) for r in todo]
        else:  # the local engine's length order: batches of similar length pad less
            sources = [memes[r].text for r in todo]
            order = np.concatenate(batches_by_length(sources, len(sources)))
            todo, sources = todo[order], [sources[i] for i in order]
        arrays = {a: (s.shape, s.dtype) for a, s in store.arrays(f.name).items() if s.modality == modality}
        opts = f.options
        transform = f.image_transform() if modality == "image" else None
        ds = ray.data.from_items([{"row": int(r), "source": s} for r, s in zip(todo, sources)])
        # reader tasks ask for half a core: Ray fuses map stages with equal resources into the actor, which
        # would then decode and encode in turn; apart, reading overlaps encoding as DataLoader workers do
        ds = ds.map_batches(read_rows, batch_size=batch, batch_format="numpy", num_cpus=0.5,
                            fn_kwargs=dict(modality=modality, transform=transform,
                                           max_pixels=opts.max_pixels or DEFAULT_MAX_PIXELS, downscale=opts.downscale))
        ds = ds.map_batches(EncoderActor, batch_size=batch, batch_format="numpy", num_gpus=gpus,
                            num_cpus=0 if gpus else 1, compute=ray.data.ActorPoolStrategy(size=cfg.ray_actors),
                            fn_constructor_args=(f.spec, opts, modality, device, batch, auto, f.provenance(), arrays,
                                                  cfg.ray_actors))
        try:
            for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
                failed = out["error"] != ""
                writer.fail(out["row"][failed], out["error"][failed].tolist())
                ok = ~failed
                writer.write(out["row"][ok], {a: out[a][ok] for a in arrays})
        except MemeprobeError:
            raise
        except Exception as e:
            ours = _our_error(e)
            if ours is None:
                raise
            raise ours from None
        return f"batch size {batch}, Ray: {cfg.ray_actors} encoder actors on {device}"
