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

How a stream ends decides how its call ends (once the frames before the end are read;
nothing is heard after it, so no agent audio is played into a stream that is gone: the
playback stops at the end's stamp at once, and a reply it cuts off leaves its turn
``interrupted``):

====================================  ==========================  =======================
stream end                            call ends                   logged
====================================  ==========================  =======================
``stop``                              ``completed``               info ``twilio stop``
caller closes cleanly (1000/1001),    ``caller_hangup``           warning: no ``stop``,
no ``stop``                                                       the close code
connection lost (no close frame:      ``failed``, error           warning and the error:
1006), an error close from either     ``connection_closed``       who closed, code, reason
side (1009 message too big, 1011…)
the server shuts down (SIGINT/TERM)   session ``interrupted``     warning; 1001 sent
====================================  ==========================  =======================

Media after ``stop`` is ignored (logged once); the port holds caller audio to real time.
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
from websockets.frames import CloseCode

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
from app.serve.cli import SERVE_PROVIDERS
from app.serve.twilio_port import StreamEnd, TwilioStreamPort, stream_end_of_close
from app.textsafe import printable

PATH = "/twilio"
TOKEN_PARAM = "voiceprobe_token"
#: How long a new stream may take to send ``start``.
START_TIMEOUT_S = 10.0


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
        #: Running calls and their streams' ports.
        self._calls: dict[asyncio.Task[Any], TwilioStreamPort] = {}
        self._closing = False

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
        """Stop accepting, end running calls as ``interrupted`` (their streams closed
        with 1001) and wait for them to close out."""
        self._closing = True
        calls = list(self._calls.items())
        for call, port in calls:
            end = StreamEnd(
                kind="shutdown",
                t_ns=self.clock.now_ns(),
                code=CloseCode.GOING_AWAY,
                message="twilio stream closed by voiceprobe: the server shuts down (1001)",
            )
            port.log(Notice(t_ns=end.t_ns, level="warning", message=end.message))
            port.end(end)
            call.cancel()
        if calls:
            await asyncio.wait([call for call, _ in calls])
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
        if self._closing:
            await ws.close(CloseCode.GOING_AWAY, "server shutting down")
            return
        outbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        handle = CallHandle()
        ending: list[StreamEnd] = []  # the stream ended before the bridge existed

        def end_call(end: StreamEnd) -> None:
            # The stream is gone and its frames are read: end the call now (loop thread).
            bridge = handle.bridge
            if end.kind == "shutdown":
                return  # close() cancels the call: its session ends "interrupted"
            if bridge is None:
                ending.append(end)
            elif not bridge.stopping:
                if end.kind == "stop":
                    bridge.hangup("completed")
                elif end.kind == "hangup":
                    bridge.hangup("caller_hangup")
                else:
                    bridge.abort("connection_closed", end.message)

        def sink_gone(end: StreamEnd) -> None:
            # At once, before the frames that came before the end are handled: the agent
            # audio that would follow them is heard by nobody (the turn is cut there).
            if handle.bridge is not None:
                handle.bridge.playback.sink_gone(end.t_ns)

        port = TwilioStreamPort(
            proto,
            lambda text: outbox.put_nowait((text, self.clock.now_ns())),
            self.clock.now_ns,
            start_ns=started.t_ns,
            on_end=end_call,
            on_gone=sink_gone,
            # The bridge exists before its first write: only its playback knows whether
            # a block is the agent's (its silence included) or no reply at all.
            carrying=lambda: (
                handle.bridge is not None and handle.bridge.playback.block_agent_samples > 0
            ),
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
            after_stop = False
            try:
                while True:
                    message = await ws.recv()
                    for ev in proto.receive(message, self.clock.now_ns()):
                        if isinstance(ev, CallerMedia):
                            if port.ended is None:
                                port.feed(ev)
                            elif not after_stop:
                                after_stop = True
                                port.log(
                                    Notice(
                                        t_ns=ev.t_ns,
                                        level="warning",
                                        message="twilio stream: media after stop (ignored)",
                                    )
                                )
                        elif isinstance(ev, StreamNote):
                            port.note(ev)
                        elif isinstance(ev, StreamStopped) and port.ended is None:
                            port.log(Notice(t_ns=ev.t_ns, level="info", message="twilio stop"))
                            port.end(StreamEnd(kind="stop", t_ns=ev.t_ns))
            except ConnectionClosed as exc:
                if port.ended is None:
                    end = stream_end_of_close(exc, self.clock.now_ns())
                    port.log(Notice(t_ns=end.t_ns, level="warning", message=end.message))
                    port.end(end)

        setup = dataclasses.replace(
            self.setup,
            plan=self.plan_for_stream() if self.plan_for_stream else self.setup.plan,
            source=f"twilio:{started.call_sid[:40]}",
            tags=[*self.setup.tags, "line=twilio"],
        )
        session: dict[str, Any] = {}

        def on_session(session_id: str, folder: Path) -> None:
            session.update(session_id=session_id, session_dir=str(folder))

        def attach(_ev: Any) -> None:
            # The bridge set ``port.emit`` before its first event: the stream's notes from
            # before the call go into it now, later ones as they come; a stream that ended
            # before the bridge existed ends the call as soon as it runs.
            port.flush_early()
            if port.ended is not None:
                sink_gone(port.ended)
            if ending:
                asyncio.get_running_loop().call_soon(end_call, ending.pop())

        tasks = [asyncio.create_task(sender()), asyncio.create_task(reader())]
        call = asyncio.create_task(
            run_call(setup, port, [attach], self.clock, handle=handle, on_session=on_session)
        )
        self._calls[call] = port
        summary: dict[str, Any] | None = None
        try:
            summary = await call
        except asyncio.CancelledError:
            if not (self._closing and call.cancelled()):
                raise  # this handler itself was cancelled
        finally:
            self._calls.pop(call, None)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Exception):
                    await task
            with contextlib.suppress(Exception):
                while not outbox.empty():
                    await ws.send(outbox.get_nowait()[0])
                if self._closing:
                    await ws.close(CloseCode.GOING_AWAY, "server shutting down")
                else:
                    await ws.close()
        if handle.bridge is not None:
            self.stats.append(handle.bridge.stats)
        if summary is None:
            # Shut down mid-call: run_call closed the session out as "interrupted".
            if not session:
                return  # no session was made yet: nothing recorded
            turns = handle.bridge.timeline.to_list() if handle.bridge is not None else []
            summary = {**session, "ok": False, "reason": "interrupted", "turns": turns,
                       "errors": []}  # fmt: skip
        summary["twilio"] = {
            "stream_sid": started.stream_sid,
            "call_sid": started.call_sid,
            "marks_echoed": len(port.mark_ms),
            "marks_unanswered": len(port.marks_out),
            "end": port.ended.to_dict() if port.ended is not None else None,
            "caller_ms_dropped": port.dropped_samples * 1000 // port.rate,
            "agent_ms_sent": port.samples_sent * 1000 // port.rate,
        }
        if self.on_call is not None:
            self.on_call(summary)


