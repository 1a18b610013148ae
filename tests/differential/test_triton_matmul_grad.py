"""The backward of a matrix product with an epilogue, in Triton's interpreter on the CPU.

The gradient products compute dZ (the epilogue's derivative) inside their operand tiles
(``gtdsl.lower.triton.matmul_grad``): no dZ tensor is written, a bias's gradient (``linear``'s,
or a vector added in the epilogue) is summed by the weight's product, and only the gradients
of full-shaped epilogue inputs (a residual, a gate) need the epilogue's derivative kernel.
The oracle is torch's autograd in f64 over the same computation written in PyTorch; sizes are
not multiples of the interpreter's 16-wide tiles, so every edge mask is exercised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gtdsl.driver import load_source
from gtdsl.ir.core import Op, walk
from gtdsl.lower.triton import matmul_grad
from gtdsl.lower.triton.autograd import differentiable
from gtdsl.lower.triton.kernels import launcher_for
from tests.differential.test_triton_grad import launches  # noqa: F401  (a fixture)

SIZES = {"b": 2, "m": 7, "k": 19, "n": 21}  # M = 7 or 14 rows, depths 19 and 21: edges
EVEN = {"b": 2, "m": 16, "k": 32, "n": 16}  # every depth a multiple of the tile's
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.bfloat16: dict(rtol=4e-2, atol=4e-2),
       torch.float16: dict(rtol=1e-2, atol=1e-2)}

# (parameters, body, the same in PyTorch, the bias-like vectors among the parameters)
CASES: list[tuple[str, str, Callable[..., torch.Tensor]]] = [
    ("x: f32[m, k], w: f32[k, n]", "x @ w", lambda x, w: x @ w),
    ("x: f32[m, k], w: f32[n, k], c: f32[n]", "linear(x, w, c)", F.linear),
    ("x: f32[b, m, k], w: f32[n, k], c: f32[n]", "gelu(linear(x, w, c))",
     lambda x, w, c: F.gelu(F.linear(x, w, c))),
    ("x: f32[m, k], w: f32[n, k], c: f32[n]", "gelu(x @ w.T + c)",
     lambda x, w, c: F.gelu(x @ w.T + c)),
    ("x: f32[m, k], w: f32[n, k], c: f32[n], r: f32[m, n]", "relu(linear(x, w, c)) + r",
     lambda x, w, c, r: F.relu(F.linear(x, w, c)) + r),
    ("x: f32[b, m, k], w: f32[k, n], g: f32[b, m, n]", "tanh(x @ w) * g",
     lambda x, w, g: torch.tanh(x @ w) * g),
    ("x: f32[m, k], w: f32[n, k], a: float", "silu(x @ w.T) * a",
     lambda x, w, a: F.silu(x @ w.T) * a),
    ("x: f32[m, k], w: f32[k, n], c: f32[n], d: f32[n]",
     "h = x @ w\n    return (h + c) * sigmoid(h) * d",
     lambda x, w, c, d: (x @ w + c) * torch.sigmoid(x @ w) * d),
    # 1/|Z| in the derivative: the tiles past the depth (Z read as 0 there) must not leak NaN
    ("x: f32[m, k], w: f32[n, k]", "log(abs(x @ w.T))", lambda x, w: torch.log(torch.abs(x @ w.T))),
    ("x: bf16[m, k], w: bf16[n, k], c: bf16[n]", "gelu(linear(x, w, c))",
     lambda x, w, c: F.gelu(F.linear(x, w, c))),
    ("x: f16[m, k], w: f16[k, n], c: f16[n]", "sigmoid(x @ w + c)",
     lambda x, w, c: torch.sigmoid(x @ w + c)),
]
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def _params(params: str) -> list[tuple[str, str, list[str]]]:
    """Each parameter's name, dtype (or ``float``) and dims."""
    return [(n, t, dims.split(", ") if dims else [])
            for n, t, dims in re.findall(r"(\w+): (\w+)(?:\[([^\]]*)\])?", params)]


def _args(params: str, sizes: dict[str, int], seed: int) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    args: list[Any] = []
    for _, dt, dims in _params(params):
        if not dims:
            args.append(0.75)
            continue
        shape = [sizes[d] for d in dims]
        args.append((torch.randn(shape, generator=g) / 2).to(DTYPES[dt]))
    return args


