"""The IR an op call produces holds what the op needs at run time: every argument in the
op's parameter order, a variadic parameter as one tuple, dims named by label as positions."""

from __future__ import annotations

import torch

from gtdsl.driver import check_file
from gtdsl.ir.core import Lit, Op, Var, walk
from gtdsl.ir.verify import verify_program
from gtdsl.ops import OPS


def _eqns(source: str) -> dict[str, list]:
    c = check_file(source, "t.gt")
    assert [d for d in c.diagnostics if d.is_error] == [], [str(d) for d in c.diagnostics]
    verify_program(c.result.program)
    out: dict[str, list] = {}
    for fn in c.result.program.functions:
        for e in walk(fn.body):
            out.setdefault(e.op.name.lower(), []).append(e)
    return out


def _ins(e) -> dict[str, object]:
    return dict(zip(e.param("names"), e.ins))


def test_variadic_sizes_are_one_tuple_in_parameter_order() -> None:
    eq = _eqns("def f(x: f32[a, b, c], n: int):\n"
               "    return x.reshape(a * b, c), x.permute(2, 0, 1), zeros(n, 3, dtype=f16)\n")
    permute = _ins(eq["permute"][0])
    assert permute["dims"] == Lit((2, 0, 1), permute["dims"].type)
    zeros = _ins(eq["zeros"][0])
    assert isinstance(zeros["size"], Var)  # (n, 3): n known only at run time
    assert zeros["dtype"].value.value == "f16" and zeros["device"].value is None
    tup = next(e for e in eq["tuple"] if e.outs[0] == zeros["size"])
    assert len(tup.ins) == 2 and tup.ins[1].value == 3
    assert list(_ins(eq["reshape"][0])) == [p.name for p in OPS["reshape"].params]


def test_dims_by_label_are_positions() -> None:
    eq = _eqns("def f(x: f32[batch, seq, hidden]):\n"
               "    return x.sum((batch, seq)), x.mean(hidden), x.transpose(seq, batch)\n")
    assert _ins(eq["sum"][0])["dim"].value == (0, 1)
    assert _ins(eq["mean"][0])["dim"].value == 2
    t = _ins(eq["transpose"][0])
    assert (t["dim0"].value, t["dim1"].value) == (1, 0)
    # the positions are the ones torch needs: same result as the labels meant
    x = torch.randn(2, 3, 4)
    assert torch.equal(x.sum(_ins(eq["sum"][0])["dim"].value), x.sum((0, 1)))


def test_dims_by_label_under_a_variadic_are_negative_positions() -> None:
    eq = _eqns("def f(x: f32[*b, seq, hidden]):\n    return x.sum(seq)\n")
    assert _ins(eq["sum"][0])["dim"].value == -2


def test_rename_keeps_label_names_as_strings() -> None:
    eq = _eqns("def f(x: f32[n, d]):\n    return x.rename(rows, cols)\n")
    assert _ins(eq["rename"][0])["names"].value == ("rows", "cols")


def test_cat_dim_by_label_uses_the_first_tensor() -> None:
    eq = _eqns("def f(x: f32[rows=n, d], y: f32[rows=m, d]):\n    return cat([x, y], rows)\n")
    assert _ins(eq["cat"][0])["dim"].value == 0


def test_float_parameter_is_not_read_as_none() -> None:
    c = check_file("def f(x: f32[n, d], k: float):\n    return x[k]\n", "t.gt")
    assert [d.code for d in c.diagnostics] == ["GT2016"]


def test_label_tuples_print_as_sizes_in_the_ir() -> None:
    from gtdsl.driver import emit

    c = check_file("def f(x: f32[a, b]):\n    return x.reshape(a * b)\n", "t.gt")
    text = emit(c.result, "f", "ir")
    assert "size(a)" in text and "Size(" not in text and "Arg(" not in text
