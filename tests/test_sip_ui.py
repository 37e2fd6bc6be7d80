"""The SIP panel under pytest-qt (offscreen): built from a fake controller (no pjsua2), and
once against a real :class:`SipController` registering at kamailio.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import ConfigError
from app.events import Event, Notice
from sip.config import SipAccountConfig
from sip.events import CallQuality, CallState, RegistrationState
from tests.conftest import module_owns_threads
from tests.sip_peers import (
    Kamailio,
    have,
    registered,
    run_kamailio,
    stays_registered,
    wait_until,
)

#: The SIP phase of scripts/test.sh runs every pjsua2 user in one process.
pytestmark = pytest.mark.sip

T = 1_000_000_000


class FakeSipController:
    """The panel's controller interface; events are posted from another thread."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.calls: list[tuple[str, Any]] = []

    def subscribe(self, cb: Any) -> None:
        self.callbacks.append(cb)

    def unsubscribe(self, cb: Any) -> None:
        self.callbacks.remove(cb)

    def emit(self, *events: Event) -> None:
        def run() -> None:
            for ev in events:
                for cb in list(self.callbacks):
                    cb(ev)

        t = threading.Thread(target=run, name="fake-sip")
        t.start()
        t.join()

    def apply_account(self, cfg: SipAccountConfig) -> None:
        self.calls.append(("apply_account", cfg))

    def dial(self, uri: str) -> None:
        self.calls.append(("dial", uri))

    def answer(self) -> None:
        self.calls.append(("answer", None))

    def reject(self, code: int = 486) -> None:
        self.calls.append(("reject", code))

    def hangup(self) -> None:
        self.calls.append(("hangup", None))

    def send_dtmf(self, digits: str) -> None:
        self.calls.append(("dtmf", digits))

    def set_listen(self, on: bool) -> None:
        self.calls.append(("listen", on))


class Secrets:
    def __init__(self, fail: bool = False) -> None:
        self.stored: dict[str, str] = {}
        self.fail = fail

    def __call__(self, name: str, value: str) -> None:
        if self.fail:
            raise ConfigError(f"no OS keyring available to store {name}")
        self.stored[name] = value


def _texts(widget: Any) -> str:
    from PySide6.QtWidgets import QLabel, QLineEdit

    parts = [w.text() for w in widget.findChildren(QLabel)]
    parts += [w.text() for w in widget.findChildren(QLineEdit)]
    return "\n".join(parts)


@pytest.fixture
def fake(qtbot: Any) -> Iterator[tuple[Any, FakeSipController, Secrets]]:
    from ui.views.sip_panel import SipPanel

    ctl = FakeSipController()
    secrets = Secrets()
    panel = SipPanel(ctl, secrets=secrets, remember=False)
    qtbot.addWidget(panel)
    panel.show()
    yield panel, ctl, secrets
    panel.close_panel()
    assert not ctl.callbacks


def _fill(panel: Any, uri: str, registrar: str, password: str) -> None:
    panel.uri.setText(uri)
    panel.registrar.setText(registrar)
    panel.password.setText(password)


def test_register_stores_password_in_keyring_and_shows_status(qtbot: Any, fake: tuple) -> None:
    panel, ctl, secrets = fake
    _fill(panel, "sip:alice@example.com", "sip:example.com", "hunter22")
    panel.transport.setCurrentText("tls")
    panel.srtp.setCurrentText("optional")
    panel.register_button.click()
    assert secrets.stored == {"sip_password": "hunter22"}
    assert panel.password.text() == ""  # never shown back
    (name, cfg), = ctl.calls
    assert name == "apply_account" and cfg.uri == "sip:alice@example.com"
    assert (cfg.transport, cfg.srtp, cfg.password) == ("tls", "optional", "")
    assert panel.registration.text() == "registering…"
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(RegistrationState(t_ns=T, account=cfg.uri, code=200, reason="OK", active=True))
    assert panel.registration.text() == "registered (200 OK)"
    failure = "registration failed: 401 Unauthorized (check user name and password)"
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(RegistrationState(t_ns=2 * T, account=cfg.uri, code=401,
                                   reason=failure, active=False))
    assert panel.registration.text() == failure
    assert "hunter22" not in _texts(panel)


