"""The tensor methods that are no catalogue op, against torch itself: x.size(), x.size(d),
len(x), x.dim(), x.numel(), and the dtype conversions x.float(), x.long(), ..., x.type_as(y):
the same values and dtypes on every backend, static types that agree, and located errors."""

from __future__ import annotations

import itertools

import pytest
import torch

import gtdsl

SHAPES = [(), (3,), (2, 0), (2, 3, 4), (1, 5, 1, 2)]
DTYPES = [torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool, torch.complex64]
METHODS = ["float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte",
           "bool", "cfloat", "cdouble"]
BACKENDS = ["torch", "interpret"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata_methods_equal_torch(backend: str) -> None:
    src = ("def meta(x):\n    return (x.size(), x.dim(), x.numel())\n\n"
           "def first(x):\n    return (len(x), x.size(0), x.size(-1))\n")
    m = gtdsl.load_source(src, backend=backend)
    for shape in SHAPES:
        x = torch.zeros(shape)
        assert m.meta(x) == (tuple(x.size()), x.dim(), x.numel())
        if shape:
            assert m.first(x) == (len(x), x.size(0), x.size(-1))


def test_static_types_of_the_metadata_methods() -> None:
    src = ("def f(x: f32[b, s, d]):\n"
           "    return (x.size(), x.size(1), len(x), x.dim(), x.numel())\n")
    from gtdsl.driver import check_file

    checked = check_file(src, ir=False)
    (sig,) = [s for _, s in checked.result.signatures]
    assert sig == ("def f(x: f32[b, s, d]) -> tuple[tuple[int[b], int[s], int[d]], int[s], "
                   "int[b], int[3], int[b*d*s]]"), sig


@pytest.mark.parametrize(("backend", "method"), list(itertools.product(BACKENDS, METHODS)))
def test_dtype_methods_equal_torch(backend: str, method: str) -> None:
    m = gtdsl.load_source(f"def conv(x):\n    return x.{method}()\n", backend=backend)
    for dtype in DTYPES:
        x = torch.ones(2, 3, dtype=dtype)
        want = getattr(x, method)()
        got = m.conv(x)
        assert got.dtype == want.dtype and torch.equal(got, want), (method, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_type_as_equals_torch(backend: str) -> None:
    m = gtdsl.load_source("def conv(x, y):\n    return x.type_as(y)\n", backend=backend)
    for a, b in itertools.product(DTYPES, repeat=2):
        x, y = torch.ones(2, dtype=a), torch.ones(3, dtype=b)
        assert m.conv(x, y).dtype == x.type_as(y).dtype


def test_dtype_methods_are_typed_statically() -> None:
    from gtdsl.driver import check_file

    src = "def f(x: f32[n], y: bf16[m]):\n    return (x.long(), x.half(), x.type_as(y))\n"
    (sig,) = [s for _, s in check_file(src, ir=False).result.signatures]
    assert sig.endswith("-> tuple[i64[n], f16[n], bf16[n]]"), sig


@pytest.mark.parametrize(("src", "code", "line"), [
    ("def f(x: f32[]):\n    return len(x)\n", "GT2005", 2),
    ("def f(x: f32[n]):\n    return x.size(0, 1)\n", "GT2017", 2),
    ("def f(x: f32[n]):\n    return x.float(1)\n", "GT2017", 2),
    ("def f(x: f32[n, m]):\n    return x.size(2)\n", "GT2010", 2),
    ("def f(x: f32[n]):\n    return x.numel(0)\n", "GT2017", 2),
    ("def f(x: f32[n]):\n    return x.type_as()\n", "GT2017", 2),
    ("def f(x: f32[n]):\n    return len(x, x)\n", "GT2017", 2),
])
def test_misuse_is_located(src: str, code: str, line: int) -> None:
    (d,) = gtdsl.check(src)
    assert (d.code, d.primary.span.line) == (code, line)
