"""Attention: the launcher of an ``attention`` ``KERNEL`` eqn, ``scaled_dot_product_attention``
with an optional bool mask or additive bias, causal or not.

The forward comes from the ``kernels/attention.py`` template (FlashAttention-2: one pass over
the keys with an online softmax; a causal program stops at the diagonal and only the blocks
that the diagonal or the end of the keys cuts apply a mask). It always stores each row's
log-sum-exp next to the output, so one kernel serves inference and training. The backward
(``forward_saving`` / ``backward``, the autograd contract of
``gtdsl.lower.triton.autograd``) comes from ``kernels/attention_bwd.py``: a kernel computing
``delta = rowsum(dO * O)``, one computing dK and dV (each program owns a block of keys and
walks the query blocks that see them) and one computing dQ (each program owns a block of
queries and walks their keys), which also stores dS, the gradient of an additive bias, when
that bias needs one. Gradients of operands broadcast into the kernel (a size-1 batch or head
dim, a mask of fewer dims) are summed to their shapes.

Everything the eqn fixes is decided once, when the launcher is built: which inputs are the
query, key, value, mask and scale, the mask's kind (bool: True attends; float: added to the
scores) and rank, causal or not, a literal scale. A launch reads shapes and strides (a size-1
or missing dim is read with stride 0), looks up the tiles for its dtype, head dim, mask kind
and alignment, allocates the outputs and launches. Tiles on a GPU follow the tutorial where
the registers allow (``_GPU_TILES``: each entry compiles without register spills for sm_80
and sm_90); the interpreter uses small ones. Head dims up to ``MAX_HEAD_DIM`` run in the
kernels (a dim that is not a power of two, 80, is padded to the next one and masked); larger
ones, and f64 on a GPU, run as torch ops. ``specs`` lists the forward kernel a launch
compiles, ``backward_specs`` the backward's three, each as Triton specializes it.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch

from gtdsl.ir.core import Lit, Var
from gtdsl.lower.triton.base import (
    _LOCK, INT32, Group, KernelSpec, _compile, fits_int32, interpreting, launch_spec, template,
    triton_modules,
)
from gtdsl.lower.triton.fusion import _args, tensor_of
from gtdsl.types import DT

LOG2E = 1.4426950408889634
MAX_HEAD_DIM = 128
_FP64_ARGS = ("qk_scale", "log2e", "sm_scale")  # float arguments the kernels read as f64


class Tiles(NamedTuple):
    """One kernel's tile and launch settings: BLOCK_M queries by BLOCK_N keys."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


