"""The HTML report renders in headless Chromium (Debian ``chromium``): a screenshot of
the page is taken and checked to be a real, mostly non-blank image, and the page's DOM
as Chromium builds it holds every table and every embedded plot.

Slow (starts a browser): ``pytest -m slow tests/test_report_html.py``. Skipped where
``/usr/bin/chromium`` is absent (``apt-get install -y chromium``). The screenshot is
kept at ``$MEDSPLIT_SCREENSHOT_DIR`` when set, to look at it. The page's content (which
tables it holds) is checked without a browser too.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from test_report import LM_MODEL, UNPARSED_TEXT, B, env, hub_dir, inspect_run, lm_run, records  # noqa: F401

from lm_eval_medsplit.report import build_report, write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

def test_html_report_shows_the_repeats_table_with_its_numbers():
    """Repeated samples get their own section, with the same cells as the Markdown table."""
    from html.parser import HTMLParser

    from lm_eval_medsplit.report.analysis import analyse
    from lm_eval_medsplit.report.html import render_html
    from lm_eval_medsplit.report.tables import repeats_table
    from lm_eval_medsplit.samples import SampleRow

    rows = []
    for q, preds in {"q0": "AAB", "q1": "ABB", "q2": "BCD", "q3": "CCC"}.items():  # gold A, k = 3
        for j, p in enumerate(preds):
            rows.append(SampleRow("m", "inspect", "t", "medqa", q, "knowledge", 0.2, "h", None, None, p, "x",
                                  "correct" if p == "A" else "incorrect", repeat=j))
    d = analyse(rows, b=B)
    page = render_html(d, {}, generated="2026-01-01 00:00 UTC")

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.section, self.rows = [], None, {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "section":
                self.section = a.get("id")
            if tag == "table":
                self.table = a.get("id")
                self.rows.setdefault((self.section, self.table), [])
            if tag == "tr":
                self.rows[(self.section, self.table)].append([])
            self.stack.append(tag)

        def handle_endtag(self, tag):
            self.stack.pop()

        def handle_data(self, data):
            if self.stack and self.stack[-1] in ("td", "th"):
                self.rows[(self.section, self.table)][-1].append(data)

    p = Cells()
    p.feed(page)
    assert '<a href="#repeats">' in page
    got = p.rows[("repeats", "t-repeats")]
    spec = repeats_table(d)
    assert got[0] == spec.columns and got[1:] == spec.rows
    assert any("maj@k" in c for c in got[0]) and [r[2] for r in got[1:]] == ["all", "knowledge"]
    assert got[1][5].startswith("25.0 [")  # pass@1 = mean of (2/3, 1/3, 0, 0)
    # a report without repeats has no such section
    assert 'id="repeats"' not in render_html(analyse(rows[::3], b=B), {}, generated="x")


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--no-default-browser-check", "--disable-extensions",
           "--disable-background-networking", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw scanlines of an 8-bit RGB/RGBA PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (/usr/bin/chromium) not installed")
def test_html_report_renders_in_headless_chromium(lm_run, inspect_run, tmp_path):  # noqa: F811
    rep = build_report([lm_run, inspect_run], b=B)
    out = tmp_path / "rep"
    write_report(rep, out, formats=("html",))
    page = (out / "report.html").resolve()
    url = page.as_uri()

    # the DOM Chromium builds: every section, table and image is there
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for marker in ('id="t-gaps"', 'id="t-adversarial"', 'id="t-adversarial_subsets"',
                   'id="t-threshold_sweep"', 'id="t-parse"', 'id="t-runs"', LM_MODEL, UNPARSED_TEXT):
        assert marker in html, marker
    assert html.count("data:image/png;base64,") == 4

    # a screenshot of the top of the page: real pixels, not a blank page
    shot = tmp_path / "report.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1400,2400", url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    w, h, rows = _png_pixels(shot.read_bytes())
    assert (w, h) == (1400, 2400)
    bpp = len(rows[0]) // w
    white = sum(1 for r in rows[::8] for i in range(0, len(r), bpp * 8) if r[i:i + 3] == b"\xff\xff\xff")
    total = len(rows[::8]) * len(range(0, len(rows[0]), bpp * 8))
    assert 0.2 < white / total < 0.98, white / total  # text, tables and plots drawn on white
    colours = {r[i:i + 3] for r in rows[::16] for i in range(0, len(r), bpp * 16)}
    assert len(colours) > 50  # the embedded plots' colours, not just text
    keep = os.environ.get("MEDSPLIT_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(page, Path(keep) / "report.html")
