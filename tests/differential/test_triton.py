"""The Triton backend against the reference interpreter, in Triton's interpreter on the CPU
(small and non-power-of-two sizes), and the structure of what it fuses.

Every op with a Triton lowering is run alone through a kernel; fused groups (softmax,
layer_norm, rms_norm written out, matmul with bias and GELU) are run whole. Each case also
asserts that the op really ran in a kernel, so a silent fallback to torch cannot pass.
"""

from __future__ import annotations

import pytest
import torch

from gtdsl.runtime.inputs import Sampler
from gtdsl.driver import load_source
from tests.conftest import REPO

# A fused kernel keeps its intermediates in f32 and rounds once; the interpreter rounds each
# op's result to f16/bf16. Over a chain of ops the two differ by a few of the half dtype's
# ulps, amplified by ops such as exp (exp(exp(x)) near 4000: 3.5 f16 ulps): 4e-3 is four
# f16 ulps of relative error (2^-10 each, less than 1e-3).
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10),
       torch.float16: dict(rtol=4e-3, atol=2e-3), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}
SIZES = {"m": 3, "n": 5, "k": 7, "b": 2}

UNARY = ["neg", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "sin", "cos", "erf",
         "tanh", "sigmoid", "relu", "silu"]
CASES = [(f"{op}(x)", "x: f32[m, n]") for op in UNARY] + [
    ("x + y", "x: f32[m, n], y: f32[m, n]"),
    ("x - y * 2.0", "x: f32[m, n], y: f32[n]"),
    ("x / y", "x: f32[m, n], y: f32[m, 1]"),
    ("maximum(x, y) + minimum(x, y)", "x: f32[m, n], y: f32[m, n]"),
    ("where(x > y, x, y)", "x: f32[m, n], y: f32[m, n]"),
    ("where(logical_or(x < y, logical_not(x >= 0.5)), x, 0.0)", "x: f32[m, n], y: f32[m, n]"),
    ("gelu(x)", "x: f32[b, m, n]"),
    ("gelu(x, approximate='tanh')", "x: f32[m, n]"),
    ("x ** 2 + x ** 3", "x: f32[m, n]"),
    ("clamp(x, -0.5, 0.5)", "x: f32[m, n]"),
    ("(x * 3.0).to(f16)", "x: f32[m, n]"),
    ("x * s + 1.0", "x: f32[m, n], s: float"),
    ("x.sum(-1, keepdim=True) + x", "x: f32[m, n]"),
    ("x.mean(-1)", "x: f32[b, m, n]"),
    ("x - x.amax(-1, keepdim=True) + x.amin(-1, keepdim=True)", "x: f32[m, n]"),
    ("softmax(x, -1)", "x: f32[b, m, n]"),
    ("log_softmax(x, -1)", "x: f32[m, n]"),
    ("layer_norm(x, (n,), w, c, 1e-5)", "x: f32[m, n], w: f32[n], c: f32[n]"),
    ("layer_norm(x, (n,))", "x: f32[b, m, n]"),
    ("rms_norm(x, (n,), w)", "x: f32[m, n], w: f32[n]"),
    ("x @ y", "x: f32[m, k], y: f32[k, n]"),
    ("x @ w.T", "x: f32[b, m, k], w: f32[n, k]"),
    ("linear(x, w, c)", "x: f32[m, k], w: f32[n, k], c: f32[n]"),
    ("linear(x, w)", "x: f32[m, k], w: f32[n, k]"),
    ("x + y", "x: f16[m, n], y: f16[m, n]"),
    ("gelu(x @ w.T + c)", "x: bf16[m, k], w: bf16[n, k], c: bf16[n]"),
    ("softmax(x, -1)", "x: bf16[m, n]"),
    ("exp(x) * y", "x: f64[m, n], y: f64[n]"),
    ("x + y", "x: f32[m, n], y: f32[]"),
    ("scaled_dot_product_attention(q, k, v)", "q: f32[b, 2, m, k], k: f32[b, 2, n, k], "
     "v: f32[b, 2, n, k]"),
    ("scaled_dot_product_attention(q, k, v, is_causal=True)", "q: f32[b, 2, n, k], "
     "k: f32[b, 2, n, k], v: f32[b, 2, n, k]"),
    ("scaled_dot_product_attention(q, k, v, scale=0.3)", "q: f32[1, 3, m, k], "
     "k: f32[1, 3, m, k], v: f32[1, 3, m, k]"),
    ("scaled_dot_product_attention(q, k, v, is_causal=True)", "q: bf16[1, 2, 17, 16], "
     "k: bf16[1, 2, 17, 16], v: bf16[1, 2, 17, 16]"),
]