# The tiles of a GPU launch, (forward, delta, dK/dV, dQ), by (dtype kind, padded head dim,
# operands aligned, mask kind). "half" is f16 and bf16 (tensor core products, f32
# accumulation); "f32" uses IEEE products (FMA, which holds both operands in registers:
# smaller tiles). Aligned operands (16-byte pointers, strides 1 or divisible by 16) let Triton
# vectorize the loads and pipeline them through shared memory, leaving registers for larger
# tiles. Mask kind: 0 none (causal or not), 1 bool, 2 additive bias. Each entry is the
# largest of a list of candidates (Triton's tutorial's first) that compiles without register
# spills for sm_80 and sm_90 (``gtdsl.lower.triton.aot``), for every mode of its mask kind
# and dtype of its kind, at head dims 32 and 64 (the 64 entries, which 16 uses too) or 80
# and 128 (the 128 entries). The forward's and dQ's BLOCK_M are multiples of their BLOCK_N,
# dK/dV's BLOCK_N a multiple of its BLOCK_M (the causal diagonal falls on block boundaries).
_T = Tiles
_GPU_TILES: dict[tuple[str, int, bool, int], tuple[Tiles, Tiles, Tiles, Tiles]] = {
    ("half", 64, True, 0):
        (_T(128, 64, 8, 3), _T(64, 0, 4, 1), _T(32, 128, 8, 3), _T(128, 32, 8, 3)),
    ("half", 64, True, 1):
        (_T(128, 64, 8, 3), _T(64, 0, 4, 1), _T(16, 64, 4, 3), _T(128, 32, 8, 3)),
    ("half", 64, True, 2):
        (_T(128, 64, 8, 3), _T(64, 0, 4, 1), _T(16, 64, 4, 3), _T(128, 32, 8, 3)),
    ("half", 64, False, 0):
        (_T(128, 64, 8, 3), _T(32, 0, 4, 1), _T(32, 64, 4, 3), _T(128, 32, 8, 3)),
    ("half", 64, False, 1):
        (_T(64, 16, 4, 3), _T(32, 0, 4, 1), _T(16, 64, 4, 3), _T(128, 32, 8, 3)),
    ("half", 64, False, 2):
        (_T(64, 16, 4, 3), _T(32, 0, 4, 1), _T(16, 64, 4, 3), _T(64, 16, 4, 3)),
    ("half", 128, True, 0):
        (_T(128, 64, 8, 3), _T(64, 0, 4, 1), _T(16, 64, 4, 3), _T(64, 32, 4, 3)),
    ("half", 128, True, 1):
        (_T(64, 32, 4, 3), _T(64, 0, 4, 1), _T(16, 64, 4, 3), _T(64, 32, 4, 3)),
    ("half", 128, True, 2):
        (_T(128, 32, 8, 3), _T(64, 0, 4, 1), _T(16, 64, 4, 3), _T(128, 32, 8, 3)),
    ("half", 128, False, 0):
        (_T(128, 32, 8, 3), _T(64, 0, 4, 1), _T(16, 32, 4, 2), _T(32, 16, 4, 2)),
    ("half", 128, False, 1):
        (_T(64, 16, 4, 3), _T(64, 0, 4, 1), _T(16, 32, 4, 2), _T(32, 16, 4, 2)),
    ("half", 128, False, 2):
        (_T(64, 16, 4, 3), _T(64, 0, 4, 1), _T(16, 32, 4, 2), _T(32, 16, 4, 2)),
    ("f32", 64, True, 0):
        (_T(32, 32, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 32, 8, 2)),
    ("f32", 64, True, 1):
        (_T(64, 32, 8, 2), _T(64, 0, 4, 1), _T(32, 32, 8, 2), _T(64, 32, 8, 2)),
    ("f32", 64, True, 2):
        (_T(64, 32, 8, 2), _T(64, 0, 4, 1), _T(32, 32, 8, 2), _T(64, 32, 8, 2)),
    ("f32", 64, False, 0):
        (_T(64, 32, 8, 2), _T(64, 0, 4, 1), _T(16, 16, 4, 2), _T(64, 32, 8, 2)),
    ("f32", 64, False, 1):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 4, 2)),
    ("f32", 64, False, 2):
        (_T(64, 32, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(64, 32, 8, 2)),
    ("f32", 128, True, 0):
        (_T(16, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 16, 8, 2), _T(32, 16, 4, 2)),
    ("f32", 128, True, 1):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 8, 2)),
    ("f32", 128, True, 2):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 8, 2)),
    ("f32", 128, False, 0):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 8, 2)),
    ("f32", 128, False, 1):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 8, 2)),
    ("f32", 128, False, 2):
        (_T(32, 16, 8, 2), _T(64, 0, 4, 1), _T(16, 32, 8, 2), _T(32, 16, 8, 2)),
}
# f32 at head dims up to 16: ptxas spills a few bytes at low register counts with the 64
# entries' backward tiles on sm_80; these compile without spills on both targets
_GPU_TILES.update({("f32", 16, al, mk): (fwd, pre, _T(16, 16, 4, 1), _T(32, 16, 4, 2))
                   for (kd, d, al, mk), (fwd, pre, _, _) in list(_GPU_TILES.items())
                   if kd == "f32" and d == 64})
# the interpreter runs every program on the CPU: small tiles, still several per diagonal
_INTERPRETER_TILES = (Tiles(32, 16, 1, 1), Tiles(32, 16, 1, 1), Tiles(16, 32, 1, 1),
                      Tiles(32, 16, 1, 1))


