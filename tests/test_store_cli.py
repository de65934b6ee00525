"""`store info|verify|export` take the store as PATH or as --store PATH, like every other command."""
import json

import h5py
from click.testing import CliRunner

from memeprobe.cli import main
from memeprobe.errors import (EXIT_CODES, Interrupted, MemeprobeError, ProblemsFound, RowsFailed, StoreError,
                              StoreLockedError, exit_code)
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


def test_exit_codes_are_declared_once_and_used_by_the_cli(tmp_path):
    """errors.EXIT_CODES decides every exit code: a class takes its nearest listed base's code."""
    assert [exit_code(e) for e in (ProblemsFound(), StoreError(), StoreLockedError(), RowsFailed(), Interrupted())] \
        == [1, 2, 2, 3, 130]
    path = str(_store(tmp_path / "s.h5"))
    run = CliRunner().invoke
    missing = run(main, ["store", "info", str(tmp_path / "none.h5")])
    assert missing.exit_code == EXIT_CODES[MemeprobeError] == 2 and "does not exist" in missing.output
    with h5py.File(path, "r+") as f:
        f["features/f/text_embed"][3, 0] += 1.0
    damaged = run(main, ["store", "verify", path])
    assert damaged.exit_code == EXIT_CODES[ProblemsFound] == 1 and "1 problem(s)" in damaged.output
    assert isinstance(damaged.exception, SystemExit)  # mapped by the CLI, not an uncaught ProblemsFound
