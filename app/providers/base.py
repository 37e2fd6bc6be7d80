"""The contract every provider implements.

A provider has two halves (docs/architecture.md#caller-side-and-agent-side):

* a **protocol** object (:class:`ProviderProtocol`): pure, synchronous, no I/O. Feed it
  the text of each server message with its receive stamp and read typed events out; ask
  it for the outgoing messages of each command (audio, tool result, truncate). It never
  raises on bad server input: a malformed or unknown message becomes a
  :class:`~app.events.ProviderErrorEvent` or :class:`~app.events.UnknownMessage`.
* a **connection** (:class:`Provider`): a few dozen lines over ``websockets`` that dial
  the endpoint, send what the protocol produces and feed it what arrives.

Audio crossing this interface is always PCM16 mono little-endian at the provider's
``input_rate`` (bridge → provider) and ``output_rate`` (provider → bridge). A protocol
that puts G.711 on the wire encodes/decodes itself.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.events import Event


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send.

    Attributes:
        text: the exact JSON text to put on the wire.
        type: the message type (``session.update``, ``realtimeInput``…), for logs.
        log: the message as logged (audio payload replaced by its size), or ``None`` for
            audio appends, which are not logged one by one.
    """

    text: str
    type: str
    log: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One finished piece of the conversation, replayed into a new provider session.

    Attributes:
        role: ``user`` / ``assistant`` (text), ``tool_call`` or ``tool_result``.
        text: the transcript (user, assistant) or the tool output JSON (tool_result).
        call_id: the tool call id (tool_call, tool_result).
        name: the tool name (tool_call, tool_result).
        arguments: the call's JSON arguments (tool_call).
    """

    role: str
    text: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class ProviderProtocol(abc.ABC):
    """Sans-I/O half of a provider. Synchronous; call from one thread only."""

    #: Sample rate (Hz) of the PCM16 the bridge hands to :meth:`audio`.
    input_rate: int
    #: Sample rate (Hz) of the PCM16 in :class:`~app.events.AgentAudio` events.
    output_rate: int
    #: Short provider name: ``openai``, ``gemini`` or ``twilio-ws``.
    name: str
    #: Capabilities the bridge reads instead of asking which vendor this is.
    #: The server reports the caller's speech (speech_started/stopped, interrupted);
    #: False where only the local VAD hears it (a Twilio stream).
    has_server_vad: bool = True
    #: The caller side may cut agent audio itself when the caller speaks (local
    #: barge-in); False where the agent decides (Twilio plays until the agent's ``clear``).
    caller_cuts_playout: bool = True
    #: The protocol wants to hear how much agent audio has played (:meth:`played`).
    reports_playout: bool = False
    #: A dropped session can be replaced by a new one mid-call; False where the stream
    #: is the call (Twilio): its end ends the call.
    resumable: bool = True
    #: A tool result waits until the response that asked for it has finished (OpenAI
    #: refuses ``response.create`` while that response is active); False where the
    #: server finishes that response only once it has the result (Gemini, LiveKit PR
    #: #3192), so waiting would stall both sides.
    tool_result_waits: bool = True
    #: The server ends a session after about this long without warning (OpenAI: 60
    #: min): the call rolls over to a fresh session at a turn boundary before that
    #: (:attr:`app.bridge.call.BridgeOptions.session_max_s` when not given). ``None``:
    #: no limit to stay under.
    rollover_s: float | None = None

    @abc.abstractmethod
    def open(self) -> list[Outgoing]:
        """Messages to send right after the socket opens (session config / setup)."""

    @abc.abstractmethod
    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        """Parse one server message received at ``t_ns``; never raises on bad input."""

    @abc.abstractmethod
    def audio(self, pcm: bytes) -> list[Outgoing]:
        """Messages that send ``pcm`` (PCM16 mono at ``input_rate``) to the server."""

    @abc.abstractmethod
    def tool_result(self, call_id: str, name: str, output: str) -> list[Outgoing]:
        """Messages that return a tool's ``output`` (JSON text) and resume the agent."""

    @abc.abstractmethod
    def truncate(self, item_id: str, audio_end_ms: int) -> list[Outgoing]:
        """Messages that tell the server what was played of ``item_id`` (may be empty)."""

    def manual_turn_start(self) -> list[Outgoing]:
        """Messages to send when the local VAD starts caller speech and the profile turns
        server turn detection off (Gemini ``activityStart``); empty by default.
        """
        return []

    def manual_turn_end(self) -> list[Outgoing]:
        """Messages to send when the local VAD ends caller speech with server turn
        detection off (OpenAI commit + ``response.create``, Gemini ``activityEnd``).
        """
        return []

    def replay(self, history: list[HistoryItem]) -> list[Outgoing]:
        """Messages that restore a conversation in a fresh session (after a reconnect or a
        rollover). Empty where the provider restores it itself (a Gemini resumption).
        """
        return []

    def respond(self) -> list[Outgoing]:
        """Messages that ask the agent to answer now (after a replayed tool result)."""
        return []

    def received_audio_ms(self, item_id: str) -> int:
        """Milliseconds of agent audio received so far for ``item_id`` (0 if unknown)."""
        return 0

    def played(self, item_id: str, played_ms: int) -> list[Outgoing]:
        """Messages due now that the caller's sink has played ``played_ms`` of
        ``item_id`` (Twilio ``mark`` echoes). Called after every played frame when
        :attr:`reports_playout` is set; empty by default."""
        return []

    def events_received(self) -> list[Event]:
        """Events that a call other than :meth:`receive` made (Gemini's
        ``activity_start`` closing an answered user item), oldest first; drains them.

        The connection drains this on every send, so such events are on the event stream
        right after the call that made them. Empty by default.
        """
        return []


class Provider(abc.ABC):
    """I/O half of a provider: one live session with the endpoint.

    All methods run on the bridge's asyncio loop thread.
    """

    protocol: ProviderProtocol

    @property
    def input_rate(self) -> int:
        """PCM16 rate the provider wants from the bridge."""
        return self.protocol.input_rate

    @property
    def output_rate(self) -> int:
        """PCM16 rate of the agent audio the provider emits."""
        return self.protocol.output_rate

    @property
    def name(self) -> str:
        """Short provider name."""
        return self.protocol.name

    @abc.abstractmethod
    async def connect(self) -> None:
        """Dial the endpoint and send the session configuration.

        Raises:
            ProviderError: the endpoint refused or could not be reached (message names
                the endpoint host, never the key).
        """

    @abc.abstractmethod
    async def send(self, messages: list[Outgoing]) -> None:
        """Send messages produced by :attr:`protocol`."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Event]:
        """Events as they arrive (including :class:`~app.events.ClientMessageSent` for
        what was sent, and a final :class:`~app.events.ConnectionState` on close).
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the session; idempotent."""

    async def send_audio(self, pcm: bytes) -> None:
        """Send caller audio (PCM16 mono at :attr:`input_rate`)."""
        await self.send(self.protocol.audio(pcm))

    async def send_tool_result(self, call_id: str, name: str, output: str) -> None:
        """Return a tool result and let the agent go on."""
        await self.send(self.protocol.tool_result(call_id, name, output))

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Tell the server how much of ``item_id`` was played (no-op where unsupported)."""
        await self.send(self.protocol.truncate(item_id, audio_end_ms))
