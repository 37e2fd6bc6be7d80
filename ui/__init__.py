"""The voiceprobe desktop UI (PySide6 + pyqtgraph).

Everything here runs on the Qt main thread except :meth:`ui.bus.EventBus.post`, which the
core calls from its asyncio thread. The core (``app``) never imports this package, and
importing ``ui`` itself loads no Qt (the headless commands go through ``ui.entry``).
"""
