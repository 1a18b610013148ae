"""Attention on the Triton backend (``kernels/attention.py``, ``kernels/attention_bwd.py``), in
Triton's interpreter on the CPU, against the reference interpreter and torch.

The forward runs through the whole pipeline (fusion, host code, launcher) and must equal the
reference interpreter and torch's ``scaled_dot_product_attention`` in f64: causal or not,
L != S, sizes that are not multiples of a block, bool masks and additive biases broadcast from
fewer dims, head dims that are not powers of two, a broadcast key/value head, every float
dtype. The backward (the launcher's ``forward_saving`` / ``backward``) must equal torch's
autograd in f64, and ``torch.autograd.gradcheck`` in f64. Rows that see no key give what torch
gives. A causal program never visits a key block above its diagonal (poisoned keys there stay
invisible). The GPU tiles run here too, and the specs a launcher lists are the kernels it
launches. Every case asserts that the attention really ran in a kernel.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gtdsl.driver import load_source
from gtdsl.ir.core import Op
from gtdsl.lower.triton import attention as A
from gtdsl.lower.triton.kernels import launcher_for

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10),
       torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}
GRAD_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4),
            torch.float64: dict(rtol=1e-9, atol=1e-9),
            torch.bfloat16: dict(rtol=5e-2, atol=5e-2), torch.float16: dict(rtol=1e-2, atol=1e-2)}
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32,
          "f64": torch.float64}


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every forward launch of an attention kernel."""
    seen: list[Any] = []
    real = A.AttentionLauncher.__call__

    def counted(self: Any, *values: Any) -> Any:
        seen.append(self)
        return real(self, *values)

    monkeypatch.setattr(A.AttentionLauncher, "__call__", counted)
    return seen


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (name, the mask's declaration or "", the call's keyword arguments, shapes by name), each
# run at the dtypes listed; sizes b=2, h=2 and odd sequence lengths (interpreter tiles: 32
# queries by 16 keys, so several blocks, partial ones and, causal, several diagonal blocks)
Q = "q: {dt}[b, h, l, d], k: {dt}[b, h, s, d], v: {dt}[b, h, s, d]"
CASES: list[tuple[str, str, str, dict[str, tuple[int, ...]], tuple[str, ...]]] = [
    ("plain", Q, "", dict(q=(2, 2, 37, 24), k=(2, 2, 21, 24), v=(2, 2, 21, 24)),
     ("f32", "bf16")),
    ("causal L > S", Q, "is_causal=True",
     dict(q=(2, 2, 45, 24), k=(2, 2, 19, 24), v=(2, 2, 19, 24)), ("f32",)),
    ("causal L < S", Q, "is_causal=True",
     dict(q=(2, 2, 21, 24), k=(2, 2, 53, 24), v=(2, 2, 53, 24)), ("f32", "bf16")),
    ("causal L = S, d 80", Q, "is_causal=True",
     dict(q=(1, 2, 70, 80), k=(1, 2, 70, 80), v=(1, 2, 70, 80)), ("f32",)),
    ("padding mask [b, 1, 1, s]", Q + ", m: bool[b, 1, 1, s]", "attn_mask=m",
     dict(q=(2, 2, 37, 32), k=(2, 2, 21, 32), v=(2, 2, 21, 32), m=(2, 1, 1, 21)),
     ("f32", "bf16")),
    ("bool mask [l, s], d 64", Q + ", m: bool[l, s]", "attn_mask=m",
     dict(q=(1, 2, 37, 64), k=(1, 2, 29, 64), v=(1, 2, 29, 64), m=(37, 29)), ("f32",)),
    ("position bias [1, h, l, s], scale 1", Q + ", m: {dt}[1, h, l, s]",
     "attn_mask=m, scale=1.0",
     dict(q=(2, 2, 33, 16), k=(2, 2, 40, 16), v=(2, 2, 40, 16), m=(1, 2, 33, 40)),
     ("f32", "f16", "f64")),
    ("bias [b, h, l, s], d 128", Q + ", m: {dt}[b, h, l, s]", "attn_mask=m",
     dict(q=(1, 2, 20, 128), k=(1, 2, 35, 128), v=(1, 2, 35, 128), m=(1, 2, 20, 35)),
     ("f32",)),
    ("scale argument", Q + ", sc: float", "scale=sc",
     dict(q=(2, 1, 17, 8), k=(2, 1, 23, 8), v=(2, 1, 23, 8)), ("f32",)),
    ("one key/value head", "q: {dt}[b, h, l, d], k: {dt}[b, 1, s, d], v: {dt}[b, 1, s, d]",
     "is_causal=True", dict(q=(2, 3, 30, 16), k=(2, 1, 30, 16), v=(2, 1, 30, 16)),
     ("f32",)),
]
FWD = [(c, dt) for c in CASES for dt in c[4]]


