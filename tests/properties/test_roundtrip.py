"""Round trips: generated ASTs and types survive unparse -> parse unchanged."""

from __future__ import annotations

from hypothesis import given

import gtdsl
from gtdsl.syntax import ast, parse_source, unparse, unparse_type
from tests import strategies as S


@given(S.types)
def test_type_str_parses_back_to_an_equal_type(ty: ast.TypeExpr) -> None:
    text = str(ty)
    assert text == unparse_type(ty)
    assert gtdsl.parse_type(text) == ty


@given(S.types)
def test_type_str_is_canonical(ty: ast.TypeExpr) -> None:
    text = str(ty)
    assert str(gtdsl.parse_type(text)) == text
    # extra spaces and a string wrapper change nothing
    spaced = text.replace(",", " , ").replace("[", "[ ")
    assert gtdsl.parse_type(f"  {spaced}  ") == ty


@given(S.exprs)
def test_expression_round_trip(expr: ast.Expr) -> None:
    module = ast.Module((ast.FunctionDef("f", (), (), None, (ast.Return(expr),)),))
    assert parse_source(unparse(module)) == module


@given(S.functions())
def test_function_round_trip(fn: ast.FunctionDef) -> None:
    module = ast.Module((fn,))
    assert parse_source(unparse(module)) == module


@given(S.modules)
def test_module_round_trip(module: ast.Module) -> None:
    text = unparse(module)
    again = parse_source(text)
    assert again == module
    assert unparse(again) == text


@given(S.functions())
def test_string_annotations_mean_the_same_as_bare_ones(fn: ast.FunctionDef) -> None:
    """A .py-style function with string annotations parses to the same tree."""
    text = unparse(ast.Module((fn,)))
    quoted = ast.Module((fn,))
    for p in fn.params:
        if p.annotation is not None:
            bare = f"{p.name}: {unparse_type(p.annotation)}"
            text = text.replace(bare, f'{p.name}: "{unparse_type(p.annotation)}"', 1)
    assert parse_source(text) == quoted
