"""Programs at the edges of the language run, on every backend, and compute what Python and
torch compute: unary minus and plus on numbers and on values of unknown type, row and size
variables bound by parameters and by annotated assignments, identifiers that Python
normalises (NFKC), call chains and nesting up to their limits, loops and constant arithmetic.

Oracles: torch itself, and Python running the same source (a gtdsl program without size
variables in its body is Python once its annotations are left unevaluated); for identifiers,
Python's own parser.
"""

from __future__ import annotations

import ast as pyast
import importlib.util
import keyword
import math
import sys
import time
import unicodedata
from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.check.callgraph import MAX_CALL_DEPTH
from gtdsl.check.expressions import MAX_CONSTANT_BITS
from gtdsl.check.statements import MAX_LOOP_TRIPS
from gtdsl.driver import check_file
from gtdsl.driver import load
from gtdsl.syntax.build_types import MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH

BACKENDS = ["torch", "interpret", "triton"]


def _load(tmp_path: Path, source: str, backend: str, name: str = "prog.gt"):
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return load(path, backend=backend)


def _errors(source: str) -> list[str]:
    return [d.code for d in check_file(source, "t.gt").diagnostics if d.is_error]


def _python(source: str, **names):
    """The same source run by Python (annotations stay unevaluated)."""
    scope = {"math": math, "torch": torch, "zeros": torch.zeros, "maximum": torch.maximum,
             **names}
    body = "\n".join(line for line in source.splitlines() if not line.startswith("import "))
    exec(compile("from __future__ import annotations\n" + body, "<oracle>", "exec"), scope)
    return scope


# ============================================================================ unary operators

UNARY = """import math

def numbers(c: float, k: int, b: bool, u, v):
    return (-c, +c, -k, +k, -b, +b, -(-k), -True, +False, -0.0, -math.inf, -math.pi, -u, +u,
            -v, +v, -(-c))

def tensors(x: f32[n], c: float) -> f32[n]:
    a = x + (-math.inf)
    b = x.clamp(min=-c, max=+c)
    return maximum(b, x * -c) + a.exp()

def masked(x: f32[n]) -> f32[n]:
    return x.masked_fill(x > 0, -math.inf)

def offset(x: f32[n], c: float) -> f32[n]:
    return -x - c + (-(x * c))
"""
SIZES = """def sizes(x: f32[n, d]) -> f32[n, d]:
    return x + -d + (-x.shape[1]) * 2 + -(-n) - +(-d)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_unary_minus_and_plus_on_numbers_and_unknown_values(tmp_path: Path,
                                                            backend: str) -> None:
    assert _errors(UNARY) == []
    m = _load(tmp_path, UNARY, backend)
    py = _python(UNARY)
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0])
    for args in [(1.5, 3, True, x, 2.5), (0.0, -4, False, -x, -0.0), (-2.0, 0, True, 7, x)]:
        got, want = m.numbers(*args), py["numbers"](*args)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert type(g) is type(w)
            if isinstance(w, torch.Tensor):
                assert torch.equal(g, w)
            else:
                assert g == w and math.copysign(1, g) == math.copysign(1, w)
    with pytest.raises(gtdsl.CastError) as err:  # a value without `-`: a diagnostic
        m.numbers(1.0, 1, True, "text", 1.0)
    assert err.value.diagnostics[0].code == "GT3004"
    for c in (0.5, 2.0):
        assert torch.equal(m.tensors(x, c), py["tensors"](x, c))
        assert torch.equal(m.offset(x, c), py["offset"](x, c))
    assert torch.equal(m.masked(x), py["masked"](x))
    s = _load(tmp_path, SIZES, backend, "sizes.gt")
    for shape in [(2, 3), (5, 1)]:
        x2 = torch.randn(shape)
        n, d = shape
        assert torch.equal(s.sizes(x2), x2 + -d + (-d) * 2 + n + d)


def test_unary_minus_keeps_sizes_static() -> None:
    c = check_file("def f(x: f32[n], k: int) -> f32[?]:\n    return zeros(-(-n) + k)\n\n\n"
                   "def g(k: int):\n    return -k, +k, -(2 * k), -3, +True\n", "t.gt")
    assert [d.code for d in c.diagnostics] == []
    assert c.result.signature("g") == ("def g(k: int) -> tuple[int[-k], int[k], int[-2*k], "
                                       "int[-3], int[1]]")


# ============================================================================ row and size vars

ROWS = """struct S[d]:
    w: f32[d, 2*d]

