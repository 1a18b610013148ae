"""Fuzzing: any text gives an AST or a gtdsl diagnostic, never another exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, strategies as st

import gtdsl
from gtdsl.diagnostics import ParseError, render_json, render_text
from gtdsl.syntax import parse_source, parse_type
from tests.conftest import REPO

SEEDS = [p.read_text(encoding="utf-8") for p in sorted(
    list((REPO / "docs" / "examples").rglob("*.gt"))
    + list((REPO / "tests" / "golden" / "parse").glob("*.gt"))
)]
TOKENS = ["def ", "struct ", "return ", "if ", "else:", "elif ", "for ", " in ", "(", ")", "[",
          "]", ":", ",", "=", "->", "@", "?", "*", "**", "...", "\n", "    ", "\t", "#", '"',
          "'", '"""', "x", "f32", "cuda:0", "1", "1.5", "not ", "and ", "lambda ", "while ",
          "{", "}", "\\\n", ";", "$", "\x00", "é", "\r\n", "int[N]", "*b", "=?", "//", "%"]


def _assert_clean_failure(err: ParseError, text: str) -> None:
    assert err.diagnostics
    for diag in err.diagnostics:
        rendered = render_text(diag)
        assert rendered.startswith("error[GT")
        assert "Traceback" not in rendered
        if diag.primary is not None:
            assert 0 <= diag.primary.span.start <= len(text) + 1
    render_json(list(err.diagnostics))


def _parse_anything(text: str) -> None:
    try:
        parse_source(text)
    except ParseError as err:
        _assert_clean_failure(err, text)


@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _parse_anything(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_random_token_soup(text: str) -> None:
    _parse_anything(text)


@st.composite
def mutated_sources(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)):]
        elif kind == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif kind == "replace":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos + 1:]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines[i:i + 1] = [lines[i], lines[i]] if kind == "dup_line" else []
                text = "".join(lines)
    return text


@given(mutated_sources())
def test_mutated_examples(text: str) -> None:
    _parse_anything(text)


@given(st.one_of(st.text(max_size=40),
                 st.lists(st.sampled_from(TOKENS + ["f32", "[", "]", "n", "=", "@ cuda", "Tensor",
                                                    "list", "tuple", "int", "768", "+"]),
                          max_size=12).map("".join)))
def test_random_types(text: str) -> None:
    try:
        ty = parse_type(text)
    except ParseError as err:
        _assert_clean_failure(err, text)
    else:
        assert parse_type(str(ty)) == ty


@given(st.binary(max_size=120))
def test_random_bytes_through_check(tmp_path_factory, data: bytes) -> None:  # noqa: ANN001
    path = Path(tmp_path_factory.mktemp("fuzz")) / "f.gt"
    path.write_bytes(data)
    for diag in gtdsl.check(path):
        assert render_text(diag).split("[", 1)[1].startswith("GT")
