"""The benchmark suite's own pieces that can be wrong without a GPU: the hand-written
tutorial-style Triton baselines compute what their workloads compute (checked in Triton's
interpreter on small, odd sizes), and every workload's gtdsl source matches its eager
definition. Nothing here times anything."""

from __future__ import annotations

import pytest
import torch

from benchmarks import tutorial_triton
from benchmarks.workloads import WORKLOADS
from gtdsl.driver import load_source


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: w.name)
def test_workload_gtdsl_source_equals_its_eager_definition(w) -> None:
    fn = load_source(w.gt_source("f32"), f"{w.name}.gt").fn
    args = w.inputs(w.cpu_sizes[0], "cpu", torch.float32)
    torch.testing.assert_close(fn(*args), w.eager(*args), rtol=1e-4, atol=1e-4)


def test_tutorial_kernels_compute_their_workloads() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 37, generator=g)
    torch.testing.assert_close(tutorial_triton.softmax(x), torch.softmax(x, -1))
    w, b = torch.randn(37, generator=g), torch.randn(37, generator=g)
    torch.testing.assert_close(tutorial_triton.layer_norm(x, w, b),
                               torch.nn.functional.layer_norm(x, (37,), w, b, 1e-5),
                               rtol=1e-4, atol=1e-4)
    a, c = torch.randn(33, 20, generator=g), torch.randn(20, 17, generator=g)
    torch.testing.assert_close(tutorial_triton.matmul(a, c), a @ c, rtol=1e-4, atol=1e-4)
