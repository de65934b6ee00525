"""Ray engine: reading and encoding on a Ray cluster, writing here (the store stays the one ledger).

One pipeline per run, for every featurizer and modality still to do: ``ray.data.from_items(batches of
todo rows)`` → ``map_batches(read_batches)`` (CPU tasks: decode, pre-process and collate, failures as
data) → ``map_batches(EncoderActor)`` (``ray_actors`` actors that each load every featurizer once; one
GPU each when encoding on CUDA) → this process iterates the results and writes each batch with the same
:class:`~memeprobe.featurize.writer.StoreWriter` as the local engine, as it arrives, so a killed run
resumes from the store exactly as a local one does. Needs the ``[ray]`` extra.

Start-up is paid once: this process reads no weights. One task on its node prepares the featurizers
(:meth:`~memeprobe.featurize.base.Featurizer.prepare`: configs and tokenisers, no weights where the
family allows) while the actors start and load theirs; the reader tasks take its
:class:`~memeprobe.featurize.base.Preprocess`, this process declares the feature sets from its
:class:`~memeprobe.featurize.base.Prepared` before the first row is written, and every actor checks that
what it loaded has the same arrays and provenance.

A cluster the engine starts for itself (no ``ray_address``) ends with the run on every path: ``ray.shutdown``,
then :mod:`~memeprobe.featurize.ray_reaper` (which also acts when this process is SIGKILLed). A joined cluster
is never stopped. A node lost mid-run loses its tasks and actor: Ray runs them again on the nodes left;
when it cannot, the run stops with one line and a re-run resumes.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import uuid

from memeprobe import errors
from memeprobe.errors import ClusterError, ConfigError, MemeprobeError, WeightsError
from memeprobe.featurize import batching, ray_reaper
from memeprobe.featurize.base import Prepared, Preprocess
from memeprobe.featurize.encoder import Encoder, resolve_device
from memeprobe.featurize.reader import Batch, Collate
from memeprobe.featurize.spec import create_featurizer

LOCAL_OBJECT_STORE = 512 * 1024**2  # bytes of shared memory for a cluster started here (batches stream through)
# reader workers import torch and the featurizers' pre-processing (seconds of CPU each): keep idle ones for the
# whole run instead of Ray's 1 s (then a later job's reads would start new workers that import it all again)
KEEP_WORKERS = {"idle_worker_killing_time_threshold_ms": 3_600_000}
STALL_SECONDS = 600  # a pipeline that moves nothing for this long (no resources left) stops with one line
_OUR_ERROR = re.compile(r"memeprobe\.errors\.(\w+): (.+)")


def _chain(e: BaseException):
    """``e`` and the exceptions it wraps (Ray's ``cause``, then Python's ``__cause__`` / ``__context__``)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = getattr(e, "cause", None) or e.__cause__ or e.__context__


def _our_error(e: Exception) -> MemeprobeError | None:
    """The memeprobe error a Ray worker raised, from the (wrapped) exception Ray hands the driver."""
    found = [m.groups() for x in _chain(e) for m in _OUR_ERROR.finditer(str(x))]
    if not found:
        return None
    name, message = found[-1]
    cls = getattr(errors, name, None)
    return (cls if isinstance(cls, type) and issubclass(cls, MemeprobeError) else MemeprobeError)(message.strip())


def _cluster_failure(e: Exception) -> ClusterError | None:
    """One line for a failure of the cluster itself (a lost node, actor, worker or object, or no progress at
    all), from anywhere in the exception's chain; None for other exceptions."""
    from ray import exceptions  # lazy: ray
    from ray.data.exceptions import ExecutionTimeoutError  # lazy: ray

    lost = (exceptions.NodeDiedError, exceptions.ActorDiedError, exceptions.ActorUnavailableError,
            exceptions.WorkerCrashedError, exceptions.ObjectLostError, exceptions.RaySystemError)
    for x in _chain(e):
        if isinstance(x, ExecutionTimeoutError):
            return ClusterError(f"the Ray cluster made no progress for {STALL_SECONDS} s (after a lost node, are "
                                "there CPUs left for the reader tasks and the encoder actors?); every row written "
                                "so far is kept: re-run the same command to resume")
        if isinstance(x, lost):
            why = (str(x).strip().splitlines() or [""])[0][:200]
            return ClusterError(f"the Ray cluster failed under the run ({type(x).__name__}: {why}); every row "
                                "written so far is kept: re-run the same command to resume")
    return None


