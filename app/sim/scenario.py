"""Simulator scenarios: what the simulated agent hears, says, calls, and how it misbehaves.

A scenario is a YAML mapping. Every key is optional unless marked *required*; unknown keys
are rejected, and every problem raises :class:`app.errors.ConfigError` naming the file and
the dotted field (for example ``turns[1].tool_call.name``). Nothing else is ever raised.
Text values hold no NUL character and at most :data:`MAX_TEXT_CHARS` characters; the
file is parsed within the budget of :mod:`app.bounded_yaml` (YAML aliases expanded).

Top level::

    name: demo                 # label for logs (default: the file's stem, or "scenario")
    voice_rate: 175            # espeak-ng words per minute for replies (80..450)
    voice: en                  # espeak-ng voice for replies (a turn's ``voice`` overrides
                               #   it), e.g. hi, es-419, cmn-latn-pinyin; an unknown voice
                               #   falls back to the speech-shaped tone
    default_reply: null        # reply for utterances beyond the script (null: transcribe
                               #   only and create no response; a client's explicit
                               #   response.create then gets an empty completed response)
    greeting: null             # text the agent says right after the first session.update
                               #   of the first connection, before any user speech (turn 0)
    continue_on_reconnect: true  # a reconnecting client continues at the next turn
                               #   (false: every connection starts again at turn 1)
    session_limit_ms: null     # if set (> 0): this long after a connection opens, send
                               #   error session_expired (invalid_request_error) and close
                               #   the socket with code 1000
    timing: {...}              # defaults for every turn, see below
    turns: [...]               # the script, see below; turn numbers are 1-based
    faults: [...]              # whole-session faults, see below

``timing`` (every key optional; a turn's own ``timing`` overrides single keys)::

    response_delay_ms: 120     # speech_stopped sent -> response.created sent (VAD mode);
                               #   response.create received -> response.created sent
                               #   (manual mode and tool follow-ups)
    first_audio_ms: 300        # response.created sent -> first audio delta sent
    chunk_ms: 100              # audio per delta (1..2000)
    realtime_factor: 2.0       # agent audio is paced this many times faster than real
                               #   time (0 = all chunks at once)
    transcript_delay_ms: 150   # committed sent -> input transcription completed sent
    endpointing_ms: null       # VAD hangover for this turn's utterance; null uses the
                               #   client's turn_detection.silence_duration_ms (default 500)

Each entry of ``turns``::

    hears: "What's the weather in Paris?"   # required: the caller transcript reported
    reply: "Let me check that for you."     # spoken reply ("" = none, e.g. tool call only)
    voice: es-419                           # optional espeak-ng voice of this turn's
                                            #   reply and after_result
    timing: {first_audio_ms: 500}           # optional per-turn overrides
    tool_call:                              # optional: the response also calls a tool
      name: get_weather                     # required
      arguments: {city: Paris}              # a mapping, sent as JSON text
      after_result: "It is sunny."          # reply of the follow-up response the client
                                            #   triggers with function_call_output +
                                            #   response.create
      followup_first_audio_ms: 250          # response.created -> first audio of the
                                            #   follow-up (default: the turn's first_audio_ms)
    faults: [...]                           # faults of this turn (``turn`` is implied)

Each fault (in ``faults`` or a turn's ``faults``)::

    action: close | error | malformed | stall | slow_pong | go_away   # required
    at: "response.output_audio.delta"  # a wire event type the simulator sends, or "time"
                      #   (Gemini dialect: the top-level key of the message, or
                      #   "serverContent.<field>", e.g. "serverContent.modelTurn",
                      #   "serverContent.turnComplete", "toolCall",
                      #   "sessionResumptionUpdate")
    turn: 2           # event faults: only that turn (1-based; 0 = greeting; null = any)
    nth: 3            # event faults: fire before the nth matching send (default 1)
    after_ms: 5000    # "time" faults: this long after the connection opened
    code: 1011        # close, go_away: the WebSocket close code (1000..4999, default 1011)
                      # error: the error code string (default "server_error")
    message: "..."    # error: the message; close: the close reason (default "");
                      #   go_away: the close reason (default "Deadline expired")
    error_type: "..."  # error: error.type (default invalid_request_error for
                      #   session_expired, else server_error)
    close_code: null  # error: close the socket with this code after sending the error
    ms: 2000          # stall: pause all sends this long; slow_pong: delay every pong;
                      #   go_away: the time left announced, then the socket is closed

Actions: ``close`` closes the socket instead of sending the event; ``error`` sends an
``error`` event before it (the event is still sent unless ``close_code`` is set);
``malformed`` sends a line of invalid JSON before it; ``stall`` holds every outgoing
message for ``ms`` starting at that point; ``slow_pong`` (no ``at``) delays every pong
reply of the connection by ``ms``; ``go_away`` warns that the connection will end (Gemini:
a ``goAway{timeLeft: "<ms/1000>s"}`` message before the event; OpenAI has no such message
and sends nothing) and closes the socket ``ms`` later with ``code`` unless the client has
gone already (a client that resumes with its last ``sessionResumptionUpdate`` handle
continues the same conversation). An event fault fires at most once per simulator (not
again on a reconnection); a ``time`` fault once per connection.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.bounded_yaml import FieldReader, kind_of, load_yaml, shown_key
from app.errors import ConfigError

FAULT_ACTIONS = ("close", "error", "malformed", "stall", "slow_pong", "go_away")
#: The keys of a ``timing`` mapping (a scenario's, a turn's, a suite's ``simulator``).
TIMING_KEYS = (
    "response_delay_ms",
    "first_audio_ms",
    "chunk_ms",
    "realtime_factor",
    "transcript_delay_ms",
    "endpointing_ms",
)
_MAX_MS = 3_600_000.0  # one hour: nothing in a scenario may be longer
#: Longest text value (a line heard or spoken, a message): about 15 minutes of speech.
MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays of one turn; see the module docstring for what each one spans."""

    response_delay_ms: float = 120.0
    first_audio_ms: float = 300.0
    chunk_ms: float = 100.0
    realtime_factor: float = 2.0
    transcript_delay_ms: float = 150.0
    endpointing_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the agent makes in a turn's response."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    after_result: str = ""
    followup_first_audio_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault; see the module docstring for the semantics of each field."""

    action: str
    at: str | None = None
    turn: int | None = None
    nth: int = 1
    after_ms: float | None = None
    code: int | str | None = None
    message: str = ""
    error_type: str | None = None
    close_code: int | None = None
    ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One scripted exchange: what the caller said and what the agent does."""

    hears: str
    reply: str = ""
    timing: Timing = field(default_factory=Timing)
    tool_call: ToolCall | None = None
    faults: tuple[Fault, ...] = ()
    voice: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulator script (see the module docstring for the YAML format)."""

    name: str = "scenario"
    voice_rate: int = 175
    voice: str = "en"
    default_reply: str | None = None
    greeting: str | None = None
    continue_on_reconnect: bool = True
    session_limit_ms: float | None = None
    timing: Timing = field(default_factory=Timing)
    turns: tuple[Turn, ...] = ()
    faults: tuple[Fault, ...] = ()
    path: str | None = None

    def all_faults(self) -> tuple[Fault, ...]:
        """Return the session faults followed by every turn's faults."""
        out = list(self.faults)
        for t in self.turns:
            out.extend(t.faults)
        return tuple(out)

    def texts(self) -> list[str]:
        """Return every text the agent may speak (for synthesising ahead of time)."""
        return [text for text, _ in self.spoken()]

    def spoken(self) -> list[tuple[str, str]]:
        """Return every ``(text, espeak-ng voice)`` the agent may speak."""
        out = [(self.greeting or "", self.voice), (self.default_reply or "", self.voice)]
        for t in self.turns:
            voice = self.voice_of(t)
            out.append((t.reply, voice))
            if t.tool_call is not None:
                out.append((t.tool_call.after_result, voice))
        return [(s, v) for s, v in out if s]

    def voice_of(self, turn: Turn | None) -> str:
        """The espeak-ng voice that speaks ``turn``'s replies (None: the scenario's)."""
        return turn.voice if turn is not None and turn.voice else self.voice


