"""The ``memeprobe`` command line: a thin shell over the subpackages' click commands."""
from __future__ import annotations

import sys

import click

from memeprobe import __version__
from memeprobe.data import commands as data
from memeprobe.demo import commands as demo
from memeprobe.errors import MemeprobeError, Outcome, exit_code
from memeprobe.featurize import commands as featurize
from memeprobe.heads import commands as heads
from memeprobe.leakage import commands as leakage
from memeprobe.store import commands as store


class _Group(click.Group):
    """Turns MemeprobeError into one clear line on stderr (no traceback), and it or a command's Outcome into the
    exit code of :data:`memeprobe.errors.EXIT_CODES`; an error that names the option fixing it gets that CLI option
    as a hint, when the command that ran has that option."""

    def parse_args(self, ctx, args):
        ctx.meta["memeprobe.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MemeprobeError as e:
            flag = _params(ctx).get(getattr(e, "option", None))
            hint = f" ({flag})" if flag else ""
            click.echo(f"error: {e}{hint}", err=True)
            sys.exit(exit_code(e))
        except Outcome as e:  # the command reported it already
            sys.exit(exit_code(e))


def _params(ctx) -> dict[str, str]:
    """``{parameter name: its flag}`` of the (sub)command the arguments of this run name."""
    command, args = ctx.command, ctx.meta.get("memeprobe.args", [])
    while isinstance(command, click.Group) and args:
        sub = command.get_command(ctx, args[0])
        if sub is None:
            break
        command, args = sub, args[1:]
    return {p.name: max(p.opts, key=len) for p in command.params}


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="memeprobe")
def main():
    """Featurize memes once with frozen encoders, find cross-split leakage, train light heads on a CPU."""


def _register(*packages):
    """Add the click commands of each package's ``commands`` module (its ``COMMANDS``) to ``main``."""
    for module in packages:
        for command in module.COMMANDS:
            main.add_command(command)


_register(data, store, featurize, leakage, heads, demo)
