"""Tooltips show untrusted text literally (docs/architecture.md#desktop-views).

A tooltip has no text-format setting: Qt reads it as rich text whenever
``Qt.mightBeRichText`` says so (a tag like ``<b>`` or ``<img src=…>`` on its first line),
and a model's ``ToolTipRole`` goes the same way. Each test puts markup-looking text where
a session folder, a probe pad, the server or the model would, reads the tooltip Qt would
show (``toolTip()``, ``data(index, ToolTipRole)``, ``QToolTip.text()``) and renders it as
Qt does: what the user reads must be the original characters, line breaks kept.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import Qt as QtGuiNamespace
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QToolTip

from app import events as E
from app.metrics.presentation import span_style
from app.metrics.timeline import Timeline
from app.store.index import SessionIndex
from app.store.verdicts import VERDICTS_FILE, ingest_verdict_files
from tests.conftest_qt import main_window_with, shown_waterfall
from tests.coverage_helpers import make_session, suite_case, write_suite_run
from ui.history import HistoryWindow
from ui.models.tool_calls import ToolCallsModel
from ui.models.transcript import TranscriptModel
from ui.views.elided_label import ElidedLabel
from ui.views.plot_helpers import show_plot_tooltip
from ui.views.probe_pad import ProbePad
from ui.views.waterfall import STRIPS

TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
MS = 1_000_000
SID = "20261201-100000-0a0a"
#: Markup a hand-edited or hostile file could hold: bold text and an image fetch.
NOTE = '<b>bold</b><img src="file:///etc/hostname">'
WHO = "<i>x</i>"


def shown(tip: Any) -> str:
    """What a user reads in tooltip ``tip``: rendered as Qt renders a tooltip (rich text
    when ``Qt.mightBeRichText`` says so, else plain text)."""
    assert isinstance(tip, str) and tip, tip
    doc = QTextDocument()
    if QtGuiNamespace.mightBeRichText(tip):
        doc.setHtml(tip)
    else:
        doc.setPlainText(tip)
    return doc.toPlainText()


def test_shown_reads_markup_as_qt_does(qtbot) -> None:
    # The check itself: a tag on the first line is rendered, plain text is kept.
    assert shown(f"note: {NOTE}") == "note: bold\ufffc"
    assert shown("a < b\nc") == "a < b\nc"


def test_verdict_tooltips_show_notes_and_who_from_the_session_folder(qtbot, home: Path) -> None:
    folder = make_session(home, SID, [("hola", "hola", 700.0), ("adios", "adios", 800.0)])
    # Another tester's verdicts file (or a hand-edited one), read into the index.
    (folder / VERDICTS_FILE).write_text(json.dumps([
        {"turn": 1, "verdict": "fail", "reason": "other", "note": NOTE, "who": WHO,
         "at": "2026-12-01T10:05:00+00:00"},
    ]))  # fmt: skip
    index = SessionIndex(home / "sessions.db")
    assert ingest_verdict_files(home, index) == 1
    # A suite run whose failed check says what the agent said (a transcript), two lines.
    checks = [
        {"turn": 1, "name": "said", "passed": False, "message": "<u>hi</u>\n<s>x</s>"},
        {"turn": 2, "name": "said", "passed": False, "message": "a &lt; b <br> c"},
    ]
    write_suite_run(home, "run1", [suite_case(SID, "es-MX", [], checks)])

    history = HistoryWindow(index, home / "sessions")
    qtbot.addWidget(history)
    viewer = history.open_row(0)
    assert viewer is not None
    qtbot.addWidget(viewer)
    m = viewer.verdicts.model
    assert m.rowCount() == 2
    want = (f"manual: fail by {WHO} {NOTE}\n"
            "suite: fail by suite said: <u>hi</u>\n<s>x</s>\n"
            "the manual verdict counts")  # fmt: skip
    for col in (2, 3, 5):
        assert shown(m.index(0, col).data(TOOLTIP)) == want, col
    assert shown(m.index(1, 5).data(TOOLTIP)) == "suite: fail by suite said: a &lt; b <br> c"
    assert m.index(1, 1).data(TOOLTIP) is None  # no tooltip where there was none


def test_elided_label_tooltip_shows_its_text(qtbot) -> None:
    label = ElidedLabel(f"Failed — server said {NOTE}")
    qtbot.addWidget(label)
    assert shown(label.toolTip()) == f"Failed — server said {NOTE}"
    label.setText(f"{WHO}\n  second line")
    assert shown(label.toolTip()) == f"{WHO}\n  second line"
    assert label.text() == f"{WHO}\n  second line"  # the text itself is untouched
    label.setText("Connected")
    assert label.toolTip() == "Connected"  # plain text stays as it was


def test_main_window_tooltips_show_server_text(qtbot) -> None:
    code = "<b>quota</b>"
    model = "<i>gpt</i>"
    win, ctl = main_window_with(qtbot, [
        E.CallStarted(t_ns=1, session_id="s1", provider="openai", model=model, session_dir=""),
        E.ProviderErrorEvent(t_ns=2, code="rate", message=f"server said {NOTE}"),
        E.CallFailed(t_ns=3, code=code, message=f"server said {NOTE}", fix=""),
        E.CallEnded(t_ns=4, session_id="s1", reason="failed", ok=False),
    ])  # fmt: skip
    win.toggle_call()
    assert ctl.thread is not None
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: win.state_label.text().startswith("Failed"), timeout=5000)
    assert shown(win.banner.toolTip()) == f"error code: {code}"
    # The elided status labels: the whole text, literally, in the tooltip.
    assert win.state_label.text() == f"Failed — {code}"
    assert win.session_label.text() == f"OpenAI Realtime · {model} · s1"
    assert win.notice_label.text() == f"rate: server said {NOTE}"
    for label in (win.state_label, win.session_label, win.notice_label):
        assert shown(label.toolTip()) == label.text(), label.objectName()


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(3200))


def test_probe_pad_tooltips_show_the_pad_files_text(qtbot, tmp_path: Path) -> None:
    pad = tmp_path / "probes"
    pad.mkdir()
    # A shared pad folder: the files are whatever another tester (or anyone) put there.
    for name, meta in (
        ("typed", {"text": NOTE, "language": "es-MX", "source": "import"}),
        ("heard", {"text": "hola", "language": "es-MX", "source": WHO,
                   "text_source": "provider", "provider": "<b>p</b>", "model": "m"}),
        ("waiting", {"text": "", "language": "es-MX", "source": "recorded",
                     "pending": "<b>no transcript</b>"}),
    ):  # fmt: skip
        (pad / f"{name}.json").write_text(json.dumps(meta))
        _wav(pad / f"{name}.wav")
    view = ProbePad(pad, lambda: None)
    qtbot.addWidget(view)
    view.reload()
    tips = {p.name: view.list.item(i).toolTip() for i, p in enumerate(view.probes)}
    assert shown(tips["typed"]) == f"import: {NOTE}"
    assert shown(tips["heard"]) == f"{WHO}, text from <b>p</b> m: hola"
    assert shown(tips["waiting"]) == "recorded, pending: <b>no transcript</b>"


def test_transcript_tooltips_show_what_was_said(qtbot) -> None:
    model = TranscriptModel()
    model.apply(E.UserTranscript(t_ns=1, item_id="u1", text=NOTE, final=True))
    model.apply(E.AgentTranscript(t_ns=2, response_id="r1", item_id="a1",
                                  text=f"{WHO} sure", final=True))  # fmt: skip
    model.apply(E.ProviderErrorEvent(t_ns=3, code="<b>c</b>", message="bad <i>x</i>"))
    tips = [shown(model.data(model.index(r, 0), TOOLTIP)) for r in range(model.rowCount())]
    assert tips == [NOTE, f"{WHO} sure", "<b>c</b>: bad <i>x</i>"]
    model.scripted = True  # the simulator's script: a note under the text
    assert shown(model.data(model.index(0, 0), TOOLTIP)).startswith(f"{NOTE}\n\n")


def test_tool_call_tooltips_show_arguments_and_results(qtbot) -> None:
    model = ToolCallsModel()
    args = '{"q": "<b>rain</b>"}'
    output = '<img src="file:///etc/hostname">\n{"temp": 21}'
    model.apply(E.ToolCallRequested(t_ns=1, call_id="c1", name="w", arguments=args,
                                    response_id="r1"))  # fmt: skip
    model.apply(E.ToolCallFinished(t_ns=2, call_id="c1", name="w", arguments=args,
                                   status="ok", output=output, ms=3.0))  # fmt: skip
    assert shown(model.data(model.index(0, 4), TOOLTIP)) == args
    assert shown(model.data(model.index(0, 5), TOOLTIP)) == output


def test_waterfall_hover_tooltip_shows_the_model_tool_name(qtbot) -> None:
    name = "<b>get</b><img src='file:///etc/hostname'>"
    tl = Timeline()
    for ev in [
        E.LocalSpeechStarted(t_ns=0, sample=0),
        E.LocalSpeechStopped(t_ns=900 * MS, sample=14400),
        E.ResponseStarted(t_ns=1000 * MS, response_id="r1"),
        E.ToolCallRequested(t_ns=1000 * MS, call_id="c1", name=name, arguments="{}",
                            response_id="r1"),
        E.ToolCallFinished(t_ns=1400 * MS, call_id="c1", name=name, arguments="{}",
                           status="ok", output="{}", ms=400.0),
        E.PlaybackStarted(t_ns=1500 * MS, item_id="a1", response_id="r1"),
        E.ResponseFinished(t_ns=1600 * MS, response_id="r1"),
        E.PlaybackStopped(t_ns=2000 * MS, item_id="a1", played_samples=12000,
                          sample_rate=24000),
    ]:  # fmt: skip
        tl.feed(ev)
    (done,) = tl.close(2100 * MS)
    view, _model = shown_waterfall(qtbot, [done.turn])
    (lay,) = view.row_layouts()
    key = f"tool:{name}"
    x0, w = lay.segments[key]
    centre, _height = STRIPS[span_style(key).lane]
    x, y = x0 + w / 2, lay.row + centre
    text = view.tooltip_at(x, y)
    assert text.startswith(f"tool {name}: 400 ms")
    vb = view.plot.getPlotItem().getViewBox()
    show_plot_tooltip(view.plot, vb.mapViewToScene(QPointF(x, y)), view.tooltip_at)
    assert shown(QToolTip.text()) == text
    QToolTip.hideText()


def test_text_without_markup_is_left_as_it_is(qtbot) -> None:
    model = ToolCallsModel()
    model.apply(E.ToolCallRequested(t_ns=1, call_id="c1", name="w", arguments='{"a": 1}',
                                    response_id="r1"))  # fmt: skip
    assert model.data(model.index(0, 4), TOOLTIP) == '{"a": 1}'
