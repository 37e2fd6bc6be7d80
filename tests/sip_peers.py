"""Real SIP peers for tests: kamailio (registrar, optionally over TLS), baresip (headless
UA) and sipp.

Every peer runs on 127.0.0.1 with free ports and a temporary folder, is waited for by
polling a socket (never a fixed sleep) and is killed at teardown. Nothing here imports
pjsua2, so a peer can be used from any test.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

HOST = "127.0.0.1"


def have(*programs: str) -> bool:
    return all(shutil.which(p) for p in programs)


def free_port() -> int:
    """A port number free for both UDP and TCP on 127.0.0.1 (at the time of the call)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def wait_until(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> None:
    """Poll ``pred`` until it is true; raise ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(step)


def _peer(*argv: str, on_orphan: str = "KILL") -> list[str]:
    """``argv`` started so that it gets ``on_orphan`` when the test process dies (setpriv's
    parent-death signal): a pytest worker killed mid-test leaves no peer behind. kamailio
    takes TERM, which it passes on to the workers it forked; baresip, KILL (on TERM it
    waits to unregister from a registrar that may be gone)."""
    return ["setpriv", "--pdeathsig", on_orphan, *argv]


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """Stop a peer started in a session of its own (``start_new_session``): SIGTERM to its
    process group, then SIGKILL to the group, so a worker it forked (kamailio forks a
    dozen) cannot outlive it, even when the main process had to be killed."""
    if proc is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # The main process is gone; a worker that ignored the group's SIGTERM is not.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        return


# --- audio files ------------------------------------------------------------------------


def make_speech_wav(path: Path, text: str, rate: int = 8000) -> Path:
    """Synthesise ``text`` with espeak-ng and resample it to ``rate`` Hz mono PCM16."""
    raw = subprocess.run(
        ["espeak-ng", "--stdout", "-s", "150", text], check=True, capture_output=True
    ).stdout
    subprocess.run(
        ["sox", "-t", "wav", "-", "-r", str(rate), "-c", "1", "-b", "16", str(path)],
        input=raw,
        check=True,
        capture_output=True,
    )
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Return (int16 mono samples, rate) of a PCM16 WAV."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())[:, 0].copy()
    return data, rate


def rms(x: np.ndarray) -> float:
    if len(x) == 0:
        return 0.0
    f = x.astype(np.float64)
    return float(np.sqrt(np.dot(f, f) / len(f)))


def active_seconds(x: np.ndarray, rate: int, threshold: float = 300.0) -> float:
    """Seconds of 20 ms blocks whose RMS exceeds ``threshold`` (speech present)."""
    n = rate // 50
    blocks = len(x) // n
    if blocks == 0:
        return 0.0
    b = x[: blocks * n].astype(np.float64).reshape(blocks, n)
    r = np.sqrt((b * b).mean(axis=1))
    return float((r > threshold).sum()) * 0.02


def speech_span(x: np.ndarray, rate: int, threshold: float = 300.0) -> float:
    """Seconds from the first to the last 20 ms block above ``threshold``."""
    n = rate // 50
    blocks = len(x) // n
    if blocks == 0:
        return 0.0
    b = x[: blocks * n].astype(np.float64).reshape(blocks, n)
    idx = np.nonzero(np.sqrt((b * b).mean(axis=1)) > threshold)[0]
    if len(idx) == 0:
        return 0.0
    return float(idx[-1] - idx[0] + 1) * 0.02


# --- kamailio -----------------------------------------------------------------------------

_KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
{tls_listen}mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
{tls_module}loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "0");
            exit;
        }}
        save("location");
        exit;
    }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


# The TLS variant: kamailio's tls module (Debian package kamailio-tls-modules) serving a
# certificate issued by a test CA; clients are not asked for certificates.
_KAMAILIO_TLS_LISTEN = """enable_tls=yes
listen=tls:127.0.0.1:{tls_port}
alias="127.0.0.1:{tls_port}"
"""
_KAMAILIO_TLS_MODULE = """loadmodule "tls.so"
modparam("tls", "config", "{tls_cfg}")
"""
_KAMAILIO_TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {cert}
private_key = {key}

[client:default]
verify_certificate = no
require_certificate = no
"""


@dataclass
class Kamailio:
    """A running kamailio registrar (digest auth with one password for every user).

    ``tls_port`` is its TLS listener (0 when started without TLS); UDP and TCP listen on
    ``port`` either way.
    """

    port: int
    password: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    tls_port: int = 0

    @property
    def domain(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def tls_domain(self) -> str:
        return f"{HOST}:{self.tls_port}"

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"


def _options_ok(port: int, transport: str = "udp") -> bool:
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        me = s.getsockname()[1]
        msg = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK{call_id[:10]}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag=1\r\nTo: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        s.settimeout(0.1)
        s.sendto(msg.encode(), (HOST, port))
        try:
            data = s.recv(4096)
        except OSError:
            return False
        return data.startswith(b"SIP/2.0 200")


def _options_ok_tls(port: int) -> bool:
    """Whether an OPTIONS over TLS gets 200. Readiness only: the certificate is not checked
    here (the tests check it through the SIP stack under test)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    call_id = uuid.uuid4().hex
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as raw, \
                ctx.wrap_socket(raw) as s:
            me = s.getsockname()[1]
            msg = (
                f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {HOST}:{me};branch=z9hG4bK{call_id[:10]}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{HOST}>;tag=1\r\nTo: <sip:{HOST}:{port}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            s.sendall(msg.encode())
            return s.recv(4096).startswith(b"SIP/2.0 200")
    except OSError:
        return False


@contextlib.contextmanager
def run_kamailio(
    workdir: Path, password: str, tls: tuple[Path, Path] | None = None
) -> Iterator[Kamailio]:
    """Start kamailio as an in-memory registrar; yields once it answers OPTIONS.

    Args:
        workdir: folder for its configuration, pid and log.
        password: the digest password of every user.
        tls: ``(certificate, private key)`` PEM files: also listen for SIP over TLS on
            :attr:`Kamailio.tls_port` with that certificate (needs kamailio's tls module).
    """
    if not have("kamailio"):
        pytest.fail("kamailio not installed: ./scripts/setup.sh installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tls_port = 0
    tls_listen = tls_module = ""
    if tls is not None:
        tls_port = free_port()
        tls_cfg = workdir / "tls.cfg"
        tls_cfg.write_text(_KAMAILIO_TLS_CFG.format(cert=tls[0], key=tls[1]))
        tls_listen = _KAMAILIO_TLS_LISTEN.format(tls_port=tls_port)
        tls_module = _KAMAILIO_TLS_MODULE.format(tls_cfg=tls_cfg)
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(_KAMAILIO_CFG.format(port=port, password=password, tls_listen=tls_listen,
                                        tls_module=tls_module))
    log = open(workdir / "kamailio.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        _peer("kamailio", "-f", str(cfg), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir),
              on_orphan="TERM"),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: proc.poll() is not None or _options_ok(port), 10.0, "kamailio OPTIONS"
        )
        if tls_port:
            wait_until(lambda: proc.poll() is not None or _options_ok_tls(tls_port), 10.0,
                       "kamailio OPTIONS over TLS")
        if proc.poll() is not None:
            raise RuntimeError(f"kamailio exited: {(workdir / 'kamailio.log').read_text()[-2000:]}")
        yield Kamailio(port=port, password=password, proc=proc, workdir=workdir,
                       tls_port=tls_port)
    finally:
        _stop(proc)
        log.close()


# --- baresip ------------------------------------------------------------------------------


@dataclass
class Baresip:
    """A running headless baresip: plays ``source_wav`` into calls, records to ``rec_dir``."""

    user: str
    sip_port: int
    ctrl_port: int
    rec_dir: Path
    proc: subprocess.Popen[bytes]
    events: queue.Queue[dict[str, object]] = field(default_factory=queue.Queue)
    _sock: socket.socket | None = None
    _reader: threading.Thread | None = None
    _responses: queue.Queue[dict[str, object]] = field(default_factory=queue.Queue)

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    def connect(self) -> None:
        def try_connect() -> bool:
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=0.2)
            except OSError:
                return False
            return True

        wait_until(try_connect, 10.0, "baresip ctrl_tcp")
        assert self._sock is not None
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="baresip-ctrl", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        buf = b""
        sock = self._sock
        assert sock is not None
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                n = int(buf[:colon])
                if len(buf) < colon + 1 + n + 1:
                    break
                msg = json.loads(buf[colon + 1 : colon + 1 + n])
                buf = buf[colon + 1 + n + 1 :]
                if msg.get("response"):
                    self._responses.put(msg)
                elif msg.get("event"):
                    self.events.put(msg)

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, object]:
        assert self._sock is not None
        body = json.dumps({"command": command, "params": params, "token": uuid.uuid4().hex})
        data = body.encode()
        self._sock.sendall(f"{len(data)}:".encode() + data + b",")
        return self._responses.get(timeout=timeout)

    def dial(self, uri: str) -> dict[str, object]:
        return self.command("dial", uri)

    def hangup(self) -> dict[str, object]:
        return self.command("hangup")

    def wait_event(self, etype: str, timeout: float = 10.0) -> dict[str, object]:
        """Wait for the next ctrl_tcp event of ``type`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"baresip: no {etype} event within {timeout} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.get("type") == etype:
                return ev

    def recordings(self, kind: str) -> list[Path]:
        """sndfile dumps: ``kind`` is ``dec`` (received from the far end) or ``enc`` (sent)."""
        return sorted(self.rec_dir.glob(f"dump-*-{kind}.wav"))

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        _stop(self.proc)
        if self._reader is not None:
            self._reader.join(2.0)


_BARESIP_CONFIG = """poll_method epoll
sip_listen {host}:{sip_port}
sip_trans_def udp
net_interface {host}
audio_player alsa,null
audio_alert alsa,null
audio_source aufile,{wav}
ausrc_srate 8000
ausrc_channels 1
auplay_srate 8000
auplay_channels 1
audio_buffer 20-160
rtp_stats yes
rtcp_mux no
jitter_buffer_delay 1-10
snd_path {rec_dir}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module alsa.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen {host}:{ctrl_port}
"""


@contextlib.contextmanager
def run_baresip(
    workdir: Path,
    source_wav: Path,
    user: str = "bob",
    registrar: Kamailio | None = None,
    codecs: str = "PCMU/8000/1",
    answermode: str = "auto",
    extra_modules: tuple[str, ...] = (),
) -> Iterator[Baresip]:
    """Start baresip; with ``registrar`` it registers ``user`` there (password from it)."""
    if not have("baresip"):
        pytest.fail("baresip not installed: ./scripts/setup.sh installs it")
    cfgdir = workdir / "baresip"
    rec_dir = workdir / "rec"
    cfgdir.mkdir(parents=True, exist_ok=True)
    rec_dir.mkdir(parents=True, exist_ok=True)
    sip_port, ctrl_port = free_port(), free_port()
    (cfgdir / "config").write_text(
        _BARESIP_CONFIG.format(
            host=HOST, sip_port=sip_port, ctrl_port=ctrl_port, wav=source_wav, rec_dir=rec_dir
        )
        + "".join(f"module {m}.so\n" for m in extra_modules)
    )
    if registrar is None:
        acc = (
            f"<sip:{user}@{HOST}:{sip_port}>;regint=0;"
            f"answermode={answermode};audio_codecs={codecs}"
        )
    else:
        acc = (
            f"<sip:{user}@{registrar.domain}>;auth_pass={registrar.password};"
            f"outbound=\"sip:{registrar.domain};lr\";regint=60;"
            f"answermode={answermode};audio_codecs={codecs}"
        )
    (cfgdir / "accounts").write_text(acc + "\n")
    (cfgdir / "contacts").write_text("")
    log = open(workdir / "baresip.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        _peer("baresip", "-4", "-f", str(cfgdir)),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
    )
    peer = Baresip(user=user, sip_port=sip_port, ctrl_port=ctrl_port, rec_dir=rec_dir, proc=proc)
    try:
        peer.connect()
        if registrar is not None:
            wait_until(
                lambda: registered(registrar, user), 10.0, "baresip registration"
            )
        yield peer
    finally:
        peer.close()
        log.close()


def registered(k: Kamailio, user: str) -> bool:
    """Whether ``user`` has a contact at ``k`` (an OPTIONS to the AOR is routed, not 404)."""
    call_id = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        me = s.getsockname()[1]
        msg = (
            f"OPTIONS sip:{user}@{k.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK{call_id[:10]}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag=1\r\nTo: <sip:{user}@{k.domain}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        s.settimeout(0.5)
        s.sendto(msg.encode(), (HOST, k.port))
        try:
            while True:
                data = s.recv(4096)
                if data.startswith(b"SIP/2.0 1"):
                    continue
                return not data.startswith(b"SIP/2.0 404")
        except OSError:
            return False


def stays_registered(k: Kamailio, user: str, until: float) -> bool:
    """Whether ``user`` keeps a contact at ``k`` at every look until ``until`` (a
    ``time.monotonic`` value); False at the first look that finds none."""
    while time.monotonic() < until:
        if not registered(k, user):
            return False
        time.sleep(0.05)  # pacing the registrar queries, not synchronisation
    return True


# --- sipp ---------------------------------------------------------------------------------


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    #: sipp's ``-trace_err`` log (unexpected messages, e.g. a 486 where 200 was expected).
    errors: str = ""


def run_sipp_uac(
    workdir: Path,
    target: str,
    calls: int,
    concurrent: int,
    timeout: float = 60.0,
    service: str = "voiceprobe",
) -> SippResult:
    """Run sipp's ``uac_pcap`` scenario against ``target`` (host:port) and wait for it.

    Exit code 0 means every call succeeded.
    """
    if not have("sipp"):
        pytest.fail("sipp not installed: ./scripts/setup.sh installs it")
    workdir.mkdir(parents=True, exist_ok=True)
    pcap = workdir / "pcap"
    if not pcap.exists():
        os.symlink("/usr/share/sip-tester", pcap)
    cmd = [
        "sipp", target, "-sn", "uac_pcap", "-s", service,
        "-i", HOST, "-mi", HOST, "-p", str(free_port()), "-nostdin",
        "-m", str(calls), "-l", str(concurrent), "-r", str(concurrent), "-rp", "1000",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
    ]
    for old in workdir.glob("uac_pcap_*_errors.log"):
        old.unlink()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 15)
    errors = "".join(f.read_text(errors="replace") for f in workdir.glob("uac_pcap_*_errors.log"))
    return SippResult(proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:], errors[-6000:])


# --- a lossy relay on the RTP path ----------------------------------------------------------


class LossyRelay:
    """A loopback SIP + RTP relay that drops every ``drop_every``-th RTP packet toward the
    dialling side.

    voiceprobe dials ``sip:<user>@127.0.0.1:<sip_port>`` (this relay); the relay forwards
    the INVITE to ``target`` (host, port) with the SDP's ``m=audio`` port rewritten to its
    own RTP socket, so the far end sends its RTP through the relay, which forwards it to the
    offered port and drops every ``drop_every``-th packet (0: none). Everything the first
    sender (voiceprobe) sends to the SIP socket goes to ``target``; everything else goes
    back to it. RTCP (``a=rtcp``) and in-dialog requests go direct (Contact headers).
    Packets from the offered RTP address to the relay's RTP socket go back to the far end
    (pjmedia may switch its remote address to the relay's).
    """

    def __init__(self, target: tuple[str, int], drop_every: int = 0) -> None:
        self.target = target
        self.drop_every = drop_every
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((HOST, 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, 0))
        self.sip_port = self.sip.getsockname()[1]
        self.rtp_port = self.rtp.getsockname()[1]
        self.forwarded = 0
        self.dropped = 0
        self._caller: tuple[str, int] | None = None
        self._rtp_to: tuple[str, int] | None = None
        self._rtp_far: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy-relay", daemon=True)

    def __enter__(self) -> LossyRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sip.close()
        self.rtp.close()

    def _rewrite_sdp(self, data: bytes) -> bytes:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep or b"m=audio " not in body:
            return data
        lines = body.split(b"\r\n")
        for i, line in enumerate(lines):
            if line.startswith(b"m=audio "):
                parts = line.split(b" ")
                self._rtp_to = (HOST, int(parts[1]))
                parts[1] = str(self.rtp_port).encode()
                lines[i] = b" ".join(parts)
        new_body = b"\r\n".join(lines)
        hlines = [
            b"Content-Length: %d" % len(new_body)
            if h.lower().startswith((b"content-length:", b"l:")) else h
            for h in head.split(b"\r\n")
        ]
        return b"\r\n".join(hlines) + sep + new_body

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.sip, selectors.EVENT_READ)
        sel.register(self.rtp, selectors.EVENT_READ)
        count = 0
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data, src = sock.recvfrom(65536)
                    except OSError:
                        continue
                    if sock is self.sip:
                        if self._caller is None:
                            self._caller = src
                        if src == self._caller:
                            if data.startswith(b"INVITE "):
                                data = self._rewrite_sdp(data)
                            sock.sendto(data, self.target)
                        else:
                            sock.sendto(data, self._caller)
                    elif src == self._rtp_to:
                        if self._rtp_far is not None:
                            sock.sendto(data, self._rtp_far)
                    elif self._rtp_to is not None:
                        self._rtp_far = src
                        count += 1
                        if self.drop_every and count % self.drop_every == 0:
                            self.dropped += 1
                            continue
                        self.forwarded += 1
                        sock.sendto(data, self._rtp_to)
        finally:
            sel.close()
