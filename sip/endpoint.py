"""The pjsua2 endpoint on one dedicated thread.

:class:`SipEndpoint` owns pjsua2's ``Endpoint`` in poll mode (``threadCnt=0``,
``mainThreadOnly=True``): one thread, ``voiceprobe-sip``, creates the library, loops
``libHandleEvents(10)`` and runs commands queued by other threads, so pjsua2 is only ever
called from that thread (calling it from an unregistered thread aborts the process).
Account and call callbacks, and the ``on_event`` callback, run on it too. The media
clock thread (pjmedia's) only runs :class:`sip.media_port.FramePort` callbacks.

Traps handled here (pjsua2-python 2.15.1):

* no sound device: ``setNullDev()`` (audio comes and goes through ring buffers);
* digest auth needs ``OpenSSL_add_all_digests()`` from the wheel's bundled libcrypto,
  called before ``libCreate`` (else MD5 is "not supported" and REGISTER stays at 401);
* at most 4 calls per process (the wheel's build);
* a ``Call`` or ``AudioMediaPort`` still alive at ``libDestroy`` aborts the process: they
  live only in this module's tables and are dropped, then ``gc.collect()``, first;
* the cyclic garbage collector finalizes objects on whichever thread happens to trigger
  it: a pjsua2 object freed that way on an unregistered thread (an asyncio worker, the Qt
  thread) crashes the process (seen: a segfault in a ``to_thread`` worker). While the
  endpoint runs, automatic collection is off and this thread collects instead, by the
  interpreter's own thresholds (:func:`_collect_garbage_here`);
* busy Python threads starve pjmedia's clock thread of the GIL (frames then arrive at a
  mean 157 ms instead of 20 ms): :meth:`SipEndpoint.start` sets
  ``sys.setswitchinterval(0.0002)`` (process-wide; p99 ≈ 26 ms) unless told not to;
* ``TlsConfig.verifyServer`` defaults to false (any certificate accepted): every TLS
  transport is created with the account's :class:`sip.config.TlsPolicy` (CA file, verify
  on, TLS 1.2+; the wheel's OpenSSL is 1.0.2k, so 1.3 is never negotiated). A refused
  certificate surfaces only as a 503 "PJSIP_TLS_ECERTVERIF" on the request; the why
  (untrusted, name mismatch) and the server's address come from ``onTransportState``,
  which :meth:`SipEndpoint.tls_failure` joins into one clear reason.

One module on purpose (over 500 lines): everything that calls pjsua2 must run on the one
thread this module owns, so the library's whole surface (transports, accounts, calls, the
traps above) sits behind that thread here.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pjsua2 as pj

from app.clock import MONOTONIC, Clock
from app.errors import SipError
from app.events import EventBase, Notice, NoticeLevel
from sip.account import PjAccount, SipAccount, build_account_config
from sip.call import STATE_NAMES, PjCall, SipCall
from sip.config import SipAccountConfig, TlsPolicy, system_ca_file
from sip.events import CallQuality, CallState, Dtmf, RegistrationState
from sip.media_port import FramePort
from sip.quality import sample_quality

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The wheel's build cap on simultaneous calls (``maxCalls`` is silently capped).
MAX_CALLS = 4

_TRANSPORT_TYPES = {
    "udp": pj.PJSIP_TRANSPORT_UDP,
    "tcp": pj.PJSIP_TRANSPORT_TCP,
    "tls": pj.PJSIP_TRANSPORT_TLS,
}

#: TLS 1.2 and later (1.3 is ignored by the wheel's OpenSSL 1.0.2k).
_TLS_PROTOCOLS = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3

#: pj_strerror's name for a TLS certificate that failed verification (in reasons).
_TLS_VERIFY_ERROR = "PJSIP_TLS_ECERTVERIF"

_digests_loaded = False


def _enable_openssl_digests() -> None:
    """Call ``OpenSSL_add_all_digests`` in the wheel's bundled libcrypto (once)."""
    global _digests_loaded
    if _digests_loaded:
        return
    base = Path(pj.__file__).resolve().parent.parent
    for libdir in (base / "pjsua2_python.libs", base / "pjsua2_python.dylibs", base / "pjsua2"):
        for lib in sorted(libdir.glob("libcrypto*")):
            try:
                ctypes.CDLL(str(lib)).OpenSSL_add_all_digests()
            except (OSError, AttributeError) as exc:
                log.warning("cannot enable OpenSSL digests from %s: %s", lib.name, exc)
                continue
            _digests_loaded = True
            return
    log.warning("no bundled libcrypto found: SIP digest authentication may fail")


