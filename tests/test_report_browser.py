"""Both HTML reports rendered by a real headless Chromium: a page that is not blank, no
console error, no network request, audio that loads, hostile text shown as text, and a
printable page."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from PySide6.QtGui import QImage

from tests.browser import Page, open_page
from tests.coverage_helpers import cli, make_session

HOSTILE_USER = "<script>alert('x')</script> </style><h1>big</h1> javascript:alert(1)"
HOSTILE_AGENT = '<img src=x onerror=alert(2)> <a href="javascript:alert(3)">click</a>'
HOSTILE_NOTE = "</style><script>fetch('http://127.0.0.1:9/x')</script>"


def _distinct_colours(png: bytes) -> int:
    img = QImage.fromData(png, "PNG")
    assert not img.isNull(), "the screenshot is not a PNG"
    seen = set()
    for y in range(0, img.height(), 7):
        for x in range(0, img.width(), 7):
            seen.add(img.pixel(x, y))
    return len(seen)


def _sessions(home: Path) -> tuple[str, str]:
    bad = "20261201-100000-bad0"
    make_session(home, bad, [(HOSTILE_USER, HOSTILE_AGENT, 1800.0), ("fine", "ok", 600.0)],
                 tags=["language=hi-IN", "accent=tamil", "agent_version=v2"])  # fmt: skip
    good = "20261201-110000-900d"
    make_session(home, good, [("hello", "hi there", 500.0)],
                 tags=["language=en-GB", "agent_version=v2"])  # fmt: skip
    proc = cli(home, "sessions", "verdict", bad, "--turn", "1", "fail", "--reason", "misheard",
               "--note", HOSTILE_NOTE)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return bad, good


async def _check(page: Page, audios: int) -> None:
    state = await page.evaluate(
        "Promise.all([...document.querySelectorAll('audio')].map(a => a.readyState >= 1 ?"
        " [a.readyState, a.duration] : new Promise(r => {"
        " a.addEventListener('loadedmetadata', () => r([a.readyState, a.duration]));"
        " a.addEventListener('error', () => r([-1, 0])); a.load(); })))",
        60.0,
    )
    assert len(state) == audios, state
    for ready, duration in state:
        assert ready >= 1 and 0.5 < duration <= 8.01, state
    text = await page.evaluate("document.body.innerText")
    assert "<script>alert('x')</script>" in text and "</style>" in text
    assert "javascript:alert(1)" in text
    facts = await page.evaluate(
        "({scripts: document.scripts.length, imgs: document.images.length,"
        " links: document.links.length, h1: document.querySelectorAll('h1').length,"
        " js: [...document.querySelectorAll('[href],[src]')].filter(e =>"
        " (e.getAttribute('href') || e.getAttribute('src')).startsWith('javascript')).length})"
    )
    assert facts == {"scripts": 0, "imgs": 0, "links": 0, "h1": 1, "js": 0}, facts
    png = await page.screenshot()
    assert _distinct_colours(png) > 8, "the page looks blank"
    pdf = await page.pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    assert page.problems() == []


def test_session_and_coverage_reports_in_chromium(home: Path, tmp_path: Path) -> None:
    bad, _ = _sessions(home)
    session_page = tmp_path / "session.html"
    proc = cli(home, "report", "session", bad, "--html", str(session_page))
    assert proc.returncode == 0, proc.stderr
    coverage_page = tmp_path / "coverage.html"
    proc = cli(home, "report", "coverage", "--html", str(coverage_page), "--worst", "3")
    assert proc.returncode == 0, proc.stderr
    html = coverage_page.read_text()
    assert html.count("<audio") == 3 and "data:audio/wav;base64," in html
    assert len(html) < 2_000_000
    for page_file in (session_page, coverage_page):
        raw = page_file.read_text()
        # Every src/href is inline data; no stylesheet, script or CSS url() to fetch.
        assert not re.search(r"""\s(?:src|href)=["'](?!data:)""", raw)
        for tag in ("<link", "url(", "<script", "@import"):
            assert tag not in raw, tag

    async def run() -> None:
        async with open_page(session_page) as page:
            await _check(page, 0)
            svg = await page.evaluate("document.querySelectorAll('svg.waterfall').length")
            assert svg == 2
            verdict = await page.evaluate("document.querySelector('.v.fail').textContent")
            assert "fail" in verdict
        async with open_page(coverage_page) as page:
            await _check(page, 3)
            cells = await page.evaluate("document.querySelectorAll('td.cell').length")
            assert cells == 2

    asyncio.run(run())


def test_report_into_a_missing_folder_is_one_line_exit_2(home: Path, tmp_path: Path) -> None:
    bad, _ = _sessions(home)
    for args in (["session", bad], ["coverage"]):
        proc = cli(home, "report", *args, "--html", str(tmp_path / "nope" / "r.html"))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    assert not (tmp_path / "nope").exists()
    missing = "20991231-000000-ffff"
    proc = cli(home, "report", "session", missing, "--html", str(tmp_path / "r.html"))
    assert proc.returncode == 2 and "no session" in proc.stderr
    cov = json.loads(cli(home, "coverage", "--json").stdout)
    assert cov["total"]["judged"] == 1


def test_the_harness_sees_requests_errors_and_blank_pages(tmp_path: Path) -> None:
    """A control: the checks above would catch a fetch, a console error, an exception and
    a blank page (so their silence on the reports means something)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><html><body><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body></body></html>")

    async def run() -> None:
        async with open_page(bad) as page:
            problems = page.problems()
            assert any(p.startswith("request: http://127.0.0.1:9/") for p in problems)
            assert any(p.startswith("console:") for p in problems)
            assert any(p.startswith("exception:") for p in problems)
        async with open_page(blank) as page:
            assert _distinct_colours(await page.screenshot()) <= 2

    asyncio.run(run())
