"""``voiceprobe serve twilio``: voiceprobe as a Twilio Media Streams server.

Twilio (or anything speaking its Media Streams protocol) connects over a WebSocket; each
stream is bridged to the realtime provider through the bridge core
(:func:`app.bridge.session.run_call`) with a :class:`~app.serve.twilio_port.TwilioStreamPort`
as its caller side, so a served call records the same spans, recording and session as any
other. Several streams run side by side, each its own call.

A stream must present the server's token — a ``voiceprobe_token`` custom parameter (the
TwiML's ``<Parameter>``; Twilio's stream URL takes no query string) or the last path
segment (``/twilio/<token>``) — generated at start and compared in constant time.
Anything else is refused with close code 1008 before any audio flows, and recorded
nowhere. A stream whose ``start`` names another media format is refused the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from app import eventloop
from app.bridge.providers import ProviderPlan
from app.bridge.session import CallHandle, CallSetup, run_call
from app.bridge.stats import BridgeStats
from app.clock import MONOTONIC, Clock
from app.errors import ConfigError
from app.events import Notice
from app.profile import Profile
from app.providers.twilio.protocol import (
    MAX_MESSAGE_SIZE,
    CallerMedia,
    StreamNote,
    StreamStarted,
    StreamStopped,
    TwilioStreamProtocol,
)
from app.serve.twilio_port import TwilioStreamPort

PATH = "/twilio"
TOKEN_PARAM = "voiceprobe_token"
#: How long a new stream may take to send ``start``.
START_TIMEOUT_S = 10.0
SERVE_PROVIDERS = ("sim", "openai", "gemini")


def twiml(url: str, token: str) -> str:
    """The ``<Connect><Stream>`` TwiML that sends a call's audio to ``url`` with the token."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Connect><Stream url={quoteattr(url)}>"
        f"<Parameter name={quoteattr(TOKEN_PARAM)} value={quoteattr(token)}/>"
        "</Stream></Connect></Response>"
    )


