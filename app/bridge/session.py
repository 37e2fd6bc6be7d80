"""Run one recorded call end to end: provider, port, store, recorder, tools, bridge.

This is the one place that assembles a call; the CLI, the desktop controller and the SIP
adapter all go through :func:`run_call`, so every path records the same session folder
and produces the same summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.audio.port import CallerPort
from app.audio.recorder import StereoRecorder
from app.bridge.call import Bridge, BridgeOptions, EventSink
from app.bridge.providers import ProviderPlan, make_provider
from app.clock import MONOTONIC, Clock
from app.errors import StoreError
from app.events import CallEnded, CallStarted, Event, Notice, TurnCompleted
from app.metrics.timeline import summarize
from app.profile import Profile
from app.store.paths import data_dir, new_session_id
from app.store.writer import SessionWriter
from app.tools.runner import ToolRunner

#: OpenAI ends a session at 60 minutes with no warning; roll over at a turn boundary first.
OPENAI_ROLLOVER_S = 55 * 60.0


@dataclass(slots=True)
class CallSetup:
    """Everything needed to place one call (no I/O done yet).

    Attributes:
        profile: the agent profile.
        plan: which provider/endpoint/key (see :func:`app.bridge.providers.plan_provider`).
        data_root: the data folder (session at ``<root>/sessions/<id>``); default
            :func:`app.store.paths.data_dir`.
        tags: free tags stored with the session.
        record: write ``audio.wav``.
        options: bridge knobs.
        source: a description of the caller side (``file:…``, ``mic``, ``sip:…``).
    """

    profile: Profile
    plan: ProviderPlan
    data_root: Path | None = None
    tags: list[str] = field(default_factory=list)
    record: bool = True
    options: BridgeOptions = field(default_factory=BridgeOptions)
    source: str = ""


class CallHandle:
    """Lets another part (UI, SIP) end a running call or read its live levels."""

    def __init__(self) -> None:
        self.bridge: Bridge | None = None

    def hangup(self) -> None:
        """End the call (loop thread only)."""
        if self.bridge is not None:
            self.bridge.hangup("hangup")


async def run_call(
    setup: CallSetup,
    port: CallerPort,
    subscribers: list[EventSink] | None = None,
    clock: Clock = MONOTONIC,
    handle: CallHandle | None = None,
    on_session: Callable[[str, Path], None] | None = None,
) -> dict[str, Any]:
    """Place a call, record it, and return its summary (the ``--json`` object).

    Raises:
        VoiceprobeError: set-up failed before the call could start (bad profile, missing
            key, unreachable store). Failures during the call are reported in the summary
            (``ok: false``) rather than raised.
    """
    root = setup.data_root or data_dir()
    session_id = new_session_id(datetime.now(UTC), root)
    secrets = [s for s in (setup.plan.key,) if s]
    with setup.plan.started() as plan:
        provider = make_provider(setup.profile, plan, clock)
        t0 = clock.now_ns()
        meta = {
            "audio_t0_ns": t0,
            "audio_rate": port.rate,
            "provider": plan.label,
            "model": setup.profile.model,
            "url": plan.url,
            "profile": setup.profile.to_dict(),
            "profile_name": setup.profile.name,
            "tags": setup.tags,
            "source": setup.source,
        }
        writer = SessionWriter(root, session_id, meta, redact_secrets=secrets, clock=clock)
        if on_session is not None:
            on_session(session_id, writer.dir)
        recorder = StereoRecorder(writer.audio_path, port.rate, t0) if setup.record else None
        sinks = list(subscribers or [])
        store_errors: list[str] = []

        def emit(ev: Event) -> None:
            try:
                writer.append_event(ev)
            except StoreError as exc:
                if not store_errors:
                    store_errors.append(str(exc))
            if isinstance(ev, TurnCompleted) and bridge is not None:
                with contextlib.suppress(StoreError):
                    writer.write_turns(bridge.timeline.to_list())
            for sink in sinks:
                sink(ev)

        bridge: Bridge | None = None
        tools = ToolRunner(
            setup.profile.tools, setup.profile.tool_call_limit, clock, session_id=session_id
        )
        options = setup.options
        sessions = itertools.count(2)  # provider-made ids must not repeat across sessions
        if setup.profile.turn_detection.type == "none":
            options = dataclasses.replace(options, manual_turns=True)
        if options.session_max_s is None and plan.kind == "openai":
            options = dataclasses.replace(options, session_max_s=OPENAI_ROLLOVER_S)
        bridge = Bridge(
            provider,
            port,
            tools,
            clock,
            emit,
            recorder,
            options,
            reconnect=lambda handle: make_provider(
                setup.profile, plan, clock, handle, id_prefix=f"s{next(sessions)}-"
            ),
        )
        if handle is not None:
            handle.bridge = bridge
        emit(
            CallStarted(
                t_ns=t0,
                session_id=session_id,
                provider=plan.label,
                model=setup.profile.model,
                session_dir=str(writer.dir),
            )
        )
        try:
            result = await bridge.run()
        except asyncio.CancelledError:
            # Interrupted (Ctrl-C, the app closing): the folder is still closed out now,
            # not left "running" for the next start's recovery.
            writer.write_turns(bridge.timeline.to_list())
            writer.finish("interrupted", {"turns": len(bridge.timeline.turns)})
            raise
        finally:
            await tools.aclose()
            if recorder is not None:
                recorder.close()
        emit(
            CallEnded(
                t_ns=clock.now_ns(), session_id=session_id, reason=result.reason, ok=result.ok
            )
        )
        for message in store_errors:
            emit(Notice(t_ns=clock.now_ns(), level="error", message=message))
        errors = result.errors + [{"code": "store", "message": m} for m in store_errors]
        summary: dict[str, Any] = {
            "session_id": session_id,
            "session_dir": str(writer.dir),
            "provider": plan.label,
            "model": setup.profile.model,
            "ok": result.ok,
            "reason": result.reason,
            "turns": result.turns,
            "errors": errors,
            "voice_to_voice": summarize(result.turns),
            "bridge": result.stats.summary() if result.stats else {},
        }
        writer.write_turns(result.turns)
        writer.finish(
            "complete" if result.ok else "failed",
            {
                "turns": len(result.turns),
                "voice_to_voice": summary["voice_to_voice"],
                "reason": result.reason,
                "errors": len(errors),
            },
        )
        return summary
