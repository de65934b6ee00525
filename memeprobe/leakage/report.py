"""Report writers: report.json, pairs.csv, report.html (self-contained), clean_ids/<split>.txt, manifest.json,
terminal table.

pairs.csv is for people and spreadsheets: a text cell starting with ``= + - @``, tab or CR gets a leading
``'`` (formula injection, :mod:`memeprobe.spreadsheet`); report.json and clean_ids/ keep the exact ids."""
from __future__ import annotations

import base64
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from memeprobe import __version__
from memeprobe.atomic import atomic_dir
from memeprobe.data.thumbnails import missing_note, thumbnails
from memeprobe.errors import OutputError
from memeprobe.html import render, script_json
from memeprobe.leakage import manifest, pairs as pairs_mod, shift_report
from memeprobe.outputs import file_names
from memeprobe.spreadsheet import spreadsheet_safe

SCORE_COLUMNS = ("text_jaccard", "text_cosine", "image_phash", "image_cosine")
OPTIONS_SHOWN = ("text_threshold", "image_threshold", "phash_distance", "jaccard")  # as thresholds, with their why


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
    """The whole report as one JSON-able dict: every listed pair, every group with all its members."""
    records = [{k: _clean(v) for k, v in row.items()} for row in result.pairs.to_dict(orient="records")]
    return {
        "memeprobe_version": __version__,
        "dataset": {"root": str(ds.root), "format": ds.format, "fingerprint": ds.fingerprint(),
                    "n": len(ds.memes), "splits": result.split_sizes},
        "config": asdict(result.config),
        "thresholds": {k: asdict(v) for k, v in result.thresholds.items()},
        "normalisation": "NFKC, casefold, Unicode punctuation to space, whitespace collapsed",
        "sources": result.sources,
        "skipped": result.skipped,
        "warnings": result.warnings,
        "summary": result.summary(),
        "eval": eval_table(result),
        "leak_exploit": result.exploit,
        "groups": result.groups,
        "pairs": records,
        **({"shift": result.shift.to_json()} if result.shift is not None else {}),
    }


def write_clean_ids(result, out_dir: Path, tmp: Path) -> dict[str, Path]:
    """``clean_ids/SPLIT.txt`` per eval split into ``tmp``, the fresh folder that becomes ``out_dir`` (each
    split name must be one file name)."""
    paths = file_names(out_dir / manifest.CLEAN_DIR, result.clean_ids, ".txt")
    (tmp / manifest.CLEAN_DIR).mkdir(parents=True, exist_ok=True)
    for split, ids in result.clean_ids.items():
        with open(tmp / paths[split].relative_to(out_dir), "x", encoding="utf-8") as f:
            f.write(manifest.format_ids(ids))
    return paths


def _label(ds, meme):
    if meme.label is not None:
        return meme.label
    if meme.labels is not None:
        return ",".join(n for n, v in zip(ds.label_names, meme.labels) if v)
    return None


def _scores(p) -> list:
    """The pair's evidence as ``[text, found]``: every measure taken, and whether that detector found the pair."""
    fired = set(p.found_by.split("+"))
    out = [[f"{name} exact", True] for name in ("text", "image") if not math.isnan(getattr(p, f"{name}_exact"))]
    for col in SCORE_COLUMNS:
        value = getattr(p, col)
        if not math.isnan(value):
            shown = f"{int(value)} bits" if col == "image_phash" else f"{value:.3f}"
            out.append([f"{col.replace('_', ' ')} {shown}", col in fired])
    return out


