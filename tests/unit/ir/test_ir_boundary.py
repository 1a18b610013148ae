"""The typed IR is the boundary between checking and execution.

The op enum is spelled out and equals the catalogue; the one operator table agrees with
Python and with the syntax tree's operators; a checked program carries everything a call
needs (parameter names, literal defaults, size variables, structs, exports), so it runs with
the front end's state thrown away.
"""

from __future__ import annotations

import gc
import operator

import pytest
import torch

from gtdsl.check import check_module
from gtdsl.diagnostics import SourceFile
from gtdsl.ir.core import STRUCTURAL, Op, count
from gtdsl.ir.verify import VerifyError, verify_program
from gtdsl.ops import OPS
from gtdsl.ops.operators import BY_NAME, OPERATORS, by_symbol
from gtdsl.runtime import interp
from gtdsl.runtime.module import CompiledModule
from gtdsl.ops.pyallow import DEFAULT
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_file_text


def _program(src: str):
    file = SourceFile("m.gt", src)
    result = check_module(file, parse_file_text(file))
    assert result.ok, result.diagnostics
    verify_program(result.program)
    return result.program


def test_the_op_enum_is_the_catalogue_plus_the_structural_ops() -> None:
    catalogue = {op.value for op in Op if op.catalogue}
    assert catalogue == set(OPS)
    assert all(op.value.upper() == op.name for op in Op)
    assert {op.name for op in STRUCTURAL} >= {"COMPARE", "BOOL_OP", "GETATTR", "RANGE", "SLICE",
                                              "KERNEL", "EXTERN", "CALL"}
    assert not STRUCTURAL & {op for op in Op if op.catalogue}


@pytest.mark.parametrize("op", OPERATORS, ids=lambda o: o.name)
def test_each_operator_computes_what_python_does(op) -> None:
    cases = {"binary": [(7, 3), (2.5, -4.0)], "compare": [(1, 2), (2, 2), (3, 2)],
             "membership": [(1, (1, 2)), (5, [1, 2])], "identity": [(None, None), (1, None)],
             "bool": [(0, 5), (3, 0), (True, False)], "unary": [(3,), (-2.5,), (0,)]}[op.kind]
    for args in cases:
        if op.name == "matmul":
            a, b = torch.randn(2, 3), torch.randn(3, 2)
            assert torch.equal(op.fn(a, b), a @ b)
            continue
        names = [f"v{i}" for i in range(len(args))]
        text = op.emit(*names)
        assert op.fn(*args) == eval(text, {}, dict(zip(names, args))), text  # noqa: S307


def test_the_syntax_tree_operators_all_have_a_row() -> None:
    for kind in ast.BinOpKind:
        assert by_symbol(kind.value, ("binary",)).name in OPS
    for kind in ast.CmpOp:
        assert by_symbol(kind.value, ("compare", "membership", "identity"))
    for kind in ast.BoolOpKind:
        assert by_symbol(kind.value, ("bool",))
    assert BY_NAME["mul"].fn is not operator.mul  # integers are bounded at run time


def test_integer_limits_refuse_instead_of_hanging() -> None:
    with pytest.raises(OverflowError):
        BY_NAME["pow"].fn(3, 10 ** 6)
    with pytest.raises(OverflowError):
        BY_NAME["mul"].fn(1 << 4000, 1 << 4000)
    assert BY_NAME["pow"].fn(2, 10) == 1024


SRC = '''
struct Pair[n]:
    a: f32[n]
    b: f32[n]

def scaled(x: f32[n], k: float = 2.0, shift: int = 1) -> f32[n]:
    """Doc of scaled."""
    return x * k + shift

def total(p: Pair[n], extra) -> f32[n]:
    items = [1, 2, 3]
    t = extra.real
    s: int = 0
    for i in range(3):
        if i in items and i >= 1 or i is None:
            s = s + i
    return scaled(p.a + p.b, k=t) + s
'''


def test_a_program_carries_what_a_call_needs() -> None:
    prog = _program(SRC)
    f = prog.function("scaled")
    assert f.param_names() == ("x", "k", "shift")
    assert dict(f.defaults) == {"k": 2.0, "shift": 1}
    assert f.doc == "Doc of scaled."
    assert f.signature.startswith("def scaled(x: f32[n], k: float = 2.0")
    assert "n" in f.size_vars
    (pair,) = prog.structs
    assert pair.name == "Pair" and pair.params == ("n",)
    assert [fd.name for fd in pair.fields] == ["a", "b"]
    assert dict(prog.exports) == {"scaled": "scaled", "total": "total"}
    total = prog.function("total")
    for op in (Op.RANGE, Op.COMPARE, Op.BOOL_OP, Op.GETATTR):
        assert count(total, op) >= 1, op
    assert count(total, Op.EXTERN) == 0  # no string-prefixed pseudo externs


