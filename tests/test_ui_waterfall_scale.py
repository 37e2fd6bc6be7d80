"""The latency waterfall at 1,000 turns: it draws only the rows on screen, draws them
exactly as a short call's rows are drawn, and a frame costs what it costs at 100 turns."""

from __future__ import annotations

import pytest

from app.metrics.presentation import span_style
from tests.conftest import TIME_SCALE
from tests.conftest_qt import shown_waterfall  # (sets QT_QPA_PLATFORM first)
from ui.bench import FRAME_TARGET_MS
from ui.bench_views import demo_turns, run_waterfall
from ui.models.turns import TurnsModel
from ui.views.waterfall import MAX_VISIBLE_ROWS, STRIPS, WaterfallView

MANY = 1000


def _view(qtbot, n: int) -> tuple[WaterfallView, TurnsModel]:
    view, model = shown_waterfall(qtbot, demo_turns(n))
    view.row_layouts()  # brought up to date
    return view, model


def _drawn(view: WaterfallView) -> list[tuple[float, float, float, float, str]]:
    """Every bar drawn: (x0, y, width, height, colour), in drawing order."""
    o = view._bars.opts
    heights = o["height"] if isinstance(o["height"], list) else [o["height"]] * len(o["x0"])
    return [
        (x0, y, w, h, b.color().name())
        for x0, y, w, h, b in zip(o["x0"], o["y"], o["width"], heights, o["brushes"], strict=True)
    ]


def _expected(view: WaterfallView, rows: range) -> list[tuple[float, float, float, float, str]]:
    """The bars of ``rows`` as the waterfall has always drawn every row (the oracle)."""
    from ui.views.waterfall import _span_brush

    out = []
    for lay in view.row_layouts()[rows.start : rows.stop]:
        for name, (x0, w) in lay.segments.items():
            centre, height = STRIPS.get(span_style(name).lane, STRIPS["latency"])
            out.append(
                (x0, lay.row + centre, max(w, 0.5), height, _span_brush(name).color().name())
            )
    return out


def _rows_drawn(view: WaterfallView) -> list[int]:
    """The rows that have bars in the plot (a bar's y is its row ± less than 0.5)."""
    return sorted({round(y) for _, y, _, _, _ in _drawn(view)})


def _rows_on_screen(view: WaterfallView) -> range:
    n = len(view.row_layouts())  # brought up to date first
    (_, _), (y0, y1) = view.plot.getPlotItem().getViewBox().viewRange()
    return range(max(0, round(y0 + 0.6)), min(n, round(y1 + 0.4)))


def test_the_waterfall_draws_only_the_rows_on_screen(qtbot):
    few, _ = _view(qtbot, MAX_VISIBLE_ROWS + 3)
    many, model = _view(qtbot, MANY)
    assert len(many.row_layouts()) == MANY
    # The newest rows are on screen, drawn exactly as the few rows of a short call are.
    shown = _rows_on_screen(many)
    assert shown == range(MANY - MAX_VISIBLE_ROWS, MANY)
    drawn = _drawn(many)
    on_screen = _expected(many, shown)
    assert all(bar in drawn for bar in on_screen)
    # Only the rows on screen (and one either side) are drawn: as many bars as the short
    # call draws for its own last rows, whatever the number of turns.
    assert len(drawn) <= len(_expected(many, range(shown.start - 1, shown.stop)))
    assert len(drawn) <= len(_drawn(few)) + 2 * max(len(r.segments) for r in many.row_layouts())
    ys = [y for _, y, _, _, _ in drawn]
    assert min(ys) > shown.start - 1.5 and max(ys) < shown.stop + 0.5
    rows = _rows_drawn(many)
    assert rows == list(range(shown.start - 1, shown.stop))
    assert many.label_texts() == [many.row_layouts()[r].label for r in rows]

    # Scrolled back to turns 501-512: those rows are drawn, labelled and hoverable.
    vb = many.plot.getPlotItem().getViewBox()
    vb.setYRange(500 - 0.6, 500 + MAX_VISIBLE_ROWS - 0.4, padding=0)
    shown = _rows_on_screen(many)
    assert shown == range(500, 500 + MAX_VISIBLE_ROWS)
    drawn = _drawn(many)
    assert all(bar in drawn for bar in _expected(many, shown))
    assert len(drawn) <= len(_expected(many, range(shown.start - 1, shown.stop + 1)))
    rows = _rows_drawn(many)
    assert rows == list(range(499, 513))
    assert many.label_texts() == [many.row_layouts()[r].label for r in rows]
    assert "turn 506" in many.tooltip_at(100.0, 505.06).lower()

    # A turn arriving live while scrolled back leaves the rows shown; at the end of the
    # scroll bar the newest rows are back, the new one drawn and labelled.
    model.add_turn(demo_turns(MANY + 1)[-1])
    rows = many.row_layouts()
    assert len(rows) == MANY + 1 and rows[-1].number == MANY + 1
    assert _rows_on_screen(many) == range(500, 500 + MAX_VISIBLE_ROWS)
    many.scroll_bar.setValue(many.scroll_bar.maximum())
    assert _rows_on_screen(many) == range(MANY + 1 - MAX_VISIBLE_ROWS, MANY + 1)
    assert all(bar in _drawn(many) for bar in _expected(many, range(MANY, MANY + 1)))
    assert many.label_texts()[-1] == rows[-1].label


