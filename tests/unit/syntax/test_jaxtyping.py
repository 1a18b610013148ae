"""jaxtyping annotations are gtdsl types (gtdsl.syntax.jaxtyping).

Three checks: each form reads as the gtdsl type the table in docs/language.md gives; the
values a form accepts at run time are the values jaxtyping itself accepts (its own
``isinstance`` inside one ``jaxtyped`` context is the oracle, over every pairing of a set of
tensors); and each form with no gtdsl meaning is a located GT0011 (or GT0001) with a hint.
"""

from __future__ import annotations

import itertools
import textwrap

import jaxtyping
import pytest
import torch

import gtdsl
from gtdsl.diagnostics import ParseError
from gtdsl.runtime.errors import CastError
from gtdsl.syntax.parse import parse_type
from gtdsl.syntax.unparse import unparse_type

# (jaxtyping form, the gtdsl type it is)
TABLE = [
    ('Float[Tensor, "b s d"]', "float[b, s, d]"),
    ('Float32[Tensor, "b 768"]', "f32[b, 768]"),
    ('Float16[Tensor, "n"]', "f16[n]"),
    ('BFloat16[torch.Tensor, "n"]', "bf16[n]"),
    ('Float64[Tensor, "n"]', "f64[n]"),
    ('Int[Tensor, "b s"]', "int[b, s] @ ?"),
    ('Int8[Tensor, "n"]', "i8[n]"),
    ('Int16[Tensor, "n"]', "i16[n]"),
    ('Int32[Tensor, "n"]', "i32[n]"),
    ('Int64[Tensor, "n"]', "i64[n]"),
    ('UInt[Tensor, "n"]', "uint[n]"),
    ('UInt8[Tensor, "h w 3"]', "u8[h, w, 3]"),
    ('Bool[Tensor, "b s"]', "bool[b, s]"),
    ('Complex[Tensor, "n"]', "complex[n]"),
    ('Complex64[Tensor, "n"]', "c64[n]"),
    ('Complex128[Tensor, "n"]', "c128[n]"),
    ('Shaped[Tensor, "b n"]', "Tensor[b, n]"),
    ('Float[Tensor, "*batch d"]', "float[*batch, d]"),
    ('Float[Tensor, "... d"]', "float[..., d]"),
    ('Float[Tensor, "..."]', "float[...]"),
    ('Float[Tensor, ""]', "float[]"),
    ('Float[Tensor, "b _ d"]', "float[b, ?, d]"),
    ('Float[Tensor, "b _pos d"]', "float[b, ?, d]"),
    ('Float[Tensor, "*_ d"]', "float[..., d]"),
    ('Float[Tensor, "#b d"]', "float[?, d]"),
    ('Float[Tensor, "*#b d"]', "float[..., d]"),
    ('Float[Tensor, "rows=3 cols=4"]', "float[rows=3, cols=4]"),
    ('Float[Tensor, "b s d*3"]', "float[b, s, d * 3]"),
    ('Float[Tensor, "n+1 (n-1)//2 n%4"]', "float[n + 1, (n - 1) // 2, n % 4]"),
]


@pytest.mark.parametrize(("form", "expected"), TABLE)
def test_each_form_is_its_gtdsl_type(form: str, expected: str) -> None:
    assert unparse_type(parse_type(form)) == unparse_type(parse_type(expected))


def test_forms_in_a_jitted_function_check_and_run() -> None:
    from tests.fixtures.jit_functions import jaxtyped_attention, jaxtyped_pick

    q, k = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(jaxtyped_attention(q, k), q @ k.transpose(-1, -2))
    assert str(jaxtyped_attention.signature) == (
        "def jaxtyped_attention(q: float[b, h, s, d], k: float[b, h, t, d]) "
        "-> float[b, h, s, t]")
    x, i = torch.randn(2, 7), torch.tensor([1, 6])
    torch.testing.assert_close(jaxtyped_pick(x, i), x[torch.arange(2), i])
    with pytest.raises(CastError) as err:
        jaxtyped_attention(q, torch.randn(2, 3, 6, 4))
    assert "dim 3 (`d`): expected 5, got 4" in str(err.value)


def test_a_shape_error_between_jaxtyping_annotations_is_static() -> None:
    src = textwrap.dedent('''\
        def f(x: Float[Tensor, "b n"], w: Float[Tensor, "m k"]) -> Float[Tensor, "b k"]:
            return x @ w
        ''')
    errors = [d for d in gtdsl.check(src) if d.is_error]
    assert [d.code for d in errors] == ["GT2006"], errors
    assert "n is not m" in errors[0].message


