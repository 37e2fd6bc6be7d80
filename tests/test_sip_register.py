"""Registration against a real kamailio registrar with digest auth; account files."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import ConfigError
from sip.config import SipAccountConfig, load_account_config
from sip.events import RegistrationState
from tests.sip_peers import (
    Kamailio,
    free_port,
    have,
    registered,
    run_kamailio,
    stays_registered,
)

pytestmark = pytest.mark.sip

PASSWORD = "s3cret-pw"


# --- account files (no SIP stack needed) -------------------------------------------------


def test_account_file_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "acc.yaml"
    y.write_text("uri: sip:alice@example.com\nregistrar: sip:example.com\ntransport: tcp\n")
    cfg = load_account_config(y)
    assert cfg.username == "alice" and cfg.transport == "tcp" and cfg.realm == "*"
    j = tmp_path / "acc.json"
    j.write_text(json.dumps({"uri": "sip:bob@h", "password": "pw1234", "srtp": "optional",
                             "transport": "tls"}))
    cfg = load_account_config(j)
    assert cfg.srtp == "optional" and "pw1234" not in repr(cfg)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("uri: alice@example.com\n", "uri"),
        ("uri: sip:a@b\ntransport: sctp\n", "transport"),
        ("uri: sip:a@b\nsrtp: always\n", "srtp"),
        ("uri: sip:a@b\nreg_interval: 5\n", "reg_interval"),
        ("uri: sip:a@b\ncolour: red\n", "colour"),
        ("registrar: sip:b\n", "uri"),
        ("uri: sip:a@b\ntls_ca_file: /nonexistent/ca.pem\n", "tls_ca_file"),
        ("uri: sip:a@b\nsrtp: mandatory\n", "srtp"),
    ],
)
def test_account_file_bad_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "acc.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_account_config(p)
    assert err.value.field == field
    # The file, the field once, then the problem: one line.
    assert str(err.value) == f"{p}: {field}: {err.value.problem}", str(err.value)
    assert f"{field}:" not in err.value.problem and "\n" not in str(err.value)


def test_account_file_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_account_config(tmp_path / "nope.yaml")
    p = tmp_path / "acc.yaml"
    p.write_text("uri: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_account_config(p)
    p.write_text("uri: sip:a@example.org\nuri: sip:b@example.org\n")
    with pytest.raises(ConfigError, match="'uri' appears twice"):
        load_account_config(p)


def test_password_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEPROBE_SIP_PASSWORD", "from-env-123")
    monkeypatch.setattr("keyring.get_password", lambda *a: None)
    cfg = SipAccountConfig(uri="sip:a@b")
    assert cfg.password == "" and cfg.resolved_password() == "from-env-123"


# --- real registrar ----------------------------------------------------------------------

needs_peers = pytest.mark.skipif(not have("kamailio"), reason="kamailio not installed")


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio"), PASSWORD) as k:
        yield k


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[object, list[object]]]:
    from sip.endpoint import SipEndpoint

    events: list[object] = []
    ep = SipEndpoint(on_event=events.append)
    ep.start()
    try:
        yield ep, events
    finally:
        ep.shutdown()


def _cfg(k: Kamailio, user: str, password: str, **kw: object) -> SipAccountConfig:
    return SipAccountConfig(
        uri=k.aor(user), registrar=f"sip:{k.domain}", password=password, **kw  # type: ignore[arg-type]
    )


@needs_peers
def test_register_with_digest_auth(registrar: Kamailio, endpoint: tuple) -> None:
    ep, events = endpoint
    t0 = time.monotonic()
    acc = ep.add_account(_cfg(registrar, "alice", PASSWORD))
    st = acc.wait_registration(5.0)
    assert st is not None, "no registration outcome"
    assert (st.code, st.active) == (200, True), st.reason
    assert time.monotonic() - t0 < 2.0
    assert any(isinstance(e, RegistrationState) and e.account == acc.aor and e.code == 200
               for e in events)
    acc.remove()


@needs_peers
def test_wrong_password_is_a_clear_failure(registrar: Kamailio, endpoint: tuple) -> None:
    ep, events = endpoint
    acc = ep.add_account(_cfg(registrar, "mallory", "wrong-password"))
    st = acc.wait_registration(5.0)
    assert st is not None
    assert st.code in (401, 403) and not st.active
    assert st.reason.startswith(f"registration failed: {st.code}")
    assert "wrong-password" not in st.reason
    acc.remove()
    # The endpoint is still usable: a good account registers after the failure.
    good = ep.add_account(_cfg(registrar, "alice2", PASSWORD))
    st2 = good.wait_registration(5.0)
    assert st2 is not None and st2.code == 200
    good.remove()


@needs_peers
def test_unreachable_registrar_times_out_quickly(endpoint: tuple) -> None:
    ep, _ = endpoint
    dead = free_port()  # nothing listens here
    cfg = SipAccountConfig(uri=f"sip:carol@127.0.0.1:{dead}", registrar=f"sip:127.0.0.1:{dead}",
                           password="x1234", reg_timeout=2.0)
    t0 = time.monotonic()
    acc = ep.add_account(cfg)
    st = acc.wait_registration(6.0)
    elapsed = time.monotonic() - t0
    assert st is not None and not st.active
    assert st.code in (408, 503), st
    assert st.reason.startswith("registration failed")
    assert elapsed < 4.0
    acc.remove()


@needs_peers
def test_removing_an_account_never_takes_the_next_one_with_it(registrar: Kamailio,
                                                             endpoint: tuple) -> None:
    """pjsua reuses account ids, and a pjsua2 Account deletes whatever account holds its id
    when it is destroyed: the removed account must be gone before the next one is added.
    (It was kept 0.5 s after removal, so the next account was deleted 0.5 s later: its
    registration then ended in a 408 or its binding vanished.)"""
    ep, _ = endpoint
    first = ep.add_account(_cfg(registrar, "dora", PASSWORD))
    st = first.wait_registration(5.0)
    assert st is not None and st.code == 200, st
    first.remove()
    removed = time.monotonic()
    nxt = ep.add_account(_cfg(registrar, "eve", PASSWORD))
    st = nxt.wait_registration(5.0)
    assert st is not None and (st.code, st.active) == (200, True), st
    # The registrar still holds the binding well past the old 0.5 s hold.
    assert stays_registered(registrar, "eve", removed + 1.5), "the next account was unregistered"
    assert not registered(registrar, "dora")
    nxt.remove()
