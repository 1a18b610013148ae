"""Pointwise and row kernels against the reference interpreter, in Triton's interpreter: rows
looped over in chunks (the row settings are made small, so a 40-wide row runs in chunks of
16), rows packed several to a program, the kernel variants a launch picks (contiguous,
vector, row statistic, strided and broadcast inputs), and what ``specs`` and ``ok`` say for
META tensors of real sizes.

Each case checks which variant ran (its name), so a silent fallback to torch or to another
variant cannot pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gtdsl.driver import load_source
from gtdsl.ir.core import Op
from gtdsl.lower.triton import rows
from gtdsl.lower.triton.base import params_of
from gtdsl.lower.triton.kernels import launcher_for
from gtdsl.runtime.inputs import Sampler

# A fused kernel keeps its intermediates in f32 and rounds once; the interpreter rounds each
# op's result to f16/bf16. Over a chain of ops the two differ by a few of the half dtype's
# ulps, amplified by ops such as exp (exp(exp(x)) near 4000: 3.5 f16 ulps): 4e-3 is four
# f16 ulps of relative error (2^-10 each, less than 1e-3).
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10),
       torch.float16: dict(rtol=4e-3, atol=2e-3), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}
LOOPED = rows.RowSettings(persistent_max=16, loop_block=16, tile=64)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of every pointwise/row kernel variant launched."""
    names: list[str] = []
    real = rows.GroupLauncher._plan

    def plan(self: Any, values: tuple[Any, ...]) -> Any:
        out = real(self, values)
        names.append(out[0].name)
        return out

    monkeypatch.setattr(rows.GroupLauncher, "_plan", plan)
    yield names


@pytest.fixture
def looped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "ROW_SETTINGS", LOOPED)


def _run(src: str, args: list[Any]) -> tuple[Any, Any]:
    tri = load_source(src, "t.gt", backend="triton")
    ref = load_source(src, "t.gt", backend="interpret")
    return tri.f(*args), ref.f(*args)


def _close(out: Any, want: Any) -> None:
    outs = out if isinstance(out, tuple) else (out,)
    wants = want if isinstance(want, tuple) else (want,)
    assert len(outs) == len(wants)
    for o, w in zip(outs, wants):
        assert o.shape == w.shape and o.dtype == w.dtype
        torch.testing.assert_close(o, w, **TOL[w.dtype])


def _tensors(params: str, sizes: dict[str, int], seed: int = 0) -> list[Any]:
    """Random arguments for ``params``: tensors of ``sizes``, and numbers for ``float``."""
    g = torch.Generator().manual_seed(seed)
    out: list[Any] = []
    for i, p in enumerate(re.split(r",\s(?=\w+:)", params)):
        t = p.split(": ")[1]
        if t == "float":
            out.append(0.25 * (i + 1))
            continue
        dtype = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
                 "bf16": torch.bfloat16}[t.split("[")[0]]
        dims = [sizes[d] if d in sizes else int(d) for d in t[t.index("[") + 1:-1].split(", ")
                if d]
        out.append(torch.randn(*dims, generator=g).to(dtype))
    return out


