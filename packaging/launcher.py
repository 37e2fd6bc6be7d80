"""PyInstaller entry script of the frozen ``voiceprobe`` (the same as ``ui.entry:main``)."""

import sys

from ui.entry import main

if __name__ == "__main__":
    sys.exit(main())
