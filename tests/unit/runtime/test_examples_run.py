"""Every example program runs on the CPU: each function, on inputs drawn from its types,
gives through the compiled torch backend exactly what the reference interpreter gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.runtime.inputs import Sampler
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "docs" / "examples").rglob("*.gt"))
CASES = [(p, q) for p in EXAMPLES for q in gtdsl.load(p).functions]
# unannotated parameters: what the example's text says they take
GIVEN = {"scale": lambda: [torch.randn(3, 4), 2.0]}


@pytest.mark.parametrize("path,name", CASES, ids=lambda v: v.name if isinstance(v, Path)
                         else v)
def test_example_runs_and_matches_the_interpreter(path: Path, name: str) -> None:
    compiled = gtdsl.load(path)
    reference = gtdsl.load(path, backend="interpret")
    fn = compiled.functions[name]
    if name in GIVEN:
        args, sizes = GIVEN[name](), {}
    else:
        s = Sampler({"H": 2, "K": 3}, {}, torch.Generator().manual_seed(0),
                    compiled.program.struct, compiled.structs)
        args = [s.value(t, n) for n, t in fn._params]
        sizes = {v: s.sizes[v] for v in fn._size_kw if v in ("H", "K")}
    out = fn(*args, **sizes)
    ref = reference.functions[name](*args, **sizes)
    assert type(out) is type(ref)
    if isinstance(out, torch.Tensor):
        assert out.shape == ref.shape and out.dtype == ref.dtype
        assert torch.equal(out, ref)
    assert fn.cache_info().compiles == 1


def test_every_language_example_is_covered() -> None:
    names = {p.name for p, _ in CASES}
    assert {"mlp.gt", "rms_norm.gt", "softmax.gt", "layers.gt", "gated.gt", "encoder.gt",
            "bert.gt"} <= names
