"""Response playout: pacing and streaming one response of the simulated agent.

:func:`play_response` is the task body of one :class:`app.sim.response.ResponseRun`: it
waits for the response before it, creates the response at its scripted time, streams the
reply audio in ``chunk_ms`` pieces paced at ``realtime_factor`` from ``first_audio_ms``
after creation (each followed by the transcript words due by then), sends the tool call,
and closes the response; a cancel (barge-in, ``response.cancel``) cuts it at the next
chunk. Every deadline is on the conversation's injected clock. Runs on the server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING

from app.sim.response import OUT_RATE, ResponseRun, new_id, word_deltas
from app.sim.waits import wait_or_cancel

if TYPE_CHECKING:
    from app.sim.engine import Conversation


async def play_response(conv: Conversation, run: ResponseRun, created_at_ns: int,
                        prev: asyncio.Task[None] | None) -> None:
    """Play ``run`` on ``conv``: after ``prev`` ends, create it at ``created_at_ns``, speak
    it paced as scripted, then its tool call, then close it (a cancel cuts it short)."""
    if prev is not None and not prev.done():
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(prev)
    conv.active = run
    if await wait_or_cancel(conv.clock, created_at_ns, run.cancel):
        run.status = "cancelled"  # never created: the caller spoke before it began
        conv.truth.record("response.skipped", run.turn, response_id=run.response_id,
                          reason=run.reason)
        return
    run.prev_item_id = conv.last_item_id
    t_sent = await conv.dialect.send_response_created(run)
    t0 = conv.clock.now_ns() if t_sent is None else t_sent
    run.created = True
    if t_sent is not None:
        conv.mark_created(run, t_sent)
    cancelled = False
    if run.text:
        cancelled = await _speak(conv, run, t0)
    if run.tool is not None and not cancelled:
        t = await conv.dialect.send_function_call(run)
        conv.truth.record("function_call_arguments.done", run.turn, t,
                          response_id=run.response_id, call_id=run.call_id,
                          name=run.tool.name, arguments=dict(run.tool.arguments))
        conv.awaiting_tool[run.call_id] = run
        conv.state.awaiting_tool[run.call_id] = run
        conv.state.delivered.add(run.turn)
    run.status = "cancelled" if (cancelled or run.cancel.is_set()) else "completed"
    t_done = await conv.dialect.send_response_done(run)
    if t_done is not None:
        conv.truth.record("response.done", run.turn, t_done, response_id=run.response_id,
                          status=run.status, reason=run.reason)
    if conv.active is run:
        conv.active = None


async def _speak(conv: Conversation, run: ResponseRun, t_created: int) -> bool:
    """Stream the spoken part; return True if it was cut by a cancel."""
    run.message_item_id = new_id("item")
    conv.last_item_id = run.message_item_id
    await conv.dialect.send_message_start(run)
    conv.item_audio_ms[run.message_item_id] = 0.0
    chunk = max(1, int(round(run.timing.chunk_ms * OUT_RATE / 1000)))
    n_chunks = max(1, math.ceil(len(run.audio) / chunk))
    words = word_deltas(run.text)
    words_sent = 0
    first_ns = t_created + int(run.first_audio_ms * 1e6)
    rf = run.timing.realtime_factor
    step_ns = 0 if rf <= 0 else int(run.timing.chunk_ms * 1e6 / rf)
    cancelled = False
    for i in range(n_chunks):
        if await wait_or_cancel(conv.clock, first_ns + i * step_ns, run.cancel):
            cancelled = True
            break
        due = math.ceil((i + 1) * len(words) / n_chunks)
        while words_sent < due:
            await conv.dialect.send_text_delta(run, words[words_sent])
            run.transcript_sent += words[words_sent]
            words_sent += 1
        piece = run.audio[i * chunk : (i + 1) * chunk]
        t = await conv.dialect.send_audio(run, piece)
        if i == 0:
            conv.truth.record("first_audio", run.turn, t, response_id=run.response_id,
                              item_id=run.message_item_id)
            conv.state.delivered.add(run.turn)
        run.sent_samples += len(piece)
        conv.item_audio_ms[run.message_item_id] = run.sent_ms
    if not cancelled and len(run.audio) == 0:
        for w in words:
            await conv.dialect.send_text_delta(run, w)
            run.transcript_sent += w
    await conv.dialect.send_message_end(run)
    conv.truth.record("audio_sent", run.turn, response_id=run.response_id,
                      item_id=run.message_item_id, ms=run.sent_ms, total_ms=run.total_ms,
                      cancelled=cancelled)
    return cancelled
