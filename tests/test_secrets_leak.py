"""The API key never reaches disk or the terminal, whatever the endpoint does with it.

Real programs over loopback: ``voiceprobe sim`` as the OpenAI endpoint, a closed port,
and small servers written here that echo the ``Authorization`` header back (inside an
``error`` event and the close reason, and in an HTTP 401 body). After each
``voiceprobe call`` every file under the data folder and all output is searched for the
key, in plain, JSON-escaped, URL-quoted and base64 forms: zero occurrences.

The key lives only in the environment: there is no keyring backend on this machine, and
the environment fallback must be enough.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from app.secrets import keyring_available
from tests.conftest import REPO, TIME_SCALE

SCENARIO = """\
name: secrets
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes."
    tool_call:
      name: get_weather
      arguments: {city: Paris}
      after_result: "Sunny."
"""
PROFILE = """\
name: secrets
tools:
  - name: get_weather
    parameters: {type: object, properties: {city: {type: string}}}
    impl: {type: mock, result: {sky: sunny}}
"""


def _key() -> tuple[str, str]:
    marker = secrets.token_hex(12)
    return f"sk-test-{marker}", marker


def _b64_cores(secret: bytes) -> set[bytes]:
    """Substrings present in ANY base64 text that encodes ``secret`` somewhere inside
    (one per alignment, the partially encoded edges cut off)."""
    cores = set()
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            text = enc(b"\0" * pad + secret).rstrip(b"=")
            cores.add(text[4:-4])
    return cores


def leak_forms(key: str, marker: str) -> set[bytes]:
    forms = {key.encode(), marker.encode(), marker.upper().encode()}
    forms.add(json.dumps(key)[1:-1].encode())
    forms.add(quote(key, safe="").encode())
    forms.add(key.encode("utf-16-le"))
    forms |= _b64_cores(marker.encode())
    return {f for f in forms if len(f) >= 8}


def find_leaks(forms: set[bytes], roots: list[Path], texts: dict[str, str]) -> list[str]:
    """Where any form occurs: file paths (and file names) under ``roots``, and output names."""
    hits = []
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if any(f in str(path).encode() for f in forms):
                hits.append(f"name {path}")
            if path.is_file():
                blob = path.read_bytes()
                hits += [f"{path}: {f!r}" for f in forms if f in blob]
    for name, text in texts.items():
        blob = text.encode("utf-8", "surrogateescape")
        hits += [f"{name}: {f!r}" for f in forms if f in blob]
    return hits


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
    }
    env["VOICEPROBE_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout * TIME_SCALE,
        cwd=REPO,
        env=env,
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A one-turn scenario with a tool call, its caller WAV, and a profile with the tool."""
    scenario = tmp_path / "secrets.yaml"
    scenario.write_text(SCENARIO)
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    wav = tmp_path / "caller.wav"
    proc = cli(_env(tmp_path / "samples"), "sample", "--scenario", str(scenario), "--out", str(wav))
    assert proc.returncode == 0, proc.stderr
    return {"scenario": scenario, "profile": profile, "wav": wav}


@pytest.fixture
def sim(tmp_path: Path, files: dict[str, Path]) -> Iterator[tuple[str, list[str]]]:
    """``voiceprobe sim`` in a subprocess: yields (base URL for --url, its output lines)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--scenario", str(files["scenario"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(tmp_path / "sim-home"),
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(s) for s in proc.stdout or []], daemon=True).start()
    output: list[str] = []
    try:
        first = lines.get(timeout=30 * TIME_SCALE).strip()
        output.append(first)
        assert first.startswith("ws://127.0.0.1:") and first.endswith("/realtime"), first
        yield first.rsplit("/realtime", 1)[0], output
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        while not lines.empty():
            output.append(lines.get())
        output.append(err)


def _credential(headers: Headers) -> str:
    """The credential header's value (OpenAI: ``Authorization``; Gemini: ``x-goog-api-key``)."""
    return headers.get("Authorization") or headers.get("x-goog-api-key") or ""


