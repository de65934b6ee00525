"""Files handed to torch.load or safetensors (model files, encoder weights): what they are, told by their first
bytes before anything is deserialised, and every exception deserialising something else raises.

A text file, a folder, a store or a truncated download gets one line saying what it is, never a traceback
from deep inside the unpickler (a text file makes torch's weights-only unpickler raise KeyError)."""
from __future__ import annotations

import codecs
import os
import pickle
import struct
import zipfile

from safetensors import SafetensorError

# what torch.load / safetensors raise on files that are not (safe) checkpoints, found by feeding them
# mutated checkpoints and random bytes: a crafted file must fail inside one of these
LOAD_ERRORS = (OSError, RuntimeError, ValueError, EOFError, KeyError, IndexError, TypeError, AttributeError,
               OverflowError, RecursionError, struct.error, pickle.UnpicklingError, zipfile.BadZipFile,
               SafetensorError)
WEIGHT_KINDS = ("torch", "torch (legacy pickle)", "safetensors")


def kind(path) -> str:
    """``torch`` (a zip written by torch.save), ``torch (legacy pickle)``, ``safetensors``, or what else
    ``path`` is: ``missing``, ``folder``, ``special`` (not a regular file), ``empty``, ``HDF5``, ``text``,
    ``binary``. Symbolic links are followed."""
    if not os.path.exists(path):
        return "missing"
    if os.path.isdir(path):
        return "folder"
    if not os.path.isfile(path):
        return "special"
    with open(path, "rb") as f:
        head = f.read(4096)
    size = os.path.getsize(path)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "torch (legacy pickle)"
    if len(head) > 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] <= size - 8:
        return "safetensors"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "HDF5"
    try:  # (a character cut at the end of the first 4096 bytes is not an error)
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < 4096)
    except UnicodeDecodeError:
        return "binary"
    return "binary" if "\0" in text else "text"


def describe(path, what: str) -> str:
    """``path`` as the :func:`kind` ``what`` it is, for an error line."""
    real = os.path.realpath(path)
    link = f" (a symbolic link to {real})" if os.path.islink(path) else ""
    if what == "missing":
        return f"{path} does not exist{link}"
    if what == "binary":
        with open(path, "rb") as f:
            start = f.read(8).hex(" ")
        return f"{path}{link} is not a torch or safetensors file (it starts with bytes {start})"
    article = {"folder": "a folder", "special": "not a regular file", "empty": "an empty file",
               "HDF5": "an HDF5 file (a memeprobe store?)", "text": "a text file"}.get(what, f"a {what} file")
    return f"{path}{link} is {article}"
