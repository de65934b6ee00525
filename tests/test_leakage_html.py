"""The HTML report renders in headless Chromium with no console errors and filters by kind (skips without chromium)."""
import re
import shutil
import subprocess
import warnings

import pytest

from memeprobe.data import load_dataset
from memeprobe.data.synthetic import make_sample
from memeprobe.leakage.analysis import analyze
from memeprobe.leakage.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(args, tmp_path):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_without_console_errors(tmp_path):
    make_sample(tmp_path / "s", n=120, seed=2)
    ds = load_dataset(tmp_path / "s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(ds)
    html = write_report(result, ds, tmp_path / "out")["html"]
    kind = "same_image_other_text"
    want = int((result.pairs.kind == kind).sum())
    assert 0 < want < len(result.pairs)
    run = chromium(["--dump-dom", f"{html.as_uri()}#kind={kind}"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert ":CONSOLE" not in run.stderr, [l for l in run.stderr.splitlines() if ":CONSOLE" in l]
    dom = run.stdout
    assert 'data-ready="1"' in dom and '<div id="js-errors"></div>' in dom
    assert f'<span id="shown">{want}</span>' in dom
    hidden = len(re.findall(r'<tr class="pair"[^>]*style="display: none;"', dom))
    assert hidden == len(result.pairs) - want
    shot = chromium(["--window-size=1200,1600", f"--screenshot={tmp_path / 'shot.png'}", html.as_uri()], tmp_path)
    assert shot.returncode == 0 and (tmp_path / "shot.png").stat().st_size > 10_000