@functools.lru_cache(maxsize=None)
def attention_tiles(dtype: torch.dtype, block_d: int, aligned: bool, mask: int,
                    interpreter: bool) -> tuple[Tiles, Tiles, Tiles, Tiles]:
    """The (forward, delta, dK/dV, dQ) tiles for operands of ``dtype`` (f16, bf16, f32; any
    float in the interpreter), a head dim padded to ``block_d``, whether every operand is
    ``aligned``, and the ``mask`` kind (0 none, 1 bool, 2 additive)."""
    if interpreter:
        return _INTERPRETER_TILES
    kind = "f32" if dtype == torch.float32 else "half"
    d = 16 if kind == "f32" and block_d <= 16 else max(block_d, 64)
    return _GPU_TILES[(kind, d, aligned, mask)]


def _aligned(tensors: tuple[Any, ...], strides: tuple[int, ...]) -> bool:
    """Every pointer 16-byte aligned and every stride 1 or divisible by 16, as Triton
    specializes them at a launch."""
    return all(t.data_ptr() % 16 == 0 for t in tensors) and all(
        x % 16 == 0 or x == 1 for x in strides)


@dataclass(frozen=True)
class _Launch:
    """One kernel launch: which kernel (``fwd``, ``pre``, ``dkdv``, ``dq``), its grid, its
    arguments and constants, its tiles."""

    kernel: str
    grid: tuple[int]
    args: list[Any]
    consts: dict[str, Any]
    tiles: Tiles


@dataclass(frozen=True)
class _Operands:
    """The tensors of one call and what a launch reads from them."""

    q: Any
    k: Any
    v: Any
    mask: Any  # the mask or bias tensor, or None
    B: int
    H: int
    L: int
    S: int
    D: int
    scale: float
    sq: tuple[int, int, int]
    sk: tuple[int, int, int]
    sv: tuple[int, int, int]
    sb: tuple[int, int, int, int]
    block_d: int
    tiles: tuple[Tiles, Tiles, Tiles, Tiles]
    ieee: bool
    acc: torch.dtype  # the accumulator dtype: row statistics and dS buffers


def _strides(t: Any) -> tuple[int, int, int]:
    """A [B, H, n, D] operand's batch, head and row strides; 0 along a size-1 batch or head
    dim (broadcast). Its head dim is contiguous (``_dense``)."""
    st = t.stride()
    sh = t.shape
    return (0 if sh[0] == 1 else st[0], 0 if sh[1] == 1 else st[1], st[2])


def _dense(t: Any) -> Any:
    """``t`` with a contiguous last dim, as the kernels read it (copied only when it is not,
    which views of real models' projections never need)."""
    return t if t.stride(-1) == 1 or t.shape[-1] <= 1 else t.contiguous()


