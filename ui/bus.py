"""The one thread hop between the core and Qt (docs/architecture.md#threads).

The core emits :class:`app.events.Event` objects on its asyncio thread; :class:`EventBus`
re-emits each one on the Qt main thread as a queued signal. High-rate data (levels,
waveforms) never travels through here: views pull it with a ``QTimer``
(:class:`ui.levels.LevelPump`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot


class EventBus(QObject):
    """Re-emits events posted from any thread as :attr:`event` on this object's thread.

    Create it on the Qt main thread. Delivery is always queued (even when posting from the
    main thread), so listeners see events in posting order and never inside the poster's
    call stack.
    """

    #: Emitted on the main thread with one event object.
    # The signal's public name shadows QObject.event(QEvent), which nothing calls on a
    # bus; PySide6's stubs type the attribute as that method.
    event = Signal(object)  # type: ignore[assignment]
    _posted = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._closed = False

    def post(self, ev: Any) -> None:
        """Queue ``ev`` for delivery on the main thread.

        Thread: any. Never blocks, never touches widgets. Events posted after
        :meth:`close` are dropped.
        """
        if not self._closed:
            self._posted.emit(ev)

    def close(self) -> None:
        """Stop delivering (call on the main thread when the window closes)."""
        self._closed = True

    @Slot(object)
    def _deliver(self, ev: Any) -> None:
        if not self._closed:
            self.event.emit(ev)
