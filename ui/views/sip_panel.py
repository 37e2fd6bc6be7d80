"""The SIP panel: account, registration status, dial pad, incoming call, call quality,
DTMF and listen-in.

It talks to SIP only through a *controller* (:class:`ui.protocols.SipControllerLike`;
the real one is :class:`sip.controller.SipController`); outcomes arrive as events.

Events arrive through the panel's own :class:`ui.bus.EventBus` and update a
:class:`SipState` that the widgets render. Text from the network (reasons, URIs) is shown
as plain text. The password field is write-only: what is typed is stored with
``app.secrets.set_secret("sip_password", ...)`` and the field is cleared; without an OS
keyring it is kept in memory for this session only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import ConfigError, VoiceprobeError
from app.events import CallEnded, EventBase, Notice
from sip.config import SRTP_MODES, TRANSPORTS, SipAccountConfig
from sip.events import CallQuality, CallState, RegistrationState
from ui.bus import EventBus
from ui.protocols import SipControllerLike
from ui.views.labels import plain_label

ACCOUNT_FILE = "sip_account.yaml"
KEYS = "123456789*0#"


class _OptOuts(TypedDict, total=False):
    """The account file's insecure opt-outs, kept as loaded (the form does not show them)."""

    tls_verify: bool
    srtp_insecure_signaling: bool


@dataclass(slots=True)
class SipState:
    """What the panel shows; :meth:`apply` folds one event in (main thread, pure)."""

    registration: str = "not registered"
    registered: bool = False
    call_state: str = "idle"
    call_id: str = ""
    remote: str = ""
    incoming: str = ""
    in_call: bool = False
    quality: CallQuality | None = None
    notice: str = ""

    def apply(self, ev: EventBase) -> bool:
        """Update from ``ev``; True when something shown changed."""
        if isinstance(ev, RegistrationState):
            self.registered = ev.active and ev.code // 100 == 2
            if self.registered:
                self.registration = f"registered ({ev.code} {ev.reason})".replace(" )", ")")
            elif ev.reason.startswith("registration"):
                self.registration = ev.reason
            else:
                self.registration = f"not registered ({ev.code} {ev.reason})".replace(" )", ")")
            return True
        if isinstance(ev, CallState):
            return self._call_state(ev)
        if isinstance(ev, CallQuality):
            if ev.call_id and ev.call_id == self.call_id:
                self.quality = ev
                return True
            return False
        if isinstance(ev, Notice) and ev.level in ("warning", "error"):
            self.notice = ev.message
            return True
        if isinstance(ev, CallEnded) and not ev.ok and ev.reason == "failed":
            self.in_call = False
            return True
        return False

    def _call_state(self, ev: CallState) -> bool:
        if self.incoming and ev.call_id == self.call_id and ev.state in ("incoming", "early"):
            return False  # still ringing here
        if ev.state == "incoming":
            if self.in_call or self.incoming:
                return False  # the controller answers busy
            self.incoming, self.call_id, self.remote = ev.remote_uri, ev.call_id, ev.remote_uri
            self.call_state = "incoming"
            return True
        if ev.call_id and self.call_id and ev.call_id != self.call_id and self.in_call:
            return False  # another call's news (e.g. one rejected while busy)
        if ev.state == "disconnected":
            if self.incoming and ev.call_id == self.call_id:
                self.incoming = ""
            self.in_call = False
            detail = f"{ev.code} {ev.reason}".strip()
            self.call_state = f"ended ({detail})" if detail else "ended"
            return True
        self.incoming = ""
        self.in_call = True
        self.call_id = ev.call_id or self.call_id
        self.remote = ev.remote_uri or self.remote
        if ev.state == "confirmed":
            self.quality = None
        self.call_state = ev.state
        return True


