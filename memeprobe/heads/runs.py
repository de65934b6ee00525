"""The runs table: one JSON line per trained head in ``runs.jsonl`` beside the store."""
from __future__ import annotations

import fcntl
import json
import math
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from memeprobe.atomic import atomic_write
from memeprobe.data.readers import jsonl_lines, parse_json
from memeprobe.errors import ConfigError, ReportError
from memeprobe.outputs import write_error
from memeprobe import threads


RECORD_KEYS = ("feature_sets", "store", "store_checksum", "dataset_fingerprint", "dataset_format", "target",
               "label_names")

# dataset format → (its official metric, {target: that metric's key in a run's scores}); a target without an
# entry (MAMI's four types alone: task B) does not give the official score
OFFICIAL = {
    "hateful_memes": ("AUROC (Hateful Memes)", {"label": "auroc"}),
    "mami": ("task-A macro-F1 (MAMI)", {"label": "macro_f1", "all": "mami_a_f1"}),
    "semeval2021_task6": ("micro-F1 (SemEval-2021 T6)", {"labels": "micro_f1"}),
}
SPANS = ("span F1 (SemEval-2021 T6 subtask 2)", {"spans": "f1"})  # the span tagger's runs (target "spans")
OFFICIAL_NAME = "official"  # SPLIT.official: the run's official metric on SPLIT


def new_record(meta: dict, **fields) -> dict:
    """A run record: a new id, the time, what ``meta`` says about the data (:data:`RECORD_KEYS`), ``fields``."""
    plan = threads.active()  # the threads it ran on (torch's last bits depend on them)
    return {"run_id": uuid.uuid4().hex[:10], "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{k: meta[k] for k in RECORD_KEYS}, **({"threads": plan.as_dict()} if plan else {}), **fields}


def of_dataset(runs: list[dict], fingerprint: str, store_path) -> list[dict]:
    """The runs trained on the dataset with ``fingerprint`` (records older than that field: on ``store_path``)."""
    store = str(Path(store_path).resolve())

    def same(r):
        return r["dataset_fingerprint"] == fingerprint if "dataset_fingerprint" in r else r.get("store") == store

    return [r for r in runs if same(r)]


def runs_path(store_path) -> Path:
    return Path(store_path).resolve().parent / "runs.jsonl"


def append_runs(path, records: list[dict]) -> None:
    """Append ``records``: the whole table is rewritten atomically (temp file, fsync, rename) under an
    exclusive lock on its folder, so a crash leaves the old table or the new one, never a torn line."""
    path = Path(path)
    text = "".join(json.dumps(r, sort_keys=True, default=_jsonable) + "\n" for r in records)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        old = path.read_bytes() if path.is_file() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        with atomic_write(path, "wb", kind="runs") as f:
            f.write(old + text.encode("utf-8"))
    finally:
        os.close(fd)


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def read_runs(path) -> list[dict]:
    """All records; a line that is not JSON (e.g. cut short by a crash) is named, not skipped silently."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"no runs table at {path}; train a head with `memeprobe train-head` first")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path} is not a runs table (not UTF-8 text); give the runs.jsonl beside a store") from None
    runs = []
    for i, line in jsonl_lines(text):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("metrics", {}), dict):
            raise ReportError(f"{path} line {i} is not a run record (a JSON object with metrics); "
                                 "remove or fix that line")
        runs.append(record)
    return runs


def headline(metrics: dict) -> str:
    """The key used to rank runs on this kind of target (where the dataset has no official metric)."""
    return "auroc" if "auroc" in metrics else "macro_f1"


def official(run: dict) -> tuple[str | None, str]:
    """``(key, what it is)``: the official metric of the run's dataset (:data:`OFFICIAL`) and its key in the run's
    scores (``None`` when the run's target does not give it); else the headline metric of its scores."""
    what, keys = SPANS if run.get("target") == "spans" else OFFICIAL.get(run.get("dataset_format"), (None, None))
    if what:
        return keys.get(run.get("target")), what
    key = headline(next(iter(run.get("metrics", {}).values()), {}))
    return key, f"{key} (no official metric for {run.get('dataset_format') or 'this dataset'})"


def metric_value(run: dict, key: str) -> float:
    """``split.metric`` (e.g. ``dev.auroc``; ``cv.official``: the run's :func:`official` metric) of a run; NaN when
    absent."""
    split, _, name = key.partition(".")
    name = official(run)[0] if name == OFFICIAL_NAME else name
    v = run.get("metrics", {}).get(split, {}).get(name) if name else None
    return float(v) if isinstance(v, (int, float)) and v is not None else math.nan


def best_runs(runs: list[dict], key: str, top: int = 1) -> list[dict]:
    """The ``top`` runs with the highest ``key`` (runs without it are left out)."""
    scored = [r for r in runs if not math.isnan(metric_value(r, key))]
    if not scored:
        raise ConfigError(f"no run has metric {key!r}; metrics look like dev.auroc, dev.macro_f1, test.auroc, "
                          "cv.official")
    return sorted(scored, key=lambda r: -metric_value(r, key))[:top]


def column(runs: list[dict], key: str) -> str:
    """The header of metric ``key``'s column: ``split.official`` names the metric when the runs share one."""
    split, _, name = key.partition(".")
    names = {official(r)[0] for r in runs} - {None} if name == OFFICIAL_NAME else {name}
    return f"{split}.{names.pop()}" if len(names) == 1 else key


def table(runs: list[dict], keys: list[str]) -> str:
    """A fixed-width text table of runs with the given metric columns."""
    import pandas as pd  # lazy: pandas (slow to import) only to print this table, not on every command's start

    rows = [{"run": r.get("run_id", ""), "time": r.get("time", "")[:19], "store": Path(r.get("store", "")).name,
             "head": r.get("head", ""),
             "features": " ".join(r.get("feature_sets", [])), "target": r.get("target", ""),
             **{column(runs, k): metric_value(r, k) for k in keys}} for r in runs]
    return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}")
