"""Matrix products with a fused epilogue: the launcher of a ``matmul`` ``KERNEL`` eqn, and
``mm``, the plain product the backward pass uses, from the template ``kernels/matmul.py``
(and ``kernels/matmul_tma.py`` on Hopper).

A ``MatmulKernel`` is one instance of the templates: the product with its generated epilogue,
in two variants. ``generic`` runs everywhere (sm_80 and later, and Triton's interpreter);
``tma`` is chosen on a GPU of compute capability 9.0 for f16 and bf16 operands whose tiles the
Tensor Memory Accelerator can copy (``tl.make_tensor_descriptor``), when the problem is at
least one 64 x 64 tile. The tile configuration (``BLOCK_M, BLOCK_N, BLOCK_K, num_warps,
num_stages``) comes from per-dtype lists: f16 and bf16 on the tensor cores, f32 with IEEE
products on the FMA units (tiles shallower along K), for operands Triton reads in vectors
(``MATMUL_CONFIGS``) or not (``UNALIGNED_CONFIGS``: smaller tiles or more warps), and
``TMA_CONFIGS`` for the Hopper variant. Every listed configuration compiles for sm_80 and
sm_90 without spilling registers, in every operand layout, also with a bias, GELU and
residual epilogue: the accumulator holds at most 64 values per thread. On a GPU the
candidates of a problem's size bucket are timed once and the winner is remembered per (GPU,
dtype, layout, bucket), in memory and on disk (``gtdsl.lower.triton.tuning``); Triton's
interpreter runs one small tile.

Kernels index with 32-bit offsets; ``ok`` bounds the largest offset each operand is read or
written at, from the sizes and strides (rows and columns past the edge are read at offset
0 again, or masked), so a launch needs no scan of its arguments.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.ir.core import Var
from gtdsl.lower.triton.base import (
    INT32, Group, KernelSpec, _Body, _compile, _torch_dtype, _var, interpreting, launch_spec,
    template, triton_modules,
)
from gtdsl.lower.triton.fusion import _args, op_name, tensor_of
from gtdsl.lower.triton.tuning import Tuner, TuningKey, bucket, default_tuner

# BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages (and, in TMA_CONFIGS, WARP_SPECIALIZE)
Config = tuple[int, ...]

# f16 and bf16 on the tensor cores: the tile shapes of Triton's matmul tutorial and
# Inductor's mm configurations, with warps enough that the f32 accumulator is at most 64
# values per thread (128 values spill with a GELU epilogue).
_TENSOR_CORES: tuple[Config, ...] = (
    (128, 128, 32, 8, 3), (128, 128, 64, 8, 3), (64, 256, 32, 8, 3), (256, 64, 32, 8, 3),
    (128, 64, 32, 4, 4), (64, 128, 32, 4, 4), (128, 64, 64, 4, 3), (64, 128, 64, 4, 3),
    (64, 64, 32, 4, 4), (64, 64, 64, 4, 3), (32, 64, 32, 4, 4), (64, 32, 32, 4, 4),
    (32, 32, 32, 4, 3), (16, 64, 64, 4, 3),
)
# f32 with IEEE products, on the FMA units: each thread holds its rows of A and columns of B
# for a whole BLOCK_K step, so the tiles are shallower along K.
_IEEE: tuple[Config, ...] = (
    (128, 128, 16, 8, 3), (128, 128, 8, 8, 3), (128, 64, 16, 8, 3), (64, 128, 16, 8, 3),
    (128, 64, 8, 4, 3), (64, 64, 16, 4, 4), (64, 64, 8, 4, 4), (32, 64, 32, 4, 3),
    (64, 32, 32, 4, 3), (32, 32, 32, 4, 3), (32, 32, 16, 4, 3),
)
MATMUL_CONFIGS: dict[str, tuple[Config, ...]] = {"f16": _TENSOR_CORES, "bf16": _TENSOR_CORES,
                                                 "f32": _IEEE}
# Operands Triton cannot load in vectors (a size or stride along which a tile is read or
# written that is not a multiple of 16, a pointer not 16-byte aligned, or no unit stride):
# every element has its own address register, so the tiles are smaller or the warps more.
_TENSOR_CORES_UNALIGNED: tuple[Config, ...] = (
    (128, 64, 32, 8, 3), (64, 128, 32, 8, 3), (64, 64, 64, 8, 3), (64, 64, 32, 8, 3),
    (64, 64, 32, 4, 4), (32, 64, 32, 4, 4), (64, 32, 32, 4, 4), (32, 32, 32, 4, 3),
    (16, 64, 64, 4, 3),
)
_IEEE_UNALIGNED: tuple[Config, ...] = (
    (64, 128, 8, 8, 3), (128, 32, 16, 8, 3), (64, 64, 16, 8, 3), (32, 64, 16, 8, 3),
    (64, 32, 16, 8, 3), (32, 32, 16, 4, 3), (32, 32, 8, 4, 3),
)
UNALIGNED_CONFIGS: dict[str, tuple[Config, ...]] = {
    "f16": _TENSOR_CORES_UNALIGNED, "bf16": _TENSOR_CORES_UNALIGNED, "f32": _IEEE_UNALIGNED}
# the Hopper variant: warpgroup MMAs (4 warps per 64 rows); with WARP_SPECIALIZE (the last
# field) Triton 3.9 gives a 4-warp kernel a producer warpgroup that issues the tensor-memory
# copies and two consumer warpgroups (384 threads, registers moved to the consumers); it
# leaves 8-warp kernels as they are, fails to compile 64x256 tiles, and spills 128x256 ones
# with a GELU epilogue.
TMA_CONFIGS: tuple[Config, ...] = (
    (128, 128, 64, 8, 3, 0), (128, 128, 64, 8, 4, 0), (64, 256, 64, 8, 3, 0),
    (128, 64, 64, 4, 4, 0), (64, 128, 64, 4, 4, 0), (64, 64, 64, 4, 4, 0),
    (128, 128, 64, 4, 3, 1), (128, 128, 64, 4, 4, 1), (128, 64, 64, 4, 4, 1),
    (64, 128, 64, 4, 4, 1),
)
INTERPRETER_CONFIG: Config = (16, 16, 16, 4, 1)
# a gradient product computes its operand A in registers (``MatmulKernel``'s ``operand_a``):
# each of its operands is a [BLOCK_M, BLOCK_K] tile in f32 and its loads feed arithmetic
# before the dot, so the tiles are at most 32 deep and the pipeline 2 stages (deeper ones
# spill with a GELU derivative at 128 x 64 and larger tiles)
COMPUTED_A_DEPTH = 32
COMPUTED_A_STAGES = 2
COMPUTED_A_MAXNREG = {"f32": 255, "small": 128}  # see MatmulKernel.maxnreg
GROUP_M = 8
SMALL_TILE = 32  # a bucket below this many rows/columns/depth runs tiles of at most this
# the shared memory one block may use, by compute capability (bytes, with the opt-in)
SHARED_MEMORY = {(8, 0): 166912, (8, 6): 101376, (8, 7): 166912, (8, 9): 101376,
                 (9, 0): 232448}
_DTYPES = {torch.float16: "f16", torch.bfloat16: "bf16", torch.float32: "f32"}


def has_tma() -> bool:
    """Whether the installed Triton makes tensor descriptors on the device."""
    _, tl = triton_modules()
    return hasattr(tl, "make_tensor_descriptor")


def candidates(dtype: torch.dtype, variant: str, size_bucket: tuple[int, ...],
               target: tuple[int, int], vectors: bool = True) -> list[Config]:
    """The configurations tried for a problem of ``dtype`` in ``size_bucket`` on ``target``:
    the dtype's (or the variant's) list for operands read in ``vectors`` (see
    ``Plan.layout``) or not, without tiles larger than the problem's bucket (beyond ``SMALL_TILE``) or needing
    more shared memory than the target has."""
    lists = MATMUL_CONFIGS if vectors else UNALIGNED_CONFIGS
    configs = TMA_CONFIGS if variant == "tma" else lists[_DTYPES[dtype]]
    limit = SHARED_MEMORY.get(target, min(SHARED_MEMORY.values()))
    size = dtype.itemsize
    floor = 64 if variant == "tma" else SMALL_TILE
    out = [c for c in configs
           if all(b <= max(s, floor) for b, s in zip(c[:3], size_bucket))
           and c[4] * (c[0] * c[2] + c[2] * c[1]) * size <= limit]
    return out or [min(configs, key=lambda c: c[0] * c[1] * c[2])]


def _storage(t: torch.Tensor) -> str:
    """How a 2-D operand is stored: ``r`` with unit stride along its rows (row-major), ``c``
    along its columns, ``s`` neither."""
    s0, s1 = t.stride()
    return "r" if s1 == 1 else "c" if s0 == 1 else "s"


def aligned(t: torch.Tensor) -> bool:
    """Triton's launch specialization lets ``t`` be read in vectors: a 16-byte aligned base
    and strides of 0, 1 or multiples of 16 elements."""
    return t.data_ptr() % 16 == 0 and all(s in (0, 1) or s % 16 == 0 for s in t.stride())


@dataclass(frozen=True, slots=True)
class Plan:
    """How one launch runs: the sizes, the kernel's runtime arguments, the outputs, and what
    selects the kernel (dtype, layout, size bucket)."""

    m: int
    n: int
    k: int
    args: tuple[Any, ...]
    outs: tuple[torch.Tensor, ...]
    dtype: torch.dtype
    # A's and B's storage (``_storage``), then "u" where Triton cannot read or write some
    # tile in vectors: a pointer or stride of A, B or the epilogue operands not aligned
    # (``aligned``), N not a multiple of 16 (C's rows), K where A's rows or B's columns are
    # read along it, M where A's columns are
    layout: str
    bucket: tuple[int, ...]  # M, N and K rounded up (``tuning.bucket``)
    device: torch.device


@dataclass(frozen=True, slots=True)
class _Launch:
    """A chosen kernel for one class of launches: the compiled function, its configuration,
    and its keyword arguments (constants and launch options) for K not divisible and
    divisible by BLOCK_K."""

    fn: Any
    config: Config
    consts: tuple[dict[str, Any], dict[str, Any]]
    tma: bool


_DEVICE_NAMES: dict[int, str] = {}


def _device_name(device: torch.device) -> str:
    if device.type != "cuda":
        return "interpreter"
    index = device.index if device.index is not None else torch.cuda.current_device()
    name = _DEVICE_NAMES.get(index)
    if name is None:
        name = _DEVICE_NAMES[index] = torch.cuda.get_device_name(index)
    return name


def _capability(device: torch.device) -> tuple[int, int]:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major, minor
    major, minor = torch.cuda.get_device_capability()
    return major, minor


class MatmulKernel:
    """The templates instantiated with one epilogue: ``C = epilogue(A @ B)`` for 2-D ``A``
    [M, K] and ``B`` [K, N] of any strides.

    ``params`` is the epilogue's parameter text (``#@params``), ``epilogue`` its statements
    (``#@epilogue``). ``operand_a`` (a gradient product's) replaces the loads of A with
    statements that compute its tile (``#@operand_a``), with ``before_loop`` statements
    ahead of the main loop; such a kernel has the generic variant only, and its tuning
    results are kept under the kind ``tuning``. ``tuner`` None uses the process's tuner (``tuning.default_tuner``);
    ``target`` set makes Triton's interpreter run (and tune, with ``tuner``) the candidates a
    GPU of that compute capability runs, as tests do."""

    def __init__(self, name: str, params: str = "", epilogue: tuple[str, ...] = (),
                 operand_a: tuple[str, ...] | None = None, before_loop: tuple[str, ...] = (),
                 tuning: str = "matmul") -> None:
        self.name = name
        self.sources = {"generic": _render(template("matmul.py"), name, params, epilogue,
                                           operand_a, before_loop)}
        if operand_a is None:  # the Hopper template loads A through a tensor descriptor
            self.sources["tma"] = _render(template("matmul_tma.py"), name, params, epilogue)
        self.tuning = tuning  # the kind of the tuning cache's keys
        self.computes_a = operand_a is not None
        self.tuner: Tuner | None = None
        self.target: tuple[int, int] | None = None
        self._fns: dict[str, Any] = {}
        self._chosen: dict[tuple[Any, ...], _Launch] = {}
        self._lock = threading.Lock()

    # --------------------------------------------------------------- planning

    def plan(self, a: torch.Tensor, b: torch.Tensor, outs: tuple[torch.Tensor, ...],
             epilogue_args: tuple[Any, ...] = (), epilogue_aligned: bool = True) -> Plan:
        """The launch of ``outs[-1] = epilogue(a @ b)`` (the other outputs, contiguous too,
        are stored by the epilogue) with ``epilogue_args`` for the epilogue's parameters,
        whose tensors are all ``aligned`` or not."""
        (m, k), n = a.shape, b.shape[1]
        c = outs[-1]
        args = (a, b, c, m, n, k, *a.stride(), *b.stride(), *c.stride(), *epilogue_args,
                *outs[:-1])
        ka, kb = _storage(a), _storage(b)
        vectors = epilogue_aligned and "s" not in (ka, kb) and n % 16 == 0 and \
            not (k % 16 and (ka == "r" or kb == "c")) and not (m % 16 and ka == "c") and \
            aligned(a) and aligned(b)
        return Plan(m, n, k, args, outs, a.dtype, ka + kb + ("" if vectors else "u"),
                    bucket(m, n, k), a.device)

    def variant(self, plan: Plan, target: tuple[int, int] | None) -> str:
        """``tma`` where the Hopper template applies (see the module's docstring), else
        ``generic``."""
        if "tma" not in self.sources or target != (9, 0) or \
                plan.dtype not in (torch.float16, torch.bfloat16) or \
                plan.layout.endswith("u") or not plan.k or plan.bucket[0] < 64 or \
                plan.bucket[1] < 64 or not has_tma():
            return "generic"
        return "tma"

    def choices(self, plan: Plan, target: tuple[int, int] | None) -> tuple[str, list[Config]]:
        """The variant and the candidate configurations a launch for ``target`` (None:
        Triton's interpreter) picks from."""
        if target is None:
            return "generic", [INTERPRETER_CONFIG]
        variant = self.variant(plan, target)
        configs = candidates(plan.dtype, variant, plan.bucket, target,
                             not plan.layout.endswith("u"))
        if self.computes_a:  # A's tiles are computed in registers, not copied ahead
            configs = list(dict.fromkeys(
                (c[0], c[1], min(c[2], COMPUTED_A_DEPTH), c[3], min(c[4], COMPUTED_A_STAGES),
                 *c[5:]) for c in configs))
        return variant, configs

    def constexprs(self, plan: Plan, variant: str, config: Config,
                   interpreter: bool) -> dict[str, Any]:
        """The compile-time constants of a launch (EVEN_K included)."""
        bm, bn, bk = config[:3]
        consts: dict[str, Any] = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk,
                                  "GROUP_M": GROUP_M}
        if variant == "tma":
            consts.update(A_ROWS=plan.layout[0] == "r", B_ROWS=plan.layout[1] == "r",
                          WARP_SPECIALIZE=bool(config[5]))
        else:
            consts["EVEN_K"] = plan.k % bk == 0
        consts["DOT_F32"] = interpreter or plan.dtype == torch.float32
        return consts

    def _target(self, plan: Plan) -> tuple[int, int] | None:
        """The compute capability a launch of ``plan`` compiles for; None in Triton's
        interpreter (unless ``target`` says which GPU's candidates it runs)."""
        if interpreting():
            return self.target
        return _capability(plan.device)

    def specs(self, plan: Plan, target: tuple[int, int] | None = None) -> list[KernelSpec]:
        """The kernels a launch of ``plan`` compiles for ``target`` (a compute capability;
        None: where this process launches): every candidate configuration."""
        # without a target: what this process launches (the interpreter multiplies in f32)
        interpreter = target is None and interpreting()
        if target is None:
            target = self._target(plan)
        variant, configs = self.choices(plan, target)
        source = self.sources[variant]
        return [dataclasses.replace(launch_spec(self.name, source, plan.args, self.constexprs(
            plan, variant, cfg, interpreter), cfg[3], cfg[4]), maxnreg=self.maxnreg(plan, cfg))
            for cfg in configs]

    def maxnreg(self, plan: Plan, config: Config) -> int | None:
        """The register cap a launch of ``plan`` with ``config`` passes to ptxas
        (``.maxnreg``): None (ptxas's own choice) but for products that compute A, which
        ptxas, left to itself, may give fewer registers than they need (for occupancy),
        spilling a few bytes: f32 ones (FMA products) may use every register, f16 and bf16
        ones with an accumulator of at most 16 values per thread 128."""
        if not self.computes_a:
            return None
        if plan.dtype == torch.float32:
            return COMPUTED_A_MAXNREG["f32"]
        if config[0] * config[1] <= 16 * 32 * config[3]:
            return COMPUTED_A_MAXNREG["small"]
        return None

    # --------------------------------------------------------------- launching

    def _fn(self, variant: str) -> Any:
        fn = self._fns.get(variant)
        if fn is None:
            with self._lock:
                fn = self._fns.get(variant)
                if fn is None:
                    fn = self._fns[variant] = _compile(self.name, self.sources[variant])
        return fn

    def prepared(self, plan: Plan, variant: str, config: Config) -> _Launch:
        """The launch of ``plan``'s class (its device, dtype, layout, bucket) in ``variant``
        with ``config``: the compiled function and its constants, decided once."""
        fn = self._fn(variant)
        options = {"num_warps": config[3], "num_stages": config[4]}
        maxnreg = self.maxnreg(plan, config)
        if maxnreg is not None:
            options["maxnreg"] = maxnreg
        consts = self.constexprs(plan, variant, config, interpreting())
        by_even_k = ({**consts, "EVEN_K": False, **options}, {**consts, "EVEN_K": True, **options})
        if variant == "tma":
            by_even_k = ({**consts, **options},) * 2
        return _Launch(fn, config, by_even_k, variant == "tma")

    def run(self, plan: Plan, launch: _Launch) -> None:
        """Launch ``plan`` as ``launch`` says (its outputs have elements)."""
        bm, bn, bk = launch.config[:3]
        if launch.tma:
            _ensure_allocator()
        launch.fn[((plan.m + bm - 1) // bm * ((plan.n + bn - 1) // bn),)](
            *plan.args, **launch.consts[plan.k % bk == 0])

    def _choose(self, plan: Plan) -> _Launch:
        """The launch of ``plan``'s class: its only candidate, or the tuner's choice (timed
        on a GPU, or in Triton's interpreter when a test sets ``target`` and ``tuner``)."""
        variant, configs = self.choices(plan, self._target(plan))
        if len(configs) == 1 or (interpreting() and self.tuner is None):
            return self.prepared(plan, variant, configs[0])
        tuner = self.tuner or default_tuner()
        key = TuningKey(self.tuning, _device_name(plan.device), _DTYPES[plan.dtype],
                        f"{plan.layout}/{variant}", plan.bucket)
        chosen = tuner.choose(key, configs, lambda cfg: lambda: self.run(
            plan, self.prepared(plan, variant, cfg)))
        return self.prepared(plan, variant, chosen)

    def launch(self, plan: Plan) -> None:
        """Run ``plan`` (outputs of no elements launch nothing)."""
        if not plan.m or not plan.n:
            return
        key = (plan.device, plan.dtype, plan.layout, plan.bucket)
        chosen = self._chosen.get(key)
        if chosen is None:
            chosen = self._chosen[key] = self._choose(plan)
        self.run(plan, chosen)


def _render(text: str, name: str, params: str, epilogue: tuple[str, ...],
            operand_a: tuple[str, ...] | None = None, before_loop: tuple[str, ...] = ()) -> str:
    """A template with its name, parameter line, epilogue and (a gradient product's) operand
    A's statements filled in."""
    lines: list[str] = []
    replacing = False  # inside #@operand_a ... #@end, with statements of the generator's
    for line in text.replace("KERNEL_NAME", name).splitlines():
        mark = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if mark == "#@params":
            if params:
                lines.append(line.replace("#@params", params.rstrip()))
        elif mark == "#@epilogue":
            lines += [indent + s for s in epilogue]
        elif mark == "#@before_loop":
            lines += [indent + s for s in before_loop]
        elif mark == "#@operand_a":
            if operand_a is not None:
                replacing = True
                lines += [indent + s for s in operand_a]
        elif mark == "#@end":
            replacing = False
        elif not replacing:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _ensure_allocator() -> None:
    """Tensor descriptors made on the device need Triton's scratch allocator: set one that
    allocates with torch where none is set (in this thread)."""
    import triton

    try:
        from triton.runtime._allocation import NullAllocator, _allocator
    except ImportError:  # another Triton's layout: set ours
        pass
    else:
        if not isinstance(_allocator.get(), NullAllocator):
            return
    triton.set_allocator(_torch_allocation)


def _torch_allocation(size: int, alignment: int, stream: int | None) -> torch.Tensor:
    return torch.empty(size, dtype=torch.int8, device="cuda")


def offsets_fit(m: int, n: int, k: int, sa: tuple[int, ...], sb: tuple[int, ...],
                tiles: list[tuple[int, int, int, int]]) -> bool:
    """Every offset a launch reads or writes in bounds fits 32 bits: A (strides ``sa``) at
    (M-1, K-1), B (``sb``) at (K-1, N-1), each epilogue operand ``(rows, cols, row stride,
    col stride)`` at its last element, and the contiguous M x N outputs. (Rows and columns
    past the edge are read at row and column 0, or masked.)"""
    if m * n - 1 > INT32:
        return False
    if (m - 1) * sa[0] + (k - 1) * sa[1] > INT32 or (k - 1) * sb[0] + (n - 1) * sb[1] > INT32:
        return False
    return all((r - 1) * sr + (c - 1) * sc <= INT32 for r, c, sr, sc in tiles)


def _view2d(t: torch.Tensor, cols: int) -> torch.Tensor | None:
    """``t`` as a [rows, cols] view without copying, or None where that needs a copy."""
    if t.dim() == 2:
        return t
    try:
        return t.view(-1, cols)
    except RuntimeError:
        return None


def _strides2d(t: torch.Tensor, cols: int) -> tuple[int, ...]:
    """The strides of ``t`` as a [rows, cols] matrix (a copy, when ``reshape`` makes one, is
    contiguous)."""
    v = _view2d(t, cols)
    return v.stride() if v is not None else (cols, 1)


class MatmulLauncher:
    """A matrix product with its epilogue, from the ``kernels/matmul.py`` template."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.mm = next(e for e in group.eqns if op_name(e) in ("matmul", "linear"))
        self.t = next((e for e in group.eqns if op_name(e) == "T"), None)
        args = _args(self.mm)
        self.is_linear = op_name(self.mm) == "linear"
        # the operands are vars: a kernel's inputs, or the output of the T folded into it
        self.lhs = _var(args["input"])
        self.rhs = _var(args["weight"] if self.is_linear else args["other"])
        self.t_input = _var(self.t.ins[0]) if self.t is not None else None
        bias = args.get("bias")
        self.bias = bias if self.is_linear and isinstance(bias, Var) else None
        body = _Body(group, "tl.float32")
        used = {a.id for e in group.eqns if e is not self.mm and e is not self.t
                for a in e.ins if isinstance(a, Var)}
        if self.bias is not None:
            used.add(self.bias.id)
        self.extra = [a for a in body.tensor_inputs if a.id in used]
        # an epilogue operand of one dim is a vector along N (a bias), loaded once per tile
        # column; the others have the product's shape
        self.vector = [len(tensor_of(a).shape.dims) == 1 and tensor_of(a).shape.row is None
                       for a in self.extra]
        self.scalars = body.scalar_inputs
        self.out_dtypes = [_torch_dtype(o) for o in group.outputs]
        self._ids = [a.id for a in group.inputs]
        self.launches = 0
        self.name = f"gtdsl_{group.name}"
        self.kernel = MatmulKernel(self.name, *self._epilogue())
        self.source = self.kernel.sources["generic"]

    def _epilogue(self) -> tuple[str, tuple[str, ...]]:
        """The epilogue's parameter text and statements."""
        g = self.group
        body = _Body(g, "tl.float32")
        body.names = {}
        params = ""
        lines = []
        for i, (a, vector) in enumerate(zip(self.extra, self.vector)):
            body.names[a.id] = f"e{i}"
            if vector:
                params += f"e{i}_ptr, e{i}_sn, "
                lines.append(f"e{i} = tl.load(e{i}_ptr + offs_n * e{i}_sn, mask=offs_n < N, "
                             "other=0.0).to(tl.float32)[None, :]")
            else:
                params += f"e{i}_ptr, e{i}_sm, e{i}_sn, "
                lines.append(f"e{i} = tl.load(e{i}_ptr + (offs_m[:, None] * e{i}_sm + "
                             f"offs_n[None, :] * e{i}_sn), mask=mask, other=0.0)"
                             ".to(tl.float32)")
        for i, a in enumerate(self.scalars):
            body.names[a.id] = f"s{i}"
            params += f"s{i}, "
        outs = g.outputs
        params += "".join(f"o{j}_ptr, " for j in range(len(outs) - 1))
        mm_out = self.mm.outs[0]
        pre = f"v{mm_out.id}"
        lines.append(f"{pre} = acc")
        if self.bias is not None:
            lines.append(f"{pre} = {pre} + {body.names[self.bias.id]}")
        body.names[mm_out.id] = pre
        lines += body.statements()
        for j, o in enumerate(outs[:-1]):
            lines.append(f"tl.store(o{j}_ptr + (offs_m[:, None] * stride_cm + offs_n[None, :] "
                         f"* stride_cn), {body.names[o.id]}.to(o{j}_ptr.dtype.element_ty), "
                         "mask=mask)")
        lines.append(f"v = {body.names[outs[-1].id]}")
        return params, tuple(lines)

    def _rhs(self, vals: dict[int, Any]) -> torch.Tensor:
        """B [K, N]: ``w.T`` read in place for ``x @ w.T`` and ``linear``."""
        if self.t_input is not None:
            return vals[self.t_input.id].t()
        w = vals[self.rhs.id]
        return w.t() if self.is_linear else w

    def ok(self, *values: Any) -> bool:
        """Whether the kernel's 32-bit offsets reach every element (``offsets_fit``)."""
        vals = dict(zip(self._ids, values))
        x = vals[self.lhs.id]
        b = self._rhs(vals)
        k, n = b.shape
        m = math.prod(x.shape[:-1])
        tiles = []
        for e, vector in zip(self.extra, self.vector):
            t = vals[e.id]
            tiles.append((1, n, 0, t.stride(0)) if vector else (m, n, *_strides2d(t, n)))
        return offsets_fit(m, n, k, _strides2d(x, k), b.stride(), tiles)

    def _plan(self, values: tuple[Any, ...]) -> tuple[Plan, tuple[int, ...]]:
        """How ``values`` launch, and the outputs' leading shape."""
        vals = dict(zip(self._ids, values))
        x = vals[self.lhs.id]
        b = self._rhs(vals)
        k, n = b.shape
        lead = tuple(x.shape[:-1])
        m = math.prod(lead)
        a = x if x.dim() == 2 else x.reshape(m, k)
        outs = tuple(torch.empty((m, n), dtype=dt, device=x.device) for dt in self.out_dtypes)
        eargs: list[Any] = []
        vectors = True
        for e, vector in zip(self.extra, self.vector):
            t = vals[e.id]
            if not vector and t.dim() != 2:
                t = t.reshape(m, n)
            eargs += [t, *t.stride()[-1 if vector else 0:]]
            vectors = vectors and aligned(t)
        eargs += [vals[s.id] for s in self.scalars]
        return self.kernel.plan(a, b, outs, tuple(eargs), vectors), lead

    def specs(self, *values: Any, target: tuple[int, int] | None = None) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) compiles: one per
        candidate configuration of its size bucket, in the template variant ``target`` (a
        compute capability such as ``(9, 0)``; None: this process's GPU, or Triton's
        interpreter) runs."""
        plan, _ = self._plan(values)
        return self.kernel.specs(plan, target)

    def __call__(self, *values: Any) -> Any:
        plan, lead = self._plan(values)
        self.launches += 1
        self.kernel.launch(plan)
        shaped = [o.view(*lead, plan.n) for o in plan.outs]
        return shaped[0] if len(shaped) == 1 else tuple(shaped)


# ====================================================================== the plain product


@functools.cache
def _mm_kernel() -> MatmulKernel:
    return MatmulKernel("gtdsl_mm")


def _mm_takes(a: torch.Tensor, b: torch.Tensor, launch: bool = True) -> bool:
    """Whether ``mm``'s kernel takes ``a`` and ``b``: 2-D, one float dtype it multiplies,
    one device it runs on (a GPU, or the CPU in Triton's interpreter; META tensors when
    only planning), matching inner sizes, 32-bit offsets, no gradient to record."""
    if a.dim() != 2 or b.dim() != 2 or a.dtype != b.dtype or a.dtype not in _DTYPES or \
            a.device != b.device or a.shape[1] != b.shape[0]:
        return False
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return False
    if a.device.type != "cuda" and not (a.device.type == "meta" and not launch) and \
            not (a.device.type == "cpu" and not torch.cuda.is_available()):
        return False
    (m, k), n = a.shape, b.shape[1]
    return offsets_fit(m, n, k, a.stride(), b.stride(), [])


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for 2-D ``a`` [M, K] and ``b`` [K, N] of any strides (transposed views are
    read in place), f16, bf16 or f32 (IEEE products, as torch's default), by the matmul
    template with the same configurations and tuning as fused products. Operands the kernel
    does not take (other ranks or dtypes, mixed devices, offsets over 32 bits, operands that
    need gradients: a kernel records no autograd graph) go to ``torch.matmul``."""
    if not _mm_takes(a, b):
        return torch.matmul(a, b)
    out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)
    kernel = _mm_kernel()
    kernel.launch(kernel.plan(a, b, (out,), ()))
    return out


def mm_specs(a: torch.Tensor, b: torch.Tensor,
             target: tuple[int, int] | None = None) -> list[KernelSpec]:
    """The kernels ``mm(a, b)`` compiles (real or meta tensors), for ``target`` as in
    ``MatmulLauncher.specs``; none where ``mm`` goes to ``torch.matmul``."""
    if not _mm_takes(a, b, launch=False):
        return []
    out = torch.empty((a.shape[0], b.shape[1]), dtype=a.dtype, device=a.device)
    kernel = _mm_kernel()
    return kernel.specs(kernel.plan(a, b, (out,), ()), target)


__all__ = ["GROUP_M", "INTERPRETER_CONFIG", "MATMUL_CONFIGS", "SHARED_MEMORY", "TMA_CONFIGS",
           "UNALIGNED_CONFIGS", "MatmulKernel", "MatmulLauncher", "Plan", "aligned",
           "candidates", "has_tma", "mm", "mm_specs", "offsets_fit"]
