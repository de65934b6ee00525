"""Every command's help writes defaults one way: click's ``[default: X]``."""
import click
from click.testing import CliRunner

from memeprobe.cli import main


def _commands(group, path=()):
    for name, cmd in group.commands.items():
        yield (*path, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def test_help_shows_defaults_one_way():
    paths = list(_commands(main))
    assert ("featurize", "all") in paths and ("store", "info") in paths and ("train-head",) in paths
    for path in paths:
        out = CliRunner().invoke(main, [*path, "--help"], terminal_width=200).output
        assert "Usage:" in out, path
        assert "(default:" not in out and "; default:" not in out, (path, out)
    assert "[default: auto]" in CliRunner().invoke(main, ["featurize", "all", "--help"]).output
