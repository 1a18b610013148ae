"""Calls between gtdsl functions: a size variable no argument determines (`H` and `K` from an
`H*K` dim) is given by keyword, `split_heads(x, H=H, K=K)`, as from Python; a call that leaves
one undetermined is GT2013 before anything runs; an equation left open by one argument is
solved once a later argument binds its other variable. Run results are compared with torch
on every backend."""

from __future__ import annotations

import pytest
import torch

import gtdsl
from gtdsl.driver import check_file

SPLIT = '''def split_heads[H, K](x: f32[b, s, inner=H*K]) -> f32[b, H, s, K]:
    return x.unflatten(-1, (H, K)).transpose(1, 2)


def two[H, K](x: f32[H*K], y: f32[H]) -> f32[K]:
    return x[:K]

'''


def _errors(source: str) -> list:
    return [d for d in check_file(SPLIT + source, "t.gt").diagnostics if d.is_error]


def test_a_keyword_names_the_split() -> None:
    c = check_file(SPLIT + "def heads[H, K](x: f32[b, s, hidden=H*K]) -> f32[b, H, s, K]:\n"
                   "    return split_heads(x, H=H, K=K)\n", "t.gt")
    assert [d for d in c.diagnostics if d.is_error] == []
    # swapping them is a different split, and the types say so
    assert _errors("def swapped[H, K](x: f32[b, s, hidden=H*K]) -> f32[b, H, s, K]:\n"
                   "    return split_heads(x, H=K, K=H)\n")
    assert _errors("def literal(x: f32[b, s, 12]) -> f32[b, 3, s, 4]:\n"
                   "    return split_heads(x, H=3, K=4)\n") == []


def test_an_undetermined_size_is_a_static_error() -> None:
    errs = _errors("def heads[H, K](x: f32[b, s, hidden=H*K]) -> f32[b, H, s, K]:\n"
                   "    return split_heads(x)\n")
    assert [d.code for d in errs] == ["GT2013"]
    assert "no argument determines `H`, `K`" in errs[0].message
    assert errs[0].help == "give them by keyword: H=..., K=..."
    assert errs[0].primary is not None and errs[0].primary.span.line == SPLIT.count("\n") + 2


def test_a_later_argument_solves_an_earlier_product() -> None:
    assert _errors("def ok[H, K](x: f32[H*K], y: f32[H]) -> f32[K]:\n"
                   "    return two(x, y)\n") == []


def test_an_argument_of_unknown_size_may_still_bind_at_run_time() -> None:
    # `y` is unchecked: its shape at run time can fix H, so the checker does not refuse
    assert _errors("def later[H, K](x: f32[H*K], y) -> f32[K]:\n"
                   "    return two(x, y)\n") == []


def test_a_size_argument_must_be_a_known_size() -> None:
    errs = _errors("def f(x: f32[b, s, 12], n) -> f32[b, ?, s, ?]:\n"
                   "    return split_heads(x, H=n, K=4)\n")
    assert [d.code for d in errs] == ["GT2013"]
    assert "size `H` of `split_heads` needs a size the checker knows" in errs[0].message
    assert _errors("def g(x: f32[b, s, 12]) -> f32[b, 3, s, 4]:\n"
                   "    return split_heads(x, H=3, Q=4)\n")[0].message == \
        "`split_heads` has no parameter `Q`"


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_keyword_sizes_run(tmp_path, backend: str) -> None:
    path = tmp_path / "heads.gt"
    path.write_text(SPLIT + "def heads[H, K](x: f32[b, s, hidden=H*K]) -> f32[b, H, s, K]:\n"
                    "    return split_heads(x, H=H, K=K)\n\n\n"
                    "def ok[H, K](x: f32[H*K], y: f32[H]) -> f32[K]:\n"
                    "    return two(x, y)\n")
    m = gtdsl.load(path, backend=backend)
    x = torch.randn(2, 5, 12)
    assert torch.equal(m.heads(x, H=3, K=4), x.unflatten(-1, (3, 4)).transpose(1, 2))
    assert torch.equal(m.heads(x, H=4, K=3), x.unflatten(-1, (4, 3)).transpose(1, 2))
    assert torch.equal(m.ok(torch.arange(12.0), torch.zeros(3)), torch.arange(4.0))
