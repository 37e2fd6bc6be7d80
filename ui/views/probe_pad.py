"""The probe pad: probes a tester plays into the live call as the caller.

A list of the probes in the pad folder (``<data dir>/probes``, see
:mod:`app.probes.pad`), and a form that adds one: rendered by espeak-ng in a language and
accent (**Render**), imported from a WAV the tester has (**Import WAV…**, or
:meth:`ProbePad.import_file`), or recorded from the microphone (**Record**, then **Stop**;
the transcript is the text typed in the form). **Play** (enabled only while a call runs
and a probe is selected) hands the probe to the call's
:class:`~app.audio.callermix.CallerMix`, which mixes it into the caller stream at the
port's rate. After the call, :meth:`ProbePad.score_call` scores the played probes against
the call's turns and files them as the turns' automatic verdicts
(:func:`app.probes.pad.store_pad_run`, then the index is brought up to date).

Every rule and file format lives in :mod:`app.probes.pad`; this view only collects input
and shows results. Bad input (a file that is not audio, an empty text, a bad language
tag) is one plain-text line in the panel and nothing is stored. Main thread only, except
the microphone callback, which only copies into a preallocated buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.audio.callermix import CallerMix
from app.errors import VoiceprobeError
from app.probes.pad import (
    PadProbe,
    import_wav,
    list_probes,
    load_audio,
    render_to_pad,
    save_probe,
    score_plays,
    store_pad_run,
)
from ui.models.common import one_line

#: Longest recording the Record button keeps (seconds); the buffer is allocated up front.
MAX_RECORD_S = 30
RECORD_RATE = 16000


class _Recorder:
    """Microphone capture into a preallocated buffer (the PortAudio callback only copies)."""

    def __init__(self, device: int | str | None = None) -> None:
        import sounddevice as sd

        self.buf = np.zeros(MAX_RECORD_S * RECORD_RATE, dtype=np.int16)
        self.n = 0
        self.stream = sd.InputStream(
            samplerate=RECORD_RATE,
            channels=1,
            dtype="int16",
            device=device,
            callback=self._callback,
        )
        self.stream.start()

    def _callback(self, indata: Any, frames: int, _time: Any, _status: Any) -> None:
        k = min(frames, len(self.buf) - self.n)  # PortAudio's thread: copy only
        self.buf[self.n : self.n + k] = indata[:k, 0]
        self.n += k

    def stop(self) -> np.ndarray:
        self.stream.stop()
        self.stream.close()
        return self.buf[: self.n].copy()


class ProbePad(QWidget):
    """The pad panel.

    Args:
        folder: the pad folder (``<data dir>/probes``), or what gives it (asked each time:
            the data folder may change, and is not created just by showing the pad).
        mixer: returns the running call's caller mix, or ``None`` outside a call.
        cache_dir: espeak-ng render cache; default ``<data dir>/probe-cache``.
        record_device: microphone for **Record**; ``None``: the default.
    """

    #: A probe was handed to the call (its name).
    played = Signal(str)

    def __init__(
        self,
        folder: Path | Callable[[], Path],
        mixer: Callable[[], CallerMix | None],
        parent: QWidget | None = None,
        *,
        cache_dir: Path | None = None,
        record_device: int | str | None = None,
    ) -> None:
        super().__init__(parent)
        self._folder = folder
        self._mixer = mixer
        self._cache_dir = cache_dir
        self._record_device = record_device
        self._recorder: _Recorder | None = None
        self._in_call = False
        self._used: CallerMix | None = None
        self.probes: list[PadProbe] = []

        self.list = QListWidget()
        self.text = QLineEdit()
        self.text.setPlaceholderText("what the probe says (its expected transcript)")
        self.language = QLineEdit("en-US")
        self.accent = QLineEdit()
        self.accent.setPlaceholderText("optional, e.g. scottish")
        form = QFormLayout()
        form.addRow("Text", self.text)
        form.addRow("Language", self.language)
        form.addRow("Accent", self.accent)
        self.render_button = QPushButton("Render")
        self.import_button = QPushButton("Import WAV…")
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.play_button = QPushButton("Play into call")
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.render_button, self.import_button, self.record_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.play_button)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.message)

        self.render_button.clicked.connect(self.render_probe)
        self.import_button.clicked.connect(self._choose_file)
        self.record_button.toggled.connect(self._record_toggled)
        self.play_button.clicked.connect(self.play_selected)
        self.list.currentRowChanged.connect(lambda _row: self._set_enabled())
        self._set_enabled()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Read the folder when the pad is shown (not when the window is built)."""
        chosen = self.selected()
        self.reload(select=chosen.name if chosen else None)
        super().showEvent(event)

    @property
    def folder(self) -> Path:
        """The pad folder."""
        return Path(self._folder() if callable(self._folder) else self._folder)

    # -- the list -------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        """Read the pad folder again (another tester may have added files)."""
        self.probes = list_probes(self.folder)
        self.list.clear()
        for p in self.probes:
            accent = f" ({p.accent})" if p.accent else ""
            item = QListWidgetItem(one_line(f"{p.name} · {p.language}{accent} · {p.text}"))
            item.setToolTip(one_line(f"{p.source}: {p.text}"))
            self.list.addItem(item)
        names = [p.name for p in self.probes]
        if select in names:
            self.list.setCurrentRow(names.index(select))
        self._set_enabled()

    def selected(self) -> PadProbe | None:
        """The selected probe, if any."""
        row = self.list.currentRow()
        return self.probes[row] if 0 <= row < len(self.probes) else None

    # -- adding probes --------------------------------------------------------------------

    def render_probe(self) -> PadProbe | None:
        """Render the form's text, language and accent with espeak-ng onto the pad."""
        return self._add(
            lambda: render_to_pad(
                self.folder,
                self.text.text(),
                self.language.text(),
                self.accent.text(),
                cache_dir=self._cache_dir,
            )
        )

    def import_file(self, path: str | Path) -> PadProbe | None:
        """Import the WAV ``path`` with the form's text as its transcript."""
        return self._add(
            lambda: import_wav(
                self.folder,
                Path(path),
                self.text.text(),
                self.language.text(),
                self.accent.text(),
            )
        )

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a WAV probe", "", "WAV (*.wav)")
        if path:
            self.import_file(path)

    def _record_toggled(self, on: bool) -> None:
        if on:
            try:
                self._recorder = _Recorder(self._record_device)
            except Exception as exc:  # PortAudio errors have no common base class
                self.record_button.setChecked(False)
                self.say(f"cannot record: {one_line(str(exc))}")
                return
            self.record_button.setText("Stop")
            self.say("recording… press Stop when done")
            return
        self.record_button.setText("Record")
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            pcm = recorder.stop()
            self._add(
                lambda: save_probe(
                    self.folder,
                    pcm,
                    RECORD_RATE,
                    self.text.text(),
                    self.language.text(),
                    self.accent.text(),
                    source="recorded",
                )
            )

    @property
    def recording_peak(self) -> int:
        """Peak level (absolute int16) captured so far by a running **Record**; 0 when
        not recording."""
        rec = self._recorder
        return 0 if rec is None else int(np.abs(rec.buf[: rec.n]).max(initial=0))

    def _add(self, make: Callable[[], PadProbe]) -> PadProbe | None:
        try:
            probe = make()
        except VoiceprobeError as exc:
            self.say(str(exc))
            return None
        self.reload(select=probe.name)
        self.say(f"added {probe.name}")
        return probe

    # -- the call -------------------------------------------------------------------------

    def set_in_call(self, running: bool) -> None:
        """The window says whether a call runs (Play is enabled only then)."""
        self._in_call = running
        self._set_enabled()

    def play_selected(self) -> bool:
        """Hand the selected probe to the running call; False (and a message) if it
        cannot be played."""
        probe = self.selected()
        mix = self._mixer() if self._in_call else None
        if probe is None or mix is None:
            self.say("a probe plays only into a running call")
            return False
        try:
            pcm, rate = load_audio(probe)
        except VoiceprobeError as exc:
            self.say(str(exc))
            return False
        mix.play(pcm, rate, probe.meta())
        self._used = mix
        self.say(f"playing {probe.name} into the call")
        self.played.emit(probe.name)
        return True

    def score_call(
        self, root: Path, session_id: str, turns: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Score the probes played in the call that just ended (``turns``: its turn
        records' JSON) and file them as the session's automatic verdicts; returns the
        scored probes (none played: nothing is written)."""
        mix, self._used = self._used, None
        if mix is None:
            return []
        scored = score_plays(mix.plays(), turns, mix.rate)
        if not scored:
            return []
        try:
            from app.store.index import SessionIndex
            from app.store.verdicts import ingest_suite_runs
            from app.store.writer import INDEX_FILE

            store_pad_run(root, session_id, scored)
            ingest_suite_runs(root, SessionIndex(root / INDEX_FILE))
        except VoiceprobeError as exc:
            self.say(str(exc))
            return scored
        self.say(
            "; ".join(
                f"turn {r['turn']}: WER {r['wer']:.2f}, reply {r['reply_language'] or '?'}"
                for r in scored
            )
        )
        return scored

    def say(self, text: str) -> None:
        """Show one plain-text line."""
        self.message.setText(one_line(text))

    def _set_enabled(self) -> None:
        self.play_button.setEnabled(self._in_call and self.selected() is not None)
