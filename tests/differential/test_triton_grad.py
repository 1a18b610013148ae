"""Gradients through functions on the Triton backend, in Triton's interpreter on the CPU.

Every kernel is a ``torch.autograd.Function`` whose backward is generated from its IR
(``gtdsl.lower.triton.autograd``): a call that needs gradients launches the forward kernel and,
on ``backward``, the generated backward kernels. For each kind of fusion group (pointwise, row
reduction, matmul with an epilogue, attention) and for every op with a Triton lowering, the
gradients equal those of the torch backend and of the same computation written in PyTorch;
``torch.autograd.gradcheck`` in f64 checks them against finite differences; double backward
differentiates the group's ops as torch ops. Kernel launches are counted directly, not
inferred from timings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gtdsl.lower.triton import kernels
from gtdsl.driver import load_source
from gtdsl.runtime.inputs import Sampler
from tests.differential.test_triton import CASES, SIZES

TOL = dict(rtol=1e-5, atol=1e-5)
GRAD_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=1e-9, atol=1e-9),
            torch.float16: dict(rtol=1e-2, atol=1e-2), torch.bfloat16: dict(rtol=5e-2, atol=5e-2)}


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every kernel launch, by the kind of its group."""
    seen: list[str] = []
    for cls in (kernels.GroupLauncher, kernels.MatmulLauncher, kernels.AttentionLauncher):
        real = cls.__call__

        def counted(self: Any, *values: Any, _real: Callable = real) -> Any:
            seen.append(self.group.kind)
            return _real(self, *values)

        monkeypatch.setattr(cls, "__call__", counted)
    from gtdsl.lower.triton import matmul

    real_mm = matmul.mm

    def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append("mm")  # a plain product on the matmul template
        return real_mm(a, b)

    monkeypatch.setattr(matmul, "mm", mm)
    real_launch = matmul.MatmulKernel.launch

    def launch(self: Any, plan: Any) -> None:
        if self.tuning == "matmul_grad":  # a gradient product: dx, dw or dw_db
            seen.append(next(r for r in ("dw_db", "dx", "dw") if self.name.endswith(r)))
        return real_launch(self, plan)

    monkeypatch.setattr(matmul.MatmulKernel, "launch", launch)
    return seen


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pointwise() -> tuple[str, list[torch.Tensor], Callable]:
    src = ("def f(x: f32[m, n], y: f32[n]) -> f32[m, n]:\n"
           "    return gelu(x * y + 1.0) * sigmoid(x)\n")
    args = [torch.randn(3, 5, generator=_g(1)), torch.randn(5, generator=_g(2))]
    return src, args, lambda x, y: F.gelu(x * y + 1.0) * torch.sigmoid(x)


def _row() -> tuple[str, list[torch.Tensor], Callable]:
    src = ("def f(x: f32[m, n], w: f32[n], c: f32[n]) -> f32[m, n]:\n"
           "    return softmax(layer_norm(x, (n,), w, c, 1e-5), -1)\n")
    args = [torch.randn(3, 6, generator=_g(3)), torch.randn(6, generator=_g(4)),
            torch.randn(6, generator=_g(5))]
    return src, args, lambda x, w, c: torch.softmax(F.layer_norm(x, (6,), w, c, 1e-5), -1)


def _matmul() -> tuple[str, list[torch.Tensor], Callable]:
    src = ("def f(x: f32[m, k], w: f32[n, k], c: f32[n]) -> f32[m, n]:\n"
           "    return gelu(x @ w.T + c)\n")
    args = [torch.randn(3, 4, generator=_g(6)), torch.randn(5, 4, generator=_g(7)),
            torch.randn(5, generator=_g(8))]
    return src, args, lambda x, w, c: F.gelu(x @ w.T + c)


