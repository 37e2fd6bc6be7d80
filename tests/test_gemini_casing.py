"""The proto-JSON field readers shared by the Gemini client protocol and the simulator."""

from __future__ import annotations

import pytest

from app.providers.gemini.casing import typed_field


class _Bad(Exception):
    pass


def _fail(name: str) -> Exception:
    return _Bad(f"{name} has the wrong type")


def test_typed_field_reads_either_casing() -> None:
    assert typed_field({"setupComplete": {}}, "setupComplete", dict, _fail) == {}
    assert typed_field({"session_resumption": {"handle": "h"}}, "sessionResumption", dict,
                       _fail) == {"handle": "h"}


def test_typed_field_absent_or_null_is_none() -> None:
    assert typed_field({}, "toolCall", dict, _fail) is None
    assert typed_field({"toolCall": None}, "toolCall", list, _fail) is None


@pytest.mark.parametrize(("value", "kind"), [([], dict), ({}, list), (1, str), ("yes", bool),
                                             (1, bool)])
def test_typed_field_wrong_type_raises_the_callers_error(value: object, kind: type) -> None:
    with pytest.raises(_Bad, match="^turnComplete has the wrong type$"):
        typed_field({"turn_complete": value}, "turnComplete", kind, _fail)
