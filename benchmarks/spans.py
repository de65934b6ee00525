"""SemEval-2021 Task 6 subtask 2 (technique spans) end to end with exactly the three documented commands.

Copies ``train.json`` and ``dev.json`` of ``../shared/data/semeval2021_task6_spans`` to a temp folder and adds
``test.json`` = the dev memes without labels (so the unlabelled-test path of the reader, store and ``predict``
runs as it will on the held-out 200 memes), then runs, each in a fresh process with 2 threads:

    memeprobe featurize text DIR --store S.h5 --featurizer st:minilm --tokens
    memeprobe train-head span --store S.h5 --feature-set st-minilm --dev-split dev --out spans.pt
    memeprobe predict spans.pt --store S.h5 --split test --out spans.json

and prints a markdown section (benchmarks/real_data.py puts it in RESULTS.md): wall and CPU seconds of each command (``train-head span`` against
its 60 s budget on 2 cores), the machine's load average, the dev span F1 of the head beside the random-span
and whole-text baselines, and the per-technique table, all as printed by ``train-head span`` (the threshold is
chosen by CV on train; dev is only scored). The predicted test file is re-scored against dev's gold spans as a
check that ``predict`` writes what ``train-head`` scored.

    python benchmarks/spans.py [--data ../shared/data/semeval2021_task6_spans] [--out section.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 60.0


def run(args: list[str], env: dict) -> tuple[str, float, float]:
    """(stdout + stderr, wall s, CPU s of the child) of one memeprobe command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", "from memeprobe.cli import main; main()", *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        sys.exit(f"memeprobe {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout + p.stderr, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "semeval2021_task6_spans")
    ap.add_argument("--out", type=Path, help="Also write the section here (benchmarks/real_data.py puts it in RESULTS.md).")
    a = ap.parse_args()
    if not (a.data / "train.json").is_file():
        sys.exit(f"{a.data}: no train.json (the shared span data is absent)")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    sys.path.insert(0, str(ROOT))
    from memeprobe.data.semeval2021_task6 import text_techniques
    from memeprobe.heads.metrics import span_f1

    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d = tmp / "data"
        d.mkdir()
        for name in ("train.json", "dev.json"):
            shutil.copy(a.data / name, d / name)
        dev = json.loads((a.data / "dev.json").read_text())
        (d / "test.json").write_text(json.dumps([{"id": r["id"], "text": r["text"]} for r in dev]))
        store, model, out = tmp / "S.h5", tmp / "spans.pt", tmp / "spans.json"
        steps = {}
        steps["featurize text --tokens"] = run(["featurize", "text", str(d), "--store", str(store), "--featurizer",
                                                "st:minilm", "--tokens", "--no-progress"], env)
        load.append(os.getloadavg())
        steps["train-head span"] = run(["train-head", "span", "--store", str(store), "--feature-set", "st-minilm",
                                        "--dev-split", "dev", "--out", str(model)], env)
        load.append(os.getloadavg())
        steps["predict --split test"] = run(["predict", str(model), "--store", str(store), "--split", "test",
                                             "--out", str(out)], env)
        load.append(os.getloadavg())
        pred = json.loads(out.read_text())
    names = {n: i for i, n in enumerate(text_techniques())}
    by_id = {r["id"]: r for r in pred}
    gold = [[(x["start"], x["end"], names[x["technique"]]) for x in r["labels"]] for r in dev]
    got = [[(x["start"], x["end"], names[x["technique"]]) for x in by_id[r["id"]]["labels"]] for r in dev]
    check = span_f1(gold, got)
    train_out = steps["train-head span"][0]
    train_wall = steps["train-head span"][1]

    lines = ["## Technique spans (SemEval-2021 Task 6 subtask 2) — `benchmarks/spans.py`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, 2 threads per command; load average (1/5/15 min) "
             f"before and after each command: " + "; ".join("/".join(f"{x:.2f}" for x in la) for la in load) + ".",
             "Data: shared `semeval2021_task6_spans` train (688 memes) and dev (63); `test.json` = the dev memes "
             "without labels. Commands run exactly as documented, each in a fresh process.", "",
             "| command | wall s | CPU s | budget | wall / budget |", "|---|---:|---:|---:|---:|"]
    for name, (_, wall, cpu) in steps.items():
        budget = f"{BUDGET_S:.0f} s" if name == "train-head span" else "-"
        ratio = f"{train_wall / BUDGET_S:.2f}" if name == "train-head span" else "-"
        lines.append(f"| `{name}` | {wall:.1f} | {cpu:.1f} | {budget} | {ratio} |")
    lines += ["", "`train-head span` output (threshold chosen by 3-fold CV on train; dev untouched by any choice; "
              "baselines: random spans with train's span count, technique and length statistics, and each meme's "
              "whole text as a span of every technique seen in train):", "", "```", train_out.rstrip(), "```", "",
              f"Check: `predict --split test` output re-scored against dev gold: span F1 {check['f1']:.4f} "
              f"(precision {check['precision']:.4f}, recall {check['recall']:.4f}, {check['n_pred']} spans).", ""]
    if a.out:
        a.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