def _quiet_pjlib(level: int) -> None:
    """Lower pjlib's log level before ``libCreate`` prints its start-up banner."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(pj._pjsua2.__file__).pj_log_set_level(ctypes.c_int(level))


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    """Forwards pjsua2's log lines (level ≤ the configured one) to :mod:`logging`.

    Runs on whichever pjsip/pjmedia thread logs; only warnings and errors are enabled by
    default, so it is rare.
    """

    def write(self, entry: pj.LogEntry) -> None:
        with contextlib.suppress(Exception):
            lvl = logging.ERROR if entry.level <= 1 else (
                logging.WARNING if entry.level == 2 else logging.DEBUG)
            log.log(lvl, "pjsua2: %s", str(entry.msg).rstrip())


class _PjEndpoint(pj.Endpoint):  # type: ignore[misc]
    """pjsua2's endpoint; ``onTransportState`` runs on the SIP thread and never raises."""

    def __init__(self, owner: SipEndpoint) -> None:
        super().__init__()
        self.owner = owner

    def onTransportState(self, prm: pj.OnTransportStateParam) -> None:  # noqa: N802
        try:
            ti = prm.tlsInfo
            if (prm.state == pj.PJSIP_TP_STATE_DISCONNECTED and not ti.isEmpty()
                    and int(ti.verifyStatus) != 0):
                self.owner.tls_verify_failed(str(ti.remoteAddr), int(ti.verifyStatus),
                                             [str(m) for m in ti.verifyMsgs])
        except Exception as exc:
            self.owner.callback_failed("onTransportState", exc)



def _collect_garbage_here() -> None:
    """Run the collection the interpreter would have run by now (its generation thresholds),
    on the calling thread: the SIP thread, while automatic collection is off."""
    c0, c1, c2 = gc.get_count()
    t0, t1, t2 = gc.get_threshold()
    if c0 < t0:
        return
    gc.collect(2 if c1 >= t1 and c2 >= t2 else 1 if c1 >= t1 else 0)