def test_without_keyring_password_is_kept_for_the_session(qtbot: Any, fake: tuple) -> None:
    panel, ctl, secrets = fake
    secrets.fail = True
    _fill(panel, "sip:bob@example.com", "sip:example.com", "pw-session-1")
    panel.register_button.click()
    (_, cfg), = ctl.calls
    assert cfg.password == "pw-session-1"
    assert panel.password.text() == ""
    assert "session only" in panel.notice.text() and panel.notice.isVisible()
    assert "pw-session-1" not in _texts(panel)


def test_bad_uri_is_reported_not_sent(fake: tuple) -> None:
    panel, ctl, _ = fake
    _fill(panel, "alice@example.com", "", "")
    panel.register_button.click()
    assert ctl.calls == []
    assert panel.registration.text().startswith("not registered: uri")


def test_incoming_call_answer_quality_dtmf_and_end(qtbot: Any, fake: tuple) -> None:
    panel, ctl, _ = fake
    remote = "<b>Mallory</b> <sip:mallory@127.0.0.1>"
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=T, call_id="c1", state="incoming", code=0, reason="",
                           remote_uri=remote))
    assert panel.incoming.isVisible()
    assert panel.incoming_label.text() == f"Incoming call from {remote}"  # plain text
    panel.answer_button.click()
    assert ctl.calls[-1] == ("answer", None)
    assert not panel.incoming.isVisible()
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=2 * T, call_id="c1", state="confirmed", code=200,
                           reason="OK", remote_uri=remote))
    assert panel.call_status.text().startswith("confirmed")
    assert panel.hangup_button.isEnabled() and not panel.dial_button.isEnabled()
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallQuality(t_ns=3 * T, call_id="c1", codec="PCMU/8000", jitter_ms=1.5,
                             loss_pct=19.9, rtt_ms=None, mos=2.58))
    q = {k: v.text() for k, v in panel.q_labels.items()}
    assert q == {"codec": "PCMU/8000", "jitter": "1.5 ms", "loss": "19.9 %", "rtt": "-",
                 "mos": "2.58"}
    panel.keys["5"].click()
    panel.keys["#"].click()
    assert ctl.calls[-2:] == [("dtmf", "5"), ("dtmf", "#")]
    panel.listen.setChecked(True)
    assert ctl.calls[-1] == ("listen", True)
    panel.hangup_button.click()
    assert ctl.calls[-1] == ("hangup", None)
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=4 * T, call_id="c1", state="disconnected", code=200,
                           reason="Normal call clearing", remote_uri=remote))
    assert panel.call_status.text() == "ended (200 Normal call clearing)"
    assert panel.dial_button.isEnabled() and not panel.hangup_button.isEnabled()


def test_reject_and_caller_gone_while_ringing(qtbot: Any, fake: tuple) -> None:
    panel, ctl, _ = fake
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=T, call_id="r1", state="incoming", code=0, reason="",
                           remote_uri="sip:x@h"))
    panel.reject_button.click()
    assert ctl.calls[-1] == ("reject", 486) and not panel.incoming.isVisible()
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=2 * T, call_id="r2", state="incoming", code=0, reason="",
                           remote_uri="sip:y@h"))
    assert panel.incoming.isVisible()
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(CallState(t_ns=3 * T, call_id="r2", state="disconnected", code=487,
                           reason="Request Terminated", remote_uri="sip:y@h"))
    assert not panel.incoming.isVisible()