def _function(params: str, body: str) -> Any:
    body = body if "return" in body else f"return {body}"
    return load_source(f"def f({params}):\n    {body}\n", "mm_grad.gt", backend="triton").f


def _expected_launches(params: str, body: str, wrt: set[str]) -> list[str]:
    """The kernels the backward launches for the gradients of ``wrt``: the epilogue's
    derivative for full-shaped epilogue inputs, the input's product, the weight's (which sums
    the gradients of bias vectors)."""
    ps = _params(params)
    full_extras = {n for n, _, dims in ps if n not in ("x", "w") and len(dims) > 1}
    vectors = {n for n, _, dims in ps if len(dims) == 1}
    if "w" not in wrt and wrt & vectors:  # a bias alone: dZ, or its gradient, from a kernel
        return ["pointwise"] if body not in ("linear(x, w, c)", "x @ w") else []
    out = ["pointwise"] if wrt & full_extras else []
    if "x" in wrt:
        out.append("dx")
    if "w" in wrt:
        out.append("dw_db" if wrt & vectors else "dw")
    return out


def _check(params: str, body: str, oracle: Callable[..., torch.Tensor], sizes: dict[str, int],
           wrt: set[str], launches: list[str], upstream: str = "random") -> None:
    fn = _function(params, body)
    assert "[matmul]" in fn.plan(), fn.plan()
    names = [n for n, _, _ in _params(params)]
    args = _args(params, sizes, 1)
    leaves = [a.clone().requires_grad_(n in wrt) if isinstance(a, torch.Tensor) else a
              for n, a in zip(names, args)]
    out = fn(*leaves)
    dtype = out.dtype
    if upstream == "random":
        up = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
        loss_up: Any = up
    else:  # out.sum(): a gradient of stride 0, expanded from a scalar
        out, loss_up, up = out.sum(), None, torch.ones(out.shape, dtype=dtype)
    launches.clear()
    got = torch.autograd.grad(out, [lf for n, lf in zip(names, leaves) if n in wrt], loss_up)
    assert launches == _expected_launches(params, body, wrt), launches
    ref = [a.double().requires_grad_(n in wrt) if isinstance(a, torch.Tensor) else a
           for n, a in zip(names, args)]
    want = torch.autograd.grad(oracle(*ref), [r for n, r in zip(names, ref) if n in wrt],
                               up.double())
    for n, g, w in zip(sorted(wrt, key=names.index), got, want):
        assert g.shape == w.shape and g.dtype == dtype, (n, g.shape, w.shape, g.dtype)
        assert torch.isfinite(g).all(), n
        scale = max(1.0, w.abs().max().item() if w.numel() else 0.0)
        torch.testing.assert_close(g.double() / scale, w / scale, **TOL[dtype], msg=n)


def _wrts(params: str) -> list[set[str]]:
    floats = [n for n, _, dims in _params(params) if dims]
    return [set(floats)] + [{n} for n in floats]


@pytest.mark.parametrize("params,body,oracle", CASES, ids=[c[1] + " | " + c[0] for c in CASES])
def test_gradients_equal_torch_with_dz_computed_in_the_products(
        params: str, body: str, oracle: Callable, launches: list[str]) -> None:
    for wrt in _wrts(params):
        _check(params, body, oracle, SIZES, wrt, launches)


@pytest.mark.parametrize("params,body,oracle", [CASES[2], CASES[3], CASES[5]],
                         ids=["linear gelu", "bias added", "gate"])
def test_even_depths_and_a_summed_upstream(params: str, body: str, oracle: Callable,
                                           launches: list[str]) -> None:
    _check(params, body, oracle, EVEN, _wrts(params)[0], launches)
    _check(params, body, oracle, SIZES, _wrts(params)[0], launches, upstream="sum")


def test_no_rows_gives_zero_weight_and_bias_gradients(launches: list[str]) -> None:
    params, body, oracle = CASES[2]
    _check(params, body, oracle, {**SIZES, "b": 0}, {"x", "w", "c"}, launches)


