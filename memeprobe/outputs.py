"""Where a run may write: an output never replaces what the run reads, nor a memeprobe file of another kind.

One check, :func:`check_output`, guards every writer: :mod:`memeprobe.atomic` calls it before a file or
folder is renamed into place, and commands call it first, so a refusal comes before hours of work.

* An output that is a file or folder the run reads is refused. Paths are compared by device and inode,
  so symlinks, ``..``, hard links and case-insensitive file systems cannot hide an input.
* No output lies inside a folder the run reads as a whole (a dataset folder, a clean-ids report); a
  folder that is replaced as a whole (a leakage report, a synthetic sample) holds no input either.
* An existing memeprobe store, model (torch) file, runs table, leakage report or synthetic sample is
  replaced only by an output of its own kind, unless the caller allows that kind: ``reading(replace=...)``
  in Python, ``--replace KIND`` on the command line.
* Two outputs of one run never share a path; an output on a read-only file system is one line.

What a run reads is declared with :func:`reading` (a context; :func:`guarded` opens one around a function
from its arguments). Names from data that become file names go through :func:`file_names`.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import inspect
import json
import os
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import click

from memeprobe.errors import OutputError

_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# kinds of existing memeprobe files and folders (what --replace names), as a message names them
KINDS = {"store": "an HDF5 file (a feature store)", "model": "a torch file (a model or weights)",
         "runs": "a runs table", "report": "a leakage report folder", "sample": "a synthetic sample folder",
         "explain": "an explain page folder"}
# kinds of outputs: the above, plus any other file, a folder of plots (files added to it) and a datasets folder
WRITES = {**KINDS, "file": "this output", "plots": "plots", "datasets": "a Hugging Face datasets folder"}
FOLDERS = ("report", "sample", "plots", "datasets", "explain")  # outputs that are folders
REPLACED = ("report", "sample", "datasets", "explain")  # folders replaced as a whole
EXPLAIN_PAGE = "explain.html"  # the file that marks an explain page folder
_MAX_LINE = 16 << 20  # the first line of a runs table is read whole up to this size
MAX_NAME_BYTES = 200  # a file name made from data, before suffixes and temp-name prefixes (NAME_MAX 255)
_SEPARATORS = "/\\"
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def write_error(path: Path, e: OSError) -> OutputError:
    """One line naming the output and what to do about it."""
    if getattr(e, "errno", None) in _FULL:
        return OutputError(f"cannot write {path}: the disk is full; free space or choose another path "
                           f"(the previous {Path(path).name}, if any, is unchanged)")
    return OutputError(f"cannot write {path}: {e.strerror or e}; choose a writable path")


# ---------------------------------------------------------------- what the run reads
@dataclass
class _Run:
    inputs: tuple = ()  # (role, path, tree): tree = everything inside a folder is read
    replace: frozenset = frozenset()
    claims: dict = field(default_factory=dict)  # real path -> kind of each output checked in this run


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("memeprobe_run", default=None)


def _path(value) -> Path | None:
    """A path from a path, a str, or an open store (anything with ``.path``)."""
    value = getattr(value, "path", value)
    return None if value is None or value == "" else Path(value)


@contextlib.contextmanager
def reading(paths: dict | None = None, trees: dict | None = None, replace=()):
    """Within the block, outputs are checked against ``paths`` (``{role: path or paths}``, e.g.
    ``{"store": s}``) and ``trees`` (folders read with everything inside them); ``replace``: kinds an output
    may replace (see :data:`KINDS`). Nested blocks add to the enclosing one (one run)."""
    outer = _RUN.get() or _Run()
    bad = sorted(set(replace) - set(KINDS))
    if bad:
        raise OutputError(f"cannot allow replacing {', '.join(bad)}: the kinds are {', '.join(KINDS)}")
    new = [(role, p, tree) for tree, given in ((False, paths), (True, trees)) for role, value in (given or {}).items()
           for v in (value if isinstance(value, (list, tuple, set)) else [value]) if (p := _path(v)) is not None]
    token = _RUN.set(_Run(outer.inputs + tuple(new), outer.replace | frozenset(replace), outer.claims))
    try:
        yield
    finally:
        _RUN.reset(token)


def guarded(paths=None, trees=None, outputs=None):
    """Decorator: run the function inside :func:`reading` of its own arguments and check its outputs first.

    ``paths`` / ``trees``: ``{role: argument name}`` or ``{role: (argument name, function of its value that
    gives the paths read)}``; ``outputs``: ``{argument name: kind}`` (None skipped)."""
    def wrap(fn):
        sig = inspect.signature(fn)

        def given(args, roles):
            out = {}
            for role, spec in (roles or {}).items():
                name, find = spec if isinstance(spec, tuple) else (spec, None)
                value = args[name]
                out[role] = find(value) if find and value is not None else value
            return out

        @functools.wraps(fn)
        def run(*args, **kwargs):
            a = sig.bind(*args, **kwargs)
            a.apply_defaults()
            with reading(given(a.arguments, paths), given(a.arguments, trees)):
                for name, kind in (outputs or {}).items():
                    if _path(a.arguments[name]) is not None:
                        check_output(a.arguments[name], kind)
                return fn(*args, **kwargs)
        return run
    return wrap


def replace_option(command):
    """Click decorator: ``--replace KIND`` (repeatable) allows the command's outputs to replace an existing
    memeprobe file or folder of that kind; the command runs inside :func:`reading` with it."""
    @click.option("--replace", multiple=True, type=click.Choice(list(KINDS)),
                  help="Let an output replace an existing memeprobe file of this kind (store, model, runs, "
                       "report, sample, explain); never a file this command reads.")
    @functools.wraps(command)
    def run(*args, replace=(), **kwargs):
        with reading(replace=replace):
            return command(*args, **kwargs)
    return run


# ---------------------------------------------------------------- what is there
def kind_of(path) -> str | None:
    """The memeprobe kind (:data:`KINDS`) of what is at ``path``; ``"other"`` for anything else, None for nothing."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        if (path / "manifest.json").is_file() or (path / "report.json").is_file():
            return "report"
        if (path / "ground_truth.json").is_file():
            return "sample"
        return "explain" if (path / EXPLAIN_PAGE).is_file() else "other"
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
            f.seek(0)
            first = next((ln for ln in iter(lambda: f.readline(_MAX_LINE), b"") if ln.strip()), b"")
    except OSError:
        return "other"
    if head == HDF5_SIGNATURE:
        return "store"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                if any(n == "data.pkl" or n.endswith("/data.pkl") for n in z.namelist()):
                    return "model"
        except (OSError, zipfile.BadZipFile, ValueError):
            pass
        return "other"
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        return "other"
    return "runs" if isinstance(record, dict) and "run_id" in record else "other"


