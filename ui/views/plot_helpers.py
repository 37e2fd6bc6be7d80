"""Small helpers the pyqtgraph views share: a hover tooltip over a plot and a marker line
that is shown at a position or hidden."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QToolTip

from ui.models.common import plain_tip


def show_plot_tooltip(
    plot: pg.PlotWidget, scene_pos: Any, text_at: Callable[[float, float], str]
) -> None:
    """Show ``text_at(x, y)`` (plot coordinates) as the tooltip at ``scene_pos``, or hide
    the tooltip where it is empty; a point off the plot's view box is ignored. The text is
    plain text and shown literally (:func:`ui.models.common.plain_tip`): it may hold names
    from the call, e.g. a tool name the model chose or a span read from a session file.

    Main thread only (connect it to the scene's ``sigMouseMoved``).
    """
    vb = plot.getPlotItem().getViewBox()
    if not vb.sceneBoundingRect().contains(scene_pos):
        return
    point = vb.mapSceneToView(scene_pos)
    text = text_at(point.x(), point.y())
    if text:
        QToolTip.showText(plot.mapToGlobal(plot.mapFromScene(scene_pos)), plain_tip(text), plot)
    else:
        QToolTip.hideText()


def place_line(line: pg.InfiniteLine, pos: float | None) -> None:
    """Show ``line`` at ``pos``, or hide it when ``pos`` is ``None``."""
    if pos is None:
        line.hide()
    else:
        line.setValue(pos)
        line.show()
