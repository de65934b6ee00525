"""Command-line options of the data layer: :func:`dataset_options`, the one click decorator every command that
reads a dataset uses, and :class:`SuggestChoice`, a choice that names the closest value on a near miss."""
from __future__ import annotations

import functools
from dataclasses import fields

import click

from memeprobe.data.formats import FORMATS
from memeprobe.data.options import DatasetOptions
from memeprobe.registry import did_you_mean


class SuggestChoice(click.Choice):
    """click.Choice that suggests the closest choice on a near miss (``what``: the kind of value, for the message)."""

    def __init__(self, choices, what: str):
        super().__init__(choices)
        self.what = what

    def convert(self, value, param, ctx):
        if value in self.choices:
            return value
        self.fail(f"{value!r} is not a {self.what}{did_you_mean(value, self.choices)}; choose one of "
                  f"{', '.join(self.choices)}", param, ctx)


def dataset_options(allow_empty_text: bool = True):
    """Decorator adding the dataset options to a command; it receives them as one ``dataset_options``
    argument (:class:`DatasetOptions`). ``allow_empty_text=False`` leaves out ``--allow-empty-text``."""
    def decorate(f):
        opts = [
            click.option("--format", "format", type=SuggestChoice(list(FORMATS), "dataset format"), default=None,
                         show_default="detected from the files", help="Dataset format."),
            click.option("--image-root", type=click.Path(file_okay=False), default=None, show_default="the dataset folder",
                         help="Folder the image paths are relative to."),
            click.option("--id-col", default=None, show_default="id", help="generic: id column."),
            click.option("--text-col", default=None, show_default="text", help="generic: text column."),
            click.option("--image-col", default=None, show_default="image or img", help="generic: image path column."),
            click.option("--label-col", default=None, show_default="label or labels",
                         help="generic: label column; 'labels[0]' = element 0 of a list."),
            click.option("--split-col", default=None, show_default="the file name", help="generic: split column."),
            click.option("--label-names", default=None,
                         help="generic: comma-separated label names (multi-label, in this order)."),
            click.option("--positive-label", default=None, help="generic: the class that is label 1 of two classes."),
            click.option("--label-map", default=None, metavar="FROM=TO,...",
                         help="generic: rename (or merge) label values, e.g. 'not harmful=0,very harmful=1'."),
            click.option("--sep", default=None, show_default="sniffed",
                         help="generic: CSV column separator (one character, or tab)."),
            click.option("--allow-outside-root", is_flag=True,
                         help="Follow image paths that lead (through symlinks) outside the image root."),
        ]
        if allow_empty_text:
            opts.append(click.option("--allow-empty-text", is_flag=True,
                                     help="Keep memes whose text is empty instead of failing."))
        keys = [field.name for field in fields(DatasetOptions)]

        @functools.wraps(f)
        def command(*args, **kwargs):
            values = {k: kwargs.pop(k) for k in keys if k in kwargs}
            return f(*args, dataset_options=DatasetOptions.of(**values), **kwargs)

        for opt in reversed(opts):
            command = opt(command)
        return command
    return decorate
