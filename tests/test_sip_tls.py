"""SIP over TLS verifies the server; SRTP needs secure signalling unless opted out.

The peer is a real kamailio registrar with its tls module, serving a certificate for
127.0.0.1 issued by a test CA (``trustme``). voiceprobe must register when given that CA,
and refuse (one clear reason naming the certificate, no binding at the registrar) with no
CA, another CA, or a name the certificate does not cover.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from app.errors import ConfigError
from sip.config import SipAccountConfig, load_account_config
from tests.conftest import REPO
from tests.sip_peers import Kamailio, registered, run_kamailio

pytestmark = pytest.mark.sip

PASSWORD = "tls-pw-5061"
ENTRY = (
    "import sys; from app.cli import main; from sip.cli import register; "
    "sys.exit(main(sys.argv[1:], extend=register))"
)


@dataclass
class Pki:
    ca_file: Path  # the CA that issued the registrar's certificate
    other_ca_file: Path  # an unrelated CA
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    p = Pki(d / "ca.pem", d / "other-ca.pem", d / "server.pem", d / "server.key")
    ca.cert_pem.write_to_path(str(p.ca_file))
    trustme.CA().cert_pem.write_to_path(str(p.other_ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(p.cert))
    leaf.private_key_pem.write_to_path(str(p.key))
    return p


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio-tls"), PASSWORD,
                      tls=(pki.cert, pki.key)) as k:
        yield k


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Any]:
    from sip.endpoint import SipEndpoint

    ep = SipEndpoint()
    ep.start()
    try:
        yield ep
    finally:
        ep.shutdown()


def _tls_cfg(k: Kamailio, user: str, host: str = "127.0.0.1", **kw: Any) -> SipAccountConfig:
    return SipAccountConfig(uri=k.aor(user), registrar=f"sip:{host}:{k.tls_port};transport=tls",
                            password=PASSWORD, transport="tls", **kw)


# --- TLS verification against a real registrar ---------------------------------------------


def test_register_over_tls_with_the_ca_file(registrar: Kamailio, endpoint: Any,
                                            pki: Pki) -> None:
    acc = endpoint.add_account(_tls_cfg(registrar, "alice", tls_ca_file=str(pki.ca_file)))
    st = acc.wait_registration(8.0)
    assert st is not None, "no registration outcome"
    assert (st.code, st.active) == (200, True), st.reason
    assert registered(registrar, "alice")
    acc.remove()


@pytest.mark.parametrize("ca", ["system", "other"])
def test_untrusted_certificate_is_refused(registrar: Kamailio, endpoint: Any, pki: Pki,
                                          ca: str) -> None:
    user = f"mallory-{ca}"
    kw = {"tls_ca_file": str(pki.other_ca_file)} if ca == "other" else {}
    acc = endpoint.add_account(_tls_cfg(registrar, user, **kw))
    st = acc.wait_registration(8.0)
    assert st is not None and not st.active
    assert st.reason.startswith("registration failed:"), st.reason
    assert "TLS certificate" in st.reason and "could not be verified" in st.reason, st.reason
    assert "untrusted" in st.reason and registrar.tls_domain in st.reason, st.reason
    assert "\n" not in st.reason and PASSWORD not in st.reason
    assert not registered(registrar, user)
    acc.remove()


def test_certificate_for_another_name_is_refused(registrar: Kamailio, endpoint: Any,
                                                 pki: Pki) -> None:
    # The CA is trusted but the certificate names 127.0.0.1, not localhost.
    acc = endpoint.add_account(_tls_cfg(registrar, "eve", host="localhost",
                                        tls_ca_file=str(pki.ca_file)))
    st = acc.wait_registration(8.0)
    assert st is not None and not st.active
    assert "TLS certificate" in st.reason and "could not be verified" in st.reason, st.reason
    assert "identity" in st.reason, st.reason
    assert not registered(registrar, "eve")
    acc.remove()


def test_a_call_to_an_unverified_server_fails_clearly(registrar: Kamailio,
                                                      endpoint: Any) -> None:
    acc = endpoint.add_account(SipAccountConfig(uri="sip:dialer@127.0.0.1", transport="tls"))
    call = endpoint.make_call(acc, f"sip:bob@{registrar.tls_domain};transport=tls")
    assert call.ended.wait(8.0), "the call did not end"
    assert not call.confirmed.is_set()
    final = call.ended_future.result(1.0)
    assert "TLS certificate" in final.reason and "could not be verified" in final.reason, final
    assert registrar.tls_domain in final.reason and "\n" not in final.reason
    acc.remove()


def test_verification_opt_out_registers_with_an_untrusted_certificate(
        registrar: Kamailio, endpoint: Any) -> None:
    acc = endpoint.add_account(_tls_cfg(registrar, "trusting", tls_verify=False))
    st = acc.wait_registration(8.0)
    assert st is not None and (st.code, st.active) == (200, True), st.reason
    acc.remove()


def test_cli_refuses_an_unverified_registrar_in_one_line(registrar: Kamailio,
                                                        tmp_path: Path) -> None:
    env = dict(os.environ, VOICEPROBE_HOME=str(tmp_path / "home"),
               VOICEPROBE_SIP_PASSWORD=PASSWORD)
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "sip", "answer", "--uri", registrar.aor("cli"),
         "--registrar", f"sip:{registrar.tls_domain};transport=tls", "--transport", "tls",
         "--provider", "sim", "--timeout", "5"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "certificate" in ln]
    assert len(lines) == 1, proc.stderr
    assert "could not be verified" in lines[0] and "--tls-ca-file" in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr


# --- the CA option ----------------------------------------------------------------------------


def test_ca_file_must_be_a_readable_pem_file(tmp_path: Path, pki: Pki) -> None:
    assert SipAccountConfig(uri="sip:a@b", transport="tls",
                            tls_ca_file=str(pki.ca_file)).tls_ca_file == str(pki.ca_file)
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello\n")
    for bad in (tmp_path / "missing.pem", tmp_path, not_pem):
        with pytest.raises(ConfigError) as err:
            SipAccountConfig(uri="sip:a@b", transport="tls", tls_ca_file=str(bad))
        assert err.value.field == "tls_ca_file" and str(bad) in str(err.value)
    acc = tmp_path / "acc.yaml"
    acc.write_text(f"uri: sip:a@b\ntransport: tls\ntls_ca_file: {tmp_path / 'missing.pem'}\n")
    with pytest.raises(ConfigError) as err:
        load_account_config(acc)
    assert err.value.field == "tls_ca_file" and str(acc) in str(err.value)


def test_cli_bad_ca_file_is_one_line_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ, VOICEPROBE_HOME=str(tmp_path / "home"))
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "sip", "dial", "bob", "--uri", "sip:a@127.0.0.1",
         "--transport", "tls", "--tls-ca-file", str(tmp_path / "nope.pem")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "tls_ca_file" in proc.stderr and "nope.pem" in proc.stderr


# --- SRTP and secure signalling ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("srtp", ["optional", "mandatory"])
def test_srtp_over_insecure_signalling_is_refused(transport: str, srtp: str,
                                                  tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        SipAccountConfig(uri="sip:a@b", transport=transport, srtp=srtp)
    msg = str(err.value)
    assert err.value.field == "srtp" and "\n" not in msg
    assert "plaintext" in msg and "tls" in msg and "srtp_insecure_signaling" in msg
    acc = tmp_path / "acc.yaml"
    acc.write_text(f"uri: sip:a@b\ntransport: {transport}\nsrtp: {srtp}\n")
    with pytest.raises(ConfigError) as err:
        load_account_config(acc)
    assert err.value.field == "srtp" and str(acc) in str(err.value)
    # The explicit opt-out allows it.
    cfg = SipAccountConfig(uri="sip:a@b", transport=transport, srtp=srtp,
                           srtp_insecure_signaling=True)
    assert cfg.srtp == srtp


def test_cli_srtp_over_udp_needs_the_opt_out(tmp_path: Path) -> None:
    env = dict(os.environ, VOICEPROBE_HOME=str(tmp_path / "home"))
    base = [sys.executable, "-c", ENTRY, "sip", "dial", "bob", "--uri", "sip:a@127.0.0.1",
            "--srtp", "optional"]
    proc = subprocess.run(base, capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--srtp-insecure-signaling" in proc.stderr and "plaintext" in proc.stderr
    # With the opt-out the account is accepted: the command gets past the account check
    # (it then fails on the agent side's bad --max-seconds, a later check, with exit 2).
    proc = subprocess.run([*base, "--srtp-insecure-signaling", "--max-seconds", "0"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 2 and "--max-seconds" in proc.stderr, proc.stderr


def test_account_config_requires_secure_signalling_for_srtp() -> None:
    import pjsua2 as pj

    from sip.account import build_account_config

    tls = SipAccountConfig(uri="sip:a@b", transport="tls", srtp="mandatory")
    ac = build_account_config(tls, 0)
    assert ac.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_MANDATORY
    assert ac.mediaConfig.srtpSecureSignaling != 0
    opted_out = SipAccountConfig(uri="sip:a@b", transport="udp", srtp="optional",
                                 srtp_insecure_signaling=True)
    assert build_account_config(opted_out, 0).mediaConfig.srtpSecureSignaling == 0


def test_srtp_opt_out_account_is_created(endpoint: Any) -> None:
    acc = endpoint.add_account(SipAccountConfig(uri="sip:srtp-udp@127.0.0.1", srtp="optional",
                                                srtp_insecure_signaling=True))
    assert acc.contact.startswith("sip:127.0.0.1:")
    acc.remove()
