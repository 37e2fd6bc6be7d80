"""UI benchmarks (commands, not tests): responsiveness under an event flood, and startup.

``python -m ui.bench events --rate 200 --seconds 60`` builds the real
:class:`~ui.main_window.MainWindow` (offscreen, or on the X server named by ``DISPLAY``)
bound to :class:`StreamController`, which posts a realistic call's events (the shapes of
:func:`ui.demo.demo_events`, repeated with fresh ids; ``AgentAudio`` chunks are about two
thirds of them) from a background thread at a fixed rate, through the window's real
:class:`~ui.bus.EventBus`. It prints one JSON object:

* ``frame_ms`` — the main thread's busy time per event-loop iteration: a 0 ms ``QTimer``
  marks iteration boundaries, and an application event filter counts the events each
  iteration delivered; the time between two heartbeats is one *frame* when at least one
  other event (a queued core event, a timer, a repaint…) was delivered in between. Idle
  spins are not frames.
* ``paint_ms`` — time per window repaint: each ``UpdateRequest`` sent to the main window
  (the backing-store sync that paints every dirty widget and flushes it to the screen) is
  timed around its handling.
* ``event_to_screen_ms`` — for every event: from the moment the core thread posted it
  (``t_ns``, stamped just before ``EventBus.post``) to the end of the first window repaint
  that painted the event inspector (its table or its "N events" label) after the event
  log model counted the event. Every event is shown there (audio chunks update their
  response's row and the count), so every event gets one figure.
* ``transcript_to_screen_ms`` — the same for transcript deltas/finals, ending at the first
  repaint of the transcript list after the transcript model changed.

``python -m ui.bench startup`` runs ``voiceprobe`` (GUI mode, offscreen) in fresh
processes with ``VOICEPROBE_EXIT_AFTER_SHOWN=1`` (honoured by :func:`ui.app.run_app`) and
reports the time from just before the process is spawned to the end of the main window's
first paint: median of ``--runs`` runs.

``python -m ui.bench waterfall --turns 1000`` times the latency waterfall's frames (one
user action each: scroll, hover, zoom, resize, a turn arriving live, until the window is
repainted) at 100, 500 and 1,000 turns (:func:`run_waterfall`).
``python -m ui.bench verdict-shortcut`` times the "mark last turn passed/failed"
shortcuts from the key press to the mark painted (:func:`run_verdict_shortcut`).

Everything Qt is imported lazily, so ``startup`` does not pay for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import events as E
from app.metrics.records import TurnRecord

if TYPE_CHECKING:  # the startup hook's names stay a light import
    from app.bridge.request import CallRequest

FRAME_TARGET_MS = 16.0
LATENCY_TARGET_MS = 50.0
STARTUP_TARGET_MS = 2000.0
#: Environment variables of the startup hook (see :func:`ui.app.run_app`).
EXIT_AFTER_SHOWN_ENV = "VOICEPROBE_EXIT_AFTER_SHOWN"
T0_ENV = "VOICEPROBE_T0_NS"

_ID_FIELDS = ("item_id", "response_id", "call_id")
#: Template events posted once, at the start of the stream (not repeated per cycle).
_ONCE = (E.CallStarted, E.ConnectionState, E.SessionConfigured)
#: Template events never repeated (the stream ends with its own ``CallEnded``).
_NEVER = (E.CallEnded, E.Notice)


# --- the event stream ---------------------------------------------------------------------


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    from app.metrics.percentile import percentile

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(max(values) if values else None),
        "count": len(values),
    }


def _cycle(template: list[E.Event], k: int) -> Iterator[E.Event]:
    """One pass over the demo script with ids and turn indexes made unique to cycle ``k``."""
    turns = sum(1 for ev in template if isinstance(ev, E.TurnCompleted))
    for ev in template:
        if isinstance(ev, _NEVER) or (k > 0 and isinstance(ev, _ONCE)):
            continue
        changes: dict[str, Any] = {}
        for name in _ID_FIELDS:
            value = getattr(ev, name, None)
            if value:
                changes[name] = f"{value}.{k}"
        if isinstance(ev, E.TurnCompleted):
            changes["turn"] = dataclasses.replace(ev.turn, index=k * turns + ev.turn.index)
        yield dataclasses.replace(ev, **changes) if changes else ev


def event_stream(total: int) -> Iterator[E.Event]:
    """``total`` events of a long call: ``CallStarted``, then the demo script's turns over
    and over (fresh ids each pass), and ``CallEnded`` last. Stamps are the template's;
    :class:`StreamController` restamps each event when it posts it.
    """
    from ui.demo import demo_events

    template = demo_events()
    t_first = template[0].t_ns
    n = 0
    k = 0
    while True:
        for ev in _cycle(template, k):
            if n >= total - 1:
                yield E.CallEnded(t_ns=t_first, session_id="bench", reason="hangup")
                return
            n += 1
            yield ev
        k += 1


def _restamp(ev: E.Event, now_ns: int) -> E.Event:
    """``ev`` stamped ``now_ns``; a turn's spans move by the same amount."""
    if isinstance(ev, E.TurnCompleted):
        delta = now_ns - ev.t_ns
        spans = {
            name: dataclasses.replace(
                span,
                start_ns=None if span.start_ns is None else span.start_ns + delta,
                end_ns=None if span.end_ns is None else span.end_ns + delta,
            )
            for name, span in ev.turn.spans.items()
        }
        return dataclasses.replace(ev, t_ns=now_ns, turn=dataclasses.replace(ev.turn, spans=spans))
    return dataclasses.replace(ev, t_ns=now_ns)


