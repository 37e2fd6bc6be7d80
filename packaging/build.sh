#!/usr/bin/env bash
# Build the frozen app into dist/voiceprobe/ with PyInstaller (onedir).
#
# Usage: packaging/build.sh            (uses .venv/bin/python; PYTHON=... to override)
# Installs PyInstaller into that environment first (the project's "package" extra).
# Prints the build time and the bundle's size; the executable is dist/voiceprobe/voiceprobe.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"

"$PY" -m pip install --quiet "pyinstaller>=6.10"

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" \
    packaging/voiceprobe.spec
end=$(date +%s)

test -x "$ROOT/dist/voiceprobe/voiceprobe"
echo "built dist/voiceprobe in $((end - start)) s, $(du -sh "$ROOT/dist/voiceprobe" | cut -f1)"
