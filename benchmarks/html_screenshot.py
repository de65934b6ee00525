"""Render a leakage report.html in headless Chromium: screenshot it and list console errors.

    python benchmarks/html_screenshot.py REPORT_DIR_OR_HTML [--out shot.png] [--kind same_text_other_image]
    python benchmarks/html_screenshot.py --sample 300     # make a sample, report it, then screenshot

Needs Debian's ``chromium`` (apt-get install -y chromium). Exit code 1 when the page logs console
messages or its own error box is not empty.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def run_chromium(args: list[str]) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", nargs="?", type=Path)
    p.add_argument("--sample", type=int, default=None, help="build a make-sample dataset of this size and report it")
    p.add_argument("--out", type=Path, default=Path("leakage_report.png"))
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
    elif args.report is not None:
        html = args.report / "report.html" if args.report.is_dir() else args.report
    else:
        p.error("give a report folder/file or --sample N")
    url = html.resolve().as_uri() + (f"#kind={args.kind}" if args.kind else "")
    t0 = time.perf_counter()
    shot = run_chromium([f"--window-size={args.size}", f"--screenshot={args.out.resolve()}", url])
    dom = run_chromium(["--dump-dom", url])
    console = [line for line in shot.stderr.splitlines() + dom.stderr.splitlines() if ":CONSOLE" in line]
    errors = re.search(r'<div id="js-errors">(.*?)</div>', dom.stdout, re.S)
    shown = re.search(r'<span id="shown">(\d+)</span>', dom.stdout)
    print(f"html: {html} ({html.stat().st_size / 1024:.0f} KiB)")
    print(f"screenshot: {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.1f} s")
    ready = 'data-ready="1"' in dom.stdout
    print(f"pairs shown: {shown.group(1) if shown else '?'}; script ran: {ready}")
    print(f"console messages: {len(console)}" + "".join(f"\n  {c}" for c in console))
    bad = console or not errors or errors.group(1).strip() or not ready
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
