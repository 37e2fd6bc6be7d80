"""Writing the HTML reports to a file: one rule for the command line (``voiceprobe report
session|coverage``, ``sessions export``) and the desktop (File → Export…, the coverage
window, a past call in History); docs/coverage.md#reports.

A report is written whole or not at all (a new file renamed over the target), never into
voiceprobe's own session folders, and only into a folder that exists; the automatic
verdicts of stored suite runs are read into the index first, so a report shows what
``voiceprobe coverage`` shows.

Threading: any thread; blocking file I/O (reading the session, an SQLite query, a write
and an ``fsync``).
"""

from __future__ import annotations

from pathlib import Path

from app.errors import ConfigError
from app.report.coverage_html import coverage_report
from app.store.coverage import CoverageQuery
from app.store.index import SessionIndex
from app.store.reader import load_session
from app.store.report import html_report
from app.store.verdicts import ingest_suite_runs
from app.store.writer import INDEX_FILE, atomic_write_text

#: What voiceprobe keeps in a data folder: its folders, and its index (with SQLite's side
#: files, ``sessions.db-wal`` ...). A report written over any of them would destroy it.
OWN_FOLDERS = ("sessions", "suite-runs", "samples", "probe-cache", "config")


def report_target(path: Path, root: Path) -> Path:
    """Where an export may go: not over what voiceprobe keeps in its data folder ``root``
    (:data:`OWN_FOLDERS` and the index; symlinks resolved), not a folder, and into a
    folder that exists. A data folder chosen with ``--out`` may be any folder of the
    user's, so a new file beside voiceprobe's own is fine. Returns the resolved path.

    Raises:
        ConfigError: one line naming ``path``.
    """
    target = path.resolve()
    store = root.resolve()
    own = [store / name for name in OWN_FOLDERS]
    if (
        target == store
        or any(target == d or d in target.parents for d in own)
        or (target.parent == store and target.name.startswith(INDEX_FILE))
    ):
        raise ConfigError(f"would overwrite voiceprobe's own data in its data folder {store}",
                          str(path))  # fmt: skip
    if target.is_dir():
        raise ConfigError("is a folder, not a file", str(path))
    if not target.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist", str(path))
    return target


def export_session_report(session_dir: Path, out: Path) -> Path:
    """Write the report of the session stored in ``session_dir`` (``<root>/sessions/<id>``)
    to ``out``; returns the file written (resolved).

    Raises:
        ConfigError: ``out`` is a folder, in a folder that does not exist, or inside the
            data folder (one line naming it); nothing is written.
        StoreError: the session cannot be read, or the file cannot be written.
    """
    session_dir = Path(session_dir)
    record = load_session(session_dir)
    root = session_dir.parent.parent
    target = report_target(Path(out), root)
    index = SessionIndex(root / INDEX_FILE)
    ingest_suite_runs(root, index)
    # The user's umask applies: a report is made to be shared.
    atomic_write_text(target, html_report(record, index.verdicts(record.session_id)),
                      private=False)  # fmt: skip
    return target


def export_coverage_report(root: Path, query: CoverageQuery, out: Path, worst: int = 5) -> Path:
    """Write the coverage report of ``query`` over the data folder ``root`` to ``out``
    (``worst``: how many worst turns, with their audio); returns the file written.

    Raises:
        ConfigError: a bad ``out`` (as :func:`export_session_report`).
        StoreError: the index cannot be read, or the file cannot be written.
    """
    root = Path(root)
    target = report_target(Path(out), root)
    index = SessionIndex(root / INDEX_FILE)
    ingest_suite_runs(root, index)
    atomic_write_text(target, coverage_report(index, query, root / "sessions", worst=worst),
                      private=False)  # fmt: skip
    return target
