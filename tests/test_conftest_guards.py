"""The suite's own guards can fail: a leaked thread or Timer fails the test that leaked it.

Each case runs a real pytest in a subprocess on a small test file whose conftest uses the
project's fixtures from ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, TIME_SCALE

CONFTEST = "from tests.conftest import no_leaked_threads, no_module_leaks  # noqa: F401\n"

LEAKS = '''
import threading

import pytest

from tests.conftest import module_owns_threads

STOP = threading.Event()


def test_leaks_a_daemon_thread():
    threading.Thread(target=STOP.wait, name="forgotten", daemon=True).start()


def test_leaks_a_timer():
    timer = threading.Timer(60, print)
    timer.daemon = True  # so this pytest process can exit
    timer.start()


def test_joins_its_thread():
    t = threading.Thread(target=lambda: None, name="joined", daemon=True)
    t.start()
    t.join()


def test_finishing_thread_gets_time_to_end():
    done = threading.Event()
    threading.Thread(target=done.wait, args=(0.2,), name="finishing", daemon=True).start()


@pytest.fixture(scope="module")
def module_thread():
    t = threading.Thread(target=STOP.wait, name="module-owned", daemon=True)
    t.start()
    yield t


def test_uses_a_module_thread(module_thread):
    assert module_thread.is_alive()


LAZY_STOP = threading.Event()


@pytest.fixture(scope="module")
def lazy_pool(request):
    module_owns_threads(request, "lazy-")
    threads = []
    yield threads
    LAZY_STOP.set()
    for t in threads:
        t.join()


def test_starts_a_thread_its_module_fixture_owns_and_stops(lazy_pool):
    t = threading.Thread(target=LAZY_STOP.wait, name="lazy-1", daemon=True)
    t.start()
    lazy_pool.append(t)
'''


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``source`` as a test file in ``tmp_path``, with the project's guards."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_case.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-p", "no:xdist", "-q", "-rE", "test_case.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120 * TIME_SCALE,
    )


def test_leaked_daemon_thread_timer_and_module_thread_fail(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, LEAKS)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "6 passed, 3 errors" in out, out
    assert "a_daemon_thread left 1 thread(s) running: Thread 'forgotten' (daemon=True)" in out
    assert "test_leaks_a_timer left 1 thread(s) running: Timer" in out
    assert "running print" in out
    assert "module test_case.py left 1 thread(s) running: Thread 'module-owned'" in out  # once
    assert "'joined'" not in out and "'finishing'" not in out and "lazy-" not in out
