"""The app's typed call request: frozen, defaults as the controller expects, overrides."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pytest

from app.bridge.request import CallOverrides, CallRequest, with_overrides
from app.profile import load_profile


def test_request_is_frozen_with_defaults() -> None:
    request = CallRequest(profile=load_profile(None))
    assert request.provider == "auto" and request.record is True and request.aec is True
    assert request.tags == () and request.confirmed_hosts == () and request.port is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.mute = True  # type: ignore[misc]


def test_overrides_replace_fields_and_name_every_field() -> None:
    request = CallRequest(profile=load_profile(None), provider="openai", mute=True)
    overridden = with_overrides(request, {"provider": "sim", "scenario": "s.yaml"})
    assert (overridden.provider, overridden.scenario, overridden.mute) == ("sim", "s.yaml", True)
    assert request.provider == "openai"  # the original is untouched
    hints = get_type_hints(CallRequest)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(CallRequest)}
    assert get_type_hints(CallOverrides) == fields
    with pytest.raises(TypeError):
        with_overrides(request, {"no_such_option": 1})  # type: ignore[typeddict-unknown-key]
