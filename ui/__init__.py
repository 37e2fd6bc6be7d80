"""The voiceprobe desktop UI (PySide6 + pyqtgraph).

Everything here runs on the Qt main thread except :meth:`ui.bus.EventBus.post`, which the
core calls from its asyncio thread. The core (``app``) never imports this package.

Importing ``ui`` applies :mod:`ui.qtfix` (a guarded work-around for PySide6 6.12.0's
``emit`` reference leak, which otherwise aborts the process after a few thousand signals).
"""

from ui.qtfix import install as _install_qtfix

_install_qtfix()
