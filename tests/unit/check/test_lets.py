"""Annotated assignments declare the variable's type: they relabel, they may forget what the
value knows, and new size names in them are bound by the value."""

from __future__ import annotations

from gtdsl.check import signature
from gtdsl.driver import check_file


def _check(source: str):
    c = check_file(source, "t.gt")
    return c, [d.code for d in c.diagnostics if d.is_error]


def test_a_loosened_annotation_lets_a_loop_grow_a_tensor() -> None:
    src = ("def grow(xs: list[f32[m, d]], x0: f32[n, d]) -> f32[?, d]:\n"
           "    acc: f32[?, d] = x0\n    for x in xs:\n        acc = cat([acc, x], 0)\n"
           "    return acc\n")
    assert _check(src)[1] == []
    # without the annotation the loop-head type is f32[n, d] and one step changes it
    codes = _check(src.replace("acc: f32[?, d] = x0", "acc = x0"))[1]
    assert codes and set(codes) <= {"GT2006", "GT2018"}, codes


def test_an_annotation_relabels_and_binds_new_size_names() -> None:
    c, codes = _check("def named(x: f32[n, d]):\n    y: f32[rows, cols] = x\n"
                      "    return y.sum(cols)\n")
    assert codes == []
    fn = c.result.module.functions["named"]
    assert str(fn.returns) == "f32[rows=n]"
    assert signature(fn).startswith("def named(x: f32[n, d]) -> f32[")
