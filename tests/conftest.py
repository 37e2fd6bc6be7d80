"""Shared test set-up: a private data folder, offscreen Qt, the timing unit, the private
PulseAudio server and the thread-leak guard.

``VOICEPROBE_TIME_SCALE`` (default 1) scales timing tolerances on slow machines, like the
websockets test suite's ``WEBSOCKETS_TESTS_TIMEOUT_FACTOR``.

Every test, and every module's fixtures, must stop the threads they start (daemon threads
and ``threading.Timer`` objects included): :func:`no_leaked_threads` fails the test that
leaves one running, naming the thread and what it runs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pulse import PulseServer, running_pulse_server

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "VOICEPROBE_HOME" not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
    # Each pytest-xdist worker gets a data folder of its own (sessions.db, sessions).
    os.environ["VOICEPROBE_HOME"] = tempfile.mkdtemp(prefix="voiceprobe-test-")

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = float(os.environ.get("VOICEPROBE_TIME_SCALE", "1"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep every pjsua2 test on one xdist worker (``--dist loadgroup``, see
    scripts/test.sh) and the frozen-app build on another."""
    for item in items:
        for marker in ("sip", "build"):
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.xdist_group(marker))
                break


@pytest.fixture(scope="session")
def pulse_server() -> Iterator[PulseServer]:
    """A private PulseAudio daemon for the whole session (one per process: see
    :func:`tests.pulse.running_pulse_server`)."""
    with running_pulse_server() as server:
        yield server


@pytest.fixture(autouse=True, scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A VOICEPROBE_HOME of its own for each test module (its fixtures included), so no
    test file sees sessions or desktop settings another file left behind, in any order."""
    folder = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOICEPROBE_HOME", str(folder))
        yield folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VOICEPROBE_HOME for one test."""
    monkeypatch.setenv("VOICEPROBE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# Threads that live for the whole process by design, by name prefix. A thread listed here
# is never reported as leaked; every entry says why it outlives the test that started it.
PROCESS_WIDE_THREADS: dict[str, str] = {}

# How long a thread that is already finishing may take to end after its test (seconds).
THREAD_JOIN_S = 2.0 * TIME_SCALE

# Leaks already reported, so a module's check does not repeat its tests' reports.
_REPORTED: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


# Thread name prefixes that a module fixture owns although its tests start them lazily.
_MODULE_OWNED = pytest.StashKey[tuple[str, ...]]()


def module_owns_threads(request: pytest.FixtureRequest, *prefixes: str) -> None:
    """Declare, from a module-scoped fixture, that threads named ``prefixes…`` belong to it.

    For a resource that starts its threads on first use in some test (say a SIP controller
    whose endpoint starts when the first test registers) and stops them in its own
    teardown: the tests are not blamed for them, and :func:`no_module_leaks` still fails
    the module if they outlive the fixture.
    """
    node = request.node
    node.stash[_MODULE_OWNED] = (*node.stash.get(_MODULE_OWNED, ()), *prefixes)


def leaked_threads(
    before: set[threading.Thread], timeout_s: float, owned: tuple[str, ...] = ()
) -> list[threading.Thread]:
    """Return the threads started since ``before`` that are still running.

    Daemon threads and started ``threading.Timer`` objects count like any other thread.
    Threads that are finishing get up to ``timeout_s`` in total to end. Foreign threads
    that only called into Python (``threading._DummyThread``, e.g. a PortAudio callback
    thread) cannot be joined and are not ours, so they are skipped, as are the
    :data:`PROCESS_WIDE_THREADS` and threads named with an ``owned`` prefix.
    """
    deadline = time.monotonic() + timeout_s
    leaked = []
    for t in threading.enumerate():
        if t in before or t in _REPORTED or t is threading.current_thread():
            continue
        if isinstance(t, threading._DummyThread):  # noqa: SLF001  (a foreign thread)
            continue
        if t.name.startswith((*PROCESS_WIDE_THREADS, *owned)):
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t)
    return leaked


def describe_thread(t: threading.Thread) -> str:
    """One line naming a thread, its kind and what it runs, for a leak report."""
    kind = "Timer" if isinstance(t, threading.Timer) else type(t).__name__
    target = getattr(t, "function", None) or getattr(t, "_target", None)
    what = getattr(target, "__qualname__", repr(target)) if target is not None else "run()"
    return f"{kind} {t.name!r} (daemon={t.daemon}) running {what}"


def _check_threads(before: set[threading.Thread], where: str, owned: tuple[str, ...] = ()) -> None:
    leaked = leaked_threads(before, THREAD_JOIN_S, owned)
    _REPORTED.update(leaked)
    if leaked:
        pytest.fail(
            f"{where} left {len(leaked)} thread(s) running: "
            + "; ".join(describe_thread(t) for t in leaked),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def no_leaked_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a thread (daemon or not) or a pending Timer running.

    Function fixtures the test uses are torn down first, so threads they stop are not
    counted; threads a module fixture owns (see :func:`module_owns_threads`) are checked
    by :func:`no_module_leaks` instead.
    """
    before = set(threading.enumerate())
    yield
    module = request.node.getparent(pytest.Module)
    owned = module.stash.get(_MODULE_OWNED, ()) if module is not None else ()
    _check_threads(before, request.node.nodeid, owned)


@pytest.fixture(autouse=True, scope="module")
def no_module_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the last test of a module whose module fixtures leave threads running."""
    before = set(threading.enumerate())
    yield
    _check_threads(before, f"module {request.node.nodeid}")
