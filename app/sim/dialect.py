"""The wire dialect seam of the simulator: what the runner needs a dialect to render.

A dialect (:class:`app.sim.openai_dialect.OpenAIConversation`,
:class:`app.sim.gemini_dialect.GeminiConversation`) parses client messages into calls of
the runner (:class:`app.sim.engine.Conversation`) and renders the runner's decisions as
wire messages through :meth:`app.sim.engine.Conversation.emit`. It implements
:class:`Dialect`; mypy checks that where the dialect hands itself to the runner.

Every ``send_*`` hook returns the clock stamp taken just before its wire message went out
(or, for a dialect with no such message, the time the decision was taken), and raises
:class:`app.sim.engine.SessionClosed` when the connection is gone. Hooks run on the
server's loop thread and must not block.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from app.sim.response import ResponseRun


class Dialect(Protocol):
    """The hooks a wire dialect implements (see the module docstring)."""

    def event_type(self, msg: dict[str, Any]) -> str:
        """Name of an outgoing message for fault matching (the scenario's ``at``)."""
        ...

    async def handle(self, text: str, t_recv_ns: int) -> None:
        """Handle one client message (text) received at ``t_recv_ns``."""
        ...

    async def send_opening(self) -> None:
        """Send what the service sends on connect (e.g. ``session.created``)."""
        ...

    async def send_error(
        self, turn: int | None, err_type: str, code: str | None, message: str,
        param: str | None = None, event_id: str | None = None,
    ) -> int:
        """Report an error to the client (Gemini: close the socket with a code)."""
        ...

    async def send_speech_started(self, turn: int, item_id: str, audio_start_ms: int) -> int:
        """The caller's speech started (VAD or client-marked)."""
        ...

    async def send_speech_stopped(self, turn: int, item_id: str, audio_end_ms: int) -> int:
        """The caller's speech stopped."""
        ...

    async def send_user_item(
        self, turn: int, item_id: str, prev_id: str | None, audio_ms: float
    ) -> int:
        """The caller's audio was committed as a user item."""
        ...

    async def send_input_transcript(self, turn: int, item_id: str, text: str) -> int:
        """The transcript of the caller's item."""
        ...

    async def send_response_created(self, run: ResponseRun) -> int | None:
        """Announce a response; None if the dialect has no such message (Gemini): the
        response then counts as created at its first message (see
        :meth:`app.sim.engine.Conversation.mark_created`).
        """
        ...

    async def send_message_start(self, run: ResponseRun) -> int:
        """Open the spoken part of a response."""
        ...

    async def send_audio(self, run: ResponseRun, chunk: NDArray[np.int16]) -> int:
        """Send one chunk of agent audio (24 kHz PCM16)."""
        ...

    async def send_text_delta(self, run: ResponseRun, delta: str) -> int:
        """Send one word of the agent's transcript."""
        ...

    async def send_message_end(self, run: ResponseRun) -> int:
        """Close the spoken part (completed, or cut by a cancel)."""
        ...

    async def send_function_call(self, run: ResponseRun) -> int:
        """Send the function-call item; return the stamp of its arguments-done event."""
        ...

    async def send_response_done(self, run: ResponseRun) -> int | None:
        """Close a response; None if nothing was sent (then no ``response.done`` record)."""
        ...

    async def send_go_away(self, turn: int | None, time_left_ms: float) -> int | None:
        """Warn that the connection closes in ``time_left_ms`` (``go_away`` fault); None
        when the dialect has no such message (OpenAI).
        """
        ...