class _ScenarioReader(FieldReader[str | None]):
    """Validates a scenario's plain data into records; a place is its dotted field name
    (``turns[0].timing.chunk_ms``; ``None`` for the document itself)."""

    max_text = MAX_TEXT_CHARS
    max_number = _MAX_MS

    def __init__(self, path: str | None) -> None:
        self.path = path

    def fail(self, where: str | None, problem: str, *, key: bool = False) -> ConfigError:
        return ConfigError(problem, self.path, where)

    def at(self, where: str | None, step: str | int) -> str:
        return _join(where, step) if isinstance(step, str) else f"{where or ''}[{step}]"

    def voice(self, value: object, where: str) -> str:
        text = self.text(value, where, nonempty=True).strip()
        if not re.fullmatch(r"[A-Za-z0-9_+-]{1,64}", text):  # an espeak-ng voice name
            raise self.fail(where, "expected an espeak-ng voice name such as en, es-419, hi")
        return text

    def opt_text(self, value: object, where: str) -> str | None:
        return None if value is None else self.text(value, where)

    # --- records -------------------------------------------------------------------

    def timing(self, value: object, where: str, base: Timing) -> Timing:
        d = self.mapping(value, where, TIMING_KEYS)
        kw: dict[str, Any] = {}
        for k in ("response_delay_ms", "first_audio_ms", "transcript_delay_ms"):
            if k in d:
                kw[k] = self.number(d[k], _join(where, k))
        if "chunk_ms" in d:
            kw["chunk_ms"] = self.number(d["chunk_ms"], _join(where, "chunk_ms"), lo=1.0, hi=2000.0)
        if "realtime_factor" in d:
            kw["realtime_factor"] = self.number(
                d["realtime_factor"], _join(where, "realtime_factor"), hi=1000.0
            )
        if "endpointing_ms" in d:
            v = d["endpointing_ms"]
            kw["endpointing_ms"] = (
                None
                if v is None
                else self.integer(v, _join(where, "endpointing_ms"), lo=10, hi=60_000)
            )
        return replace(base, **kw)

    def tool_call(self, value: object, where: str) -> ToolCall:
        keys = ("name", "arguments", "after_result", "followup_first_audio_ms")
        d = self.mapping(value, where, keys)
        if "name" not in d:
            raise self.fail(_join(where, "name"), "is required")
        name = self.text(d["name"], _join(where, "name"), nonempty=True)
        args = d.get("arguments", {})
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise self.fail(_join(where, "arguments"), f"expected a mapping, got {kind_of(args)}")
        _check_json(self, args, _join(where, "arguments"))
        args = dict(args)
        after = self.text(d.get("after_result", ""), _join(where, "after_result"))
        fup = d.get("followup_first_audio_ms")
        fup_v = None if fup is None else self.number(fup, _join(where, "followup_first_audio_ms"))
        return ToolCall(
            name=name, arguments=args, after_result=after, followup_first_audio_ms=fup_v
        )

    def fault(self, value: object, where: str, in_turn: int | None) -> Fault:
        keys = (
            "action", "at", "turn", "nth", "after_ms", "code", "message", "error_type",
            "close_code", "ms",
        )
        d = self.mapping(value, where, keys)
        if "action" not in d:
            raise self.fail(_join(where, "action"), "is required")
        action = self.text(d["action"], _join(where, "action"))
        if action not in FAULT_ACTIONS:
            raise self.fail(_join(where, "action"), f"must be one of {', '.join(FAULT_ACTIONS)}")
        at = self.opt_text(d.get("at"), _join(where, "at"))
        if action == "slow_pong":
            if at is not None:
                raise self.fail(_join(where, "at"), "slow_pong applies to the whole connection")
        elif at is None or not at.strip():
            raise self.fail(_join(where, "at"), "is required (an event type or \"time\")")
        turn = d.get("turn")
        if turn is not None:
            turn = self.integer(turn, _join(where, "turn"), lo=0, hi=1_000_000)
            if in_turn is not None and turn != in_turn:
                raise self.fail(_join(where, "turn"), f"must be {in_turn} (or absent) here")
        nth = self.integer(d.get("nth", 1), _join(where, "nth"), lo=1, hi=1_000_000)
        after_ms = d.get("after_ms")
        if at == "time":
            if after_ms is None:
                raise self.fail(_join(where, "after_ms"), "is required when at is \"time\"")
            after_ms = self.number(after_ms, _join(where, "after_ms"))
        elif after_ms is not None:
            raise self.fail(_join(where, "after_ms"), "only applies when at is \"time\"")
        code: int | str | None = d.get("code")
        if action in ("close", "go_away"):
            code = 1011 if code is None else code
            code = self.integer(code, _join(where, "code"), lo=1000, hi=4999)
        elif action == "error":
            code = "server_error" if code is None else code
            code = self.text(code, _join(where, "code"), nonempty=True)
        elif code is not None:
            raise self.fail(_join(where, "code"), f"does not apply to {action}")
        message = self.text(d.get("message", ""), _join(where, "message"))
        err_type = self.opt_text(d.get("error_type"), _join(where, "error_type"))
        close_code = d.get("close_code")
        if close_code is not None:
            if action != "error":
                raise self.fail(_join(where, "close_code"), "only applies to error")
            close_code = self.integer(close_code, _join(where, "close_code"), lo=1000, hi=4999)
        ms = 0.0
        if action in ("stall", "slow_pong", "go_away"):
            if "ms" not in d:
                raise self.fail(_join(where, "ms"), f"is required for {action}")
            ms = self.number(d["ms"], _join(where, "ms"), lo_open=True)
        elif "ms" in d:
            raise self.fail(_join(where, "ms"), f"does not apply to {action}")
        return Fault(
            action=action, at=at, turn=turn if turn is not None else in_turn, nth=nth,
            after_ms=after_ms, code=code, message=message, error_type=err_type,
            close_code=close_code, ms=ms,
        )

    def faults(self, value: object, where: str, in_turn: int | None) -> tuple[Fault, ...]:
        if value is None:
            return ()
        items = self.listing(value, where)
        return tuple(self.fault(f, f"{where}[{i}]", in_turn) for i, f in enumerate(items))

    def turn(self, value: object, where: str, base: Timing, number: int) -> Turn:
        keys = ("hears", "reply", "timing", "tool_call", "faults", "voice")
        d = self.mapping(value, where, keys)
        if "hears" not in d:
            raise self.fail(_join(where, "hears"), "is required")
        hears = self.text(d["hears"], _join(where, "hears"))
        reply = d.get("reply", "")
        reply = "" if reply is None else self.text(reply, _join(where, "reply"))
        timing = base
        if d.get("timing") is not None:
            timing = self.timing(d["timing"], _join(where, "timing"), base)
        tool = None
        if d.get("tool_call") is not None:
            tool = self.tool_call(d["tool_call"], _join(where, "tool_call"))
        faults = self.faults(d.get("faults"), _join(where, "faults"), number)
        voice = None if d.get("voice") is None else self.voice(d["voice"], _join(where, "voice"))
        return Turn(
            hears=hears, reply=reply, timing=timing, tool_call=tool, faults=faults, voice=voice
        )


