"""The packaging files: the PyInstaller spec parses and names files that exist, excludes
the unused Qt modules; the desktop entry and scripts are well-formed.

Building the frozen app takes minutes, so it is not part of the suite: run
``packaging/build.sh`` then ``packaging/smoke.sh``. With ``VOICEPROBE_FROZEN_SMOKE=1`` and a
built ``dist/voiceprobe/``, the last test runs the smoke script too.
"""

from __future__ import annotations

import ast
import configparser
import os
import subprocess

import pytest

from tests.conftest import REPO

PKG = REPO / "packaging"
SPEC = PKG / "voiceprobe.spec"


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), filename=str(SPEC))


def _strings(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_spec_parses_and_builds_the_voiceprobe_entry():
    tree = _spec_tree()
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    names = _strings(tree)
    assert "voiceprobe" in names
    # every repository path the spec names exists
    assert (PKG / "launcher.py").is_file() and "launcher.py" in names
    assert (REPO / "resources").is_dir() and "resources" in names
    assert (PKG / "hooks" / "hook-webrtcvad.py").is_file() and "hooks" in names
    launcher = (PKG / "launcher.py").read_text(encoding="utf-8")
    assert "from ui.entry import main" in launcher


def test_spec_excludes_unused_qt_modules_and_bundles_native_parts():
    names = _strings(_spec_tree())
    for module in ("QtWebEngineCore", "Qt3DCore", "QtQuick", "QtQml", "QtMultimedia"):
        assert module in names, module
    for needed in ("QtCore", "QtGui", "QtWidgets"):
        assert needed not in names, needed
    assert {"_webrtcvad", "pjsua2", "pjsua2_python.libs"} <= names


def test_desktop_entry_is_valid():
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(PKG / "voiceprobe.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Name"] == "voiceprobe"
    assert d["Exec"].split()[0] == "voiceprobe" and d["Terminal"] == "false"
    assert d["Categories"].endswith(";")


@pytest.mark.parametrize("script", ["build.sh", "smoke.sh"])
def test_scripts_are_executable_bash(script):
    path = PKG / script
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.slow
@pytest.mark.build
def test_frozen_app_builds_and_passes_its_smoke_test():
    """Build the PyInstaller bundle (about 30 s) and run its smoke test (help + a call)."""
    build = subprocess.run(
        ["bash", str(PKG / "build.sh")], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-4000:]
    proc = subprocess.run(
        ["bash", str(PKG / "smoke.sh")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke: PASS" in proc.stdout
