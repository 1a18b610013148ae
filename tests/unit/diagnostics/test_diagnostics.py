"""Diagnostics: spans, rendering, JSON, the code registry and its pages."""

from __future__ import annotations

import json
import re

import pytest

from gtdsl.diagnostics import (
    CODES, Diagnostic, GtdslError, Label, Severity, SourceFile, Span, lookup_code, render_json,
    render_text,
)
from gtdsl.diagnostics.explain import explanation
from tests.conftest import REPO


def test_line_and_column() -> None:
    f = SourceFile("a.gt", "ab\ncd\n\tx")
    assert f.line_col(0) == (1, 1)
    assert f.line_col(3) == (2, 1)
    assert f.line_col(4) == (2, 2)
    assert f.line_col(7) == (3, 2)
    assert f.line_col(999) == (3, 3)
    shifted = SourceFile("m.py", "    def f():\n        pass\n", line_offset=10)
    assert shifted.line_col(21) == (12, 9)
    assert Span(shifted, 21, 25).location == "m.py:12:9"


def test_render_primary_secondary_notes_help() -> None:
    f = SourceFile("m.gt", "def f(x: f32[n]) -> f32[m]:\n    y = x\n    return y\n")
    diag = Diagnostic(
        "GT0001", "something is wrong",
        Label(Span(f, 49, 50), "here"),
        (Label(Span(f, 9, 15), "declared here"),),
        notes=("a note",), help="do this",
    )
    assert render_text(diag) == (
        "error[GT0001]: something is wrong\n"
        " --> m.gt:3:12\n"
        "  |\n"
        "1 | def f(x: f32[n]) -> f32[m]:\n"
        "  |          ------ declared here\n"
        "...\n"
        "3 |     return y\n"
        "  |            ^ here\n"
        "  = note: a note\n"
        "  = help: do this\n"
    )


def test_render_tabs_line_up() -> None:
    f = SourceFile("t.gt", "\tx = $\n")
    text = render_text(Diagnostic("GT0002", "bad", Label(Span(f, 5, 6))))
    line, marks = text.splitlines()[3:5]
    assert line.index("$") == marks.index("^")


def test_render_without_source_and_warning() -> None:
    diag = Diagnostic("GT0904", "`e.gt` is empty", path="e.gt", severity=Severity.WARNING)
    assert render_text(diag) == "warning[GT0904]: `e.gt` is empty\n --> e.gt\n"


def test_json_form() -> None:
    f = SourceFile("m.gt", "x\ny\n")
    diag = Diagnostic("GT0001", "msg", Label(Span(f, 2, 3), "lab"), help="h")
    (obj,) = json.loads(render_json([diag]))
    assert obj["code"] == "GT0001" and obj["severity"] == "error"
    assert (obj["file"], obj["line"], obj["column"]) == ("m.gt", 2, 1)
    assert obj["primary"]["end_column"] == 2 and obj["primary"]["message"] == "lab"
    assert obj["help"] == "h" and obj["secondary"] == [] and obj["notes"] == []


def test_error_str_is_the_rendering() -> None:
    diag = Diagnostic("GT0906", "bad usage")
    assert str(GtdslError([diag])) == render_text(diag).rstrip("\n")


def test_unregistered_codes_are_refused() -> None:
    with pytest.raises(ValueError):
        Diagnostic("GT4242", "no such code")


def test_every_code_has_a_page_and_every_page_a_code() -> None:
    pages = {p.stem for p in (REPO / "docs" / "errors").glob("*.md")}
    assert pages == set(CODES)
    for code, info in CODES.items():
        assert re.fullmatch(r"GT\d{4}", code)
        found = explanation(code)
        assert found is not None
        assert found[1].startswith(f"# {code}: {info.title}\n")


@pytest.mark.parametrize(("text", "code"), [("GT0003", "GT0003"), ("gt0003", "GT0003"),
                                            ("3", "GT0003"), (" GT0901 ", "GT0901")])
def test_lookup_code_spellings(text: str, code: str) -> None:
    info = lookup_code(text)
    assert info is not None and info.code == code


@pytest.mark.parametrize("text", ["GT9999", "abc", "", "GT00031"])
def test_lookup_unknown(text: str) -> None:
    assert lookup_code(text) is None
