"""Our side of the conversation as Gemini content: a tool's result as a
``FunctionResponse`` and finished turns replayed as ``clientContent.turns``.

Pure translations; :class:`~app.providers.gemini.protocol.GeminiProtocol` decides when
to send them (and which call ids are the server's to echo).
"""

from __future__ import annotations

import json
from typing import Any

from app.providers.base import HistoryItem


def function_response(call_id: str | None, name: str, output: str) -> dict[str, Any]:
    """One ``FunctionResponse`` for a tool's ``output`` (JSON text, or plain text).

    ``output`` of the form ``{"error": …}`` is sent as ``response.error``; any other JSON
    (or text) as ``response.output``. The ``id`` is left out when ``call_id`` is empty or
    ``None`` (a call the server sent without one).
    """
    try:
        value: Any = json.loads(output)
    except (ValueError, RecursionError):
        value = output
    if isinstance(value, dict) and set(value) == {"error"}:
        response = {"error": value["error"]}
    else:
        response = {"output": value}
    fr: dict[str, Any] = {"name": name, "response": response}
    if call_id:
        fr = {"id": call_id, **fr}
    return fr


def history_turns(history: list[HistoryItem]) -> list[dict[str, Any]]:
    """The finished pieces of a conversation as ``Content`` turns, oldest first: user and
    assistant text, tool calls as ``functionCall`` and tool results as
    ``functionResponse`` (empty texts are left out)."""
    turns: list[dict[str, Any]] = []
    for h in history:
        if h.role == "user" and h.text:
            turns.append({"role": "user", "parts": [{"text": h.text}]})
        elif h.role == "assistant" and h.text:
            turns.append({"role": "model", "parts": [{"text": h.text}]})
        elif h.role == "tool_call":
            try:
                args = json.loads(h.arguments or "{}")
            except ValueError:
                args = {}
            call = {"id": h.call_id, "name": h.name, "args": args}
            turns.append({"role": "model", "parts": [{"functionCall": call}]})
        elif h.role == "tool_result":
            try:
                value: Any = json.loads(h.text)
            except ValueError:
                value = h.text
            resp = {"id": h.call_id, "name": h.name, "response": {"output": value}}
            turns.append({"role": "user", "parts": [{"functionResponse": resp}]})
    return turns
