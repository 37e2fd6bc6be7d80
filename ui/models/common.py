"""Small formatting helpers shared by the models and views (pure functions)."""

from __future__ import annotations

import html
import math

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGuiNamespace  # where PySide6 puts Qt::mightBeRichText

#: First custom item-data role used by the models.
USER_ROLE = int(Qt.ItemDataRole.UserRole)


def one_line(text: str, limit: int = 160) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plain_tip(text: str) -> str:
    """``text`` as a tooltip Qt shows literally, line breaks and spaces kept.

    A tooltip (``setToolTip``, a model's ``ToolTipRole``, ``QToolTip.showText``) has no
    text-format setting: Qt renders it as rich text whenever ``Qt.mightBeRichText`` is
    true (a known tag such as ``<b>`` or ``<img src=…>``, or ``&lt;``, on its first line),
    so a note or a transcript holding one would be formatted, or fetch an image. Such text
    is returned HTML-escaped, its line breaks as ``<br>`` (CR LF as one), in a
    ``white-space: pre-wrap`` paragraph (runs of spaces and tabs kept), which Qt renders
    as the original characters; any other text is returned unchanged, since Qt shows it
    as plain text already (our own fixed tooltips stay exactly as written).

    Use it for every tooltip that may carry untrusted text (transcripts, tool arguments
    and results, server errors, anything read from a session or pad folder).
    """
    text = str(text)
    if not QtGuiNamespace.mightBeRichText(text):
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "<br>".join(html.escape(line, quote=False) for line in lines)
    return f"<p style='white-space:pre-wrap'>{body}</p>"


def clock_text(ms: float | None) -> str:
    """Format a time since call start as ``m:ss.s`` (``--`` when unknown)."""
    if ms is None:
        return "--"
    ms = max(0.0, ms)
    minutes, rest = divmod(ms / 1000.0, 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def ms_text(ms: float | None) -> str:
    """Format a duration in milliseconds (``—`` when unknown)."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "—"
    return f"{ms:,.0f} ms"
