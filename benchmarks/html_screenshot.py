"""Render a memeprobe page (a leakage report.html, an explain page's explain.html) in headless Chromium: screenshot
it and list console errors.

    python benchmarks/html_screenshot.py REPORT_OR_EXPLAIN_DIR_OR_HTML [--out shot.png] [--kind same_text_other_image]
    python benchmarks/html_screenshot.py --sample 300     # make a sample, report it, then screenshot
    python benchmarks/html_screenshot.py --sample 1000 --explain mlp --out docs/explain_page.png
        # ... then featurize it (offline preset), train a head, and screenshot its explain page on dev_seen

Needs Debian's ``chromium`` (apt-get install -y chromium). Exit code 1 when the page logs console
messages, its own error box is not empty or a picture does not load.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.chromium import CHROMIUM, chromium, console  # noqa: E402  (the browser driving the tests use)

PAGES = ("report.html", "explain.html")


def explain_sample(work: Path, head: str) -> Path:
    """Featurize the sample in ``work/data`` (offline preset), train ``head`` on text and image features, write
    the explain page of dev_seen with the leakage report's clean ids; returns the page."""
    from click.testing import CliRunner

    from memeprobe.cli import main

    store, model = work / "s.h5", work / "lr.pt"
    for args in (["featurize", "all", work / "data", "--store", store, "--preset", "offline", "--no-progress"],
                 ["train-head", head, "--store", store, "--feature-set", "st-minilm", "--feature-set",
                  "timm-tf_efficientnet_lite0-packaged", "--bootstrap", "0", "--out", model],
                 ["explain", model, "--store", store, "--split", "dev_seen", "--clean-ids", work / "report",
                  "--out", work / "explain"]):
        res = CliRunner().invoke(main, [str(a) for a in args])
        if res.exit_code != 0:
            sys.exit(f"memeprobe {' '.join(map(str, args))} failed:\n{res.output}")
    return work / "explain" / "explain.html"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", nargs="?", type=Path)
    p.add_argument("--sample", type=int, default=None, help="build a make-sample dataset of this size and report it")
    p.add_argument("--out", type=Path, default=Path("leakage_report.png"))
    p.add_argument("--explain", metavar="HEAD",
                   help="with --sample: featurize it, train-head HEAD and screenshot the explain page of dev_seen")
    p.add_argument("--kind", default="", help="filter the pairs table by this kind (via the URL hash)")
    p.add_argument("--size", default="1280,2400")
    args = p.parse_args()
    if args.sample:
        import warnings

        from memeprobe.data import load_dataset
        from memeprobe.demo.synthetic import make_sample
        from memeprobe.leakage.analysis import analyze
        from memeprobe.leakage.report import write_report

        work = Path(tempfile.mkdtemp(prefix="leakage_html_"))
        make_sample(work / "data", n=args.sample, seed=0)
        ds = load_dataset(work / "data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            html = write_report(analyze(ds), ds, work / "report")["html"]
        if args.explain:
            html = explain_sample(work, args.explain)
    elif args.report is not None:
        html = next((args.report / p for p in PAGES if (args.report / p).is_file()), args.report / PAGES[0]) \
            if args.report.is_dir() else args.report
    else:
        p.error("give a report folder/file or --sample N")
    url = html.resolve().as_uri() + (f"#kind={args.kind}" if args.kind else "")
    if CHROMIUM is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    t0 = time.perf_counter()
    shot = chromium([f"--window-size={args.size}", f"--screenshot={args.out.resolve()}", url])
    dom = chromium(["--dump-dom", url])
    messages = console(shot) + console(dom)
    errors = re.search(r'<div id="js-errors">(.*?)</div>', dom.stdout, re.S)
    shown = re.search(r'<span id="shown">(\d+)</span>', dom.stdout)
    print(f"html: {html} ({html.stat().st_size / 1024:.0f} KiB)")
    print(f"screenshot: {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f} s")
    ready = 'data-ready="1"' in dom.stdout
    broken = re.search(r'data-broken="(\d+)"', dom.stdout)
    print(f"pairs shown: {shown.group(1) if shown else '-'}; pictures broken: {broken.group(1) if broken else '-'}; "
          f"script ran: {ready}")
    print(f"console messages: {len(messages)}" + "".join(f"\n  {c}" for c in messages))
    bad = messages or not errors or errors.group(1).strip() or not ready or (broken and broken.group(1) != "0")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
