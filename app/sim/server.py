"""The simulator's WebSocket server on loopback, and a thread wrapper for in-process use.

:class:`SimServer` serves a scenario on ``ws://HOST:PORT/<any path>`` (the OpenAI SDK
dials ``/v1/realtime?model=...``), or for the Gemini dialect on ``wss://HOST:PORT/<any
path>`` with a self-signed certificate made at start (:mod:`app.sim.tls`; the SDK dials
``/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`` or
``.v1.``) whose file :attr:`SimServer.cert_path` a client loads as its CA file. It accepts
any path and any (or no) ``Authorization`` / ``api-key`` / ``x-goog-api-key`` header and
records which were present, never a value. Per-message compression is
off so that send stamps are honest. Every connection gets its own
:class:`app.sim.engine.Conversation` of the chosen dialect; all connections share one
:class:`app.sim.script.SimState`, so a reconnecting client continues at the next turn.

Threading: :class:`SimServer` lives on the asyncio loop that called :meth:`SimServer.start`;
:class:`SimThread` runs one on a private loop thread and its methods may be called from
any other thread. :func:`run_sim` is the body of ``voiceprobe sim``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Frame, Opcode

from app.clock import MONOTONIC, Clock
from app.errors import ConfigError
from app.secrets import scrub_url
from app.sim.engine import Conversation
from app.sim.gemini_dialect import GeminiConversation
from app.sim.openai_dialect import OpenAIConversation
from app.sim.scenario import Scenario, load_scenario
from app.sim.script import SimState
from app.sim.tls import SelfSignedCert, make_self_signed
from app.sim.truth import TruthLog
from app.sim.tts import synthesize

#: Wire dialects by name: each a :class:`Conversation` subclass.
DIALECTS: dict[str, type[Conversation]] = {
    "openai": OpenAIConversation,
    "gemini": GeminiConversation,
}
#: Dialects served over TLS (``wss://``) with a generated certificate.
TLS_DIALECTS = frozenset({"gemini"})
#: The path the URL of each dialect names (any path is accepted).
URL_PATHS = {
    "openai": "/v1/realtime",
    "gemini": "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
}
#: Headers that carry a key (OpenAI, Azure OpenAI, Gemini); only their names are logged.
_CREDENTIAL_HEADERS = ("Authorization", "api-key", "x-goog-api-key")
#: Largest client message accepted (the service allows 15 MiB appends).
MAX_MESSAGE = 16 * 2**20


def default_scenario_path() -> Path:
    """The bundled demo scenario (``resources/scenarios/demo.yaml``)."""
    return Path(__file__).resolve().parents[2] / "resources" / "scenarios" / "demo.yaml"


class _SlowPongConnection(ServerConnection):
    """A server connection whose pong replies can be delayed (``slow_pong`` fault)."""

    pong_delay_s = 0.0

    def _delay_pongs(self, seconds: float) -> None:
        self.pong_delay_s = seconds
        proto = self.protocol
        original = proto.send_frame
        loop = asyncio.get_running_loop()

        def send_frame(frame: Frame) -> None:
            if frame.opcode is not Opcode.PONG or self.pong_delay_s <= 0:
                original(frame)
                return

            def later() -> None:
                with contextlib.suppress(Exception):
                    original(frame)
                    self.send_data()

            loop.call_later(self.pong_delay_s, later)

        proto.send_frame = send_frame  # type: ignore[method-assign]


class SimServer:
    """A realtime simulator server (see the module docstring).

    Args:
        scenario: the script to play.
        host: address to listen on (loopback by default).
        port: TCP port (0 picks a free one).
        dialect: wire dialect, ``"openai"`` or ``"gemini"`` (served over TLS).
        truth_path: optional JSONL file that mirrors the ground-truth log.
        binary: send messages as binary frames of UTF-8 JSON (as the real Gemini service
            does) instead of text frames.
        ssl_context: serve ``wss://`` with this server context (any dialect; e.g. a
            certificate from a test CA) instead of the dialect's default.
        clock: every stamp and deadline of the conversations and the ground truth.

    Attributes:
        url: the URL, once started.
        cert_path: the PEM certificate a client must trust (Gemini dialect, once started;
            else None). Deleted by :meth:`stop`.

    Raises:
        ConfigError: an unknown dialect.
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        dialect: str = "openai",
        truth_path: str | None = None,
        binary: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        if dialect not in DIALECTS:
            raise ConfigError(f"unknown simulator dialect {dialect!r} (have: "
                              f"{', '.join(DIALECTS)})", field="dialect")
        self.scenario = scenario
        self.host = host
        self.port = port
        self.dialect = dialect
        self.state = SimState()
        self.clock = clock
        self._log = TruthLog(truth_path, clock)
        self._server: Server | None = None
        self._conversations: set[Conversation] = set()
        self.binary = binary
        self._tls: SelfSignedCert | None = None
        self.cert_path: Path | None = None
        self._ssl_context = ssl_context
        self.url = ""

    @property
    def truth(self) -> list[dict[str, Any]]:
        """Ground-truth records so far (a copy; see :mod:`app.sim.truth`)."""
        return self._log.records

    @property
    def truth_log(self) -> TruthLog:
        return self._log

    async def start(self) -> str:
        """Synthesise every reply, start listening, and return the URL.

        The URL is ``ws://HOST:PORT/v1/realtime`` (OpenAI) or ``wss://HOST:PORT/ws/google.
        ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`` (Gemini); any
        path works.
        """
        spoken = self.scenario.spoken()
        await asyncio.to_thread(
            lambda: [synthesize(t, 24000, self.scenario.voice_rate, v) for t, v in spoken]
        )
        if self.dialect in TLS_DIALECTS and self._tls is None and self._ssl_context is None:
            self._tls = make_self_signed()
            self.cert_path = self._tls.cert_path
        try:
            self._server = await serve(
                self._handle, self.host, self.port, compression=None, max_size=MAX_MESSAGE,
                create_connection=_SlowPongConnection, ping_interval=None,
                ssl=self._tls.context if self._tls is not None else self._ssl_context,
            )
        except BaseException:
            if self._tls is not None:
                self._tls.cleanup()
                self._tls, self.cert_path = None, None
            raise
        sock = next(iter(self._server.sockets))
        port = sock.getsockname()[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        scheme = "wss" if self._tls is not None or self._ssl_context is not None else "ws"
        self.url = f"{scheme}://{host}:{port}{URL_PATHS[self.dialect]}"
        return self.url

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        self._log.close()
        if self._tls is not None:
            self._tls.cleanup()
            self._tls = None

    async def _handle(self, ws: ServerConnection) -> None:
        self.state.connections += 1
        index = self.state.connections
        req = ws.request
        path = req.path if req is not None else "/"
        # Which credential headers came (names only; never a value).
        cred = [h for h in _CREDENTIAL_HEADERS if req is not None and h in req.headers]
        model = (parse_qs(urlsplit(path).query).get("model") or [""])[0]
        # The path as the client sent it, but never a credential in its query (a Gemini
        # client's ``?key=``): the truth log is a file a tester keeps and shares.
        self._log.record("connection", None, state="open", index=index, path=scrub_url(path),
                         model=model, authorization=bool(cred), credential_headers=cred)
        conv = DIALECTS[self.dialect](self.scenario, self.state, self._log, ws, index,
                                      model=model, binary=self.binary, clock=self.clock)
        delay = conv.faults.pong_delay_ms()
        if delay > 0 and isinstance(ws, _SlowPongConnection):
            ws._delay_pongs(delay / 1000)
        self._conversations.add(conv)
        try:
            await conv.run(ws.recv)
        finally:
            self._conversations.discard(conv)
            code = ws.close_code
            self._log.record("connection", None, state="close", index=index, code=code)


class SimThread:
    """A :class:`SimServer` on its own thread and asyncio loop, for in-process use.

    Every method may be called from any thread (not from the server's own loop).
    """

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0,
                 dialect: str = "openai", truth_path: str | None = None,
                 binary: bool = False, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = SimServer(scenario, host, port, dialect, truth_path, binary, ssl_context)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> str:
        """Start the thread and block until the server listens; return its URL."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as e:  # handed to the caller of start()
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=main, name="voiceprobe-sim", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("simulator did not start in time")
        if failure:
            raise failure[0]
        return self.server.url

    @property
    def cert_path(self) -> Path | None:
        """The certificate a client must trust (Gemini dialect, once started), else None."""
        return self.server.cert_path

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join the thread (idempotent)."""
        if self._loop is None or self._thread is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None

    def truth(self) -> list[dict[str, Any]]:
        """A copy of the ground-truth records so far."""
        return self.server.truth

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until ``count`` records of kind ``event`` exist; return them all.

        Raises:
            TimeoutError: not enough records in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.truth() if r["event"] == event]
            if len(recs) >= count:
                return recs
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(recs)} {event!r} records after {timeout} s")
            time.sleep(0.01)


async def run_sim(scenario_path: str | None, host: str, port: int, dialect: str,
                  truth_path: str | None, binary: bool = False) -> None:
    """Serve a scenario until cancelled or SIGTERM/SIGINT; print the URL first.

    The first stdout line is the URL (flushed). For the Gemini dialect (``wss://``) the
    second line is ``# ca-file: PATH``, the certificate a client must trust.
    ``scenario_path`` None plays the bundled demo scenario; ``binary`` sends binary frames
    (see :class:`SimServer`).

    Raises:
        ConfigError: a bad scenario file or dialect (before anything is printed).
    """
    scenario = load_scenario(scenario_path or default_scenario_path())
    server = SimServer(scenario, host, port, dialect, truth_path, binary)
    url = await server.start()
    print(url, flush=True)
    if server.cert_path is not None:
        print(f"# ca-file: {server.cert_path}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop()
        sys.stdout.flush()
