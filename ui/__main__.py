"""``python -m ui``: the same as the ``voiceprobe`` command (the composition root)."""

from __future__ import annotations

from ui.entry import main

if __name__ == "__main__":
    raise SystemExit(main())
