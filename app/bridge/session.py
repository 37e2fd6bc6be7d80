"""Run one recorded call end to end: provider, port, store, recorder, tools, bridge.

This is the one place that assembles a call; the CLI, the desktop controller and the SIP
adapter all go through :func:`run_call`, so every path records the same session folder
and produces the same summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.audio.port import CallerPort
from app.audio.recorder import MIC_RAW_WAV, StereoRecorder
from app.bridge.call import Bridge, BridgeOptions, EventSink
from app.bridge.providers import ProviderPlan, make_provider, started_off_loop
from app.clock import MONOTONIC, Clock
from app.errors import StoreError
from app.events import CallEnded, CallStarted, EventBase, NetworkSample, Notice, TurnCompleted
from app.metrics.cost import CallCost, load_price_table, price_call
from app.metrics.timeline import summarize
from app.profile import Profile
from app.providers.netstats import summarize_network
from app.store.paths import data_dir, new_session_id
from app.store.writer import SessionWriter
from app.store.writer_thread import WriterThread
from app.tools.runner import ToolRunner

#: Disk given back from the end of the recording when the session's last files cannot be
#: written (a full disk): about one second of 16 kHz stereo audio.
ROOM_BYTES = 64 * 1024


def _raw_mic_recorder(port: CallerPort, folder: Path, t0: int) -> StereoRecorder | None:
    """A microphone port's raw capture, before echo cancellation: ``mic_raw.wav`` (mono,
    on the timeline of ``audio.wav``), or ``None`` for every other port."""
    from app.audio.deviceport import DevicePort

    if not isinstance(port, DevicePort) or not port.capture:
        return None
    port.raw_recorder = StereoRecorder(folder / MIC_RAW_WAV, port.rate, t0, channels=1)
    return port.raw_recorder


class _StoreGuard:
    """The session's files after a write error: remembers the first one (later ones are
    its consequences) and, once, on a full disk, gives back the end of the recording so
    that ``turns.json`` and ``session.json`` can still say how the session ended."""

    def __init__(self, folder: Path, recorder: StereoRecorder | None) -> None:
        self.error: str | None = None
        self._folder = folder
        self._recorder = recorder
        self._room_made = False

    def failed(self, message: str) -> bool:
        """Note a write error; True if it is the first."""
        if self.error is not None:
            return False
        self.error = message
        return True

    def attempt(self, write: Callable[[], None]) -> None:
        """Run ``write``; on a StoreError note it, make room once (the recording must be
        closed by then) and try again."""
        try:
            write()
            return
        except StoreError as exc:
            self.failed(str(exc))
        recorder = self._recorder
        if self._room_made or recorder is None or not recorder.closed or not self._disk_full():
            return
        self._room_made = True
        if recorder.give_back(ROOM_BYTES):
            with contextlib.suppress(StoreError):
                write()

    def _disk_full(self) -> bool:
        try:
            return shutil.disk_usage(self._folder).free < ROOM_BYTES
        except OSError:
            return False


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
        prices: a price table that overrides the shipped one and the user's
            ``prices.yaml`` (see :func:`app.metrics.cost.load_price_table`).
    """

    profile: Profile
    plan: ProviderPlan
    data_root: Path | None = None
    tags: list[str] = field(default_factory=list)
    record: bool = True
    options: BridgeOptions = field(default_factory=BridgeOptions)
    source: str = ""
    prices: Path | None = None


class CallHandle:
    """Lets another part (UI, SIP) end a running call or read its live levels."""

    def __init__(self) -> None:
        self.bridge: Bridge | None = None

    def hangup(self) -> None:
        """End the call (loop thread only)."""
        if self.bridge is not None:
            self.bridge.hangup("hangup")