def _run(src: str, sizes: dict[str, int] | None = None, seed: int = 0):
    tri = load_source(src, "t.gt", backend="triton")
    ref = load_source(src, "t.gt", backend="interpret")
    name = next(iter(tri.functions))
    fn = tri.functions[name]
    s = Sampler(dict(sizes or SIZES), {}, torch.Generator().manual_seed(seed),
                tri.program.struct, tri.structs)
    args = [s.value(t, n) for n, t in fn._params]
    positive = any(f in src for f in ("log", "sqrt", "rsqrt", "/"))
    args = [a.abs() + 0.1 if isinstance(a, torch.Tensor) and positive else a for a in args]
    return fn, fn(*args), ref.functions[name](*args)


@pytest.mark.parametrize("expr,params", CASES, ids=[f"{e} | {p}" for e, p in CASES])
def test_op_in_a_kernel_equals_the_interpreter(expr: str, params: str) -> None:
    src = f"def f({params}):\n    return {expr}\n"
    fn, out, ref = _run(src)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    torch.testing.assert_close(out, ref, **TOL[ref.dtype])
    plan = fn.plan()
    assert "kernel" in plan and not any(line.startswith("torch ") and not any(
        k in line for k in ("check_op", "get_field", "tuple")) for line in plan.splitlines()), plan


@pytest.mark.parametrize("expr", ["x + n", "(x * y - m) / n + True", "x * (n * m - 1)"])
def test_sizes_and_bools_as_operands_equal_the_interpreter(expr: str) -> None:
    """A size variable's value (a polynomial literal) or a bool next to fused ops: the
    result equals the interpreter's, whatever part of it runs in a kernel."""
    src = f"def f(x: f32[m, n], y: f32[m, n]) -> f32[m, n]:\n    return {expr}\n"
    _, out, ref = _run(src)
    torch.testing.assert_close(out, ref, **TOL[ref.dtype])


@pytest.mark.parametrize("keep", [True, False])
def test_a_keepdim_known_only_at_run_time_stays_torch_code(keep: bool) -> None:
    """The row kernel needs a static keepdim: with a `bool` parameter the reduction runs as a
    torch op (it crashed the fusion pass), and the result equals the interpreter's."""
    src = "def f(x: f32[m, n], k: bool):\n    return sum(x * 2.0, -1, keepdim=k)\n"
    tri = load_source(src, "t.gt", backend="triton")
    ref = load_source(src, "t.gt", backend="interpret")
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(tri.f(x, keep), ref.f(x, keep))
    assert "sum" not in "".join(line for line in tri.f.plan().splitlines()
                                if line.startswith("kernel"))


def test_attention_with_an_unannotated_query_is_left_unfused() -> None:
    src = ("def f(q, k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
           "    return scaled_dot_product_attention(q, k, v)\n")
    tri = load_source(src, "t.gt", backend="triton")
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 5, 4, generator=g) for _ in range(3))
    torch.testing.assert_close(tri.f(q, k, v),
                               torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert "kernel" not in tri.f.plan()


@pytest.mark.parametrize("expr", ["sum(x, dim=-1, keepdim=True) + y",
                                  "mean(x, -1, keepdim=True) * y - amax(x, -1, keepdim=True)"])
def test_a_row_statistic_combined_with_an_input_keeps_its_shape(expr: str) -> None:
    """A per-row input ([b, 1]) next to a row statistic: the result is [b, 1], as torch has
    it (the row kernel once loaded the input along the row and returned a full row)."""
    src = f"def f(x: f32[m, n], y: f32[m, 1]) -> f32[m, 1]:\n    return {expr}\n"
    fn, out, ref = _run(src)
    assert out.shape == ref.shape == (SIZES["m"], 1)
    torch.testing.assert_close(out, ref, **TOL[ref.dtype])


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0,)])
def test_empty_tensors_launch_nothing_and_equal_torch(shape: tuple[int, ...]) -> None:
    src = "def f(x: f32[*s], y: f32[*s]):\n    return where(x > y, x, y) + 1.0\n"
    tri = load_source(src, "e.gt", backend="triton")
    x, y = torch.randn(shape), torch.randn(shape)
    out = tri.f(x, y)
    assert out.shape == shape and torch.equal(out, torch.where(x > y, x, y) + 1.0)