def _attention() -> tuple[str, list[torch.Tensor], Callable]:
    src = ("def f(q: f32[b, h, s, d], k: f32[b, h, t, d], v: f32[b, h, t, d]) "
           "-> f32[b, h, s, d]:\n"
           "    return scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    args = [torch.randn(1, 2, 5, 4, generator=_g(9)), torch.randn(1, 2, 5, 4, generator=_g(10)),
            torch.randn(1, 2, 5, 4, generator=_g(11))]
    return src, args, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)


GROUPS = {"pointwise": _pointwise, "row": _row, "matmul": _matmul, "attention": _attention}


def _grads(fn: Callable, args: list[torch.Tensor], upstream: torch.Tensor,
           wrt: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [a.clone().requires_grad_(i in wrt) for i, a in enumerate(args)]
    out = fn(*leaves)
    assert out.grad_fn is not None, "a call that needs gradients returned a detached result"
    grads = torch.autograd.grad(out, [leaves[i] for i in wrt], upstream)
    return out.detach(), list(grads)


# the kernels a forward and a backward launch: the forward kernel, then its backward kernel
# (pointwise and row groups), the gradient products with the epilogue's derivative fused
# (matmul: the input's, then the weight's, which also sums the bias's), or the attention backward
BACKWARD_LAUNCHES = {"pointwise": ["pointwise", "pointwise"], "row": ["row", "row"],
                     "matmul": ["matmul", "dx", "dw_db"], "attention": ["attention"]}


@pytest.mark.parametrize("kind", list(GROUPS))
def test_gradients_through_each_group_kind(kind: str, launches: list[str]) -> None:
    src, args, oracle = GROUPS[kind]()
    tri = load_source(src, f"{kind}.gt", backend="triton").f
    ref = load_source(src, f"{kind}.gt", backend="torch").f
    assert f"[{kind}]" in tri.plan(), tri.plan()
    upstream = torch.randn(oracle(*args).shape, generator=_g(99))
    for wrt in ([0], list(range(len(args)))):
        launches.clear()
        leaves = [a.clone().requires_grad_(i in wrt) for i, a in enumerate(args)]
        out = tri(*leaves)
        assert type(out.grad_fn).__name__ == "KernelFunctionBackward", out.grad_fn
        grads = torch.autograd.grad(out, [leaves[i] for i in wrt], upstream)
        want_launches = BACKWARD_LAUNCHES[kind] if len(wrt) > 1 else \
            BACKWARD_LAUNCHES[kind][:2]
        assert launches == want_launches, launches
        ref_out, ref_grads = _grads(ref, args, upstream, wrt)
        want_out, want = _grads(oracle, args, upstream, wrt)
        torch.testing.assert_close(out.detach(), ref_out, **TOL)
        for g, r, w in zip(grads, ref_grads, want):
            torch.testing.assert_close(g, r, **TOL)  # the torch backend's gradients
            torch.testing.assert_close(g, w, **TOL)  # and what PyTorch computes
        torch.testing.assert_close(out.detach(), want_out, **TOL)
    assert tri.cache_info().torch_for_transforms == 0

    # no gradient needed: the kernels run without autograd, and equal PyTorch
    launches.clear()
    leaves = [a.clone().requires_grad_() for a in args]
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            out = tri(*leaves)
        assert out.grad_fn is None and not out.requires_grad
        torch.testing.assert_close(out, oracle(*args), **TOL)
    out = tri(*args)  # grad mode on, no input requires grad
    assert out.grad_fn is None
    torch.testing.assert_close(out, oracle(*args), **TOL)
    assert launches == [kind] * 3, launches


def _case_args(src: str, dtype_seed: int = 0) -> tuple[Any, list[Any]]:
    m = load_source(src, "case.gt", backend="triton")
    fn = m.functions["f"]
    s = Sampler(dict(SIZES), {}, torch.Generator().manual_seed(dtype_seed), m.program.struct,
                m.structs)
    args = [s.value(t, n) for n, t in fn._params]
    positive = any(f in src for f in ("log", "sqrt", "rsqrt", "/", "**"))
    args = [a.abs() + 0.5 if isinstance(a, torch.Tensor) and positive else a for a in args]
    return fn, args


GRAD_CASES = [(e, p) for e, p in CASES if "attention" not in e]


@pytest.mark.parametrize("expr,params", GRAD_CASES, ids=[f"{e} | {p}" for e, p in GRAD_CASES])
def test_every_op_gradient_equals_the_torch_backend(expr: str, params: str,
                                                    launches: list[str]) -> None:
    """Each derivative rule, alone or in its fused group: the kernels' gradients equal those
    of the torch backend (torch's own autograd) for every float tensor argument."""
    src = f"def f({params}):\n    return {expr}\n"
    fn, args = _case_args(src)
    ref = load_source(src, "case.gt", backend="torch").f
    wrt = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and
           a.is_floating_point()]
    leaves = [a.clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
              for i, a in enumerate(args)]
    out = fn(*leaves)
    if not out.requires_grad:  # a bool result (comparisons): nothing to differentiate
        assert not out.is_floating_point()
        return
    upstream = torch.randn(out.shape, generator=_g(5)).to(out.dtype)
    launches.clear()
    got = torch.autograd.grad(out, [leaves[i] for i in wrt], upstream, allow_unused=True)
    assert launches, "the backward launched no kernel"
    if "@" in expr or "linear" in expr:  # both gradient products, dZ computed in them
        assert launches.count("dx") == 1 and "mm" not in launches, launches
        # a bias vector's gradient is summed by the weight's product
        assert launches.count("dw_db" if ", c: " in params else "dw") == 1, launches
    ref_leaves = [a.clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
                  for i, a in enumerate(args)]
    ref_out = ref(*ref_leaves)
    want = torch.autograd.grad(ref_out, [ref_leaves[i] for i in wrt], upstream,
                               allow_unused=True)
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if w is None:
            continue
        assert g.shape == w.shape and g.dtype == w.dtype
        torch.testing.assert_close(g, w, **GRAD_TOL[w.dtype])


