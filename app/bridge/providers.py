"""Choosing and building the agent side of a call: a real provider or the simulator.

:func:`plan_provider` resolves everything that can fail on bad input (unknown provider,
missing key, unreadable scenario) *before* any I/O, so the CLI can exit 2 with one line.
:meth:`ProviderPlan.started` starts the built-in simulator when the plan asks for it, and
:func:`make_provider` builds the provider connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.clock import Clock
from app.errors import ConfigError, MissingKeyError
from app.profile import RESOURCES, Profile
from app.providers.base import Provider
from app.providers.gemini.protocol import DEFAULT_MODEL as GEMINI_DEFAULT_MODEL
from app.secrets import get_secret

PROVIDER_CHOICES = ("sim", "openai", "gemini")
KEY_NAMES = {
    "openai": ("openai_api_key", ("OPENAI_API_KEY",)),
    "gemini": ("gemini_api_key", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
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
    """

    kind: str
    label: str
    url: str | None = None
    key: str | None = None
    ca_file: str | None = None
    scenario: Any = None
    truth_path: str | None = None
    sim: Any = field(default=None, repr=False)

    @contextlib.contextmanager
    def started(self) -> Iterator[ProviderPlan]:
        """The plan for one call: with the built-in simulator started for the call's
        lifetime when the plan needs one. Yields a copy, so one plan can serve calls that
        run at the same time (each gets its own simulator)."""
        if self.label != "sim":
            yield self
            return
        from app.sim.server import SimThread

        sim = SimThread(self.scenario, dialect=self.kind, truth_path=self.truth_path)
        url = sim.start()
        try:
            cert = getattr(sim, "cert_path", None)
            yield dataclasses.replace(
                self, sim=sim, url=url, ca_file=str(cert) if cert else self.ca_file
            )
        finally:
            sim.stop()


def plan_provider(
    provider: str,
    profile: Profile,
    url: str | None = None,
    ca_file: str | None = None,
    scenario: str | None = None,
    truth_path: str | None = None,
) -> tuple[ProviderPlan, Profile]:
    """Resolve the provider choice, key and scenario; return the plan and the profile
    adjusted to the chosen wire protocol.

    Raises:
        ConfigError: unknown provider, unreadable scenario or CA file.
        MissingKeyError: a real provider was chosen and no key is configured.
    """
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
        return ProviderPlan(
            profile.provider, "sim", None, SIM_KEY, ca_file, sc, truth_path
        ), profile
    if scenario:
        raise ConfigError("--scenario only applies to --provider sim")
    if profile.provider != provider:
        model = profile.model if profile.model != DEFAULT_MODELS[profile.provider] else None
        profile = dataclasses.replace(
            profile, provider=provider, model=model or DEFAULT_MODELS[provider]
        )
    name, env_vars = KEY_NAMES[provider]
    key = get_secret(name, env_vars)
    if not key:
        raise MissingKeyError(
            f"no {provider} API key: store one with `voiceprobe keys set {provider}` "
            f"or set {' or '.join(env_vars)}"
        )
    return ProviderPlan(provider, provider, url or profile.url or None, key, ca_file), profile


def make_provider(
    profile: Profile,
    plan: ProviderPlan,
    clock: Clock,
    resumption_handle: str | None = None,
    id_prefix: str = "",
) -> Provider:
    """Build the (unconnected) provider session for a started plan; ``resumption_handle``
    resumes a Gemini session."""
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

    return connect_openai(profile, plan.key or "", clock, url=plan.url)