def keep(x: f32[*b, n]) -> f32[*b, n]:
    return x * 2.0

def flat(x: f32[b, n]) -> f32[b, n]:
    return x + 1.0

def both(x: f32[*b, n], y: f32[b]) -> f32[b]:
    return y + x.sum()

def from_struct(p: S[d]) -> f32[d]:
    return p.w.sum(1)

def from_int(p: S[d], m: int) -> f32[d, m]:
    return zeros(d, m) + p.w.sum()

def let_size(x) -> f32[?]:
    y: f32[k] = x
    return y * 3.0

def let_row(x) -> f32[?, ?]:
    y: f32[*k, m] = x
    z: f32[*k, m] = y + 1.0
    return z
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_and_size_variables_bound_by_parameters_and_lets(tmp_path: Path,
                                                             backend: str) -> None:
    assert _errors(ROWS) == []
    m = _load(tmp_path, ROWS, backend)
    x3 = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(m.keep(x3), x3 * 2)
    assert torch.equal(m.keep(torch.ones(5)), torch.full((5,), 2.0))
    x2 = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(m.flat(x2), x2 + 1)
    y = torch.tensor([1.0, -1.0])
    assert torch.equal(m.both(x3, y), y + x3.sum())
    w = torch.arange(8.0).reshape(2, 4)
    assert torch.equal(m.from_struct({"w": w}), w.sum(1))
    assert torch.equal(m.from_int({"w": w}, 3), torch.zeros(2, 3) + w.sum())
    assert torch.equal(m.let_size(torch.ones(4)), torch.full((4,), 3.0))
    assert torch.equal(m.let_row(x2), x2 + 1)
    assert torch.equal(m.let_row(x3), x3 + 1)
    with pytest.raises(gtdsl.CastError) as err:  # the struct's dims disagree with d
        m.from_struct({"w": torch.ones(2, 3)})
    assert err.value.diagnostics[0].code == "GT3001"


# ============================================================================ identifiers

NAMES = """struct Ｐ[ｄ]:
    ｗ: f32[ｄ]

def ｇ(ｘ: f32[ｋ]) -> f32[k]:
    αβ = ｘ * 2.0
    return αβ

def add(x: f32[n], y: f32[ｎ]) -> f32[n]:
    return x + y

def call(x: f32[n]) -> f32[ｎ]:
    return g(ｘ=x) + ｇ(x=x)

def labels(x: f32[ｒｏｗｓ=n, d]) -> f32[d]:
    return x.sum(dim=rows)

def field(p: P[d]) -> f32[ｄ]:
    return p.w + p.ｗ

def ℌ(ﬁx: f32[Ⅸ]) -> f32[IX]:
    return fix
"""


def test_names_equal_after_nfkc_are_one_name() -> None:
    c = check_file(NAMES, "t.gt")
    assert [d.code for d in c.diagnostics] == []
    sigs = dict(c.result.signatures)
    assert sigs["add"] == "def add(x: f32[n], y: f32[n]) -> f32[n]"
    assert sigs["g"] == "def g(x: f32[k]) -> f32[k]"
    assert sigs["H"] == "def H(fix: f32[IX]) -> f32[IX]"


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_ascii_identifiers_run(tmp_path: Path, backend: str) -> None:
    m = _load(tmp_path, NAMES, backend)
    x, y = torch.arange(3.0), torch.tensor([1.0, 2.0, 4.0])
    assert torch.equal(m.add(x, y), x + y)
    assert torch.equal(m.add(x=x, y=y), x + y)
    assert torch.equal(m.g(x=x), x * 2) and torch.equal(m.call(x), x * 4)
    assert torch.equal(m.labels(torch.ones(2, 3)), torch.full((3,), 2.0))
    assert torch.equal(m.field({"w": y}), y * 2)
    assert torch.equal(m.H(x), x)
    with pytest.raises(gtdsl.CastError) as err:  # `n` and `ｎ` are one size: 3 is not 4
        m.add(x, torch.ones(4))
    assert err.value.diagnostics[0].code == "GT3001"


