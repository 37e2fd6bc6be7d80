"""Protocol oracles: validate Gemini Live wire JSON against the official SDK models.

``google.genai.types.LiveClientMessage`` / ``LiveServerMessage`` (google-genai 3.6.1) take
camelCase aliases and forbid unknown fields (``extra='forbid'``), so a misspelt or made-up
field fails here, which is the point (docs/protocols.md#gemini-sdk-types-and-local-testing).

One known gap in the SDK model: ``LiveClientSetup`` lacks ``realtimeInputConfig``, although
the SDK's own converter sends it (``_live_converters.py``: ``['setup',
'realtimeInputConfig']``) and the API documents it (``BidiGenerateContentSetup``). The
client oracle therefore checks that one field on its own against
``types.RealtimeInputConfig`` and the rest of the message against ``LiveClientMessage``.
"""

from __future__ import annotations

import copy
from typing import Any

from google.genai import types
from pydantic import ValidationError


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']} [{e['type']}]"
        for e in exc.errors()
    )


def _require_object(msg: Any, kind: str) -> None:
    if not isinstance(msg, dict) or not msg:
        raise AssertionError(f"a Gemini {kind} message must be a non-empty JSON object")


def validate_gemini_client(msg: dict[str, Any]) -> None:
    """Assert ``msg`` is a valid ``BidiGenerateContentClientMessage`` (camelCase JSON).

    Exactly one of ``setup``, ``clientContent``, ``realtimeInput``, ``toolResponse`` is
    required (ai.google.dev/api/live), and a ``realtimeInput`` carries exactly one input
    (the SDK's ``send_realtime_input``: "Only one argument can be set").

    Raises:
        AssertionError: naming every pydantic error.
    """
    _require_object(msg, "client")
    body = copy.deepcopy(msg)
    setup = body.get("setup")
    if isinstance(setup, dict) and "realtimeInputConfig" in setup:
        ric = setup.pop("realtimeInputConfig")
        try:
            types.RealtimeInputConfig.model_validate(ric)
        except ValidationError as exc:
            raise AssertionError(
                f"not a valid Gemini setup.realtimeInputConfig: {_errors(exc)}"
            ) from None
    try:
        model = types.LiveClientMessage.model_validate(body)
    except ValidationError as exc:
        raise AssertionError(f"not a valid Gemini client message: {_errors(exc)}") from None
    present = [name for name in type(model).model_fields if getattr(model, name) is not None]
    if len(present) != 1:
        raise AssertionError(f"a Gemini client message carries exactly one field, got {present}")
    if model.realtime_input is not None:
        inputs = [
            n
            for n in type(model.realtime_input).model_fields
            if getattr(model.realtime_input, n) is not None
        ]
        if len(inputs) != 1:
            raise AssertionError(f"realtimeInput carries exactly one input, got {inputs}")


def validate_gemini_server(msg: dict[str, Any]) -> None:
    """Assert ``msg`` is a valid ``BidiGenerateContentServerMessage`` (camelCase JSON).

    Raises:
        AssertionError: naming every pydantic error.
    """
    _require_object(msg, "server")
    try:
        types.LiveServerMessage.model_validate(msg)
    except ValidationError as exc:
        raise AssertionError(f"not a valid Gemini server message: {_errors(exc)}") from None
