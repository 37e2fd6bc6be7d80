"""The voiceprobe desktop UI (PySide6 + pyqtgraph).

Everything here runs on the Qt main thread except :meth:`ui.bus.EventBus.post`, which the
core calls from its asyncio thread. The core (``app``) never imports this package, and
importing ``ui`` itself loads no Qt (the headless commands go through ``ui.entry``).

:mod:`ui.bus` (imported by every model and view) applies :mod:`ui.qtfix`, a guarded
work-around for PySide6 6.12.0's ``emit`` reference leak.
"""
