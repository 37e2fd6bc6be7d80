"""What the desktop app asks for when it places a call: one typed, frozen request.

The window builds a :class:`CallRequest` from its pickers; the composition root (a demo,
the saved settings) adds its own choices as a :data:`CallOverrides` mapping applied with
:func:`with_overrides`. :class:`app.bridge.controller.CallController` consumes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypedDict

from app.audio.port import CallerPort
from app.profile import Profile


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call the app is asked to place.

    Attributes:
        profile: the agent profile.
        provider: ``auto`` (the profile's provider when its key or ``url`` is set, else
            the simulator), ``sim``, ``openai``, ``gemini`` or a keyless stream kind.
        input_device: the microphone (``None``: the system default).
        output_device: the speaker (``None``: the system default).
        mute: start with the caller muted.
        push_to_talk: the caller is heard only while the talk key is held.
        half_duplex: mute the caller while agent audio plays.
        scenario: the simulator's scenario file (used only by ``sim``).
        url: the provider endpoint (not used by ``sim``).
        confirmed_hosts: hosts the user trusted with the API key.
        truth: where the simulator writes its ground truth (used only by ``sim``).
        source: a description of the caller side, stored with the session.
        record: write the call's audio.
        tags: ``k=v`` session tags (already checked).
        aec: the profile's mic-path processing (echo cancellation); ``False``: the bare
            microphone, to compare the echo.
        port: a ready caller port (a WAV file for demos) instead of the sound devices.
    """

    profile: Profile
    provider: str = "auto"
    input_device: int | str | None = None
    output_device: int | str | None = None
    mute: bool = False
    push_to_talk: bool = False
    half_duplex: bool = False
    scenario: str | None = None
    url: str | None = None
    confirmed_hosts: tuple[str, ...] = ()
    truth: str | None = None
    source: str = "mic"
    record: bool = True
    tags: tuple[str, ...] = ()
    aec: bool = True
    port: CallerPort | None = None


class CallOverrides(TypedDict, total=False):
    """Fields set on top of a window's :class:`CallRequest` (same names and types)."""

    profile: Profile
    provider: str
    input_device: int | str | None
    output_device: int | str | None
    mute: bool
    push_to_talk: bool
    half_duplex: bool
    scenario: str | None
    url: str | None
    confirmed_hosts: tuple[str, ...]
    truth: str | None
    source: str
    record: bool
    tags: tuple[str, ...]
    aec: bool
    port: CallerPort | None


def with_overrides(request: CallRequest, overrides: CallOverrides) -> CallRequest:
    """``request`` with the fields in ``overrides`` replaced (a new request)."""
    return dataclasses.replace(request, **overrides)