class AttentionLauncher:
    """``scaled_dot_product_attention`` from the ``kernels/attention.py`` template (forward)
    and the ``kernels/attention_bwd.py`` one (backward)."""

    def __init__(self, group: Group) -> None:
        self.group = group
        e = group.eqns[0]
        args = _args(e)
        pos = {a.id: i for i, a in enumerate(group.inputs)}

        def at(name: str) -> int | None:
            a = args.get(name)
            return pos[a.id] if isinstance(a, Var) else None

        self._q, self._k, self._v = at("query"), at("key"), at("value")
        self._m = at("attn_mask")
        self._scale_at = at("scale")
        scale = args.get("scale")
        self._scale: float | None = scale.value if isinstance(scale, Lit) else None
        causal = args["is_causal"]
        self.causal = bool(causal.value) if isinstance(causal, Lit) else False
        # 0: no mask; 1: a bool mask (True attends); 2: an additive float bias
        self.bias = 0
        self._mask_pad = 0  # the score dims the mask lacks, in front
        mask = args.get("attn_mask")
        if isinstance(mask, Var):
            t = tensor_of(mask)
            self.bias = 1 if t.dtype is DT.BOOL else 2
            self._mask_pad = 4 - len(t.shape.dims)
        self.name = f"gtdsl_{group.name}"
        self.source = template("attention.py").replace("KERNEL_NAME", self.name)
        self.sources = {"fwd": self.source, **_backward_sources(self.name)}
        self.names = {"fwd": self.name, "pre": f"{self.name}_pre", "dkdv": f"{self.name}_dkdv",
                      "dq": f"{self.name}_dq"}
        self._kernels: dict[str, Any] = {}  # the compiled Triton kernels, by role
        self._saving = threading.local()  # forward_saving's request for the row statistics
        self.launches = 0

    # ------------------------------------------------------------------ planning
    def ok(self, *values: Any) -> bool:
        """The kernels take these inputs: a head dim up to ``MAX_HEAD_DIM``, 32-bit offsets,
        and on a GPU not f64, for which no tiles are tuned (torch runs it there; the
        interpreter runs the f64 kernels, which checks their arithmetic in f64)."""
        q, k, v = values[self._q], values[self._k], values[self._v]  # type: ignore[index]
        d = q.shape[-1]
        if d > MAX_HEAD_DIM or k.shape[-1] != d or v.shape[-1] != d:
            return False
        if q.dtype == torch.float64 and not interpreting():
            return False
        n = max(q.shape[0], k.shape[0]) * max(q.shape[1], k.shape[1]) * q.shape[2]
        return n * max(d, 1) <= INT32 and fits_int32(values)

    def _operands(self, values: tuple[Any, ...], do: Any = None) -> _Operands:
        triton, _ = triton_modules()
        q, k, v = (_dense(values[i]) for i in (self._q, self._k, self._v))  # type: ignore[index]
        B, H = torch.broadcast_shapes(q.shape[:2], k.shape[:2], v.shape[:2])
        L, D = q.shape[2], q.shape[3]
        scale = self._scale if self._scale_at is None else values[self._scale_at]
        if scale is None:
            scale = 1.0 / D ** 0.5 if D else 1.0
        mask = None if self._m is None else values[self._m]
        if mask is None:
            sb = (0, 0, 0, 0)
        else:
            pad = self._mask_pad
            st = (0,) * pad + mask.stride()
            sh = (1,) * pad + mask.shape
            sb = (0 if sh[0] == 1 else st[0], 0 if sh[1] == 1 else st[1],
                  0 if sh[2] == 1 else st[2], 0 if sh[3] == 1 else st[3])
        block_d = max(16, triton.next_power_of_2(D))
        interp = interpreting()
        sq, sk, sv = _strides(q), _strides(k), _strides(v)
        tensors = (q, k, v) if mask is None else (q, k, v, mask)
        strides = (*sq, *sk, *sv, *sb)
        if do is not None:
            tensors += (do,)
            strides += tuple(do.stride()[:3])
        return _Operands(q, k, v, mask, B, H, L, k.shape[2], D, float(scale), sq, sk, sv, sb,
                         block_d,
                         attention_tiles(q.dtype, block_d, _aligned(tensors, strides),
                                         self.bias, interp),
                         interp or q.dtype in (torch.float32, torch.float64),
                         torch.float64 if q.dtype == torch.float64 else torch.float32)

    def _common(self, op: _Operands) -> tuple[list[Any], list[Any]]:
        """The leading arguments every kernel but delta's takes: pointers, then scales,
        sizes and strides of q, k, v and the mask."""
        return ([op.q, op.k, op.v, op.q if op.mask is None else op.mask],
                [op.H, op.L, op.S, *op.sq, *op.sk, *op.sv, *op.sb])

    def _forward_plan(self, values: tuple[Any, ...]) -> tuple[_Launch, Any, Any]:
        """The forward's launch, its output and its log-sum-exp buffer."""
        op = self._operands(values)
        t = op.tiles[0]
        out = torch.empty((op.B, op.H, op.L, op.D), dtype=op.q.dtype, device=op.q.device)
        lse = torch.empty((op.B, op.H, op.L), dtype=op.acc, device=op.q.device)
        ptrs, rest = self._common(op)
        args = [*ptrs, out, lse, op.scale * LOG2E, LOG2E, *rest, *out.stride()[:3]]
        consts = dict(HEAD_DIM=op.D, BLOCK_M=t.block_m, BLOCK_N=t.block_n,
                      BLOCK_D=op.block_d, CAUSAL=self.causal, BIAS=self.bias, IEEE=op.ieee)
        n = -(-op.L // t.block_m) * op.B * op.H if out.numel() else 0
        return _Launch("fwd", (n,), args, consts, t), out, lse

    def _backward_plan(self, values: tuple[Any, ...], out: Any, lse: Any, do: Any,
                       grads_of: tuple[bool, bool, bool, bool]
                       ) -> tuple[list[_Launch], dict[str, Any]]:
        """The backward's launches and the buffers they fill (``dq``, ``dk``, ``dv``,
        ``ds``), for the gradients ``grads_of`` asks for (query, key, value, bias)."""
        do = _dense(do)
        op = self._operands(values, do)
        _, tp, tkv, tq = op.tiles
        dev = op.q.device
        B, H, L, S, D = op.B, op.H, op.L, op.S, op.D
        ptrs, rest = self._common(op)
        sg = _strides(do)
        delta = torch.empty((B, H, L), dtype=op.acc, device=dev)
        launches = [_Launch("pre", (-(-L // tp.block_m) * B * H if D else 0,),
                            [out, do, delta, H, L, *out.stride()[:3], *sg],
                            dict(HEAD_DIM=D, BLOCK_M=tp.block_m, BLOCK_D=op.block_d), tp)]
        scales = [op.scale * LOG2E, LOG2E, op.scale]
        common = dict(HEAD_DIM=D, BLOCK_D=op.block_d, CAUSAL=self.causal, BIAS=self.bias)
        bufs: dict[str, Any] = {}

        def buffer(t: Any, shape: tuple[int, ...]) -> Any:
            # a broadcast operand's gradient is summed afterwards: accumulate it wider
            dtype = t.dtype if tuple(t.shape) == shape else op.acc
            return torch.empty(shape, dtype=dtype, device=dev)

        if grads_of[1] or grads_of[2]:
            dk = bufs["dk"] = buffer(op.k, (B, H, S, D))
            dv = bufs["dv"] = buffer(op.v, (B, H, S, D))
            launches.append(_Launch(
                "dkdv", (-(-S // tkv.block_n) * B * H if D else 0,),
                [*ptrs, do, lse, delta, dk, dv, *scales, *rest, *sg, *dk.stride()[:3],
                 *dv.stride()[:3]],
                dict(common, BLOCK_M=tkv.block_m, BLOCK_N=tkv.block_n, IEEE=op.ieee), tkv))
        store_ds = self.bias == 2 and grads_of[3]
        if grads_of[0] or store_ds:
            dq = bufs["dq"] = buffer(op.q, (B, H, L, D))
            ds = bufs["ds"] = torch.empty((B, H, L, S) if store_ds else (1,), dtype=op.acc,
                                          device=dev)
            launches.append(_Launch(
                "dq", (-(-L // tq.block_m) * B * H if D else 0,),
                [*ptrs, do, lse, delta, dq, ds, *scales, *rest, *sg, *dq.stride()[:3]],
                dict(common, BLOCK_M=tq.block_m, BLOCK_N=tq.block_n, STORE_DS=store_ds,
                     IEEE=op.ieee), tq))
            if not D:  # no features: the scores are the bias alone, and dO is empty
                ds.zero_()
        return launches, bufs

    # ------------------------------------------------------------------ specs
    def _spec(self, launch: _Launch) -> KernelSpec:
        """The launch's kernel as Triton compiles it (``launch_spec``: an integer equal to 1 is
        a constant, those divisible by 16 and aligned pointers are marked so); the scales
        are f64 arguments (their annotation)."""
        t = launch.tiles
        sp = launch_spec(self.names[launch.kernel], self.sources[launch.kernel], launch.args,
                         launch.consts, t.num_warps, t.num_stages)
        sig = {p: "fp64" if p in _FP64_ARGS else ty for p, ty in sp.signature.items()}
        return replace(sp, signature=sig)

    def specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) compiles: the forward."""
        return [self._spec(self._forward_plan(values)[0])]

    def backward_specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a backward with ``values`` (real or meta tensors) compiles when every
        operand, and an additive bias, needs its gradient: delta's, dK/dV's and dQ's (which
        also stores dS for the bias)."""
        launch, out, lse = self._forward_plan(values)
        do = torch.empty_like(out)
        launches, _ = self._backward_plan(values, out, lse, do, (True, True, True, True))
        return [self._spec(x) for x in launches]

    # ------------------------------------------------------------------ launching
    def _run(self, launch: _Launch) -> None:
        if not launch.grid[0]:
            return
        kernel = self._kernels.get(launch.kernel)
        if kernel is None:
            with _LOCK:
                kernel = self._kernels.get(launch.kernel)
                if kernel is None:
                    kernel = self._kernels[launch.kernel] = _compile(
                        self.names[launch.kernel], self.sources[launch.kernel])
        t = launch.tiles
        kernel[launch.grid](*launch.args, **launch.consts, num_warps=t.num_warps,
                            num_stages=t.num_stages)

    def __call__(self, *values: Any) -> Any:
        """Launch the forward: its output (the row log-sum-exp is kept for
        ``forward_saving``, which launches through here, and dropped otherwise)."""
        launch, out, lse = self._forward_plan(values)
        self.launches += 1
        self._run(launch)
        if getattr(self._saving, "on", False):
            self._saving.lse = lse
        return out

    def forward_saving(self, *values: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The output, and what the backward reads: the output and each row's log-sum-exp
        (base 2, f32; f64 for f64 data)."""
        self._saving.on = True
        try:
            out = self(*values)
            lse = self._saving.lse
        finally:
            self._saving.on = False
            self._saving.lse = None
        return (out,), (out, lse)

    def backward(self, ins: tuple[Any, ...], saved: tuple[Any, ...],
                 grads: tuple[Any, ...], needs: tuple[bool, ...]) -> tuple[Any, ...]:
        """The gradients of the inputs ``needs`` asks for (None for the others, and for the
        scale): query, key and value, and an additive bias's (a bool mask has none), each
        summed over the dims it was broadcast along."""
        (do,) = grads
        res: list[Any] = [None] * len(ins)
        roles = (self._q, self._k, self._v, self._m if self.bias == 2 else None)
        wanted = tuple(i is not None and bool(needs[i]) for i in roles)
        if do is None or not any(wanted):
            return tuple(res)
        out, lse = saved
        launches, bufs = self._backward_plan(ins, out, lse, do, wanted)  # type: ignore[arg-type]
        for launch in launches:
            self._run(launch)
        for i, name, want in zip(roles, ("dq", "dk", "dv", "ds"), wanted):
            if not want or i is None:
                continue
            x = ins[i]
            g = bufs[name]
            if tuple(g.shape) != tuple(x.shape):
                g = g.sum_to_size(x.shape)
            g = g.to(x.dtype)
            res[i] = g if res[i] is None else res[i] + g
        return tuple(res)


def _backward_sources(name: str) -> dict[str, str]:
    """The backward kernels' sources, by role: each defines its kernel first (its spec's
    parameters are the first definition's), then the helpers all three share."""
    text = template("attention_bwd.py").replace("KERNEL_NAME", name)
    head, *defs = text.split("\n@triton.jit\n")
    kernels = {d.split("(", 1)[0].removeprefix(f"def {name}_"): d for d in defs
               if d.startswith(f"def {name}_")}
    helpers = [d for d in defs if not d.startswith(f"def {name}_")]
    return {role: "\n@triton.jit\n".join([head, body, *helpers])
            for role, body in kernels.items()}


__all__ = ["MAX_HEAD_DIM", "AttentionLauncher", "Tiles", "attention_tiles"]