def html_data(result, ds, thumb_size: int = 120) -> dict:
    """What the page browses: memes in any pair (thumbnail, full-image link inside the dataset folder),
    every pair as ``[meme_a, meme_b, kind, scope, relation (0 none, 1 agree, 2 flip), group, evidence]``
    (``_scores``) and every group with all its members, each other member with its linking pair as
    ``[meme, partner, hops, pair]``."""
    table = result.pairs
    rows = sorted(set(table.a.tolist()) | set(table.b.tolist()))
    local = {r: k for k, r in enumerate(rows)}
    thumbs = thumbnails({r: ds.image_path(ds.memes[r]) for r in rows}, ds.root, thumb_size)
    order = [r for r in rows if r in thumbs]
    slot = {r: k for k, r in enumerate(order)}
    memes = []
    for r in rows:
        m, path = ds.memes[r], ds.image_path(ds.memes[r])
        note = None if r in thumbs else missing_note(path, ds.root)
        memes.append({"id": m.id, "split": m.split, "text": m.text, "label": _label(ds, m), "thumb": slot.get(r),
                      "full": path.resolve().as_uri() if r in thumbs else None, "note": note})
    kind = {k: i for i, k in enumerate(pairs_mod.KINDS)}
    scope = {s: i for i, s in enumerate(pairs_mod.SCOPES)}
    relation = {"": 0, "agree": 1, "flip": 2}
    data_pairs = [[local[p.a], local[p.b], kind[p.kind], scope[p.scope], relation[p.label_relation], int(p.group),
                   _scores(p)] for p in table.itertuples(index=False)]
    by_key = {(ds.memes[r].split, ds.memes[r].id): local[r] for r in rows}
    pair_at = {frozenset(p[:2]): k for k, p in enumerate(data_pairs)}

    def link(x):
        m, via = by_key[tuple(x["member"])], by_key[tuple(x["linked_to"])]
        return [m, via, x["hops"], pair_at[frozenset((m, via))]]
    groups = [{"group": g["group"], "size": g["size"], "splits": g["splits"], "kinds": g["kinds"],
               "flip": g["label_flip"], "pairs": g["pairs"], "representative": by_key[tuple(g["representative"])],
               "members": [by_key[tuple(m)] for m in g["members"]], "hops": g["hops"],
               "links": [link(x) for x in g["links"]],
               **({"found": g["pairs_found"]} if "pairs_found" in g else {})} for g in result.groups]
    return {"memes": memes, "thumbs": [base64.b64encode(thumbs[r]).decode("ascii") for r in order],
            "pairs": data_pairs, "groups": groups, "kinds": list(pairs_mod.KINDS), "scopes": list(pairs_mod.SCOPES)}


def render_html(result, ds, thumb_size: int = 120) -> str:
    """The self-contained HTML page: summary, eval table, and every pair and group to browse (paged,
    searchable, filterable), with inlined JPEG thumbnails."""
    evals = [{**e, "auroc": _fmt(e["auroc"]), "auroc_covered": _fmt(e["auroc_covered"])} for e in eval_table(result)]
    return render(
        "memeprobe.leakage", "report.html.j2",
        dataset={"name": Path(ds.root).name, "n": len(ds.memes), "format": ds.format, "splits": result.split_sizes},
        version=__version__, summary=result.summary(), evals=evals, sources=result.sources,
        choices=result.thresholds, options={k: v for k, v in asdict(result.config).items() if k not in OPTIONS_SHOWN},
        skipped=result.skipped,
        warnings=result.warnings, kinds=pairs_mod.KINDS, scopes=pairs_mod.SCOPES, n_pairs=len(result.pairs),
        n_found=sum(s["pairs"] for s in result.summary()), max_group_pairs=result.config.max_group_pairs,
        n_groups=len(result.groups), data_json=script_json(html_data(result, ds, thumb_size)),
        shift=shift_report.section(result.shift, ds, lambda m: _label(ds, m)))


def _fmt(x):
    return "n/a" if x is None else f"{x:.3f}"


def _check_out_dir(out_dir: Path) -> None:
    """The folder is replaced as a whole: refuse one holding anything but an earlier report's files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} is a file; the report is a folder: choose a new or empty folder")
    foreign = manifest.foreign_files(out_dir) if out_dir.is_dir() else []
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(f"{out_dir} holds files that are not part of a leakage report ({', '.join(foreign[:3])}"
                          f"{more}); the report replaces its output folder as a whole: move them or choose "
                          "a new or empty folder")


def write_report(result, ds, out_dir) -> dict[str, Path]:
    """Write every report file into a fresh folder that replaces ``out_dir`` as a whole, ``manifest.json``
    last; returns their paths by name. A failure leaves the earlier report (if any) untouched."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    names = {"json": "report.json", "csv": "pairs.csv", "html": "report.html", "manifest": manifest.MANIFEST}
    with atomic_dir(out_dir, "report") as tmp:
        doc = to_json(result, ds)
        (tmp / names["json"]).write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        spreadsheet_safe(result.pairs).to_csv(tmp / names["csv"], index=False)
        (tmp / names["html"]).write_text(render_html(result, ds), encoding="utf-8")
        write_clean_ids(result, out_dir, tmp)
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
    shift_tables, shift_notes = shift_report.tables(result.shift)
    lines += [""] + _align(ehead, ebody)
    return "\n".join(lines + [line for head, body in shift_tables for line in ["", *_align(head, body)]]
                     + shift_notes)


def _align(head, body) -> list[str]:
    cells = [tuple(str(c) for c in head)] + [tuple(str(c) for c in row) for row in body]
    widths = [max(len(r[k]) for r in cells) for k in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths)))

    return [fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]]