class TwilioServer:
    """The Media Streams server: accepts streams, checks the token, runs one call each.

    Runs on one asyncio loop (the bridge's). ``on_call`` receives each finished call's
    summary; ``on_refused`` one line per refused stream (no session is created for it).

    Args:
        setup: the call template (profile, plan, data root, options); each stream gets a
            copy with its own source.
        token: the secret every stream must present (generated when ``None``).
        clock: the one clock.
        plan_for_stream: the agent of each new stream (default: ``setup.plan``; a plan
            labelled ``sim`` starts a simulator per stream anyway). The benchmark uses it
            to give each stream its own simulator in another process.
    """

    def __init__(
        self,
        setup: CallSetup,
        token: str | None = None,
        clock: Clock = MONOTONIC,
        on_call: Callable[[dict[str, Any]], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
        plan_for_stream: Callable[[], ProviderPlan] | None = None,
    ) -> None:
        self.setup = setup
        self.plan_for_stream = plan_for_stream
        self.token = token or secrets.token_urlsafe(24)
        self.clock = clock
        self.on_call = on_call
        self.on_refused = on_refused
        self.ports: list[TwilioStreamPort] = []
        #: The bridge figures of each finished call (benchmarks).
        self.stats: list[BridgeStats] = []
        self.refused = 0
        self._server: Server | None = None
        self._calls: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the stream URL (``ws://host:port/twilio``)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            max_size=MAX_MESSAGE_SIZE,
            compression=None,
            process_request=self._check_path,
        )
        sock = next(iter(self._server.sockets))
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        return f"ws://{shown}:{bound}{PATH}"

    async def close(self) -> None:
        """Stop accepting, hang up running calls and wait for them to close out."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_path(self, conn: ServerConnection, request: Any) -> Any:
        path = request.path.split("?", 1)[0].rstrip("/")
        if path == PATH or (path.startswith(PATH + "/") and "/" not in path[len(PATH) + 1 :]):
            return None
        self._refuse("a connection to an unknown path")
        return conn.respond(404, "not found\n")

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if self.on_refused is not None:
            self.on_refused(f"refused a stream: {why}")

    def _token_ok(self, path: str, started: StreamStarted) -> bool:
        given = started.custom_parameters.get(TOKEN_PARAM, "")
        tail = path.split("?", 1)[0].rstrip("/")[len(PATH) + 1 :]
        want = self.token.encode()
        by_param = hmac.compare_digest(given.encode(), want)
        by_path = hmac.compare_digest(tail.encode(), want)
        return by_param or by_path

    async def _handle(self, ws: ServerConnection) -> None:
        proto = TwilioStreamProtocol()
        early: list[StreamNote] = []
        started: StreamStarted | None = None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                async for message in ws:
                    for ev in proto.receive(message, self.clock.now_ns()):
                        if isinstance(ev, StreamStarted):
                            started = ev
                        elif isinstance(ev, StreamNote):
                            if ev.fatal:
                                self._refuse(ev.message)
                                await ws.close(1008, ev.message[:120])
                                return
                            early.append(ev)
                    if started is not None:
                        break
        except TimeoutError:
            self._refuse(f"no start within {START_TIMEOUT_S:g} s")
            await ws.close(1008, "no start")
            return
        except ConnectionClosed:
            return
        if started is None:
            return  # closed before start: nothing to record
        if not self._token_ok(ws.request.path if ws.request else "", started):
            self._refuse("no valid token")
            await ws.close(1008, "forbidden")
            return
        await self._bridge(ws, proto, started, early)

    async def _bridge(
        self,
        ws: ServerConnection,
        proto: TwilioStreamProtocol,
        started: StreamStarted,
        early: list[StreamNote],
    ) -> None:
        outbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        port = TwilioStreamPort(
            proto, lambda text: outbox.put_nowait((text, self.clock.now_ns())), self.clock.now_ns
        )
        self.ports.append(port)
        for note in early:
            port.note(note)
        port.log(
            Notice(
                t_ns=started.t_ns,
                level="info",
                message=f"twilio stream {started.stream_sid[:40]} of call "
                f"{started.call_sid[:40]} started",
            )
        )

        async def sender() -> None:
            while True:
                text, queued = await outbox.get()
                await ws.send(text)
                port.send_ns.append(self.clock.now_ns() - queued)

        async def reader() -> None:
            try:
                async for message in ws:
                    for ev in proto.receive(message, self.clock.now_ns()):
                        if isinstance(ev, CallerMedia):
                            port.feed(ev)
                        elif isinstance(ev, StreamNote):
                            port.note(ev)
                        elif isinstance(ev, StreamStopped):
                            port.log(Notice(t_ns=ev.t_ns, level="info", message="twilio stop"))
                            port.close()
            except ConnectionClosed:
                pass
            finally:
                port.close()

        handle = CallHandle()
        setup = dataclasses.replace(
            self.setup,
            plan=self.plan_for_stream() if self.plan_for_stream else self.setup.plan,
            source=f"twilio:{started.call_sid[:40]}",
            tags=[*self.setup.tags, "line=twilio"],
        )

        def attach(_ev: Any) -> None:
            # The bridge set ``port.emit`` before its first event: the stream's notes from
            # before the call go into it now, later ones as they come.
            port.flush_early()

        tasks = [asyncio.create_task(sender()), asyncio.create_task(reader())]
        try:
            summary = await run_call(setup, port, [attach], self.clock, handle=handle)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                    await task
            with contextlib.suppress(Exception):
                while not outbox.empty():
                    await ws.send(outbox.get_nowait()[0])
                await ws.close()
        if handle.bridge is not None:
            self.stats.append(handle.bridge.stats)
        summary["twilio"] = {
            "stream_sid": started.stream_sid,
            "call_sid": started.call_sid,
            "marks_echoed": len(port.mark_ms),
            "marks_unanswered": len(port.marks_out),
        }
        if self.on_call is not None:
            self.on_call(summary)


def cmd_serve_twilio(args: argparse.Namespace) -> int:
    """``voiceprobe serve twilio``: first stdout line the stream URL, then the TwiML; one
    line (JSON with ``--json``) per finished call; serves until SIGINT/SIGTERM."""
    from app.cli_support import UsageError, bridge_options, cancel_on_signals, plan_agent
    from app.profile import load_profile
    from app.store.paths import data_dir
    from app.store.reader import recover_unfinished
    from app.textsafe import json_text, printable

    if args.provider not in SERVE_PROVIDERS:
        raise UsageError(f"serve twilio: --provider must be {' | '.join(SERVE_PROVIDERS)}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    if args.max_seconds <= 0:
        raise UsageError("--max-seconds must be positive")
    profile: Profile = load_profile(args.profile)
    plan, profile = plan_agent(args, profile)
    root = Path(args.out) if args.out else data_dir()
    recover_unfinished(root)
    args.rollover_s = None
    args.no_reconnect = False
    args.barge_in = "local"
    setup = CallSetup(
        profile=profile,
        plan=plan,
        data_root=root,
        tags=list(args.tag),
        record=not args.no_record,
        options=bridge_options(args),
    )

    def done(summary: dict[str, Any]) -> None:
        if args.json:
            print(json_text(summary).replace("\n", " "), flush=True)
        else:
            print(
                f"call {printable(summary['twilio']['call_sid'])}: {summary['reason']}, "
                f"{len(summary['turns'])} turns, session {summary['session_id']}: "
                f"{printable(summary['session_dir'])}",
                flush=True,
            )

    async def main() -> None:
        cancel_on_signals()
        # With --provider sim each stream starts its own simulator (in run_call): a
        # simulator keeps one script position across its connections.
        server = TwilioServer(
            setup,
            on_call=done,
            on_refused=lambda line: print(f"voiceprobe: {line}", file=sys.stderr, flush=True),
        )
        url = await server.start(args.host, args.port)
        public = args.public_url or url
        print(url, flush=True)
        print(twiml(public, server.token), flush=True)
        if not public.startswith("wss://"):
            print(
                "voiceprobe: Twilio dials wss:// only: put a TLS tunnel in front and pass "
                "--public-url wss://HOST/twilio",
                file=sys.stderr,
                flush=True,
            )
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            pass
        finally:
            await server.close()

    try:
        eventloop.run(main())
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return 0