def scenario_from_dict(data: object, path: str | None = None) -> Scenario:
    """Validate plain data (as loaded from YAML) into a :class:`Scenario`.

    Args:
        data: the parsed document (must be a mapping).
        path: the file it came from, used in error messages.

    Raises:
        ConfigError: for any problem, naming the dotted field; never another exception.
    """
    r = _ScenarioReader(path)
    keys = (
        "name", "voice_rate", "voice", "default_reply", "greeting", "continue_on_reconnect",
        "session_limit_ms", "timing", "turns", "faults",
    )
    d = r.mapping(data, None, keys)
    default_name = Path(path).stem if path else "scenario"
    name = r.text(d.get("name", default_name), "name", nonempty=True)
    voice_rate = r.integer(d.get("voice_rate", 175), "voice_rate", lo=80, hi=450)
    voice = r.voice(d.get("voice", "en"), "voice")
    default_reply = r.opt_text(d.get("default_reply"), "default_reply")
    greeting = r.opt_text(d.get("greeting"), "greeting")
    cont = r.boolean(d.get("continue_on_reconnect", True), "continue_on_reconnect")
    limit = d.get("session_limit_ms")
    limit_v = None
    if limit is not None:
        limit_v = r.number(limit, "session_limit_ms", lo_open=True, hi=86_400_000.0)
    timing = Timing() if d.get("timing") is None else r.timing(d["timing"], "timing", Timing())
    turns_raw = [] if d.get("turns") is None else r.listing(d["turns"], "turns")
    turns = tuple(r.turn(t, f"turns[{i}]", timing, i + 1) for i, t in enumerate(turns_raw))
    faults = r.faults(d.get("faults"), "faults", None)
    return Scenario(
        name=name, voice_rate=voice_rate, voice=voice, default_reply=default_reply,
        greeting=greeting,
        continue_on_reconnect=cont, session_limit_ms=limit_v, timing=timing, turns=turns,
        faults=faults, path=path,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, not YAML, or invalid;
            the message names the file and the field.
    """
    p = str(path)
    try:
        raw = Path(p).read_bytes()
    except FileNotFoundError:
        raise ConfigError("scenario file not found", p) from None
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"cannot read scenario file ({why})", p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", p) from None
    return scenario_from_dict(load_yaml(text, p), p)  # bounded: no alias bombs


def _join(where: str | None, key: str) -> str:
    key = shown_key(key)
    return key if not where else f"{where}.{key}"




def _check_json(r: _ScenarioReader, value: object, where: str, depth: int = 0) -> None:
    """Reject values that cannot be sent as JSON tool arguments."""
    if depth > 32:
        raise r.fail(where, "nested too deeply")
    if value is None or isinstance(value, bool | str | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise r.fail(where, "must be finite")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise r.fail(where, f"keys must be text, got {kind_of(k)}")
            _check_json(r, v, _join(where, k), depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_json(r, v, f"{where}[{i}]", depth + 1)
        return
    raise r.fail(where, f"cannot be sent as JSON ({kind_of(value)})")
