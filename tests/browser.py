"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol, for
the report tests: open a file, record console messages, exceptions, log entries and network
requests, evaluate expressions, take a screenshot and print to PDF.

Chromium is started with a fresh profile folder and every background service off; its
DevTools endpoint is read from the ``DevTools listening on ws://...`` line it prints.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
)  # fmt: skip
START_TIMEOUT_S = 60.0


def chromium_path() -> str:
    """The ``chromium`` command (installed by scripts/setup.sh); fails when missing."""
    path = shutil.which("chromium")
    assert path, "chromium is not installed: run scripts/setup.sh (Debian package chromium)"
    return path


class Page:
    """One tab, attached with a flat DevTools session."""

    def __init__(self, ws: Any, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._event_seen = asyncio.Event()

    def feed(self, msg: dict[str, Any]) -> None:
        if "id" in msg and msg["id"] in self._waiting:
            self._waiting.pop(msg["id"]).set_result(msg)
        elif msg.get("sessionId") == self.session_id:
            self.events.append(msg)
            self._event_seen.set()

    async def send(self, method: str, limit_s: float = 30.0, **params: Any) -> dict[str, Any]:
        mid = next(self._ids) + 1000
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[mid] = fut
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params,
                                       "sessionId": self.session_id}))  # fmt: skip
        msg = await asyncio.wait_for(fut, limit_s)
        assert "error" not in msg, (method, msg["error"])
        return dict(msg.get("result") or {})

    async def wait_event(self, method: str, limit_s: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(limit_s):
            while True:
                for ev in self.events:
                    if ev.get("method") == method:
                        return ev
                self._event_seen.clear()
                await self._event_seen.wait()

    async def evaluate(self, expression: str, limit_s: float = 30.0) -> Any:
        res = await self.send("Runtime.evaluate", limit_s, expression=expression,
                              awaitPromise=True, returnByValue=True)  # fmt: skip
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        return res["result"].get("value")

    async def screenshot(self) -> bytes:
        res = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(res["data"])

    async def pdf(self) -> bytes:
        res = await self.send("Page.printToPDF", 60.0)
        return base64.b64decode(res["data"])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries (CSP violations among
        them) and requests for anything but the page file and its inline ``data:`` parts."""
        out = []
        for ev in self.events:
            method, p = ev.get("method"), ev.get("params") or {}
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console: {p.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                url = str(p.get("request", {}).get("url", ""))
                if not url.startswith(("file:", "data:")):
                    out.append(f"request: {url[:120]}")
        return out


@asynccontextmanager
async def open_page(path: Path, width: int = 1200, height: int = 900) -> AsyncIterator[Page]:
    """Start Chromium, open ``path`` in a fresh tab with console, log and network events
    on, wait for its load event, yield the :class:`Page`; stop Chromium after."""
    profile = tempfile.mkdtemp(prefix="voiceprobe-chromium-")
    page_url = path.resolve().as_uri()  # noqa: ASYNC240 - one stat, before anything runs
    proc = await asyncio.create_subprocess_exec(
        chromium_path(), *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = ""
        async with asyncio.timeout(START_TIMEOUT_S):
            while not url:
                line = (await proc.stderr.readline()).decode(errors="replace")
                assert line, "chromium exited before its DevTools endpoint was up"
                if "DevTools listening on " in line:
                    url = line.split("DevTools listening on ", 1)[1].strip()
        drain = asyncio.create_task(_drain(proc.stderr))
        async with websockets.connect(url, max_size=None) as ws:
            target = await _browser_call(ws, "Target.createTarget", url="about:blank")
            attached = await _browser_call(
                ws, "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page = Page(ws, attached["sessionId"])
            reader = asyncio.create_task(_read(ws, page))
            try:
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await page.send(f"{domain}.enable")
                await page.send("Emulation.setDeviceMetricsOverride", width=width,
                                height=height, deviceScaleFactor=1, mobile=False)  # fmt: skip
                await page.send("Page.navigate", url=page_url)
                await page.wait_event("Page.loadEventFired", 60.0)
                yield page
            finally:
                reader.cancel()
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def _browser_call(ws: Any, method: str, **params: Any) -> dict[str, Any]:
    """A browser-level command, before any page session reads the socket."""
    mid = hash(method) & 0xFFFF
    await ws.send(json.dumps({"id": mid, "method": method, "params": params}))
    async with asyncio.timeout(30):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("id") == mid:
                assert "error" not in msg, (method, msg["error"])
                return dict(msg["result"])


async def _read(ws: Any, page: Page) -> None:
    async for raw in ws:
        page.feed(json.loads(raw))