def test_offsets_past_32_bits_take_the_unfused_path(monkeypatch: pytest.MonkeyPatch,
                                                    launches: list[str]) -> None:
    """Where the gradient products cannot index an operand in 32 bits, dZ is written by the
    epilogue's derivative kernel and the products run as plain products."""
    params, body, oracle = CASES[3]
    fn = _function(params, body)
    args = _args(params, SIZES, 3)
    monkeypatch.setattr(matmul_grad, "offsets_fit", lambda *a: False)
    leaves = [a.clone().requires_grad_() for a in args]
    out = fn(*leaves)
    launches.clear()
    got = torch.autograd.grad(out.sum(), leaves)
    assert launches == ["pointwise", "pointwise", "mm", "mm"], launches
    ref = [a.double().requires_grad_() for a in args]
    want = torch.autograd.grad(oracle(*ref).sum(), ref)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, **TOL[torch.float32])


def test_bias_alone_bitfit(launches: list[str]) -> None:
    """Only the bias trains (BitFit): dZ's sum over rows, without the weight's product."""
    params, body, oracle = CASES[2]
    fn = _function(params, body)
    x, w, c = _args(params, SIZES, 4)
    cc = c.clone().requires_grad_()
    launches.clear()
    (got,) = torch.autograd.grad(fn(x, w, cc).sum(), cc)
    assert launches == ["matmul", "pointwise"], launches
    cr = c.double().requires_grad_()
    (want,) = torch.autograd.grad(oracle(x.double(), w.double(), cr).sum(), cr)
    torch.testing.assert_close(got.double(), want, **TOL[torch.float32])


def test_the_products_compute_dz_from_the_epilogue() -> None:
    """The input's product loads the upstream gradient and Z and applies GELU's derivative
    before its dot; the weight's also sums the bias's gradient."""
    params, body, _ = CASES[2]
    fn = _function(params, body)
    (eqn,) = [e for e in walk(fn.fused().body) if e.op is Op.KERNEL]
    p = matmul_grad.MatmulBackward(launcher_for(eqn)).products((True,), True, (False,))
    assert p is not None and p.dw_db is not None
    dx = p.dx.sources["generic"]
    assert "tma" not in p.dx.sources  # a computed operand is not a tensor-memory copy
    assert "tl.dot" in dx and "tl.erf" in dx and "tl.load(a_ptrs" not in dx
    assert "rs0 += tl.sum" in p.dw_db.sources["generic"]


@pytest.mark.parametrize("body,stores", [("x @ w.T + c", False), ("gelu(x @ w.T + c)", True),
                                         ("relu(linear(x, w, c)) + r", True),
                                         ("linear(x, w, c) * 2.0 + r", False)])
def test_the_forward_stores_z_only_where_a_gradient_reads_it(body: str, stores: bool) -> None:
    """An epilogue linear in Z (a bias or residual added, a scale) has derivatives that do
    not read Z: a training step's forward writes its outputs only."""
    params = "x: f32[m, k], w: f32[n, k], c: f32[n], r: f32[m, n]"
    fn = _function(params, body)
    (eqn,) = [e for e in walk(fn.fused().body) if e.op is Op.KERNEL]
    op = differentiable(launcher_for(eqn))
    args = tuple(_args(params, SIZES, 6))
    by_name = dict(zip("xwcr", args))
    outs, saved = op.forward_saving(tuple(by_name[a.hint] for a in eqn.ins))
    assert len(saved) == int(stores)
    if stores:  # Z itself: the product (with linear's bias) before the epilogue
        x, w, c, _ = args
        z = F.linear(x, w, c) if "linear" in body else x @ w.T
        torch.testing.assert_close(saved[0], z, **TOL[torch.float32])
    leaves = [a.clone().requires_grad_() for a in args]
    got = torch.autograd.grad(fn(*leaves).sum(), leaves, allow_unused=True)
    ref = [a.double().requires_grad_() for a in args]
    oracle = {"x @ w.T + c": lambda x, w, c, r: x @ w.T + c,
              "gelu(x @ w.T + c)": lambda x, w, c, r: F.gelu(x @ w.T + c),
              "relu(linear(x, w, c)) + r": lambda x, w, c, r: F.relu(F.linear(x, w, c)) + r,
              "linear(x, w, c) * 2.0 + r": lambda x, w, c, r: F.linear(x, w, c) * 2.0 + r}
    want = torch.autograd.grad(oracle[body](*ref).sum(), ref, allow_unused=True)
    for g, wnt in zip(got, want):
        assert (g is None) == (wnt is None)
        if g is not None:
            torch.testing.assert_close(g.double(), wnt, **TOL[torch.float32])