def test_a_slow_threshold_change_redraws_the_rows_on_screen(qtbot):
    view, model = _view(qtbot, MANY)
    before = {lay.row: lay.slow for lay in view.row_layouts()}
    view.threshold.setValue(800)
    rows = view.row_layouts()
    assert [lay.slow for lay in rows] == [model.is_slow(i) for i in range(MANY)]
    assert rows != [] and any(lay.slow != before[lay.row] for lay in rows)
    assert view.label_texts() == [rows[r].label for r in _rows_drawn(view)]
    assert len(_rows_drawn(view)) == MAX_VISIBLE_ROWS + 1


@pytest.mark.serial  # a CPU-time bound: run alone
def test_waterfall_frames_cost_the_same_at_100_and_1000_turns():
    report = run_waterfall(MANY, seconds=1.0)
    assert report["unsettled"] == 0
    small, _, large = report["checkpoints"]
    assert (small["turns"], large["turns"]) == (100, MANY)
    # The main thread's CPU time per frame (wall time also counts other processes). The
    # redraw cost used to grow with the turns (p50 13 ms at 100, 80 ms at 1,000).
    cpu_small, cpu_large = small["frame_cpu_ms"], large["frame_cpu_ms"]
    assert cpu_large["p50"] < 2.0 * cpu_small["p50"], report
    # A generous bound (the bench's target is 16 ms): a frame, not a stall.
    assert cpu_large["p95"] < 2.0 * FRAME_TARGET_MS * TIME_SCALE, report


# --- scrolling back through the turns (issue 14) ----------------------------------------