def call_summary(
    *,
    session_id: str,
    folder: Path,
    provider: str | None,
    model: str | None,
    ok: bool,
    reason: str,
    cost: CallCost,
    errors: list[dict[str, Any]],
    network: list[NetworkSample],
    bridge: dict[str, Any],
) -> dict[str, Any]:
    """A call's summary, the ``--json`` object (docs/architecture.md): :func:`run_call`'s,
    and an interrupted call's read back from its folder
    (:func:`app.cli_support.interrupted_summary`).

    Args:
        session_id: the session's id.
        folder: the session folder.
        provider: the provider as the user named it.
        model: the model asked for.
        ok: whether the call succeeded.
        reason: how it ended.
        cost: the call's turns priced (:func:`app.metrics.cost.price_call`).
        errors: the call's errors (``code``, ``message``, ``fix``).
        network: the call's round-trip samples.
        bridge: the bridge's counters (``{}`` when they are not known).
    """
    return {
        "session_id": session_id,
        "session_dir": str(folder),
        "provider": provider,
        "model": model,
        "ok": ok,
        "reason": reason,
        "turns": cost.turns,
        "cost_usd": cost.cost_usd,
        "usage": cost.usage,
        "errors": errors,
        "voice_to_voice": summarize(cost.turns),
        "network_rtt": summarize_network(network),
        "bridge": bridge,
    }


