"""The GPU lane: the Triton backend on CUDA at real sizes, against eager torch and the
reference interpreter. Skipped cleanly without a CUDA device (run with ``-m gpu``)."""

from __future__ import annotations

import pytest
import torch

from gtdsl.driver import load_source

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=1e-2, atol=1e-2),
       torch.bfloat16: dict(rtol=3e-2, atol=3e-2)}


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("m,n", [(4096, 781), (1823, 4096), (64, 16384)])
def test_softmax_rms_norm_layer_norm_on_cuda(dtype: str, m: int, n: int) -> None:
    src = (f"def f(x: {dtype}[m, n], w: {dtype}[n], c: {dtype}[n]):\n"
           "    return softmax(x, -1), rms_norm(x, (n,), w), layer_norm(x, (n,), w, c, 1e-5)\n")
    f = load_source(src, "g.gt", backend="auto").f
    tdt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    x = torch.randn(m, n, device="cuda", dtype=tdt)
    w, c = torch.randn(n, device="cuda", dtype=tdt), torch.randn(n, device="cuda", dtype=tdt)
    s, r, ln = f(x, w, c)
    assert f.uses_triton((True,))
    torch.testing.assert_close(s, torch.softmax(x, -1), **TOL[tdt])
    torch.testing.assert_close(r, torch.nn.functional.rms_norm(x, (n,), w), **TOL[tdt])
    torch.testing.assert_close(ln, torch.nn.functional.layer_norm(x, (n,), w, c, 1e-5),
                               **TOL[tdt])


@pytest.mark.parametrize("m,k,n", [(1024, 1024, 1024), (781, 1823, 5121), (8192, 4096, 4096)])
def test_linear_bias_gelu_on_cuda(m: int, k: int, n: int) -> None:
    src = "def f(x: bf16[m, k], w: bf16[n, k], c: bf16[n]):\n    return gelu(x @ w.T + c)\n"
    f = load_source(src, "mm.gt", backend="auto").f
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k ** 0.5
    c = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    ref = torch.nn.functional.gelu((x.float() @ w.float().T + c.float())).bfloat16()
    torch.testing.assert_close(f(x, w, c), ref, **TOL[torch.bfloat16])
    assert f.cache_info().compiles == 1


def test_one_compile_over_a_size_sweep_on_cuda() -> None:
    f = load_source("def f(x: f32[n], y: f32[n]):\n    return gelu(x * 2.0) * y\n",
                    "p.gt").f
    for n in (1, 7, 781, 1823, 5121, 1 << 20):
        x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
        torch.testing.assert_close(f(x, y), torch.nn.functional.gelu(x * 2.0) * y)
    assert f.cache_info().compiles == 1
