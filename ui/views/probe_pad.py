"""The probe pad: probes a tester plays into the live call as the caller.

A list of the probes in the pad folder (``<data dir>/probes``, see
:mod:`app.probes.pad`), and a form that adds one: rendered by espeak-ng in a language and
accent (**Render**), imported from a WAV the tester has (**Import WAV…**, or
:meth:`ProbePad.import_file`), or recorded from the microphone (**Record**, then **Stop**;
the transcript is the text typed in the form). During a live call whose caller is the
microphone, a recording made with the text left empty takes the provider's transcript of
what was said instead: it is stored as *pending* and filled in when the provider's final
caller transcript of the turns it covers arrives (:mod:`app.probes.transcribed`; the
window feeds the call's events to :meth:`ProbePad.follow`). A scripted transcript (the
simulator's) is never used; a probe left pending gets its text typed (**Set text**).
**Play** (enabled only while a call runs and a probe with a text is selected) hands the
probe to the call's
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

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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
from app.events import CallEnded, CallStarted, EventBase, TurnCompleted, UserTranscript
from app.probes.pad import (
    PadProbe,
    import_wav,
    list_probes,
    load_audio,
    mark_pending,
    render_to_pad,
    save_pending,
    save_probe,
    score_plays,
    set_text,
    store_pad_run,
)
from app.probes.transcribed import CallTranscripts, Heard
from ui.models.common import one_line, plain_tip

#: Longest recording the Record button keeps (seconds); the buffer is allocated up front.
MAX_RECORD_S = 30
RECORD_RATE = 16000


class Recorder(Protocol):
    """What **Record** captures with: started when built, stopped once.

    Attributes:
        start_ns: the one clock (``time.monotonic_ns``) when capture started.
        end_ns: when it stopped (set by :meth:`stop`).
    """

    start_ns: int
    end_ns: int

    @property
    def peak(self) -> int:
        """Peak level (absolute int16) captured so far."""
        ...

    def stop(self) -> np.ndarray:
        """Stop capturing; return the samples (mono int16 at :data:`RECORD_RATE`)."""
        ...


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
        self.start_ns = time.monotonic_ns()
        self.end_ns = self.start_ns

    def _callback(self, indata: Any, frames: int, _time: Any, _status: Any) -> None:
        k = min(frames, len(self.buf) - self.n)  # PortAudio's thread: copy only
        self.buf[self.n : self.n + k] = indata[:k, 0]
        self.n += k

    @property
    def peak(self) -> int:
        return int(np.abs(self.buf[: self.n]).max(initial=0))

    def stop(self) -> np.ndarray:
        self.end_ns = time.monotonic_ns()
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
        recorder: starts a capture for **Record** (given ``record_device``); default:
            the microphone through PortAudio.
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
        recorder: Callable[[int | str | None], Recorder] | None = None,
    ) -> None:
        super().__init__(parent)
        self._folder = folder
        self._mixer = mixer
        self._cache_dir = cache_dir
        #: The microphone **Record** captures (``None``: the default); the main window sets
        #: it to the call's own microphone when a call starts.
        self.record_device = record_device
        self._make_recorder: Callable[[int | str | None], Recorder] = recorder or _Recorder
        self._recorder: Recorder | None = None
        self._in_call = False
        self._caller_is_mic = False
        self._heard = CallTranscripts()
        self._live = False  # follow() saw this call start and not end
        #: Pending recordings of the running call: probe name → (start_ns, end_ns).
        self._waiting: dict[str, tuple[int, int]] = {}
        self._used: CallerMix | None = None
        self.probes: list[PadProbe] = []

        self.list = QListWidget()
        self.text = QLineEdit()
        self.text.setPlaceholderText(
            "what the probe says; empty when recording in a call: the provider's transcript"
        )
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
        self.text_button = QPushButton("Set text")
        self.text_button.setToolTip("Give the selected probe the text typed above")
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.render_button, self.import_button, self.record_button, self.text_button):
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
        self.text_button.clicked.connect(self.type_text)
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
            text = p.text or "(pending transcript)"
            item = QListWidgetItem(one_line(f"{p.name} · {p.language}{accent} · {text}"))
            if p.is_pending:
                tip = f"{p.source}, pending: {p.pending}"
            elif p.text_source == "provider":
                tip = f"{p.source}, text from {p.provider} {p.model}: {p.text}"
            else:
                tip = f"{p.source}: {p.text}"
            item.setToolTip(plain_tip(one_line(tip)))  # the pad files' text, literally
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
                self._recorder = self._make_recorder(self.record_device)
            except Exception as exc:  # PortAudio errors have no common base class
                self.record_button.setChecked(False)
                self.say(f"cannot record: {one_line(str(exc))}")
                return
            self.record_button.setText("Stop")
            self.say("recording… press Stop when done")
            return
        self.record_button.setText("Record")
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        pcm = recorder.stop()
        if self.text.text().strip() or not self._transcribing():
            if not self.text.text().strip():
                self.say(
                    "type the probe's text, then record again: only a recording made in a "
                    "call with the microphone as the caller can take the provider's transcript"
                )
                return
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
            return
        heard = self._heard
        first = heard.match(recorder.start_ns, recorder.end_ns)
        probe = self._add(
            lambda: save_pending(
                self.folder,
                pcm,
                RECORD_RATE,
                self.language.text(),
                self.accent.text(),
                first.reason or "waiting for the provider's transcript of this recording",
                provider=heard.provider,
                model=heard.model,
            )
        )
        if probe is None:
            return
        if first.status == "scripted":
            self.say(f"{probe.name}: {first.reason}")
            return
        self._waiting[probe.name] = (recorder.start_ns, recorder.end_ns)
        self._resolve()

    def _transcribing(self) -> bool:
        """A recording now can take the provider's transcript: a call runs, its caller
        is the microphone, and its events come to :meth:`follow`."""
        return self._in_call and self._caller_is_mic and self._live

    @property
    def recording_peak(self) -> int:
        """Peak level (absolute int16) captured so far by a running **Record**; 0 when
        not recording."""
        rec = self._recorder
        return 0 if rec is None else rec.peak

    def type_text(self) -> PadProbe | None:
        """Give the selected probe the form's text (``text_source`` ``typed``): how a
        pending probe gets its text, or a probe's text is corrected."""
        probe = self.selected()
        if probe is None:
            self.say("select a probe first")
            return None
        self._waiting.pop(probe.name, None)
        return self._add(lambda: set_text(probe, self.text.text()))

    # -- transcripts of the call ----------------------------------------------------------

    def follow(self, ev: EventBase) -> None:
        """Take one event of the running call (main thread; the window's event bus): the
        provider's caller transcripts fill pending recordings as they arrive, and at call
        end the ones still without text say why."""
        self._heard.feed(ev)
        if isinstance(ev, CallStarted):
            self._live = True
            self._waiting.clear()
        elif isinstance(ev, CallEnded):
            self._live = False
        if self._waiting and isinstance(ev, UserTranscript | TurnCompleted | CallEnded):
            self._resolve()  # only these change an answer (audio events come by the hundred)

    def _resolve(self) -> None:
        """Fill the pending recordings whose transcript is known; at call end, record why
        the others stay pending."""
        # Ask the call first: the pad folder is read only once some answer is ready.
        ready: dict[str, Heard] = {}
        for name, (start, end) in self._waiting.items():
            heard = self._heard.match(start, end)
            if heard.status != "waiting":
                ready[name] = heard
        if not ready:
            return
        by_name = {p.name: p for p in list_probes(self.folder)}
        said: list[str] = []
        for name, heard in ready.items():
            del self._waiting[name]
            probe = by_name.get(name)
            if probe is None or not probe.is_pending:
                continue  # removed or typed meanwhile
            try:
                if heard.status == "found":
                    set_text(probe, heard.text, text_source="provider",
                             provider=self._heard.provider, model=self._heard.model)  # fmt: skip
                    said.append(f"{name}: text from the provider's transcript: {heard.text}")
                else:
                    mark_pending(probe, heard.reason)
                    said.append(f"{name}: {heard.reason}")
            except VoiceprobeError as exc:
                said.append(str(exc))
        if said:
            chosen = self.selected()
            self.reload(select=chosen.name if chosen else None)
            self.say("; ".join(said))

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

    def set_in_call(self, running: bool, *, caller_is_mic: bool = False) -> None:
        """The window says whether a call runs (Play is enabled only then) and whether its
        caller is the microphone **Record** captures (then a recording with no typed
        text takes the provider's transcript)."""
        self._in_call = running
        self._caller_is_mic = running and caller_is_mic
        self._set_enabled()

    def play_selected(self) -> bool:
        """Hand the selected probe to the running call; False (and a message) if it
        cannot be played."""
        probe = self.selected()
        mix = self._mixer() if self._in_call else None
        if probe is not None and probe.is_pending:
            self.say(f"{probe.name} has no text yet ({probe.pending}); type it, then Set text")
            return False
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
        probe = self.selected()
        self.play_button.setEnabled(self._in_call and probe is not None and not probe.is_pending)
        self.text_button.setEnabled(probe is not None)