BUILTIN_NAMES = """def g(len: f32[n, int], int: int, float: float, ValueError: f32[int],
      isinstance: bool) -> f32[n]:
    tuple = len.sum(1) * int * float + ValueError.sum()
    return tuple if isinstance else -tuple
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_names_of_python_builtins_are_ordinary_names(tmp_path: Path, backend: str) -> None:
    """Generated code names its own helpers so that no user name can shadow them."""
    m = _load(tmp_path, BUILTIN_NAMES, backend)
    a, v = torch.arange(6.0).reshape(2, 3), torch.ones(3)
    want = a.sum(1) * 2 * 1.5 + v.sum()
    assert torch.equal(m.g(a, 2, 1.5, v, True), want)
    assert torch.equal(m.g(len=a, int=2, float=1.5, ValueError=v, isinstance=False), -want)
    with pytest.raises(gtdsl.CastError):
        m.g(a, 2.5, 1.5, v, True)


IDENTIFIERS = ["ｎ", "ℌ", "ﬁx", "Ⅸ", "µ", "Å", "ｘ１", "αβγ", "名前", "x\u0301", "ｉｆ", "ｎｏｎｅ",
               "Ｎｏｎｅ", "ｌａｍｂｄａ", "x²", "x\u00b7y", "℘", "\u309b", "ｆ＿ｇ", "_ｘ"]
# Python names whose characters the grammar's NAME pattern (letters, digits and `_` as
# Python's `re` knows them) lacks: a middle dot, a combining accent, a symbol Python counts as
# a letter, a fullwidth `_`. Refused loudly (GT0002) where Python accepts them.
NOT_IN_THE_GRAMMAR = {"x\u00b7y", "x\u0301", "\u2118", "\uff46\uff3f\uff47"}


@pytest.mark.parametrize("ident", IDENTIFIERS)
def test_identifiers_are_read_as_python_reads_them(ident: str) -> None:
    """Python's parser is the oracle: the same name, or a refusal where Python refuses it. A
    name that normalises to a keyword (Python takes `Ｎｏｎｅ` as a parameter named `None`) is
    refused too: no generated code could name it."""
    try:
        expected = pyast.parse(f"def f({ident}): pass").body[0].args.args[0].arg
    except SyntaxError:
        expected = None
    src = f"def f({ident}: f32[n]) -> f32[n]:\n    return {ident}\n"
    c = check_file(src, "t.gt")
    codes = [d.code for d in c.diagnostics]
    if expected is None or keyword.iskeyword(expected) or ident in NOT_IN_THE_GRAMMAR:
        assert codes and all(code in ("GT0001", "GT0002") for code in codes), codes
        assert all(d.primary is not None and d.primary.span.line == 1 for d in c.diagnostics)
        if expected is not None and keyword.iskeyword(expected):
            assert codes == ["GT0001"] and f"`{expected}`" in c.diagnostics[0].message
    else:
        assert codes == []
        assert c.result.module.functions["f"].params[0][0] == expected
        assert expected == unicodedata.normalize("NFKC", ident)


def test_the_python_front_end_normalises_names(tmp_path: Path) -> None:
    (tmp_path / "nfkc_mod.py").write_text(
        "import gtdsl\n\n\n@gtdsl.jit\ndef scale(ｘ: \"f32[ｎ]\", y: \"f32[n]\") -> \"f32[n]\":\n"
        "    ｚ = ｘ * 2.0\n    return z + y\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("nfkc_mod", tmp_path / "nfkc_mod.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nfkc_mod"] = mod
    try:
        spec.loader.exec_module(mod)
        x, y = torch.arange(3.0), torch.ones(3)
        assert torch.equal(mod.scale(x, y), x * 2 + y)
        assert torch.equal(mod.scale(x=x, y=y), x * 2 + y)  # Python normalised `ｘ` to `x`
        with pytest.raises(gtdsl.CastError):
            mod.scale(x, torch.ones(4))
    finally:
        del sys.modules["nfkc_mod"]


# ============================================================================ calls

def _chain(n: int) -> str:
    out = [f"def f{i}(x: f32[n]) -> f32[n]:\n    return f{i + 1}(x) + 1.0\n" for i in range(n - 1)]
    return "\n".join(out + [f"def f{n - 1}(x: f32[n]) -> f32[n]:\n    return x\n"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_chain_of_calls_at_the_limit_runs(tmp_path: Path, backend: str) -> None:
    m = _load(tmp_path, _chain(MAX_CALL_DEPTH), backend)
    x = torch.tensor([0.5, -1.0])
    assert torch.equal(m.f0(x), x + (MAX_CALL_DEPTH - 1))


def test_many_functions_check_without_deep_recursion() -> None:
    """1000 functions in 20 chains of 50, and one caller of every chain's head: no recursion
    in the checker, and checking is linear."""
    parts = []
    for c in range(20):
        for i in range(49):
            parts.append(f"def c{c}_{i}(x: f32[n]) -> f32[n]:\n    return c{c}_{i + 1}(x) * 0.5\n")
        parts.append(f"def c{c}_49(x: f32[n]) -> f32[n]:\n    return x + {c}.0\n")
    parts.append("def top(x: f32[n]) -> f32[n]:\n    return " +
                 " + ".join(f"c{c}_0(x)" for c in range(20)) + "\n")
    src = "\n".join(parts)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)  # checking must not need a deep stack
    try:
        start = time.perf_counter()
        c = check_file(src, "many.gt")
        took = time.perf_counter() - start
    finally:
        sys.setrecursionlimit(limit)
    assert [d.code for d in c.diagnostics] == []
    assert took < 20, took
    assert c.result.signature("top") == "def top(x: f32[n]) -> f32[n]"


def test_shared_helpers_are_not_recursion(tmp_path: Path) -> None:
    src = ("def h(x: f32[n]) -> f32[n]:\n    return x + 1.0\n\n\n"
           "def a(x: f32[n]) -> f32[n]:\n    return h(x) * h(x)\n\n\n"
           "def b(x: f32[n]) -> f32[n]:\n    return a(h(x)) + h(a(x))\n")
    m = _load(tmp_path, src, "interpret")
    x = torch.tensor([1.0, 2.0])
    a = (x + 1) * (x + 1)
    assert torch.equal(m.b(x), (((x + 1) + 1) * ((x + 1) + 1)) + (a + 1))


# ============================================================================ nesting

def _nested_ifs(depth: int) -> str:
    lines = ["def f(x: f32[n]) -> f32[n]:", "    y = x"]
    for i in range(depth):
        lines.append("    " * (i + 1) + f"if x.sum() > {i % 7 - 3}.0:")
        lines.append("    " * (i + 2) + f"y = y * 0.5 + {i}.0")
    lines.append("    return y")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("depth", [50, MAX_BLOCK_DEPTH])
def test_nested_ifs_up_to_the_limit_run(tmp_path: Path, backend: str, depth: int) -> None:
    src = _nested_ifs(depth)
    m = _load(tmp_path, src, backend)
    oracle = _python(src)["f"]
    for x in (torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5]), torch.tensor([9.0, 0.0])):
        assert torch.equal(m.f(x), oracle(x))


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_an_elif_chain_at_the_limit_runs(tmp_path: Path, backend: str) -> None:
    src = "def f(x: f32[n], k: int) -> f32[n]:\n    if k == 0:\n        return x\n" + "".join(
        f"    elif k == {i + 1}:\n        return x + {i + 1}.0\n"
        for i in range(MAX_BLOCK_DEPTH - 1)) + "    return x * 2.0\n"
    m = _load(tmp_path, src, backend)
    oracle = _python(src)["f"]
    x = torch.tensor([1.0, 3.0])
    for k in (0, 1, 30, MAX_BLOCK_DEPTH - 1, MAX_BLOCK_DEPTH, 500):
        assert torch.equal(m.f(x, k), oracle(x, k))


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_a_long_sum_within_the_limit_runs(tmp_path: Path, backend: str) -> None:
    terms = MAX_EXPR_DEPTH - 2
    src = ("def f(x: f32[n]) -> f32[n]:\n    return " +
           " + ".join(f"x * {i}.0" if i % 3 else "x" for i in range(terms)) + "\n")
    m = _load(tmp_path, src, backend)
    x = torch.tensor([0.5, 2.0])
    assert torch.allclose(m.f(x), _python(src)["f"](x))


# ============================================================================ loops and constants

def test_a_loop_at_the_limit_checks() -> None:
    body = "        y = y + 1.0\n"
    assert _errors(f"def f(x: f32[n]) -> f32[n]:\n    y = x\n    for i in range({MAX_LOOP_TRIPS}):"
                   f"\n{body}    return y\n") == []
    assert _errors("def f(x: f32[n], k: int) -> f32[n]:\n    y = x\n    for i in range(1000):\n"
                   "        for j in range(1000):\n            for t in range(k):\n"
                   "                y = y + 1.0\n    return y\n") == []
    assert _errors(f"def f(x: f32[n], k: int) -> f32[n]:\n    y = x\n    for i in range(k):\n"
                   f"        for j in range({MAX_LOOP_TRIPS}):\n    {body}    return y\n") == []


LOOPS = """def f(x: f32[n], k: int) -> f32[n]:
    y = x
    for i in range(3):
        for j in range(2, 10, 3):
            y = y + i * j
    for t in range(k):
        y = y * 0.5
    for s in range(10, 0, -4):
        y = y - s
    return y