def _wheel(view: WaterfallView, notches: int, ctrl: bool = False) -> None:
    """A real wheel event over the plot's viewport: ``notches`` > 0 scrolls back (up)."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    viewport = view.plot.viewport()
    centre = viewport.rect().center()
    mods = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    wheel = QWheelEvent(
        QPointF(centre), QPointF(viewport.mapToGlobal(centre)), QPoint(0, 0),
        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, mods,
        Qt.ScrollPhase.NoScrollPhase, False,
    )  # fmt: skip
    QApplication.sendEvent(viewport, wheel)


def _assert_rows_drawn(view: WaterfallView, shown: range) -> None:
    """``shown`` is on screen, and exactly its rows (and one either side) are drawn."""
    assert _rows_on_screen(view) == shown
    assert all(bar in _drawn(view) for bar in _expected(view, shown))
    rows = _rows_drawn(view)
    n = len(view.row_layouts())
    assert rows == list(range(max(0, shown.start - 1), min(n, shown.stop + 1)))
    assert view.label_texts() == [view.row_layouts()[r].label for r in rows]


def test_the_wheel_scrolls_back_to_turn_1_and_new_turns_follow_only_at_the_newest(qtbot):
    view, model = _view(qtbot, MANY)
    vb = view.plot.getPlotItem().getViewBox()
    newest = range(MANY - MAX_VISIBLE_ROWS, MANY)
    _assert_rows_drawn(view, newest)

    # One notch scrolls back three rows; the time axis does not move.
    x_before = vb.viewRange()[0]
    _wheel(view, 1)
    _assert_rows_drawn(view, range(newest.start - 3, newest.stop - 3))
    assert vb.viewRange()[0] == x_before
    # Ctrl+wheel zooms the time axis instead, the rows stay.
    _wheel(view, 1, ctrl=True)
    assert vb.viewRange()[0][1] - vb.viewRange()[0][0] < x_before[1] - x_before[0]
    _assert_rows_drawn(view, range(newest.start - 3, newest.stop - 3))

    # Scrolled all the way back: turn 1 at the top, its rows drawn, the wheel stops there.
    _wheel(view, MANY // 3 + 5)
    _assert_rows_drawn(view, range(0, MAX_VISIBLE_ROWS))
    assert view.label_texts()[0] == view.row_layouts()[0].label
    assert view.row_layouts()[0].number == 1
    assert "turn 1:" in view.tooltip_at(-250.0, 0.45).lower()
    assert view.scroll_bar.value() == 0

    # New turns while scrolled back: the view stays put (like a terminal).
    for turn in demo_turns(MANY + 2)[MANY:]:
        model.add_turn(turn)
    assert len(view.row_layouts()) == MANY + 2
    _assert_rows_drawn(view, range(0, MAX_VISIBLE_ROWS))

    # The scroll bar beside the plot scrolls too (End: the newest rows).
    view.scroll_bar.setValue(view.scroll_bar.maximum())
    _assert_rows_drawn(view, range(MANY + 2 - MAX_VISIBLE_ROWS, MANY + 2))

    # Back at the newest rows, new turns are followed.
    model.add_turn(demo_turns(MANY + 3)[-1])
    _assert_rows_drawn(view, range(MANY + 3 - MAX_VISIBLE_ROWS, MANY + 3))

    # Scrolling down past the newest stays at the newest, still following.
    _wheel(view, -5)
    _assert_rows_drawn(view, range(MANY + 3 - MAX_VISIBLE_ROWS, MANY + 3))

    # Selecting a turn off screen (the history's play-from-turn, a test) brings it into
    # view; one on screen does not scroll.
    view.select_turn(40)
    assert 40 in _rows_on_screen(view)
    _assert_rows_drawn(view, _rows_on_screen(view))
    on_screen = _rows_on_screen(view)
    view.select_turn(on_screen.start + 2)
    assert _rows_on_screen(view) == on_screen
    view.select_turn(MANY + 2)
    assert MANY + 2 in _rows_on_screen(view)

    # Cleared: no rows, and the next call's turns are followed from the start.
    model.clear()
    for turn in demo_turns(MAX_VISIBLE_ROWS + 5):
        model.add_turn(turn)
    _assert_rows_drawn(view, range(5, MAX_VISIBLE_ROWS + 5))


# --- the summary line from running aggregates -----------------------------------------


def _summary_oracle(model: TurnsModel) -> str:
    """The summary line computed straight from every turn (how it always was)."""
    from app.metrics.percentile import percentile
    from app.metrics.presentation import HEADLINE
    from ui.models.common import ms_text

    turns = model.turns()
    values = [v for t in turns if (v := t.span_ms(HEADLINE)) is not None]
    slow = sum(1 for v in values if v > model.slow_ms)
    net = ""
    for source in ("ping", "tcp"):
        samples = model._network.get(source)
        if samples:
            net = (
                f"network RTT p50 {ms_text(percentile(samples, 50))}"
                f" · p95 {ms_text(percentile(samples, 95))} ({source})"
            )
            break
    if not turns:
        return "No turns yet" + (f" · {net}" if net else "")
    n = len(turns)
    return (
        f"{n} turn{'s' if n != 1 else ''} · voice→voice p50 {ms_text(percentile(values, 50))}"
        f" · p95 {ms_text(percentile(values, 95))} · {slow} slow" + (f" · {net}" if net else "")
    )


def _random_turn(rng, index: int):
    from app.metrics.presentation import HEADLINE
    from app.metrics.records import Span, TurnRecord

    spans = {}
    if rng.random() < 0.85:  # some turns have no voice-to-voice
        ms = rng.choice([rng.uniform(200, 3000), float(rng.randrange(200, 3000, 100)), 1200.0])
        spans[HEADLINE] = Span(start_ns=0, end_ns=int(ms * 1e6), ms=ms)
    return TurnRecord(index=index, spans=spans)


def test_the_summary_line_equals_the_straight_computation_over_random_calls():
    import random

    from app import events as E

    for seed in range(25):
        rng = random.Random(seed)
        model = TurnsModel()
        seen = 0
        for _ in range(rng.randrange(1, 300)):
            r = rng.random()
            if r < 0.55 or seen == 0:
                model.add_turn(_random_turn(rng, seen))  # a new turn
                seen += 1
            elif r < 0.8:
                model.add_turn(_random_turn(rng, rng.randrange(seen)))  # replaces one
            elif r < 0.87:
                model.set_slow_ms(rng.choice([800.0, 1200.0, 1500.0, 1234.5]))
            elif r < 0.95:
                source = rng.choice(["ping", "tcp", "connect"])
                model.apply(E.NetworkSample(t_ns=0, provider="p", source=source,
                                            ms=rng.uniform(5, 200)))  # fmt: skip
            elif r < 0.97:
                model.clear()
                seen = 0
            assert model.summary_text() == _summary_oracle(model), seed
            assert model.slow_count() == sum(model.is_slow(i) for i in range(model.rowCount()))
        assert model.headline_values() == [
            v for t in model.turns() if (v := t.voice_to_voice_ms) is not None
        ]
