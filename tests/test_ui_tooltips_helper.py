"""``plain_tip``: the one helper that makes untrusted text a tooltip Qt shows literally
(the sites that use it are tested in ``tests/test_ui_tooltips.py``)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtWidgets import QApplication, QLabel, QToolTip, QWidget

from tests.test_ui_tooltips import shown  # sets the offscreen platform first
from ui.models.common import plain_tip

HOSTILE = [
    '<b>bold</b><img src="file:///etc/hostname">',
    "<i>x</i>\n\n  indented\tand tabbed  \nlast",
    "a &lt; b &amp; c <br> d",
    "<p>para</p>\n",
    "<!DOCTYPE html><html><body>x</body></html>",
    "<a href='https://example.com'>click</a> é 😀",
    "<b>x</b>\r\ny",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markup_is_shown_as_its_characters(qtbot, text: str) -> None:
    tip = plain_tip(text)
    assert QtGuiNamespace.mightBeRichText(tip)  # read as HTML, so the escapes apply
    assert "<img" not in tip and "<b>" not in tip and "<a " not in tip
    assert shown(tip) == text.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "text", ["", "Connected", "error code: auth_failed", "a < b\nc", "x\n<b>y</b>", "1 → 2"]
)
def test_text_qt_shows_plainly_is_left_as_it_is(qtbot, text: str) -> None:
    assert plain_tip(text) == text  # fixed tooltips and plain text: unchanged
    if text:
        assert shown(text) == text


def test_the_tooltip_qt_shows_has_no_formatting(qtbot) -> None:
    # The real tooltip window: the label Qt shows is given the escaped text; rendered, it
    # reads as the original characters (checked on a copy of that label).
    owner = QWidget()
    qtbot.addWidget(owner)
    owner.show()
    text = '<b>bold</b><img src="file:///etc/hostname">'
    QToolTip.showText(QPoint(10, 10), plain_tip(text), owner)
    assert QToolTip.text() == plain_tip(text)
    tips = [w for w in QApplication.topLevelWidgets() if w.inherits("QLabel") and w.isVisible()
            and isinstance(w, QLabel) and w.text() == plain_tip(text)]  # fmt: skip
    assert tips, "no tooltip label shown"
    assert shown(tips[0].text()) == text
    QToolTip.hideText()
