"""The Python front end: a function's own source, positions in its .py file."""

from __future__ import annotations

import inspect

import pytest

import gtdsl
from gtdsl.syntax import ast, parse_source, unparse
from tests.fixtures import jit_functions as F

FIXTURE = inspect.getsourcefile(F)


def _line_of(text: str) -> int:
    lines = open(FIXTURE, encoding="utf-8").read().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if text in line)


def test_string_annotations_parse_like_bare_types() -> None:
    fn = gtdsl.parse_function(F.rms_norm)
    same = parse_source(
        "def rms_norm(x: f32[*b, d], w: f32[d], eps: float = 1e-6) -> f32[*b, d]:\n"
        '    """Root-mean-square normalisation."""\n'
        "    return x * rsqrt(mean(x * x, dim=d, keepdim=True) + eps) * w\n"
    ).body[0]
    assert isinstance(same, ast.FunctionDef)
    assert fn.params == same.params and fn.returns == same.returns and fn.body == same.body
    assert fn.docstring == "Root-mean-square normalisation."
    assert fn.decorators == (ast.Name("register"),)


def test_spans_point_into_the_python_file() -> None:
    fn = gtdsl.parse_function(F.rms_norm)
    line = _line_of("def rms_norm(")
    x_annotation = fn.params[0].annotation
    assert x_annotation is not None and x_annotation.span is not None
    assert x_annotation.span.file.name == FIXTURE
    assert (x_annotation.span.line, x_annotation.span.column) == (line, 18)  # inside the quotes
    assert x_annotation.span.text == "f32[*b, d]"
    body = fn.body[0]
    assert body.span is not None and body.span.line == line + 3


def test_methods_keep_their_indentation_in_columns() -> None:
    fn = gtdsl.parse_function(F.Layers.scaled)
    line = _line_of("def scaled(")
    assert fn.decorators[0] == ast.Name("staticmethod")
    assert isinstance(fn.decorators[1], ast.Call)
    annotation = fn.params[0].annotation
    assert annotation is not None and annotation.span is not None
    assert (annotation.span.line, annotation.span.column) == (line, 20)
    assert str(annotation) == "f32[n] @ cuda"


def test_nested_and_wrapped_functions() -> None:
    inner = gtdsl.parse_function(F.outer())
    assert inner.name == "inner" and str(inner.returns) == "i64[n]"
    assert gtdsl.parse_function(F.cached.__wrapped__).name == "rms_norm"


def test_errors_in_a_python_function_point_at_the_py_file() -> None:
    with pytest.raises(gtdsl.ParseError) as err:
        gtdsl.parse_function(F.broken)
    diag = err.value.diagnostic
    assert diag.code == "GT0011"
    assert diag.location == f"{FIXTURE}:{_line_of('def broken(')}:23"
    rendered = str(err.value)
    assert 'def broken(x: "f32[n, *b]"):' in rendered
    assert rendered.splitlines()[4].index("^") == rendered.splitlines()[3].index("*b")


def test_functions_without_source_are_reported() -> None:
    namespace: dict[str, object] = {}
    exec("def made(x):\n    return x\n", namespace)  # noqa: S102
    for fn, fragment in [(lambda x: x, "lambda"), (len, "not a Python function"),
                         (namespace["made"], "source of `made` is not available")]:
        with pytest.raises(gtdsl.ParseError) as err:
            gtdsl.parse_function(fn)
        assert err.value.diagnostic.code == "GT0905"
        assert fragment in err.value.diagnostic.message


def test_unparse_of_a_python_function_is_gt_source() -> None:
    fn = gtdsl.parse_function(F.rms_norm)
    text = unparse(fn)
    assert 'x: f32[*b, d]' in text and '"f32' not in text
    assert parse_source(text).body[0] == fn
