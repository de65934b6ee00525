"""``featurize --engine ray`` on a local 2-CPU Ray cluster: the same store as the local engine (bad images,
failure reasons, provenance, status ledger). Killed Ray runs and their resumes: tests/test_featurize_resume.py."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from memeprobe.demo.synthetic import make_sample
from memeprobe.store import DONE, FeatureStore
from tests.test_featurize_images import write_bad_images
from tests.test_featurize_runner import featurize

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

N = 48
SPECS = ["--featurizer", "pixels", "--featurizer", "st:minilm"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module (the engine uses it, as a joined cluster, and leaves it running)."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=256 * 1024**2, log_to_driver=False,
             configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """make_sample memes, three of them with a corrupt, an empty and a missing image."""
    d = tmp_path_factory.mktemp("ray_sample")
    make_sample(d, n=N, seed=1)
    rows = [json.loads(line) for line in (d / "train.jsonl").read_text().splitlines()]
    write_bad_images(d)
    for r, name in zip(rows, ["corrupt.png", "empty.png"]):
        shutil.copyfile(d / name, d / r["img"])
    os.remove(d / rows[2]["img"])
    return d


def _contents(path):
    with FeatureStore.open(path) as st:
        out = {}
        for name in st.feature_sets():
            out[name, "provenance"] = {k: v for k, v in st.provenance(name).items() if k != "created"}
            out[name, "failures"] = st.failures(name)
            for m in st.modalities(name):
                out[name, f"status/{m}"] = st.status(name, m)
            for a in st.arrays(name):
                out[name, a] = st.read(name, a)
        return out


def _encoder_actors() -> int:
    """Encoder actors the cluster has started so far (the GCS actor table: the public state API needs the
    dashboard, which these clusters run without)."""
    from ray._private.state import actors

    return sum("EncoderActor" in a["ActorClassName"] for a in actors().values())


def test_ray_engine_writes_the_store_the_local_engine_writes(cluster, sample, tmp_path):
    local, distributed = tmp_path / "local.h5", tmp_path / "ray.h5"
    common = ["all", sample, *SPECS, "--batch-size", "8", "--workers", "0"]
    first = featurize(*common, "--store", local)
    started = _encoder_actors()
    second = featurize(*common, "--store", distributed, "--engine", "ray")
    assert first.exit_code == second.exit_code == 3, second.output  # 3 bad images, listed alike
    assert "Ray: 1 encoder actors" in second.output
    assert _encoder_actors() - started == 1  # one actor (pool) for both feature sets and modalities of the run
    done = [line.split(":")[0] for line in second.output.splitlines() if " rows in " in line]
    assert done == ["pixels/image", "st-minilm/text"]  # jobs end in order, each logged once
    assert [line for line in first.output.splitlines() if line.startswith("failed ")] == \
           [line for line in second.output.splitlines() if line.startswith("failed ")]
    want, got = _contents(local), _contents(distributed)
    assert got.keys() == want.keys()
    for key in want:
        if key[1] in ("provenance", "failures") or key[1].startswith("status/") or key[0] == "pixels":
            # per-row computations: identical whatever the batches
            np.testing.assert_equal(got[key], want[key], err_msg=str(key))
        else:  # a model run on other batch compositions: equal within float16 rounding
            np.testing.assert_allclose(got[key].astype(np.float32), want[key].astype(np.float32),
                                       rtol=2**-10, atol=1e-4, err_msg=str(key))
    assert (want["pixels", "status/image"] == DONE).sum() == N - 3
    again = featurize(*common, "--store", distributed, "--engine", "ray")
    assert "pixels/image: 0 rows to do" in again.output and "st-minilm/text: 0 rows to do" in again.output
    assert "nothing to do: every selected row is done or failed (3 failed" in again.output


def test_encoding_on_cuda_on_a_cluster_without_gpu_is_one_clear_error(cluster, sample, tmp_path):
    result = featurize("image", sample, "--featurizer", "pixels", "--store", tmp_path / "s.h5", "--engine", "ray",
                       "--device", "cuda")
    assert result.exit_code == 2
    assert "the Ray cluster has no GPU" in result.output and "Traceback" not in result.output


def test_a_cluster_address_where_nothing_answers_is_one_line_at_once(sample, tmp_path):
    result = subprocess.run([sys.executable, "-c", "from memeprobe.cli import main; main()", "featurize", "image",
                             str(sample), "--featurizer", "pixels", "--store", str(tmp_path / "s.h5"), "--engine", "ray",
                             "--ray-address", "127.0.0.1:1"], capture_output=True, text=True, timeout=120)  # no Ray here
    assert result.returncode == 2
    assert "no Ray cluster answers at 127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
