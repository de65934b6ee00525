"""Finding weights without surprises: local files, the Hugging Face cache, offline mode, one-line errors."""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager

from memeprobe.errors import MemeprobeError

_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path) -> str:
    """sha256 of a weights file (memoised per path, size and mtime within the process)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def dir_weights_sha256(folder) -> str:
    """sha256 over the weight files of a model folder (safetensors/bin/pt, sorted by name)."""
    files = sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(folder)
        for f in names
        if f.endswith((".safetensors", ".bin", ".pt", ".pth"))
    )
    if not files:
        raise MemeprobeError(f"no weight files (*.safetensors, *.bin, *.pt) in model folder {folder}")
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
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        try:
            path = try_to_load_from_cache(repo_id, name)
        except Exception:  # malformed repo ids are "not cached"
            return None
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def weights_error(spec: str, looked: str, local_hint: str, cause: str = "") -> MemeprobeError:
    """The one line shown when weights cannot be obtained."""
    why = f" ({cause})" if cause else ""
    mode = (
        "HF_HUB_OFFLINE=1 is set, so nothing is downloaded"
        if hub_offline()
        else "HF_HUB_OFFLINE is not set, so a download was possible but did not happen"
    )
    return MemeprobeError(
        f"cannot load weights for {spec}: looked in {looked}{why}; {mode}. "
        f"Supply a local copy instead: {local_hint}"
    )


def hub_unreachable(timeout: float = 3.0) -> str:
    """Why the Hugging Face endpoint cannot be reached ("" when a TCP connection opens within ``timeout``).

    One quick probe instead of the hub client's minute of retries when there is no network.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

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
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old
