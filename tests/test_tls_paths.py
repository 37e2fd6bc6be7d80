"""Every network path to a provider, tested the way users reach it.

Real TLS on loopback with a CA made by the test (trustme): ``voiceprobe call`` as a
subprocess dials the simulator over ``wss://`` with ``--ca-file`` or ``SSL_CERT_FILE``,
the *default* URLs the code builds (``wss://api.openai.com/...``, Gemini's
``generativelanguage.googleapis.com``) and an Azure-style URL through an HTTP CONNECT
proxy named by ``HTTPS_PROXY`` (the proxy, written here, tunnels every host to the
simulator, so no packet leaves the machine), and a certificate from an unknown CA is
refused before any key is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from app.errors import ConfigError
from app.providers.tls import client_ssl_context
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from app.sim.server import SimThread
from tests.conftest import REPO

OPENAI_KEY = "sk-test-tls-0123456789abcdefghijklmnop"
GEMINI_KEY = "AIzaTestTls0123456789abcdefghijklmnopq"
HOSTS = ("127.0.0.1", "localhost", "api.openai.com", "*.openai.azure.com",
         "generativelanguage.googleapis.com")
SCENARIO = """
name: tls-one-turn
timing: {response_delay_ms: 50, first_audio_ms: 100, chunk_ms: 100, realtime_factor: 4.0}
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can."
"""


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, pem


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("caller")
    sc_path = tmp / "scenario.yaml"
    sc_path.write_text(SCENARIO)
    wav = tmp / "caller.wav"
    write_caller_wav(load_scenario(str(sc_path)), wav)
    return sc_path, wav


def server_context(authority: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert(*HOSTS).configure_cert(ctx)
    return ctx


@pytest.fixture
def tls_sim(ca: tuple[trustme.CA, Path], caller: tuple[Path, Path]) -> Iterator[SimThread]:
    sim = SimThread(load_scenario(str(caller[0])), ssl_context=server_context(ca[0]))
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def gemini_sim(ca: tuple[trustme.CA, Path], caller: tuple[Path, Path]) -> Iterator[SimThread]:
    sim = SimThread(
        load_scenario(str(caller[0])), dialect="gemini", ssl_context=server_context(ca[0])
    )
    sim.start()
    yield sim
    sim.stop()


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback that tunnels every target to one local port and
    records the targets it was asked for (as a corporate proxy would see them)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.targets: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="test-proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.targets.append(target)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def proxy_to(request: pytest.FixtureRequest) -> Iterator[Any]:
    proxies: list[ConnectProxy] = []

    def make(sim: SimThread) -> ConnectProxy:
        port = int(sim.server.url.split(":")[2].split("/")[0])
        p = ConnectProxy(port)
        p.start()
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
                             "WSS_PROXY", "WS_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR",
                             "OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"}
    }
    env["VOICEPROBE_HOME"] = str(home)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    env.update(extra)
    return env


def call(wav: Path, out: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--json",
         "--out", str(out), *args],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )


def assert_answered(proc: subprocess.CompletedProcess[str], key: str, out: Path) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] is True
    assert len(summary["turns"]) == 1
    assert summary["turns"][0]["spans"]["voice_to_voice"]["ms"] > 0
    assert key not in proc.stdout + proc.stderr
    for f in out.rglob("*"):
        if f.is_file():
            assert key.encode() not in f.read_bytes(), f
    return summary


def opened(sim: SimThread) -> list[dict[str, Any]]:
    return [r for r in sim.truth() if r["event"] == "connection" and r.get("state") == "open"]


# --- the context itself ------------------------------------------------------------------


def test_client_context_verifies_and_loads_ca_files(
    tmp_path: Path, ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ctx = client_ssl_context(str(ca[1]))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert any("trustme" in str(c.get("issuer")) for c in ctx.get_ca_certs())
    with pytest.raises(ConfigError, match="file not found"):
        client_ssl_context(str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a cert")
    with pytest.raises(ConfigError, match="not a PEM"):
        client_ssl_context(str(junk))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        client_ssl_context(None)


# --- OpenAI over real TLS ----------------------------------------------------------------


def test_openai_call_over_wss_with_ca_file(
    tmp_path: Path, tls_sim: SimThread, ca: tuple[trustme.CA, Path], caller: tuple[Path, Path]
) -> None:
    url = tls_sim.server.url
    assert url.startswith("wss://127.0.0.1:")
    proc = call(caller[1], tmp_path / "data", clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY),
                "--provider", "openai", "--url", url, "--ca-file", str(ca[1]))
    assert_answered(proc, OPENAI_KEY, tmp_path / "data")
    port = url.split(":")[2].split("/")[0]
    assert f"the openai key goes to 127.0.0.1:{port} over TLS" in proc.stderr
    (conn,) = opened(tls_sim)
    assert conn["credential_headers"] == ["Authorization"]
    assert "model=gpt-realtime" in conn["path"]


def test_openai_call_over_wss_with_ssl_cert_file(
    tmp_path: Path, tls_sim: SimThread, ca: tuple[trustme.CA, Path], caller: tuple[Path, Path]
) -> None:
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY, SSL_CERT_FILE=str(ca[1]))
    proc = call(caller[1], tmp_path / "data", env, "--provider", "openai",
                "--url", tls_sim.server.url)
    assert_answered(proc, OPENAI_KEY, tmp_path / "data")


def test_openai_default_url_through_https_proxy_from_env(
    tmp_path: Path, tls_sim: SimThread, ca: tuple[trustme.CA, Path],
    caller: tuple[Path, Path], proxy_to: Any,
) -> None:
    """No --url: the code's own default, wss://api.openai.com/v1/realtime?model=…, reached
    through HTTPS_PROXY (the proxy tunnels it to the simulator), verified by hostname."""
    proxy = proxy_to(tls_sim)
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY, SSL_CERT_FILE=str(ca[1]),
                    HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")
    proc = call(caller[1], tmp_path / "data", env, "--provider", "openai")
    assert_answered(proc, OPENAI_KEY, tmp_path / "data")
    assert proxy.targets == ["api.openai.com:443"]
    assert "the openai key goes to api.openai.com:443 over TLS" in proc.stderr
    events = next((tmp_path / "data" / "sessions").glob("*/events.jsonl")).read_text()
    assert f"api.openai.com:443 via proxy 127.0.0.1:{proxy.port}" in events
    (conn,) = opened(tls_sim)
    assert conn["path"] == "/v1/realtime?model=gpt-realtime"
    assert conn["credential_headers"] == ["Authorization"]


def test_azure_url_over_tls_sends_api_key_header(
    tmp_path: Path, tls_sim: SimThread, ca: tuple[trustme.CA, Path],
    caller: tuple[Path, Path], proxy_to: Any,
) -> None:
    proxy = proxy_to(tls_sim)
    url = ("wss://myres.openai.azure.com/openai/realtime?api-version=2025-08-28"
           "&deployment=gpt-realtime")
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY,
                    HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")
    proc = call(caller[1], tmp_path / "data", env, "--provider", "openai", "--url", url,
                "--ca-file", str(ca[1]))
    assert_answered(proc, OPENAI_KEY, tmp_path / "data")
    assert proxy.targets == ["myres.openai.azure.com:443"]
    (conn,) = opened(tls_sim)
    assert conn["path"] == "/openai/realtime?api-version=2025-08-28&deployment=gpt-realtime"
    assert conn["credential_headers"] == ["api-key"]


def test_gemini_default_url_over_tls_through_proxy(
    tmp_path: Path, gemini_sim: SimThread, ca: tuple[trustme.CA, Path],
    caller: tuple[Path, Path], proxy_to: Any,
) -> None:
    proxy = proxy_to(gemini_sim)
    env = clean_env(tmp_path, GEMINI_API_KEY=GEMINI_KEY, SSL_CERT_FILE=str(ca[1]),
                    HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}")
    proc = call(caller[1], tmp_path / "data", env, "--provider", "gemini")
    assert_answered(proc, GEMINI_KEY, tmp_path / "data")
    assert proxy.targets == ["generativelanguage.googleapis.com:443"]
    (conn,) = opened(gemini_sim)
    assert conn["path"].startswith(
        "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    )
    assert conn["credential_headers"] == ["x-goog-api-key"]


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_untrusted_certificate_refused_before_any_key(
    tmp_path: Path, tls_sim: SimThread, gemini_sim: SimThread, caller: tuple[Path, Path],
    provider: str,
) -> None:
    """No --ca-file, no SSL_CERT_FILE: the test CA is unknown, the handshake fails, the
    server never sees an HTTP request (so no key), and the user reads one clear line."""
    sim = tls_sim if provider == "openai" else gemini_sim
    key = OPENAI_KEY if provider == "openai" else GEMINI_KEY
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY, GEMINI_API_KEY=GEMINI_KEY)
    proc = call(caller[1], tmp_path / "data", env, "--provider", provider,
                "--url", sim.server.url, "--no-reconnect")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "certificate is not trusted" in errors[0]
    assert errors[0].count("--ca-file") == 1, errors[0]  # the fix, said once
    assert key not in proc.stdout + proc.stderr
    assert opened(sim) == []


# --- where the key may go ----------------------------------------------------------------


def test_profile_url_cannot_send_the_key_elsewhere(
    tmp_path: Path, caller: tuple[Path, Path]
) -> None:
    profile = tmp_path / "shared.yaml"
    profile.write_text("name: shared\nprovider: openai\nurl: wss://collector.example/v1\n")
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY)
    proc = call(caller[1], tmp_path / "data", env, "--provider", "openai",
                "--profile", str(profile))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "collector.example" in proc.stderr and "--url" in proc.stderr
    assert not (tmp_path / "data" / "sessions").exists() or not any(
        (tmp_path / "data" / "sessions").iterdir()
    )


@pytest.mark.parametrize(
    "source",
    [("--url", "ws://10.0.0.5:8080/v1"), ("--profile", "url: ws://agent.example/v1")],
)
def test_key_never_travels_in_clear_text_off_loopback(
    tmp_path: Path, caller: tuple[Path, Path], source: tuple[str, str]
) -> None:
    flag, value = source
    if flag == "--profile":
        path = tmp_path / "p.yaml"
        path.write_text(f"name: p\nprovider: openai\n{value}\n")
        value = str(path)
    env = clean_env(tmp_path, OPENAI_API_KEY=OPENAI_KEY)
    proc = call(caller[1], tmp_path / "data", env, "--provider", "openai", flag, value)
    assert proc.returncode == 2
    assert "clear text" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_key_destination_rule() -> None:
    from app.providers.keyhost import (
        UnconfirmedKeyHostError,
        check_key_destination,
        is_vendor_host,
    )

    assert is_vendor_host("openai", "api.openai.com")
    assert is_vendor_host("openai", "myres.openai.azure.com")
    assert not is_vendor_host("openai", "openai.azure.com.evil.example")
    assert not is_vendor_host("openai", "api.openai.com.evil.example")
    assert is_vendor_host("gemini", "generativelanguage.googleapis.com")
    assert is_vendor_host("gemini", "us-central1-aiplatform.googleapis.com")
    assert not is_vendor_host("gemini", "evil-aiplatform.googleapis.com.example")
    assert not is_vendor_host("gemini", "api.openai.com")
    dest = check_key_destination("openai", "wss://api.openai.com/v1/realtime?model=m")
    assert dest.describe() == "the openai key goes to api.openai.com:443 over TLS"
    with pytest.raises(UnconfirmedKeyHostError) as info:
        check_key_destination("openai", "wss://proxy.corp/v1/realtime")
    assert info.value.host == "proxy.corp"
    named = check_key_destination("openai", "wss://Proxy.Corp:8443/v1", ["proxy.corp"])
    assert named.describe().endswith(", not openai's own host")
    with pytest.raises(ConfigError, match="clear text"):
        check_key_destination("gemini", "ws://proxy.corp/ws", ["proxy.corp"])
    assert check_key_destination("openai", "ws://[::1]:9/v1", ["::1"]).loopback


def test_app_controller_asks_before_a_profile_url_gets_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from app.bridge.controller import CallController
    from app.bridge.request import CallRequest
    from app.profile import load_profile

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nprovider: openai\nurl: wss://proxy.corp/v1\n")
    profile = load_profile(str(path))
    ctl = CallController(data_root=tmp_path)
    try:
        request = CallRequest(profile=profile, provider="openai")
        assert ctl.key_host_to_confirm(request) == "proxy.corp"
        # A URL from the app's settings is not "named on the command line" either.
        settings_url = CallRequest(
            profile=load_profile(None), provider="openai", url="wss://eu.proxy.corp/v1"
        )
        assert ctl.key_host_to_confirm(settings_url) == "eu.proxy.corp"
        confirmed = replace(request, confirmed_hosts=("proxy.corp",))
        assert ctl.key_host_to_confirm(confirmed) is None
        assert ctl.key_host_to_confirm(CallRequest(load_profile(None), "openai")) is None
    finally:
        ctl.shutdown()


# --- scrubbing by rule --------------------------------------------------------------------


def test_url_scrubbing_goes_by_rule() -> None:
    from app.providers.ws import safe_url
    from app.secrets import scrub_url
    from app.store.writer import scrub_mapping

    url = ("wss://u:pw@h.example/ws?x-api-secret=s1&X-Goog-Signature=s2&auth=s3"
           "&sessionToken=s4&client_credential=s5&sig=s6&PassWord=s7&alt=sse&model=m")
    assert safe_url(url) == "wss://h.example/ws?alt=sse&model=m"
    scrubbed = scrub_url(url)
    for secret in ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "pw"):
        assert f"={secret}" not in scrubbed and f":{secret}@" not in scrubbed
    assert "alt=sse" in scrubbed
    snap = scrub_mapping({"x-api-secret": "v", "Proxy-Authorization": "v", "voice": "alloy"})
    assert snap == {"x-api-secret": "***", "Proxy-Authorization": "***", "voice": "alloy"}