def _source(case: tuple, dt: str) -> str:
    _, params, call, _, _ = case
    return (f"def f({params.format(dt=dt)}):\n"
            f"    return scaled_dot_product_attention(q, k, v{', ' + call if call else ''})\n")


def _inputs(case: tuple, dt: str, seed: int = 0) -> dict[str, Any]:
    """The case's arguments: normal data, masks with about a third masked out (and one row
    masked entirely), biases with a -inf entry."""
    g = _gen(seed)
    out: dict[str, Any] = {}
    for name, shape in case[3].items():
        if name == "m" and "bool" in case[1]:
            m = torch.rand(shape, generator=g) > 0.3
            m[..., 0, :] = False  # a row that sees no key
            out[name] = m
        else:
            x = torch.randn(shape, generator=g, dtype=torch.float64)
            if name == "m":
                x.view(-1)[x.numel() // 2] = float("-inf")
            out[name] = x.to(DTYPES[dt])
    if "sc: float" in case[1]:
        out["sc"] = 0.37
    return out


def _oracle(case: tuple, ins: dict[str, Any]) -> torch.Tensor:
    """torch's attention of the same values in f64."""
    def wide(x: Any) -> Any:
        return x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x

    kw: dict[str, Any] = {}
    call = case[2]
    if "is_causal" in call:
        kw["is_causal"] = True
    if "attn_mask" in call:
        kw["attn_mask"] = wide(ins["m"])
    if "scale=1.0" in call:
        kw["scale"] = 1.0
    if "sc" in ins:
        kw["scale"] = ins["sc"]
    return F.scaled_dot_product_attention(wide(ins["q"]), wide(ins["k"]), wide(ins["v"]), **kw)


def _launcher(src: str) -> Any:
    fn = load_source(src, "a.gt", backend="triton").f
    kernels = [e for e in fn.fused().body.eqns if e.op is Op.KERNEL]
    assert len(kernels) == 1 and kernels[0].param("kernel").kind == "attention", fn.plan()
    return launcher_for(kernels[0])


def _values(launcher: Any, ins: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(ins[a.hint] for a in launcher.group.inputs)


@pytest.mark.parametrize("case,dt", FWD, ids=[f"{c[0]} {dt}" for c, dt in FWD])
def test_forward_equals_the_interpreter_and_torch(case: tuple, dt: str,
                                                  launches: list[Any]) -> None:
    src = _source(case, dt)
    tri = load_source(src, "a.gt", backend="triton").f
    ref = load_source(src, "a.gt", backend="interpret").f
    assert "[attention]" in tri.plan() and "scaled_dot_product_attention" not in "".join(
        line for line in tri.plan().splitlines() if line.startswith("torch")), tri.plan()
    ins = _inputs(case, dt)
    args = [ins[n] for n, _ in tri._params]
    out = tri(*args)
    assert len(launches) == 1
    want = ref(*args)
    assert out.dtype == want.dtype == DTYPES[dt] and out.shape == want.shape
    torch.testing.assert_close(out, want, **TOL[out.dtype])
    torch.testing.assert_close(out.double(), _oracle(case, ins), **TOL[out.dtype])


def test_rows_that_see_no_key_give_what_torch_gives() -> None:
    """torch gives 0 for a query row whose keys are all masked (a bool row of False, a bias
    row of -inf) and for attention over no key at all; so do the kernels, and the row's
    gradients are 0 too."""
    g = _gen(3)
    q, k, v = (torch.randn(1, 2, n, 16, generator=g, dtype=torch.float64) for n in (9, 6, 6))
    m = torch.rand(9, 6, generator=g) > 0.5
    m[[0, 4, 8]] = False
    bias = torch.randn(1, 2, 9, 6, generator=g, dtype=torch.float64)
    bias[0, 1, 3] = float("-inf")
    for decl, mask in (("m: bool[l, s]", m), ("m: f64[1, h, l, s]", bias)):
        launcher = _launcher("def f(q: f64[b, h, l, d], k: f64[b, h, s, d], v: f64[b, h, s, d], "
                             f"{decl}):\n    return scaled_dot_product_attention(q, k, v, "
                             "attn_mask=m)\n")
        vals = _values(launcher, dict(q=q, k=k, v=v, m=mask))
        (out,), saved = launcher.forward_saving(*vals)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                   **TOL[torch.float64])
        rows = [0, 4, 8] if mask.dtype == torch.bool else [3]
        heads = [0, 1] if mask.dtype == torch.bool else [1]
        assert torch.equal(out[:, heads][:, :, rows], torch.zeros_like(out[:, heads][:, :, rows]))
        grads = launcher.backward(vals, saved, (torch.ones_like(out),), (True,) * len(vals))
        dq = grads[[a.hint for a in launcher.group.inputs].index("q")]
        assert torch.equal(dq[:, heads][:, :, rows], torch.zeros_like(dq[:, heads][:, :, rows]))
    launcher = _launcher("def f(q: f32[b, h, l, d], k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
                         "    return scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    empty = torch.zeros(1, 2, 0, 16)
    out = launcher(*_values(launcher, dict(q=q.float(), k=empty, v=empty)))
    assert torch.equal(out, F.scaled_dot_product_attention(q.float(), empty, empty,
                                                           is_causal=True))


def test_a_causal_program_stops_at_its_diagonal() -> None:
    """Keys past the last query's diagonal block are never read: poisoned with NaN (which
    would spread through any product with them, masked or not), they leave the output and
    dQ equal to torch's over the clean keys, and their own dK and dV are exactly 0."""
    fwd, _, dkdv, dq = A.attention_tiles(torch.float32, 16, True, 0, True)
    n_q = 20
    seen = -(-n_q // max(fwd.block_m, dq.block_m)) * max(fwd.block_m, dq.block_m)
    g = _gen(4)
    q = torch.randn(1, 2, n_q, 16, generator=g)
    k, v = (torch.randn(1, 2, seen + 2 * dkdv.block_n, 16, generator=g) for _ in range(2))
    clean_k, clean_v = k[:, :, :seen].clone(), v[:, :, :seen].clone()
    k[:, :, seen:] = float("nan")
    v[:, :, seen:] = float("nan")
    launcher = _launcher("def f(q: f32[b, h, l, d], k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
                         "    return scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    vals = _values(launcher, dict(q=q, k=k, v=v))
    (out,), saved = launcher.forward_saving(*vals)
    do = torch.randn(out.shape, generator=g)
    grads = dict(zip((a.hint for a in launcher.group.inputs),
                     launcher.backward(vals, saved, (do,), (True, True, True))))
    leaves = [x.double().requires_grad_() for x in (q, clean_k, clean_v)]
    want = F.scaled_dot_product_attention(*leaves, is_causal=True)
    want.backward(do.double())
    torch.testing.assert_close(out.double(), want, **TOL[torch.float32])
    torch.testing.assert_close(grads["q"].double(), leaves[0].grad, **GRAD_TOL[torch.float32])
    for name, leaf in (("k", leaves[1]), ("v", leaves[2])):
        torch.testing.assert_close(grads[name][:, :, :seen].double(), leaf.grad,
                                   **GRAD_TOL[torch.float32])
        assert torch.equal(grads[name][:, :, seen:], torch.zeros_like(grads[name][:, :, seen:]))


# (case, dtype, the inputs that need a gradient): bias gradients are summed over the dims the
# bias broadcasts along; a key/value head broadcast over query heads sums over them
BWD = [(CASES[0], "f32", "qkv"), (CASES[1], "f32", "qkv"), (CASES[2], "bf16", "qkv"),
       (CASES[3], "f32", "qkv"), (CASES[4], "f32", "qkv"), (CASES[5], "f32", "qv"),
       (CASES[6], "f32", "qkvm"), (CASES[6], "f32", "qkv"), (CASES[7], "f64", "qkvm"),
       (CASES[8], "f32", "k"), (CASES[9], "f32", "qkv"), (CASES[3], "f64", "qkv"),
       (("padding bias [b, 1, 1, s]", Q + ", m: {dt}[b, 1, 1, s]", "attn_mask=m",
         dict(q=(2, 2, 37, 24), k=(2, 2, 21, 24), v=(2, 2, 21, 24), m=(2, 1, 1, 21)), ()),
        "f32", "qkvm")]


@pytest.mark.parametrize("case,dt,wrt", BWD, ids=[f"{c[0]} {dt} d{w}" for c, dt, w in BWD])
def test_backward_equals_torch_autograd(case: tuple, dt: str, wrt: str) -> None:
    launcher = _launcher(_source(case, dt))
    ins = _inputs(case, dt, seed=1)
    vals = _values(launcher, ins)
    names = [a.hint for a in launcher.group.inputs]
    needs = tuple(n in wrt for n in names)
    (out,), saved = launcher.forward_saving(*vals)
    do = torch.randn(out.shape, generator=_gen(2), dtype=torch.float64).to(out.dtype)
    grads = launcher.backward(vals, saved, (do,), needs)
    wide = {n: x.double().requires_grad_(n in wrt) if isinstance(x, torch.Tensor) and
            x.is_floating_point() else x for n, x in ins.items()}
    want = _oracle(case, wide)
    torch.testing.assert_close(out.double(), want, **TOL[out.dtype])
    want.backward(do.double())
    for n, gr in zip(names, grads):
        if n not in wrt:
            assert gr is None
            continue
        x = ins[n]
        assert gr.shape == x.shape and gr.dtype == x.dtype, n
        torch.testing.assert_close(gr.double(), wide[n].grad, **GRAD_TOL[x.dtype])


def test_one_tensor_as_query_key_and_value_gets_the_sum_of_its_gradients() -> None:
    launcher = _launcher("def f(x: f32[b, h, l, d]):\n"
                         "    return scaled_dot_product_attention(x, x, x, is_causal=True)\n")
    x = torch.randn(2, 2, 19, 16, generator=_gen(5))
    (out,), saved = launcher.forward_saving(x)
    do = torch.randn(out.shape, generator=_gen(6))
    (got,) = launcher.backward((x,), saved, (do,), (True,))
    leaf = x.double().requires_grad_()
    F.scaled_dot_product_attention(leaf, leaf, leaf, is_causal=True).backward(do.double())
    torch.testing.assert_close(got.double(), leaf.grad, **GRAD_TOL[torch.float32])


class _Attention(torch.autograd.Function):
    """The launcher's forward_saving / backward as an autograd function (for gradcheck)."""

    @staticmethod
    def forward(ctx: Any, launcher: Any, *vals: Any) -> Any:  # type: ignore[override]
        (out,), saved = launcher.forward_saving(*vals)
        ctx.launcher = launcher
        ctx.vals = vals
        ctx.saved = saved
        return out

    @staticmethod
    def backward(ctx: Any, do: Any) -> Any:  # type: ignore[override]
        return (None, *ctx.launcher.backward(ctx.vals, ctx.saved, (do,),
                                             tuple(ctx.needs_input_grad[1:])))


GRADCHECK = [("causal", Q, "is_causal=True", dict(q=(1, 2, 6, 4), k=(1, 2, 5, 4), v=(1, 2, 5, 4)),
              ()),
             ("bias", Q + ", m: {dt}[1, h, l, s]", "attn_mask=m",
              dict(q=(1, 2, 5, 4), k=(1, 2, 6, 4), v=(1, 2, 6, 4), m=(1, 2, 5, 6)), ())]


@pytest.mark.parametrize("case", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck_in_f64(case: tuple) -> None:
    """Finite differences of the f64 kernels (IEEE f64 products) against their backward."""
    launcher = _launcher(_source(case, "f64"))
    ins = _inputs(case, "f64", seed=7)
    if "m" in ins:
        ins["m"][torch.isinf(ins["m"])] = 0.0  # finite differences need finite scores
    vals = [x.requires_grad_() for x in _values(launcher, ins)]
    assert torch.autograd.gradcheck(lambda *xs: _Attention.apply(launcher, *xs), vals,
                                    fast_mode=True)


@pytest.mark.parametrize("dt,d,call,aligned", [("f32", 64, "is_causal=True", True),
                                               ("f32", 80, "attn_mask=m", True),
                                               ("f16", 128, "is_causal=True", True),
                                               ("f32", 24, "attn_mask=m", False)])
def test_the_gpu_tiles_compute_the_same(dt: str, d: int, call: str, aligned: bool,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiles a GPU launch uses (128-query blocks, ...; smaller ones for operands that are
    not aligned) run in the interpreter too: several diagonal blocks, partial blocks at both
    ends."""
    real = A.attention_tiles
    monkeypatch.setattr(A, "attention_tiles",
                        lambda dtype, bd, al, mask, interp: real(dtype, bd, al, mask, False))
    mask = ", m: {dt}[b, h, l, s]" if "attn_mask" in call else ""
    # more queries than one block of the largest tile holds; the bias's row stride (the
    # number of keys) divisible by 16, or not
    n_q = 150 if dt == "f16" else 75
    n_k = (144 if dt == "f16" else 80) if aligned else 77
    case = ("gpu", Q + mask, call, dict(q=(1, 1, n_q, d), k=(1, 1, n_k, d), v=(1, 1, n_k, d),
                                        m=(1, 1, n_q, n_k)), ())
    if not mask:
        del case[3]["m"]
    seen: list[bool] = []
    real_aligned = A._aligned
    monkeypatch.setattr(A, "_aligned", lambda *a: seen.append(real_aligned(*a)) or seen[-1])
    test_backward_equals_torch_autograd(case, dt, "qkvm")
    assert seen and set(seen) == {aligned}


def test_tiles_fit_the_causal_diagonal() -> None:
    """The kernels step the causal diagonal in whole blocks: the forward's and dQ's query
    block is a multiple of their key block, dK/dV's key block a multiple of its query
    block, for every table entry; every dtype, head dim, alignment and mask kind a GPU
    launches has an entry."""
    entries = [*A._GPU_TILES.values(), A._INTERPRETER_TILES]
    for fwd, pre, dkdv, dq in entries:
        assert fwd.block_m % fwd.block_n == 0 and dq.block_m % dq.block_n == 0
        assert dkdv.block_n % dkdv.block_m == 0
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        for d in (1, 16, 24, 64, 80, 128):
            block_d = max(16, 1 << (d - 1).bit_length())
            for aligned in (True, False):
                for mask in (0, 1, 2):
                    assert A.attention_tiles(dtype, block_d, aligned, mask, False) in entries


def test_specs_are_the_kernels_a_launch_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """``specs`` lists the forward kernel and ``backward_specs`` the three backward kernels,
    with the constants and launch settings the real launches use; meta tensors give the
    same specs as real ones."""
    case = CASES[6]
    launcher = _launcher(_source(case, "f32"))
    ins = _inputs(case, "f32")
    vals = _values(launcher, ins)
    ran: list[Any] = []
    real = A.AttentionLauncher._run
    monkeypatch.setattr(A.AttentionLauncher, "_run",
                        lambda self, launch: (ran.append(launch), real(self, launch))[1])
    (out,), saved = launcher.forward_saving(*vals)
    launcher.backward(vals, saved, (torch.ones_like(out),), (True,) * len(vals))
    specs = launcher.specs(*vals) + launcher.backward_specs(*vals)
    assert [s.name for s in specs] == [launcher.names[k] for k in ("fwd", "pre", "dkdv", "dq")]
    assert [launcher.names[x.kernel] for x in ran] == [s.name for s in specs]
    for sp, x in zip(specs, ran):
        assert {k: v for k, v in sp.constexprs.items() if k in x.consts} == x.consts
        assert (sp.num_warps, sp.num_stages) == (x.tiles.num_warps, x.tiles.num_stages)
        assert sp.signature["q_ptr" if "q_ptr" in sp.signature else "o_ptr"] == "*fp32"
    meta = tuple(v.to("meta") if isinstance(v, torch.Tensor) else v for v in vals)
    assert launcher.specs(*meta) + launcher.backward_specs(*meta) == specs


@pytest.mark.parametrize("src,why", [
    ("def f(q: f32[b, h, l, d], k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
     "    return scaled_dot_product_attention(q, k, v, dropout_p=0.1)\n", "dropout"),
    ("def f(q: f32[b, h, l, d], k: f32[b, h, s, d], v: f32[b, h, s, d], m: f32[*r]):\n"
     "    return scaled_dot_product_attention(q, k, v, attn_mask=m)\n", "a mask of unknown rank"),
    ("def f(q: f32[h, l, d], k: f32[h, s, d], v: f32[h, s, d]):\n"
     "    return scaled_dot_product_attention(q, k, v)\n", "3-d operands"),
])
def test_what_the_kernels_do_not_take_stays_torch_code(src: str, why: str) -> None:
    assert "[attention]" not in load_source(src, "a.gt", backend="triton").f.plan(), why


def test_f64_runs_the_kernels_only_in_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU f64 attention runs as torch ops (no f64 tiles are tuned); the interpreter
    runs the f64 kernels (the tests above check them)."""
    launcher = _launcher(_source(CASES[0], "f64"))
    ins = _inputs(CASES[0], "f64")
    vals = _values(launcher, ins)
    assert launcher.ok(*vals)
    monkeypatch.setattr(A, "interpreting", lambda: False)
    assert not launcher.ok(*vals)
    f32 = _launcher(_source(CASES[0], "f32"))
    assert f32.ok(*(v.float() for v in vals))


def test_head_dims_over_the_kernels_limit_run_as_torch_ops(launches: list[Any]) -> None:
    src = ("def f(q: f32[b, h, l, d], k: f32[b, h, s, d], v: f32[b, h, s, d]):\n"
           "    return scaled_dot_product_attention(q, k, v, is_causal=True)\n")
    tri = load_source(src, "a.gt", backend="triton").f
    g = _gen(8)
    q, k, v = (torch.randn(1, 1, 5, A.MAX_HEAD_DIM + 8, generator=g) for _ in range(3))
    torch.testing.assert_close(tri(q, k, v), F.scaled_dot_product_attention(q, k, v,
                                                                           is_causal=True))
    assert launches == []


def test_the_shipped_models_attention_fuses(launches: list[Any]) -> None:
    """The attention of the shipped models (an additive bias from blocks.gt's attend, GPT-2's
    causal-plus-padding bias and its scale) is one kernel; attend runs it and equals the
    reference interpreter."""
    import gtdsl
    from gtdsl._resources import checkout_root

    models = checkout_root() / "gtdsl" / "models"
    blocks = gtdsl.load(models / "blocks.gt", backend="triton")
    for name in ("attend", "attend_unscaled"):
        assert "[attention]" in blocks.functions[name].plan()
    gpt2 = gtdsl.load(models / "gpt2.gt", backend="triton")
    assert "[attention]" in gpt2.functions["block"].plan()
    ref = gtdsl.load(models / "blocks.gt", backend="interpret")
    g = _gen(9)
    q = torch.randn(2, 3, 7, 8, generator=g)
    k, v = (torch.randn(2, 3, 11, 8, generator=g) for _ in range(2))
    bias = torch.randn(2, 3, 7, 11, generator=g)
    out = blocks.functions["attend"](q, k, v, bias)
    assert len(launches) == 1
    torch.testing.assert_close(out, ref.functions["attend"](q, k, v, bias), **TOL[torch.float32])