def consts():
    return (2 ** 10, 3 ** 40, (-2) ** 3, 7 // 2, -7 % 3, 2 ** 4000 // 2 ** 3990,
            10 ** 12 // 10 ** 9, -(2 ** 63), 5 - 2 ** 70, 2 ** 4095 - 2 ** 4095, 0 ** 0,
            2 ** 4095 // 3 ** 2000)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_loops_and_constant_arithmetic_equal_python(tmp_path: Path, backend: str) -> None:
    assert _errors(LOOPS) == []
    m = _load(tmp_path, LOOPS, backend)
    py = _python(LOOPS)
    x = torch.tensor([1.0, -2.0])
    for k in (0, 3):
        assert torch.equal(m.f(x, k), py["f"](x, k))
    got, want = m.consts(), py["consts"]()
    assert got == want and [type(v) for v in got] == [type(v) for v in want]


def test_constants_are_folded() -> None:
    c = check_file(LOOPS, "t.gt")
    assert c.result.signature("consts").startswith(
        "def consts() -> tuple[int[1024], int[12157665459056928801], int[-8], int[3], int[2], "
        "int[1024], int[1000], int[-9223372036854775808]")
    assert _errors(f"def f() -> int:\n    return 2 ** {MAX_CONSTANT_BITS - 1} - 1\n") == []


def test_a_size_expression_too_large_to_track_is_known_at_run_time(tmp_path: Path) -> None:
    # squaring 2*n forty times would be a number of 2**40 bits: the checker stops tracking
    # it (no error, no hang); only running the function would compute it, as Python would
    huge = ("def h(x: f32[n], p: int) -> int:\n    t = 2 * n + p\n" + "    t = t * t\n" * 40 +
            "    return t % 1000\n")
    start = time.perf_counter()
    assert _errors(huge) == []
    assert time.perf_counter() - start < 1.0
    src = ("def h(x: f32[n], p: int, q: int) -> int:\n    s = (n + p + q + 1) ** 8\n"
           "    s = s ** 8\n    s = s ** 8\n    return s % 1000\n")
    start = time.perf_counter()
    assert _errors(src) == []
    assert time.perf_counter() - start < 1.0
    for backend in ("torch", "interpret"):
        m = _load(tmp_path, src, backend, f"h_{backend}.gt")
        assert m.h(torch.ones(2), 1, 2) == (2 + 1 + 2 + 1) ** 512 % 1000


def test_an_int_written_for_a_tensor_of_ints_suggests_i64() -> None:
    source = ("def f(ids: int[seq], w: f32[v, d]) -> f32[seq, d]:\n"
              "    return embedding(ids, w)\n\n\n"
              "def g(ids: int[seq]) -> i64[seq]:\n"
              "    return ids.abs()\n")
    diags = check_file(source, "t.gt").diagnostics
    assert [d.code for d in diags] == ["GT2016", "GT1011"]
    assert all("i64[...]" in (d.help or "") for d in diags)
