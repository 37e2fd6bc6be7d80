"""Run the agent's tool calls: ``mock`` (canned JSON) or ``http`` (POST to a URL).

docs/architecture.md#tools: every call gets an idempotency key, a timeout and counts against a
per-session ceiling. :meth:`ToolRunner.run` never raises for a tool failure: the model
always gets valid JSON back (``{"error": "..."}`` on failure, also for a result larger
than :data:`MAX_RESULT_BYTES`), and the status and timing go on the timeline. Error
texts from tool servers are untrusted: they are kept as plain text (control characters
removed, length capped), never interpreted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.clock import Clock
from app.errors import ToolError
from app.profile import ToolSpec

STATUSES = ("ok", "error", "timeout", "unknown_tool", "limit", "bad_arguments")
MAX_RESPONSE_BYTES = 1 << 20
#: Largest tool result (JSON text, UTF-8 bytes) sent to the model; larger ones are an error.
MAX_RESULT_BYTES = 64 * 1024
MAX_ERROR_CHARS = 300
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._~:\-]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call.

    Attributes:
        call_id: the provider's call id.
        name: the tool name the model asked for.
        arguments: the JSON text the model produced (as received).
        status: one of ``ok``, ``error``, ``timeout``, ``unknown_tool``, ``limit``,
            ``bad_arguments``.
        output: JSON text to send back to the model; on failure ``{"error": "..."}``.
        started_ns: clock stamp when the call started.
        ended_ns: clock stamp when the result was ready.
        idempotency_key: the key sent with the call (stable per ``call_id``).
    """

    call_id: str
    name: str
    arguments: str
    status: str
    output: str
    started_ns: int
    ended_ns: int
    idempotency_key: str

    @property
    def ms(self) -> float:
        """Duration in milliseconds."""
        return (self.ended_ns - self.started_ns) / 1_000_000

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def plain_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Untrusted text made safe to log and show: control characters removed, one line,
    at most ``limit`` characters.
    """
    text = _CONTROL_CHARS.sub("", text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_json(message: str) -> str:
    return json.dumps({"error": plain_text(message)}, ensure_ascii=False)


class ToolRunner:
    """Runs tool calls for one session.

    Args:
        tools: the profile's tools.
        call_limit: the most calls (distinct ``call_id``s) run in this session; later
            calls get status ``limit``. 0 allows none.
        clock: stamps ``started_ns``/``ended_ns``.
        rng: draws mock failures (seed it for reproducible runs).
        session_id: when given, idempotency keys are ``vp-<session_id>-<call_id>``
            (unique across sessions whose providers reuse call ids); else ``vp-<call_id>``.

    Each call is bounded by its tool's ``impl.timeout_ms`` (0 = no timeout), for mock
    latency as for HTTP. Every distinct ``call_id`` counts against ``call_limit``, also
    calls refused as ``unknown_tool`` or ``bad_arguments``. Empty ``arguments`` mean ``{}``.

    Threading: the asyncio loop thread only. A call runs in its own task, shielded from
    the caller's cancellation, so a ``call_id`` always resolves to one cached result;
    :meth:`aclose` cancels calls still running.
    """

    def __init__(
        self,
        tools: tuple[ToolSpec, ...],
        call_limit: int,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        session_id: str = "",
    ) -> None:
        self._tools = {t.name: t for t in tools}
        self._limit = call_limit
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._prefix = f"vp-{session_id}-" if session_id else "vp-"
        self._results: dict[str, ToolResult] = {}
        self._pending: dict[str, asyncio.Task[ToolResult]] = {}
        self._calls = 0

    @property
    def calls(self) -> int:
        """Distinct calls seen so far (including refused ones)."""
        return self._calls

    @property
    def results(self) -> dict[str, ToolResult]:
        """Finished results by ``call_id`` (a copy)."""
        return dict(self._results)

    def idempotency_key(self, call_id: str) -> str:
        """The key for ``call_id``: stable, header-safe (``[A-Za-z0-9._~:-]``, ≤ 200 chars)."""
        return _UNSAFE_KEY_CHARS.sub("_", f"{self._prefix}{call_id}")[:200]

    async def run(self, call_id: str, name: str, arguments: str) -> ToolResult:
        """Run the call (or return its cached result if ``call_id`` was seen before).

        Never raises for a tool failure; see :class:`ToolResult` for the statuses.
        """
        cached = self._results.get(call_id)
        if cached is not None:
            return cached
        task = self._pending.get(call_id)
        if task is None:
            self._calls += 1
            task = asyncio.create_task(
                self._execute(call_id, name, arguments, self._calls), name=f"tool:{call_id}"
            )
            self._pending[call_id] = task
            task.add_done_callback(functools.partial(self._settle, call_id))
        return await asyncio.shield(task)

    def _settle(self, call_id: str, task: asyncio.Task[ToolResult]) -> None:
        self._pending.pop(call_id, None)
        if not task.cancelled() and task.exception() is None:
            self._results[call_id] = task.result()

    async def aclose(self) -> None:
        """Cancel calls still running and wait for them to end."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _execute(self, call_id: str, name: str, arguments: str, ordinal: int) -> ToolResult:
        started = self._clock.now_ns()
        key = self.idempotency_key(call_id)

        def done(status: str, output: str) -> ToolResult:
            return ToolResult(
                call_id, name, arguments, status, output, started, self._clock.now_ns(), key
            )

        if ordinal > self._limit:
            return done("limit", _error_json(f"tool call limit of {self._limit} reached"))
        spec = self._tools.get(name)
        if spec is None:
            return done("unknown_tool", _error_json(f"unknown tool {name!r}"))
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except (ValueError, AttributeError):
            return done("bad_arguments", _error_json("arguments are not valid JSON"))
        if not isinstance(args, dict):
            return done("bad_arguments", _error_json("arguments must be a JSON object"))
        impl = spec.impl
        timeout_s = impl.timeout_ms / 1000 if impl.timeout_ms > 0 else None
        try:
            async with asyncio.timeout(timeout_s):
                if impl.type == "http":
                    output = await self._http(impl.url, args, key)
                else:
                    output = await self._mock(spec)
        except TimeoutError:
            return done("timeout", _error_json(f"tool {name} timed out after {impl.timeout_ms} ms"))
        except ToolError as exc:
            return done("error", _error_json(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a tool failure must never reach the bridge
            return done("error", _error_json(f"tool {name} failed: {type(exc).__name__}: {exc}"))
        size = len(output.encode("utf-8", "surrogatepass"))
        if size > MAX_RESULT_BYTES:  # it would go to the model, the log and session files
            return done(
                "error",
                _error_json(
                    f"tool {name} result too large ({size} bytes; the limit is "
                    f"{MAX_RESULT_BYTES})"
                ),
            )
        return done("ok", output)

    async def _mock(self, spec: ToolSpec) -> str:
        impl = spec.impl
        fail = self._rng.random() < impl.failure_rate
        if impl.latency_ms > 0:
            await asyncio.sleep(impl.latency_ms / 1000)  # the simulated latency itself
        if fail:
            raise ToolError(f"simulated failure of {spec.name}")
        result = impl.result if impl.result is not None else {"ok": True}
        return json.dumps(result, ensure_ascii=False, default=str)

    async def _http(self, url: str, args: dict[str, Any], key: str) -> str:
        body = json.dumps(args, ensure_ascii=False).encode("utf-8")
        status, reason, payload = await http_post(
            url, body, {"Content-Type": "application/json", "Idempotency-Key": key}
        )
        if not 200 <= status < 300:
            detail = plain_text(payload[:1000].decode("utf-8", "replace"), 200)
            text = f"HTTP {status} {plain_text(reason, 60)}".strip()
            raise ToolError(f"{text}: {detail}" if detail else text)
        if not payload.strip():
            if status == 204:
                return "{}"
            raise ToolError(f"HTTP {status} with an empty body (expected JSON)")
        try:
            value = json.loads(payload)
        except ValueError:
            raise ToolError(f"HTTP {status} response is not JSON") from None
        return json.dumps(value, ensure_ascii=False)


async def http_post(
    url: str, body: bytes, headers: dict[str, str], max_bytes: int = MAX_RESPONSE_BYTES
) -> tuple[int, str, bytes]:
    """POST ``body`` to ``url`` over HTTP/1.1 (``Connection: close``) and return
    ``(status, reason, body)``. Redirects are not followed. Bound it with a timeout.

    Raises:
        ToolError: bad URL, connection failure, malformed or oversized response.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ToolError("the tool url is not valid") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ToolError("the tool url must be http:// or https://")
    tls = parts.scheme == "https"
    port = port or (443 if tls else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rsplit("@", 1)[-1]
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host_header}",
        "User-Agent: voiceprobe",
        "Accept: application/json",
        "Connection: close",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    try:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl.create_default_context() if tls else None
        )
    except OSError as exc:
        raise ToolError(f"cannot connect to {host}:{port} ({exc.strerror or exc})") from None
    try:
        writer.write(head + body)
        await writer.drain()
        status_line = await reader.readline()
        match = re.match(rb"HTTP/1\.[01] (\d{3})(?: (.*))?\r?\n$", status_line)
        if not match:
            raise ToolError("malformed HTTP response")
        status = int(match.group(1))
        reason = (match.group(2) or b"").decode("latin-1")
        resp_headers: dict[str, str] = {}
        for _ in range(200):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            resp_headers[name.strip().lower()] = value.strip()
        else:
            raise ToolError("too many HTTP response headers")
        payload = await _read_body(reader, resp_headers, max_bytes)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise ToolError(f"HTTP exchange with {host}:{port} failed ({type(exc).__name__})") from None
    finally:
        writer.close()
    return status, reason, payload


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], max_bytes: int
) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            total += size
            if total > max_bytes:
                raise ToolError("HTTP response too large")
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        return b"".join(chunks)
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > max_bytes:
            raise ToolError("HTTP response too large")
        return await reader.readexactly(length)
    data = await reader.read(max_bytes + 1)
    while data and len(data) <= max_bytes:
        more = await reader.read(max_bytes + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) > max_bytes:
        raise ToolError("HTTP response too large")
    return data
