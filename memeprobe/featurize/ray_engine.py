"""Ray engine: reading and encoding on a Ray cluster, writing here (the store stays the one ledger).

One pipeline per run, for every featurizer and modality still to do: ``ray.data.from_items(batches of
todo rows)`` → ``map_batches(read_batches)`` (CPU tasks: decode, pre-process and collate, failures as data) →
``map_batches(EncoderActor)`` (``ray_actors`` actors that each load every featurizer once; one GPU each
when encoding on CUDA) → this process iterates the results and writes each batch with the same
:class:`~memeprobe.featurize.writer.StoreWriter` as the local engine, as it arrives, so a killed run
resumes from the store exactly as a local one does. Needs the ``[ray]`` extra. (A SIGKILLed process
that started its own local cluster leaves Ray's two node agents behind; ``ray stop`` ends them.)
"""
from __future__ import annotations

import os
import re

from memeprobe.errors import ConfigError, MemeprobeError
from memeprobe.featurize.reader import Batch

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


class Task:
    """One batch of one job as it moves through the pipeline (a Python object, so Ray pickles it whole
    instead of converting it to Arrow): reader items, then the read batch, then the encoded values."""

    def __init__(self, job, payload):
        self.job, self.payload = job, payload


def read_batches(batch: dict, collates) -> dict:
    """Reader stage on Ray (CPU tasks), as a DataLoader worker does locally: each task's items
    (:meth:`~memeprobe.featurize.runner.Job.items`) → the collated :class:`~memeprobe.featurize.reader.Batch`
    of its job (``collates[job]``), tensors as numpy arrays (they pickle several times faster)."""
    for task in batch["task"]:
        items = task.payload
        rows, inputs, failures = collates[task.job]([items[i] for i in range(len(items))])
        task.payload = Batch(rows, None if inputs is None else {k: v.numpy() for k, v in inputs.items()}, failures)
    return batch


class EncoderActor:
    """Encoder stage on Ray: loads every job's featurizer once (one process for the whole run) and encodes
    each read task with its job's featurizer; failed rows pass through as ``(row, reason)``."""

    def __init__(self, jobs, device, auto, actors):
        from memeprobe.featurize.encoder import Encoder, resolve_device
        from memeprobe.featurize.spec import create_featurizer

        device = resolve_device(device)
        if device.type == "cpu":  # Ray pins a 1-CPU worker to 1 thread; torch's own default is every core
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // actors))
        loaded, self.jobs = {}, []
        for spec, options, modality, provenance, batch in jobs:
            if spec.text not in loaded:
                f = loaded[spec.text] = create_featurizer(spec, options)
                f.load(device)
                if f.provenance() != provenance:
                    raise MemeprobeError(f"{f.name}: this Ray worker reads other weights or pre-processing than the "
                                         f"store records ({f.provenance()} != {provenance}); give every node the same "
                                         "files")
            self.jobs.append(Encoder(loaded[spec.text], modality, batch, auto))

    def __call__(self, batch: dict) -> dict:
        import torch

        for task in batch["task"]:
            rows, inputs, failures = task.payload
            values = self.jobs[task.job]({k: torch.from_numpy(v) for k, v in inputs.items()}) if len(rows) else None
            task.payload = (rows, values, failures)
        return batch


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
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.enable_fallback_to_arrow_object_ext_type = True  # tasks are pickled objects, on purpose
        context.execution_options.preserve_order = True  # jobs end one after the other, as locally
        return ray

    def _device(self, ray) -> str:
        """Where actors encode: cfg.device, with auto = cuda when the cluster has GPUs."""
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.cfg.device == "auto":
            return "cuda" if gpus > 0 else "cpu"
        if self.cfg.device.startswith("cuda") and not gpus:
            raise ConfigError("encoding on cuda was asked for but the Ray cluster has no GPU")
        return self.cfg.device

    def run(self, jobs, dataset, progress) -> None:
        """One pipeline (one actor pool) for every job of the run; writes each task's rows as it arrives and ends
        a job with ``progress.finish`` when all its rows are in."""
        from memeprobe.featurize.runner import CPU_BATCH, CUDA_START_BATCH

        cfg, ray = self.cfg, self._ray()
        device = self._device(ray)
        gpus = 1 if device.startswith("cuda") else 0
        auto = cfg.batch_size == "auto"
        sizes = [(CUDA_START_BATCH if gpus else CPU_BATCH[job.modality]) if auto else int(cfg.batch_size)
                 for job in jobs]
        tasks = [Task(j, job.items(dataset, job.todo[positions]))
                 for j, job in enumerate(jobs) for positions in job.batches(dataset, sizes[j])]
        # reader tasks ask for half a core: Ray fuses map stages with equal resources into the actor, which
        # would then decode and encode in turn; apart, reading overlaps encoding as DataLoader workers do
        ds = ray.data.from_items([{"task": t} for t in tasks])
        ds = ds.map_batches(read_batches, batch_size=1, batch_format="numpy", num_cpus=0.5,
                            fn_args=([job.collate() for job in jobs],))
        ds = ds.map_batches(EncoderActor, batch_size=1, batch_format="numpy", num_gpus=gpus,
                            num_cpus=0 if gpus else 1, compute=ray.data.ActorPoolStrategy(size=cfg.ray_actors),
                            fn_constructor_args=([(job.f.spec, job.f.options, job.modality, job.f.provenance(), size)
                                                  for job, size in zip(jobs, sizes)], device, auto, cfg.ray_actors))
        left = [len(job.todo) for job in jobs]
        try:
            for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for task in out["task"]:
                    rows, values, failures = task.payload
                    progress.writer(task.job).batch(rows, values, failures)
                    left[task.job] -= len(rows) + len(failures)
                    if not left[task.job]:
                        progress.finish(task.job, f"batch size {sizes[task.job]}, "
                                                  f"Ray: {cfg.ray_actors} encoder actors on {device}")
        except MemeprobeError:
            raise
        except Exception as e:
            ours = _our_error(e)
            if ours is None:
                raise
            raise ours from None
