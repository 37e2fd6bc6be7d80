"""View benchmarks (commands, not tests): the latency waterfall's frame time as turns
accumulate (:func:`run_waterfall`), and a verdict shortcut from the key press to the mark
painted (:func:`run_verdict_shortcut`). Run through ``python -m ui.bench waterfall`` and
``python -m ui.bench verdict-shortcut`` (:func:`ui.bench.main`); the README gives the
figures.

Everything Qt is imported lazily.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import events as E
from app.metrics.records import TurnRecord
from ui.bench import (
    FRAME_TARGET_MS,
    LATENCY_TARGET_MS,
    StreamController,
    cycle_events,
    restamp,
    summarize_ms,
)

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
        for ev in cycle_events(template, k):
            if isinstance(ev, E.TurnCompleted) and len(out) < n:
                later = restamp(ev, ev.t_ns + k * period)
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
                "frame_ms": summarize_ms(frames),
                "frame_cpu_ms": summarize_ms(cpu),
                "paint_ms": summarize_ms(meter.paints),
                "by_action_ms": {k: summarize_ms(v) for k, v in by_action.items()},
                "by_action_cpu_ms": {k: summarize_ms(v) for k, v in by_action_cpu.items()},
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
    summary = summarize_ms(latencies)
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