def test_one_compile_per_class_and_odd_sizes() -> None:
    src = "def f(x: f32[m, n], w: f32[n]) -> f32[m, n]:\n    return rms_norm(x, (n,), w)\n"
    for m, n in [(1, 1), (3, 5), (4, 17), (2, 33), (5, 100)]:
        fn, out, ref = _run(src, {"m": m, "n": n})
        torch.testing.assert_close(out, ref, **TOL[torch.float32])


def test_examples_run_through_kernels() -> None:
    for name, fn_name, kernels in [("rms_norm.gt", "rms_norm", 1), ("softmax.gt", "softmax", 1),
                                   ("mlp.gt", "mlp", 2), ("layers.gt", "linear", 1)]:
        src = (REPO / "docs" / "examples" / "language" / name).read_text()
        tri = load_source(src, name, backend="triton")
        ref = load_source(src, name, backend="interpret")
        fn = tri.functions[fn_name]
        s = Sampler(dict(SIZES), {}, torch.Generator().manual_seed(1), tri.program.struct,
                    tri.structs)
        args = [s.value(t, n) for n, t in fn._params]
        torch.testing.assert_close(fn(*args), ref.functions[fn_name](*args), **TOL[torch.float32])
        assert fn.plan().count("kernel ") == kernels, fn.plan()


# ---------------------------------------------------------------- structure


def _kernels(src: str) -> list[str]:
    m = load_source(src, "s.gt", backend="triton")
    plan = next(iter(m.functions.values())).plan().splitlines()
    compute = [line for line in plan if line.startswith("torch ") and not any(
        k in line for k in ("check_op", "get_field", "tuple"))]
    assert compute == [], plan
    return [line for line in plan if line.startswith("kernel ")]


def test_softmax_is_one_kernel() -> None:
    assert len(_kernels("def f(x: f32[m, n]):\n    return softmax(x, -1)\n")) == 1
    written_out = ("def f(x: f32[*b, n]) -> f32[*b, n]:\n"
                   "    e = exp(x - amax(x, dim=n, keepdim=True))\n"
                   "    return e / e.sum(dim=n, keepdim=True)\n")
    assert len(_kernels(written_out)) == 1


def test_norms_are_one_kernel() -> None:
    assert len(_kernels("def f(x: f32[m, n], w: f32[n], c: f32[n]):\n"
                        "    return layer_norm(x, (n,), w, c, 1e-5)\n")) == 1
    assert len(_kernels("def f(x: f32[*b, d], w: f32[d], eps: float):\n"
                        "    return x * rsqrt(mean(x * x, dim=d, keepdim=True) + eps) * w\n")) == 1


def test_bias_gelu_chain_is_one_kernel() -> None:
    assert len(_kernels("def f(x: f32[m, n], c: f32[n]):\n    return gelu(x + c) * 2.0\n")) == 1
    assert len(_kernels("def f(x: f32[n], y: f32[n], a: float, b: float):\n"
                        "    return gelu(x * a + b) * sigmoid(y) + x\n")) == 1


