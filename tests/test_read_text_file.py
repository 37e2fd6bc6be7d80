"""Reading a UTF-8 text file the user named: one ConfigError line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from app.profile import read_text_file


def test_reads_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: é\n", encoding="utf-8")
    assert read_text_file(tmp_path / "a.yaml") == "name: é\n"


@pytest.mark.parametrize(("make", "what", "message"), [
    (lambda d: d / "none.yaml", "file", "file not found"),
    (lambda d: d, "suite file", "is a folder, not a suite file"),
    (lambda d: d / "none.yaml", "suite file", "suite file not found"),
])
def test_names_the_problem_and_the_thing(tmp_path: Path, make: object, what: str,
                                         message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message):
        read_text_file(path, what)


def test_not_utf8_names_the_byte(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_bytes(b"ok: \xff\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 4\)"):
        read_text_file(tmp_path / "b.yaml")
