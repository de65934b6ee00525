"""Resume parity of the two engines with real processes: a ``featurize --engine ray`` run SIGKILLed between
jobs or during its last batch resumes with ``--engine ray`` and with ``--engine local`` into the store a
clean run writes; a Ray run over a finished store does nothing and says so; a killed driver that
started its own cluster leaves no process of it behind."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from memeprobe.demo.synthetic import make_sample
from memeprobe.store import DONE, FAILED, FeatureStore
from tests.test_featurize_ray import cluster  # noqa: F401  (fixture: a local cluster the runs join)
from tests.test_featurize_runner import featurize

pytest.importorskip("ray")
pytest.importorskip("ray.data")

N, BATCH = 48, 8
TEXT, IMAGE = "st-minilm/text", "timm-tf_efficientnet_lite0-packaged/image"
SPECS = ["--featurizer", "st:minilm", "--featurizer", "timm:tf_efficientnet_lite0:packaged"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """make_sample memes, one of them with a corrupt image (a failed row that resuming must keep as it is)."""
    d = tmp_path_factory.mktemp("resume_sample")
    make_sample(d, n=N, seed=3)
    first = json.loads((d / "train.jsonl").read_text().splitlines()[0])
    (d / first["img"]).write_bytes(b"not an image" * 20)
    return d


@pytest.fixture(scope="module")
def clean(sample, tmp_path_factory):
    """The store of one uninterrupted local run."""
    path = tmp_path_factory.mktemp("clean") / "clean.h5"
    result = featurize("all", sample, *SPECS, "--store", path, "--batch-size", BATCH)
    assert result.exit_code == 3, result.output  # the corrupt image, listed
    return path


def _args(sample, store, *extra):
    return [sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "all", str(sample), *SPECS,
            "--store", str(store), "--batch-size", str(BATCH), "--no-progress", *extra]


def _done(store, key) -> np.ndarray:
    """Rows of ``key`` (set/modality) the store marks done now (none while it is being created)."""
    name, modality = key.split("/")
    try:
        with FeatureStore.open(store) as st:
            return st.status(name, modality) == DONE if name in st.feature_sets() else np.zeros(N, bool)
    except Exception:  # the file is still being created
        return np.zeros(N, bool)


def _descendants(pid: int) -> dict[tuple[int, str], bytes]:
    """{(pid, start time): command line} of every live process below ``pid``."""
    children, start = {}, {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{name}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(name))
            start[int(name)] = fields[19]
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child, start[child]] = open(f"/proc/{child}/cmdline", "rb").read()
            except OSError:
                continue
            todo.append(child)
    return found


def _alive(procs) -> list[int]:
    alive = []
    for pid, started in procs:
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive


def _kill(sample, store, when, log, *extra):
    """Start a Ray run, SIGKILL it at ``when`` ("between jobs": right after the text job's end is logged;
    "last batch": once every image batch but the last is written); returns (rows done per job when the
    kill came, the processes below the driver then)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(_args(sample, store, "--engine", "ray", *extra), stdout=subprocess.DEVNULL, stderr=err)
    deadline, below = time.time() + 240, {}
    try:
        while time.time() < deadline and proc.poll() is None:
            if when == "between jobs" and f"{TEXT}: {N} rows in" in log.read_text():
                break
            if when == "last batch" and _done(store, IMAGE).sum() >= N - 1 - BATCH:
                break
            time.sleep(0.01)
        below = _descendants(proc.pid)
        seen = {key: _done(store, key) for key in (TEXT, IMAGE)}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, log.read_text()
    with FeatureStore.open(store) as st:  # every row reported before the kill is still done
        for key, done in seen.items():
            name, modality = key.split("/")
            assert (st.status(name, modality)[done] == DONE).all(), key
    return seen, below


def _same_as_clean(store, clean):
    with FeatureStore.open(store) as got, FeatureStore.open(clean) as want:
        assert got.feature_sets() == want.feature_sets()
        for name in want.feature_sets():
            assert {k: v for k, v in got.provenance(name).items() if k != "created"} == \
                   {k: v for k, v in want.provenance(name).items() if k != "created"}
            assert got.failures(name) == want.failures(name)
            for m in want.modalities(name):
                np.testing.assert_array_equal(got.status(name, m), want.status(name, m), err_msg=f"{name}/{m}")
            for a in want.arrays(name):  # the model on other batch compositions: equal within float16 rounding
                np.testing.assert_allclose(got.read(name, a).astype(np.float32), want.read(name, a).astype(np.float32),
                                           rtol=2**-10, atol=1e-4, err_msg=f"{name}/{a}")
        assert (want.status("timm-tf_efficientnet_lite0-packaged", "image") == FAILED).sum() == 1
        assert got.verify() == []


