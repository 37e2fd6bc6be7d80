#!/usr/bin/env bash
# Set up everything voiceprobe needs on Debian 12: system packages and a pinned venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng sox libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins
  baresip-core kamailio kamailio-tls-modules sip-tester xvfb libegl1 libgl1 libxkbcommon0
  libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core fonts-noto-core
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxkbcommon-x11-0 chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11 or 3.12 (pjsua2 wheels stop at 3.12).
PY=""
for cand in python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
     "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' \
       2>/dev/null; then  # a pyenv shim for a version not installed only complains
    PY="$cand"; break
  fi
done
if [ -z "$PY" ]; then
  echo "setup: need Python 3.11 or 3.12 (apt-get install python3)" >&2; exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq python3-venv >/dev/null
fi

stamp=.venv/.voiceprobe-setup
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,sip]"
  echo "$want" > "$stamp"
fi