class StreamController:
    """The main window's controller interface, posting :func:`event_stream` (or
    ``events``) at ``rate`` events per second from a background thread (as the core's
    asyncio thread would).

    Each event is stamped with ``time.monotonic_ns()`` just before it is posted. Levels
    move like speech. Nothing here touches Qt. :attr:`data_root`, when set, is the data
    folder the window stores verdicts in.
    """

    def __init__(self, rate: float, total: int, events: Sequence[E.Event] | None = None) -> None:
        self.rate = rate
        self.total = total
        self.events = events
        self.data_root: Path | None = None
        self.posted = 0
        self.agent_audio = 0
        self.started_ns = 0
        self.finished_ns = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._subscribers: list[Callable[[Any], None]] = []
        self._thread: threading.Thread | None = None

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._subscribers.append(callback)

    def start_call(self, request: CallRequest) -> None:
        self._thread = threading.Thread(target=self._post, name="bench-core", daemon=True)
        self._thread.start()

    def _post(self) -> None:
        period = 1.0 / self.rate
        start = time.monotonic()
        self.started_ns = time.monotonic_ns()
        stream = event_stream(self.total) if self.events is None else iter(self.events)
        for i, ev in enumerate(stream):
            if self._stop.is_set():
                break
            delay = start + i * period - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)  # pacing to the requested rate
            stamped = _restamp(ev, time.monotonic_ns())
            for cb in self._subscribers:
                cb(stamped)
            self.posted += 1
            if isinstance(stamped, E.AgentAudio):
                self.agent_audio += 1
        self.finished_ns = time.monotonic_ns()
        self.done.set()

    def stop(self) -> None:
        """Stop posting and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def key_host_to_confirm(self, request: CallRequest) -> str | None:
        """No API key is sent."""
        return None

    def hangup(self) -> None:
        """The stream ends the call itself."""

    def set_mute(self, muted: bool) -> None:
        """Mute has no effect on the stream."""

    def set_push_to_talk_pressed(self, pressed: bool) -> None:
        """Push-to-talk has no effect on the stream."""

    def levels(self) -> tuple[float, float]:
        t = time.monotonic()
        return (-30.0 + 12.0 * math.sin(t * 3.1), -36.0 + 10.0 * math.sin(t * 1.7))


# --- the events benchmark -----------------------------------------------------------------


def _make_probe(window: Any, app: Any) -> Any:
    """Build the frame/paint/latency probe (a QObject installed on the application)."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class Probe(QObject):
        """Application event filter + 0 ms heartbeat. Main thread only."""

        def __init__(self) -> None:
            super().__init__()
            self.frames: list[float] = []
            self.paints: list[float] = []
            self.latency: list[float] = []
            self.transcript_latency: list[float] = []
            self.arrived = 0
            self.inspector_repaints = 0
            self.transcript_repaints = 0
            self._delivered = 0
            self._last_beat = 0
            self._syncing = False
            self._painted: set[str] = set()
            # events arrived on the main thread, not yet known to be in the model
            self._arrived: deque[tuple[int, int]] = deque()  # (seq, t_post_ns)
            self._in_model: list[int] = []  # t_post_ns, counted by the log model
            self._transcript_arrived: list[int] = []
            self._transcript_in_model: list[int] = []
            inspector = window.inspector
            self._watch = {
                inspector.table.viewport(): "inspector",
                inspector.count: "inspector",
                window.transcript_view.viewport(): "transcript",
            }
            self._window = window
            self._heartbeat = QTimer(self)
            self._heartbeat.setInterval(0)
            self._heartbeat.timeout.connect(self._beat)
            window.bus.event.connect(self._arrive)  # after vm.apply (connected first)
            window.vm.events.countChanged.connect(self._counted)
            tm = window.vm.transcript
            for sig in (tm.dataChanged, tm.rowsInserted, tm.layoutChanged, tm.modelReset):
                sig.connect(self._transcript_changed)

        def start(self) -> None:
            app.installEventFilter(self)
            self._last_beat = time.perf_counter_ns()
            self._delivered = 0
            self._heartbeat.start()

        def stop(self) -> None:
            self._heartbeat.stop()
            app.removeEventFilter(self)

        @property
        def pending(self) -> int:
            """Events not yet seen on screen (by the views that are shown)."""
            n = len(self._transcript_in_model) if window.transcript_view.isVisible() else 0
            if window.inspector.isVisible():
                n += len(self._arrived) + len(self._in_model)
            return n

        def _beat(self) -> None:
            now = time.perf_counter_ns()
            if self._delivered:
                self.frames.append((now - self._last_beat) / 1e6)
            self._delivered = 0
            self._last_beat = now

        def _arrive(self, ev: Any) -> None:
            self.arrived += 1
            self._arrived.append((self.arrived, ev.t_ns))
            if isinstance(ev, E.UserTranscript | E.AgentTranscript):
                self._transcript_arrived.append(ev.t_ns)
            # Applied at once, the event is in the models by now (vm.apply runs first);
            # buffered (coalescing), it is counted when the batch is flushed.
            self._counted(window.vm.events.event_count)
            if not window.vm.pending:
                self._transcript_changed()

        def _counted(self, n: int) -> None:
            while self._arrived and self._arrived[0][0] <= n:
                self._in_model.append(self._arrived.popleft()[1])

        def _transcript_changed(self, *_args: Any) -> None:
            self._transcript_in_model.extend(self._transcript_arrived)
            self._transcript_arrived.clear()

        def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt override
            if obj is self._heartbeat:  # first: the heartbeat's own events are most of them
                return False
            self._delivered += 1
            t = ev.type()
            if t == QEvent.Type.Paint and self._syncing:
                name = self._watch.get(obj)
                if name is not None:
                    self._painted.add(name)
            elif t == QEvent.Type.UpdateRequest and obj is self._window and not self._syncing:
                self._syncing = True
                self._painted = set()
                t0 = time.perf_counter_ns()
                try:
                    obj.event(ev)  # paint every dirty widget and flush (the real handler)
                finally:
                    self._syncing = False
                done = time.monotonic_ns()
                self.paints.append((time.perf_counter_ns() - t0) / 1e6)
                if "inspector" in self._painted:
                    self.inspector_repaints += 1
                    self.latency.extend((done - p) / 1e6 for p in self._in_model)
                    self._in_model.clear()
                if "transcript" in self._painted:
                    self.transcript_repaints += 1
                    self.transcript_latency.extend(
                        (done - p) / 1e6 for p in self._transcript_in_model
                    )
                    self._transcript_in_model.clear()
                return True
            return False

    return Probe()


