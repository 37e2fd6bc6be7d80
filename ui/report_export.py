"""Export an HTML report from the desktop: ask where, write it with
:mod:`app.report.export` (the same rules as ``voiceprobe report``), and say what happened
in one plain-text line. Used by File → Export…, the coverage window and a past call in
History. Main thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from app.errors import VoiceprobeError
from ui.models.common import one_line

#: Where the save dialog starts (the user's home), when nothing else is known.
START_DIR = Path.home()


def export_report(
    parent: QWidget,
    title: str,
    suggested: str,
    write: Callable[[Path], Path],
    path: Path | None = None,
) -> tuple[bool, str]:
    """Ask for a file (``path`` given: no dialog), ``write(file)`` the report there and
    return ``(written, message)``: the message names the file written, or why nothing
    was (a bad folder, an unreadable session: one line, nothing written). Cancelling the
    dialog returns ``(False, "")``.
    """
    if path is None:
        chosen, _ = QFileDialog.getSaveFileName(
            parent, title, str(START_DIR / suggested), "HTML report (*.html)"
        )
        if not chosen:
            return False, ""
        path = Path(chosen)
    try:
        written = write(path)
    except (VoiceprobeError, OSError) as exc:
        return False, f"Report not written: {one_line(str(exc), 600)}"
    return True, f"Report written to {written}"