def _plain(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A plain-text label whose text can be copied (statuses, figures, notices)."""
    return plain_label(text, parent, selectable=True)


class SipPanel(QWidget):
    """The SIP controls, bound to a controller. Main thread only.

    Args:
        controller: see the module docstring.
        parent: the Qt parent.
        secrets: ``set_secret(name, value)`` (default :func:`app.secrets.set_secret`).
        remember: save/load the account fields (never the password) in the config folder.
    """

    #: Emitted after an event changed the panel (tests wait on it).
    updated = Signal()

    def __init__(self, controller: SipControllerLike, parent: QWidget | None = None, *,
                 secrets: Any = None, remember: bool = True) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state = SipState()
        self._session_password = ""
        self._remember = remember
        # Insecure opt-outs are set in the account file only; the form keeps them as loaded.
        self._opt_outs: _OptOuts = {}
        if secrets is None:
            from app.secrets import set_secret

            secrets = set_secret
        self._set_secret = secrets
        self.bus = EventBus(self)
        self.bus.event.connect(self.apply)
        controller.subscribe(self.bus.post)

        # --- account ------------------------------------------------------------------
        acc_box = QGroupBox("Account", self)
        form = QFormLayout(acc_box)
        self.uri = QLineEdit(acc_box)
        self.uri.setPlaceholderText("sip:alice@example.com")
        self.registrar = QLineEdit(acc_box)
        self.registrar.setPlaceholderText("sip:example.com (empty: no registration)")
        self.username = QLineEdit(acc_box)
        self.username.setPlaceholderText("default: the user part of the URI")
        self.password = QLineEdit(acc_box)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("stored in the OS keyring; never shown")
        self.transport = QComboBox(acc_box)
        self.transport.addItems(list(TRANSPORTS))
        self.srtp = QComboBox(acc_box)
        self.srtp.addItems(list(SRTP_MODES))
        self.stun = QLineEdit(acc_box)
        self.stun.setPlaceholderText("stun.example.com:3478 (optional)")
        self.tls_ca_file = QLineEdit(acc_box)
        self.tls_ca_file.setPlaceholderText("system CAs; a PEM file for a private CA (TLS)")
        self.register_button = QPushButton("Register", acc_box)
        self.register_button.clicked.connect(self.register)
        form.addRow("URI", self.uri)
        form.addRow("Registrar", self.registrar)
        form.addRow("User", self.username)
        form.addRow("Password", self.password)
        form.addRow("Transport", self.transport)
        form.addRow("SRTP", self.srtp)
        form.addRow("STUN", self.stun)
        form.addRow("TLS CA file", self.tls_ca_file)
        self.registration = _plain(self.state.registration, acc_box)
        self.registration.setObjectName("sipRegistration")
        form.addRow(self.register_button, self.registration)

        # --- incoming ------------------------------------------------------------------
        self.incoming = QFrame(self)
        self.incoming.setObjectName("sipIncoming")
        self.incoming.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self.incoming)
        self.incoming_label = _plain("", self.incoming)
        self.answer_button = QPushButton("Answer", self.incoming)
        self.reject_button = QPushButton("Reject", self.incoming)
        self.answer_button.clicked.connect(self._answer)
        self.reject_button.clicked.connect(self._reject)
        row.addWidget(self.incoming_label, 1)
        row.addWidget(self.answer_button)
        row.addWidget(self.reject_button)
        self.incoming.hide()

        # --- call -------------------------------------------------------------------------
        call_box = QGroupBox("Call", self)
        cl = QVBoxLayout(call_box)
        top = QHBoxLayout()
        self.target = QLineEdit(call_box)
        self.target.setPlaceholderText("sip:agent@example.com")
        self.target.returnPressed.connect(self.dial)
        self.dial_button = QPushButton("Dial", call_box)
        self.dial_button.clicked.connect(self.dial)
        self.hangup_button = QPushButton("Hang up", call_box)
        self.hangup_button.clicked.connect(self._hangup)
        top.addWidget(self.target, 1)
        top.addWidget(self.dial_button)
        top.addWidget(self.hangup_button)
        cl.addLayout(top)
        pad = QGridLayout()
        self.keys: dict[str, QPushButton] = {}
        for i, key in enumerate(KEYS):
            b = QPushButton(key, call_box)
            b.setFixedWidth(44)
            b.clicked.connect(lambda _=False, k=key: self.press_key(k))
            pad.addWidget(b, i // 3, i % 3)
            self.keys[key] = b
        pad_row = QHBoxLayout()
        pad_row.addLayout(pad)
        pad_row.addStretch(1)
        cl.addLayout(pad_row)
        self.call_status = _plain("idle", call_box)
        self.call_status.setObjectName("sipCallStatus")
        cl.addWidget(self.call_status)
        self.listen = QCheckBox("Listen in (hear both sides on the speakers)", call_box)
        self.listen.toggled.connect(self.controller.set_listen)
        cl.addWidget(self.listen)

        # --- quality ----------------------------------------------------------------------
        q_box = QGroupBox("Call quality", self)
        qf = QFormLayout(q_box)
        self.q_labels = {name: _plain("-", q_box) for name in
                         ("codec", "jitter", "loss", "rtt", "mos")}
        for name, title in (("codec", "Codec"), ("jitter", "Jitter"), ("loss", "Loss"),
                            ("rtt", "RTT"), ("mos", "MOS (E-model)")):
            qf.addRow(title, self.q_labels[name])

        self.notice = _plain("", self)
        self.notice.setObjectName("sipNotice")
        self.notice.setStyleSheet("color: #c5221f;")
        self.notice.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(acc_box)
        layout.addWidget(self.incoming)
        layout.addWidget(call_box)
        layout.addWidget(q_box)
        layout.addWidget(self.notice)
        layout.addStretch(1)
        if remember:
            self._load_account()
        last = getattr(controller, "registration", None)
        if isinstance(last, RegistrationState):  # the panel opened after registering
            self.state.apply(last)
        self.show_state()

    # --- account ----------------------------------------------------------------------------

    def account_config(self) -> SipAccountConfig:
        """The account from the form (the password as resolved at registration; the
        insecure opt-outs, which only the account file sets, as loaded).

        Raises:
            ConfigError: a bad field.
        """
        return SipAccountConfig(
            uri=self.uri.text().strip(),
            registrar=self.registrar.text().strip(),
            username=self.username.text().strip(),
            password=self._session_password,
            transport=self.transport.currentText(),
            srtp=self.srtp.currentText(),
            stun=self.stun.text().strip(),
            tls_ca_file=self.tls_ca_file.text().strip(),
            **self._opt_outs,
        )

    def register(self) -> None:
        """Store a typed password, then (re-)register the account."""
        typed = self.password.text()
        self.password.clear()  # never kept in, nor shown back by, the widget
        if typed:
            try:
                self._set_secret("sip_password", typed)
                self._session_password = ""
                self.password.setPlaceholderText("stored in the OS keyring; never shown")
            except ConfigError as exc:
                self._session_password = typed
                self.password.setPlaceholderText("kept for this session only (no keyring)")
                self._show_notice(f"{exc}; the password is kept for this session only")
        try:
            cfg = self.account_config()
        except ConfigError as exc:
            self.state.registration = f"not registered: {exc}"
            self.show_state()
            return
        if self._remember:
            self._save_account(cfg)
        self.state.registration = "registering…" if cfg.registrar else "no registrar"
        self.show_state()
        self.controller.apply_account(cfg)

    def _account_path(self) -> Any:
        from app.store.paths import config_dir

        return config_dir() / ACCOUNT_FILE

    def _load_account(self) -> None:
        from sip.config import load_account_config

        try:
            path = self._account_path()
            if not path.exists():
                return
            cfg = load_account_config(path)
        except VoiceprobeError as exc:
            self._show_notice(str(exc))
            return
        self.uri.setText(cfg.uri)
        self.registrar.setText(cfg.registrar)
        self.username.setText(cfg.username)
        self.transport.setCurrentText(cfg.transport)
        self.srtp.setCurrentText(cfg.srtp)
        self.stun.setText(cfg.stun)
        self.tls_ca_file.setText(cfg.tls_ca_file)
        self._opt_outs = {"tls_verify": cfg.tls_verify,
                          "srtp_insecure_signaling": cfg.srtp_insecure_signaling}

    def _save_account(self, cfg: SipAccountConfig) -> None:
        from sip.config import save_account_config

        try:
            save_account_config(cfg, self._account_path())
        except VoiceprobeError as exc:
            self._show_notice(str(exc))

    # --- calls ------------------------------------------------------------------------------

    def dial(self) -> None:
        """Call the URI in the field."""
        uri = self.target.text().strip()
        if not uri:
            return
        if not uri.startswith(("sip:", "sips:")):
            uri = f"sip:{uri}"
        self.state.call_state = f"calling {uri}"
        self.state.in_call = True
        self.state.call_id = ""
        self.show_state()
        self.controller.dial(uri)

    def press_key(self, key: str) -> None:
        """A dial-pad key: DTMF during a call, else typed into the URI field."""
        if self.state.in_call:
            self.controller.send_dtmf(key)
        else:
            self.target.insert(key)

    def _answer(self) -> None:
        self.state.incoming = ""
        self.state.in_call = True
        self.state.call_state = "answering…"
        self.show_state()
        self.controller.answer()

    def _reject(self) -> None:
        self.state.incoming = ""
        self.state.call_state = "rejected"
        self.show_state()
        self.controller.reject()

    def _hangup(self) -> None:
        self.controller.hangup()

    # --- events -------------------------------------------------------------------------------

    def apply(self, ev: EventBase) -> None:
        """Fold one event in and re-render (main thread, via the bus)."""
        if self.state.apply(ev):
            self.show_state()
            self.updated.emit()

    def _show_notice(self, text: str) -> None:
        self.state.notice = text
        self.show_state()

    def show_state(self) -> None:
        """Show :attr:`state` (not ``render``: that is QWidget's paint-to-device)."""
        s = self.state
        self.registration.setText(s.registration)
        color = "#137333" if s.registered else (
            "#c5221f" if s.registration.startswith(("registration failed", "not registered:"))
            else "#3c4043")
        self.registration.setStyleSheet(f"color: {color};")
        self.incoming.setVisible(bool(s.incoming))
        self.incoming_label.setText(f"Incoming call from {s.incoming}" if s.incoming else "")
        self.call_status.setText(
            f"{s.call_state}: {s.remote}" if s.in_call and s.remote else s.call_state)
        self.dial_button.setEnabled(not s.in_call)
        self.hangup_button.setEnabled(s.in_call)
        q = s.quality
        self.q_labels["codec"].setText(q.codec if q else "-")
        self.q_labels["jitter"].setText(f"{q.jitter_ms:.1f} ms" if q else "-")
        self.q_labels["loss"].setText(f"{q.loss_pct:.1f} %" if q else "-")
        self.q_labels["rtt"].setText(
            f"{q.rtt_ms:.0f} ms" if q and q.rtt_ms is not None else "-")
        self.q_labels["mos"].setText(f"{q.mos:.2f}" if q else "-")
        self.notice.setText(s.notice)
        self.notice.setVisible(bool(s.notice))

    def close_panel(self) -> None:
        """Stop receiving events (call when the window closes)."""
        self.controller.unsubscribe(self.bus.post)
        self.bus.close()