def test_a_program_runs_without_the_front_end() -> None:
    """Built from the IR program alone (the checker's result dropped), every backend runs."""
    prog = _program(SRC)
    gc.collect()
    x, y = torch.randn(4), torch.randn(4)

    class Extra:
        real = 3.0

    for backend in ("interpret", "torch"):
        m = CompiledModule(prog, DEFAULT, backend)
        p = m.Pair(a=x, b=y)
        torch.testing.assert_close(m.scaled(x), x * 2.0 + 1)
        torch.testing.assert_close(m.total(p, Extra()), (x + y) * 3.0 + 1 + 3)
        assert m.scaled.__doc__ == "Doc of scaled."
    assert interp.interpret(interp.Program(prog, DEFAULT), "scaled", (x,), {"shift": 0}
                            ).equal(x * 2.0)


def test_the_verifier_refuses_a_compare_without_an_operator() -> None:
    from dataclasses import replace

    from gtdsl.ir.core import Block, Program

    prog = _program(SRC)
    total = prog.function("total")

    def strip(block: Block) -> Block:
        return Block(tuple(replace(e, params=(), blocks=tuple(strip(b) for b in e.blocks))
                           if e.op is Op.COMPARE else
                           replace(e, blocks=tuple(strip(b) for b in e.blocks))
                           for e in block.eqns))

    bad = Program((replace(total, body=strip(total.body)),))
    with pytest.raises(VerifyError, match="COMPARE lacks"):
        verify_program(bad)


def test_defaults_are_literal_values_in_the_program() -> None:
    prog = _program("def f(x: f32[n], a: float = -2.5, b: int = +3, c: tuple[int, int] = (1, -2),"
                    " d: bool = True, e=None, g=[1, (2, 'q')]) -> f32[n]:\n    return x * a + b\n")
    assert prog.function("f").defaults == (("a", -2.5), ("b", 3), ("c", (1, -2)), ("d", True),
                                           ("e", None), ("g", [1, (2, "q")]))
    x = torch.randn(3)
    torch.testing.assert_close(CompiledModule(prog, DEFAULT).f(x), x * -2.5 + 3)


@pytest.mark.parametrize("default", ["zeros(3)", "x", "1.0 + 2.0", "(1, y)", "[1, y]", "-x"])
def test_a_default_that_is_not_a_literal_is_gt2028(default: str) -> None:
    src = f"def f(x: f32[n], y: int = 1, k = {default}) -> f32[n]:\n    return x\n"
    file = SourceFile("m.gt", src)
    result = check_module(file, parse_file_text(file))
    assert [d.code for d in result.diagnostics] == ["GT2028"]
    assert result.diagnostics[0].primary.span.column == src.index(f"k = {default}") + 5


@pytest.mark.parametrize("backend", ["interpret", "torch", "triton"])
def test_keyword_arguments_of_a_gtdsl_call_bind_by_name(backend: str) -> None:
    """`sub2(b=y, a=x)` is `sub2(x, y)`: the CALL's argument names follow its inputs."""
    from gtdsl.driver import load_source

    m = load_source("def sub2(a: f32[n], b: f32[n]) -> f32[n]:\n    return a - b\n"
                    "def f(x: f32[n], y: f32[n]) -> f32[n]:\n    return sub2(b=y, a=x)\n",
                    "kw.gt", backend=backend)
    x, y = torch.tensor([10.0, 4.0]), torch.tensor([1.0, 1.0])
    torch.testing.assert_close(m.f(x, y), x - y)


@pytest.mark.parametrize("backend", ["interpret", "torch", "triton"])
def test_a_range_step_of_zero_is_a_gtdsl_error(backend: str) -> None:
    import gtdsl
    from gtdsl.driver import load_source

    m = load_source("def r(a: int, b: int, s: int) -> int:\n    t: int = 0\n"
                    "    for i in range(a, b, s):\n        t = t + i\n    return t\n",
                    "rng.gt", backend=backend)
    assert m.r(0, 10, 3) == 18
    with pytest.raises(gtdsl.CastError) as err:
        m.r(0, 10, 0)
    assert "GT3005" in str(err.value) and "range" in str(err.value)


def test_loading_text_with_a_lone_surrogate_is_a_parse_error() -> None:
    import gtdsl
    from gtdsl.driver import load_source

    with pytest.raises(gtdsl.ParseError):
        load_source('def f() -> int:\n    s = "\ud800"\n    return 1\n', "s.gt")


def test_loading_text_from_a_removed_directory_still_works(tmp_path, monkeypatch) -> None:
    from gtdsl.driver import load_source

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    m = load_source("def f(x: f32[n]) -> f32[n]:\n    return x + 1\n", "g.gt")
    assert m.f(torch.zeros(2)).tolist() == [1.0, 1.0]


def test_the_verifier_refuses_an_eqn_missing_a_required_parameter() -> None:
    from dataclasses import replace

    from gtdsl.ir.core import Block, Program

    prog = _program(SRC)
    total = prog.function("total")
    call = next(e for e in total.body.eqns if e.op is Op.CALL)
    bad_call = replace(call, params=tuple(kv for kv in call.params if kv[0] != "callee"))
    bad = replace(total, body=Block(tuple(bad_call if e is call else e
                                          for e in total.body.eqns)))
    with pytest.raises(VerifyError, match="CALL lacks"):
        verify_program(Program((bad,)))
