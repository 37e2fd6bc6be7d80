"""Small formatting helpers shared by the models (pure functions, no Qt)."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt

#: First custom item-data role used by the models.
USER_ROLE = int(Qt.ItemDataRole.UserRole)


def one_line(text: str, limit: int = 160) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
