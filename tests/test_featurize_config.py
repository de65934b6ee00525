"""How a run is configured: RunConfig checked by its constraint dict (before any heavy import), the batch
policy of both engines, and a featurize command's help without torch or ray."""
import subprocess
import sys

import pytest
from click.testing import CliRunner

from memeprobe import threads
from memeprobe.cli import main
from memeprobe.errors import ConfigError
from memeprobe.featurize import batching
from memeprobe.featurize.config import CONSTRAINTS, RunConfig
from memeprobe.featurize.engines import ENGINES
from memeprobe.featurize.runner import featurize
from memeprobe.featurize.spec import expand


@pytest.mark.parametrize("option, value", [("engine", "rayy"), ("batch_size", 0), ("batch_size", "big"),
                                           ("workers", -1), ("limit", 0), ("ray_actors", 0), ("overwrite", 1),
                                           ("device", None), ("splits", "train")])
def test_run_config_refuses_a_bad_option_by_name(option, value):
    with pytest.raises(ConfigError, match=f"featurize: {option.replace('_', '-')} must be") as e:
        RunConfig(**{option: value})
    assert e.value.option == option


def test_run_config_constraints_cover_every_option_and_engine():
    assert set(CONSTRAINTS) == set(vars(RunConfig()))
    for engine in ENGINES:
        assert RunConfig(engine=engine, batch_size=7, workers=0, splits=["train"], limit=3).engine == engine


def test_a_config_changed_after_creation_is_checked_before_the_store_is_touched(tmp_path):
    cfg = RunConfig(progress=False)
    cfg.ray_actors = 0
    with pytest.raises(ConfigError, match="ray-actors"):
        featurize(object(), tmp_path / "s.h5", expand(["pixels"]), cfg=cfg)
    assert not (tmp_path / "s.h5").exists()


def test_batch_policy():
    assert [batching.batch_size("auto", m, cuda) for m in ("image", "text") for cuda in (False, True)] == \
        [32, batching.CUDA_START_BATCH, 128, batching.CUDA_START_BATCH]
    assert batching.batch_size(5, "text", True) == 5
    assert [batching.halves(r, cuda) for r in ("auto", 5) for cuda in (False, True)] == [False, True, False, False]
    assert batching.workers(3, 100, 32) == 3 and batching.workers(None, 32, 32) == 0
    assert batching.workers(None, 100, 32) == min(threads.MAX_WORKERS, threads.cores())
    texts = ["bb", "a", "dddd", "cc", "eeee"]
    assert batching.batches("text", texts, 5, 2) == [[2, 4], [0, 3], [1]]  # longest first, ties in order
    assert batching.batches("image", None, 5, 2) == [[0, 1], [2, 3], [4]]
    assert batching.parse_batch_size("auto") == "auto" and batching.parse_batch_size("12") == 12
    for bad in ("0", "-3", "1.5", "x"):
        with pytest.raises(ValueError):
            batching.parse_batch_size(bad)


def test_bad_batch_size_is_one_usage_line(tmp_path):
    result = CliRunner().invoke(main, ["featurize", "all", str(tmp_path), "--store", str(tmp_path / "s.h5"),
                                       "--featurizer", "pixels", "--batch-size", "0"])
    assert result.exit_code == 2 and "expected 'auto' or a positive integer" in result.output


def test_featurize_help_imports_no_torch_or_ray():
    code = ("import sys\nfrom memeprobe.cli import main\n"
            "try:\n    main(['featurize', 'all', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'ray', 'transformers', 'open_clip', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--engine [local|ray]" in out and out.strip().splitlines()[-1] == "[]"