def cmd_serve_twilio(args: argparse.Namespace) -> int:
    """``voiceprobe serve twilio``: first stdout line the stream URL, then the TwiML; one
    line (JSON with ``--json``) per finished call; serves until SIGINT/SIGTERM."""
    from app.bridge.providers import default_provider
    from app.cli_support import (
        UsageError,
        bridge_options,
        cancel_on_signals,
        check_seconds,
        plan_agent,
    )
    from app.profile import load_profile
    from app.store.paths import data_dir
    from app.store.reader import recover_unfinished
    from app.textsafe import json_text

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    check_seconds(args.max_seconds, "--max-seconds")
    profile: Profile = load_profile(args.profile)
    # No --provider: what `call` would use (the simulator), unless the profile names a
    # deployed twilio-ws agent, which this server cannot bridge a stream to.
    provider = args.provider or default_provider(profile)
    if provider not in SERVE_PROVIDERS:
        raise UsageError(
            f"serve twilio: --provider must be {' | '.join(SERVE_PROVIDERS)}"
            + ("" if args.provider else f" (the profile's agent is {provider})")
        )
    args.provider = provider
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
        end = summary["twilio"]["end"]
        if end is not None and end["kind"] != "stop":  # how the stream ended, on stderr
            print(
                f"voiceprobe: call {printable(summary['twilio']['call_sid'])}: "
                f"{printable(end['message'])}",
                file=sys.stderr,
                flush=True,
            )
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
