"""voiceprobe core: bridge, providers, audio, tools, metrics, store, simulator and CLI.

This package never imports Qt, ``ui`` or ``sip`` (checked by ``tests/test_layering.py``).
"""

__version__ = "0.1.0"
