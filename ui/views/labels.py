"""Labels that show text literally: hints, statuses and the error banner.

Text from files, the network or the user is untrusted: a label that may show it uses
plain text (never rich text), and wraps rather than widening its window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


def plain_label(
    text: str = "", parent: QWidget | None = None, name: str = "", *, selectable: bool = False
) -> QLabel:
    """A word-wrapped plain-text label showing ``text``, named ``name`` (the object name
    the style sheet knows it by, e.g. ``hint`` or ``banner``) when one is given; with
    ``selectable``, its text can be selected with the mouse (to copy a status or an
    address)."""
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


def banner_label(parent: QWidget | None = None) -> QLabel:
    """The error banner (the theme's ``QLabel#banner``), hidden until there is something
    to say: set its text and show it."""
    label = plain_label("", parent, "banner")
    label.hide()
    return label