def test_dial_pad_types_when_idle_and_dial_places_call(qtbot: Any, fake: tuple) -> None:
    panel, ctl, _ = fake
    panel.target.setText("agent@example.com")
    panel.keys["7"].click()  # idle: typed, not DTMF
    assert panel.target.text() == "agent@example.com7"
    panel.target.setText("agent@example.com")
    panel.dial_button.click()
    assert ctl.calls[-1] == ("dial", "sip:agent@example.com")
    assert not panel.dial_button.isEnabled()
    with qtbot.waitSignal(panel.updated, timeout=2000):
        ctl.emit(Notice(t_ns=T, level="error", message="cannot dial sip:x: bad URI"))
    assert panel.notice.text() == "cannot dial sip:x: bad URI"


def test_sip_window_hosts_the_panel(qtbot: Any) -> None:
    from PySide6.QtWidgets import QWidget

    from ui.sip_window import SipWindow, open_sip_window

    ctl = FakeSipController()
    parent = QWidget()
    qtbot.addWidget(parent)
    w = open_sip_window(parent, ctl)
    assert isinstance(w, SipWindow) and w.isVisible()
    w.close()
    assert open_sip_window(parent, ctl) is w  # reused, still subscribed
    assert len(ctl.callbacks) == 1
    w.detach()
    assert not ctl.callbacks
    w.close()


# --- a real controller at a real registrar --------------------------------------------

PASSWORD = "ui-pw-2718"


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    if not have("kamailio"):
        pytest.fail("kamailio not installed: ./scripts/setup.sh installs it")
    with run_kamailio(tmp_path_factory.mktemp("kamailio"), PASSWORD) as k:
        yield k


SCENARIO = """name: ui-one-turn
voice_rate: 175
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can hear you clearly."
"""


@pytest.fixture(scope="module")
def real(
    registrar: Kamailio, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple]:
    """One real SipController for the module (one pjsua2 endpoint per process).

    Its endpoint thread and loop workers start when a test first registers and stop at
    ``shutdown`` below.
    """
    from app.bridge.providers import plan_provider
    from app.bridge.session import CallSetup
    from app.profile import load_profile
    from sip.controller import SipController

    tmp = tmp_path_factory.mktemp("sipui")
    sc = tmp / "scenario.yaml"
    sc.write_text(SCENARIO)

    def setup(call: Any) -> CallSetup:
        plan, profile = plan_provider("sim", load_profile(None), scenario=str(sc))
        return CallSetup(profile=profile, plan=plan, data_root=tmp / "data", tags=["sip"])

    ctl = SipController(setup)
    module_owns_threads(request, "voiceprobe-sip", "asyncio_")
    seen: list[Event] = []
    ctl.subscribe(seen.append)
    try:
        yield ctl, seen, sc
    finally:
        ctl.shutdown()


@pytest.mark.sip
def test_real_controller_registers_and_shows_failure(
        qtbot: Any, registrar: Kamailio, real: tuple) -> None:
    from ui.views.sip_panel import SipPanel

    ctl, seen, _ = real
    panel = SipPanel(ctl, secrets=Secrets(fail=True), remember=False)
    qtbot.addWidget(panel)
    try:
        # A wrong password: the failure text, never the password.
        _fill(panel, registrar.aor("ui"), f"sip:{registrar.domain}", "wrong-pw-99")
        panel.register_button.click()
        qtbot.waitUntil(lambda: panel.registration.text().startswith("registration failed"),
                        timeout=8000)
        text = panel.registration.text()
        assert text.startswith(("registration failed: 401", "registration failed: 403"))
        assert "check user name and password" in text
        assert "wrong-pw-99" not in _texts(panel)
        # The right one registers (the account is replaced).
        _fill(panel, registrar.aor("ui"), f"sip:{registrar.domain}", PASSWORD)
        panel.register_button.click()
        qtbot.waitUntil(lambda: panel.registration.text().startswith("registered"), timeout=8000)
        assert panel.registration.text() == "registered (200 OK)"
        assert ctl.registration is not None and ctl.registration.active
        assert PASSWORD not in _texts(panel)
    finally:
        panel.close_panel()
    assert any(isinstance(e, RegistrationState) and e.code == 200 for e in seen)