class SipEndpoint:
    """pjsua2 on its own thread. Every public method is thread-safe.

    Methods that return a result post a command to the SIP thread and wait for it (a
    :class:`concurrent.futures.Future`); they must not be called *from* the SIP thread
    (i.e. from ``on_event`` or ``on_incoming``) except :meth:`post`.

    Args:
        on_event: receives every :mod:`sip.events` event and :class:`Notice`s, on the SIP
            thread; it must return quickly and must not call blocking endpoint methods.
        on_incoming: decides on an incoming call on the SIP thread: return a status code
            (200 answer now, 180 ring and answer later with :meth:`SipCall.answer`, 486
            etc. reject). ``None`` uses each account's ``auto_answer``.
        clock: stamps for events.
        media_rate: rate of each call's media port and :class:`SipCallPort` (8000/16000).
        stun_servers: STUN servers for the endpoint (``host[:port]``).
        log_level: pjsua2 log level forwarded to :mod:`logging` (0-6; 5 logs SIP messages).
        quality_interval: seconds between :class:`CallQuality` samples of each call.
        switch_interval: value for ``sys.setswitchinterval`` at start (None: leave it).
    """

    def __init__(
        self,
        on_event: Callable[[EventBase], None] | None = None,
        *,
        on_incoming: Callable[[SipCall], int] | None = None,
        clock: Clock = MONOTONIC,
        media_rate: int = 16000,
        stun_servers: tuple[str, ...] = (),
        log_level: int = 1,
        quality_interval: float = 2.0,
        switch_interval: float | None = 0.0002,
    ) -> None:
        if media_rate not in (8000, 16000):
            raise ValueError(f"media_rate must be 8000 or 16000, not {media_rate}")
        self._on_event = on_event
        self._on_incoming = on_incoming
        self._clock = clock
        self.media_rate = media_rate
        self._stun = stun_servers
        self._log_level = log_level
        self._quality_interval = quality_interval
        self._switch_interval = switch_interval
        self._cmds: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._lock = threading.Lock()
        # SIP-thread state: the only references to pjsua2 objects.
        self._ep: Any = None
        self._logw: _LogWriter | None = None
        self._transports: dict[tuple[str, str, int, TlsPolicy | None], int] = {}
        self._tls_refusal = ""
        self._accounts: dict[int, PjAccount] = {}
        self._calls: dict[int, PjCall] = {}
        self._graveyard: list[tuple[float, FramePort]] = []
        self._dead_calls: list[PjCall] = []
        self._reg_deadlines: dict[int, float] = {}
        self._next_key = 1
        self._next_quality = 0.0
        #: Calls not yet disconnected, by key (an ended call is dropped from here).
        self.handles: dict[int, SipCall] = {}
        #: The most recent calls, ended or not, oldest first.
        self.recent_calls: collections.deque[SipCall] = collections.deque(maxlen=32)
        self._incoming: collections.deque[SipCall] = collections.deque(maxlen=16)
        self._incoming_cond = threading.Condition()
        self._listeners: tuple[Callable[[EventBase], None], ...] = ()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the SIP thread and the library (blocks until ready).

        Raises:
            SipError: pjsua2 failed to initialise.
        """
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise SipError("the SIP endpoint was shut down; create a new one")
            self._started = True
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="voiceprobe-sip", daemon=True
        )
        self._thread.start()
        ready.result(timeout)

    def shutdown(self, timeout: float = 15.0) -> None:
        """Hang up every call, unregister, destroy the library and join the thread.

        Idempotent; safe to call from any thread but the SIP thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("SIP thread did not stop within %.1f s", timeout)

    def __enter__(self) -> SipEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- command plumbing -----------------------------------------------------------------

    def post(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` to run on the SIP thread; does not wait (callable anywhere)."""
        if self._closed or not self._started:
            return
        self._cmds.put(lambda: self._guard("command", fn))

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the SIP thread and return its result (re-raising its error).

        Raises:
            SipError: the endpoint is not running, or ``fn`` raised a pjsua2 error.
            TimeoutError: no result within ``timeout``.
        """
        if threading.current_thread() is self._thread:
            return fn()
        if not self._started or self._closed:
            raise SipError("the SIP endpoint is not running")
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except pj.Error as err:
                fut.set_exception(SipError(_pj_reason(err)))
            except BaseException as exc:  # handed to the waiting thread
                fut.set_exception(exc)

        self._cmds.put(run)
        return fut.result(timeout)

    def _guard(self, where: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except pj.Error as err:
            self._notice("warning", f"SIP {where} failed: {_pj_reason(err)}")
        except Exception as exc:
            self.callback_failed(where, exc)

    def _run(self, ready: Future[None]) -> None:
        try:
            self._init_lib()
        except BaseException as exc:
            msg = _pj_reason(exc) if isinstance(exc, pj.Error) else str(exc)
            self._destroy_lib()
            ready.set_exception(SipError(f"cannot start SIP: {msg}"))
            return
        ready.set_result(None)
        collecting = gc.isenabled()
        gc.disable()  # garbage is collected here, on the registered thread (module docstring)
        try:
            while not self._stop.is_set():
                self._ep.libHandleEvents(10)
                self._dead_calls.clear()
                self._drain()
                self._housekeeping()
                _collect_garbage_here()
        finally:
            self._teardown()
            if collecting:
                gc.enable()

    def _drain(self) -> None:
        while True:
            try:
                cmd = self._cmds.get_nowait()
            except queue.Empty:
                return
            cmd()

    def _init_lib(self) -> None:
        _enable_openssl_digests()
        _quiet_pjlib(self._log_level)
        ep = _PjEndpoint(self)
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "voiceprobe"
        for s in self._stun:
            cfg.uaConfig.stunServer.append(s)
        self._logw = _LogWriter()
        cfg.logConfig.writer = self._logw
        cfg.logConfig.level = self._log_level
        cfg.logConfig.consoleLevel = self._log_level
        cfg.medConfig.clockRate = 16000
        cfg.medConfig.sndClockRate = 16000
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        ep.libStart()

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._graveyard:
            self._bury(now)
        for key, deadline in list(self._reg_deadlines.items()):
            if now >= deadline:
                del self._reg_deadlines[key]
                acc = self._accounts.get(key)
                if acc is not None:
                    secs = acc.handle.config.reg_timeout
                    self.registration_outcome(
                        acc.handle, 408, f"registration failed: 408 no answer from the "
                        f"registrar within {secs:g} s", False, final_only=True)
        if self._calls and now >= self._next_quality:
            self._next_quality = now + self._quality_interval
            for call in list(self._calls.values()):
                self._sample(call)

    def _sample(self, call: PjCall) -> None:
        h = call.handle
        if h.state != "confirmed" or call.audio_index < 0:
            return
        try:
            q = sample_quality(call, call.audio_index)
        except pj.Error:
            return
        if q.rx_packets == 0:
            return
        ev = CallQuality(t_ns=self._clock.now_ns(), call_id=h.call_id, codec=q.codec,
                         jitter_ms=q.jitter_ms, loss_pct=q.loss_pct, rtt_ms=q.rtt_ms, mos=q.mos)
        h.quality = ev
        self._emit(ev)

    def final_quality(self, call: PjCall) -> None:
        """SIP thread: last quality sample of a stream about to be destroyed."""
        if call.audio_index >= 0 and call.handle.state == "confirmed":
            self._sample(call)

    def _teardown(self) -> None:
        # Runs on the SIP thread. Order matters: calls, media ports, accounts, then the lib.
        try:
            if self._calls:
                with contextlib.suppress(pj.Error):
                    self._ep.hangupAllCalls()
                deadline = time.monotonic() + 3.0
                while self._calls and time.monotonic() < deadline:
                    self._ep.libHandleEvents(10)
                    self._dead_calls.clear()
                    self._drain()
                    self._housekeeping()
            self._drain()
            for call in list(self._calls.values()):
                self._retire(call)
            self._calls.clear()
            for acc in list(self._accounts.values()):
                with contextlib.suppress(pj.Error):
                    acc.shutdown()
            self._accounts.clear()
            # Let BYE/unREGISTER go out and conference-bridge removals take effect.
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                self._ep.libHandleEvents(10)
            self._bury(None)
            self._dead_calls.clear()
        except Exception as exc:
            log.error("SIP teardown: %s", exc)
        finally:
            self._destroy_lib()
            # Fail any command that arrived too late.
            while True:
                try:
                    self._cmds.get_nowait()
                except queue.Empty:
                    break

    def _destroy_lib(self) -> None:
        self._calls.clear()
        self._dead_calls.clear()
        self._accounts.clear()
        self._bury(None)
        gc.collect()
        if self._ep is not None:
            with contextlib.suppress(pj.Error):
                self._ep.libDestroy()
        self._ep = None
        self._logw = None
        gc.collect()

    # --- events -----------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[EventBase], None]) -> None:
        """Also deliver every event to ``fn`` (on the SIP thread, after ``on_event``).

        ``fn`` has the same contract as ``on_event``: return quickly, never call blocking
        endpoint methods. Callable from any thread.
        """
        with self._lock:
            self._listeners = (*self._listeners, fn)

    def remove_listener(self, fn: Callable[[EventBase], None]) -> None:
        """Stop delivering events to ``fn`` (a no-op if it was not added)."""
        with self._lock:
            self._listeners = tuple(f for f in self._listeners if f is not fn)

    def _emit(self, ev: EventBase) -> None:
        for fn in (self._on_event, *self._listeners):
            if fn is None:
                continue
            try:
                fn(ev)
            except Exception as exc:
                log.error("event listener raised %s: %s", type(exc).__name__, exc)

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self._emit(Notice(t_ns=self._clock.now_ns(), level=level, message=message))

    def callback_failed(self, where: str, exc: BaseException) -> None:
        """SIP thread: report an exception caught in a pjsua2 callback (no traceback kept)."""
        msg = f"SIP callback {where} failed: {type(exc).__name__}: {exc}"
        log.error(msg)
        self._notice("error", msg)

    # --- transports and accounts ---------------------------------------------------------

    def add_transport(self, kind: str = "udp", host: str = "127.0.0.1", port: int = 0,
                      timeout: float = 10.0, tls: TlsPolicy | None = None) -> tuple[str, int]:
        """Create (or reuse) a SIP transport bound to ``host:port``; returns its address.

        A ``tls`` transport checks servers by ``tls`` (default: verify against the system's
        CA bundle).
        """
        tid = self.run(lambda: self._ensure_transport(kind, host, port, tls), timeout)
        return self.run(lambda: self._transport_address(tid), timeout)

    def _ensure_transport(self, kind: str, host: str, port: int,
                          tls: TlsPolicy | None = None) -> int:
        if kind not in _TRANSPORT_TYPES:
            raise SipError(f"unknown SIP transport {kind!r}")
        # Each TLS policy needs its own transport: pjsip verifies per transport.
        policy = (tls or TlsPolicy(system_ca_file(), True)) if kind == "tls" else None
        key = (kind, host, port, policy)
        if port == 0:
            for (k, h, _p, pol), tid in self._transports.items():
                if k == kind and h == host and pol == policy:
                    return tid
        if key in self._transports:
            return self._transports[key]
        tc = pj.TransportConfig()
        tc.port = port
        if host not in ("", "0.0.0.0"):
            tc.boundAddress = host
            tc.publicAddress = host
        if policy is not None:
            tc.tlsConfig.CaListFile = policy.ca_file
            tc.tlsConfig.verifyServer = policy.verify
            tc.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
            tc.tlsConfig.proto = _TLS_PROTOCOLS
        try:
            tid = int(self._ep.transportCreate(_TRANSPORT_TYPES[kind], tc))
        except pj.Error as err:
            raise SipError(f"cannot open SIP {kind} transport on {host}:{port}: "
                           f"{_pj_reason(err)}") from None
        self._transports[key] = tid
        return tid

    def _transport_address(self, tid: int) -> tuple[str, int]:
        name = str(self._ep.transportGetInfo(tid).localName)
        host, _, port = name.rpartition(":")
        return host, int(port)

    def add_account(self, cfg: SipAccountConfig, timeout: float = 10.0) -> SipAccount:
        """Create an account (and its transport); registration starts at once if
        ``cfg.registrar`` is set. Outcomes arrive as :class:`RegistrationState` events and
        via :meth:`SipAccount.wait_registration`.

        Raises:
            SipError: the transport or the account could not be created.
        """
        return self.run(lambda: self._add_account(cfg), timeout)

    def _add_account(self, cfg: SipAccountConfig) -> SipAccount:
        tid = self._ensure_transport(cfg.transport, cfg.bind_host, cfg.bind_port,
                                     cfg.tls_policy() if cfg.transport == "tls" else None)
        key = self._new_key()
        handle = SipAccount(self, cfg, key)
        host, port = self._transport_address(tid)
        handle.contact = f"sip:{host}:{port}" + (f";transport={cfg.transport}"
                                                  if cfg.transport != "udp" else "")
        acc = PjAccount(self, handle)
        if cfg.registrar:
            self._reg_deadlines[key] = time.monotonic() + cfg.reg_timeout
        self._accounts[key] = acc
        try:
            acc.create(build_account_config(cfg, tid), True)
        except pj.Error as err:
            self._accounts.pop(key, None)
            self._reg_deadlines.pop(key, None)
            raise SipError(f"cannot create SIP account {cfg.uri}: {_pj_reason(err)}") from None
        return handle

    def remove_account(self, account: SipAccount, timeout: float = 5.0) -> None:
        """Unregister and delete an account."""

        def run() -> None:
            acc = self._accounts.pop(account.key, None)
            self._reg_deadlines.pop(account.key, None)
            if acc is not None:
                with contextlib.suppress(pj.Error):
                    acc.shutdown()
            # An Account's destructor deletes whatever account now has its pjsua id, and
            # the next add_account reuses it: the last reference goes here, on this thread,
            # before anything else can be added (kept longer, it took the next account down).
            del acc

        self.run(run, timeout)

    def registration_outcome(self, handle: SipAccount, code: int, reason: str, active: bool,
                             final_only: bool = False) -> None:
        """SIP thread: record and emit a registration outcome."""
        if final_only and handle.state is not None:
            return
        self._reg_deadlines.pop(handle.key, None)
        ev = RegistrationState(t_ns=self._clock.now_ns(), account=handle.aor, code=code,
                               reason=reason, active=active)
        handle._on_state(ev)
        self._emit(ev)

    def tls_verify_failed(self, remote: str, status: int, messages: list[str]) -> None:
        """SIP thread: a TLS server's certificate was refused; remember why for
        :meth:`tls_failure` (the request that needed the connection fails next)."""
        why = "; ".join(m[:1].lower() + m[1:] for m in messages if m) or f"status {status}"
        if status & pj.PJ_SSL_CERT_EIDENTITY_NOT_MATCH:
            hint = "use the host name the certificate was issued for"
        else:
            hint = "give the server's CA with tls_ca_file (--tls-ca-file)"
        self._tls_refusal = f"TLS certificate of {remote} could not be verified ({why}); {hint}"
        log.info("%s", self._tls_refusal)

    def tls_failure(self, reason: str) -> str:
        """SIP thread: the clear explanation for a pjsua2 ``reason`` that is a refused TLS
        certificate, or "" when it is not one."""
        if _TLS_VERIFY_ERROR not in reason:
            return ""
        return self._tls_refusal or ("TLS certificate of the server could not be verified; "
                                     "give the server's CA with tls_ca_file (--tls-ca-file)")

    def _new_key(self) -> int:
        key = self._next_key
        self._next_key += 1
        return key

    # --- calls -------------------------------------------------------------------------------

    def make_call(self, account: SipAccount, uri: str, timeout: float = 10.0) -> SipCall:
        """Dial ``uri`` from ``account``; returns at once with the call's handle (wait on
        :meth:`SipCall.wait_confirmed` / :attr:`SipCall.ended`).

        Raises:
            SipError: too many calls, a bad URI, or pjsua2 refused to dial.
        """
        return self.run(lambda: self._make_call(account, uri), timeout)

    def _make_call(self, account: SipAccount, uri: str) -> SipCall:
        acc = self._accounts.get(account.key)
        if acc is None:
            raise SipError(f"account {account.aor} is not active")
        if len(self._calls) >= MAX_CALLS:
            raise SipError(f"too many calls: at most {MAX_CALLS} at a time", status=486)
        key = self._new_key()
        handle = SipCall(self, key, "out", self.media_rate)
        handle.remote_uri = uri
        call = PjCall(self, acc, handle)
        self._calls[key] = call
        self.handles[key] = handle
        self.recent_calls.append(handle)
        prm = pj.CallOpParam(True)
        try:
            call.makeCall(uri, prm)
        except pj.Error as err:
            self._calls.pop(key, None)
            self.handles.pop(key, None)
            self._retire(call)
            reason = _pj_reason(err)
            ev = CallState(t_ns=self._clock.now_ns(), call_id="", state="disconnected",
                           code=500, reason=f"cannot dial {uri}: {reason}", remote_uri=uri)
            handle._on_state(ev)
            self._emit(ev)
            raise SipError(f"cannot dial {uri}: {reason}") from None
        return handle

    def incoming_call(self, acc: PjAccount, pj_call_id: int) -> None:
        """SIP thread: an INVITE arrived for ``acc``."""
        key = self._new_key()
        handle = SipCall(self, key, "in", self.media_rate)
        call = PjCall(self, acc, handle, pj_call_id)
        self._calls[key] = call
        self.handles[key] = handle
        self.recent_calls.append(handle)
        with self._incoming_cond:
            self._incoming.append(handle)
            self._incoming_cond.notify_all()
        self.call_state_changed(call)
        if self._on_incoming is not None:
            code = int(self._on_incoming(handle))
        else:
            code = 200 if acc.handle.config.auto_answer else 180
        self.call_answer(handle, code)

    def call_answer(self, handle: SipCall, code: int) -> None:
        """SIP thread: answer/ring/reject an incoming call."""
        call = self._calls.get(handle.key)
        if call is None:
            return
        prm = pj.CallOpParam()
        prm.statusCode = code
        if code >= 300:
            call.hangup(prm)
        else:
            call.answer(prm)

    def call_hangup(self, handle: SipCall, code: int = 603) -> None:
        """SIP thread: hang up."""
        call = self._calls.get(handle.key)
        if call is None:
            return
        prm = pj.CallOpParam()
        prm.statusCode = code
        call.hangup(prm)

    def call_dtmf(self, handle: SipCall, digits: str) -> None:
        """SIP thread: send RFC 2833 DTMF."""
        call = self._calls.get(handle.key)
        if call is None or call.audio_index < 0:
            raise SipError("cannot send DTMF: the call has no active audio")
        prm = pj.CallSendDtmfParam()
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.digits = digits
        call.sendDtmf(prm)

    def call_state_changed(self, call: PjCall) -> None:
        """SIP thread: mirror pjsua2's call state into the handle and emit it."""
        ci = call.getInfo()
        state = STATE_NAMES.get(ci.state, str(ci.stateText).lower())
        h = call.handle
        reason = str(ci.lastReason)
        ev = CallState(t_ns=self._clock.now_ns(), call_id=str(ci.callIdString), state=state,
                       code=int(ci.lastStatusCode), reason=self.tls_failure(reason) or reason,
                       remote_uri=str(ci.remoteUri))
        if state == "disconnected":
            # Delete the pjsua2 objects after this callback returns, not inside it.
            self._calls.pop(h.key, None)
            self.handles.pop(h.key, None)
            self._retire(call)
        h._on_state(ev)
        self._emit(ev)

    def _retire(self, call: PjCall) -> None:
        """Disconnect a call's media; free the call at the next loop turn and its media port
        0.5 s later, once the clock thread has applied the conference bridge's removal.
        """
        fp = call.media
        call.media = None
        link = call.handle.port.link
        if fp is None:
            link.rx_ended = True  # no stream ever fed this call
        else:
            link.rx_closing = True
            with contextlib.suppress(pj.Error):
                ci = call.getInfo()
                if ci.state != pj.PJSIP_INV_STATE_DISCONNECTED and call.audio_index >= 0:
                    aud = call.getAudioMedia(call.audio_index)
                    aud.stopTransmit(fp)
                    fp.stopTransmit(aud)
        # A Call's destructor unsets and hangs up whatever call now has its pjsua id, and
        # pjsua reuses ids round-robin: drop it right after this callback, not later.
        self._dead_calls.append(call)
        if fp is not None:
            self._graveyard.append((time.monotonic() + 0.5, fp))

    def _bury(self, now: float | None) -> None:
        """Free the retired media ports whose time is up (all when ``now`` is None); once
        a port is gone no received audio can follow, so its link's rx ends."""
        keep = []
        for t, fp in self._graveyard:
            if now is not None and t > now:
                keep.append((t, fp))
            else:
                fp.end_rx()
        self._graveyard = keep

    def dtmf_received(self, call: PjCall, digit: str) -> None:
        """SIP thread: emit a received DTMF digit."""
        ev = Dtmf(t_ns=self._clock.now_ns(), call_id=call.handle.call_id, digit=digit)
        call.handle.last_dtmf = ev
        self._emit(ev)

    # --- queries ---------------------------------------------------------------------------

    def wait_incoming(self, timeout: float) -> SipCall | None:
        """Return the oldest incoming call not yet taken (waiting up to ``timeout``).

        Keeps the last 16 untaken incoming calls; must not be called on the SIP thread.
        """
        with self._incoming_cond:
            self._incoming_cond.wait_for(lambda: bool(self._incoming), timeout)
            return self._incoming.popleft() if self._incoming else None

    @property
    def active_calls(self) -> list[SipCall]:
        """Handles of calls not yet disconnected."""
        return [h for h in list(self.handles.values()) if not h.ended.is_set()]


def _pj_reason(err: BaseException) -> str:
    """A one-line reason from a ``pjsua2.Error`` (its ``info()``), never a secret."""
    info = getattr(err, "reason", None) or getattr(err, "info", lambda: str(err))()
    return str(info).splitlines()[0] if str(info) else type(err).__name__
