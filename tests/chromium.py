"""Headless Chromium (Debian's ``chromium``) driving the self-contained HTML pages: the leakage report, the
explain page. Tests skip without it (``needs_chromium``); benchmarks/html_screenshot.py uses it too."""
import shutil
import subprocess
import tempfile

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(args, profile=None, timeout=180) -> subprocess.CompletedProcess:
    """Run headless Chromium with ``args`` (a fresh profile folder unless ``profile`` names one)."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as fresh:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile or fresh}", *args],
                              capture_output=True, text=True, timeout=timeout)


def console(run: subprocess.CompletedProcess) -> list[str]:
    """The console messages (errors, warnings, logs) a page printed."""
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
