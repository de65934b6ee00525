"""`store info|verify|export` take the store as PATH or as --store PATH, like every other command."""
import json

from click.testing import CliRunner

from memeprobe.cli import main
from tests.test_store_api import _store


def test_store_commands_accept_path_or_store_option(tmp_path):
    path = str(_store(tmp_path / "s.h5"))
    run = CliRunner().invoke
    by_arg, by_opt = (run(main, ["store", "info", *a, "--json"]) for a in ([path], ["--store", path]))
    assert by_arg.exit_code == by_opt.exit_code == 0 and json.loads(by_arg.output) == json.loads(by_opt.output)
    assert run(main, ["store", "verify", "--store", path]).output.strip() == "ok"
    r = run(main, ["store", "export", "--store", path, "-f", "f", "--to", str(tmp_path / "e.npz")])
    assert r.exit_code == 0 and (tmp_path / "e.npz").exists(), r.output
    both = run(main, ["store", "verify", path, "--store", str(tmp_path / "other.h5")])
    assert both.exit_code == 2 and "two stores given" in both.output
    none = run(main, ["store", "info"])
    assert none.exit_code == 2 and "no store given: pass PATH or --store PATH" in none.output