# every row op alone, and fused groups: chains, statistics of statistics, several outputs
ROW_CASES = [
    ("x.sum(-1, keepdim=True) + x", "x: f32[m, n]"),
    ("x.mean(-1)", "x: f32[b, m, n]"),
    ("x - x.amax(-1, keepdim=True) + x.amin(-1, keepdim=True)", "x: f32[m, n]"),
    ("amax(x * 2.0, -1)", "x: f32[m, n]"),
    ("softmax(x, -1)", "x: f32[b, m, n]"),
    ("log_softmax(x, -1)", "x: f32[m, n]"),
    ("layer_norm(x, (n,), w, c, 1e-5)", "x: f32[m, n], w: f32[n], c: f32[n]"),
    ("layer_norm(x, (n,))", "x: f32[b, m, n]"),
    ("rms_norm(x, (n,), w)", "x: f32[m, n], w: f32[n]"),
    ("rms_norm(x, (n,))", "x: bf16[m, n]"),
    ("softmax(x, -1)", "x: bf16[m, n]"),
    ("layer_norm(x, (n,), w, c, 1e-5)", "x: f16[m, n], w: f32[n], c: f32[n]"),
    ("log_softmax(x * 3.0, -1)", "x: f64[m, n]"),
    # softmax written out: max, then the sum of exp over the recomputed difference
    ("exp(x - amax(x, -1, keepdim=True)) / exp(x - amax(x, -1, keepdim=True)).sum(-1, "
     "keepdim=True)", "x: f32[m, n]"),
    # a variance written out: a statistic of values centred by a statistic
    ("mean((x - mean(x, -1, keepdim=True)) ** 2, -1, keepdim=True)", "x: f32[m, n]"),
    ("amax(softmax(x, -1), -1) + amin(log_softmax(x, -1), -1)", "x: f32[m, n]"),
    ("softmax(layer_norm(gelu(x + c), (n,), w, c, 1e-5), -1) * sigmoid(y)",
     "x: f32[m, n], w: f32[n], c: f32[n], y: f32[m, n]"),
    ("rms_norm(x, (n,), w, e) + x * s", "x: f32[m, n], w: f32[n], e: float, s: float"),
    ("sum(x * y, -1, keepdim=True) + mean(x, -1, keepdim=True)", "x: f32[m, n], y: f32[m, 1]"),
]
SIZES = {"m": 3, "n": 40, "b": 2}


@pytest.mark.parametrize("expr,params", ROW_CASES, ids=[f"{e} | {p}" for e, p in ROW_CASES])
def test_looped_rows_equal_the_interpreter(expr: str, params: str, looped: None,
                                           ran: list[str]) -> None:
    out, want = _run(f"def f({params}):\n    return {expr}\n", _tensors(params, SIZES))
    _close(out, want)
    row_kernels = [n for n in ran if n.startswith("gtdsl_row")]
    assert row_kernels and all(n.endswith("_loop") for n in row_kernels), ran


@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 64])
def test_row_widths_around_the_chunk_equal_the_interpreter(n: int, looped: None,
                                                           ran: list[str]) -> None:
    src = ("def f(x: f32[m, n], w: f32[n], c: f32[n]):\n"
           "    return softmax(layer_norm(x, (n,), w, c, 1e-5), -1)\n")
    out, want = _run(src, _tensors("x: f32[m, n], w: f32[n], c: f32[n]", {"m": 5, "n": n}))
    _close(out, want)
    assert ran[-1].endswith("_loop") == (n > LOOPED.persistent_max), ran


@pytest.mark.parametrize("tile", [64, 16])
def test_several_outputs_and_row_statistics_looped(monkeypatch: pytest.MonkeyPatch, tile: int,
                                                   ran: list[str]) -> None:
    """Full rows and row statistics (with and without keepdim) stored by one looped kernel,
    with several rows per program (tile 64) and one (tile 16)."""
    monkeypatch.setattr(rows, "ROW_SETTINGS", rows.RowSettings(16, 16, tile))
    src = ("def f(x: f32[b, m, n]):\n    h = exp(x)\n    s = h.sum(-1, keepdim=True)\n"
           "    return h / s, s, amax(x, -1), h\n")
    out, want = _run(src, _tensors("x: f32[b, m, n]", SIZES))
    _close(out, want)
    assert len(ran) == 1 and ran[0].startswith("gtdsl_row") and ran[0].endswith("_c_loop"), ran


@pytest.mark.parametrize("tile,m", [(16, 5), (16, 8), (8, 1), (4, 3)])
def test_rows_packed_several_to_a_program(monkeypatch: pytest.MonkeyPatch, tile: int, m: int,
                                          ran: list[str]) -> None:
    """Narrow rows share a program (ROWS rows of BLOCK_N), the last one partly masked."""
    monkeypatch.setattr(rows, "ROW_SETTINGS", rows.RowSettings(tile=tile))
    src = ("def f(x: f32[m, n], w: f32[n]):\n"
           "    return rms_norm(x, (n,), w), mean(x, -1), log_softmax(x, -1)\n")
    out, want = _run(src, _tensors("x: f32[m, n], w: f32[n]", {"m": m, "n": 5}))
    _close(out, want)
    assert len(ran) == 1 and ran[0].startswith("gtdsl_row") and ran[0].endswith("_cv"), ran


