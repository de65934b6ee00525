"""Report writers: report.json, pairs.csv, report.html (self-contained), clean_ids/<split>.txt, manifest.json,
terminal table.

pairs.csv is for people and spreadsheets: a text cell starting with ``= + - @``, tab or CR gets a leading
``'`` (formula injection); report.json and clean_ids/ keep the exact ids."""
from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from memeprobe import __version__
from memeprobe.atomic import atomic_dir
from memeprobe.errors import MemeprobeError
from memeprobe.leakage import images, manifest, pairs as pairs_mod

SCORE_COLUMNS = ("text_jaccard", "text_cosine", "image_phash", "image_cosine")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads such a cell as a formula (OWASP)
HTML_MAX_PAIRS = 1000


def _clean(value):
    """JSON-able scalar: NaN -> None, numpy -> python."""
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else round(float(value), 4)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def eval_table(result) -> list[dict]:
    """Per eval split: size, clean-subset size, leak-exploit AUROCs."""
    out = []
    for s in result.eval_splits:
        e = result.exploit.get(s, {})
        out.append({"split": s, "n": result.split_sizes[s], "clean": len(result.clean_ids[s]),
                    "labelled": e.get("labelled", 0), "covered": e.get("covered", 0),
                    "auroc": e.get("auroc"), "auroc_covered": e.get("auroc_covered")})
    return out


def to_json(result, ds) -> dict:
    """The whole report as one JSON-able dict (every pair included)."""
    records = [{k: _clean(v) for k, v in row.items()} for row in result.pairs.to_dict(orient="records")]
    return {
        "memeprobe_version": __version__,
        "dataset": {"root": str(ds.root), "format": ds.format, "fingerprint": ds.fingerprint(),
                    "n": len(ds.memes), "splits": result.split_sizes},
        "config": asdict(result.config),
        "normalisation": "NFKC, casefold, Unicode punctuation to space, whitespace collapsed",
        "sources": result.sources,
        "skipped": result.skipped,
        "warnings": result.warnings,
        "summary": result.summary(),
        "eval": eval_table(result),
        "leak_exploit": result.exploit,
        "groups": result.groups,
        "pairs": records,
    }


def write_clean_ids(result, out_dir: Path) -> dict[str, Path]:
    folder = out_dir / manifest.CLEAN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, ids in result.clean_ids.items():
        path = folder / f"{split}.txt"
        path.write_text(manifest.format_ids(ids), encoding="utf-8")
        written[split] = path
    return written


def _side(ds, row, thumbs):
    meme = ds.memes[row]
    return {"row": int(row), "id": meme.id, "split": meme.split, "text": meme.text,
            "label": meme.label if meme.label is not None else (
                ",".join(n for n, v in zip(ds.label_names, meme.labels) if v) if meme.labels is not None else None),
            "thumb": int(row) in thumbs}