# ---------------------------------------------------------------- against jaxtyping itself

_TENSORS = [
    torch.zeros(2, 3), torch.zeros(3, 2), torch.zeros(3, 3), torch.zeros(2, 3, 4),
    torch.zeros(4, 2, 3), torch.zeros(3), torch.zeros(2), torch.zeros(()), torch.zeros(1, 3),
    torch.zeros(2, 6), torch.zeros(2, 3, dtype=torch.float64),
    torch.zeros(2, 3, dtype=torch.bfloat16), torch.zeros(2, 3, dtype=torch.int64),
    torch.zeros(2, 3, dtype=torch.int32), torch.zeros(2, 3, dtype=torch.uint8),
    torch.zeros(2, 3, dtype=torch.bool), torch.zeros(3, dtype=torch.int64),
    torch.zeros(2, 3, dtype=torch.complex64),
]

# pairs of annotations for (x, y): sizes bound by x are checked in y
_PAIRS = [
    ('Float[Tensor, "b n"]', 'Float[Tensor, "n b"]'),
    ('Float[Tensor, "b n"]', 'Float[Tensor, "n"]'),
    ('Float32[Tensor, "b n"]', 'Int64[Tensor, "n"]'),
    ('Shaped[Tensor, "b n"]', 'Shaped[Tensor, "b n"]'),
    ('Float[Tensor, "*batch n"]', 'Float[Tensor, "*batch n"]'),
    ('Float[Tensor, "... n"]', 'Float[Tensor, "n"]'),
    ('Float[Tensor, "b n"]', 'Float[Tensor, "b n*2"]'),
    ('Float[Tensor, "b n"]', 'Float[Tensor, "n-1 b"]'),
    ('Float[Tensor, "b 3"]', 'Float[Tensor, ""]'),
    ('Int[Tensor, "b n"]', 'UInt8[Tensor, "b n"]'),
    ('Bool[Tensor, "b n"]', 'Complex[Tensor, "b n"]'),
    ('Float[Tensor, "b _"]', 'Float[Tensor, "_ b"]'),
    ('Float[Tensor, "rows=2 n"]', 'BFloat16[Tensor, "rows=2 n"]'),
    ('Float64[Tensor, "*b"]', 'Float[Tensor, "*b"]'),
]


def _jaxtyping_accepts(form_x: str, form_y: str, x: torch.Tensor, y: torch.Tensor) -> bool:
    scope = {name: getattr(jaxtyping, name) for name in dir(jaxtyping) if name[0].isupper()}
    scope.update(Tensor=torch.Tensor, torch=torch)
    tx, ty = eval(form_x, scope), eval(form_y, scope)  # noqa: S307 (the test's own text)
    with jaxtyping.jaxtyped("context"):
        return isinstance(x, tx) and isinstance(y, ty)


@pytest.mark.parametrize(("form_x", "form_y"), _PAIRS)
def test_accepts_what_jaxtyping_accepts(form_x: str, form_y: str) -> None:
    f = gtdsl.load_source(f"def f(x: {form_x}, y: {form_y}) -> int:\n    return 0\n",
                          backend="torch").f
    disagree = []
    for x, y in itertools.product(_TENSORS, repeat=2):
        try:
            f(x, y)
            ours = True
        except CastError:
            ours = False
        theirs = _jaxtyping_accepts(form_x, form_y, x, y)
        if ours != theirs:
            disagree.append((tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, ours, theirs))
    assert not disagree, disagree


def test_broadcastable_dims_accept_more_than_jaxtyping_never_less() -> None:
    # `#b` is "b or 1" in jaxtyping; gtdsl has no broadcastable dims and reads any size
    f = gtdsl.load_source('def f(x: Float[Tensor, "b n"], y: Float[Tensor, "#b n"]) -> int:\n'
                          '    return 0\n', backend="torch").f
    more = 0
    for x, y in itertools.product(_TENSORS, repeat=2):
        theirs = _jaxtyping_accepts('Float[Tensor, "b n"]', 'Float[Tensor, "#b n"]', x, y)
        try:
            f(x, y)
            ours = True
        except CastError:
            ours = False
        assert ours or not theirs, (x.shape, y.shape)
        more += ours and not theirs
    assert more > 0  # e.g. x [2, 3], y [3, 3]


# ---------------------------------------------------------------- forms with no gtdsl meaning