def run_events(rate: float = 200.0, seconds: float = 60.0, tab: str = "events") -> dict[str, Any]:
    """Run the event-flood benchmark in this process; returns the report (see module doc).

    Must run on the main thread of a process that has no QApplication yet or whose
    QApplication is on this thread. ``tab`` is the right-hand tab shown during the run
    (``events``, ``latency`` or ``tools``); the event inspector is measured only when shown.
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication

    from ui.app import build_main_window, ensure_app

    total = max(2, round(rate * seconds))
    app = ensure_app()
    controller = StreamController(rate, total)
    window = build_main_window(controller, devices=lambda: [], settings=False)
    tabs = {"latency": window.waterfall, "tools": window.tools_view, "events": window.inspector}
    window.tabs.setCurrentWidget(tabs[tab])
    window.show()
    for _ in range(5):
        app.processEvents()
    probe = _make_probe(window, app)
    deadline = time.monotonic() + seconds + 30.0
    outcome = {"timed_out": False}

    def check() -> None:
        drained = (
            controller.done.is_set() and probe.arrived >= controller.posted and probe.pending == 0
        )
        if drained:
            app.quit()
        elif time.monotonic() > deadline:
            outcome["timed_out"] = True
            app.quit()

    watchdog = QTimer()
    watchdog.setInterval(50)
    watchdog.timeout.connect(check)
    probe.start()
    wall0 = time.monotonic()
    window.toggle_call()
    watchdog.start()
    app.exec()
    wall = time.monotonic() - wall0
    watchdog.stop()
    probe.stop()
    controller.stop()
    post_s = max(1e-9, (controller.finished_ns - controller.started_ns) / 1e9)
    report: dict[str, Any] = {
        "bench": "ui-events",
        "platform": QGuiApplication.platformName(),
        "tab": tab,
        "rate": rate,
        "seconds": seconds,
        "posted": controller.posted,
        "agent_audio": controller.agent_audio,
        "delivered": probe.arrived,
        "counted": window.vm.events.event_count,
        "shown": len(probe.latency),
        "achieved_rate": round(controller.posted / post_s, 1),
        "wall_s": round(wall, 2),
        "frame_ms": _summary(probe.frames),
        "paint_ms": _summary(probe.paints),
        "event_to_screen_ms": _summary(probe.latency),
        "transcript_to_screen_ms": _summary(probe.transcript_latency),
        "repaints": len(probe.paints),
        "inspector_repaints": probe.inspector_repaints,
        "transcript_repaints": probe.transcript_repaints,
        "timed_out": outcome["timed_out"],
        "targets": {"frame_p95_ms": FRAME_TARGET_MS, "event_to_screen_p95_ms": LATENCY_TARGET_MS},
    }
    frame_p95 = report["frame_ms"]["p95"]
    lat_p95 = report["event_to_screen_ms"]["p95"]
    report["ok"] = bool(
        not outcome["timed_out"]
        and frame_p95 is not None
        and frame_p95 < FRAME_TARGET_MS
        and (tab != "events" or (lat_p95 is not None and lat_p95 < LATENCY_TARGET_MS))
    )
    window.close()
    window.deleteLater()
    app.processEvents()
    return report


# --- the startup benchmark ----------------------------------------------------------------


def _voiceprobe_command() -> list[str]:
    script = Path(sys.executable).with_name("voiceprobe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ui"]


def startup_once(command: Sequence[str] | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Start ``voiceprobe`` (GUI, offscreen) once; returns ``{"shown_ms", "exit_ms", "rc"}``.

    ``shown_ms`` is what the child prints (spawn → end of first paint, on the monotonic
    clock shared by both processes); ``exit_ms`` is spawn → process exit, seen here.
    """
    env = dict(os.environ)
    env[EXIT_AFTER_SHOWN_ENV] = "1"
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    cmd = list(command or _voiceprobe_command())
    with tempfile.TemporaryDirectory(prefix="voiceprobe-startup-") as home:
        env.setdefault("VOICEPROBE_HOME", home)
        t0 = time.monotonic_ns()
        env[T0_ENV] = str(t0)
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        exit_ms = (time.monotonic_ns() - t0) / 1e6
    shown = None
    for line in proc.stdout.splitlines():
        if line.startswith("shown_ms="):
            shown = float(line.split("=", 1)[1])
    return {
        "shown_ms": shown,
        "exit_ms": round(exit_ms, 1),
        "rc": proc.returncode,
        "stderr": proc.stderr.strip().splitlines()[-3:],
    }


