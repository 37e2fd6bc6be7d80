"""What a suite run shows: progress, the end table, the delta table, JUnit XML.

Everything printed that came from a call or the suite file (ids, transcripts, messages)
goes through :func:`app.textsafe.printable`, so it stays inert on a terminal.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from app.store.writer import atomic_write_text
from app.textsafe import printable, safe_text


def _fmt(value: Any, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _duration(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 60}m{s % 60:02d}s"


class Progress:
    """Progress on ``stream`` (stderr): a live bar with ETA on a terminal, else one line
    per finished case. Loop thread only."""

    def __init__(self, total: int, stream: TextIO, tty: bool | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.done = 0
        self.passed = 0
        self.stopped = 0  # interrupted: neither passed nor failed
        self._t0 = time.monotonic()

    def start(self) -> None:
        """Show the empty bar (terminal only)."""
        if self.tty:
            self._bar()

    def case_done(self, result: dict[str, Any]) -> None:
        """Count a finished case and show it."""
        self.done += 1
        self.passed += 1 if result.get("passed") else 0
        self.stopped += 1 if result.get("status") == "interrupted" else 0
        if self.tty:
            self._bar()
            return
        verdict = str(result.get("status", "failed")).upper()
        failed = [
            f"{c['name']}" + (f"@{c['turn']}" if c.get("turn") is not None else "")
            for c in result.get("checks", [])
            if not c.get("passed")
        ]
        extra = ""
        if result.get("error"):
            extra = f"  error {printable(result['error'].get('code'))}"
        elif failed:
            extra = "  failed: " + ", ".join(failed[:6])
        print(
            f"[{self.done}/{self.total}] {verdict:<11} {printable(result['id'])}  "
            f"v2v p95 {_fmt(result.get('v2v_p95_ms'), '.0f', ' ms')}  "
            f"WER {_fmt(result.get('wer'), '.2f')}{extra}",
            file=self.stream,
            flush=True,
        )

    def finish(self) -> None:
        """End the bar's line (terminal only)."""
        if self.tty:
            print(file=self.stream, flush=True)

    def _bar(self) -> None:
        width = 30
        filled = width * self.done // max(1, self.total)
        elapsed = time.monotonic() - self._t0
        eta = "--"
        if self.done:
            eta = _duration(elapsed / self.done * (self.total - self.done))
        line = (
            f"\r\x1b[K[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} "
            f"pass {self.passed} fail {self.done - self.passed - self.stopped}"
            + (f" interrupted {self.stopped}" if self.stopped else "")
            + f"  elapsed {_duration(elapsed)}  ETA {eta}"
        )
        self.stream.write(line)
        self.stream.flush()


def print_table(summary: dict[str, Any], out: TextIO) -> None:
    """The end table: language x condition -> cases, pass %, mean WER, reply-language
    match %, v2v p50/p95, cost per call; then the totals."""
    head = (
        f"{'language':<16} {'condition':<22} {'cases':>5} {'pass%':>6} {'WER':>6} "
        f"{'lang%':>6} {'v2v p50':>8} {'v2v p95':>8} {'$/call':>9}"
    )
    print(head, file=out)
    rows = [*summary.get("table", []), {"language": "all", "condition": "", **summary}]
    for r in rows:
        print(
            f"{printable(r['language'])[:16]:<16} {printable(r['condition'])[:22]:<22} "
            f"{r['cases']:>5} {_fmt(r['pass_rate'], '.0f'):>6} {_fmt(r['mean_wer'], '.2f'):>6} "
            f"{_fmt(r['reply_language_match'], '.0f'):>6} {_fmt(r['v2v_p50_ms']):>8} "
            f"{_fmt(r['v2v_p95_ms']):>8} {_fmt(r['cost_per_call_usd'], '.4f'):>9}",
            file=out,
        )
    s = summary
    tail = f"{s['passed']}/{s['cases']} cases passed, {s['failed']} failed, {s['errors']} errors"
    ran, planned = s.get("ran", s["cases"]), s["planned"]
    if s.get("crashed"):
        tail += f"; crashed (its process died): {ran} of {planned} planned cases ran"
    elif s.get("interrupted"):
        stopped = s.get("interrupted_cases") or 0
        tail += f"; interrupted: {ran} of {planned} planned cases ran"
        if stopped:
            tail += f", {stopped} stopped mid-call (not counted)"
    print(tail + f"; wall {s['wall_s']:.1f} s for {s['audio_s']:.1f} s of calls", file=out)