_REFUSED = [
    ('Real[Tensor, "b"]', "GT0011", "`Real` has no gtdsl type", "Real"),
    ('Integer[Tensor, "b"]', "GT0011", "`Integer` has no gtdsl type", "Integer"),
    ('Num[Tensor, "b"]', "GT0011", "`Num` has no gtdsl type", "Num"),
    ('Inexact[Tensor, "b"]', "GT0011", "`Inexact` has no gtdsl type", "Inexact"),
    ('Key[Tensor, ""]', "GT0011", "`Key` has no gtdsl type", "Key"),
    ('UInt16[Tensor, "b"]', "GT0011", "`UInt16` has no gtdsl type", "UInt16"),
    ('Float8e4m3fn[Tensor, "b"]', "GT0011", "has no gtdsl type", "Float8e4m3fn"),
    ('Float[Array, "b"]', "GT0011", "is not a torch tensor", "Array"),
    ('Float[np.ndarray, "b"]', "GT0011", "is not a torch tensor", "np.ndarray"),
    ('Float[Tensor, "b, s"]', "GT0011", "separated by spaces", "b,"),
    ('Float[Tensor, "b ..."]', "GT0011", "only first", "..."),
    ('Float[Tensor, "*a *b"]', "GT0011", "one variadic part", "*b"),
    ('Float[Tensor, "?b"]', "GT0011", "PyTree", "?b"),
    ('Float[Tensor, "b**2"]', "GT0011", "`**`", "**"),
    ('Float[Tensor, "min(a,b)"]', "GT0011", "separated by spaces", "min(a,b)"),
    ('Float[Tensor, "a/2"]', "GT0011", "`/` cannot appear", "/"),
    ('Float[Tensor, "(b+"]', "GT0011", "incomplete", "(b+"),
    ('Float[Tensor, "007"]', "GT0011", "invalid size", "007"),
    ('Float[Tensor, "n ²"]', "GT0011", "cannot appear in a size", "²"),
    ('Float[Tensor, "' + "9" * 1001 + '"]', "GT0016", "too large", "9" * 1001),
    ('Float[Tensor, f"b"]', "GT0011", "plain string", 'f"b"'),
    ('Float[Tensor, "__gt_n"]', "GT0001", "reserved", "__gt_n"),
    ('Float[Tensor, "b"] @ cuda', "GT0011", "jaxtyping dims string", "@ cuda"),
    ('Foo[Tensor, "b"]', "GT0011", "with a string is not a type", "Foo"),
    ('f32["b"]', "GT0011", "jaxtyping", '"b"'),
    ('f32[torch.Tensor]', "GT0011", "jaxtyping", "torch.Tensor"),
]


@pytest.mark.parametrize(("form", "code", "message", "at"), _REFUSED)
def test_forms_without_gtdsl_meaning_are_located_errors(form: str, code: str, message: str,
                                                        at: str) -> None:
    src = f"def f(x: {form}) -> int:\n    return 0\n"
    with pytest.raises(ParseError) as err:
        gtdsl.parse_source(src)
    (diag,) = err.value.diagnostics
    assert diag.code == code
    assert message in diag.message
    span = diag.primary.span
    assert src[span.start:span.end] == at
    assert diag.help


def test_the_reference_example_runs(tmp_path) -> None:
    from tests.conftest import docs_python_example

    module = docs_python_example("language.md", "### 3.11 From jaxtyping", tmp_path,
                                 "jaxtyping_example")
    assert module.scores.shape == (2, 4, 8, 9)
    assert str(module.attention.signature) == (
        "def attention(q: float[b, h, s, d], k: float[b, h, t, d]) -> float[b, h, s, t]")


def test_the_direct_parser_builds_the_forms_as_lark_does() -> None:
    from tests.unit.syntax.test_direct import same_either_way

    for form, _ in TABLE:
        text = f"def f(x: {form}, n: Linear[768, D]) -> {form}:\n    y: {form} = x\n    return y\n"
        assert same_either_way(text), form
    for form, *_ in _REFUSED:
        assert not same_either_way(f"def f(x: {form}) -> int:\n    return 0\n"), form
    for odd in ('Float[Tensor, "b", "c"]', 'Float["b", Tensor]', 'Float[Tensor.x, "b"]',
                'Float[torch.Tensor]', 'Float[a.b.c, "b"]', 'Float[Tensor, "b",]'):
        same_either_way(f"def f(x: {odd}) -> int:\n    return 0\n")
