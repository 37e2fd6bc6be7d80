"""Per-turn verdicts: manual (a person's ``pass``/``fail``) and automatic (a suite's checks).

Manual verdicts live in the session folder, ``verdicts.json`` (a list, one entry per
judged turn: ``{"turn", "verdict", "reason", "note", "who", "at"}``, ``0600``, rewritten
atomically), and are copied into the index. Automatic verdicts come from stored suite
runs (``<data dir>/suite-runs/*.json``): a turn passes when every check of that turn
passed; the failed checks' messages are its note. Both are kept; wherever one verdict per
turn counts (the coverage matrix, reports), the manual one wins. Turns are numbered from
1 as people read them (``sessions show``); a suite's turn N is the session's turn N.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError, StoreError
from app.metrics.presentation import turn_number
from app.store.index import SessionIndex
from app.textsafe import printable

if TYPE_CHECKING:  # the reader and writer cost keyring's import: only verdicts need them
    from app.store.reader import SessionRecord

VERDICTS_FILE = "verdicts.json"
VERDICTS = ("pass", "fail")
REASONS = ("misheard", "wrong_language", "wrong_answer", "too_slow", "cut_off", "tool_error",
           "other")  # fmt: skip
MAX_NOTE = 2000
MAX_WHO = 100


def read_manual(folder: Path) -> list[dict[str, Any]]:
    """The manual verdicts of the session in ``folder`` (none when there is no file).

    Raises:
        StoreError: the file is unreadable or not a list of verdicts.
    """
    path = folder / VERDICTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} cannot be read ({type(exc).__name__})") from None
    if not isinstance(data, list) or not all(
        isinstance(v, dict) and isinstance(v.get("turn"), int) and v.get("verdict") in VERDICTS
        for v in data
    ):
        raise StoreError(f"{path} is not a list of verdicts")
    return data


def check_verdict(
    record: SessionRecord, turn: int, verdict: str, reason: str | None, note: str | None
) -> None:
    """Validate a manual verdict for ``record``'s turn ``turn`` (1-based).

    Raises:
        ConfigError: one line: no such turn, an unknown verdict or reason, a note too long.
    """
    numbers = [turn_number(t, row) for row, t in enumerate(record.turns)]
    if turn not in numbers:
        have = f"turns 1-{max(numbers)}" if numbers else "no turns"
        raise ConfigError(
            f"session {printable(record.session_id)} has no turn {turn} (it has {have})"
        )
    if verdict not in VERDICTS:
        raise ConfigError(f"verdict must be pass or fail, got {printable(verdict[:40])!r}")
    if reason is not None and reason not in REASONS:
        raise ConfigError(
            f"unknown reason {printable(reason[:40])!r} (one of {', '.join(REASONS)})"
        )
    if note is not None and len(note) > MAX_NOTE:
        raise ConfigError(f"the note is {len(note)} characters long (at most {MAX_NOTE})")


def check_who(who: str, name: str = "who") -> None:
    """Refuse a judge's name that is too long to show, or that holds control characters
    (a line break, an escape sequence, a bidi override: the desktop shows the name as it
    is stored).

    Args:
        who: the name.
        name: how the user gave it (``--who``), for the message.

    Raises:
        ConfigError: one line naming ``name`` and the limit.
    """
    if len(who) > MAX_WHO:
        raise ConfigError(f"{name} is {len(who)} characters long (at most {MAX_WHO})")
    if printable(who) != who:
        raise ConfigError(f"{name} must not hold control characters, got '{printable(who[:40])}'")


def set_manual(
    record: SessionRecord,
    index: SessionIndex,
    turn: int,
    verdict: str,
    *,
    reason: str | None = None,
    note: str | None = None,
    who: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Give ``record``'s turn ``turn`` a manual verdict (replacing an earlier one of that
    turn): checked first, then written to ``verdicts.json``, then to the index.

    Returns:
        The stored verdict.

    Raises:
        ConfigError: bad input (see :func:`check_verdict`, and :func:`resolve_who` for
            ``who``); nothing is written.
        StoreError: the file or the index cannot be written.
    """
    from app.store.writer import atomic_write_text, dumps

    check_verdict(record, turn, verdict, reason, note)
    who = resolve_who(who)
    entry = {
        "turn": turn,
        "verdict": verdict,
        "reason": reason,
        "note": note or "",
        "who": who,
        "at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    kept = [v for v in read_manual(record.path) if v["turn"] != turn]
    stored = sorted([*kept, entry], key=lambda v: int(v["turn"]))
    path = record.path / VERDICTS_FILE
    atomic_write_text(path, dumps(stored, indent=2) + "\n")
    index.set_verdicts(record.session_id, "manual", stored)
    st = path.stat()
    index.mark_ingested(str(path), f"{st.st_size}:{st.st_mtime_ns}")
    return entry


def resolve_who(who: str | None = None, name: str = "who") -> str:
    """The judge of a verdict: ``who`` when given, else ``$VOICEPROBE_TESTER``, both the
    user's own words and checked (:func:`check_who`); else the login name, cut to
    :data:`MAX_WHO` (not the user's words: a long one is cut, not refused).

    Raises:
        ConfigError: ``who`` (named ``name``) or ``$VOICEPROBE_TESTER`` is too long or
            holds control characters.
    """
    if who is not None:
        check_who(who, name)
        return who
    tester = os.environ.get("VOICEPROBE_TESTER")
    if tester:
        check_who(tester, "$VOICEPROBE_TESTER")
        return tester
    return default_who()[:MAX_WHO]


def default_who() -> str:
    """Who gives a verdict when not told: ``$VOICEPROBE_TESTER``, else the login name."""
    name = os.environ.get("VOICEPROBE_TESTER")
    if name:
        return name
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def auto_verdicts(case: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """A stored suite case's automatic verdicts and per-turn facts.

    Returns:
        ``(verdicts, facts)``: one verdict per turn with checks (``pass`` when all passed;
        the failed checks' messages as the note), and ``(turn, wer, lang_match)`` per
        scored turn, ``lang_match`` judged by primary subtag against the case's language.
    """
    by_turn: dict[int, list[Mapping[str, Any]]] = {}
    for check in case.get("checks") or []:
        if isinstance(check, Mapping) and isinstance(check.get("turn"), int):
            by_turn.setdefault(int(check["turn"]), []).append(check)
    verdicts = []
    for turn, checks in sorted(by_turn.items()):
        failed = [c for c in checks if not c.get("passed")]
        note = "; ".join(f"{c.get('name')}: {c.get('message') or 'failed'}" for c in failed)
        verdicts.append({"turn": turn, "verdict": "fail" if failed else "pass",
                         "reason": None, "note": note[:MAX_NOTE], "who": "suite",
                         "at": None})  # fmt: skip
    primary = str(case.get("language") or "").split("-")[0].lower()
    facts: list[Any] = []
    for t in case.get("turns") or []:
        if not isinstance(t, Mapping) or not isinstance(t.get("turn"), int):
            continue
        wer = t.get("wer")
        lang = t.get("reply_language")
        match = None if not lang or not primary else int(str(lang).split("-")[0].lower() == primary)
        facts.append((int(t["turn"]), float(wer) if isinstance(wer, int | float) else None, match))
    return verdicts, facts


def _changed(paths: Iterable[Path], index: SessionIndex) -> Iterator[tuple[Path, str]]:
    """``paths`` in order whose size or modification time differ from the stamp the index
    keeps for them (new files too), each with its current stamp for
    :meth:`SessionIndex.mark_ingested`; a file that cannot be stat'ed is skipped."""
    seen = index.ingested_stamps()
    for path in sorted(paths):
        try:
            st = path.stat()
        except OSError:
            continue
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
        if seen.get(str(path)) != stamp:
            yield path, stamp


def ingest_suite_runs(root: Path, index: SessionIndex) -> int:
    """Read stored suite runs that are new or changed since last time into the index
    (automatic verdicts and per-turn WER/reply language of every case's session).

    A run file is read again when its size or modification time changed; unreadable files
    are skipped. Returns the number of files read.
    """
    folder = root / "suite-runs"
    if not folder.is_dir():
        return 0
    read = 0
    for path, stamp in _changed(folder.glob("*.json"), index):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            continue
        cases = run.get("cases") if isinstance(run, dict) else None
        for case in cases if isinstance(cases, list) else []:
            sid = case.get("session_id") if isinstance(case, Mapping) else None
            if isinstance(sid, str) and sid:
                verdicts, facts = auto_verdicts(case)
                index.set_verdicts(sid, "auto", verdicts, facts)
        index.mark_ingested(str(path), stamp)
        read += 1
    return read


def ingest_verdict_files(root: Path, index: SessionIndex) -> int:
    """Copy ``verdicts.json`` files that are new or changed since last time into the index
    (the folders are the truth: this rebuilds manual verdicts in a new or rebuilt index).
    Unreadable files are skipped. Returns the number of files read."""
    read = 0
    for path, stamp in _changed((root / "sessions").glob(f"*/{VERDICTS_FILE}"), index):
        try:
            manual = read_manual(path.parent)
        except StoreError:
            continue
        index.set_verdicts(path.parent.name, "manual", manual)
        index.mark_ingested(str(path), stamp)
        read += 1
    return read


def effective(verdicts: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """One verdict per turn from :meth:`SessionIndex.verdicts` rows: the manual one when
    there is one, else the automatic one."""
    out: dict[int, Mapping[str, Any]] = {}
    for v in verdicts:
        turn = int(v["turn"])
        if turn not in out or v.get("source") == "manual":
            out[turn] = v
    return out
