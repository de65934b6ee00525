"""``featurize --engine ray --ray-address`` on a real two-node Ray cluster on this machine (``ray start --head``
and ``ray start --address``, two process groups, as a user runs one): a killed driver stops nothing of the
user's cluster; a node lost mid-run costs no row (the run ends on the node left, or stops with one line)
and a re-run completes the store a clean run writes."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from memeprobe.demo.synthetic import make_sample
from memeprobe.featurize import ray_reaper
from memeprobe.store import DONE, FeatureStore
from tests.test_featurize_resume import _alive, _descendants
from tests.test_featurize_runner import featurize

pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow

N = 96
RAY = str(Path(sys.executable).with_name("ray"))
ENV = dict(os.environ, RAY_AUTH_MODE="token")  # `ray start --head` enables token auth; the other node must too


def _port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _node(root, log, *args) -> subprocess.Popen:
    """``ray start ... --block`` in a process group of its own; returns once it says the runtime started."""
    ports = [f"--{name}={_port()}" for name in ("node-manager-port", "object-manager-port", "metrics-export-port",
                                               "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                               "runtime-env-agent-port")]
    with open(log, "w") as out:
        proc = subprocess.Popen([RAY, "start", *args, *ports, f"--temp-dir={root}", "--disable-usage-stats",
                                 f"--object-store-memory={150 * 1024**2}", "--block"], stdout=out,
                                stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    deadline = time.time() + 120
    while "Ray runtime started" not in Path(log).read_text():
        assert proc.poll() is None and time.time() < deadline, Path(log).read_text()[-2000:]
        time.sleep(0.2)
    return proc


def _kill_node(proc) -> None:
    """SIGKILL a node: its `ray start` process and everything below it, at once."""
    below = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in _alive(below):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


@pytest.fixture(scope="module")
def cluster():
    """A head node with 2 CPUs (the encoder actor and reader tasks fit on it alone) and a second node with 1 CPU."""
    root = tempfile.mkdtemp(prefix="mprc-", dir="/tmp")  # short: Ray's socket paths live below it
    port = _port()
    head = _node(root, f"{root}/head.log", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false")
    address = re.search(r"--address='([^']+)'", Path(f"{root}/head.log").read_text()).group(1)
    second = _node(root, f"{root}/second.log", f"--address={address}", "--num-cpus=1")
    try:
        yield address, head, second
    finally:
        for proc in (second, head):
            if proc.poll() is None:
                _kill_node(proc)
        ray_reaper.reap(os.path.join(root, ""), "-", {os.getpid()})  # stragglers of both nodes, then the folder


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster_sample")
    make_sample(d, n=N, seed=5)
    return d


def _run(sample, store, address, log):
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "image",
                                 str(sample), "--featurizer", "pixels", "--batch-size", "1", "--no-progress",
                                 "--store", str(store), "--engine", "ray", "--ray-address", address],
                                stdout=err, stderr=subprocess.STDOUT, env=ENV)


def _done(store) -> int:
    try:
        with FeatureStore.open(store) as st:
            return int((st.status("pixels", "image") == DONE).sum()) if "pixels" in st.feature_sets() else 0
    except Exception:  # the file is still being created
        return 0


def _same_as_clean(store, sample, tmp_path):
    clean = tmp_path / "clean.h5"
    assert featurize("image", sample, "--featurizer", "pixels", "--store", clean).exit_code == 0
    with FeatureStore.open(store) as got, FeatureStore.open(clean) as want:
        for a in ("image_embed", "image_phash"):
            np.testing.assert_array_equal(got.read("pixels", a), want.read("pixels", a), err_msg=a)
        np.testing.assert_array_equal(got.status("pixels", "image"), want.status("pixels", "image"))
        assert got.verify() == []


def test_a_killed_driver_stops_nothing_of_the_joined_cluster(cluster, sample, tmp_path):
    address, head, second = cluster
    nodes = {key: cmd for proc in (head, second) for key, cmd in _descendants(proc.pid).items()
             if not cmd.startswith(b"ray::") or b"Agent" in cmd}  # the user's cluster (not its task workers)
    store = tmp_path / "s.h5"
    proc = _run(sample, store, address, tmp_path / "run.log")
    deadline = time.time() + 180
    while proc.poll() is None and _done(store) < 8 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < _done(store) < N, (tmp_path / "run.log").read_text()
    time.sleep(5)
    assert head.poll() is None and second.poll() is None
    gone = [nodes[key][:80] for key in nodes if key[0] not in _alive(nodes)]
    assert not gone, f"processes of the user's cluster gone after the driver was killed: {gone}"
    resumed = _run(sample, store, address, tmp_path / "resume.log")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "resume.log").read_text()
    assert not [key for key in nodes if key[0] not in _alive(nodes)]  # a run that ends stops nothing either
    _same_as_clean(store, sample, tmp_path)


def test_a_node_lost_mid_run_costs_no_row(cluster, sample, tmp_path):
    address, head, second = cluster
    store = tmp_path / "s.h5"
    proc = _run(sample, store, address, tmp_path / "run.log")
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline and _done(store) == 0:
        time.sleep(0.005)
    working = [c for c in _descendants(second.pid).values() if c.startswith(b"ray::") and b"Agent" not in c]
    _kill_node(second)  # mid-run, with the run's encoder actor or reader tasks on it
    assert working and 0 < _done(store) < N, ((tmp_path / "run.log").read_text(), working)
    code = proc.wait(timeout=600)
    log = (tmp_path / "run.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert code == 0 or (code == 2 and len(errors) == 1 and "re-run the same command to resume" in errors[0]), log
    assert "Traceback" not in log
    again = _run(sample, store, address, tmp_path / "again.log")
    assert again.wait(timeout=300) == 0, (tmp_path / "again.log").read_text()
    _same_as_clean(store, sample, tmp_path)


def test_joining_without_the_clusters_token_is_one_line(cluster, sample, tmp_path):
    address, _, _ = cluster
    env = {k: v for k, v in ENV.items() if k != "RAY_AUTH_MODE"}  # an explicit address does not turn token auth on
    result = subprocess.run([sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "image",
                             str(sample), "--featurizer", "pixels", "--store", str(tmp_path / "s.h5"), "--engine", "ray",
                             "--ray-address", address], capture_output=True, text=True, env=env, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert "cannot join the Ray cluster" in errors[0] and "RAY_AUTH_MODE=token" in errors[0], errors
    assert "Traceback" not in result.stderr
