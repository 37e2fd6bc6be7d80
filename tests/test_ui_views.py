"""Each view built from a model with no core; untrusted text stays plain text."""

from __future__ import annotations

import ast  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from app import events as E  # noqa: E402
from app.metrics.records import TurnRecord  # noqa: E402
from tests.conftest_qt import FakeController  # noqa: F401  (sets QT_QPA_PLATFORM first)
from ui.demo import DEFAULT_AGENT, V2V_MS, demo_events  # noqa: E402
from ui.levels import LevelPump  # noqa: E402
from ui.models import CallViewModel  # noqa: E402
from ui.views.event_inspector import EventInspector  # noqa: E402
from ui.views.level_meters import LevelMeters  # noqa: E402
from ui.views.tool_calls_view import ToolCallsView  # noqa: E402
from ui.views.transcript_view import TranscriptView  # noqa: E402
from ui.views.vad_lane_view import VadLaneView  # noqa: E402
from ui.views.waterfall import WaterfallView, layout_row  # noqa: E402

HOSTILE = "<b>bold</b> <img src=x>"
DISPLAY = Qt.ItemDataRole.DisplayRole
UI = Path(__file__).resolve().parent.parent / "ui"


def fed(events) -> CallViewModel:
    vm = CallViewModel()
    for ev in events:
        vm.apply(ev)
    return vm


def test_hostile_agent_text_is_shown_literally(qtbot):
    agent = (HOSTILE, *DEFAULT_AGENT[1:])
    events = demo_events(agent_texts=agent)
    events.append(E.ProviderErrorEvent(t_ns=events[-1].t_ns + 1, code="x<i>", message=HOSTILE))
    vm = fed(events)
    view = TranscriptView(vm.transcript)
    qtbot.addWidget(view)
    view.show()
    rows = [vm.transcript.index(i).data(DISPLAY) for i in range(vm.transcript.rowCount())]
    assert any(r.endswith(f"Agent: {HOSTILE}") for r in rows)
    assert any(r.endswith(f"Error: x<i>: {HOSTILE}") for r in rows)
    assert all(isinstance(r, str) for r in rows)
    # The waterfall detail (a QPlainTextEdit) and the event log carry it literally too.
    wf = WaterfallView(vm.turns)
    qtbot.addWidget(wf)
    wf.select_turn(0)
    assert f"Agent:  {HOSTILE}" in wf.detail.toPlainText()
    inspector = EventInspector(vm.events)
    qtbot.addWidget(inspector)
    inspector.filter.setText("img src")
    summaries = [
        inspector.proxy.index(r, 3).data(DISPLAY) for r in range(inspector.proxy.rowCount())
    ]
    assert summaries and all("<img src=x>" in s for s in summaries)
    # No label anywhere in these views may interpret markup.
    for widget in (view, wf, inspector):
        for label in widget.findChildren(QLabel):
            assert label.textFormat() == Qt.TextFormat.PlainText or "<" not in label.text()


def test_no_rich_text_calls_in_ui_sources():
    """Views never call setHtml/RichText on anything (untrusted text must stay plain)."""
    offenders = []
    for path in UI.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in (
                "setHtml",
                "RichText",
                "insertHtml",
                "appendHtml",
            ):
                offenders.append(f"{path.name}:{node.lineno} {node.attr}")
    assert offenders == []