def run_startup(runs: int = 5, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Median of ``runs`` cold starts (see :func:`startup_once`)."""
    results = [startup_once(command) for _ in range(runs)]
    shown = [r["shown_ms"] for r in results if r["shown_ms"] is not None]
    median = round(statistics.median(shown), 1) if shown else None
    return {
        "bench": "ui-startup",
        "command": list(command or _voiceprobe_command()),
        "runs": runs,
        "shown_ms": [r["shown_ms"] for r in results],
        "exit_ms": [r["exit_ms"] for r in results],
        "median_shown_ms": median,
        "target_ms": STARTUP_TARGET_MS,
        "ok": median is not None and median < STARTUP_TARGET_MS and len(shown) == runs,
        "errors": [r["stderr"] for r in results if r["rc"] != 0 or r["shown_ms"] is None],
    }


# --- the waterfall benchmark --------------------------------------------------------------

#: Turn counts the waterfall is measured at (those under ``--turns``, then ``--turns``).
WATERFALL_CHECKPOINTS = (100, 500, 1000)
#: What the user does, in turn (one frame each): see :func:`run_waterfall`.
WATERFALL_ACTIONS = ("scroll", "hover", "zoom", "hover", "scroll", "hover", "resize", "turn")


def demo_turns(n: int) -> list[TurnRecord]:
    """``n`` turn records of a long call: the turns :func:`ui.demo.demo_events` builds
    (through the real :class:`~app.metrics.timeline.Timeline`) over and over, numbered
    1..``n``, each pass later in time than the one before.
    """
    from ui.demo import demo_events

    template = demo_events()
    period = template[-1].t_ns - template[0].t_ns
    out: list[TurnRecord] = []
    k = 0
    while len(out) < n:
        for ev in _cycle(template, k):
            if isinstance(ev, E.TurnCompleted) and len(out) < n:
                later = _restamp(ev, ev.t_ns + k * period)
                assert isinstance(later, E.TurnCompleted)
                out.append(later.turn)
        k += 1
    return out


def _load() -> list[float]:
    """The 1/5/15-minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def _make_frame_meter(window: Any, app: Any) -> Any:
    """An application event filter that counts delivered events and times each repaint
    of ``window`` (its ``UpdateRequest``: paint every dirty widget, flush). Main thread."""
    from PySide6.QtCore import QEvent, QObject

    class FrameMeter(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.delivered = 0
            self.paints: list[float] = []
            self._syncing = False

        def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt override
            self.delivered += 1
            if ev.type() == QEvent.Type.UpdateRequest and obj is window and not self._syncing:
                self._syncing = True
                t0 = time.perf_counter_ns()
                try:
                    obj.event(ev)  # the real handler, timed
                finally:
                    self._syncing = False
                self.paints.append((time.perf_counter_ns() - t0) / 1e6)
                return True
            return False

        def settle(self, limit: int = 200) -> bool:
            """Process events until one pass delivers none (every refresh, layout and
            repaint the last action caused is done); ``False`` if ``limit`` passes
            were not enough."""
            for _ in range(limit):
                self.delivered = 0
                app.processEvents()
                if self.delivered == 0:
                    return True
            return False

    meter = FrameMeter()
    app.installEventFilter(meter)
    return meter


def run_waterfall(turns: int = 1000, seconds: float = 3.0) -> dict[str, Any]:
    """Run the waterfall benchmark in this process; returns the report.

    The real :class:`~ui.views.waterfall.WaterfallView` (the main window's "Latency"
    tab) is shown as a window of its own (offscreen, or on ``DISPLAY``), bound to a
    :class:`~ui.models.turns.TurnsModel`, so its figures are the waterfall's alone (the
    whole window under live events is ``events --tab latency``). At each checkpoint
    (:data:`WATERFALL_CHECKPOINTS` under ``turns``, then ``turns``) the model is filled
    with that many :func:`demo_turns`, then for ``seconds`` the bench does what a user
    does, in the order of :data:`WATERFALL_ACTIONS`: ``scroll`` (the rows shown move up
    by three, as a scroll bar would move the plot's row range; from the top back to the
    newest), ``hover`` (a real mouse move over a row on screen: its bar's tooltip),
    ``zoom`` (a Ctrl+wheel step over the plot: the time axis zooms in or out), ``resize`` (the
    window grows or shrinks by 40 × 30 px) and ``turn`` (a new turn arrives live: a
    ``TurnCompleted`` applied to the model, as the call's view-model does).

    A *frame* is one action: from just before it is delivered until the event loop has
    nothing left to do for it (the waterfall refreshed, laid out and repainted, the
    tooltip shown), timed on the main thread: ``frame_ms`` in wall time (what the user
    waits), ``frame_cpu_ms`` in the main thread's CPU time (the same work, without the
    time other processes took the CPU). ``paint_ms`` times the window's repaints alone.
    Must run on the main thread (see :func:`run_events`).
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QGuiApplication, QWheelEvent
    from PySide6.QtTest import QTest

    from ui.app import ensure_app
    from ui.models.turns import TurnsModel
    from ui.views.waterfall import MAX_VISIBLE_ROWS, WaterfallView

    app = ensure_app()
    model = TurnsModel()
    window = view = WaterfallView(model)
    sizes = ((900, 640), (860, 610))
    window.resize(*sizes[0])
    window.show()
    meter = _make_frame_meter(window, app)
    meter.settle()
    records = demo_turns(turns + 1000)  # spares for the turns that arrive live
    stock = iter(records)
    vb = view.plot.getPlotItem().getViewBox()
    viewport = view.plot.viewport()

    def add_turns(k: int) -> None:
        for _ in range(k):
            turn = next(stock)
            model.apply(E.TurnCompleted(t_ns=time.monotonic_ns(), turn=turn))

    def scroll(i: int) -> None:
        (_, _), (y0, _) = vb.viewRange()
        top = round(y0 + 0.6) - 3
        if top < 0:
            top = max(0, model.rowCount() - MAX_VISIBLE_ROWS)
        vb.setYRange(top - 0.6, top + MAX_VISIBLE_ROWS - 0.4, padding=0)

    def hover(i: int) -> None:
        (_, _), (y0, y1) = vb.viewRange()
        row = int(y0 + 0.6) + i % max(1, int(y1 - y0))
        x = 100.0 + 97.0 * (i % 7)  # inside the waiting-time bars of most rows
        scene = vb.mapViewToScene(QPointF(x, row + 0.06))
        QTest.mouseMove(viewport, view.plot.mapFromScene(scene))

    def zoom(i: int) -> None:
        centre = viewport.rect().center()
        delta = 120 if i % 2 else -120
        wheel = QWheelEvent(
            QPointF(centre), QPointF(viewport.mapToGlobal(centre)), QPoint(0, 0),
            QPoint(0, delta), Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
            Qt.ScrollPhase.NoScrollPhase, False,
        )  # fmt: skip
        app.sendEvent(viewport, wheel)

    def resize(i: int) -> None:
        window.resize(*sizes[i % 2])

    actions: dict[str, Callable[[int], None]] = {
        "scroll": scroll, "hover": hover, "zoom": zoom, "resize": resize,
        "turn": lambda _i: add_turns(1),
    }  # fmt: skip
    checkpoints = [c for c in WATERFALL_CHECKPOINTS if c < turns] + [turns]
    results: list[dict[str, Any]] = []
    unsettled = 0
    for count in checkpoints:
        t_fill = time.perf_counter_ns()
        add_turns(count - model.rowCount())
        unsettled += not meter.settle()
        fill_ms = (time.perf_counter_ns() - t_fill) / 1e6
        start_rows = model.rowCount()
        frames: list[float] = []
        cpu: list[float] = []
        by_action: dict[str, list[float]] = {name: [] for name in actions}
        by_action_cpu: dict[str, list[float]] = {name: [] for name in actions}
        meter.paints.clear()
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline or i < len(WATERFALL_ACTIONS):
            name = WATERFALL_ACTIONS[i % len(WATERFALL_ACTIONS)]
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            actions[name](len(by_action[name]))  # the n-th action of its kind
            unsettled += not meter.settle()
            ms = (time.perf_counter_ns() - t0) / 1e6
            cpu.append((time.thread_time_ns() - c0) / 1e6)
            frames.append(ms)
            by_action[name].append(ms)
            by_action_cpu[name].append(cpu[-1])
            i += 1
        results.append(
            {
                "turns": start_rows,
                "turns_at_end": model.rowCount(),
                "fill_ms": round(fill_ms, 1),
                "frame_ms": _summary(frames),
                "frame_cpu_ms": _summary(cpu),
                "paint_ms": _summary(meter.paints),
                "by_action_ms": {k: _summary(v) for k, v in by_action.items()},
                "by_action_cpu_ms": {k: _summary(v) for k, v in by_action_cpu.items()},
            }
        )
    app.removeEventFilter(meter)
    QTest.mouseMove(window, QPoint(1, 1))
    last = results[-1]["frame_ms"]["p95"]
    report: dict[str, Any] = {
        "bench": "ui-waterfall",
        "platform": QGuiApplication.platformName(),
        "turns": turns,
        "seconds": seconds,
        "cpus": os.cpu_count(),
        "load_average": _load(),
        "checkpoints": results,
        "unsettled": unsettled,
        "targets": {"frame_p95_ms": FRAME_TARGET_MS},
        "ok": bool(last is not None and last < FRAME_TARGET_MS and not unsettled),
    }
    window.close()
    window.deleteLater()
    app.processEvents()
    return report


def waterfall_text(report: dict[str, Any]) -> str:
    """The waterfall report as a small table (the ``--json`` output, readable)."""
    lines = [
        f"waterfall frame time (ms), {report['platform']}, {report['cpus']} cores, "
        f"load average {' '.join(str(v) for v in report['load_average'])}",
        f"{'turns':>6} {'frames':>7} {'p50':>7} {'p95':>7} {'max':>7} {'cpu p95':>8} "
        f"{'paint p95':>10}",
    ]
    for c in report["checkpoints"]:
        f, cpu, p = c["frame_ms"], c["frame_cpu_ms"], c["paint_ms"]
        lines.append(
            f"{c['turns']:>6} {f['count']:>7} {f['p50']:>7.2f} {f['p95']:>7.2f} "
            f"{f['max']:>7.2f} {cpu['p95']:>8.2f} "
            f"{p['p95'] if p['p95'] is not None else float('nan'):>10.2f}"
        )
    target = report["targets"]["frame_p95_ms"]
    lines.append(f"target: p95 < {target:g} ms at {report['turns']} turns: "
                 + ("met" if report["ok"] else "missed"))  # fmt: skip
    return "\n".join(lines)


# --- the verdict shortcut benchmark -------------------------------------------------------


def run_verdict_shortcut(presses: int = 50, turns: int = 20) -> dict[str, Any]:
    """Time the "mark last turn passed/failed" shortcuts, key press to mark on screen.

    A real session of ``turns`` :func:`demo_turns` is written (by the real
    :class:`~app.store.writer.SessionWriter`) into a temporary data folder; the real
    main window is bound to a :class:`StreamController` that posts the call's
    ``CallStarted`` and turns, and shows its "Verdicts" page, with the focus in the
    transcript. Each of ``presses`` presses (pass and fail in turn) is a real key click
    (``Ctrl+Shift+P``/``F``) on the transcript; its figure runs from just before the
    click to the end of the first paint of the verdict table after it, and counts as
    *shown* only if the last turn's mark then reads the verdict pressed. The next press
    waits until the verdict is stored. Must run on the main thread.
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEvent, QObject, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtTest import QTest

    from app.store.writer import SessionWriter
    from ui.app import build_main_window, ensure_app
    from ui.views.verdicts import MARKS

    app = ensure_app()
    records = demo_turns(turns)
    sid = time.strftime("%Y%m%d-%H%M%S") + "-bench"
    with tempfile.TemporaryDirectory(prefix="voiceprobe-bench-") as root:
        writer = SessionWriter(Path(root), sid, {"provider": "sim", "model": "bench"})
        writer.write_turns([t.to_dict() for t in records])
        writer.finish("complete", {"turns": len(records)})
        script: list[E.Event] = [
            E.CallStarted(
                t_ns=time.monotonic_ns(),
                session_id=sid,
                provider="sim",
                model="bench",
                session_dir=str(writer.dir),
            ),  # fmt: skip
            *(E.TurnCompleted(t_ns=time.monotonic_ns(), turn=t) for t in records),
        ]
        controller = StreamController(10_000.0, len(script), script)
        controller.data_root = Path(root)
        window = build_main_window(controller, devices=lambda: [], settings=False)
        panel = window.verdicts
        window.show()
        window.toggle_call()

        def wait(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
            deadline = time.monotonic() + timeout
            while not cond():
                if time.monotonic() > deadline:
                    return False
                app.processEvents()
            return True

        ready = wait(lambda: panel.model.rowCount() == turns and panel.session_id == sid)
        window.side_tabs.setCurrentWidget(panel)
        window.activateWindow()
        ready = ready and wait(window.isActiveWindow)
        window.transcript_view.setFocus()
        ready = ready and wait(window.transcript_view.hasFocus)
        last = panel.model.index(turns - 1, 2)

        class PaintWatch(QObject):
            """Stamps the first paint of the table after :meth:`arm`, and what it showed."""

            def __init__(self) -> None:
                super().__init__()
                self.painted_ns: int | None = None
                self.shown = ""
                self.armed = False

            def arm(self) -> None:
                self.painted_ns, self.shown, self.armed = None, "", True

            def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt override
                if self.armed and ev.type() == QEvent.Type.Paint:
                    self.armed = False
                    self.shown = str(last.data(Qt.ItemDataRole.DisplayRole))
                    self.painted_ns = time.perf_counter_ns()
                return False

        watch = PaintWatch()
        table = panel.table.viewport()
        table.installEventFilter(watch)
        latencies: list[float] = []
        shown = stored = 0
        modifiers = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        for i in range(presses if ready else 0):
            verdict = "fail" if i % 2 else "pass"
            key = Qt.Key.Key_F if verdict == "fail" else Qt.Key.Key_P
            watch.arm()
            t0 = time.perf_counter_ns()
            QTest.keyClick(window.transcript_view, key, modifiers)
            if not wait(lambda: watch.painted_ns is not None, 5.0):
                break
            assert watch.painted_ns is not None
            latencies.append((watch.painted_ns - t0) / 1e6)
            shown += watch.shown == MARKS[verdict]

            def written(v: str = verdict) -> bool:
                entry = panel.model.manual(turns) or {}
                return entry.get("at") is not None and entry.get("verdict") == v

            stored += wait(written, 5.0)
        table.removeEventFilter(watch)
        controller.stop()
        window.close()
        window.deleteLater()
        app.processEvents()
    summary = _summary(latencies)
    p95 = summary["p95"]
    return {
        "bench": "ui-verdict-shortcut",
        "platform": QGuiApplication.platformName(),
        "turns": turns,
        "presses": presses,
        "ready": ready,
        "painted": len(latencies),
        "shown": shown,
        "stored": stored,
        "cpus": os.cpu_count(),
        "load_average": _load(),
        "key_to_screen_ms": summary,
        "target_ms": LATENCY_TARGET_MS,
        "ok": bool(
            ready and shown == stored == presses and p95 is not None and p95 < LATENCY_TARGET_MS
        ),
    }


def verdict_text(report: dict[str, Any]) -> str:
    """The verdict shortcut report in one line (the ``--json`` output, readable)."""
    f = report["key_to_screen_ms"]
    figures = (
        f"p50 {f['p50']} ms, p95 {f['p95']} ms, max {f['max']} ms"
        if f["count"]
        else "no press was painted"
    )
    return (
        f"verdict shortcut, key press to mark painted: {figures} over {f['count']} presses "
        f"({report['shown']} shown, {report['stored']} stored; {report['platform']}, "
        f"{report['cpus']} cores, load average "
        f"{' '.join(str(v) for v in report['load_average'])}); target p95 < "
        f"{report['target_ms']:g} ms: {'met' if report['ok'] else 'missed'}"
    )


# --- command line -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ui.bench events|startup|waterfall|verdict-shortcut``: print the report
    (one JSON object; ``waterfall`` and ``verdict-shortcut`` print readable lines unless
    ``--json``); exit 0 when the targets are met, 1 otherwise.
    """
    parser = argparse.ArgumentParser(prog="python -m ui.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("events", help="UI responsiveness under a stream of core events")
    ev.add_argument("--rate", type=float, default=200.0, help="events per second")
    ev.add_argument("--seconds", type=float, default=60.0, help="how long to post")
    ev.add_argument("--tab", choices=("events", "latency", "tools"), default="events")
    st = sub.add_parser("startup", help="process start to the main window's first paint")
    st.add_argument("--runs", type=int, default=5)
    st.add_argument(
        "--command",
        help="the program to start (default: the venv's voiceprobe), e.g. the "
        "frozen dist/voiceprobe/voiceprobe",
    )
    wf = sub.add_parser("waterfall", help="latency waterfall frame time as turns accumulate")
    wf.add_argument("--turns", type=int, default=1000, help="turns at the last checkpoint")
    wf.add_argument("--seconds", type=float, default=3.0, help="user actions per checkpoint")
    wf.add_argument("--json", action="store_true", help="print one JSON object")
    vs = sub.add_parser("verdict-shortcut", help="verdict shortcut key press to mark on screen")
    vs.add_argument("--presses", type=int, default=50)
    vs.add_argument("--turns", type=int, default=20, help="turns of the call judged")
    vs.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    text = ""
    if args.command == "events":
        if args.rate <= 0 or args.seconds <= 0:
            parser.error("--rate and --seconds must be positive")
        report = run_events(args.rate, args.seconds, args.tab)
    elif args.command == "waterfall":
        if args.turns < 1 or not args.seconds > 0:
            parser.error("--turns and --seconds must be positive")
        report = run_waterfall(args.turns, args.seconds)
        text = "" if args.json else waterfall_text(report)
    elif args.command == "verdict-shortcut":
        if args.presses < 1 or args.turns < 1:
            parser.error("--presses and --turns must be positive")
        report = run_verdict_shortcut(args.presses, args.turns)
        text = "" if args.json else verdict_text(report)
    else:
        report = run_startup(max(1, args.runs), [args.command] if args.command else None)
    print(text or json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
