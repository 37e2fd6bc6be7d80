"""Protocol oracles: validate wire JSON against the official OpenAI SDK models.

``openai.types.realtime.RealtimeClientEvent`` / ``RealtimeServerEvent`` are unions tagged
with the SDK's own ``PropertyInfo(discriminator=...)``, which pydantic ignores (a bad event
then yields ~130 errors). They are rebuilt here as real discriminated unions on ``type``
so a bad message gives one precise error (docs/protocols.md#validating-against-the-openai-sdk).

The SDK models accept unknown fields (``extra="allow"``); by default these oracles also
reject them anywhere in the message, which is what catches beta names such as
``modalities`` or ``input_audio_format`` inside a GA ``session.update``.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Union, get_args

from pydantic import BaseModel, Field, TypeAdapter, ValidationError


@functools.cache
def _adapter(kind: str) -> TypeAdapter[Any]:
    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

    union = RealtimeClientEvent if kind == "client" else RealtimeServerEvent
    members = get_args(get_args(union)[0])
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")])  # noqa: UP007


def _extras(value: Any, path: str) -> list[str]:
    """Paths of fields the SDK models do not declare, at any depth."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        for k in value.model_extra or {}:
            found.append(f"{path}.{k}" if path else k)
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += _extras(v, f"{path}[{i}]")
    return found


def _validate(kind: str, msg: dict[str, Any] | str, allow_extra: bool) -> Any:
    text = msg if isinstance(msg, str) else json.dumps(msg)
    try:
        model = _adapter(kind).validate_json(text)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']} [{e['type']}]"
            for e in exc.errors()
        )
        raise AssertionError(f"not a valid OpenAI Realtime {kind} event: {errors}") from None
    if not allow_extra:
        extra = _extras(model, "")
        if extra:
            raise AssertionError(
                f"OpenAI Realtime {kind} event {model.type!r} has fields the SDK does not "
                f"know: {', '.join(extra)}"
            )
    return model


def validate_openai_client(msg: dict[str, Any] | str, *, allow_extra: bool = False) -> Any:
    """Assert ``msg`` (dict or JSON text) is a GA client event; return the SDK model."""
    return _validate("client", msg, allow_extra)


def validate_openai_server(msg: dict[str, Any] | str, *, allow_extra: bool = False) -> Any:
    """Assert ``msg`` (dict or JSON text) is a GA server event; return the SDK model."""
    return _validate("server", msg, allow_extra)
