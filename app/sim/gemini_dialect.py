"""The Gemini Live (``BidiGenerateContent``) wire dialect of the simulator.

:class:`GeminiConversation` speaks the protocol as ai.google.dev/api/live documents it and
as ``google.genai`` 3.6.1 models it (``types.LiveClientMessage`` / ``LiveServerMessage``,
docs/protocols.md#gemini-live). Client messages are read in camelCase or snake_case (the SDK sends
``realtime_input``, ``tool_response`` ...); everything sent is camelCase and validates
against ``LiveServerMessage``.

Client → server:

- ``setup`` (must come first, once) → ``setupComplete``. Read: ``model``,
  ``generationConfig.responseModalities`` (only ``AUDIO``), ``realtimeInputConfig``
  (``automaticActivityDetection.disabled|silenceDurationMs|prefixPaddingMs``,
  ``activityHandling``), ``inputAudioTranscription`` / ``outputAudioTranscription``
  (transcripts are sent only when asked for), ``sessionResumption`` (updates are sent only
  when present; a ``handle`` this server issued resumes the conversation, logged as
  ``resumed``).
- ``realtimeInput.audio`` (``audio/pcm;rate=16000``, or 24000) feeds the engine's VAD on
  audio time; ``mediaChunks`` audio likewise. ``activityStart`` / ``activityEnd`` mark the
  caller's turn when automatic activity detection is disabled. ``text`` is a typed turn.
- ``toolResponse.functionResponses`` answers a ``toolCall``: the follow-up starts at once
  (there is no ``response.create`` in Gemini).
- ``clientContent.turns`` are logged as ``replayed_item``; ``turnComplete: true`` makes the
  next scripted turn answer them.

Server → client, per model turn: ``serverContent.modelTurn.parts[].inlineData`` audio chunks
(``audio/pcm;rate=24000``, paced as scripted), each followed by the
``serverContent.outputTranscription`` words due by then; ``toolCall`` (after the spoken
part) — then nothing until the ``toolResponse``, and the follow-up continues the same model
turn; ``generationComplete``, ``usageMetadata``, ``turnComplete``, and a
``sessionResumptionUpdate{newHandle, resumable}``. Caller speech during a turn (the
simulator's VAD, or ``activityStart``) cuts it: ``interrupted`` then ``turnComplete``, no
``generationComplete``. ``serverContent.inputTranscription{text, finished: true}`` comes
``transcript_delay_ms`` after the end of the caller's speech. Gemini has no speech
started/stopped messages (``voiceActivity`` is only sent when the client opts in with
``explicitVadSignal``, a Vertex feature: not simulated), no response or item ids and no
error message: errors close the socket with a code and a reason, as the service does
(1007 for a bad request, 1011 for an internal error).

Ground truth (:mod:`app.sim.truth`) keeps the OpenAI-named records so tests read both
dialects alike: ``speech_started`` / ``speech_stopped`` (the VAD edges; nothing is sent),
``response.created`` stamped at the *first message of the model turn* (the first sign of
a response the client can see), ``first_audio``, ``function_call_arguments.done``
(``toolCall`` sent), ``function_call_output`` (``toolResponse`` received),
``interrupted``, ``response.done`` (``turnComplete`` sent) and ``resumed``.

Token usage: one ``usageMetadata`` message per model turn, just before its
``turnComplete`` (a turn with a tool call is one model turn: its usage comes at the end of
the follow-up). Each model turn is billed for the whole context so far, as the service
bills (ai.google.dev/gemini-api/docs/live-api/best-practices, "Pricing and billing"). The
simulator's rule, deterministic from what it received and sent:

- prompt ``AUDIO`` = caller audio committed so far, plus the agent audio of every earlier
  model turn of the connection, at :data:`AUDIO_TOKENS_PER_S`;
- prompt ``TEXT`` = the system instruction and every text the client added (tool
  responses, ``clientContent`` texts), at :data:`app.sim.tokens.CHARS_PER_TEXT_TOKEN`
  characters a token (rounded up; the simulator has no tokenizer);
- response ``AUDIO`` = the audio this model turn sent, at :data:`AUDIO_TOKENS_PER_S`
  (rounded down); no cached content (the native-audio models do not support caching).

Each usage sent is also logged in the ground truth as a ``usage`` record (``response_id``,
``usage``: the object as sent).

Fault ``at`` names (:mod:`app.sim.scenario`): the message's top-level key, or
``serverContent.<field>`` for server content (``serverContent.modelTurn`` ...).

Runs on the server's loop thread (see :mod:`app.sim.engine`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import int16_to_bytes
from app.providers.gemini.casing import camel as _camel
from app.providers.gemini.casing import get_field as _get
from app.providers.gemini.casing import snake as _snake
from app.sim.audio_input import InputConfig, SpeechEdge
from app.sim.engine import Conversation
from app.sim.gemini_setup import Invalid, obj_field, read_setup
from app.sim.response import OUT_RATE, ResponseRun
from app.sim.tokens import text_tokens

#: Output audio MIME type (the service's only output format).
OUTPUT_MIME = f"audio/pcm;rate={OUT_RATE}"
#: Input rates accepted in ``audio/pcm;rate=N`` (others are refused with 1007).
INPUT_RATES = {16000: "pcm16", 24000: "pcm"}
#: Audio tokens per second (ai.google.dev token counting: 32 tokens per second of audio).
AUDIO_TOKENS_PER_S = 32
#: Close code for a bad client message (the service's "Request contains an invalid
#: argument" / "Invalid JSON payload received").
CLOSE_INVALID = 1007
CLOSE_INTERNAL = 1011

_CLIENT_KEYS = ("setup", "clientContent", "realtimeInput", "toolResponse")
_REALTIME_KEYS = ("audio", "mediaChunks", "audioStreamEnd", "activityStart", "activityEnd",
                  "text", "video")
_RATE = re.compile(r"rate=(\d+)")


def _has(obj: dict[str, Any], name: str) -> bool:
    return name in obj or _snake(name) in obj


def _duration(ms: float) -> str:
    """A proto-JSON ``Duration`` (``"2s"``, ``"1.5s"``)."""
    return f"{max(0.0, ms) / 1000:.3f}".rstrip("0").rstrip(".") + "s"


class GeminiConversation(Conversation):
    """One Gemini Live connection of the simulator (see the module docstring).

    Takes the arguments of :class:`app.sim.engine.Conversation`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialect = self
        self.cfg = InputConfig(codec="pcm16")
        self.audio.set_codec("pcm16")
        self.set_up = False
        self.input_transcription = False
        self.output_transcription = False
        self.resumption = False
        self.tools: list[str] = []
        # usage: text tokens of the context, earlier turns' audio, this turn's audio so far
        self._ctx_text = 0
        self._ctx_out_audio = 0
        self._turn_out_ms: dict[int, float] = {}

    # --- helpers -------------------------------------------------------------------------

    def event_type(self, msg: dict[str, Any]) -> str:
        """``serverContent.<field>`` for server content, else the top-level key."""
        key = next(iter(msg), "")
        if key == "serverContent" and isinstance(msg[key], dict) and msg[key]:
            return f"serverContent.{next(iter(msg[key]))}"
        return key

    async def _send_run(self, run: ResponseRun, msg: dict[str, Any]) -> int:
        """Send a message of a model turn; the first one marks the response created."""
        t = await self.emit(msg, run.turn)
        self.mark_created(run, t)
        return t

    async def _content(self, turn: int | None, **content: Any) -> int:
        return await self.emit({"serverContent": content}, turn)

    async def _refuse(self, message: str) -> None:
        self.truth.record("error_sent", self.peek_turn(), code=CLOSE_INVALID, message=message)
        await self.close(CLOSE_INVALID, message)

    async def send_error(
        self, turn: int | None, err_type: str, code: str | None, message: str,
        param: str | None = None, event_id: str | None = None,
    ) -> int:
        """Gemini has no error message: close the socket with 1011 and the message."""
        self.truth.record("error_sent", turn, code=code, message=message)
        t = self.clock.now_ns()
        await self.close(CLOSE_INTERNAL, message)
        return t

    # --- client messages -------------------------------------------------------------------

    async def handle(self, text: str, t_recv_ns: int) -> None:
        try:
            try:
                msg = json.loads(text)
            except (ValueError, RecursionError):
                raise Invalid("Invalid JSON payload received.") from None
            if not isinstance(msg, dict):
                raise Invalid("Invalid JSON payload received. Expected an object.")
            present = [k for k in _CLIENT_KEYS if _has(msg, k)]
            for key in msg:
                if _camel(key) not in _CLIENT_KEYS:
                    raise Invalid(f'Invalid JSON payload received. Unknown name "{key[:60]}":'
                                   " Cannot find field.")
            if len(present) != 1:
                raise Invalid("A client message must carry exactly one of setup, "
                               "clientContent, realtimeInput, toolResponse.")
            kind = present[0]
            body = obj_field(msg, kind, "")
            if body is None:
                raise Invalid(f"Invalid value at '{kind}': expected an object.")
            if kind == "setup":
                await self._on_setup(body)
                return
            if not self.set_up:
                raise Invalid("The first message must be setup.")
            if kind == "realtimeInput":
                await self._on_realtime_input(body, t_recv_ns)
            elif kind == "toolResponse":
                self._on_tool_response(body)
            else:
                self._on_client_content(body)
        except Invalid as e:
            await self._refuse(str(e))

    async def _on_setup(self, setup: dict[str, Any]) -> None:
        if self.set_up:
            raise Invalid("setup may only be sent once, as the first message.")
        got = read_setup(setup)
        self.model = got.model
        self.input_transcription = got.input_transcription
        self.output_transcription = got.output_transcription
        self._ctx_text = sum(text_tokens(t) for t in got.system_texts)
        self.resumption = got.resumption
        self.tools.extend(got.tools)
        handle = got.handle
        if handle:
            if not isinstance(handle, str) or handle not in self.state.handles:
                raise Invalid("Invalid session resumption handle.")
            if not self.scenario.continue_on_reconnect:
                self.resume_at(self.state.handles[handle])
            self.truth.record("resumed", self.peek_turn(), handle=handle, index=self.index)
        self.configure(got.input_config)
        self.set_up = True
        self.truth.record("client_event", None, type="setup", model=got.model,
                          vad=self.cfg.vad, silence_ms=self.cfg.silence_ms,
                          resumption=self.resumption, tools=list(self.tools))
        await self.emit({"setupComplete": {}}, None)
        self.start_greeting()

    async def _on_realtime_input(self, ri: dict[str, Any], t_recv: int) -> None:
        present = [k for k in _REALTIME_KEYS if _has(ri, k)]
        if len(present) != 1:
            raise Invalid("realtimeInput must carry exactly one input.")
        kind = present[0]
        value = _get(ri, kind)
        if kind == "audio":
            await self._on_blob(value, t_recv, "realtimeInput.audio")
        elif kind == "mediaChunks":
            if not isinstance(value, list):
                raise Invalid("Invalid value at 'realtimeInput.mediaChunks'.")
            for blob in value:
                await self._on_blob(blob, t_recv, "realtimeInput.mediaChunks")
        elif kind in ("activityStart", "activityEnd"):
            await self._on_activity(kind, t_recv)
        elif kind == "text":
            if not isinstance(value, str):
                raise Invalid("Invalid value at 'realtimeInput.text'.")
            self._text_turn(value)
        else:  # audioStreamEnd, video: nothing to simulate
            self.truth.record("client_event", self.peek_turn(), type=f"realtimeInput.{kind}")

    async def _on_blob(self, blob: Any, t_recv: int, where: str) -> None:
        if not isinstance(blob, dict):
            raise Invalid(f"Invalid value at '{where}': expected a Blob.")
        mime = _get(blob, "mimeType")
        data = _get(blob, "data")
        if not isinstance(mime, str) or not isinstance(data, str):
            raise Invalid(f"'{where}' needs data and mimeType.")
        if not mime.lower().startswith("audio/"):
            return  # an image or video frame: not simulated
        m = _RATE.search(mime)
        rate = int(m.group(1)) if m else 16000
        codec = INPUT_RATES.get(rate)
        if not mime.lower().startswith("audio/pcm") or codec is None:
            raise Invalid(f"Unsupported audio mimeType '{mime[:60]}' (the simulator takes "
                           "audio/pcm;rate=16000 or 24000).")
        try:
            payload = base64.b64decode(data.replace("-", "+").replace("_", "/")
                                       + "=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"Invalid value at '{where}.data': not base64.") from None
        if len(payload) % 2:
            raise Invalid(f"Invalid value at '{where}.data': not whole PCM16 samples.")
        self.audio.set_codec(codec)
        self.cfg.codec = codec
        await self.on_audio(payload, t_recv)

    async def _on_activity(self, kind: str, t_recv: int) -> None:
        if self.cfg.vad:
            raise Invalid(f"{kind} is only allowed when automatic activity detection is "
                           "disabled.")
        self.truth.record("client_event", self.peek_turn(), type=f"realtimeInput.{kind}")
        edge = SpeechEdge(kind == "activityStart", self.audio.fed16, t_recv)
        await self.on_speech_edge(edge)

    def _on_tool_response(self, body: dict[str, Any]) -> None:
        responses = _get(body, "functionResponses")
        if not isinstance(responses, list):
            raise Invalid("toolResponse.functionResponses must be a list.")
        answered = False
        for fr in responses:
            if not isinstance(fr, dict):
                raise Invalid("toolResponse.functionResponses[] must be objects.")
            call_id = fr.get("id")
            if not isinstance(call_id, str):  # no id: match the pending call by name
                name = fr.get("name")
                pending = {**self.state.awaiting_tool, **self.awaiting_tool}
                call_id = next((c for c, r in pending.items()
                                if r.tool is not None and r.tool.name == name), "")
            answered |= call_id in self.awaiting_tool or call_id in self.state.awaiting_tool
            self.on_tool_output(call_id)
            self._ctx_text += text_tokens(json.dumps(fr.get("response")))
        if answered:
            self._start_followup()

    def _start_followup(self) -> None:
        """Continue the model turn after a tool result (no ``response.create`` needed)."""
        done = self.tool_ready.pop(0)
        self.tool_ready.clear()
        self.start_after(self.followup_run(done))

    def _on_client_content(self, body: dict[str, Any]) -> None:
        turns = _get(body, "turns") or []
        if not isinstance(turns, list):
            raise Invalid("clientContent.turns must be a list.")
        said: list[str] = []
        for content in turns:
            if not isinstance(content, dict):
                raise Invalid("clientContent.turns[] must be Content objects.")
            parts = content.get("parts") or []
            texts = [p.get("text") for p in parts if isinstance(p, dict)]
            kinds = [next(iter(p), "") for p in parts if isinstance(p, dict) and p]
            text = " ".join(t for t in texts if isinstance(t, str))
            self._ctx_text += text_tokens(text)
            role = content.get("role")
            self.truth.record("replayed_item", self.peek_turn(), item_type=",".join(kinds),
                              role=role, text=text)
            if role != "model" and text:
                said.append(text)
        if _get(body, "turnComplete") and said:
            self._text_turn(" ".join(said))

    def _text_turn(self, text: str) -> None:
        """A typed caller turn: the next scripted turn answers it."""
        turn = self.take_turn()
        self.truth.record("client_event", turn, type="text_turn", text=text)
        run = self.turn_run(turn, "turn")
        if run is not None:
            self.start_after(run)

    # --- engine hooks ----------------------------------------------------------------------

    async def send_opening(self) -> None:
        """Nothing: the service speaks only after ``setup``."""

    async def send_speech_started(self, turn: int, item_id: str, audio_start_ms: int) -> int:
        return self.clock.now_ns()

    async def send_speech_stopped(self, turn: int, item_id: str, audio_end_ms: int) -> int:
        return self.clock.now_ns()

    async def send_user_item(
        self, turn: int, item_id: str, prev_id: str | None, audio_ms: float
    ) -> int:
        return self.clock.now_ns()

    async def send_input_transcript(self, turn: int, item_id: str, text: str) -> int:
        if not self.input_transcription:
            return self.clock.now_ns()
        return await self._content(turn, inputTranscription={"text": text, "finished": True})

    async def send_response_created(self, run: ResponseRun) -> int | None:
        run.pending_words.clear()
        return None

    async def send_message_start(self, run: ResponseRun) -> int:
        return self.clock.now_ns()

    async def send_audio(self, run: ResponseRun, chunk: NDArray[np.int16]) -> int:
        data = base64.b64encode(int16_to_bytes(chunk)).decode("ascii")
        part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": data}}
        t = await self._send_run(run, {"serverContent": {"modelTurn": {"parts": [part]}}})
        await self._flush_words(run)
        return t

    async def send_text_delta(self, run: ResponseRun, delta: str) -> int:
        # Held back until after the audio it belongs to: transcription follows the audio
        # on the service, and must not be the first sign of a new model turn.
        run.pending_words.append(delta)
        return self.clock.now_ns()

    async def _flush_words(self, run: ResponseRun) -> None:
        words = run.pending_words
        if words and self.output_transcription:
            text = "".join(words)
            words.clear()
            await self._send_run(run, {"serverContent": {"outputTranscription": {"text": text}}})
        words.clear()

    async def send_message_end(self, run: ResponseRun) -> int:
        cancelled = run.cancel.is_set()
        if not cancelled:
            await self._flush_words(run)
        t = self.clock.now_ns()
        if not run.created_logged:
            return t  # nothing of this model turn went out
        if cancelled:
            t = await self._content(run.turn, interrupted=True)
            self.truth.record("interrupted", run.turn, t, response_id=run.response_id,
                              sent_ms=run.sent_ms)
        elif run.tool is None:
            t = await self._content(run.turn, generationComplete=True)
        return t

    async def send_function_call(self, run: ResponseRun) -> int:
        assert run.tool is not None
        self.awaiting_tool[run.call_id] = run  # before sending: the answer may be quick
        call = {"id": run.call_id, "name": run.tool.name, "args": dict(run.tool.arguments)}
        return await self._send_run(run, {"toolCall": {"functionCalls": [call]}})

    async def send_response_done(self, run: ResponseRun) -> int | None:
        if not run.created_logged:
            return None
        turn_ms = self._turn_out_ms.pop(run.turn, 0.0) + run.sent_ms
        if run.tool is not None and run.status == "completed":
            self._turn_out_ms[run.turn] = turn_ms
            return None  # the model turn goes on after the toolResponse
        usage = self._usage(turn_ms)
        self.truth.record("usage", run.turn, response_id=run.response_id, usage=usage)
        await self.emit({"usageMetadata": usage}, run.turn)
        t = await self._content(run.turn, turnComplete=True)
        if self.resumption:
            handle = secrets.token_urlsafe(24)
            self.state.handles[handle] = self.peek_turn()
            await self.emit({"sessionResumptionUpdate": {"newHandle": handle,
                                                         "resumable": True}}, run.turn)
            self.truth.record("resumption_update", run.turn, handle=handle)
        return t

    def _usage(self, turn_ms: float) -> dict[str, Any]:
        """A model turn's ``usageMetadata`` by the rule in the module docstring."""
        audio = (int(self.input_audio_ms_total * AUDIO_TOKENS_PER_S // 1000)
                 + self._ctx_out_audio)
        text = self._ctx_text
        out = int(turn_ms * AUDIO_TOKENS_PER_S // 1000)
        self._ctx_out_audio += out
        prompt_details = [{"modality": "AUDIO", "tokenCount": audio}]
        if text:
            prompt_details.insert(0, {"modality": "TEXT", "tokenCount": text})
        return {
            "promptTokenCount": text + audio, "responseTokenCount": out,
            "totalTokenCount": text + audio + out,
            "promptTokensDetails": prompt_details,
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": out}],
        }

    async def send_go_away(self, turn: int | None, time_left_ms: float) -> int | None:
        return await self.emit({"goAway": {"timeLeft": _duration(time_left_ms)}}, turn)