def test_waterfall_rows_show_the_turn_figures(qtbot):
    vm = fed(demo_events())
    wf = WaterfallView(vm.turns)
    qtbot.addWidget(wf)
    wf.resize(900, 500)
    wf.show()
    rows = wf.row_layouts()
    assert len(rows) == 4
    assert [r.number for r in rows] == [1, 2, 3, 4]
    assert [r.headline_ms for r in rows] == list(V2V_MS)
    labels = wf.label_texts()
    assert labels[0] == "820 ms"
    assert labels[1] == "1,460 ms  ⚠ slow"
    assert labels[2] == "760 ms  ✂ barge-in"
    # Segments start at the caller's speech end: end_of_turn_delay begins at 0.
    for r in rows:
        assert r.segments["end_of_turn_delay"][0] == 0.0
        assert r.segments["user_speech"][0] + r.segments["user_speech"][1] == 0.0
    t2 = rows[1].segments
    assert t2["tool:get_weather"] == (755.0, 250.0)
    assert t2["playback_latency"][0] + t2["playback_latency"][1] == 1460.0
    assert "p50 862 ms" in wf.summary.text() and "p95 1,377 ms" in wf.summary.text()
    # The threshold spin box flags turns live.
    wf.threshold.setValue(800)
    assert vm.turns.slow_ms == 800
    assert [r.slow for r in wf.row_layouts()] == [True, True, False, True]
    assert "3 slow" in wf.summary.text()
    # Clicking (selecting) a turn shows its detail.
    wf.select_turn(1)
    detail = wf.detail.toPlainText()
    assert detail.startswith("Turn 2 — voice→voice 1,460 ms")
    assert 'get_weather({"city": "Lisbon"}) → ok in 250 ms' in detail
    assert "ServerSpeechStopped" in detail


def test_waterfall_click_selects_the_row_under_the_mouse(qtbot):
    vm = fed(demo_events())
    wf = WaterfallView(vm.turns)
    qtbot.addWidget(wf)
    wf.resize(900, 500)
    wf.show()
    qtbot.waitExposed(wf)
    vb = wf.plot.getPlotItem().getViewBox()
    scene_pt = vb.mapViewToScene(__import__("PySide6.QtCore", fromlist=["QPointF"]).QPointF(200, 2))
    view_pt = wf.plot.mapFromScene(scene_pt)
    with qtbot.waitSignal(wf.turnSelected, timeout=2000) as sig:
        qtbot.mouseClick(wf.plot.viewport(), Qt.MouseButton.LeftButton, pos=view_pt)
    assert sig.args == [2]
    assert wf.detail.toPlainText().startswith("Turn 3")


def test_tool_table_and_event_inspector(qtbot):
    vm = fed(demo_events())
    tools = ToolCallsView(vm.tools)
    qtbot.addWidget(tools)
    assert tools.model().rowCount() == 1
    assert tools.model().index(0, 1).data(DISPLAY) == "get_weather"
    inspector = EventInspector(vm.events)
    qtbot.addWidget(inspector)
    assert inspector.count.text() == f"{len(demo_events())} events"
    inspector.filter.setText("BargeIn")
    assert inspector.proxy.rowCount() == 1
    assert "of" in inspector.count.text()
    inspector.table.selectRow(0)
    assert '"played_ms": 1200' in inspector.detail.toPlainText()


def test_vad_lane_and_meters_pull_levels(qtbot):
    vm = fed(demo_events())
    lane = VadLaneView(vm.vad)
    qtbot.addWidget(lane)
    lane.refresh()  # frozen at the last event
    bars = lane._lanes["local"].opts
    assert len(bars["x0"]) == 4
    meters = LevelMeters()
    qtbot.addWidget(meters)
    values = iter([(-12.0, -120.0), (-30.0, -6.0)])
    pump = LevelPump(lambda: next(values))
    pump.sampled.connect(meters.set_levels)
    pump.sampled.connect(lambda t, c, a: vm.vad.add_level(t, c, a))
    pump.tick()
    assert meters.caller_text.text() == "-12 dBFS" and meters.agent_text.text() == "silent"
    pump.tick()
    assert meters.agent_text.text() == "-6 dBFS"
    assert len(vm.vad.levels(time.monotonic_ns())[0]) == 2
    pump.start()
    assert pump.running
    pump.stop()


def test_layout_row_without_user_speech_uses_v2v_start():
    # Only a record read back from an older or hand-edited turns.json can have a
    # voice-to-voice figure without the caller's speech span (the timeline always has both).
    turn = TurnRecord.from_dict({
        "index": 0,
        "spans": {
            "voice_to_voice": {"start_ns": 1_000_000_000, "end_ns": 1_700_000_000, "ms": 700.0},
            "ttfb": {"start_ns": 1_200_000_000, "end_ns": 1_500_000_000, "ms": 300.0},
        },
    })  # fmt: skip
    lay = layout_row(turn, 0, False)
    assert lay.segments == {"ttfb": (200.0, 300.0)} and lay.label == "700 ms"
