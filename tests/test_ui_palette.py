"""One picture, one numbering (issue 12, item 5): every waterfall bar has exactly its
legend colour, every span kind (the reconnect gap too) has a legend entry, the HTML report
uses the same palette, and turns are numbered from 1 wherever a person reads them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor

from app.events import TurnCompleted
from app.metrics.presentation import SPAN_STYLES, span_colour, turn_number
from app.store.reader import load_session
from app.store.report import html_report
from app.store.writer import SessionWriter
from ui.demo import demo_events
from ui.models.turns import TurnsModel
from ui.views.waterfall import WaterfallView

MS = 1_000_000


def _turn_with_reconnect() -> dict:
    def span(a: int, b: int, f: str, t: str) -> dict:
        return {"start_ns": a * MS, "end_ns": b * MS, "ms": float(b - a), "from": f, "to": t}

    return {
        "index": 0,
        "user_transcript": "Hello",
        "agent_transcript": "Hi",
        "spans": {
            "user_speech": span(0, 900, "LocalSpeechStarted", "LocalSpeechStopped"),
            "end_of_turn_delay": span(900, 1400, "LocalSpeechStopped", "ServerSpeechStopped"),
            "tool:lookup": span(1500, 1900, "ToolCallRequested", "ToolCallFinished"),
            "agent_speech": span(1450, 3000, "PlaybackStarted", "PlaybackStopped"),
            "reconnect": span(2000, 2600, "ConnectionLost", "Reconnected"),
            "voice_to_voice": span(900, 1450, "LocalSpeechStopped", "PlaybackStarted"),
        },
        "tool_calls": [{"name": "lookup", "arguments": "{}", "status": "ok", "ms": 400.0}],
    }


def test_bars_have_their_legend_colour_and_every_span_is_in_the_legend(qtbot) -> None:
    model = TurnsModel()
    view = WaterfallView(model)
    qtbot.addWidget(view)
    for ev in demo_events():
        if isinstance(ev, TurnCompleted):
            model.add_turn(dict(ev.turn))
    model.add_turn({**_turn_with_reconnect(), "index": 4})
    view.refresh()
    assert set(view.legend_items) == {s.key for s in SPAN_STYLES}
    opts = view._bars.opts
    rows = view.row_layouts()
    names = [name for lay in rows for name in lay.segments]
    assert len(opts["brushes"]) == len(names)
    for name, brush in zip(names, opts["brushes"], strict=True):
        colour = brush.color()
        assert colour.alpha() == 255, name  # opaque: what is drawn is what the legend shows
        assert colour.name() == QColor(span_colour(name)).name(), name
    # Speech and waiting time never overlap within a strip: the tool call under the
    # agent's speech and the reconnect gap are both visible with their own colours.
    last = rows[-1]
    assert {"tool:lookup", "agent_speech", "reconnect"} <= set(last.segments)
    tip = view.tooltip_at(1700 - 1400 + 500, last.row + 0.06)  # inside the tool bar
    assert tip.startswith("tool lookup: 400 ms") and "from ToolCallRequested to " in tip


def test_report_uses_the_palette_and_numbers_turns_from_1(tmp_path: Path) -> None:
    turn = _turn_with_reconnect()
    w = SessionWriter(tmp_path, "20261203-140000-pal0", {"provider": "openai", "model": "m"})
    w.write_turns([turn])
    w.finish("complete", {})
    page = html_report(load_session(w.dir))
    assert "<h2>Turn 1</h2>" in page and "Turn 0" not in page
    for style in SPAN_STYLES:
        assert style.colour in page, style.key  # the legend: every span kind
    assert f"background:{span_colour('reconnect')}" in page
    assert turn_number(turn) == 1 and turn["index"] == 0  # JSON stays 0-based
