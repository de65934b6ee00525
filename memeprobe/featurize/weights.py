"""Finding weights without surprises: local files, the Hugging Face cache, offline mode, one-line errors."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import socket
from contextlib import contextmanager
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache

from memeprobe import torchfiles
from memeprobe.atomic import atomic_write
from memeprobe.errors import MemeprobeError, WeightsError
from memeprobe.torchfiles import LOAD_ERRORS  # noqa: F401 (the featurizers catch these around weight loads)

_SHA_CACHE: dict[str, str] = {}
_SHOW_KEYS = 3


def hash_cache_path() -> str:
    """The persistent sha256 cache: $MEMEPROBE_CACHE or $XDG_CACHE_HOME/memeprobe (~/.cache/memeprobe)."""
    base = os.environ.get("MEMEPROBE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "memeprobe")
    return os.path.join(base, "sha256.json")


def _read_hash_cache(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or damaged: hashes are recomputed


def file_sha256(path) -> str:
    """sha256 of a weights file, computed once per (real path, size, mtime) and kept in :func:`hash_cache_path`."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
    if key in _SHA_CACHE:
        return _SHA_CACHE[key]
    cache_file = hash_cache_path()
    cached = _read_hash_cache(cache_file)
    if key not in cached:
        h = hashlib.sha256()
        with open(real, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        cached = {k: v for k, v in _read_hash_cache(cache_file).items() if os.path.exists(k.rsplit("|", 2)[0])}
        cached[key] = h.hexdigest()
        try:
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            with atomic_write(cache_file, "w") as f:
                json.dump(cached, f)
        except (OSError, MemeprobeError):
            pass  # a read-only cache only costs re-hashing next time
    _SHA_CACHE[key] = cached[key]
    return cached[key]


def _few(keys) -> str:
    keys = list(keys)
    more = ", ..." if len(keys) > _SHOW_KEYS else ""
    return f"{len(keys)} ({', '.join(keys[:_SHOW_KEYS])}{more})"


def key_mismatch(what: str, missing=(), unexpected=(), mismatched=()) -> WeightsError | None:
    """The one-line error for weights that do not fit a model (None when everything fits)."""
    parts = [f"{name} {_few(keys)}" for name, keys in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)) if keys]
    if not parts:
        return None
    return WeightsError(f"{what}: the weights do not fit the model: {'; '.join(parts)} keys; "
                        "is the file a checkpoint of another model or key layout?")


def load_strict(module, state_dict: dict, what: str, drop: tuple[str, ...] = ()) -> None:
    """Load ``state_dict`` into ``module``; keys starting with a prefix in ``drop`` are discarded on purpose.
    Any other missing, unexpected or mis-shaped key raises :func:`key_mismatch`'s WeightsError."""
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items() if not (drop and k.startswith(drop))}
    error = key_mismatch(
        what,
        [k for k in own if k not in given],
        [k for k in given if k not in own],
        [k for k in given if k in own and tuple(getattr(given[k], "shape", ())) != tuple(own[k].shape)],
    )
    if error:
        raise error
    module.load_state_dict(given, strict=True)


def torch_key_error(what: str, e: RuntimeError) -> WeightsError | None:
    """:func:`key_mismatch` from the message of a strict ``torch.nn.Module.load_state_dict`` (None if not one)."""
    text = str(e)
    if "Error(s) in loading state_dict" not in text:
        return None
    parts = {}
    for name, marker in (("missing", "Missing key(s)"), ("unexpected", "Unexpected key(s)"), ("mismatched", "size mismatch")):
        chunks = text.split(marker)[1:]
        if name == "mismatched":
            parts[name] = [re.match(r"\s*for ([^:]+):", c).group(1) for c in chunks if re.match(r"\s*for ([^:]+):", c)]
        else:
            parts[name] = re.findall(r'"([^"]+)"', chunks[0].split("\n")[0]) if chunks else []
    return key_mismatch(what, parts["missing"], parts["unexpected"], parts["mismatched"])