# ---------------------------------------------------------------- variants


def _transposed(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)


def test_pointwise_contiguous_inputs_take_the_variant_without_index_math(
        ran: list[str]) -> None:
    src = "def f(x: f32[m, n], c: f32[n], y: f32[m, n]):\n    return gelu(x + c) * y\n"
    x, c, y = _tensors("x: f32[m, n], c: f32[n], y: f32[m, n]", {"m": 4, "n": 6})
    tri = load_source(src, "t.gt", backend="triton")
    torch.testing.assert_close(tri.f(x, c, y), torch.nn.functional.gelu(x + c) * y)
    assert ran[-1].endswith("_cvc"), ran
    fused = tri.f.fused()
    source = launcher_for(next(e for e in fused.body.eqns if e.op is Op.KERNEL)).source(2)
    assert ran[-1] in source and "offs % n_last" in source
    assert "//" not in source and "size0" not in source


@pytest.mark.parametrize("layout", ["transposed", "sliced", "expanded", "mixed"])
def test_strided_and_broadcast_inputs_take_the_strided_variant(layout: str,
                                                               ran: list[str]) -> None:
    src = "def f(x: f32[m, n], c: f32[n], y: f32[m, n]):\n    return gelu(x + c) * y\n"
    x, c, y = _tensors("x: f32[m, n], c: f32[n], y: f32[m, n]", {"m": 4, "n": 6})
    if layout == "transposed":
        x = _transposed(x)
    elif layout == "sliced":
        c = torch.randn(12)[::2]
    elif layout == "expanded":
        y = y[:1].expand(4, 6)
    else:
        x, c = _transposed(x), torch.randn(12)[::2]
    out, want = _run(src, [x, c, y])
    _close(out, want)
    assert "s" in ran[-1].split("_")[3] and ran[-1].endswith("_r2"), ran


@pytest.mark.parametrize("layout", ["contiguous", "transposed", "weight_sliced"])
def test_row_inputs_by_layout_equal_the_interpreter(layout: str, ran: list[str],
                                                    looped: None) -> None:
    src = "def f(x: f32[m, n], w: f32[n], c: f32[n]):\n    return layer_norm(x, (n,), w, c)\n"
    x, w, c = _tensors("x: f32[m, n], w: f32[n], c: f32[n]", {"m": 3, "n": 20})
    if layout == "transposed":
        x = _transposed(x)
    elif layout == "weight_sliced":
        w = torch.randn(40)[::2]
    out, want = _run(src, [x, w, c])
    _close(out, want)
    modes = {"contiguous": "cvv", "transposed": "svv", "weight_sliced": "csv"}[layout]
    assert ran[-1].split("_")[3] == modes, ran


@pytest.mark.parametrize("contiguous", [True, False])
def test_a_row_statistic_input_is_read_once_per_row(contiguous: bool, ran: list[str]) -> None:
    src = "def f(x: f32[m, n], y: f32[m, 1]):\n    return softmax(x * y, -1)\n"
    x = torch.randn(4, 7)
    y = torch.randn(4, 1) if contiguous else torch.randn(4, 3)[:, 1:2]
    out, want = _run(src, [x, y])
    _close(out, want)
    assert ran[-1].split("_")[3] == ("cr" if contiguous else "cs"), ran


def test_inputs_whose_types_fix_no_shape_compare_shapes_at_run_time(ran: list[str]) -> None:
    src = "def f(x: f32[...], y: f32[...]):\n    return exp(x) * y + 1.0\n"
    for x, y, modes in [(torch.randn(3, 4), torch.randn(3, 4), "cc"),
                        (torch.randn(3, 4), torch.randn(4), "cs"),
                        (torch.randn(3, 1), torch.randn(1, 4), "ss")]:
        out, want = _run(src, [x, y])
        _close(out, want)
        assert ran[-1].split("_")[3] == modes, ran