class EchoServer:
    """A loopback WebSocket server, on its own thread, that leaks the credential back.

    ``mode="error"``: accepts, sends an ``error`` event whose message quotes the
    ``Authorization`` header, then closes with that header in the close reason.
    ``mode="http401"``: refuses the handshake with HTTP 401 and the header in the body.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.seen_auth: list[str] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        auth = _credential(request.headers)
        self.seen_auth.append(auth)
        if self.mode != "http401":
            return None
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {auth}"}}).encode()
        headers = Headers([("Content-Type", "application/json")])
        return Response(HTTPStatus.UNAUTHORIZED.value, "Unauthorized", headers, body)

    async def _handler(self, ws: ServerConnection) -> None:
        auth = _credential(ws.request.headers) if ws.request else ""
        await ws.recv()  # the client's session.update / setup
        event = {
            "type": "error",
            "event_id": "evt_1",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": f"Incorrect API key provided: {auth}. Header was {auth!r}.",
                "param": json.dumps({"authorization": auth}),
            },
        }
        await ws.send(json.dumps(event))
        await ws.close(4001, f"bad key {auth}"[:120])

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handler, "127.0.0.1", 0, process_request=self._process_request
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EchoServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_keyring_backend_env_is_enough(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no keyring backend, the env var alone configures the key."""
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    assert not keyring_available()
    key, marker = _key()
    no_backend = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    proc = cli(_env(home, OPENAI_API_KEY=key, **no_backend), "keys", "status")
    assert proc.returncode == 0, proc.stderr
    assert "openai: configured" in proc.stdout and "gemini: not configured" in proc.stdout
    assert "sip: not configured" in proc.stdout  # every key `keys set` takes
    assert not find_leaks(leak_forms(key, marker), [home], {"out": proc.stdout + proc.stderr})


@pytest.mark.slow
def test_call_against_simulator_leaks_nothing(
    home: Path, tmp_path: Path, files: dict[str, Path], sim: tuple[str, list[str]]
) -> None:
    base, sim_output = sim
    key, marker = _key()
    env = _env(home, OPENAI_API_KEY=key)
    out = tmp_path / "out"
    args = ["call", "--input", str(files["wav"]), "--provider", "openai", "--url", base]
    args += ["--profile", str(files["profile"]), "--tag", "secrets"]
    json_run = cli(env, *args, "--out", str(out), "--json")
    assert json_run.returncode == 0, json_run.stderr
    summary = json.loads(json_run.stdout)
    assert summary["provider"] == "openai" and summary["ok"], summary
    assert summary["turns"] and summary["turns"][0]["tool_calls"], "the call went through"
    plain_run = cli(env, *args)  # into VOICEPROBE_HOME, with the progress printer
    assert plain_run.returncode == 0, plain_run.stderr
    listing = cli(env, "sessions", "list", "--json")
    show = cli(env, "sessions", "show", json.loads(listing.stdout)[0]["id"], "--json")
    texts = {
        "json stdout": json_run.stdout,
        "json stderr": json_run.stderr,
        "plain stdout": plain_run.stdout,
        "plain stderr": plain_run.stderr,
        "list": listing.stdout + listing.stderr,
        "show": show.stdout + show.stderr,
        "sim output": "\n".join(sim_output),
    }
    assert not find_leaks(leak_forms(key, marker), [home, out, tmp_path], texts)
    assert (out / "sessions" / summary["session_id"] / "events.jsonl").stat().st_size > 0


def test_refused_endpoint_leaks_nothing(home: Path, files: dict[str, Path]) -> None:
    key, marker = _key()
    url = f"ws://127.0.0.1:{_closed_port()}/v1?api_key={key}&token={key}"
    proc = cli(
        _env(home, OPENAI_API_KEY=key),
        "call", "--input", str(files["wav"]), "--provider", "openai", "--url", url,
    )  # fmt: skip
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "connection refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    assert not find_leaks(leak_forms(key, marker), [home], texts)


@pytest.mark.parametrize(
    ("provider", "mode"),
    [
        # The "error" calls run until the bridge gives up (about 10 s each, twice).
        pytest.param("openai", "error", marks=pytest.mark.slow),
        ("openai", "http401"),
        pytest.param("gemini", "error", marks=pytest.mark.slow),
        ("gemini", "http401"),
    ],
)
def test_server_echoing_the_key_leaks_nothing(
    home: Path, files: dict[str, Path], provider: str, mode: str
) -> None:
    key, marker = _key()
    env = _env(home, OPENAI_API_KEY=key, GEMINI_API_KEY=key)
    runs = []
    with EchoServer(mode) as server:
        for extra in ([], ["--json"]):
            runs.append(
                cli(
                    env,
                    "call",
                    "--input",
                    str(files["wav"]),
                    "--provider",
                    provider,
                    "--url",
                    f"ws://127.0.0.1:{server.port}/v1",
                    *extra,
                )  # fmt: skip
            )
    wire = f"Bearer {key}" if provider == "openai" else key
    # The key did go over the wire (once per connection; the bridge may reconnect).
    assert len(server.seen_auth) >= 2 and set(server.seen_auth) == {wire}
    texts = {}
    for n, proc in enumerate(runs):
        assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr
        texts[f"stdout {n}"], texts[f"stderr {n}"] = proc.stdout, proc.stderr
    if mode == "http401":
        assert "HTTP 401" in runs[0].stderr
    elif provider == "openai":
        assert "invalid_api_key" in runs[0].stderr
    assert not find_leaks(leak_forms(key, marker), [home], texts)
    events = list((home / "sessions").glob("*/events.jsonl"))
    assert len(events) == 2, "the failed calls were still recorded"