@pytest.mark.sip
def test_a_changed_account_stays_registered(registrar: Kamailio, real: tuple) -> None:
    """Applying new account settings replaces the account: the new one must stay. (The old
    account's pjsua2 object, freed 0.5 s after its removal, deleted the new account that
    had reused its id: registered, then gone from the registrar.)"""
    import time

    ctl, _, _ = real

    def apply(user: str) -> None:
        ctl.apply_account(SipAccountConfig(uri=registrar.aor(user),
                                           registrar=f"sip:{registrar.domain}",
                                           password=PASSWORD)).result(10)
        wait_until(lambda: ctl.registration is not None and ctl.registration.active
                   and ctl.registration.account == registrar.aor(user), 8.0,
                   f"{user} to register")

    apply("ui-before")
    apply("ui")  # the tester edits the account; "ui" is also what the call test dials
    # Well past the old 0.5 s hold.
    assert stays_registered(registrar, "ui", time.monotonic() + 1.5), \
        "the new account was unregistered"
    assert ctl.registration is not None and ctl.registration.active
    assert not registered(registrar, "ui-before")


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.skipif(not have("baresip", "espeak-ng", "sox"), reason="SIP peers not installed")
def test_real_incoming_call_answered_from_the_panel(
        qtbot: Any, registrar: Kamailio, real: tuple, tmp_path: Path) -> None:
    from app.events import CallStarted, UserTranscript
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from tests.sip_peers import run_baresip
    from ui.views.sip_panel import SipPanel

    ctl, seen, sc = real
    if ctl.registration is None or not ctl.registration.active:
        ctl.apply_account(SipAccountConfig(uri=registrar.aor("ui"),
                                           registrar=f"sip:{registrar.domain}",
                                           password=PASSWORD)).result(10)
        qtbot.waitUntil(lambda: ctl.registration is not None and ctl.registration.active,
                        timeout=8000)
    wav = tmp_path / "caller8k.wav"
    write_caller_wav(load_scenario(str(sc)), wav, rate=8000)
    panel = SipPanel(ctl, secrets=Secrets(fail=True), remember=False)
    qtbot.addWidget(panel)
    panel.show()
    first = len(seen)
    try:
        with run_baresip(tmp_path / "bob", wav, user="bob", registrar=registrar) as bob:
            bob.dial(registrar.aor("ui"))
            qtbot.waitUntil(panel.incoming.isVisible, timeout=8000)
            assert "bob@" in panel.incoming_label.text()
            panel.answer_button.click()
            qtbot.waitUntil(lambda: panel.call_status.text().startswith("confirmed"),
                            timeout=10000)
            qtbot.waitUntil(lambda: panel.q_labels["codec"].text() == "PCMU/8000",
                            timeout=8000)
            bob.wait_event("CALL_CLOSED", 30.0)  # baresip hangs up when its WAV ends
        qtbot.waitUntil(lambda: panel.call_status.text().startswith("ended"), timeout=8000)
        qtbot.waitUntil(lambda: not ctl.in_call, timeout=10000)
    finally:
        panel.close_panel()
    events = seen[first:]
    summary = ctl.last_summary
    assert summary is not None and summary["ok"], summary and summary["errors"]
    assert summary["turns"][0]["user_transcript"] == "Hello, can you hear me?"
    # The bridged call's core events reach subscribers, like a mic call's.
    assert any(isinstance(e, CallStarted) for e in events)
    assert any(isinstance(e, UserTranscript) for e in events)
    # Each SIP event once, although the bridge re-emits them into the session too.
    states = [e for e in events if isinstance(e, CallState)]
    assert len({id(e) for e in states}) == len(states)
    assert [e.state for e in states].count("confirmed") == 1
    mos = float(panel.q_labels["mos"].text())
    assert mos > 4.0