def _stat(path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _ancestors(path: Path, strict: bool = True):
    """The existing folders above ``path`` (resolved: symlinks and ``..``), nearest first, with their stats;
    ``strict=False``: ``path`` itself first."""
    real = Path(os.path.realpath(path))
    for p in real.parents if strict else (real, *real.parents):
        st = _stat(p)
        if st is not None:
            yield p, st


def _inside(path: Path, folder_stat) -> bool:
    return any(os.path.samestat(st, folder_stat) for _, st in _ancestors(path))


# ---------------------------------------------------------------- the check
def check_output(path, kind: str = "file") -> None:
    """Refuse (OutputError, one line) to write output ``kind`` (:data:`WRITES`) at ``path``; see the module doc."""
    path = Path(path)
    what = WRITES[kind]
    run = _RUN.get() or _Run()
    here = _stat(path)
    if here is not None and stat.S_ISDIR(here.st_mode) != (kind in FOLDERS):
        raise OutputError(f"{path} is a folder; give a file path for {what}" if kind not in FOLDERS else
                          f"{path} is a file, not a folder: choose a new or empty folder for {what}")
    inputs = [(role, src, tree, st) for role, src, tree in run.inputs if (st := _stat(src)) is not None]
    for role, src, _, st in inputs:
        if here is not None and os.path.samestat(here, st):
            raise OutputError(f"{path} is the {role} this run reads ({src}); writing {what} there would "
                              "replace it: choose another path")
    for role, src, tree, st in inputs:
        if tree and stat.S_ISDIR(st.st_mode) and _inside(path, st):
            raise OutputError(f"{path} is inside the {role} this run reads ({src}); write {what} outside it")
        if here is not None and kind in REPLACED and _inside(src, here):
            raise OutputError(f"{path} holds the {role} this run reads ({src}); {what} replaces its folder as a "
                              "whole: choose another folder")
    found = kind_of(path)
    if found in KINDS and found != kind and found not in run.replace:
        raise OutputError(f"{path} is {KINDS[found]}; writing {what} there would replace it: choose another "
                          f"path, or allow replacing kind {found!r}", option="replace")
    if found == "other" and kind == "runs" and here.st_size:  # a table is appended to: never to another file
        raise OutputError(f"{path} is not {KINDS[kind]}; it will not be replaced by one: choose another path")
    key = os.path.normcase(os.path.realpath(path))
    if run.claims.get(key, kind) != kind:
        raise OutputError(f"{path}: two outputs of this run ({WRITES[run.claims[key]]} and {what}) would be "
                          "written there; give them different paths")
    run.claims[key] = kind
    _check_writable(path)


def _check_writable(path: Path) -> None:
    """Fail now, with one line, when the nearest existing folder of ``path`` is on a read-only file system
    or not writable (a write would fail only at the end)."""
    folder = next((p for p, st in _ancestors(path.parent, strict=False) if stat.S_ISDIR(st.st_mode)), None)
    if folder is None:
        return
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return
    if read_only:
        raise write_error(path, OSError(errno.EROFS, os.strerror(errno.EROFS)))
    if not os.access(folder, os.W_OK):
        raise write_error(path, OSError(errno.EACCES, os.strerror(errno.EACCES)))


# ---------------------------------------------------------------- names from data
def name_problem(name) -> str | None:
    """Why ``name`` cannot be one file name (None when it can): it must be one non-empty path component."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} names a folder"
    bad = _BAD_NAME.search(name)
    if bad:
        return f"it holds {bad.group()!r}, a {'path separator' if bad.group() in _SEPARATORS else 'control character'}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None


def file_names(folder, names, suffix: str = "") -> dict[str, Path]:
    """``{name: folder/(name + suffix)}`` for names from data (split names...): each must be one file name,
    and no two may be the same file on a case-insensitive file system."""
    out, seen = {}, {}
    for name in names:
        why = name_problem(name)
        if why is not None:
            raise OutputError(f"{name!r} cannot name a file in {folder}: {why}; rename it in the dataset")
        fname = name + suffix
        other = seen.setdefault(unicodedata.normalize("NFC", fname).casefold(), name)
        if other != name:
            raise OutputError(f"{other!r} and {name!r} would be the same file in {folder} on a case-insensitive "
                              "or Unicode-normalising file system; rename one of them in the dataset")
        out[name] = Path(folder) / fname
    return out