@pytest.mark.parametrize("looping", [False, True])
def test_one_function_over_inputs_of_several_ranks_and_layouts(
        monkeypatch: pytest.MonkeyPatch, looping: bool, ran: list[str]) -> None:
    """``*b`` leading dims: contiguous inputs of any rank share one kernel (no rank in it);
    a strided input gets the kernel of its rank."""
    if looping:
        monkeypatch.setattr(rows, "ROW_SETTINGS", LOOPED)
    src = ("def f(x: f32[*b, d], w: f32[d]):\n"
           "    return rms_norm(x, (d,), w) + softmax(x * w, -1)\n")
    tri = load_source(src, "t.gt", backend="triton")
    ref = load_source(src, "t.gt", backend="interpret")
    w = torch.randn(20)
    for x, modes in [(torch.randn(20), "cv"), (torch.randn(3, 20), "cv"),
                     (torch.randn(2, 3, 20), "cv"), (_transposed(torch.randn(3, 20)), "sv"),
                     (torch.randn(20, 6, 2).permute(2, 1, 0), "sv"),
                     (torch.randn(40)[::2], "sv")]:
        _close(tri.f(x, w), ref.f(x, w))
        name = ran[-1]
        assert name.split("_")[3] == modes and name.endswith("_loop") == looping, name
        if modes == "sv":
            assert f"_r{x.dim()}" in name, name


def test_rms_norm_default_eps_is_that_of_the_compute_dtype() -> None:
    """torch's ``rms_norm(eps=None)`` adds the f32 epsilon for f16/bf16 input, not the input
    dtype's: small bf16 values show the difference."""
    src = "def f(x: bf16[m, n]):\n    return rms_norm(x, (n,))\n"
    x = (torch.randn(3, 8) * 1e-2).to(torch.bfloat16)
    out, want = _run(src, [x])
    torch.testing.assert_close(out, torch.nn.functional.rms_norm(x, (8,)), **TOL[x.dtype])
    _close(out, want)


# ---------------------------------------------------------------- generated programs


