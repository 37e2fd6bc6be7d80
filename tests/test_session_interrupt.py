"""A call interrupted while its session folder is being made (Ctrl-C just as a suite case
starts) still closes that folder out ``interrupted``: nothing is left ``running``."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from app.audio.fileport import WavFilePort
from app.bridge import session as session_mod
from app.bridge.providers import DEFAULT_SCENARIO, plan_provider
from app.bridge.session import CallSetup, run_call
from app.profile import load_profile
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from app.store.writer import SessionWriter


def test_cancelled_while_the_session_folder_is_made(tmp_path: Path, monkeypatch) -> None:
    made = threading.Event()
    release = threading.Event()

    class SlowIndexWriter(SessionWriter):
        """The real writer, whose creation is held after session.json is written (a
        slow index write), so the cancel lands while the call awaits it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.set()
            assert release.wait(30)

    monkeypatch.setattr(session_mod, "SessionWriter", SlowIndexWriter)
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    plan, profile = plan_provider("sim", load_profile(None))
    setup = CallSetup(profile=profile, plan=plan, data_root=tmp_path / "data")

    async def main() -> None:
        call = asyncio.create_task(run_call(setup, WavFilePort.from_wav(wav, rate=16000)))
        assert await asyncio.to_thread(made.wait, 60)
        call.cancel()  # the call awaits the writer's creation now
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(main())
    metas = [
        json.loads(p.read_text()) for p in (tmp_path / "data" / "sessions").glob("*/session.json")
    ]
    assert len(metas) == 1
    assert metas[0]["status"] == "interrupted", metas[0]["status"]