def test_ray_run_killed_between_jobs_and_in_its_last_batch_resumes_with_ray(cluster, sample, clean, tmp_path):
    store = tmp_path / "ray.h5"
    seen, _ = _kill(sample, store, "between jobs", tmp_path / "1.log", "--ray-address", cluster)
    assert seen[TEXT].all() and seen[IMAGE].sum() < N - 1, seen  # the text job done, the image job not
    seen, _ = _kill(sample, store, "last batch", tmp_path / "2.log", "--ray-address", cluster)  # resumed, killed again
    assert seen[IMAGE].sum() == N - 1 - BATCH, (tmp_path / "1.log").read_text() + (tmp_path / "2.log").read_text()
    resumed = subprocess.run(_args(sample, store, "--engine", "ray", "--ray-address", cluster), capture_output=True,
                             text=True)
    assert resumed.returncode == 3, resumed.stderr  # the corrupt image, as in the clean run
    assert f"{IMAGE}: {BATCH} rows to do ({N - 1 - BATCH} done, 1 failed before)" in resumed.stderr
    _same_as_clean(store, clean)
    again = subprocess.run(_args(sample, store, "--engine", "ray"), capture_output=True, text=True)
    assert again.returncode == 3, again.stderr
    assert "nothing to do: every selected row is done or failed (1 failed" in again.stderr
    assert "first rows written" not in again.stderr  # no cluster, no model
    _same_as_clean(store, clean)


def test_ray_run_killed_in_its_last_batch_resumes_with_local_and_leaves_no_process(sample, clean, tmp_path):
    store = tmp_path / "local.h5"
    seen, below = _kill(sample, store, "last batch", tmp_path / "1.log")  # no --ray-address: its own cluster
    assert seen[TEXT].all() and seen[IMAGE].sum() == N - 1 - BATCH
    names = b" ".join(below.values())
    assert b"raylet" in names and b"ray::" in names, f"the run's own cluster was not found below it: {names[:500]}"
    deadline = time.time() + 30
    while _alive(below) and time.time() < deadline:
        time.sleep(0.5)
    left = {pid: below[pid, started][:80] for pid, started in below if pid in _alive(below)}
    assert not left, f"processes of the killed run's cluster still alive 30 s after the kill: {left}"
    resumed = featurize("all", sample, *SPECS, "--store", store, "--batch-size", BATCH)
    assert resumed.exit_code == 3, resumed.output
    assert f"{IMAGE}: {BATCH} rows to do ({N - 1 - BATCH} done, 1 failed before)" in resumed.output
    _same_as_clean(store, clean)


def test_local_partial_store_resumes_with_ray_after_the_sets_exist(cluster, sample, clean, tmp_path):
    """A set already in the store (here after --limit) is made ready on the Ray engine too: no crash, no good
    image marked failed."""
    store = tmp_path / "partial.h5"
    assert featurize("all", sample, *SPECS, "--store", store, "--batch-size", BATCH, "--limit", 20).exit_code == 3
    shutil.copy(store, tmp_path / "copy.h5")
    resumed = featurize("all", sample, *SPECS, "--store", store, "--batch-size", BATCH, "--engine", "ray")
    assert resumed.exit_code == 3, resumed.output
    assert f"{TEXT}: {N - 20} rows to do (20 done, 0 failed before)" in resumed.output
    _same_as_clean(store, clean)


def test_ctrl_c_of_a_ray_run_saves_its_rows_and_ends_its_cluster(sample, tmp_path):
    store = tmp_path / "s.h5"
    args = _args(sample, store, "--engine", "ray")
    # started from a background shell a child ignores SIGINT: restore Python's handler (as test_featurize_runner does)
    args[2] = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " + args[2]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stderr:
        if line.startswith("first rows written"):
            below = _descendants(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert "interrupted: " in rest and "re-run the same command to resume" in rest and "Traceback" not in rest
    assert not _alive(below), {pid: below[pid, started][:80] for pid, started in below if pid in _alive(below)}
    assert _done(store, TEXT).sum() > 0
