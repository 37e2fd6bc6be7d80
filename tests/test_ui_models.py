"""View-models fed with events, no widgets and no core."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt  # noqa: E402

from app import events as E  # noqa: E402
from tests.conftest_qt import FakeController  # noqa: F401  (sets QT_QPA_PLATFORM first)
from ui.bus import EventBus  # noqa: E402
from ui.demo import V2V_MS, demo_events  # noqa: E402
from ui.models import CallViewModel  # noqa: E402
from ui.models.event_log import EventFilterProxy  # noqa: E402
from ui.models.replay import replay_into  # noqa: E402
from ui.models.tool_calls import SLOW_ROLE  # noqa: E402
from ui.models.transcript import INTERRUPTED_ROLE, KIND_ROLE, TEXT_ROLE  # noqa: E402

DISPLAY = Qt.ItemDataRole.DisplayRole
MS = 1_000_000


def fed(events=None) -> CallViewModel:
    vm = CallViewModel()
    for ev in events if events is not None else demo_events():
        vm.apply(ev)
    return vm


def test_transcript_partials_become_final_and_times_are_relative(qapp):
    vm = CallViewModel()
    vm.apply(E.CallStarted(t_ns=1000 * MS, session_id="s", provider="sim", model="m"))
    vm.apply(E.UserTranscript(t_ns=3500 * MS, item_id="u1", text="hel", final=False))
    vm.apply(E.UserTranscript(t_ns=3600 * MS, item_id="u1", text="lo", final=False))
    m = vm.transcript
    assert m.rowCount() == 1
    assert m.index(0).data(TEXT_ROLE) == "hello"
    assert m.index(0).data(DISPLAY) == "0:02.5  Caller: [scripted] hello …"
    vm.apply(E.UserTranscript(t_ns=3700 * MS, item_id="u1", text="Hello.", final=True))
    assert m.rowCount() == 1
    assert m.index(0).data(DISPLAY) == "0:02.5  Caller: [scripted] Hello."


def test_demo_call_fills_every_model(qapp):
    vm = fed()
    t = vm.transcript
    kinds = [t.index(i).data(KIND_ROLE) for i in range(t.rowCount())]
    assert kinds.count("user") == 4 and kinds.count("agent") == 4 and kinds.count("tool") == 1
    interrupted = [i for i in range(t.rowCount()) if t.index(i).data(INTERRUPTED_ROLE)]
    assert len(interrupted) == 1
    assert "[interrupted, heard 1.2 s]" in t.index(interrupted[0]).data(DISPLAY)
    tool_row = kinds.index("tool")
    assert 'get_weather({"city": "Lisbon"})' in t.index(tool_row).data(DISPLAY)
    assert "ok" in t.index(tool_row).data(DISPLAY) and "250 ms" in t.index(tool_row).data(DISPLAY)

    assert vm.tools.rowCount() == 1
    row = [vm.tools.index(0, c).data(DISPLAY) for c in range(6)]
    assert row[1:4] == ["get_weather", "ok", "250 ms"]
    assert row[4] == '{"city": "Lisbon"}'
    assert vm.tools.index(0, 0).data(SLOW_ROLE) is False
    vm.tools.set_slow_ms(200)
    assert vm.tools.index(0, 0).data(SLOW_ROLE) is True
    assert vm.tools.index(0, 3).data(DISPLAY) == "250 ms  ⚠ slow"

    assert vm.turns.rowCount() == 4
    assert vm.turns.headline_values() == list(V2V_MS)
    assert abs(vm.turns.p50() - 862.5) < 1e-6  # median of 760, 820, 905, 1460
    assert abs(vm.turns.p95() - 1376.75) < 1e-6
    assert [vm.turns.is_slow(i) for i in range(4)] == [False, True, False, False]
    vm.turns.set_slow_ms(800)
    assert [vm.turns.is_slow(i) for i in range(4)] == [True, True, False, True]
    assert vm.turns.index(2, 7).data(DISPLAY) == "barge-in"

    assert vm.events.event_count == len(demo_events())
    assert not vm.active and vm.session_id == "demo-session"


def test_agent_audio_collapses_to_one_row_per_response(qapp):
    vm = CallViewModel()
    for i in range(5):
        vm.apply(
            E.AgentAudio(
                t_ns=i * MS, response_id="r1", item_id="a", pcm=bytes(4800), sample_rate=24000
            )
        )
    vm.apply(
        E.AgentAudio(t_ns=9 * MS, response_id="r2", item_id="b", pcm=bytes(480), sample_rate=24000)
    )
    log = vm.events
    assert log.event_count == 6 and log.rowCount() == 2
    assert log.index(0, 3).data(DISPLAY).startswith("audio ×5, 500 ms")
    assert log.index(1, 3).data(DISPLAY).startswith("audio ×1, 10 ms")
    assert [log.index(r, 1).data(DISPLAY) for r in range(2)] == ["in", "in"]


def test_event_filter_by_text_and_direction(qapp):
    vm = fed()
    proxy = EventFilterProxy()
    proxy.setSourceModel(vm.events)
    total = vm.events.rowCount()
    proxy.set_text("toolcall")
    kinds = {proxy.index(r, 2).data(DISPLAY) for r in range(proxy.rowCount())}
    assert kinds == {"ToolCallRequested", "ToolCallFinished"}
    proxy.set_text("")
    proxy.set_direction("out")
    dirs = {proxy.index(r, 1).data(DISPLAY) for r in range(proxy.rowCount())}
    assert dirs == {"out"} and 0 < proxy.rowCount() < total


def test_replay_of_stored_dicts_matches_live(qapp):
    events = demo_events()
    stored = [E.event_to_dict(ev) for ev in events]
    assert "pcm" not in stored[next(i for i, e in enumerate(events) if e.kind == "AgentAudio")]
    live, replayed = fed(events), CallViewModel()
    back = [E.event_from_dict(d) for d in stored]
    n = replay_into(replayed, [ev for ev in back if ev is not None])
    assert n == len(events)
    for name in ("transcript", "tools", "turns", "events"):
        a, b = getattr(live, name), getattr(replayed, name)
        assert a.rowCount() == b.rowCount()
        cols = 1 if name == "transcript" else a.columnCount()
        for r in range(a.rowCount()):
            for c in range(cols):
                assert a.index(r, c).data(DISPLAY) == b.index(r, c).data(DISPLAY)
    assert E.event_from_dict(
        {"kind": "ToolCallCancelled", "t_ns": 5, "call_ids": ["a", "b"]}
    ) == E.ToolCallCancelled(t_ns=5, call_ids=("a", "b"))


def test_vad_lane_intervals_and_levels(qapp):
    vm = CallViewModel()
    vm.apply(E.LocalSpeechStarted(t_ns=1000 * MS, sample=0))
    vm.apply(E.ServerSpeechStarted(t_ns=1100 * MS))
    vm.apply(E.LocalSpeechStopped(t_ns=2000 * MS, sample=16000))
    vm.apply(E.ServerSpeechStopped(t_ns=2400 * MS))
    vm.apply(E.PlaybackStarted(t_ns=2900 * MS, item_id="a"))
    vm.vad.add_level(2950 * MS, -20.0, -30.0)
    now = 3000 * MS
    assert vm.vad.window("local", now) == [(-2.0, -1.0)]
    assert vm.vad.window("server", now) == [(-1.9, -0.6)]
    assert vm.vad.window("agent", now) == [(-0.1, 0.0)]  # still open
    t, caller, agent = vm.vad.levels(now)
    assert list(t) == [-0.05] and list(caller) == [-20.0] and list(agent) == [-30.0]


def test_event_bus_delivers_on_the_main_thread(qtbot):
    bus = EventBus()
    got: list[tuple[object, bool]] = []
    main = threading.get_ident()
    bus.event.connect(lambda ev: got.append((ev, threading.get_ident() == main)))
    events = demo_events()[:50]
    worker = threading.Thread(target=lambda: [bus.post(ev) for ev in events])
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(got) == 50, timeout=5000)
    assert [ev for ev, _ in got] == events
    assert all(on_main for _, on_main in got)
    bus.close()
    bus.post(events[0])
    qtbot.wait(20)
    assert len(got) == 50


def test_signal_emit_keeps_true_alive(qapp):
    """PySide6 6.12.0's ``emit`` stole a reference to ``True`` per call (the interpreter
    aborts after a few thousand); pyproject excludes that release, and this holds it."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Pinger(QObject):
        ping = Signal(int)

    p = Pinger()
    p.ping.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for i in range(5000):
        p.ping.emit(i)
    assert abs(sys.getrefcount(True) - before) < 10


_KEEP: list[CallViewModel] = []


def test_models_pass_qt_model_tester(qtmodeltester):
    vm = fed()
    _KEEP.append(vm)  # the tester disconnects from the last model at teardown
    for model in (vm.transcript, vm.tools, vm.turns, vm.events):
        qtmodeltester.check(model, force_py=True)


def test_reconnection_shows_in_the_transcript(qtbot):
    from app.events import Reconnected
    from ui.models.transcript import TranscriptModel

    model = TranscriptModel()
    model.apply(
        Reconnected(
            t_ns=2_000_000_000,
            provider="openai",
            reason="failed: server closed (1011)",
            dropped_ns=1_993_000_000,
            attempts=1,
            session_index=2,
            replayed_items=4,
            replayed_turn=True,
        )
    )
    text = model.index(0).data(Qt.ItemDataRole.DisplayRole)
    assert "connection lost (failed: server closed (1011)); session 2 after 7 ms" in text
    assert "4 items replayed" in text