GRADCHECK = [
    ("gelu(x * y + 1.0) * sigmoid(x) - tanh(x) / (abs(y) + 1.0)", "x: f64[m, n], y: f64[n]"),
    ("gelu(x, approximate='tanh') + silu(x) * exp(-x) + relu(x) ** 2", "x: f64[m, n]"),
    ("softmax(layer_norm(x, (n,), w, c, 1e-5), -1)", "x: f64[m, n], w: f64[n], c: f64[n]"),
    ("x * rsqrt(mean(x * x, -1, keepdim=True) + 1e-6) * w + rms_norm(x, (n,), w)",
     "x: f64[m, n], w: f64[n]"),
    ("log_softmax(x, -1) * y + x.sum(-1, keepdim=True) * x.mean(-1, keepdim=True)",
     "x: f64[m, n], y: f64[m, 1]"),
    ("(x - x.amax(-1, keepdim=True)).sum(-1) + sqrt(x.amin(-1) + 5.0)", "x: f64[m, n]"),
    ("maximum(x, y) * 2.0 + minimum(x, y) + where(x > y, x * y, y) + clamp(x, -0.5, 0.5)",
     "x: f64[m, n], y: f64[m, n]"),
]


@pytest.mark.parametrize("expr,params", GRADCHECK, ids=[e for e, _ in GRADCHECK])
def test_gradcheck_in_f64_against_finite_differences(expr: str, params: str) -> None:
    src = f"def f({params}):\n    return {expr}\n"
    fn, args = _case_args(src, 3)
    assert "kernel" in fn.plan(), fn.plan()
    leaves = tuple(a.clone().requires_grad_() for a in args)
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-6, rtol=1e-5)