def print_failures(cases: Sequence[dict[str, Any]], out: TextIO, limit: int = 40) -> None:
    """One line per failed check or failed call (at most ``limit``)."""
    lines: list[str] = []
    for c in cases:
        if c.get("error"):
            e = c["error"]
            lines.append(f"{c['id']}: error {e.get('code')}: {e.get('message')}")
        for k in c.get("checks", []):
            if not k.get("passed"):
                where = f" turn {k['turn']}" if k.get("turn") is not None else ""
                lines.append(f"{c['id']}:{where} {k['name']}: {k.get('message')}")
    for line in lines[:limit]:
        print(printable(line), file=out)
    if len(lines) > limit:
        print(f"... and {len(lines) - limit} more", file=out)


def junit_xml(run: dict[str, Any]) -> str:
    """JUnit XML for ``run``: one ``testsuite`` per language, one ``testcase`` per case,
    a ``failure`` per failed expectation (named, with its figures) and an ``error`` for a
    call that failed or was interrupted."""
    root = ET.Element("testsuites", name=safe_text(run.get("suite")))
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in run.get("cases", []):
        lang = c["language"] if not c.get("accent") else f"{c['language']}/{c['accent']}"
        groups.setdefault(lang, []).append(c)
    totals = [0, 0, 0]
    for lang, cases in groups.items():
        failures = sum(1 for c in cases if not c.get("error") and not c.get("passed"))
        errors = sum(1 for c in cases if c.get("error"))
        seconds = sum(float(c.get("wall_s") or 0.0) for c in cases)
        ts = ET.SubElement(
            root,
            "testsuite",
            name=f"{safe_text(run.get('suite'))}.{lang}",
            tests=str(len(cases)),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=f"{seconds:.3f}",
        )
        totals[0] += len(cases)
        totals[1] += failures
        totals[2] += errors
        for c in cases:
            tc = ET.SubElement(
                ts,
                "testcase",
                name=safe_text(c["id"]),
                classname=f"{safe_text(run.get('suite'))}.{lang}",
                time=f"{float(c.get('wall_s') or 0.0):.3f}",
            )
            if c.get("error"):
                e = c["error"]
                el = ET.SubElement(
                    tc,
                    "error",
                    message=safe_text(f"{e.get('code')}: {e.get('message')}"),
                    type=safe_text(e.get("code")),
                )
                el.text = safe_text(e.get("message"))
            for k in c.get("checks", []):
                if k.get("passed"):
                    continue
                turn = f"turn {k['turn']} " if k.get("turn") is not None else ""
                el = ET.SubElement(
                    tc,
                    "failure",
                    message=safe_text(f"{turn}{k['name']}: {k.get('message')}"),
                    type=safe_text(k["name"]),
                )
                el.text = safe_text(
                    f"{k['name']}: value={k.get('value')!r} limit={k.get('limit')!r}"
                )
            if c.get("session_id"):
                out = ET.SubElement(tc, "system-out")
                out.text = f"session {safe_text(c['session_id'])}"
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, run: dict[str, Any]) -> None:
    """Write :func:`junit_xml` to ``path`` atomically (the user's file: umask modes).

    Raises:
        StoreError: it cannot be written.
    """
    atomic_write_text(path, _xml_safe(junit_xml(run)), private=False)


def _xml_safe(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters from server text)."""
    return "".join(
        ch
        for ch in text
        if ch in "\t\n\r"
        or (" " <= ch <= "\ud7ff")
        or ("\ue000" <= ch <= "\ufffd")
        or ch > "\uffff"
    )
