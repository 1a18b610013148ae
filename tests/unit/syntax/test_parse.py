"""Parser details: the type examples of docs/language.md ("Canonical spelling"), spans, soft
keywords, limits."""

from __future__ import annotations

import pytest

import gtdsl
from gtdsl.syntax import ast, parse_source, parse_type

LANGUAGE_MD_TYPES = [
    "f32[batch, seq, hidden=768] @ cuda", "bf16[*b, d]", "f32[...]", "i64[n]", "Tensor",
    "float[n, n]", "f16[heads=H, seq, hd=D // H] @ cuda:0", "bool[]",
]


@pytest.mark.parametrize("text", LANGUAGE_MD_TYPES)
def test_language_md_types_are_canonical(text: str) -> None:
    ty = parse_type(text)
    assert str(ty) == text
    assert parse_type(str(ty)) == ty


@pytest.mark.parametrize(("text", "canonical"), [
    ("f32[b,768]@cuda", "f32[b, 768] @ cuda"),
    ("?[...] @ ?", "Tensor[...]"),
    ("?", "?"),
    ("? @ cpu", "Tensor @ cpu"),
    ("f16[heads=H, seq, hd=D//H] @ cuda:0", "f16[heads=H, seq, hd=D // H] @ cuda:0"),
    ("f32[n=n]", "f32[n]"),
    ("f32[(N)]", "f32[N]"),
    ("f32[2*(N+1)]", "f32[2 * (N + 1)]"),
    ("f32[N-(M-1)]", "f32[N - (M - 1)]"),
    ("int[N]", "int[N]"),
    ("int[n, m]", "int[n, m]"),
    ("int @ cuda", "int @ cuda"),
    ("tuple[f32[n],]", "tuple[f32[n]]"),
])
def test_types_print_canonically(text: str, canonical: str) -> None:
    assert str(parse_type(text)) == canonical


def test_type_meanings() -> None:
    assert parse_type("Tensor") == ast.TensorType(None, None, None)
    assert parse_type("?[...]") == ast.TensorType(None, ast.Shape(ast.Variadic(None), ()), None)
    assert parse_type("int") == ast.ScalarType(ast.ScalarKind.INT)
    assert parse_type("int[N]") == ast.ScalarType(ast.ScalarKind.INT, ast.SizeVar("N"))
    assert isinstance(parse_type("int[n] @ ?"), ast.TensorType)
    assert isinstance(parse_type("bool[]"), ast.TensorType)
    assert parse_type("f32 @ ?") == parse_type("f32")
    dims = parse_type("f32[a, 3, b=4, c=?, ?, N+1]").shape.dims  # type: ignore[union-attr]
    assert dims == (
        ast.Dim("a", ast.SizeVar("a")), ast.Dim(None, ast.SizeLit(3)),
        ast.Dim("b", ast.SizeLit(4)), ast.Dim("c", None), ast.Dim(None, None),
        ast.Dim(None, ast.SizeBinOp(ast.SizeOp.ADD, ast.SizeVar("N"), ast.SizeLit(1))),
    )
    assert parse_type("Linear[768, D]") == ast.StructType("Linear", (ast.SizeLit(768), ast.SizeVar("D")))
    assert parse_type("f32[out=O, in=I]").shape.dims[1].label == "in"  # type: ignore[union-attr]
    device = parse_type("f32 @ cuda:3").device  # type: ignore[union-attr]
    assert device == ast.Device(ast.DeviceKind.CUDA, 3)


@pytest.mark.parametrize(("text", "code"), [
    ("", "GT0011"), ("f32[n", "GT0009"), ("f32 @", "GT0012"), ("f32[*a, *b]", "GT0011"),
    ("f32[n] @ tpu", "GT0011"), ("list[f32", "GT0009"), ("Linear[...]", "GT0011"),
    ("f32[n]\nx", "GT0001"), ("f32[-1]", "GT0001"),
])
def test_bad_types(text: str, code: str) -> None:
    with pytest.raises(gtdsl.ParseError) as err:
        parse_type(text)
    assert err.value.diagnostic.code == code


def test_spans_and_locations() -> None:
    src = "def f(x: f32[n]) -> f32[n]:\n    y = x @ x.T\n    return y\n"
    fn = parse_source(src, "m.gt").body[0]
    assert isinstance(fn, ast.FunctionDef)
    assign = fn.body[0]
    assert isinstance(assign, ast.Assign)
    assert assign.span is not None and assign.span.location == "m.gt:2:5"
    assert assign.value.span is not None and assign.value.span.text == "x @ x.T"
    assert fn.span is not None and fn.span.text.endswith("return y")
    param = fn.params[0]
    assert param.annotation is not None and param.annotation.span is not None
    assert param.annotation.span.location == "m.gt:1:10"
    # structural equality ignores spans
    assert parse_source("\n\n" + src).body == parse_source(src).body


def test_soft_keywords_are_names_outside_types() -> None:
    src = ("def f(list: f32[n], struct, cuda, Tensor) -> list[f32[n]]:\n"
           "    f32 = list + struct\n"
           "    struct: ? = cuda.to(f16)\n"
           "    tuple = Tensor\n"
           "    return [f32, struct, tuple]\n"
           "\n"
           "struct S:\n"
           "    struct: f32\n")
    module = parse_source(src)
    fn, st = module.body
    assert isinstance(fn, ast.FunctionDef) and isinstance(st, ast.StructDef)
    assert [p.name for p in fn.params] == ["list", "struct", "cuda", "Tensor"]
    assert st.fields[0].name == "struct"


def test_docstrings_are_lifted() -> None:
    module = parse_source('"""mod"""\ndef f(x):\n    """fn"""\n    return x\n'
                          'struct S:\n    """st"""\n    a: f32\n')
    fn, st = module.body
    assert module.docstring == "mod"
    assert isinstance(fn, ast.FunctionDef) and fn.docstring == "fn" and len(fn.body) == 1
    assert isinstance(st, ast.StructDef) and st.docstring == "st"


def test_crlf_tabs_and_continuations() -> None:
    src = "def f(x):\r\n\tif x:\r\n\t\ty = x + \\\r\n  1\r\n\treturn y\r\n"
    fn = parse_source(src).body[0]
    assert isinstance(fn, ast.FunctionDef) and len(fn.body) == 2


def test_no_trailing_newline_and_comment_at_end() -> None:
    assert parse_source("def f(x):\n    return x  # done").body
    assert parse_source("# only a comment").body == ()
    assert parse_source("").body == ()


@pytest.mark.parametrize("src", [
    "def f(x):\n    return " + "(" * 3000 + "x" + ")" * 3000 + "\n",
    "def f(x):\n    return " + " + ".join(["x"] * 5000) + "\n",
    "def f(x):\n    return " + "-" * 5000 + "x\n",
])
def test_deep_nesting_is_a_diagnostic(src: str) -> None:
    with pytest.raises(gtdsl.ParseError) as err:
        parse_source(src)
    assert err.value.diagnostic.code == "GT0015"
    assert err.value.diagnostic.location.startswith("<string>:2:")  # inside the expression


def test_first_statement_must_not_be_indented() -> None:
    with pytest.raises(gtdsl.ParseError) as err:
        parse_source("  def f(x):\n      return x\n")
    assert err.value.diagnostic.code == "GT0005"
    assert err.value.diagnostic.location == "<string>:1:3"