def _attention_math_oracle(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    s = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
    causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    return torch.softmax(s.masked_fill(~causal, float("-inf")), -1) @ v


@pytest.mark.parametrize("kind", list(GROUPS))
def test_double_backward_equals_the_torch_backend(kind: str) -> None:
    """``create_graph=True``: the first gradients are differentiable again (the group's ops
    recomputed as torch ops), and second derivatives equal torch's."""
    src, args, oracle = GROUPS[kind]()
    results = []
    # torch's CPU attention has no double backward: the oracle there is attention written
    # as matrix products and a softmax
    for f in (load_source(src, f"dd_{kind}.gt", backend="triton").f,
              load_source(src, f"dd_{kind}.gt", backend="torch").f if kind != "attention"
              else _attention_math_oracle):
        leaves = [a.clone().requires_grad_() for a in args]
        out = f(*leaves)
        first = torch.autograd.grad((out * out).sum(), leaves, create_graph=True)
        second = torch.autograd.grad(sum((g * g).sum() for g in first), leaves)
        results.append([t.detach() for t in (*first, *second)])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **GRAD_TOL[torch.float32])


def test_training_steps_change_the_weights() -> None:
    """A few SGD steps through a Triton-backend function train its weights as torch's do."""
    src, args, _ = _matmul()
    tri = load_source(src, "train.gt", backend="triton").f
    ref = load_source(src, "train.gt", backend="torch").f
    x, w0, c0 = args
    target = torch.randn(3, 5, generator=_g(12))
    trained = []
    for fn in (tri, ref):
        w, c = w0.clone().requires_grad_(), c0.clone().requires_grad_()
        opt = torch.optim.SGD([w, c], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            loss = ((fn(x, w, c) - target) ** 2).mean()
            loss.backward()
            opt.step()
        trained.append((w.detach(), c.detach()))
    assert not torch.equal(trained[0][0], w0)
    torch.testing.assert_close(trained[0], trained[1], **TOL)


STRUCT_SRC = """struct Lin[K, N]:
    w: f32[N, K]
    b: f32[N]


def lin(p: Lin[k, n], x: f32[m, k]) -> f32[m, n]:
    return gelu(x @ p.w.T + p.b)


def scan(ws: list[f32[n]], x: f32[m, n]) -> f32[m, n]:
    y = tanh(x)
    for w in ws:
        y = y * w
    return y


def dyn(a, x: f32[m, n]):
    return tanh(x) * a
"""


def test_tensors_inside_structs_lists_and_untyped_arguments(launches: list[str]) -> None:
    m = load_source(STRUCT_SRC, "nested.gt", backend="triton")
    g = _g(13)
    x = torch.randn(3, 4, generator=g)
    w, b = torch.randn(5, 4, generator=g), torch.randn(5, generator=g)
    ws = [torch.randn(4, generator=g), torch.randn(4, generator=g)]
    a = torch.randn(4, generator=g)

    def run_lin(w_: torch.Tensor) -> torch.Tensor:
        return m.lin(m.structs["Lin"](w=w_, b=b), x)

    def run_scan(w1: torch.Tensor) -> torch.Tensor:
        return m.scan([ws[0], w1], x)

    # (call, leaf, oracle, the forward kernel, the backward kernels): the kernel of `scan`
    # and `dyn` is tanh(x) (the product with a list item or a `?` stays a torch op), which
    # reads no tensor that needs a gradient, so it has no backward
    cases = [(run_lin, w, lambda w_: F.gelu(x @ w_.T + b), "matmul", ["dw"]),
             (run_scan, ws[1], lambda w1: torch.tanh(x) * ws[0] * w1, "pointwise", []),
             (lambda a_: m.dyn(a_, x), a, lambda a_: torch.tanh(x) * a_, "pointwise", [])]
    for call, leaf, oracle, kind, backward in cases:
        launches.clear()
        p = leaf.clone().requires_grad_()
        out = call(p)
        assert out.grad_fn is not None and launches == [kind]
        (grad,) = torch.autograd.grad(out.sum(), p)
        assert launches[1:] == backward, launches
        launches.clear()
        q = leaf.clone().requires_grad_()
        (want,) = torch.autograd.grad(oracle(q).sum(), q)
        torch.testing.assert_close(grad, want, **TOL)
        with torch.no_grad():
            torch.testing.assert_close(call(p), oracle(leaf), **TOL)
        torch.testing.assert_close(call(leaf), oracle(leaf), **TOL)
        assert launches == [kind, kind], launches
    for fn in (m.lin, m.scan, m.dyn):
        assert fn.cache_info().torch_for_transforms == 0


def test_functions_calling_functions_keep_the_graph(launches: list[str]) -> None:
    src = ("def inner(x: f32[m, n]) -> f32[m, n]:\n    return tanh(x) * 2.0\n\n\n"
           "def outer(x: f32[m, n], y: f32[m, n]) -> f32[m, n]:\n"
           "    return inner(x) + sigmoid(y)\n")
    m = load_source(src, "calls.gt", backend="triton")
    x, y = torch.randn(2, 3, generator=_g(14)), torch.randn(2, 3, generator=_g(15))
    xl = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(m.outer(xl, y).sum(), xl)
    xr = x.clone().requires_grad_()
    (want,) = torch.autograd.grad((torch.tanh(xr) * 2.0 + torch.sigmoid(y)).sum(), xr)
    torch.testing.assert_close(gx, want, **TOL)
    assert launches == ["pointwise", "pointwise", "pointwise", "pointwise"], launches
    launches.clear()
    with torch.no_grad():
        torch.testing.assert_close(m.outer(xl, y), torch.tanh(x) * 2.0 + torch.sigmoid(y),
                                   **TOL)
    assert launches and set(launches) == {"pointwise"}


def test_forward_mode_and_torch_func_transforms(launches: list[str]) -> None:
    """Autodiff that sets no ``requires_grad`` (dual tensors, ``torch.func``) runs the torch
    code, which every transform supports (kernels have no forward-mode rule)."""
    import torch.autograd.forward_ad as fwd
    import torch.func

    src, args, oracle = _pointwise()
    f = load_source(src, "fwd.gt", backend="triton").f
    x, y = args
    tangent = torch.randn(x.shape, generator=_g(16))
    _, want = torch.func.jvp(lambda x_: oracle(x_, y), (x,), (tangent,))
    with torch.no_grad(), fwd.dual_level():  # forward AD works under no_grad too
        got = fwd.unpack_dual(f(fwd.make_dual(x, tangent), y)).tangent
    assert got is not None
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(torch.func.jvp(lambda x_: f(x_, y), (x,), (tangent,))[1], want,
                               **TOL)
    torch.testing.assert_close(torch.func.grad(lambda x_: f(x_, y).sum())(x),
                               torch.func.grad(lambda x_: oracle(x_, y).sum())(x), **TOL)
    assert launches == []
    assert f.cache_info().torch_for_transforms == 3


def test_a_backward_the_kernel_does_not_take_runs_torchs(monkeypatch: pytest.MonkeyPatch,
                                                         launches: list[str]) -> None:
    """Where a backward kernel would not take its inputs (32-bit offsets), the gradient comes
    from torch's autograd over the group's ops: still right, never launched out of bounds."""
    real_ok = kernels.GroupLauncher.ok

    def ok(self: Any, *values: Any) -> bool:
        return not self.group.name.endswith("_bwd") and real_ok(self, *values)

    monkeypatch.setattr(kernels.GroupLauncher, "ok", ok)
    for kind in ("pointwise", "row"):
        src, args, oracle = GROUPS[kind]()
        tri = load_source(src, f"ok_{kind}.gt", backend="triton").f
        upstream = torch.randn(oracle(*args).shape, generator=_g(7))
        launches.clear()
        _, got = _grads(tri, args, upstream, list(range(len(args))))
        assert launches == [kind], launches  # the forward kernel only
        _, want = _grads(oracle, args, upstream, list(range(len(args))))
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, **TOL)
