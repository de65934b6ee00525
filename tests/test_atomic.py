"""Outputs appear whole or not at all: a failed write leaves the previous output and no temp file."""
import pytest

from memeprobe.atomic import atomic_dir, atomic_write
from memeprobe.errors import MemeprobeError


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "model.pt"
    with atomic_write(out, "wb") as f:
        f.write(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(out, "wb") as f:
            f.write(b"new, half written")
            raise KeyboardInterrupt
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_folder_is_replaced_as_a_whole(tmp_path):
    out = tmp_path / "report"
    with atomic_dir(out, "report") as d:
        (d / "report.json").write_text("{}")
        (d / "clean_ids").mkdir()
    with pytest.raises(RuntimeError):
        with atomic_dir(out, "report") as d:
            (d / "report.json").write_text('{"new": 1}')
            raise RuntimeError("killed mid-report")
    assert sorted(p.name for p in out.iterdir()) == ["clean_ids", "report.json"]
    assert (out / "report.json").read_text() == "{}"
    with atomic_dir(out, "report") as d:
        (d / "pairs.csv").write_text("a,b\n")
    assert [p.name for p in out.iterdir()] == ["pairs.csv"]  # no file of the old folder survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_unwritable_target_is_one_line_naming_it(tmp_path):
    target = tmp_path / "missing_dir" / "sub.csv"
    with pytest.raises(MemeprobeError, match="cannot write .*sub.csv"):
        with atomic_write(target) as f:
            f.write("id,proba,label\n")
