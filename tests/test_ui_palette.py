"""One picture, one numbering (issue 12, item 5): every waterfall bar has exactly its
legend colour, every span kind (the reconnect gap too) has a legend entry, the HTML report
uses the same palette, and turns are numbered from 1 wherever a person reads them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtGui import QColor

from app import events as E
from app.events import TurnCompleted
from app.metrics.presentation import SPAN_STYLES, span_colour, turn_number
from app.metrics.records import TurnRecord
from app.metrics.timeline import Timeline
from app.store.reader import load_session
from app.store.report import html_report
from app.store.writer import SessionWriter
from ui.demo import demo_events
from ui.models.turns import TurnsModel
from ui.views.waterfall import WaterfallView

MS = 1_000_000


def _turn_with_reconnect() -> TurnRecord:
    """A turn with a tool call under the agent's speech and a reconnect gap, made by the
    real timeline from the events of such a call."""
    tl = Timeline()
    for ev in [
        E.LocalSpeechStarted(t_ns=0, sample=0),
        E.LocalSpeechStopped(t_ns=900 * MS, sample=14400),
        E.ServerSpeechStopped(t_ns=1400 * MS, item_id="u1"),
        E.ResponseStarted(t_ns=1420 * MS, response_id="r1"),
        E.AgentAudio(t_ns=1440 * MS, response_id="r1", item_id="a1", pcm=bytes(480),
                     sample_rate=24000),
        E.PlaybackStarted(t_ns=1450 * MS, item_id="a1", response_id="r1"),
        E.ToolCallRequested(t_ns=1500 * MS, call_id="c1", name="lookup", arguments="{}",
                            response_id="r1"),
        E.ToolCallFinished(t_ns=1900 * MS, call_id="c1", name="lookup", arguments="{}",
                           status="ok", output="{}", ms=400.0),
        E.Reconnected(t_ns=2600 * MS, provider="openai", reason="connection lost",
                      dropped_ns=2000 * MS, attempts=1, session_index=2),
        E.UserTranscript(t_ns=2610 * MS, item_id="u1", text="Hello", final=True),
        E.AgentTranscript(t_ns=2620 * MS, response_id="r1", item_id="a1", text="Hi", final=True),
        E.ResponseFinished(t_ns=2700 * MS, response_id="r1"),
        E.PlaybackStopped(t_ns=3000 * MS, item_id="a1", played_samples=37200,
                          sample_rate=24000),
    ]:  # fmt: skip
        tl.feed(ev)
    (done,) = tl.close(3100 * MS)
    return done.turn


def test_bars_have_their_legend_colour_and_every_span_is_in_the_legend(qtbot) -> None:
    model = TurnsModel()
    view = WaterfallView(model)
    qtbot.addWidget(view)
    for ev in demo_events():
        if isinstance(ev, TurnCompleted):
            model.add_turn(ev.turn)
    model.add_turn(dataclasses.replace(_turn_with_reconnect(), index=4))
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
    w.write_turns([turn.to_dict()])
    w.finish("complete", {})
    page = html_report(load_session(w.dir))
    assert "<h2>Turn 1</h2>" in page and "Turn 0" not in page
    for style in SPAN_STYLES:
        assert style.colour in page, style.key  # the legend: every span kind
    assert f"background:{span_colour('reconnect')}" in page
    assert turn_number(turn) == 1 and turn.to_dict()["index"] == 0  # JSON stays 0-based
