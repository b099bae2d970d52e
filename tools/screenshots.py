#!/usr/bin/env python3
"""Regenerate docs/comment.html and docs/summary.html (the sample dry run's PR comment and job summary,
rendered by cmark-gfm as GitHub does) and their screenshots docs/comment.png and docs/summary.png,
taken with headless Chromium. tests/unit/report/test_rendered.py holds the HTML to what the code renders now;
run this after changing the Markdown:

    .venv/bin/python tools/screenshots.py   # needs /usr/bin/chromium (apt-get install -y chromium)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from support import gfm  # noqa: E402
from support.samples import comment_markdown, summary_markdown  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
WIDTH = 940
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
# Added to a copy of the page only: the height the screenshot needs (headless takes the window).
MEASURE = "<script>document.title = 'height=' + document.documentElement.scrollHeight;</script>"


def chromium(profile: Path, *args: str) -> str:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(
        cmd, check=True, capture_output=True, text=True, timeout=120
    ).stdout


def height(page: Path, work: Path) -> int:
    probe = work / f"probe-{page.name}"
    probe.write_text(
        page.read_text("utf-8").replace("</body>", MEASURE + "</body>"), "utf-8"
    )
    dom = chromium(
        work / "profile-measure",
        f"--window-size={WIDTH},800",
        "--dump-dom",
        probe.as_uri(),
    )
    found = re.search(r"<title>height=(\d+)</title>", dom)
    if not found:
        raise SystemExit(f"could not measure {page}")
    return int(found[1]) + 16


def main() -> int:
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        work = Path(tmp)
        for name, markdown in (
            ("comment", comment_markdown()),
            ("summary", summary_markdown()),
        ):
            page = docs / f"{name}.html"
            page.write_text(gfm.page(name, markdown), "utf-8")
            png = docs / f"{name}.png"
            size = f"--window-size={WIDTH},{height(page, work)}"
            chromium(
                work / f"profile-{name}", size, f"--screenshot={png}", page.as_uri()
            )
            print(f"{page.relative_to(ROOT)} -> {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
