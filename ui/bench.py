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
repainted) at 100, 500 and 1,000 turns (:func:`ui.bench_views.run_waterfall`).
``python -m ui.bench verdict-shortcut`` times the "mark last turn passed/failed"
shortcuts from the key press to the mark painted (:func:`ui.bench_views.run_verdict_shortcut`).

Everything Qt is imported lazily, so ``startup`` does not pay for it. The view benchmarks
(``waterfall``, ``verdict-shortcut``) live in :mod:`ui.bench_views`.

One module on purpose (over 500 lines): the event-flood benchmark's controller, frame
probe and report are one measurement, and the command line serves all four benchmarks.
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


def summarize_ms(values: Sequence[float]) -> dict[str, float | int | None]:
    from app.metrics.percentile import percentile

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "max": r(max(values) if values else None),
        "count": len(values),
    }


def cycle_events(template: list[E.Event], k: int) -> Iterator[E.Event]:
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
        for ev in cycle_events(template, k):
            if n >= total - 1:
                yield E.CallEnded(t_ns=t_first, session_id="bench", reason="hangup")
                return
            n += 1
            yield ev
        k += 1


def restamp(ev: E.Event, now_ns: int) -> E.Event:
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
            stamped = restamp(ev, time.monotonic_ns())
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
        "frame_ms": summarize_ms(probe.frames),
        "paint_ms": summarize_ms(probe.paints),
        "event_to_screen_ms": summarize_ms(probe.latency),
        "transcript_to_screen_ms": summarize_ms(probe.transcript_latency),
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
    from ui.bench_views import run_verdict_shortcut, run_waterfall, verdict_text, waterfall_text

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