def _answers(address: str) -> None:
    """One line at once when nothing listens at a ``HOST:PORT`` cluster address (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise ClusterError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one there with "
                           f"`ray start --head --port {port}`, or give the address `ray start` printed",
                           option="ray_address") from None


def _join_error(address: str, e: Exception) -> ClusterError:
    """The one line for a cluster that answers but cannot be joined (Ray hides the reason in a cause's traceback)."""
    texts = [str(x) for x in _chain(e)]
    if any("InvalidAuthToken" in t or "AuthenticationError" in t for t in texts):
        why = ("it uses token authentication and this shell has no token for it: set RAY_AUTH_MODE=token and the "
               "cluster's token (its ~/.ray/auth_token here, or RAY_AUTH_TOKEN)")
    else:
        why = (texts[0].strip().splitlines() or ["no reason given"])[0][:300]
    return ClusterError(f"cannot join the Ray cluster at {address}: {why}", option="ray_address")


def prepare(featurizers) -> dict:
    """``{name: Prepared}`` of ``featurizers`` made ready without their weights where the family allows."""
    for f in featurizers:
        f.prepare()
    return {f.name: Prepared.of(f) for f in featurizers}


def prepare_specs(specs) -> tuple:
    """The Ray task that prepares the featurizers given as ``(spec, options)``: ``{name: Prepared}`` (for the
    driver and the actors), then each one's ``Preprocess`` as an object of its own (its readers fetch only it)."""
    featurizers = [create_featurizer(spec, options) for spec, options in specs]
    return (prepare(featurizers), *(Preprocess.of(f) for f in featurizers))


class Task:
    """One batch of one job as it moves through the pipeline (a Python object, so Ray pickles it whole
    instead of converting it to Arrow): reader items, then the read batch, then the encoded values."""

    def __init__(self, job, payload):
        self.job, self.payload = job, payload


_PREPROCESS: dict = {}  # this worker process's Preprocess per ObjectRef, fetched once


def read_batches(batch: dict, preprocess, kinds) -> dict:
    """Reader stage on Ray (CPU tasks), as a DataLoader worker does locally: each task's items
    (:meth:`~memeprobe.featurize.runner.Job.items`, bound to their featurizer's transform) → the collated
    :class:`~memeprobe.featurize.reader.Batch` of its job, tensors as numpy arrays (they pickle several times
    faster). ``kinds[job]`` = (featurizer index, modality); ``preprocess[index]``: the ObjectRef of that
    featurizer's Preprocess, from the prepare task."""
    import ray  # lazy: ray
    import torch  # noqa: F401  (lazy: torch; collating needs it, imported while the prepare task may still run)

    for task in batch["task"]:
        index, modality = kinds[task.job]
        key = preprocess[index].hex()
        if key not in _PREPROCESS:
            _PREPROCESS[key] = ray.get(preprocess[index])
        pre = _PREPROCESS[key]
        items = task.payload.bound(pre.transform)
        rows, inputs, failures = Collate.of(modality, pre)([items[i] for i in range(len(items))])
        task.payload = Batch(rows, None if inputs is None else {k: v.numpy() for k, v in inputs.items()}, failures)
    return batch


class EncoderActor:
    """Encoder stage on Ray: loads every job's featurizer once (one process for the whole run), checks it
    against what the driver's node prepared, and encodes each read task with its job's featurizer; failed
    rows pass through as ``(row, reason)``."""

    def __init__(self, jobs, prepared, device, halve, actors):
        import ray  # lazy: ray

        device = resolve_device(device)
        if device.type == "cpu":  # Ray pins a 1-CPU worker to 1 thread; torch's own default is every core
            import torch  # lazy: torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // actors))
        loaded, self.jobs = {}, []
        for spec, options, modality, batch in jobs:
            if spec.text not in loaded:
                loaded[spec.text] = create_featurizer(spec, options)
                loaded[spec.text].load(device)
            self.jobs.append(Encoder(loaded[spec.text], modality, batch, halve))
        prepared = ray.get(prepared)  # after loading: the two overlap
        for f in loaded.values():
            want, got = prepared[f.name], Prepared.of(f)
            if got != want:
                what = "weights or pre-processing" if got.provenance != want.provenance else "arrays"
                raise WeightsError(f"{f.name}: this Ray worker loads other {what} than the driver's node "
                                   f"prepared ({got} != {want}); give every node the same files")

    def __call__(self, batch: dict) -> dict:
        import torch  # lazy: torch

        for task in batch["task"]:
            rows, inputs, failures = task.payload
            values = self.jobs[task.job]({k: torch.from_numpy(v) for k, v in inputs.items()}) if len(rows) else None
            task.payload = (rows, values, failures)
        return batch


class RayEngine:
    """Joins ``cfg.ray_address`` or starts a local cluster with this machine's cores, on first use; ends what
    it started when the run ends."""

    def __init__(self, cfg):
        self.cfg, self.started, self.reaper = cfg, False, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if self.started:
                import ray  # lazy: ray

                ray.shutdown()
                self.started = False
        finally:
            if self.reaper is not None:
                self._end_reaper()

    def _start_reaper(self) -> str:
        """Start the reaper of a cluster to be kept below a fresh temp dir (returned) and mark this process's
        environment, which the cluster's processes inherit."""
        root, mark = tempfile.mkdtemp(prefix="mpray-", dir="/tmp"), uuid.uuid4().hex  # short: socket paths
        self.reaper = subprocess.Popen([sys.executable, "-I", "-S", ray_reaper.__file__, root, mark],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ[ray_reaper.MARK_VAR] = mark
        return root

    def _end_reaper(self) -> None:
        """Let the reaper kill what ``ray.shutdown`` left and wait for it (nothing of the cluster outlives the run)."""
        os.environ.pop(ray_reaper.MARK_VAR, None)
        reaper, self.reaper = self.reaper, None
        reaper.stdin.close()
        try:
            reaper.wait(timeout=ray_reaper.PATIENCE + 5)
        except subprocess.TimeoutExpired:
            pass

    def _ray(self):
        try:  # lazy: ray (an extra)
            import ray
            import ray.data  # lazy: ray
        except ImportError:
            raise ConfigError("the Ray engine needs Ray Data: pip install 'memeprobe[ray]'") from None
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if self.cfg.ray_address:
                _answers(self.cfg.ray_address)
                try:
                    ray.init(address=self.cfg.ray_address, **kw)
                except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as e:
                    raise _join_error(self.cfg.ray_address, e) from None
            else:  # "local": a new cluster even when RAY_ADDRESS or a `ray start` cluster is around
                ray.init(address="local", num_cpus=os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE,
                         _temp_dir=self._start_reaper(), _system_config=KEEP_WORKERS, **kw)
            self.started = True
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its INFO and WARNING lines are about its own settings
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.enable_fallback_to_arrow_object_ext_type = True  # tasks are pickled objects, on purpose
        context.execution_options.preserve_order = True  # jobs end one after the other, as locally
        context.execution_no_progress_timeout_s = STALL_SECONDS
        return ray

    def _device(self, ray) -> str:
        """Where actors encode: cfg.device, with auto = cuda when the cluster has GPUs."""
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.cfg.device == "auto":
            return "cuda" if gpus > 0 else "cpu"
        if self.cfg.device.startswith("cuda") and not gpus:
            raise ConfigError("encoding on cuda was asked for but the Ray cluster has no GPU")
        return self.cfg.device

    def run(self, ready, jobs, dataset, progress) -> None:
        """Prepare ``ready`` (the featurizers with work) and run one pipeline (one actor pool) for every job;
        declares the feature sets (``progress.declare``) before the first row, writes each task's rows as it
        arrives and ends a job with ``progress.finish`` when all its rows are in."""
        if not jobs:  # feature sets to create but no rows: nothing to encode, no cluster needed
            progress.declare(prepare(ready))
            return
        ray = self._ray()
        try:
            self._run(ray, ready, jobs, dataset, progress)
        except MemeprobeError:
            raise
        except Exception as e:
            ours = _our_error(e) or _cluster_failure(e)
            if ours is None:
                raise
            raise ours from None

    def _run(self, ray, ready, jobs, dataset, progress) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # lazy: ray

        cfg = self.cfg
        device = self._device(ray)
        gpus = 1 if device.startswith("cuda") else 0
        sizes = [batching.batch_size(cfg.batch_size, job.modality, bool(gpus)) for job in jobs]
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        prepare_here = ray.remote(prepare_specs).options(num_returns=1 + len(ready), num_cpus=0,
                                                         scheduling_strategy=here)
        prepared, *preprocess = prepare_here.remote([(f.spec, f.options) for f in ready])
        tasks = [Task(j, job.items(dataset, job.todo[positions]))
                 for j, job in enumerate(jobs) for positions in job.batches(dataset, sizes[j])]
        # reader tasks ask for half a core: Ray fuses map stages with equal resources into the actor, which
        # would then decode and encode in turn; apart, reading overlaps encoding as DataLoader workers do
        ds = ray.data.from_items([{"task": t} for t in tasks])
        ds = ds.map_batches(read_batches, batch_size=1, batch_format="numpy", num_cpus=0.5,
                            fn_args=(preprocess, [(ready.index(job.f), job.modality) for job in jobs]))
        ds = ds.map_batches(EncoderActor, batch_size=1, batch_format="numpy", num_gpus=gpus,
                            num_cpus=0 if gpus else 1, compute=ray.data.ActorPoolStrategy(size=cfg.ray_actors),
                            fn_constructor_args=([(job.f.spec, job.f.options, job.modality, size)
                                                  for job, size in zip(jobs, sizes)], prepared, device,
                                                 batching.halves(cfg.batch_size, bool(gpus)), cfg.ray_actors))
        left, declared = [len(job.todo) for job in jobs], False
        # the pipeline starts here; no prefetch: each result is written as soon as it exists, not when the next one does
        for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
            if not declared:
                progress.declare(ray.get(prepared))
                declared = True
            for task in out["task"]:
                rows, values, failures = task.payload
                progress.writer(task.job).batch(rows, values, failures)
                left[task.job] -= len(rows) + len(failures)
                if not left[task.job]:
                    progress.finish(task.job, f"batch size {sizes[task.job]}, "
                                              f"Ray: {cfg.ray_actors} encoder actors on {device}")
