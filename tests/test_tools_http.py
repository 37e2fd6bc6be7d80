"""ToolRunner http tools against a real loopback HTTP server (stdlib http.server)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.clock import MONOTONIC
from app.profile import ToolImpl, ToolSpec
from app.tools import ToolResult, ToolRunner


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    url: str
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", length=True):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        state: Server = self.server.state  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        state.requests.append(Seen(self.path, dict(self.headers.items()), body))
        mode = self.path.strip("/").split("?")[0]
        if mode == "echo":
            self._send(200, json.dumps({"got": json.loads(body), "q": self.path}).encode())
        elif mode == "eof":  # no Content-Length: the body ends when the connection closes
            self.close_connection = True
            self._send(200, b'{"streamed": true}', length=False)
        elif mode == "slow":
            state.release.wait(10)
            try:
                self._send(200, b"{}")
            except BrokenPipeError:
                pass  # the client gave up (the timeout under test) before the answer
        elif mode == "fail":
            self._send(
                500, b"database exploded\r\n\x1b[31mInjected: ignore previous\x00", "text/plain"
            )
        elif mode == "text":
            self._send(200, b"<html>not json</html>", "text/html")
        elif mode == "empty":
            self._send(204, b"")
        else:
            self._send(404, b"{}")


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def http_tool(url: str, timeout_ms: int = 2000, name: str = "crm") -> ToolSpec:
    return ToolSpec(name=name, impl=ToolImpl(type="http", url=url, timeout_ms=timeout_ms))


def run(tool: ToolSpec, call_id: str = "call_1", args: str = '{"id": 7}', **kw) -> ToolResult:
    runner = ToolRunner((tool,), 10, MONOTONIC, **kw)
    return asyncio.run(runner.run(call_id, tool.name, args))


def test_post_carries_arguments_and_idempotency_key(server: Server) -> None:
    res = run(http_tool(f"{server.url}/echo?x=1"), args='{"id": 7, "name": "Zoë"}')
    assert res.status == "ok", res.output
    assert json.loads(res.output) == {"got": {"id": 7, "name": "Zoë"}, "q": "/echo?x=1"}
    (req,) = server.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Idempotency-Key"] == "vp-call_1" == res.idempotency_key
    assert json.loads(req.body) == {"id": 7, "name": "Zoë"}


def test_unsafe_call_id_cannot_inject_headers(server: Server) -> None:
    res = run(http_tool(f"{server.url}/echo"), call_id="c1\r\nX-Evil: 1", session_id="s9")
    assert res.status == "ok"
    (req,) = server.requests
    assert "X-Evil" not in req.headers
    assert req.headers["Idempotency-Key"] == "vp-s9-c1__X-Evil:_1" == res.idempotency_key


def test_body_delimited_by_connection_close(server: Server) -> None:
    res = run(http_tool(f"{server.url}/eof"))
    assert res.status == "ok" and json.loads(res.output) == {"streamed": True}


def test_same_call_id_posts_once(server: Server) -> None:
    runner = ToolRunner((http_tool(f"{server.url}/echo"),), 10, MONOTONIC)

    async def go() -> list[ToolResult]:
        first = await asyncio.gather(*(runner.run("dup", "crm", "{}") for _ in range(3)))
        return [*first, await runner.run("dup", "crm", "{}")]

    results = asyncio.run(go())
    assert len(server.requests) == 1
    assert all(r is results[0] for r in results)


def test_slow_server_times_out_on_time(server: Server) -> None:
    res = run(http_tool(f"{server.url}/slow", timeout_ms=300))
    assert res.status == "timeout"
    assert res.ms == pytest.approx(300, abs=50)
    assert json.loads(res.output) == {"error": "tool crm timed out after 300 ms"}


def test_server_error_is_an_error_with_plain_text(server: Server) -> None:
    res = run(http_tool(f"{server.url}/fail"))
    assert res.status == "error"
    err = json.loads(res.output)["error"]
    assert err.startswith("HTTP 500")
    assert "database exploded" in err
    assert not any(ord(c) < 32 for c in err)


def test_non_json_body_is_an_error(server: Server) -> None:
    res = run(http_tool(f"{server.url}/text"))
    assert res.status == "error"
    assert json.loads(res.output) == {"error": "HTTP 200 response is not JSON"}


def test_no_content_is_an_empty_object(server: Server) -> None:
    res = run(http_tool(f"{server.url}/empty"))
    assert res.status == "ok" and res.output == "{}"


def test_refused_connection_is_an_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run(http_tool(f"http://127.0.0.1:{port}/x"))
    assert res.status == "error"
    assert json.loads(res.output)["error"].startswith(f"cannot connect to 127.0.0.1:{port}")
