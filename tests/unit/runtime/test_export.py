"""``gtdsl.export``: dims dynamic where the type has size variables (named after them,
linear relations kept, fixed sizes static); the exported program equals the gtdsl function
at three other sizes and refuses what the type refuses; relations torch cannot state are
GT0912."""

from __future__ import annotations

import pytest
import torch

import gtdsl
from gtdsl.exporting import ExportError, dynamic_shapes

SOURCE = '''
def mlp(x: f32[b, s, d], w: f32[f, d], v: f32[d, f]) -> f32[b, s, d]:
    return x + linear(gelu(linear(x, w)), v)


def halves(x: f32[n, 2*d], y: f32[n, d]) -> f32[n, d]:
    return x[:, :d] * y + x[:, d:]


def fixed(x: f32[n, 4], w: f32[4, 4]) -> f32[n, 4]:
    return x @ w


def heads(x: f32[b, H*K], h: int[H]) -> f32[b, H, K]:
    return x.unflatten(-1, (h, -1))
'''


@pytest.fixture(scope="module")
def module():
    return gtdsl.load_source(SOURCE)


def test_the_dims_follow_the_type(module) -> None:
    shapes = dynamic_shapes(module.mlp, (torch.randn(2, 3, 4), torch.randn(8, 4),
                                         torch.randn(4, 8)))
    names = [{i: d.__name__ for i, d in s.items()} for s in shapes]
    assert names == [{0: "b", 1: "s", 2: "d"}, {0: "f", 1: "d"}, {0: "d", 1: "f"}]
    assert shapes[0][2] is shapes[1][1]  # one Dim per variable
    fixed = dynamic_shapes(module.fixed, (torch.randn(3, 4), torch.randn(4, 4)))
    assert [None if s is None else sorted(s) for s in fixed] == [[0], None]


def test_the_program_runs_at_other_sizes_as_gtdsl(module) -> None:
    g = torch.Generator().manual_seed(0)
    ep = gtdsl.export(module.mlp, torch.randn(2, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    for b, s, d, f in ((3, 5, 4, 6), (7, 2, 6, 3), (2, 9, 2, 2)):
        x = torch.randn(b, s, d, generator=g)
        w, v = torch.randn(f, d, generator=g), torch.randn(d, f, generator=g)
        torch.testing.assert_close(ep.module()(x, w, v), module.mlp(x, w, v))
    with pytest.raises(Exception, match="Guard failed|size"):  # the type's d == d
        ep.module()(torch.randn(2, 3, 4), torch.randn(8, 5), torch.randn(4, 8))
    ep = gtdsl.export(module.halves, torch.randn(3, 8), torch.randn(3, 4))
    x, y = torch.randn(5, 12, generator=g), torch.randn(5, 6, generator=g)
    torch.testing.assert_close(ep.module()(x, y), module.halves(x, y))
    with pytest.raises(Exception):  # 2*d: 12 against 2*5
        ep.module()(torch.randn(5, 12), torch.randn(5, 5))


def test_what_torch_cannot_state_is_gt0912(module) -> None:
    with pytest.raises(ExportError, match="H\\*K") as err:
        gtdsl.export(module.heads, torch.randn(2, 12), 3)
    assert err.value.diagnostic.code == "GT0912"
    with pytest.raises(ExportError, match="example") as err:  # a size of 1 specializes
        gtdsl.export(module.mlp, torch.randn(1, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    assert err.value.diagnostic.code == "GT0912"
    with pytest.raises(ExportError, match="takes 3 arguments"):
        gtdsl.export(module.mlp, torch.randn(2, 3, 4))
    with pytest.raises(ExportError, match="gtdsl function"):
        gtdsl.export(torch.sin, torch.randn(2))


def test_the_docs_example_runs(tmp_path) -> None:
    from tests.conftest import docs_python_example

    ex = docs_python_example("runtime.md", "### Exporting with `torch.export`", tmp_path,
                             "export_example")
    args = (torch.randn(4, 2, 6), torch.randn(5, 6), torch.randn(6, 5))
    torch.testing.assert_close(ex.ep.module()(*args), ex.m.mlp(*args))
