"""The OpenAI Realtime **GA** wire dialect of the simulator.

:class:`OpenAIConversation` parses client events (``session.update``,
``input_audio_buffer.append|commit|clear``, ``conversation.item.create|truncate|delete``,
``response.create|cancel``) into engine calls and renders the engine's hooks as GA server
events (``session.created|updated``, ``input_audio_buffer.speech_started|stopped|committed``,
``conversation.item.added|done``, ``conversation.item.input_audio_transcription.*``,
``response.created``, ``response.output_item.*``, ``response.content_part.*``,
``response.output_audio.*``, ``response.output_audio_transcript.*``,
``response.function_call_arguments.*``, ``response.done``, ``conversation.item.truncated``,
``error``). Field names follow ``openai.types.realtime`` (SDK 3.57); every event it sends
validates against ``RealtimeServerEvent``. Beta names are never sent; a ``session.update``
without ``session.type`` or with unknown keys is rejected like the GA service does.

Bad client input never raises: it is answered with an ``error`` event of type
``invalid_request_error`` and the session stays open.

Token usage in ``response.done`` (``RealtimeResponseUsage``) follows how the service bills
(developers.openai.com/api/docs/guides/realtime-costs): every response is billed for the
whole conversation so far as input, and what earlier responses said becomes input too.
The simulator's rule, deterministic from what it received and sent:

- input audio = caller audio committed so far at :data:`USER_AUDIO_TOKENS_PER_S` (1 token
  per 100 ms), plus the output audio tokens of every earlier response of the connection;
- input text = the session instructions, the tool definitions and every text item the
  client added (tool results, replayed messages), at :data:`app.sim.tokens.CHARS_PER_TEXT_TOKEN`
  characters a token (rounded up; the simulator has no tokenizer), plus the output text
  tokens of earlier responses;
- cached = the previous response's input (text and audio), which is a prefix of this one;
- output audio = audio sent at :data:`ASSISTANT_AUDIO_TOKENS_PER_S` (1 token per 50 ms,
  rounded down); output text = the transcript sent plus the function-call arguments, at
  :data:`app.sim.tokens.CHARS_PER_TEXT_TOKEN` characters a token.

Each usage sent is also logged in the ground truth as a ``usage`` record (``response_id``,
``usage``: the object as sent).

Runs on the server's loop thread (see :mod:`app.sim.engine`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.g711 import alaw_encode, ulaw_encode
from app.audio.pcm import int16_to_bytes
from app.audio.resample import StreamResampler
from app.sim.audio_input import InputConfig
from app.sim.engine import Conversation
from app.sim.openai_session import BadRequest, codec_of, default_session, merged_session
from app.sim.response import OUT_RATE, ResponseRun, new_id
from app.sim.tokens import text_tokens

#: Caller (user) audio tokens per second of audio: 1 per 100 ms (realtime-costs guide).
USER_AUDIO_TOKENS_PER_S = 10
#: Agent (assistant) audio tokens per second of audio: 1 per 50 ms (realtime-costs guide).
ASSISTANT_AUDIO_TOKENS_PER_S = 20


class OpenAIConversation(Conversation):
    """One OpenAI Realtime GA connection of the simulator (see the module docstring).

    Takes the arguments of :class:`app.sim.engine.Conversation`; ``model`` (the
    ``?model=`` of the URL) is echoed in the session.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialect = self
        self.session = default_session(self.model or "gpt-realtime")
        self._user_audio_ms: dict[str, float] = {}
        self._conversation_id = new_id("conv")
        # usage: what earlier responses added to the context, and the last input (cached)
        self._ctx_item_text = 0
        self._ctx_out_text = 0
        self._ctx_out_audio = 0
        self._last_input: tuple[int, int] = (0, 0)

    # --- helpers -------------------------------------------------------------------------

    async def _send(self, turn: int | None, type_: str, **fields: Any) -> int:
        msg: dict[str, Any] = {"type": type_, "event_id": new_id("event")}
        msg.update(fields)
        return await self.emit(msg, turn)

    async def send_error(
        self, turn: int | None, err_type: str, code: str | None, message: str,
        param: str | None = None, event_id: str | None = None,
    ) -> int:
        self.truth.record("error_sent", turn, code=code, message=message)
        err = {"type": err_type, "code": code, "message": message, "param": param,
               "event_id": event_id}
        return await self._send(turn, "error", error=err)

    def _out_codec(self) -> str:
        return codec_of(self.session["audio"]["output"].get("format"))

    # --- client events ---------------------------------------------------------------------

    async def handle(self, text: str, t_recv_ns: int) -> None:
        event_id: str | None = None
        try:
            try:
                msg = json.loads(text)
            except (ValueError, RecursionError):
                raise BadRequest("The server could not parse your JSON message.",
                                 "invalid_json") from None
            if not isinstance(msg, dict):
                raise BadRequest("Expected a JSON object.", "invalid_json")
            eid = msg.get("event_id")
            event_id = eid if isinstance(eid, str) else None
            kind = msg.get("type")
            if not isinstance(kind, str):
                raise BadRequest("Missing required parameter: 'type'.",
                                 "missing_required_parameter", "type")
            handler = _HANDLERS.get(kind)
            if handler is None:
                raise BadRequest(f"Invalid value: '{kind[:80]}'. Unsupported event type.",
                                 "invalid_value", "type")
            await handler(self, msg, t_recv_ns)
        except BadRequest as e:
            await self.send_error(self.peek_turn(), "invalid_request_error", e.code, str(e),
                                  e.param, event_id)

    async def _on_session_update(self, msg: dict[str, Any], _t: int) -> None:
        new = merged_session(self.session, msg.get("session"))
        self.session = new
        inp = new["audio"]["input"]
        td = inp.get("turn_detection")
        self.configure(InputConfig(
            codec=codec_of(inp.get("format")),
            vad=td is not None,
            silence_ms=int((td or {}).get("silence_duration_ms") or 500),
            prefix_ms=int((td or {}).get("prefix_padding_ms") or 300),
            create_response=bool((td or {}).get("create_response", True)),
            interrupt_response=bool((td or {}).get("interrupt_response", True)),
        ))
        self.truth.record("client_event", None, type="session.update",
                          turn_detection=td, codec=self.cfg.codec)
        await self._send(None, "session.updated", session=self.session)
        self.start_greeting()

    async def _on_append(self, msg: dict[str, Any], t_recv: int) -> None:
        audio = msg.get("audio")
        if not isinstance(audio, str):
            raise BadRequest("Missing required parameter: 'audio'.",
                             "missing_required_parameter", "audio")
        try:
            payload = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("Invalid 'audio'. Expected base64-encoded audio bytes.",
                             "invalid_value", "audio") from None
        await self.on_audio(payload, t_recv)

    async def _on_commit(self, _msg: dict[str, Any], _t: int) -> None:
        self.truth.record("client_event", self.peek_turn(), type="input_audio_buffer.commit")
        ms = self.audio.uncommitted_s * 1000.0
        if not await self.request_commit():
            raise BadRequest(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )

    async def _on_clear(self, _msg: dict[str, Any], _t: int) -> None:
        self.truth.record("client_event", self.peek_turn(), type="input_audio_buffer.clear")
        self.request_clear()
        await self._send(self.peek_turn(), "input_audio_buffer.cleared")

    async def _on_item_create(self, msg: dict[str, Any], _t: int) -> None:
        item = msg.get("item")
        if not isinstance(item, dict) or item.get("type") not in (
            "message", "function_call", "function_call_output"
        ):
            raise BadRequest("Invalid 'item': expected a message, function_call or "
                             "function_call_output item.", "invalid_value", "item.type")
        item = copy.deepcopy(item)
        item.setdefault("id", new_id("item"))
        item["object"] = "realtime.item"
        item["status"] = "completed"
        turn = self.peek_turn()
        if item["type"] == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                raise BadRequest("Missing required parameter: 'item.call_id' or 'item.output'.",
                                 "missing_required_parameter", "item.call_id")
            self.on_tool_output(item["call_id"])
        # Billed as input text by every later response.
        self._ctx_item_text += sum(text_tokens(v) for v in _item_texts(item))
        if self.index > 1:
            content = item.get("content")
            texts = [c.get("text") or c.get("transcript") for c in content or []
                     if isinstance(c, dict)] if isinstance(content, list) else []
            self.truth.record("replayed_item", turn, item_type=item["type"],
                              role=item.get("role"), call_id=item.get("call_id"),
                              text=" ".join(t for t in texts if isinstance(t, str)))
        prev = msg.get("previous_item_id")
        prev = prev if isinstance(prev, str) else self.last_item_id
        self.last_item_id = item["id"]
        await self._send(turn, "conversation.item.added", item=item, previous_item_id=prev)
        await self._send(turn, "conversation.item.done", item=item, previous_item_id=prev)

    async def _on_item_delete(self, msg: dict[str, Any], _t: int) -> None:
        item_id = msg.get("item_id")
        if not isinstance(item_id, str):
            raise BadRequest("Missing required parameter: 'item_id'.",
                             "missing_required_parameter", "item_id")
        await self._send(self.peek_turn(), "conversation.item.deleted", item_id=item_id)

    async def _on_truncate(self, msg: dict[str, Any], _t: int) -> None:
        item_id, ci, end = msg.get("item_id"), msg.get("content_index", 0), msg.get("audio_end_ms")
        if not isinstance(item_id, str) or isinstance(end, bool) or not isinstance(end, int):
            raise BadRequest("Missing required parameter: 'item_id' or 'audio_end_ms'.",
                             "missing_required_parameter", "audio_end_ms")
        if isinstance(ci, bool) or not isinstance(ci, int):
            raise BadRequest("Invalid type for 'content_index'.", "invalid_type",
                             "content_index")
        ok, sent = self.truncate(item_id, end)
        turn = self.peek_turn()
        if ok:
            await self._send(turn, "conversation.item.truncated", item_id=item_id,
                             content_index=ci, audio_end_ms=end)
        elif sent is None:
            raise BadRequest("Only model output audio messages can be truncated",
                             "unsupported_content_type", "item_id")
        else:
            raise BadRequest(f"Audio content of {int(sent)}ms is already shorter than "
                             f"{end}ms", "invalid_value", "audio_end_ms")

    async def _on_response_create(self, _msg: dict[str, Any], _t: int) -> None:
        self.truth.record("client_event", self.peek_turn(), type="response.create")
        problem = self.request_response()
        if problem is not None:
            raise BadRequest(problem, "conversation_already_has_active_response")

    async def _on_response_cancel(self, msg: dict[str, Any], _t: int) -> None:
        self.truth.record("client_event", self.peek_turn(), type="response.cancel")
        run = self.active
        rid = msg.get("response_id")
        if run is not None and isinstance(rid, str) and rid != run.response_id:
            run = None
        if not self.cancel_response(run, "client_cancelled"):
            raise BadRequest("Cancellation failed: no active response found",
                             "response_cancel_not_active")

    async def _on_unsupported(self, msg: dict[str, Any], _t: int) -> None:
        raise BadRequest(f"The simulator does not support '{msg.get('type')}'.",
                         "invalid_value", "type")

    # --- engine hooks ----------------------------------------------------------------------

    async def send_opening(self) -> None:
        await self._send(None, "session.created", session=self.session)

    async def send_speech_started(self, turn: int, item_id: str, audio_start_ms: int) -> int:
        return await self._send(turn, "input_audio_buffer.speech_started",
                                audio_start_ms=audio_start_ms, item_id=item_id)

    async def send_speech_stopped(self, turn: int, item_id: str, audio_end_ms: int) -> int:
        return await self._send(turn, "input_audio_buffer.speech_stopped",
                                audio_end_ms=audio_end_ms, item_id=item_id)

    async def send_user_item(
        self, turn: int, item_id: str, prev_id: str | None, audio_ms: float
    ) -> int:
        self._user_audio_ms[item_id] = audio_ms
        t = await self._send(turn, "input_audio_buffer.committed", item_id=item_id,
                             previous_item_id=prev_id)
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user",
                "status": "completed", "content": [{"type": "input_audio", "transcript": None}]}
        await self._send(turn, "conversation.item.added", item=item, previous_item_id=prev_id)
        await self._send(turn, "conversation.item.done", item=item, previous_item_id=prev_id)
        return t

    async def send_input_transcript(self, turn: int, item_id: str, text: str) -> int:
        await self._send(turn, "conversation.item.input_audio_transcription.delta",
                         item_id=item_id, content_index=0, delta=text)
        audio_tokens = int(self._user_audio_ms.get(item_id, 0.0) // 100)
        words = len(text.split())
        usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": words,
                 "total_tokens": audio_tokens + words,
                 "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0}}
        return await self._send(turn, "conversation.item.input_audio_transcription.completed",
                                item_id=item_id, content_index=0, transcript=text, usage=usage)

    def _response(self, run: ResponseRun, status: str) -> dict[str, Any]:
        out = self.session["audio"]["output"]
        resp: dict[str, Any] = {
            "object": "realtime.response", "id": run.response_id, "status": status,
            "status_details": None, "output": [], "conversation_id": self._conversation_id,
            "output_modalities": ["audio"], "max_output_tokens": "inf",
            "audio": {"output": {"format": out.get("format"), "voice": out.get("voice")}},
            "usage": None, "metadata": None,
        }
        if status == "cancelled":
            resp["status_details"] = {"type": "cancelled", "reason": run.reason or "turn_detected"}
        return resp

    def _message_item(self, run: ResponseRun, status: str) -> dict[str, Any]:
        content = [] if status == "in_progress" else [
            {"type": "output_audio", "transcript": run.transcript_sent}
        ]
        return {"id": run.message_item_id, "object": "realtime.item", "type": "message",
                "role": "assistant", "status": status, "content": content}

    def _call_item(self, run: ResponseRun, status: str) -> dict[str, Any]:
        assert run.tool is not None
        args = json.dumps(dict(run.tool.arguments)) if status != "in_progress" else ""
        return {"id": run.fc_item_id, "object": "realtime.item", "type": "function_call",
                "status": status, "call_id": run.call_id, "name": run.tool.name,
                "arguments": args}

    async def send_response_created(self, run: ResponseRun) -> int:
        return await self._send(run.turn, "response.created",
                                response=self._response(run, "in_progress"))

    async def send_message_start(self, run: ResponseRun) -> int:
        item = self._message_item(run, "in_progress")
        t = await self._send(run.turn, "response.output_item.added",
                             response_id=run.response_id, output_index=0, item=item)
        await self._send(run.turn, "conversation.item.added", item=item,
                         previous_item_id=run.prev_item_id)
        await self._send(run.turn, "response.content_part.added", response_id=run.response_id,
                         item_id=run.message_item_id, output_index=0, content_index=0,
                         part={"type": "audio", "transcript": ""})
        codec = self._out_codec()
        run.out_codec = codec
        if codec != "pcm":
            run.out_resampler = StreamResampler(OUT_RATE, 8000)
        return t

    async def send_audio(self, run: ResponseRun, chunk: NDArray[np.int16]) -> int:
        codec = run.out_codec
        if codec == "pcm" or run.out_resampler is None:
            data = int16_to_bytes(chunk)
        else:
            y = run.out_resampler.process(chunk)
            data = ulaw_encode(y) if codec == "pcmu" else alaw_encode(y)
        return await self._send(run.turn, "response.output_audio.delta",
                                response_id=run.response_id, item_id=run.message_item_id,
                                output_index=0, content_index=0,
                                delta=base64.b64encode(data).decode("ascii"))

    async def send_text_delta(self, run: ResponseRun, delta: str) -> int:
        return await self._send(run.turn, "response.output_audio_transcript.delta",
                                response_id=run.response_id, item_id=run.message_item_id,
                                output_index=0, content_index=0, delta=delta)

    async def send_message_end(self, run: ResponseRun) -> int:
        ids = {"response_id": run.response_id, "item_id": run.message_item_id,
               "output_index": 0, "content_index": 0}
        status = "incomplete" if run.cancel.is_set() else "completed"
        t = await self._send(run.turn, "response.output_audio.done", **ids)
        await self._send(run.turn, "response.output_audio_transcript.done",
                         transcript=run.transcript_sent, **ids)
        await self._send(run.turn, "response.content_part.done",
                         part={"type": "audio", "transcript": run.transcript_sent}, **ids)
        item = self._message_item(run, status)
        run.output_items.append(item)
        await self._send(run.turn, "response.output_item.done", response_id=run.response_id,
                         output_index=0, item=item)
        await self._send(run.turn, "conversation.item.done", item=item,
                         previous_item_id=run.prev_item_id)
        return t

    async def send_function_call(self, run: ResponseRun) -> int:
        assert run.tool is not None
        run.fc_item_id = new_id("item")
        index = 1 if run.message_item_id else 0
        prev = self.last_item_id
        self.last_item_id = run.fc_item_id
        added = self._call_item(run, "in_progress")
        await self._send(run.turn, "response.output_item.added", response_id=run.response_id,
                         output_index=index, item=added)
        await self._send(run.turn, "conversation.item.added", item=added, previous_item_id=prev)
        args = json.dumps(dict(run.tool.arguments))
        ids = {"response_id": run.response_id, "item_id": run.fc_item_id,
               "output_index": index, "call_id": run.call_id}
        await self._send(run.turn, "response.function_call_arguments.delta", delta=args, **ids)
        t = await self._send(run.turn, "response.function_call_arguments.done", arguments=args,
                             name=run.tool.name, **ids)
        item = self._call_item(run, "completed")
        run.output_items.append(item)
        await self._send(run.turn, "response.output_item.done", response_id=run.response_id,
                         output_index=index, item=item)
        await self._send(run.turn, "conversation.item.done", item=item, previous_item_id=prev)
        return t

    async def send_response_done(self, run: ResponseRun) -> int:
        resp = self._response(run, run.status)
        resp["output"] = run.output_items
        usage = self._usage(run)
        resp["usage"] = usage
        self.truth.record("usage", run.turn, response_id=run.response_id,
                          usage=copy.deepcopy(usage))
        return await self._send(run.turn, "response.done", response=resp)

    def _usage(self, run: ResponseRun) -> dict[str, Any]:
        """The ``usage`` of ``run`` by the rule in the module docstring."""
        tools = self.session.get("tools") or []
        in_text = (text_tokens(str(self.session.get("instructions") or ""))
                   + (text_tokens(json.dumps(tools)) if tools else 0)
                   + self._ctx_item_text + self._ctx_out_text)
        in_audio = (int(self.input_audio_ms_total * USER_AUDIO_TOKENS_PER_S // 1000)
                    + self._ctx_out_audio)
        cached_text = min(self._last_input[0], in_text)
        cached_audio = min(self._last_input[1], in_audio)
        out_audio = int(run.sent_ms * ASSISTANT_AUDIO_TOKENS_PER_S // 1000)
        out_text = text_tokens(run.transcript_sent) + (
            text_tokens(json.dumps(dict(run.tool.arguments))) if run.tool and run.fc_item_id
            else 0
        )
        self._last_input = (in_text, in_audio)
        self._ctx_out_text += out_text
        self._ctx_out_audio += out_audio
        return {
            "total_tokens": in_audio + in_text + out_audio + out_text,
            "input_tokens": in_audio + in_text,
            "output_tokens": out_audio + out_text,
            "input_token_details": {
                "text_tokens": in_text, "audio_tokens": in_audio, "image_tokens": 0,
                "cached_tokens": cached_text + cached_audio,
                "cached_tokens_details": {"text_tokens": cached_text,
                                          "audio_tokens": cached_audio, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }


def _item_texts(item: dict[str, Any]) -> list[str]:
    """The text a client item puts into the context (tool output, message text)."""
    if item.get("type") == "function_call_output":
        return [item.get("output") or ""]
    content = item.get("content")
    if not isinstance(content, list):
        return []
    return [t for c in content if isinstance(c, dict)
            for t in (c.get("text"), c.get("transcript")) if isinstance(t, str)]


_HANDLERS = {
    "session.update": OpenAIConversation._on_session_update,
    "input_audio_buffer.append": OpenAIConversation._on_append,
    "input_audio_buffer.commit": OpenAIConversation._on_commit,
    "input_audio_buffer.clear": OpenAIConversation._on_clear,
    "conversation.item.create": OpenAIConversation._on_item_create,
    "conversation.item.delete": OpenAIConversation._on_item_delete,
    "conversation.item.truncate": OpenAIConversation._on_truncate,
    "conversation.item.retrieve": OpenAIConversation._on_unsupported,
    "output_audio_buffer.clear": OpenAIConversation._on_unsupported,
    "response.create": OpenAIConversation._on_response_create,
    "response.cancel": OpenAIConversation._on_response_cancel,
}
