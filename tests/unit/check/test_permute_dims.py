"""`permute` of a tensor of known rank: dims given only at run time keep the rank and are
checked when the call runs; a wrong count of dims is refused statically."""

from __future__ import annotations

import pytest
import torch

import gtdsl
from gtdsl.driver import check_file

SOURCE = """\
def f(x: f32[a, b], i: int, j: int) -> f32[?, ?]:
    return x.permute(i, j)

def g(x: f32[a, b], i: int) -> f32[?, ?]:
    return x.permute(i, 0)

def h(x: f32[a]) -> f32[a]:
    return x.permute(0)
"""


def test_run_time_dims_type_check() -> None:
    diags = check_file(SOURCE, "t.gt").diagnostics
    assert [d for d in diags if d.is_error] == [], [str(d) for d in diags]


@pytest.mark.parametrize("body", ["x.permute(i, 0)", "x.permute(i, 0, 1, 2)",
                                  "x.permute(i, 1, 1)"])
def test_wrong_or_repeated_dims_are_refused(body: str) -> None:
    src = f"def f(x: f32[a, b, c], i: int) -> Tensor:\n    return {body}\n"
    assert [d.code for d in check_file(src, "t.gt").diagnostics] == ["GT2010"]


def test_run_time_dims_run_and_are_checked() -> None:
    m = gtdsl.load_source(SOURCE)
    x = torch.randn(2, 3)
    assert m.f(x, 1, 0).shape == (3, 2)
    assert m.f(x, 0, 1).shape == (2, 3)
    assert m.g(x, 1).shape == (3, 2)
    with pytest.raises(gtdsl.CastError, match="permute needs each of the 2 dims exactly once"):
        m.f(x, 0, 0)
