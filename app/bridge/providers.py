"""Choosing and building the agent side of a call: a real provider or the simulator.

:func:`plan_provider` resolves everything that can fail on bad input (unknown provider,
missing key, unreadable scenario) *before* any I/O, so the CLI can exit 2 with one line.
:meth:`ProviderPlan.started` has :mod:`app.wiring` start the built-in simulator when the
plan asks for it, and :func:`make_provider` builds the provider connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.clock import Clock
from app.errors import ConfigError, MissingKeyError
from app.profile import RESOURCES, Profile
from app.providers.base import Provider
from app.providers.gemini.protocol import DEFAULT_MODEL as GEMINI_DEFAULT_MODEL
from app.providers.keyhost import KeyDestination, check_key_destination, url_host
from app.secrets import ENV_VARS, get_secret

PROVIDER_CHOICES = ("sim", "openai", "gemini", "twilio-ws")
#: Kinds whose endpoint is a team's own server, dialled with no API key (the URL or the
#: stream's custom parameters may carry a token instead).
KEYLESS_KINDS = ("twilio-ws",)
#: Wire protocols that report transcripts of both sides and tool calls. A keyless stream
#: (``twilio-ws``) carries audio, marks and clears only (docs/twilio.md).
TRANSCRIBING_KINDS = frozenset({"openai", "gemini"})
KEY_NAMES = {
    "openai": ("openai_api_key", ENV_VARS["openai_api_key"]),
    "gemini": ("gemini_api_key", ENV_VARS["gemini_api_key"]),
}
DEFAULT_MODELS = {
    "openai": "gpt-realtime",
    "gemini": GEMINI_DEFAULT_MODEL,
}
DEFAULT_SCENARIO = RESOURCES / "scenarios" / "demo.yaml"
SIM_KEY = "sim-local-key"


@dataclass(slots=True)
class ProviderPlan:
    """Where the agent side of a call goes.

    Attributes:
        kind: wire protocol, ``openai`` or ``gemini``.
        label: what the summary calls it: ``sim`` for the built-in simulator, else ``kind``.
        url: the endpoint (``None``: the vendor default; filled in when the sim starts).
        key: the API key (never logged; redacted from everything written).
        ca_file: extra CA bundle for ``wss://`` endpoints.
        scenario: simulator scenario (only when ``label == "sim"``).
        truth_path: where the simulator writes its ground-truth log (optional).
        key_destination: which host receives the key (real providers; checked by
            :func:`app.providers.keyhost.check_key_destination`).
        params: custom parameters of a ``twilio-ws`` stream (``--param k=v``).
        secrets: credentials that are not the key (a token in a ``twilio-ws`` URL or
            parameter): redacted from everything written, like the key.
    """

    kind: str
    label: str
    url: str | None = None
    key: str | None = None
    ca_file: str | None = None
    scenario: Any = None
    truth_path: str | None = None
    key_destination: KeyDestination | None = None
    params: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    sim: Any = field(default=None, repr=False)

    @contextlib.contextmanager
    def started(self) -> Iterator[ProviderPlan]:
        """The plan for one call: with the built-in simulator started for the call's
        lifetime when the plan needs one. Yields a copy, so one plan can serve calls that
        run at the same time (each gets its own simulator)."""
        if self.label != "sim" or self.sim is not None:  # not a sim, or one already up
            yield self
            return
        from app.wiring import simulator_started  # the simulator is built outside the bridge

        with simulator_started(self) as plan:
            yield plan


@contextlib.asynccontextmanager
async def started_off_loop(plan: ProviderPlan) -> AsyncIterator[ProviderPlan]:
    """:meth:`ProviderPlan.started` for a coroutine: starting and stopping the built-in
    simulator (speech synthesis, a thread join, closing its connections) run on a worker
    thread, so they never stall other calls on the same loop (SIP answering several
    calls, a suite running cases in parallel)."""
    context = plan.started()
    ready = await asyncio.to_thread(context.__enter__)
    try:
        yield ready
    finally:
        await asyncio.to_thread(context.__exit__, None, None, None)


def default_provider(profile: Profile) -> str:
    """The provider a command uses when none is named: the profile's own when it is a
    keyless stream (``twilio-ws``: the team's agent, which the simulator cannot stand
    in for), else ``sim``."""
    return profile.provider if profile.provider in KEYLESS_KINDS else "sim"


def plan_provider(
    provider: str | None,
    profile: Profile,
    url: str | None = None,
    ca_file: str | None = None,
    scenario: str | None = None,
    truth_path: str | None = None,
    url_named: bool = True,
    confirmed_hosts: Collection[str] = (),
    params: Mapping[str, str] | None = None,
) -> tuple[ProviderPlan, Profile]:
    """Resolve the provider choice, key and scenario; return the plan and the profile
    adjusted to the chosen wire protocol.

    Args:
        provider: ``sim``, ``openai``, ``gemini`` or ``twilio-ws``; ``None``: see
            :func:`default_provider`.
        profile: the agent profile (its provider and model are adjusted to ``provider``).
        url: the endpoint the user gave (``--url``), which wins over ``profile.url``.
        ca_file: extra CA bundle for ``wss://``.
        scenario: the simulator's scenario file (``sim`` only).
        truth_path: where the simulator logs its ground truth (``sim`` only).
        url_named: ``url`` was named by the user on the command line, so its host may
            receive the key (the app passes False and confirms hosts instead).
        confirmed_hosts: hosts the user confirmed in the app as trusted with the key.
        params: ``twilio-ws`` only: the stream's custom parameters (default: the
            profile's ``params``; given ones win name by name).

    Raises:
        ConfigError: unknown provider, unreadable scenario or CA file, or a key that
            would travel in clear text off loopback.
        UnconfirmedKeyHostError: the key would go to a host that is not the vendor's
            own and that the user did not name (see :mod:`app.providers.keyhost`).
        MissingKeyError: a real provider was chosen and no key is configured.
    """
    if provider is None:
        provider = default_provider(profile)
    if provider not in PROVIDER_CHOICES:
        raise ConfigError(f"unknown provider {provider!r} (choose {', '.join(PROVIDER_CHOICES)})")
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError("CA file not found", ca_file)
    if provider == "sim":
        from app.sim.scenario import load_scenario

        sc = load_scenario(scenario or str(DEFAULT_SCENARIO))
        if url:
            raise ConfigError(
                "--url points at a real endpoint; use it with --provider openai|gemini"
            )
        if profile.provider in KEYLESS_KINDS:  # the simulator speaks a realtime API
            profile = dataclasses.replace(
                profile, provider="openai", model=DEFAULT_MODELS["openai"], url="", params={}
            )
        return ProviderPlan(
            profile.provider, "sim", None, SIM_KEY, ca_file, sc, truth_path
        ), profile
    if scenario:
        raise ConfigError("--scenario only applies to --provider sim")
    if provider in KEYLESS_KINDS:
        merged = {**(profile.params if profile.provider == provider else {}), **(params or {})}
        return _plan_stream(provider, profile, url, ca_file, merged), profile
    if params:
        raise ConfigError("--param only applies to --provider twilio-ws")
    if profile.provider != provider:
        model = profile.model if profile.model != DEFAULT_MODELS.get(profile.provider) else None
        profile = dataclasses.replace(
            profile, provider=provider, model=model or DEFAULT_MODELS[provider], params={}
        )
    name, env_vars = KEY_NAMES[provider]
    key = get_secret(name, env_vars)
    if not key:
        raise MissingKeyError(
            f"no {provider} API key: store one with `voiceprobe keys set {provider}` "
            f"or set {' or '.join(env_vars)}"
        )
    target = url or profile.url or None
    named = [*confirmed_hosts, *([h] if url_named and (h := url_host(url)) else [])]
    source = "--url" if url else f"profile {profile.name or '(unnamed)'}"
    dest = check_key_destination(provider, endpoint_url(provider, profile, target), named, source)
    return ProviderPlan(provider, provider, target, key, ca_file, key_destination=dest), profile


def _plan_stream(
    provider: str, profile: Profile, url: str | None, ca_file: str | None,
    params: Mapping[str, str],
) -> ProviderPlan:
    """The plan of a keyless stream (``twilio-ws``): the agent's URL is required; no key
    goes anywhere, so the key-host rule does not apply, but a token in the URL or a
    parameter must not travel in clear text off loopback."""
    from app.providers.twilio.connection import check_stream_target, stream_secrets

    target = url or profile.url or None
    if not target:
        raise ConfigError(f"--provider {provider} needs --url ws[s]://HOST/PATH of the agent")
    check_stream_target(target, params)
    return ProviderPlan(
        provider, provider, target, None, ca_file, params=dict(params),
        secrets=tuple(stream_secrets(target, params)),
    )


def endpoint_url(provider: str, profile: Profile, url: str | None) -> str:
    """The WebSocket URL a real provider dials for ``url`` (``None``: the vendor's
    default endpoint).

    Raises:
        ConfigError: ``url`` is not usable.
    """
    if provider == "gemini":
        from app.providers.gemini.connection import gemini_url

        return gemini_url(url)
    from app.providers.openai.connection import openai_url

    return openai_url(url, profile.model)


def make_provider(
    profile: Profile,
    plan: ProviderPlan,
    clock: Clock,
    resumption_handle: str | None = None,
    id_prefix: str = "",
) -> Provider:
    """Build the (unconnected) provider session for a started plan; ``resumption_handle``
    resumes a Gemini session."""
    if plan.kind == "twilio-ws":
        from app.providers.twilio.connection import connect_twilio

        return connect_twilio(plan.url or "", plan.params, clock, ca_file=plan.ca_file)
    if plan.kind == "gemini":
        from app.providers.gemini.connection import connect_gemini

        return connect_gemini(
            profile,
            plan.key or "",
            clock,
            url=plan.url,
            ca_file=plan.ca_file,
            resumption_handle=resumption_handle,
            id_prefix=id_prefix,
        )
    from app.providers.openai.connection import connect_openai

    return connect_openai(profile, plan.key or "", clock, url=plan.url, ca_file=plan.ca_file)