def test_attention_is_one_kernel() -> None:
    k = _kernels("def f(q: f32[b, h, s, d], k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
                 "    return scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    assert len(k) == 1 and "[attention]" in k[0]


def test_auto_uses_torch_code_for_cpu_tensors() -> None:
    f = load_source("def f(x: f32[n]):\n    return exp(x)\n", "a.gt").f
    assert not f.uses_triton((False,))
    assert torch.equal(f(torch.zeros(3)), torch.ones(3))


def test_linear_bias_gelu_is_one_kernel() -> None:
    k = _kernels("def f(x: f32[b, s, d], w: f32[f, d], c: f32[f]):\n"
                 "    return gelu(x @ w.T + c)\n")
    assert len(k) == 1 and "[matmul]" in k[0] and "gelu" in k[0]
    k = _kernels("def f(x: f32[m, d], w: f32[f, d], c: f32[f], r: f32[m, f]):\n"
                 "    return relu(linear(x, w, c)) + r\n")
    assert len(k) == 1 and "[matmul]" in k[0]


def test_values_used_outside_are_stored_and_torch_ops_in_between_are_respected() -> None:
    src = ("def f(x: f32[m, n]):\n    h = exp(x)\n    s = h.sum(-1, keepdim=True)\n"
           "    idx = h.argmax(-1)\n    return h / s, idx\n")
    fn, out, ref = _run(src)
    torch.testing.assert_close(out[0], ref[0])
    assert torch.equal(out[1], ref[1])


def test_emit_triton_shows_plan_kernels_and_host_code(capsys: pytest.CaptureFixture) -> None:
    from gtdsl.cli.main import main

    code = main(["compile", str(REPO / "docs" / "examples" / "language" / "mlp.gt"), "--fn",
                 "mlp", "--emit", "triton"])
    out = capsys.readouterr().out
    assert code == 0
    assert "# launch plan of `mlp`" in out and "@triton.jit" in out and "tl.dot" in out
    assert "def __gt_body(" in out


# ---------------------------------------------------------------- generated programs

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.differential.test_runtime_laws import MUTATIONS, mutate, outcome  # noqa: E402
from tests.properties.strategies import programs  # noqa: E402


def returning_every_value(text: str) -> str:
    """A generated program that returns every value it computes, so that every fused group
    has outputs and runs in a kernel."""
    import re

    lines = text.splitlines()
    names = [m.group(1) for m in (re.match(r"    (v\d+) = ", x) for x in lines) if m]
    if names:
        lines[0] = re.sub(r" -> .*:$", ":", lines[0])
        lines[-1] = f"    return ({', '.join(names)},)"
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), sizes=st.fixed_dictionaries({v: st.sampled_from([1, 2, 3, 5])
                                                     for v in "abc"}),
       mutation=st.sampled_from(("none",) * 6 + MUTATIONS), k=st.integers(0, 100))
def test_generated_programs_through_kernels_equal_the_interpreter(text, sizes, mutation,
                                                                   k) -> None:
    text = returning_every_value(text)
    tri = load_source(text, "generated.gt", backend="triton")
    ref = load_source(text, "generated.gt", backend="interpret")
    s = Sampler(dict(sizes), {}, torch.Generator().manual_seed(k), tri.program.struct,
                tri.structs)
    args = mutate([s.value(t, n) for n, t in tri.g._params], mutation, k)
    if mutation == "meta":
        args = mutate(args, "dtype", k)  # Triton's interpreter cannot read meta tensors
    got, want = outcome(lambda: tri.g(*args)), outcome(lambda: ref.g(*args))
    assert got[0] == want[0], (text, mutation, got[:2], want[:2])
    if got[0] == "ok":
        for g, w in zip(got[1] if isinstance(got[1], tuple) else (got[1],),
                        want[1] if isinstance(want[1], tuple) else (want[1],)):
            torch.testing.assert_close(g, w, **TOL[w.dtype])
    else:
        assert got[1:] == want[1:], (text, got, want)


def test_an_epilogue_hands_out_no_value_the_next_kernel_recomputes() -> None:
    """``x = x + a @ wo.T`` then a norm of ``x``: the product's kernel stores ``x`` only, and
    ``x * x`` is recomputed by the norm's row kernel (no extra tensor written and read)."""
    src = ("def f(x: f32[m, n], a: f32[m, k], wo: f32[n, k], g: f32[n]) -> f32[m, n]:\n"
           "    x = x + a @ wo.T\n"
           "    h = x * rsqrt(mean(x * x, dim=-1, keepdim=True) + 1e-6) * g\n"
           "    return x + h\n")
    fn, out, ref = _run(src)
    torch.testing.assert_close(out, ref, **TOL[ref.dtype])
    kernels = [line for line in fn.plan().splitlines() if line.startswith("kernel")]
    assert len(kernels) == 2, kernels
    assert kernels[0].endswith("[matmul]: T, matmul, add -> %" + kernels[0].split("%")[-1])
    assert "," not in kernels[0].split("->")[1], kernels  # one output
    assert "[row]: mul, mean" in kernels[1], kernels


def test_two_anonymous_rows_are_not_one_shape() -> None:
    """``x: f32[...]`` and ``y: f32[...]`` may differ: ``exp(x)`` keeps x's shape, never the
    shape of ``x + y`` computed beside it."""
    src = "def f(x: f32[...], y: f32[...]):\n    return x + y, exp(x)\n"
    tri = load_source(src, "dots.gt", backend="triton").f
    x, y = torch.randn(3, 1), torch.randn(3, 4)
    s, e = tri(x, y)
    assert s.shape == (3, 4) and e.shape == (3, 1)
    torch.testing.assert_close(e, torch.exp(x), **TOL[torch.float32])
    torch.testing.assert_close(s, x + y, **TOL[torch.float32])
