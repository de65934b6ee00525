"""The thread plan (memeprobe.threads): free cores measured from /proc, user settings first, re-measured while
a run goes on, and recorded by the commands."""
import json
import os
import subprocess
import sys
import time

import pytest

from memeprobe import threads
from tests.helpers import cli
from tests.test_heads_cli import make_store

THREAD_VARS = (*threads.USER_ENV, "OMP_WAIT_POLICY")
linux = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="measures other processes through /proc")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    return {**env, **extra}


def _python(code, **env):
    proc = subprocess.run([sys.executable, "-c", code], env=_env(**env), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


class _Neighbours:
    """``n`` CPU-bound processes while the block runs."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


@pytest.mark.parametrize("cores, others, expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 2.0, 1), (2, 7.5, 1), (8, 3.0, 5), (8, 0.2, 8), (1, 0.0, 1)])
def test_decide_gives_the_free_cores_rounded_and_at_least_one(cores, others, expected):
    assert threads.decide(cores, others) == expected


PLAN = "import json; from memeprobe import threads; print(json.dumps(threads.plan().as_dict()))"


@linux
def test_one_neighbour_per_core_leaves_one_thread_and_keeps_the_loader_workers():
    n = threads.cores()
    with _Neighbours(n):
        plan = json.loads(_python(PLAN).stdout)
    assert plan["source"] == "auto"
    assert plan["others"] >= n - 0.75, plan
    assert plan["threads"] == 1 and plan["jobs"] == 1, plan
    assert plan["workers"] == min(threads.MAX_WORKERS, n)  # processes that never wait on each other
    assert threads.worker_count() == min(threads.MAX_WORKERS, n)


def test_the_users_threads_win_over_the_measurement():
    assert json.loads(_python(PLAN, OMP_NUM_THREADS="3").stdout)["threads"] == 3
    assert json.loads(_python(PLAN, OMP_NUM_THREADS="3").stdout)["source"] == "OMP_NUM_THREADS=3"
    p = json.loads(_python("import json; from memeprobe import threads; "
                           "print(json.dumps(threads.plan(threads=2, workers=5).as_dict()))", OMP_NUM_THREADS="3").stdout)
    assert (p["threads"], p["workers"], p["source"]) == (2, 5, "--threads")


RECHECK = """
import sys, time
import torch
from memeprobe import threads
threads.apply(threads.plan())
print("planned", flush=True)
sys.stdin.readline()  # the neighbours run now (started by the test: not this process's children, which count as its own)
time.sleep(threads.RECHECK_S + 0.5)
threads.recheck()
print(torch.get_num_threads(), threads.active().threads, threads.active().source)
"""


@linux
def test_recheck_moves_torch_to_one_thread_when_neighbours_start_during_the_run():
    proc = subprocess.Popen([sys.executable, "-c", RECHECK], env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "planned"
        with _Neighbours(threads.cores()):
            out, err = proc.communicate("go\n", timeout=120)
    finally:
        proc.kill()
    assert out.split() == ["1", "1", "auto"], out + err
    if threads.cores() > 1 and "->" in err:  # the start was quiet: the move is logged
        assert f"threads: {threads.cores()} -> 1" in err


def test_apply_sets_the_libraries_and_the_variables_children_inherit():
    code = ("import os, json; from threadpoolctl import threadpool_info; from memeprobe import threads; "
            "threads.apply(threads.plan(threads=1)); import torch; "
            "print(json.dumps([torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], "
            "sorted({i['num_threads'] for i in threadpool_info()})]))")
    assert json.loads(_python(code).stdout) == [1, "1", [1]]


def test_train_head_logs_its_plan_and_records_it_in_runs_jsonl(tmp_path):
    store = make_store(tmp_path / "hm.h5")
    cli = os.path.join(os.path.dirname(sys.executable), "memeprobe")
    for extra, source in (([], "auto"), (["--threads", "1"], "--threads")):
        proc = subprocess.run([cli, "train-head", "logreg", "--store", str(store), "--feature-set", "txt",
                               "--bootstrap", "0", *extra], env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "threads: " in proc.stderr and "loader workers" in proc.stderr
        record = json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])
        assert record["threads"]["source"] == source and record["threads"]["cores"] == threads.cores()
        if source == "--threads":
            assert record["threads"]["threads"] == 1 and "(--threads; " in proc.stderr


def test_threads_with_the_ray_engine_is_one_line_not_ignored(tmp_path):
    r = cli("featurize", "all", tmp_path, "--store", tmp_path / "s.h5", "--engine", "ray", "--threads", "1", code=2)
    assert "--threads applies to --engine local" in r.output and not (tmp_path / "s.h5").exists()