def render_html(result, ds, max_pairs: int = HTML_MAX_PAIRS, thumb_size: int = 120) -> str:
    """The self-contained HTML page: summary, eval table, pairs with inlined JPEG thumbnails."""
    import jinja2

    shown = result.pairs.head(max_pairs)
    thumbs = {}
    for row in sorted(set(shown.a) | set(shown.b)):
        path = ds.image_path(ds.memes[row])
        jpeg = images.thumbnail_jpeg(path, thumb_size) if path is not None and path.is_file() else None
        if jpeg:
            thumbs[int(row)] = base64.b64encode(jpeg).decode("ascii")
    rows = []
    for p in shown.itertuples(index=False):
        scores = {}
        if not math.isnan(p.text_exact):
            scores["text exact"] = "yes"
        if not math.isnan(p.image_exact):
            scores["image exact"] = "yes"
        for col in SCORE_COLUMNS:
            value = getattr(p, col)
            if not math.isnan(value):
                scores[col.replace("_", " ")] = int(value) if col == "image_phash" else f"{value:.3f}"
        rows.append({"kind": p.kind, "scope": p.scope, "group": int(p.group), "scores": scores,
                     "label_relation": p.label_relation,
                     "left": _side(ds, p.a, thumbs), "right": _side(ds, p.b, thumbs)})
    evals = [{**e, "auroc": _fmt(e["auroc"]), "auroc_covered": _fmt(e["auroc_covered"])} for e in eval_table(result)]
    env = jinja2.Environment(loader=jinja2.PackageLoader("memeprobe.leakage", "templates"),
                             autoescape=True, trim_blocks=False)
    return env.get_template("report.html.j2").render(
        dataset={"name": Path(ds.root).name, "n": len(ds.memes), "format": ds.format, "splits": result.split_sizes},
        version=__version__, summary=result.summary(), evals=evals, sources=result.sources,
        thresholds={k: v for k, v in asdict(result.config).items()}, skipped=result.skipped,
        warnings=result.warnings, kinds=pairs_mod.KINDS, scopes=pairs_mod.SCOPES, pairs=rows,
        n_pairs=len(result.pairs), thumbs=thumbs)


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells that a spreadsheet would run as a formula start with ``'`` (OWASP CSV
    injection); for human-facing CSVs only (report.json keeps the exact ids)."""
    out = table.copy()
    for col in out.columns:
        if not (pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col])):
            continue
        out[col] = [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in out[col]]
    return out


def _fmt(x):
    return "n/a" if x is None else f"{x:.3f}"


def _check_out_dir(out_dir: Path) -> None:
    """The folder is replaced as a whole: refuse one holding anything but an earlier report."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (
            (out_dir / manifest.MANIFEST).is_file() or (out_dir / "report.json").is_file()):
        raise MemeprobeError(f"{out_dir} is a non-empty folder that holds no leakage report; the report replaces "
                             "its output folder as a whole: choose a new or empty folder")


def write_report(result, ds, out_dir) -> dict[str, Path]:
    """Write every report file into a fresh folder that replaces ``out_dir`` as a whole, ``manifest.json``
    last; returns their paths by name. A failure leaves the earlier report (if any) untouched."""
    out_dir = Path(out_dir)
    manifest.check_ids_writable(result.clean_ids)
    _check_out_dir(out_dir)
    names = {"json": "report.json", "csv": "pairs.csv", "html": "report.html", "manifest": manifest.MANIFEST}
    with atomic_dir(out_dir) as tmp:
        doc = to_json(result, ds)
        (tmp / names["json"]).write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        spreadsheet_safe(result.pairs).to_csv(tmp / names["csv"], index=False)
        (tmp / names["html"]).write_text(render_html(result, ds), encoding="utf-8")
        write_clean_ids(result, tmp)
        manifest.write_manifest(tmp, {s: len(ids) for s, ids in result.clean_ids.items()},
                                memeprobe_version=__version__, dataset_fingerprint=doc["dataset"]["fingerprint"])
    return {k: out_dir / v for k, v in names.items()}


def terminal_table(result) -> str:
    """The summary as aligned text: split pairs, then clean subsets and leak-exploit AUROCs."""
    head = ("split pair", "pairs", "exact text", "near text", "exact image", "near image", "confounders", "label flips")
    body = [(f"{s['split_a']} ~ {s['split_b']}" + (" (within)" if s["scope"] == "within" else ""),
             s["pairs"], s["exact_text"], s["near_text"], s["exact_image"], s["near_image"], s["confounders"],
             s["label_flips"] if s["labelled"] else "-") for s in result.summary()]
    lines = _align(head, body)
    ehead = ("eval split", "memes", "clean", "leaked", "leak-exploit AUROC", "AUROC on leaked")
    ebody = [(e["split"], e["n"], e["clean"], e["n"] - e["clean"], _fmt(e["auroc"]), _fmt(e["auroc_covered"]))
             for e in eval_table(result)]
    return "\n".join(lines + [""] + _align(ehead, ebody))


def _align(head, body) -> list[str]:
    cells = [tuple(str(c) for c in head)] + [tuple(str(c) for c in row) for row in body]
    widths = [max(len(r[k]) for r in cells) for k in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths)))

    return [fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]]