async def run_call(
    setup: CallSetup,
    port: CallerPort,
    subscribers: list[EventSink] | None = None,
    clock: Clock = MONOTONIC,
    handle: CallHandle | None = None,
    on_session: Callable[[str, Path], None] | None = None,
) -> dict[str, Any]:
    """Place a call, record it, and return its summary (the ``--json`` object).

    A write error in the session folder (a full disk, an I/O error) ends the call: the
    recording keeps what was written (a whole WAV), the summary has ``ok: false`` and one
    ``store`` error, and ``session.json`` ends ``incomplete`` with the reason. On a full
    disk about a second is cut from the end of the recording, if needed, to make room for
    that. A cancelled call (Ctrl-C, SIGTERM, the app closing) ends ``interrupted``.

    Raises:
        VoiceprobeError: set-up failed before the call could start (bad profile, missing
            key, unreachable store). Failures during the call are reported in the summary
            (``ok: false``) rather than raised.
    """
    # A bad price file is bad input: refused before the call starts.
    prices = await asyncio.to_thread(load_price_table, setup.prices)
    root = setup.data_root or data_dir()
    session_id = new_session_id(datetime.now(UTC), root)
    secrets = [s for s in (setup.plan.key, *setup.plan.secrets) if s]
    async with started_off_loop(setup.plan) as plan:
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
        # Creating the folder writes session.json and the index row: off the loop too.
        creating = asyncio.ensure_future(
            asyncio.to_thread(
                SessionWriter, root, session_id, meta, redact_secrets=secrets, clock=clock
            )
        )
        try:
            writer = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Interrupted while the folder was being made (Ctrl-C right as a suite case
            # starts): once made, close it out "interrupted", never left "running".
            with contextlib.suppress(Exception):
                made = await creating
                await asyncio.to_thread(made.finish, "interrupted", {"turns": 0})
            raise
        if on_session is not None:
            on_session(session_id, writer.dir)
        recorder = StereoRecorder(writer.audio_path, port.rate, t0) if setup.record else None
        raw_recorder = _raw_mic_recorder(port, writer.dir, t0) if setup.record else None
        sinks = list(subscribers or [])
        # A write error (full disk, I/O error) in the events log, turns.json or the
        # recording ends the call: what is written is kept, the session ends "incomplete".
        store = _StoreGuard(writer.dir, recorder)

        loop = asyncio.get_running_loop()

        def store_failed(message: str) -> None:  # loop thread
            if store.failed(message) and bridge is not None:
                bridge.abort("store", message)

        def report_from_writer(message: str) -> None:  # writer thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: the call is over
                loop.call_soon_threadsafe(store_failed, message)

        # Session files are written on a thread of their own (app/store/writer_thread.py):
        # the loop hands over each event and goes on; a slow disk delays only the disk.
        writes = WriterThread(writer, on_error=report_from_writer)

        network: list[NetworkSample] = []

        def emit(ev: EventBase) -> None:
            if isinstance(ev, NetworkSample):
                network.append(ev)
            if not writes.append_event(ev) and writes.dropped == 1:
                # The disk cannot keep up: say so now (UI, CLI); the summary and
                # session.json report the count at the end.
                warning = Notice(t_ns=clock.now_ns(), level="error", message=writes.overflow or "")
                for sink in sinks:
                    sink(warning)
            if isinstance(ev, TurnCompleted) and bridge is not None:
                writes.write_turns(bridge.timeline.to_list())
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
        if options.session_max_s is None:
            # Stay under the server's own session limit, where it has one.
            options = dataclasses.replace(options, session_max_s=provider.protocol.rollover_s)
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
        # Everything alive now (imports, the profile, synthesised audio, the simulator) goes
        # to the collector's permanent generation: a full collection during the call then
        # scans only what the call makes. Scanning everything took ~50 ms on the loop thread
        # and delayed caller frames by as much (docs/timing.md). O(1); no collection here,
        # so calls already running are not stalled.
        gc.freeze()
        try:
            result = await bridge.run()
        except asyncio.CancelledError:
            # Interrupted (Ctrl-C, SIGTERM, the app closing): the folder is still closed
            # out now, not left "running" for the next start's recovery.
            if recorder is not None:
                recorder.close()
            turns = price_call(bridge.timeline.to_list(), prices).turns
            await writes.call(lambda: store.attempt(lambda: writer.write_turns(turns)))
            await writes.call(
                lambda: store.attempt(lambda: writer.finish("interrupted", {"turns": len(turns)})),
                last=True,
            )
            raise
        finally:
            await tools.aclose()
            if recorder is not None:
                recorder.close()
            if raw_recorder is not None:
                raw_recorder.close()
        if recorder is not None and recorder.error is not None:
            store.failed(recorder.error)
        cost = price_call(result.turns, prices)  # turns with cost_usd, and the call's
        if cost.notice is not None:  # once per call
            emit(Notice(t_ns=clock.now_ns(), level="warning", message=cost.notice))
        await writes.call(lambda: store.attempt(lambda: writer.write_turns(cost.turns)))
        errors = list(result.errors)
        overflow = writes.overflow
        if overflow is not None:
            emit(Notice(t_ns=clock.now_ns(), level="error", message=overflow))
            errors.append({"code": "store", "message": overflow})
        if store.error is not None:
            emit(Notice(t_ns=clock.now_ns(), level="error", message=store.error))
            if all(e.get("message") != store.error for e in errors):
                errors.append({"code": "store", "message": store.error})
        # CallEnded is the session's last event: every notice about the call comes first.
        emit(
            CallEnded(
                t_ns=clock.now_ns(), session_id=session_id, reason=result.reason, ok=result.ok
            )
        )
        ok = result.ok and store.error is None
        summary = call_summary(
            session_id=session_id,
            folder=writer.dir,
            provider=plan.label,
            model=setup.profile.model,
            ok=ok,
            reason=result.reason if store.error is None else "store_error",
            cost=cost,
            errors=errors,
            network=network,
            bridge=result.stats.summary() if result.stats else {},
        )
        if store.error is not None:
            status, reason = "incomplete", f"store: {store.error}"
        else:
            status, reason = ("complete" if ok else "failed"), result.reason
        closing = {
            "turns": len(result.turns),
            "voice_to_voice": summary["voice_to_voice"],
            "network_rtt": summary["network_rtt"],
            "reason": reason,
            "errors": errors,  # each with code, message (and fix): `sessions show` says why
            "events_dropped": writes.dropped,
            "cost_usd": cost.cost_usd,
            "usage": cost.usage,
        }
        await writes.call(lambda: store.attempt(lambda: writer.finish(status, closing)), last=True)
        if store.error is not None and ok:  # only the closing writes failed
            summary.update(ok=False, reason="store_error")
            errors.append({"code": "store", "message": store.error})
        return summary