def check_weights_file(spec: str, path, hint: str) -> None:
    """One line unless ``path`` is a torch checkpoint or a safetensors file (by its first bytes): a folder, a
    text file, a symbolic link to something else... are refused before anything is deserialised."""
    what = torchfiles.kind(path)
    if what == "missing":
        raise weights_error(spec, str(path), hint, "no such file")
    if what not in torchfiles.WEIGHT_KINDS:
        raise WeightsError(f"{spec}: {torchfiles.describe(path, what)}, not a weights file (a torch checkpoint "
                           f"or .safetensors); give {hint}")


def refused_file(spec: str, path, e: BaseException) -> WeightsError:
    """One line for a weights file that cannot be read safely (corrupt, or a pickle with code in it)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    unsafe = isinstance(e, pickle.UnpicklingError) or "weights_only" in str(e).lower()
    why = ("it is a pickle that would run code or build objects beyond tensors (refused; only plain "
           "tensor checkpoints or safetensors are loaded)" if unsafe else f"not a readable checkpoint: {first}")
    return WeightsError(f"{spec}: cannot load weights file {path}: {why}")


def dir_weights_sha256(folder) -> str:
    """sha256 over the weight files of a model folder (safetensors/bin/pt, sorted by name)."""
    files = sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(folder)
        for f in names
        if f.endswith((".safetensors", ".bin", ".pt", ".pth"))
    )
    if not files:
        raise WeightsError(f"no weight files (*.safetensors, *.bin, *.pt) in model folder {folder}")
    if len(files) == 1:
        return file_sha256(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(os.path.relpath(f, folder).encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids network access."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cached_hub_file(repo_id: str, filenames) -> str | None:
    """Local path of the first of ``filenames`` of ``repo_id`` in the Hugging Face cache, else None."""
    for name in filenames:
        try:
            path = try_to_load_from_cache(repo_id, name)
        except Exception:  # malformed repo ids are "not cached"
            return None
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def hub_cache_dir() -> str:
    return constants.HF_HUB_CACHE


def weights_error(spec: str, looked: str, local_hint: str, cause: str = "") -> WeightsError:
    """The one line shown when weights cannot be obtained."""
    why = f" ({cause})" if cause else ""
    mode = (
        "HF_HUB_OFFLINE=1 is set, so nothing is downloaded"
        if hub_offline()
        else "HF_HUB_OFFLINE is not set, so a download was possible but did not happen"
    )
    return WeightsError(
        f"cannot load weights for {spec}: looked in {looked}{why}; {mode}. "
        f"Supply a local copy instead: {local_hint}"
    )


def hub_unreachable(timeout: float = 3.0) -> str:
    """Why the Hugging Face endpoint cannot be reached ("" when a TCP connection opens within ``timeout``).

    One quick probe instead of the hub client's minute of retries when there is no network.
    """
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return ""
    except OSError as e:
        return f"not cached, and {host} is unreachable: {e}"


def ensure_downloadable(spec: str, looked: str, local_hint: str) -> None:
    """For weights that are not cached: the one-line error now if offline mode is on or the hub is unreachable."""
    why = "not cached" if hub_offline() else hub_unreachable()
    if why:
        raise weights_error(spec, looked, local_hint, why)


def require_hub_files(spec: str, repo_id: str, filenames, local_hint: str) -> str | None:
    """Cached path of ``repo_id``'s weights; None when it must (and can) be downloaded; else the one-line error."""
    path = cached_hub_file(repo_id, filenames)
    if path is None:
        ensure_downloadable(spec, f"the Hugging Face cache {hub_cache_dir()} for {repo_id}", local_hint)
    return path


@contextmanager
def cache_only(active: bool = True):
    """Within the block the hub clients use the local cache only (when ``active``).

    Used to load hub weights that were found cached: exactly the file whose sha256 is in the
    provenance, and no network round trips (or retry loops) while loading.
    """
    if not active:
        yield
        return

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old