@settings(max_examples=100, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(sizes=st.fixed_dictionaries({v: st.sampled_from([1, 2, 3, 5]) for v in "abc"}),
       k=st.integers(0, 100), data=st.data())
def test_generated_programs_through_looped_rows_equal_the_interpreter(
        monkeypatch: pytest.MonkeyPatch, sizes: dict[str, int], k: int, data: Any) -> None:
    """Any fused group the fusion pass builds from generated programs, with every row wider
    than 1 looped over in chunks of 2."""
    from tests.differential.test_triton import returning_every_value
    from tests.properties.strategies import programs

    monkeypatch.setattr(rows, "ROW_SETTINGS", rows.RowSettings(1, 2, 4))
    text = data.draw(programs())
    assume("@" not in text)  # matrix products are another kernel's (test_triton.py)
    text = returning_every_value(text)
    tri = load_source(text, "generated.gt", backend="triton")
    ref = load_source(text, "generated.gt", backend="interpret")
    s = Sampler(dict(sizes), {}, torch.Generator().manual_seed(k), tri.program.struct,
                tri.structs)
    args = [s.value(t, n) for n, t in tri.g._params]
    _close(tri.g(*args), ref.g(*args))


# ---------------------------------------------------------------- specs and ok on META tensors


def _launcher(src: str) -> Any:
    fused = load_source(src, "m.gt", backend="triton").f.fused()
    return launcher_for(next(e for e in fused.body.eqns if e.op is Op.KERNEL))


LN = "def f(x: f32[m, n], w: f32[n], c: f32[n]):\n    return layer_norm(x, (n,), w, c, 1e-5)\n"


@pytest.mark.parametrize("n,block,rows_,warps,loop", [
    (5, 8, 128, 8, False), (128, 128, 8, 8, False), (781, 1024, 1, 8, False),
    (2048, 2048, 1, 8, False), (4096, 4096, 1, 16, False), (8192, 8192, 1, 32, False),
    (8193, 2048, 1, 16, True), (1 << 20, 2048, 1, 16, True)])
def test_specs_for_meta_rows_name_the_kernel_and_its_launch_settings(
        n: int, block: int, rows_: int, warps: int, loop: bool) -> None:
    launcher = _launcher(LN)
    meta = [torch.empty(64, n, device="meta"), torch.empty(n, device="meta"),
            torch.empty(n, device="meta")]
    ins = (meta[0], (n,), meta[1], meta[2])
    assert launcher.ok(*ins)
    (sp,) = launcher.specs(*ins)
    assert sp.constexprs == {"ROWS": rows_, "BLOCK_N": block}
    assert (sp.num_warps, sp.num_stages) == (warps, 1)
    assert sp.name.endswith("_loop") == loop and ("for start in range" in sp.source) == loop
    assert sp.signature["p0"] == "*fp32" and sp.signature["n_cols"] == "i32"
    assert list(sp.signature) == params_of(sp.source)


def test_specs_are_the_kernels_a_launch_compiles(ran: list[str]) -> None:
    launcher = _launcher(LN)
    x, w, c = torch.randn(3, 5), torch.randn(5), torch.randn(5)
    (sp,) = launcher.specs(x, (5,), w, c)
    launcher(x, (5,), w, c)
    assert ran[-1] == sp.name
    pw = _launcher("def f(x: f32[m, n], y: f32[m, n]):\n    return x * y\n")
    meta = torch.empty(4096, 4096, device="meta")
    (sp,) = pw.specs(meta, meta)
    assert (sp.constexprs, sp.num_warps, sp.num_stages) == ({"BLOCK": 1024}, 4, 1)
    assert sp.name.endswith("_cc") and "%" not in sp.source
    (sp,) = pw.specs(meta.t(), meta)
    assert sp.name.endswith("_sc_r2") and "size1" in sp.source


def test_ok_refuses_exactly_what_overflows_32_bit_offsets() -> None:
    pw = _launcher("def f(x: f32[m, n], y: f32[m, n]):\n    return x * y\n")
    fits = torch.empty(1, (1 << 31) - 1, device="meta")  # the largest offset is 2**31 - 2
    assert pw.ok(fits, fits)
    big = torch.empty(1 << 16, 1 << 15, device="meta")  # 2**31 elements
    assert not pw.ok(big, big)
    # a few elements of a large tensor: the largest offset is stride + 3
    small = torch.empty(2, 4, device="meta")
    edge = torch.empty_strided((2, 4), ((1 << 31) - 4, 1), device="meta")  # 2**31 - 1
    over = torch.empty_strided((2, 4), ((1 << 31) - 3, 1), device="meta")  # 2**31
    assert pw.ok(small, small) and pw.ok(edge, small) and pw.ok(small, edge)
    assert not pw.ok(over, small) and not pw.ok(small, over)
    ln = _launcher(LN)
    wide = torch.empty(1024, 1 << 20, device="meta")  # long rows loop: no width limit
    vec = torch.empty(1 << 20, device="meta")
    assert ln.ok(wide, (1 << 20,), vec, vec)
    huge = torch.empty(2048, 1 << 20, device="meta")
    assert not ln.ok(huge, (1 << 20,), vec, vec)
    wc = torch.empty_strided((2, 4), (1, 2), device="meta")
    ok_w = torch.empty_strided((4,), ((1 << 31) // 3,), device="meta")  # 3 * that fits
    bad_w = torch.empty_strided((4,), ((1 << 31) // 3 + 1,), device="meta")
    assert ln.ok(wc, (4,), ok_w, ok_w) and not ln.ok(wc, (4,), bad_w, ok_w)
    empty_rows = torch.empty(3, 0, device="meta")
    assert not ln.ok(empty_rows, (0,), torch.empty(0, device="meta"),
                     torch.empty(0, device="meta"))
