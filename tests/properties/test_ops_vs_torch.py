"""The static rules equal torch (docs/language.md, "The op set"; docs/types.md, "Dtypes and
devices").

For every op in ``OPS`` a hypothesis strategy draws concrete arguments (shapes of rank 0..4
with sizes 0..5, broadcast-compatible or deliberately not, every dtype, dims by position,
negative, out of range or by label, flags); the same call runs through the op's relation and
through the torch callable the op names (``OpDef.torch``). torch runs on tiny CPU tensors
(at most 5**4 elements), and on the meta device where the CPU fails on the data: meta
kernels accept dtypes that no real kernel implements (gelu of bool, softmax of ints, randn
of ints) and skip checks (``broadcast_to(x, (-1, 3))`` gives a size of -1), so the CPU is
the reference and meta only stands in where the CPU's error is about values (an index out
of range). Every size is a literal, so:

- torch returns ⇒ the relation returns exactly torch's metadata: dtype, sizes and device (cpu
  and meta alike), tuples elementwise, a ``list[...]`` by its element type;
- torch raises ⇒ the relation raises ``OpError``. A residual runtime check is not enough,
  since no size is unknown; the exceptions are errors about values (an index out of range,
  how many elements a mask selects), which torch raises when the op runs.

Intentional divergences are listed where they are filtered: ``EMPTY_SKIPS`` (torch returns
early on empty inputs, before its dtype and shape checks), ``_c32_kernel_missing`` (CPU
kernels missing for complex32 and bcomplex32), ``_cpu_kernel_missing`` (one release's CPU
gap) and, in the strategies, value checks that types do not model
(a zero integer divisor, a fill value that overflows the dtype), torch.cat's skipping of
1-dim empty tensors, einsum's path-dependent dtypes, linear's path-dependent bias rules.

Data-dependent ops (``nonzero``, ``masked_select``, ``unique``, indexing by a bool mask) agree
with torch on rank and dtype and leave the data-dependent size unknown.

Promotion is checked exhaustively: every ordered pair of concrete dtypes, as tensors, 0-dim
tensors and Python numbers, against ``torch.result_type``.
"""

from __future__ import annotations

import importlib
import itertools
import math
import operator
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from gtdsl.ops import COMPARE, OPS, Arg, OpError, Rel, bind
from gtdsl.ops.base import UNKNOWN
from gtdsl.types import (
    CPU, DT, Dev, ScalarKind, Size, TDim, TList, TOther, TScalar, TShape, TTensor, TTuple,
)
from gtdsl.types.lattice import CONCRETE_DTYPES, torch_dtypes

# ============================================================================ dtypes

DT_TORCH: dict[DT, torch.dtype] = {
    DT.F16: torch.float16, DT.BF16: torch.bfloat16, DT.F32: torch.float32,
    DT.F64: torch.float64, DT.I8: torch.int8, DT.I16: torch.int16, DT.I32: torch.int32,
    DT.I64: torch.int64, DT.U8: torch.uint8, DT.BOOL: torch.bool, DT.C32: torch.complex32,
    DT.C64: torch.complex64, DT.C128: torch.complex128,
}
if hasattr(torch, "bcomplex32"):  # torch 2.14 and newer
    DT_TORCH[DT.BC32] = torch.bcomplex32
TORCH_DT = {v: k for k, v in DT_TORCH.items()}
# the dtypes the static rules know for the installed torch are exactly the dtypes it has
TORCH_DTYPES = torch_dtypes()
assert set(DT_TORCH) == set(TORCH_DTYPES) and set(TORCH_DTYPES) <= set(CONCRETE_DTYPES)

# complex32 (and torch 2.14's bcomplex32) cannot be written in gtdsl (they only arise from
# promotion: docs/language.md, "Dtypes", lists the dtypes a program can name) and torch
# implements almost no op for them, so op inputs are drawn from the other concrete dtypes; the
# promotion test below covers them.
OP_DTYPES = tuple(d for d in TORCH_DTYPES if d not in (DT.C32, DT.BC32))
FLOATS = (DT.F16, DT.BF16, DT.F32, DT.F64)
INTS = (DT.U8, DT.I8, DT.I16, DT.I32, DT.I64)
COMPLEX = (DT.C64, DT.C128)

# ============================================================================ argument values


@dataclass(frozen=True, repr=False)
class V:
    """One argument, both ways: the ``Arg`` the relation sees and how to build torch's value
    on a given device (``"meta"`` or ``"cpu"``)."""

    arg: Arg
    make: Callable[[str], Any]
    text: str

    def __repr__(self) -> str:
        return self.text


def _const(value: Any) -> Callable[[str], Any]:
    return lambda device: value


def I(v: int) -> V:  # noqa: E743 - an int argument
    return V(Arg(TScalar(ScalarKind.INT, Size.of(v)), v), _const(v), repr(v))


def F(v: float) -> V:
    return V(Arg(TScalar(ScalarKind.FLOAT), v), _const(v), repr(v))


def B(v: bool) -> V:
    return V(Arg(TScalar(ScalarKind.BOOL), v), _const(v), repr(v))


NONE = V(Arg(TOther("none"), None), _const(None), "None")
ELLIPSIS = V(Arg(TOther("ellipsis"), Ellipsis), _const(Ellipsis), "...")


def S(v: str) -> V:
    return V(Arg(TOther("str"), v), _const(v), repr(v))


def DTYPE(dt: DT) -> V:
    return V(Arg(TOther("dtype"), dt), _const(DT_TORCH[dt]), str(dt))


# the device argument ``cpu``: on the meta run torch gets "meta", which stands for the CPU
DEVICE_CPU = V(Arg(TOther("device"), Dev("cpu")), lambda device: torch.device(device), "cpu")


def LABEL(label: str, position: int) -> V:
    """A dim given by label: the relation sees the label, torch the position it names."""
    return V(Arg(TOther("label"), UNKNOWN, label=label), _const(position), label)


def TUP(*items: V, as_list: bool = False) -> V:
    arg = Arg(TTuple(tuple(v.arg.type for v in items)), tuple(v.arg for v in items))
    kind = list if as_list else tuple
    text = ("[{}]" if as_list else "({})").format(
        ", ".join(map(repr, items)) + ("," if len(items) == 1 and not as_list else ""))
    return V(arg, lambda device: kind(v.make(device) for v in items), text)


def SLICE(start: int | None, stop: int | None, step: int | None) -> V:
    parts = tuple(NONE if p is None else I(p) for p in (start, stop, step))
    text = f"{'' if start is None else start}:{'' if stop is None else stop}" + (
        "" if step is None else f":{step}")
    return V(Arg(TOther("slice"), tuple(p.arg for p in parts)),
             _const(slice(start, stop, step)), text)


def number(v: int | float | bool) -> V:
    return B(v) if isinstance(v, bool) else I(v) if isinstance(v, int) else F(v)


def T(sizes: tuple[int, ...], dt: DT, labels: tuple[str | None, ...] | None = None,
      fill: str = "ones") -> V:
    """A tensor of these sizes: empty on meta; on the CPU ones (no division by zero),
    ``fill="zeros"`` (an index valid wherever the indexed dim is not empty) or
    ``fill="random"`` (zeros and ones, for the data-dependent ops)."""
    labels = labels or (None,) * len(sizes)
    typ = TTensor(dt, TShape(None, tuple(TDim(lb, Size.of(n)) for lb, n in zip(labels, sizes))),
                  CPU)

    def make(device: str) -> torch.Tensor:
        td = DT_TORCH[dt]
        if device == "meta":
            return torch.empty(sizes, dtype=td, device="meta")
        if fill == "random":
            return torch.randint(0, 2, sizes).to(td)
        return (torch.zeros if fill == "zeros" else torch.ones)(sizes, dtype=td)

    text = f"{dt}[{', '.join(f'{lb}={n}' if lb else str(n) for lb, n in zip(labels, sizes))}]"
    return V(Arg(typ), make, text)


# ============================================================================ cases


class Case:
    """One call: positional and keyword arguments, and how torch runs it."""

    def __init__(self, pos: list[V], kw: dict[str, V] | None = None,
                 call: Callable[..., Any] | None = None, data_dependent: bool = False) -> None:
        self.pos, self.kw = pos, kw if kw is not None else {}
        self.call = call  # torch's side, where the op's torch path does not fit the call
        self.data_dependent = data_dependent  # some output size depends on the data

    def __repr__(self) -> str:
        parts = [repr(v) for v in self.pos] + [f"{k}={v!r}" for k, v in self.kw.items()]
        return f"({', '.join(parts)})"


def torch_callable(path: str) -> Callable[..., Any]:
    if path == "operator.getitem":
        return lambda x, indices: x[indices]
    if path == "gtdsl.rename":
        return _rename_reference
    if path.startswith("Tensor."):
        attr = path[len("Tensor."):]
        if attr == "T":
            return lambda x: x.T
        return lambda x, *a, **k: getattr(torch.Tensor, attr)(x, *a, **k)
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _rename_reference(x: torch.Tensor, names: tuple[object, ...]) -> torch.Tensor:
    """``rename`` relabels the dims, which are not runtime data: the identity on metadata,
    given one label (or None) per dim."""
    if len(names) != x.dim():
        raise RuntimeError(f"rename: {len(names)} names for {x.dim()} dims")
    return x


def _attempt(fn: Callable[..., Any], case: Case, device: str) -> tuple[str, Any]:
    """("ok", result), ("error", exception), ("data", exception): failed on a value, not on
    metadata, or ("missing", exception): no kernel on this device."""
    args = [v.make(device) for v in case.pos]
    kwargs = {k: v.make(device) for k, v in case.kw.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", fn(*args, **kwargs)
    except NotImplementedError as e:
        return ("missing" if device == "meta" else "error"), e
    except Exception as e:  # noqa: BLE001 - any torch failure is a rejection
        text = str(e).lower()
        if device == "cpu" and ("index" in text or "target" in text) and (
                "out of bounds" in text or "out of range" in text):
            return "data", e
        if device == "meta" and ("meta tensor" in text or "meta device" in text):
            return "missing", e
        return "error", e


def run_torch(name: str, case: Case) -> tuple[str, Any]:
    """torch's verdict: "ok", "error", "data" (the CPU failed on a value and meta cannot
    run the op) or "ok, but data" (the CPU failed on a value, meta returned this). The CPU is
    the reference; where it fails on the data (an index into an empty dim), the meta run,
    which reads no data, decides."""
    fn = case.call or _packed(OPS[name])
    cpu = _attempt(fn, case, "cpu")
    if cpu[0] != "data":
        return cpu
    meta = _attempt(fn, case, "meta")
    if meta[0] == "ok":
        return "ok, but data", meta[1]
    return meta if meta[0] == "error" else cpu


def _packed(op: Any) -> Callable[..., Any]:
    """The op's torch callable; a variadic parameter (``*size``, ``*dims``) is passed to
    torch as one tuple, as ``torch.zeros((2, 3))`` and ``torch.permute(x, (1, 0))`` need."""
    fn = torch_callable(op.torch)
    k = next((i for i, p in enumerate(op.params) if p.variadic), None)
    if k is None:
        return fn

    def call(*args: Any, **kwargs: Any) -> Any:
        rest = args[k:]
        if not (len(rest) == 1 and isinstance(rest[0], (tuple, list))):
            rest = (tuple(rest),)
        return fn(*args[:k], *rest, **kwargs)

    return call


def run_ours(name: str, case: Case) -> tuple[bool, Any, Rel]:
    op = OPS[name]
    rel = Rel()
    try:
        bound = bind(op, [v.arg for v in case.pos], {k: v.arg for k, v in case.kw.items()})
        return True, op.relation(rel, bound), rel
    except OpError as e:
        return False, e, rel


def torch_meta(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return (TORCH_DT.get(v.dtype, v.dtype), tuple(v.shape))
    if isinstance(v, (tuple, list)):
        return tuple(torch_meta(e) for e in v)
    raise AssertionError(f"unexpected torch result {v!r}")


def our_meta(t: Any, data_dependent: bool = False) -> Any:
    """Our type as torch metadata; sizes must be literals (None only if data-dependent)."""
    if isinstance(t, TTensor):
        assert t.shape.row is None, f"rank left unknown: {t}"
        assert t.device == CPU, f"device {t.device}, expected cpu"
        sizes = tuple(d.size.constant() if d.size is not None else None for d in t.shape.dims)
        assert data_dependent or None not in sizes, f"a size left unknown: {t}"
        return (t.dtype, sizes)
    if isinstance(t, TTuple):
        return tuple(our_meta(e, data_dependent) for e in t.elems)
    raise AssertionError(f"unexpected output type {t}")


def _same(ours: Any, theirs: Any, data_dependent: bool) -> bool:
    if not data_dependent:
        return ours == theirs
    if isinstance(theirs, tuple) and theirs and isinstance(theirs[0], DT):
        (d1, s1), (d2, s2) = ours, theirs
        return d1 == d2 and len(s1) == len(s2) and all(a in (None, b) for a, b in zip(s1, s2))
    return len(ours) == len(theirs) and all(_same(a, b, True) for a, b in zip(ours, theirs))


def check(name: str, case: Case) -> None:
    if _torch24_empty_mask(name, case):
        return
    verdict, t_val = run_torch(name, case)
    t_ok = verdict.startswith("ok")
    o_ok, o_val, rel = run_ours(name, case)
    if verdict == "ok, but data" and not o_ok:
        return  # the CPU failed on the data; an error known statically is no worse
    if t_ok:
        if not o_ok and o_val.code in EMPTY_SKIPS.get(name, ()) and (
                _has_empty_input(case) or (case.data_dependent and _empty_result(t_val))):
            return
        assert o_ok, (f"{name}{case}: torch gives {torch_meta(t_val)}, ours raises "
                      f"{o_val.code}: {o_val.message}")
        theirs = torch_meta(t_val)
        if isinstance(o_val, TList):
            assert isinstance(theirs, tuple), f"{name}{case}: a list for {theirs}"
            elem = our_meta(o_val.elem, case.data_dependent)
            assert all(_same(elem, e, case.data_dependent) for e in theirs), (
                f"{name}{case}: ours list[{elem}], torch {theirs}")
            return
        ours = our_meta(o_val, case.data_dependent)
        assert _same(ours, theirs, case.data_dependent), (
            f"{name}{case}: ours {o_val} = {ours}, torch {theirs}")
        if case.data_dependent:
            # (or a known size, with a runtime check: a mask's count broadcast against 3)
            assert None in _sizes_of(ours) or rel.residuals, (
                f"{name}{case}: no size left unknown, though one depends on the data: {o_val}")
    elif o_ok:
        if verdict == "error" and (_c32_kernel_missing(t_val) or _overlap_bug(t_val)
                                   or _cpu_kernel_missing(name, t_val)
                                   or _empty_mask_bug(name, case, t_val)):
            return
        # a value error (an index out of range) is torch's to raise when the op runs, and
        # one that depends on the data (how many elements a mask selects) a runtime check
        assert verdict == "data" or (case.data_dependent and rel.residuals), (
            f"{name}{case}: torch raises {type(t_val).__name__}: {str(t_val)[:300]}; ours "
            f"returns {o_val} (residuals {rel.residuals})")


# Intentional divergence: torch kernels return early on an empty input (or output), before
# some of their checks: softmax of an empty u8 tensor, bmm of empty tensors of two dtypes,
# randn(0, dtype=i64), attention with no queries but mismatched feature sizes, gather with an
# empty index of another rank, expand with -1 for a new leading dim next to a size 0 (which
# yields a tensor with a size of -1). gtdsl applies its rules whatever the sizes; where torch
# returns and an input is empty (or a mask selected nothing), these errors of ours stand.
EMPTY_SKIPS: dict[str, tuple[str, ...]] = {
    "softmax": ("GT2002",), "log_softmax": ("GT2002",), "bmm": ("GT2002",),
    "matmul": ("GT2002",), "linear": ("GT2002",),
    "scaled_dot_product_attention": ("GT2002", "GT2004", "GT2005", "GT2013"),
    "amax": ("GT2002",), "amin": ("GT2002",), "gather": ("GT2002", "GT2005"),
    # (torch 2.4's argmin/argmax of an empty bool tensor, before its dtype check)
    "argmin": ("GT2002",), "argmax": ("GT2002",),
    "expand": ("GT2015",),
    "broadcast_to": ("GT2015",), "rand": ("GT2002",), "randn": ("GT2002",),
    "rand_like": ("GT2002",), "randn_like": ("GT2002",), "dropout": ("GT2002",),
    "cross_entropy": ("GT2002",), "nll_loss": ("GT2002",),
    # (torch 2.4 also returns before checking an empty bool mask's sizes)
    "getitem": ("GT2002", "GT2004"),
    # cummax/cummin of an empty tensor return before checking the dim is in range
    "cummax": ("GT2010", "GT2002"), "cummin": ("GT2010", "GT2002"), "repeat": ("GT2027",),
    "cumsum": ("GT2002",), "cumprod": ("GT2002",), "tile": ("GT2027",), "roll": ("GT2010",),
    # (and adaptive average pooling to one value per dim is a mean: of an empty dim, NaN)
    "adaptive_avg_pool1d": ("GT2002", "GT2004"), "adaptive_avg_pool2d": ("GT2002", "GT2004"),
    "adaptive_max_pool1d": ("GT2002",), "adaptive_max_pool2d": ("GT2002",),
    "conv_transpose2d": ("GT2027", "GT2002", "GT2004"), "conv1d": ("GT2002", "GT2004", "GT2027"),
    "conv2d": ("GT2002", "GT2004", "GT2027"), "batch_norm": ("GT2013", "GT2004", "GT2002"),
    "group_norm": ("GT2004", "GT2002"), "instance_norm": ("GT2004", "GT2013", "GT2005", "GT2002"),
    "interpolate": ("GT2002", "GT2004", "GT2027"),
    # scatters and pads of an empty input (or index) return before their shape checks
    **{op: ("GT2002", "GT2004", "GT2005", "GT2006", "GT2010", "GT2027") for op in (
        "scatter", "scatter_add", "scatter_reduce", "index_add", "index_copy", "pad")},
}


def _overlap_bug(e: BaseException) -> bool:
    """torch's circular pad with a negative pad on one side, on a batched input, writes into
    memory it reads (an internal-overlap error) where the same pad of an unbatched input
    gives the result: a gap of torch's kernel, not a rule of the op (gtdsl accepts it)."""
    return "refer to a single memory location" in str(e)


def _c32_kernel_missing(e: BaseException) -> bool:
    """f16 with a complex 0-dim tensor or number computes in complex32 (bf16, from torch 2.14,
    in bcomplex32), for which the CPU lacks some kernels (div, pow, logical_and; bcomplex32:
    nearly all): a gap of the CPU backend, not a typing rule; gtdsl types these ops as c32
    (bc32)."""
    return "not implemented for" in str(e) and (
        "'ComplexHalf'" in str(e) or "'BComplex32'" in str(e))


def _cpu_kernel_missing(name: str, e: BaseException) -> bool:
    """torch 2.4's CPU has no bf16 kernel for mse_loss and no f16 ones for reflect and replicate
    padding
    (CUDA has them, as later CPUs): gaps of one backend of one release, not typing rules;
    gtdsl types these ops in the input's dtype."""
    return (name == "mse_loss" and "\"mse_cpu\" not implemented for 'BFloat16'" in str(e)) or (
        name == "pad" and ("\"reflection_pad" in str(e) or "\"replication_pad" in str(e))
        and "not implemented for 'Half'" in str(e))


def _torch24_empty_mask(name: str, case: Case) -> bool:
    """torch 2.4 indexes with a bool mask inconsistently where the mask or the tensor is
    empty: an integer index or a new axis (None) after the mask applies to the wrong dim or is
    dropped (``ones(0, 0, 0)[ones(0, 0, dtype=bool), ..., None]`` has shape (0, 1, 0); 2.5
    and later (0, 0, 1), as gtdsl types it), a mask is compared with dims a later slice
    empties. Such cases are not compared on torch 2.4."""
    if name != "getitem" or not torch.__version__.startswith("2.4."):
        return False

    def mask(arg: Arg) -> bool:
        if isinstance(arg.type, TTensor):
            return arg.type.dtype in (DT.BOOL, DT.U8)  # (u8: a mask, deprecated)
        return isinstance(arg.value, tuple) and any(isinstance(e, Arg) and mask(e)
                                                     for e in arg.value)

    return any(mask(v.arg) for v in case.pos[1:]) and _has_empty_input(case)


def _empty_mask_bug(name: str, case: Case, e: BaseException) -> bool:
    """torch 2.4 applies an integer index after an empty bool mask to the wrong dim
    (``ones(0, 0, 1)[ones(0, 0, dtype=bool), 0]``: "index 0 is out of bounds for dimension 1
    with size 0"; torch 2.5 and later give shape (0,), as gtdsl types it)."""
    return (name == "getitem" and torch.__version__.startswith("2.4.")
            and isinstance(e, IndexError) and "with size 0" in str(e) and _has_empty_input(case))


def _sizes_of(meta: Any) -> list[int | None]:
    if isinstance(meta, tuple) and meta and isinstance(meta[0], DT):
        return list(meta[1])
    return [s for m in meta for s in _sizes_of(m)]


def _empty_result(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.numel() == 0


def _has_empty_input(case: Case) -> bool:
    def empty(arg: Arg) -> bool:  # an empty tensor, or a size 0 (creation, expand)
        if isinstance(arg.type, TTensor):
            return any(d.size is not None and d.size.constant() == 0
                       for d in arg.type.shape.dims)
        if isinstance(arg.value, tuple):
            return any(isinstance(e, Arg) and empty(e) for e in arg.value)
        return isinstance(arg.value, int) and arg.value == 0

    return any(empty(v.arg) for v in [*case.pos, *case.kw.values()])


# ============================================================================ strategies

SIZE = st.sampled_from([0, 1, 2, 3, 1, 4, 5])
DTYPES = st.sampled_from(OP_DTYPES)
LABELS = "abcdefgh"


def shapes(min_rank: int = 0, max_rank: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(SIZE, min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def broadcastable(draw: st.DrawFn, n: int, min_rank: int = 0, max_rank: int = 4,
                  bad: bool = True) -> list[tuple[int, ...]]:
    """``n`` shapes that broadcast together (right-aligned, each dim equal or 1), and
    sometimes one dim perturbed at random."""
    out = draw(shapes(min_rank, max_rank))
    result = []
    for _ in range(n):
        r = draw(st.integers(min(min_rank, len(out)), len(out)))
        result.append([draw(st.sampled_from([d, d, 1])) for d in out[len(out) - r:]])
    if bad and draw(st.integers(0, 3)) == 0:
        s = draw(st.sampled_from(result))
        if s:
            s[draw(st.integers(0, len(s) - 1))] = draw(SIZE)
    return [tuple(s) for s in result]


@st.composite
def labelled(draw: st.DrawFn, sizes: tuple[int, ...], dt: DT,
             fill: str = "ones") -> tuple[V, tuple[str | None, ...]]:
    """A tensor whose dims may carry labels (distinct, or sometimes repeated)."""
    labels = tuple(draw(st.sampled_from([None, None, *LABELS[:len(sizes) + 1]]))
                   for _ in sizes)
    return T(sizes, dt, labels, fill), labels


def position(rank: int, extra: int = 0) -> st.SearchStrategy[int]:
    """A dim position for a tensor of ``rank`` dims (``extra``: slots past the end), including
    one out of range on each side."""
    total = max(rank + extra, 1)
    return st.integers(-total - 1, total)


@st.composite
def dim_arg(draw: st.DrawFn, rank: int, labels: tuple[str | None, ...] = (),
            extra: int = 0) -> V:
    unique = [lb for lb in labels if lb is not None and labels.count(lb) == 1]
    if unique and draw(st.booleans()):
        lb = draw(st.sampled_from(unique))
        return LABEL(lb, labels.index(lb))
    return I(draw(position(rank, extra)))


@st.composite
def dims_arg(draw: st.DrawFn, rank: int, labels: tuple[str | None, ...] = ()) -> V:
    """A tuple of dims (possibly repeating one, possibly empty)."""
    n = draw(st.integers(0 if rank else 1, max(rank, 1)))
    return TUP(*(draw(dim_arg(rank, labels)) for _ in range(n)))


def scalar_number(nonzero: bool = False) -> st.SearchStrategy[V]:
    """A Python number. ``nonzero``: for integer ``//`` and ``%``, where a zero divisor is an
    error that depends on the value, which types do not model."""
    values = [0, 1, 2, -3, 0.5, -1.5, 2.0, True, False]
    return st.sampled_from([v for v in values if v or not nonzero]).map(number)


def fill_number() -> st.SearchStrategy[V]:
    """A fill value. Negative ones are left out: whether a value fits the dtype (-1.5 into
    u8) is checked by torch on the value, which types do not model."""
    return st.sampled_from([0, 1, 2, 0.5, 2.0, True, False]).map(number)


def maybe(kw: dict[str, V], key: str, value: V | None) -> None:
    if value is not None:
        kw[key] = value


def optional(strategy: st.SearchStrategy[V]) -> st.SearchStrategy[V | None]:
    return st.one_of(st.none(), strategy)


# ---------------------------------------------------------------------------- elementwise


@st.composite
def unary(draw: st.DrawFn, name: str) -> Case:
    x = T(draw(shapes()), draw(DTYPES))
    kw: dict[str, V] = {}
    if name == "gelu":
        maybe(kw, "approximate", draw(optional(st.sampled_from(["none", "tanh", "erf"]).map(S))))
    elif name == "softplus":
        maybe(kw, "beta", draw(optional(st.sampled_from([1.0, 2.0, 1]).map(number))))
        maybe(kw, "threshold", draw(optional(st.sampled_from([20.0, 5]).map(number))))
    elif name == "dropout":
        maybe(kw, "p", draw(optional(st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.5]).map(F))))
        maybe(kw, "training", draw(optional(st.booleans().map(B))))
    elif name == "leaky_relu":
        maybe(kw, "negative_slope", draw(optional(st.sampled_from([0.2, 0, 1]).map(number))))
    elif name in ("elu", "celu"):
        maybe(kw, "alpha", draw(optional(st.sampled_from([0.5, 1.0, 2]).map(number))))
    elif name == "round":
        # (an explicit decimals=0 is torch's other overload, which has no integer kernels;
        # gtdsl passes decimals only when it is not 0, as torch.round(x) is called)
        maybe(kw, "decimals", draw(optional(st.sampled_from([1, -1, 2]).map(I))))
    elif name == "nan_to_num":
        for key in ("nan", "posinf", "neginf"):
            maybe(kw, key, draw(optional(st.sampled_from([0.0, 1.5, -2.0, 3]).map(number))))
    return Case([x], kw)


@st.composite
def prelu_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    dt = draw(DTYPES)
    channels = sizes[1] if len(sizes) >= 2 else 1
    n = draw(st.sampled_from([1, channels, channels, draw(SIZE)]))
    wshape = draw(st.sampled_from([(n,), (n,), (), (n, 1)]))
    wdt = dt if draw(st.integers(0, 3)) else draw(DTYPES)
    return Case([T(sizes, dt), T(wshape, wdt)])


@st.composite
def binary_case(draw: st.DrawFn, name: str) -> Case:
    """Two tensors that broadcast (or not), or a tensor and a Python number either side."""
    sx, sy = draw(broadcastable(2))
    form = draw(st.sampled_from(["tt", "tt", "ts", "st"]))
    nonzero = name in ("floor_divide", "remainder")
    x = T(sx, draw(DTYPES)) if form[0] == "t" else draw(scalar_number(nonzero))
    y = T(sy, draw(DTYPES)) if form[1] == "t" else draw(scalar_number(nonzero))
    if form == "st" and name in COMPARE:
        # torch.lt(0, x) takes no number first; ``0 < x`` (the surface form) reflects to x > 0
        return Case([x, y], call=getattr(operator, name))
    return Case([x, y])


@st.composite
def where_case(draw: st.DrawFn) -> Case:
    sc, sx, sy = draw(broadcastable(3))
    cond = T(sc, draw(st.sampled_from([DT.BOOL, DT.BOOL, DT.U8, DT.F32])))
    x = draw(st.one_of(scalar_number(), DTYPES.map(lambda d: T(sx, d))))
    y = draw(st.one_of(scalar_number(), DTYPES.map(lambda d: T(sy, d))))
    return Case([cond, x, y])


@st.composite
def clamp_case(draw: st.DrawFn) -> Case:
    sx, smin, smax = draw(broadcastable(3))
    x = T(sx, draw(DTYPES))
    kw: dict[str, V] = {}
    for key, s in (("min", smin), ("max", smax)):
        maybe(kw, key, draw(optional(st.one_of(scalar_number(),
                                               DTYPES.map(lambda d, s=s: T(s, d))))))
    kinds = {isinstance(v.arg.type, TTensor) for v in kw.values()}
    if kinds == {True, False}:
        # one number bound and one tensor bound: torch reads a 0-dim tensor as a number (as
        # gtdsl does), but also takes a Python bool, and no other number, as a tensor, and
        # reads a complex 0-dim tensor as a number without promoting to complex; gtdsl
        # models neither, so those two are redrawn as an int and an f32 tensor
        kw = {k: I(int(v.arg.value)) if isinstance(v.arg.value, bool) else
              T((), DT.F32) if isinstance(v.arg.type, TTensor) and v.arg.type.dtype in COMPLEX
              else v
              for k, v in kw.items()}
    return Case([x], kw)


@st.composite
def masked_fill_case(draw: st.DrawFn) -> Case:
    sx, sm = draw(broadcastable(2))
    x = T(sx, draw(DTYPES))
    mask = T(sm, draw(st.sampled_from([DT.BOOL, DT.BOOL, DT.BOOL, DT.U8, DT.I64])))
    value = draw(st.one_of(fill_number(), DTYPES.map(lambda d: T((), d)),
                           DTYPES.map(lambda d: T((1,), d))))
    return Case([x, mask, value])


@st.composite
def to_case(draw: st.DrawFn) -> Case:
    x = T(draw(shapes()), draw(DTYPES))
    kw: dict[str, V] = {}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    maybe(kw, "device", draw(optional(st.just(DEVICE_CPU))))
    return Case([x], kw)


@st.composite
def one_tensor(draw: st.DrawFn, min_rank: int = 0, max_rank: int = 4) -> Case:
    return Case([T(draw(shapes(min_rank, max_rank)), draw(DTYPES))])


# ---------------------------------------------------------------------------- reductions


@st.composite
def reduce_case(draw: st.DrawFn, name: str) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    kw: dict[str, V] = {}
    form = draw(st.sampled_from(["none", "one", "one", "tuple"]))
    if form == "one":
        kw["dim"] = draw(dim_arg(len(sizes), labels))
    elif form == "tuple":
        kw["dim"] = draw(dims_arg(len(sizes), labels))
    keep = draw(st.sampled_from([None, True, False]))
    if keep is not None:
        kw.setdefault("dim", NONE)
        kw["keepdim"] = B(keep)
    if name == "logsumexp" and "dim" not in kw:
        kw["dim"] = NONE
    if name in ("var", "std"):
        maybe(kw, "correction", draw(optional(st.sampled_from([0, 1, 2]).map(I))))
    if name == "logsumexp" and kw["dim"].arg.value == () and sizes and keep is not True:
        # torch bug: logsumexp(x, dim=()) reduces every dim but then fails to write its 0-dim
        # result ("output with shape [] doesn't match the broadcast shape"); gtdsl returns
        # the reduction, as sum and amax do.
        kw["keepdim"] = B(True)
    case = Case([x], kw)
    if name in ("max", "min", "prod"):
        # torch.max/min/prod have no ``dim=None`` overload with ``keepdim``: gtdsl's
        # ``max(x)`` is torch.max(x), and ``max(x, keepdim=True)`` an error in both.
        def no_dim(x: torch.Tensor, dim: Any = None, keepdim: bool = False,
                   fn: Callable[..., Any] = getattr(torch, name)) -> Any:
            if dim is None:
                return fn(x, keepdim=True) if keepdim else fn(x)
            return fn(x, dim, keepdim)

        case.call = no_dim
    if name == "norm":
        p = draw(st.sampled_from([None, 2, 1, 2.0, math.inf, 0]))
        if p is not None:
            case.pos.append(number(p))

        def norm(x: torch.Tensor, p: float = 2, dim: Any = None, keepdim: bool = False) -> Any:
            return torch.linalg.vector_norm(x, p, dim, keepdim)

        case.call = norm
    return case


@st.composite
def softmax_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    kw: dict[str, V] = {"dim": draw(dim_arg(len(sizes), labels))}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    return Case([x], kw)


@st.composite
def norm_block_case(draw: st.DrawFn, name: str) -> Case:
    sizes = draw(shapes(0, 4))
    x = T(sizes, draw(DTYPES))
    k = draw(st.integers(1, max(len(sizes), 1)))
    tail = list(sizes[len(sizes) - k:]) if len(sizes) >= k else [2] * k
    if draw(st.integers(0, 4)) == 0:
        tail[draw(st.integers(0, k - 1))] = draw(SIZE)
    normalized = draw(st.one_of(st.just(TUP(*map(I, tail))),
                                st.just(I(tail[-1])) if k == 1 else st.nothing()))
    kw: dict[str, V] = {}
    wshape = tuple(tail) if draw(st.integers(0, 5)) else draw(shapes(1, 2))
    keys = ("weight", "bias") if name == "layer_norm" else ("weight",)
    for key in keys:
        if draw(st.booleans()):
            kw[key] = T(wshape, draw(st.sampled_from([x.arg.type.dtype] * 3 + list(OP_DTYPES))))
    return Case([x, normalized], kw)


# ---------------------------------------------------------------------------- linear algebra


@st.composite
def matmul_case(draw: st.DrawFn, name: str) -> Case:
    n, m, k = draw(SIZE), draw(SIZE), draw(SIZE)
    ra, rb = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    if name == "bmm":
        ra, rb = draw(st.sampled_from([3, 3, 3, 2, 4])), draw(st.sampled_from([3, 3, 3, 2]))
    batch_a, batch_b = draw(broadcastable(2, 0, 2))
    if name == "bmm":
        batch_a = batch_b = (draw(SIZE),)
    a = list(batch_a + (n, k))[-ra:] if ra else []
    b = list(batch_b + (k, m))[-rb:] if rb else []
    if ra == 1:
        a = [k]
    if rb == 1:
        b = [k]
    if draw(st.integers(0, 5)) == 0 and b:
        b[max(len(b) - 2, 0)] = draw(SIZE)
    da = draw(DTYPES)
    db = da if draw(st.integers(0, 4)) else draw(DTYPES)
    return Case([T(tuple(a), da), T(tuple(b), db)])


@st.composite
def linear_case(draw: st.DrawFn) -> Case:
    sx = draw(shapes(0, 4))
    fin = sx[-1] if sx else draw(SIZE)
    out = draw(SIZE)
    rw = draw(st.sampled_from([2, 2, 1, 3]))
    w = [out, fin] if rw == 2 else [fin] if rw == 1 else [out, fin, 2]
    if draw(st.integers(0, 5)) == 0:
        w[-1 if rw != 3 else 1] = draw(SIZE)
    dt = draw(DTYPES)
    dts = [dt if draw(st.integers(0, 5)) else draw(DTYPES) for _ in range(3)]
    case = Case([T(sx, dts[0]), T(tuple(w), dts[1])])
    if draw(st.booleans()):
        # the documented bias shapes, () and (out,), and a wrong size; a bias of rank 2 or
        # more, which torch accepts on some paths (addmm) and not on others, is not drawn
        bshape = draw(st.sampled_from([(), (1,), (out,), (out,), (out + 1,)]))
        # torch adds a 0-dim bias in place (casting it) for inputs of rank 1 or >= 4, and
        # requires the input's dtype otherwise (addmm); gtdsl always requires one dtype, so a
        # 0-dim bias is drawn with the input's dtype
        case.pos.append(T(bshape, dts[2] if bshape else dts[0]))
    return case


@st.composite
def einsum_case(draw: st.DrawFn) -> Case:
    """Random equations over the letters ijkl: repeated letters (diagonals), implicit and
    explicit outputs, ``...``, size-1 dims that broadcast, wrong sizes and ranks.

    One floating or complex dtype for all operands: torch's einsum dtype follows its
    contraction path (a letter summed out of one operand goes through ``sum``, which turns
    integers into i64; two operands meet in ``mul``, which promotes, or ``bmm``, which
    does not), which gtdsl does not model: it requires one dtype and keeps it."""
    letters = "ijkl"
    size = {c: draw(SIZE) for c in letters}
    n_ops = draw(st.integers(1, 3))
    terms, operands = [], []
    dt = draw(st.sampled_from(FLOATS + COMPLEX))
    ell_shape = draw(broadcastable(n_ops, 0, 2, bad=False))
    for i in range(n_ops):
        term = "".join(draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3)))
        ell = draw(st.integers(0, 3)) == 0
        sizes = [size[c] for c in term]
        if draw(st.integers(0, 6)) == 0 and sizes:
            sizes[draw(st.integers(0, len(sizes) - 1))] = draw(st.sampled_from([1, 1, 2, 3]))
        if ell:
            sizes = list(ell_shape[i]) + sizes
        if draw(st.integers(0, 8)) == 0:
            sizes.append(2)  # a rank that does not match the term
        terms.append(("..." if ell else "") + term)
        operands.append(T(tuple(sizes), dt))
    eq = ",".join(terms)
    if draw(st.booleans()):
        used = sorted(set("".join(terms).replace(".", "")))
        out = draw(st.lists(st.sampled_from(used), unique=True) if used else st.just([]))
        extra = draw(st.sampled_from(["", "", "", "m"]))
        eq += "->" + ("..." if "..." in eq and draw(st.booleans()) else "") + "".join(out) + extra
    return Case([S(eq), *operands])


@st.composite
def sdpa_case(draw: st.DrawFn) -> Case:
    bq, bk, bv, bm = draw(broadcastable(4, 0, 2))
    L, S_, E, Ev = draw(SIZE), draw(SIZE), draw(SIZE), draw(SIZE)
    if 0 in (L, S_, E, Ev, *bq, *bk, *bv):
        # on empty operands torch returns early, with the query's batch dims, unbroadcast
        bk = bv = bq
    q, k, v = [bq, L, E], [bk, S_, E], [bv, S_, Ev]
    q, k, v = (tuple(q[0]) + tuple(q[1:]), tuple(k[0]) + tuple(k[1:]), tuple(v[0]) + tuple(v[1:]))
    if draw(st.integers(0, 5)) == 0:
        which = draw(st.sampled_from(["q", "k", "v"]))
        new = draw(SIZE)
        if which == "q":
            q = q[:-1] + (new,)
        elif which == "k":
            k = k[:-2] + (new, k[-1])
        else:
            v = v[:-2] + (new, v[-1])
    if draw(st.integers(0, 8)) == 0:
        q = q[-1:]  # a rank-1 query
    dt = draw(st.sampled_from(FLOATS + FLOATS + OP_DTYPES))
    dts = [dt if draw(st.integers(0, 6)) else draw(DTYPES) for _ in range(3)]
    case = Case([T(q, dts[0]), T(k, dts[1]), T(v, dts[2])])
    if draw(st.booleans()):
        mshape = tuple(bm) + tuple(draw(st.sampled_from([(L, S_), (1, S_), (L, 1), (S_,),
                                                          (L, S_ + 1)])))
        case.kw["attn_mask"] = T(mshape, draw(st.sampled_from([DT.BOOL, dt, DT.I64])))
    maybe(case.kw, "is_causal", draw(optional(st.booleans().map(B))))
    maybe(case.kw, "scale", draw(optional(st.just(F(0.5)))))
    return case


# ---------------------------------------------------------------------------- shape ops


@st.composite
def target_sizes(draw: st.DrawFn, sizes: tuple[int, ...]) -> list[int]:
    """A reshape target: a regrouping of the element count, maybe with one -1, maybe wrong."""
    numel = math.prod(sizes)
    parts: list[int] = []
    rest = numel
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(0, 6) if (d == 0 and rest == 0) or (d and rest % d == 0)]
        d = draw(st.sampled_from(divisors or [1]))
        parts.append(d)
        rest = rest // d if d else 0
    parts.append(rest)
    draw(st.randoms()).shuffle(parts)
    if draw(st.booleans()):
        parts[draw(st.integers(0, len(parts) - 1))] = -1
    if draw(st.integers(0, 5)) == 0:
        parts[draw(st.integers(0, len(parts) - 1))] = draw(st.sampled_from([-1, -2, 0, 1, 3]))
    return parts


@st.composite
def reshape_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    parts = draw(target_sizes(sizes))
    x = T(sizes, draw(DTYPES))
    if draw(st.booleans()):
        return Case([x, TUP(*map(I, parts))])
    return Case([x, *map(I, parts)])


@st.composite
def flatten_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    kw: dict[str, V] = {}
    maybe(kw, "start_dim", draw(optional(dim_arg(len(sizes), labels))))
    maybe(kw, "end_dim", draw(optional(dim_arg(len(sizes), labels))))
    return Case([x], kw)


@st.composite
def unflatten_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 4))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    dim = draw(dim_arg(len(sizes), labels))
    p = dim.make("meta")
    n = sizes[p] if sizes and -len(sizes) <= p < len(sizes) else 1
    parts = draw(target_sizes((n,)))
    if draw(st.integers(0, 8)) == 0:
        parts = []
    return Case([x, dim, TUP(*map(I, parts))])


@st.composite
def transpose_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    return Case([x, draw(dim_arg(len(sizes), labels)), draw(dim_arg(len(sizes), labels))])


@st.composite
def permute_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    r = len(sizes)
    order = draw(st.permutations(range(r)))
    dims = [LABEL(labels[i], i) if labels[i] and labels.count(labels[i]) == 1 and
            draw(st.booleans()) else I(i - r if draw(st.booleans()) else i) for i in order]
    if draw(st.integers(0, 4)) == 0:
        if dims and draw(st.booleans()):
            dims.pop(draw(st.integers(0, len(dims) - 1)))
        else:
            dims.append(draw(dim_arg(r, labels)))
    if draw(st.booleans()):
        return Case([x, TUP(*dims)])
    return Case([x, *dims])


@st.composite
def squeeze_case(draw: st.DrawFn) -> Case:
    sizes = draw(st.lists(st.sampled_from([1, 1, 0, 2, 3]), max_size=4).map(tuple))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    form = draw(st.sampled_from(["none", "one", "tuple"]))
    if form == "none":
        return Case([x])
    if form == "one":
        return Case([x, draw(dim_arg(len(sizes), labels))])
    return Case([x, draw(dims_arg(len(sizes), labels))])


@st.composite
def unsqueeze_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    return Case([x, draw(dim_arg(len(sizes), labels, extra=1))])


@st.composite
def expand_case(draw: st.DrawFn, name: str) -> Case:
    target = draw(shapes())
    r = draw(st.integers(0, len(target)))
    src = [draw(st.sampled_from([d, d, 1])) for d in target[len(target) - r:]]
    if draw(st.integers(0, 4)) == 0 and src:
        src[draw(st.integers(0, len(src) - 1))] = draw(SIZE)
    parts = list(target)
    for i in range(len(parts)):
        if i >= len(parts) - r and draw(st.integers(0, 3)) == 0:
            parts[i] = -1
    if draw(st.integers(0, 8)) == 0 and parts:
        parts[0] = -1  # -1 for a new leading dim, or a kept one
    if draw(st.integers(0, 8)) == 0:
        src = src + [2]  # more dims than sizes
    x = T(tuple(src), draw(DTYPES))
    if name == "broadcast_to" or draw(st.booleans()):
        return Case([x, TUP(*map(I, parts))])
    return Case([x, *map(I, parts)])


@st.composite
def tensor_list(draw: st.DrawFn, name: str) -> Case:
    base = list(draw(shapes(0, 4)))
    n = draw(st.integers(1, 3))
    dim_v = draw(dim_arg(len(base), extra=1 if name == "stack" else 0))
    p = dim_v.make("meta")
    items = []
    for _ in range(n):
        s = list(base)
        if name == "cat" and s and -len(s) <= p < len(s):
            s[p] = draw(SIZE)
        if draw(st.integers(0, 6)) == 0:
            if s and draw(st.booleans()):
                s[draw(st.integers(0, len(s) - 1))] = draw(SIZE)
            else:
                s = s[1:] if s and draw(st.booleans()) else s + [1]
        items.append(T(tuple(s), draw(DTYPES) if draw(st.integers(0, 2)) == 0 else DT.F32))
    # torch.cat's legacy rule skips 1-dim empty tensors (whatever the others' rank and the
    # dim); gtdsl does not model it (an intentional divergence): they are not drawn.
    assume(name != "cat" or not any(
        i.arg.type.shape.rank == 1 and i.arg.type.shape.dims[0].size.constant() == 0
        for i in items))
    kw = {"dim": dim_v} if draw(st.booleans()) or dim_v.arg.value != 0 else {}
    return Case([TUP(*items, as_list=draw(st.booleans()))], kw)


@st.composite
def split_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    dim = draw(dim_arg(len(sizes), labels))
    p = dim.make("meta")
    n = sizes[p] if sizes and -len(sizes) <= p < len(sizes) else 3
    if draw(st.booleans()):
        arg = I(draw(st.integers(0, 6)))
    else:
        parts = [draw(st.integers(0, n)) for _ in range(draw(st.integers(1, 3)))]
        if sum(parts) <= n:
            parts.append(n - sum(parts))
        if draw(st.integers(0, 5)) == 0:
            parts[-1] += draw(st.sampled_from([-1, 1]))
        arg = TUP(*map(I, parts))
    kw = {"dim": dim} if draw(st.booleans()) or dim.arg.value != 0 else {}
    return Case([x, arg], kw)


@st.composite
def chunk_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    kw: dict[str, V] = {}
    maybe(kw, "dim", draw(optional(dim_arg(len(sizes), labels))))
    return Case([x, I(draw(st.integers(-1, 6)))], kw)


@st.composite
def narrow_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    return Case([x, draw(dim_arg(len(sizes), labels)), I(draw(st.integers(-6, 6))),
                 I(draw(st.integers(-1, 6)))])


@st.composite
def rename_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x = T(sizes, draw(DTYPES))
    n = len(sizes) if draw(st.integers(0, 4)) else draw(st.integers(0, 5))
    names = [draw(st.sampled_from([NONE, *(LABEL(c, 0) for c in LABELS[:3])])) for _ in range(n)]
    return Case([x, *names])


@st.composite
def tri_case(draw: st.DrawFn) -> Case:
    x = T(draw(shapes()), draw(DTYPES))
    kw: dict[str, V] = {}
    maybe(kw, "diagonal", draw(optional(st.integers(-3, 3).map(I))))
    return Case([x], kw)


# ---------------------------------------------------------------------------- indexing


INDEX_SHAPES = st.sampled_from([(), (3,), (1,), (0,), (1, 3), (2, 1), (2, 3), (4,)])


@st.composite
def getitem_case(draw: st.DrawFn) -> Case:
    """``x[...]`` with ints (in and out of range), slices (clamped, empty, negative step),
    None, ``...``, integer index tensors (several, which broadcast together and move to the
    front unless adjacent) and bool masks (data-dependent)."""
    sizes = draw(shapes())
    x = T(sizes, draw(DTYPES))
    items: list[V] = []
    dd = False
    n = draw(st.integers(0, len(sizes) + 1))
    ell_at = draw(st.integers(0, n)) if draw(st.integers(0, 2)) == 0 else None
    k = 0  # the dim the next index applies to, when no ... comes before it
    for i in range(n + 1):
        if ell_at == i:
            items.append(ELLIPSIS)
        if i == n:
            break
        size = sizes[k] if k < len(sizes) else 2
        kind = draw(st.sampled_from(["int", "slice", "slice", "none", "itensor", "itensor",
                                     "mask"]))
        if kind == "int":
            items.append(I(draw(st.integers(-size - 1, size))))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-size - 2, size + 2))
            items.append(SLICE(draw(bound), draw(bound),
                               draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, 0])))))
        elif kind == "none":
            items.append(NONE)
            continue
        elif kind == "itensor":
            dt = draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.I16, DT.F32]))
            items.append(T(draw(INDEX_SHAPES), dt, fill="zeros"))
        else:
            span = draw(st.integers(0, 2))
            msizes = tuple(sizes[k:k + span]) if k + span <= len(sizes) else (size,)
            if draw(st.integers(0, 5)) == 0:
                msizes = draw(shapes(1, 2))
            dt = draw(st.sampled_from([DT.BOOL, DT.BOOL, DT.BOOL, DT.U8]))
            items.append(T(msizes, dt, fill="random"))
            dd = True
            k += len(msizes) - 1
        k += 1
    return Case([x, TUP(*items)], data_dependent=dd)


@st.composite
def index_select_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    idx = T(draw(shapes(0, 2)), draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.I16,
                                                      DT.F32])), fill="zeros")
    return Case([x, draw(dim_arg(len(sizes), labels)), idx])


@st.composite
def gather_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    isizes = tuple(draw(st.sampled_from([n, n, max(n - 1, 0), n + 1, 0, 1])) for n in sizes)
    if draw(st.integers(0, 5)) == 0:
        isizes = draw(shapes())
    idx = T(isizes, draw(st.sampled_from([DT.I64, DT.I64, DT.I64, DT.I32, DT.I16])),
            fill="zeros")
    return Case([x, draw(dim_arg(len(sizes), labels)), idx])


@st.composite
def embedding_case(draw: st.DrawFn) -> Case:
    ids = T(draw(shapes(0, 3)), draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.I16,
                                                      DT.F32])), fill="zeros")
    w = T(draw(st.sampled_from([(3, 4), (1, 2), (5, 0), (4,), (2, 3, 4)])), draw(DTYPES))
    kw: dict[str, V] = {}
    maybe(kw, "padding_idx", draw(optional(st.integers(-6, 6).map(I))))
    return Case([ids, w], kw)


@st.composite
def data_case(draw: st.DrawFn, name: str) -> Case:
    if name == "masked_select":
        sx, sm = draw(broadcastable(2))
        x = T(sx, draw(DTYPES), fill="random")
        mask = T(sm, draw(st.sampled_from([DT.BOOL, DT.BOOL, DT.U8])), fill="random")
        return Case([x, mask], data_dependent=True)
    x = T(draw(shapes()), draw(DTYPES), fill="random")
    kw: dict[str, V] = {}
    if name == "unique":
        maybe(kw, "sorted", draw(optional(st.booleans().map(B))))
    return Case([x], kw, data_dependent=True)


# ---------------------------------------------------------------------------- creation


@st.composite
def new_case(draw: st.DrawFn) -> Case:
    sizes = draw(st.lists(st.sampled_from([0, 1, 2, 3, -1]), max_size=4))
    kw: dict[str, V] = {}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    maybe(kw, "device", draw(optional(st.just(DEVICE_CPU))))
    if draw(st.booleans()):
        return Case([TUP(*map(I, sizes), as_list=draw(st.booleans()))], kw)
    return Case(list(map(I, sizes)), kw)


@st.composite
def full_case(draw: st.DrawFn) -> Case:
    sizes = draw(st.lists(st.sampled_from([0, 1, 2, 3, -1]), max_size=4))
    kw: dict[str, V] = {}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    maybe(kw, "device", draw(optional(st.just(DEVICE_CPU))))
    return Case([TUP(*map(I, sizes)), draw(fill_number())], kw)


@st.composite
def like_case(draw: st.DrawFn, name: str) -> Case:
    x = T(draw(shapes()), draw(DTYPES))
    kw: dict[str, V] = {}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    maybe(kw, "device", draw(optional(st.just(DEVICE_CPU))))
    pos = [x, draw(fill_number())] if name == "full_like" else [x]
    return Case(pos, kw)


@st.composite
def arange_case(draw: st.DrawFn) -> Case:
    num = st.one_of(st.integers(-4, 6), st.sampled_from([0.5, 2.5, -1.5, 3.0]))
    args = [draw(num) for _ in range(draw(st.integers(1, 3)))]
    if len(args) == 3 and draw(st.booleans()):
        args[2] = draw(st.sampled_from([1, 2, 3, -1, -2, 0, 0.5, -0.5]))
    kw: dict[str, V] = {}
    maybe(kw, "dtype", draw(optional(DTYPES.map(DTYPE))))
    maybe(kw, "device", draw(optional(st.just(DEVICE_CPU))))
    return Case(list(map(number, args)), kw)


# ---------------------------------------------------------------------------- losses


@st.composite
def class_loss_case(draw: st.DrawFn, name: str) -> Case:
    """Class-index targets (``input`` (C,), (N, C) or (N, C, d...), ``target`` its shape
    without C; a 1-dim input also takes a target of shape (1,)) and, for cross_entropy,
    class probabilities (``target`` shaped like ``input``); sometimes a wrong shape."""
    # no empty class dim: every class index is out of range then, and torch fails in
    # assorted ways (a target out of bounds, or a failed reshape)
    sizes = draw(shapes(1, 4).filter(lambda s: s[1 if len(s) > 1 else 0] > 0))
    x = T(sizes, draw(st.sampled_from(FLOATS + OP_DTYPES)))
    probs = name == "cross_entropy" and draw(st.integers(0, 2)) == 0
    if probs:
        tshape = list(sizes)
    elif len(sizes) == 1:
        tshape = list(draw(st.sampled_from([(), (), (1,)])))
    else:
        tshape = list(sizes[:1] + sizes[2:])
    if draw(st.integers(0, 5)) == 0:
        if tshape and draw(st.booleans()):
            tshape[draw(st.integers(0, len(tshape) - 1))] = draw(SIZE)
        else:
            tshape = tshape[1:] if tshape and draw(st.booleans()) else tshape + [1]
    if probs:
        tdt = x.arg.type.dtype if draw(st.integers(0, 3)) else draw(DTYPES)
    else:
        tdt = draw(st.sampled_from([DT.I64] * 4 + [DT.U8, DT.I32, DT.F32]))
    kw: dict[str, V] = {}
    maybe(kw, "reduction", draw(optional(st.sampled_from(["mean", "sum", "none"]).map(S))))
    return Case([x, T(tuple(tshape), tdt, fill="zeros")], kw)


@st.composite
def mse_case(draw: st.DrawFn) -> Case:
    sx, sy = draw(broadcastable(2))
    dt = draw(DTYPES)
    dy = dt if draw(st.integers(0, 3)) else draw(DTYPES)
    kw: dict[str, V] = {}
    maybe(kw, "reduction", draw(optional(st.sampled_from(["mean", "sum", "none"]).map(S))))
    return Case([T(sx, dt), T(sy, dy)], kw)


# ---------------------------------------------------------------------------- order, arrange


@st.composite
def along_case(draw: st.DrawFn, name: str) -> Case:
    """cumsum cumprod cummax cummin logcumsumexp sort argsort: a tensor and one dim."""
    sizes = draw(shapes())
    dt = draw(DTYPES)
    if name in ("cummax", "cummin") and not sizes and dt in COMPLEX:
        # intentional divergence: torch copies a 0-dim tensor without comparing, so it takes
        # a complex one; gtdsl's rule (no ordering of complex values) holds at every rank
        dt = DT.F32
    x, labels = draw(labelled(sizes, dt))
    kw: dict[str, V] = {}
    dim = draw(dim_arg(len(sizes), labels))
    if name in ("sort", "argsort"):
        maybe(kw, "dim", draw(optional(st.just(dim))))
        maybe(kw, "descending", draw(optional(st.booleans().map(B))))
        maybe(kw, "stable", draw(optional(st.booleans().map(B))))
        return Case([x], kw)
    if name in ("cumsum", "cumprod"):
        out = draw(optional(DTYPES))
        if out is DT.BOOL and not sizes:
            out = DT.I64  # intentional divergence: torch copies a 0-dim tensor into any dtype
        maybe(kw, "dtype", DTYPE(out) if out is not None else None)
    return Case([x, dim], kw)


@st.composite
def select_case(draw: st.DrawFn, name: str) -> Case:
    """topk and kthvalue: k from 0 to past the dim's size (and negative)."""
    sizes = draw(shapes())
    dt = draw(DTYPES)
    if not sizes and (dt is DT.BOOL or dt in COMPLEX):
        dt = DT.U8  # intentional divergence: torch copies a 0-dim tensor without ordering it
    x, labels = draw(labelled(sizes, dt))
    k = I(draw(st.sampled_from([0, 1, 1, 2, 3, 6, -1])))
    kw: dict[str, V] = {}
    maybe(kw, "dim", draw(optional(dim_arg(len(sizes), labels))))
    if name == "topk":
        maybe(kw, "largest", draw(optional(st.booleans().map(B))))
        maybe(kw, "sorted", draw(optional(st.booleans().map(B))))
    else:
        maybe(kw, "keepdim", draw(optional(st.booleans().map(B))))
    return Case([x, k], kw)


@st.composite
def flip_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    return Case([x, draw(dims_arg(len(sizes), labels))])


@st.composite
def roll_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes())
    x = T(sizes, draw(DTYPES))
    n = draw(st.integers(1, 3))
    shifts = [I(draw(st.integers(-3, 3))) for _ in range(n)]
    kw: dict[str, V] = {}
    if draw(st.booleans()):
        dims = [I(draw(position(len(sizes)))) for _ in range(draw(st.sampled_from(
            [n, n, n, max(n - 1, 1), n + 1])))]
        kw["dims"] = dims[0] if len(dims) == 1 and draw(st.booleans()) else TUP(*dims)
    shift = shifts[0] if n == 1 and draw(st.booleans()) else TUP(*shifts)
    return Case([x, shift], kw)


def _counts(draw: st.DrawFn, n: int) -> list[V]:
    return [I(draw(st.sampled_from([0, 1, 1, 2, 3, -1]))) for _ in range(n)]


@st.composite
def repeat_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x = T(sizes, draw(DTYPES))
    reps = _counts(draw, max(0, len(sizes) + draw(st.sampled_from([0, 0, 1, 2, -1]))))
    if draw(st.booleans()):
        return Case([x, TUP(*reps)])
    return Case([x, *reps])


@st.composite
def tile_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x = T(sizes, draw(DTYPES))
    return Case([x, TUP(*_counts(draw, draw(st.integers(0, len(sizes) + 2))))])


@st.composite
def repeat_interleave_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 3))
    x, labels = draw(labelled(sizes, draw(DTYPES)))
    kw: dict[str, V] = {}
    maybe(kw, "dim", draw(optional(dim_arg(len(sizes), labels))))
    if draw(st.booleans()):
        return Case([x, I(draw(st.sampled_from([0, 1, 2, 3, -1])))], kw)
    n = draw(st.sampled_from([1, sizes[0] if sizes else 1, 2, 3]))
    rdt = draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.F32]))
    counts = T((n,), rdt, fill="random") if draw(st.integers(0, 4)) else T((), rdt,
                                                                             fill="random")
    return Case([x, counts], kw, data_dependent=True)


@st.composite
def one_hot_case(draw: st.DrawFn) -> Case:
    dt = draw(st.sampled_from([DT.I64, DT.I64, DT.I64, DT.I32, DT.U8, DT.F32, DT.BOOL]))
    x = T(draw(shapes(0, 3)), dt, fill="zeros")
    n = draw(st.sampled_from([-1, 1, 3, 3, -2]))
    kw = {"num_classes": I(n)} if n != -1 or draw(st.booleans()) else {}
    return Case([x], kw, data_dependent=n == -1)


# ---------------------------------------------------------------------------- convolution


def _spatial_arg(draw: st.DrawFn, n: int, values: list[int]) -> V:
    """An int, or a tuple of ``n`` (sometimes a wrong count)."""
    if draw(st.booleans()):
        return I(draw(st.sampled_from(values)))
    count = n if draw(st.integers(0, 6)) else draw(st.sampled_from([1, n + 1]))
    return TUP(*(I(draw(st.sampled_from(values))) for _ in range(count)))


@st.composite
def conv_case(draw: st.DrawFn, name: str) -> Case:
    n = 1 if name == "conv1d" else 2
    transposed = name.startswith("conv_transpose")
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    batch = draw(st.sampled_from([None, 1, 2, 0]))
    spatial = tuple(draw(st.sampled_from([1, 2, 3, 4, 5, 0])) for _ in range(n))
    sizes = ((batch,) if batch is not None else ()) + (c_in,) + spatial
    if draw(st.integers(0, 6)) == 0:
        sizes = sizes[:-1]  # a wrong rank
    dt = draw(st.sampled_from([DT.F32, DT.F32, DT.F64, DT.F16, DT.I64, DT.I32, DT.U8,
                               DT.BOOL, DT.C64]))
    wdt = dt if draw(st.integers(0, 5)) else draw(DTYPES)
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    if transposed:
        wshape = (c_in, c_out // groups) + kernel
    else:
        wshape = (c_out, c_in // groups) + kernel
    if draw(st.integers(0, 6)) == 0:
        wshape = (wshape[0] + 1,) + wshape[1:]
    kw: dict[str, V] = {}
    string_padding = not transposed and draw(st.integers(0, 4)) == 0
    if draw(st.booleans()):
        bsize = c_out if draw(st.integers(0, 5)) else c_out + 1
        # (intentional divergence: torch's padding='same' path takes a bias of another
        # dtype and converts it; gtdsl asks for the input's dtype on every path)
        bdt = wdt if draw(st.integers(0, 5)) or string_padding else draw(DTYPES)
        if transposed and bdt is not dt and torch.can_cast(
                torch.promote_types(DT_TORCH[bdt], DT_TORCH[dt]), DT_TORCH[dt]) and \
                dt not in COMPLEX and dt is not DT.BF16:
            bdt = dt  # (where torch's transposed kernel converts the bias, gtdsl refuses)
        kw["bias"] = T((bsize,), bdt)
    maybe(kw, "stride", draw(optional(st.just(_spatial_arg(draw, n, [1, 1, 2, 3, 0])))))
    if string_padding:
        kw["padding"] = S(draw(st.sampled_from(["same", "valid", "full"])))
    else:
        maybe(kw, "padding", draw(optional(st.just(_spatial_arg(draw, n, [0, 1, 2, -1])))))
    maybe(kw, "dilation", draw(optional(st.just(_spatial_arg(draw, n, [1, 1, 2, 0])))))
    if transposed:
        maybe(kw, "output_padding", draw(optional(st.just(_spatial_arg(draw, n, [0, 0, 1, 2])))))
    if groups != 1 or draw(st.integers(0, 5)) == 0:
        kw["groups"] = I(groups if draw(st.integers(0, 5)) else draw(st.sampled_from([0, 2])))
    if transposed and len(sizes) in (3, 4):
        # torch is of two minds about a transposed convolution whose output size is 0: an
        # empty result for some inputs, "Output size is too small" for others; gtdsl refuses
        # it always (the second), so the cases where torch takes the first are not drawn
        def one(v: V | None, default: int) -> list[int]:
            if v is None:
                return [default] * n
            value = v.arg.value
            return [a.value for a in value] if isinstance(value, tuple) else [value] * n

        st_, pa, op_, di = (one(kw.get(k), d) for k, d in (
            ("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)))
        if all(len(v) == n for v in (st_, pa, op_, di)):
            outs = [(sz - 1) * s_ - 2 * p_ + d_ * (k_ - 1) + o_ + 1 for sz, s_, p_, d_, k_, o_
                    in zip(sizes[-n:], st_, pa, di, kernel, op_)]
            assume(0 not in outs)
    return Case([T(sizes, dt), T(wshape, wdt)], kw)


@st.composite
def pool_case(draw: st.DrawFn, name: str) -> Case:
    n = 1 if name.endswith("1d") else 2
    sizes = tuple(draw(st.sampled_from([1, 2, 3, 4, 5, 0])) for _ in range(n))
    lead = draw(st.sampled_from([(2,), (1, 2), (0, 2), (2, 1), ()]))
    dt = draw(st.sampled_from([DT.F32, DT.F32, DT.F64, DT.BF16, DT.I64, DT.I32, DT.U8,
                               DT.BOOL, DT.C64]))
    x = T(lead + sizes, dt)
    kw: dict[str, V] = {}
    if name.startswith("adaptive"):
        # (intentional divergence: torch computes an average pooling to one value per dim
        # as a mean of the last dims, without checking the input's rank; gtdsl checks it)
        ones = [1] if name.startswith("adaptive_max") or len(lead) else [2]
        if draw(st.booleans()):
            out = I(draw(st.sampled_from([*ones, 2, 3, 0])))
        else:
            out = TUP(*(draw(st.sampled_from([*map(I, ones), I(2), I(3), NONE]))
                        for _ in range(n)))
        if name.startswith("adaptive_max"):
            maybe(kw, "return_indices", draw(optional(st.booleans().map(B))))
        return Case([x, out], kw)
    kernel = _spatial_arg(draw, n, [1, 2, 3, 0])
    maybe(kw, "stride", draw(optional(st.just(_spatial_arg(draw, n, [1, 2, 3, 0])))))
    maybe(kw, "padding", draw(optional(st.just(_spatial_arg(draw, n, [0, 1, 2])))))
    maybe(kw, "ceil_mode", draw(optional(st.booleans().map(B))))
    if name.startswith("max"):
        maybe(kw, "dilation", draw(optional(st.just(_spatial_arg(draw, n, [1, 2])))))
        maybe(kw, "return_indices", draw(optional(st.booleans().map(B))))
    else:
        maybe(kw, "count_include_pad", draw(optional(st.booleans().map(B))))
    return Case([x, kernel], kw)


# ---------------------------------------------------------------------------- norms


def _channel_vec(draw: st.DrawFn, c: int, dt: DT) -> V | None:
    if not draw(st.booleans()):
        return None
    n = c if draw(st.integers(0, 6)) else c + 1
    return T((n,), dt if draw(st.integers(0, 6)) else draw(DTYPES))


@st.composite
def norm_case(draw: st.DrawFn, name: str) -> Case:
    c = draw(st.integers(1, 4))
    n = draw(st.sampled_from([1, 2, 3, 0]))
    spatial = tuple(draw(st.sampled_from([1, 2, 3])) for _ in range(draw(st.integers(0, 2))))
    sizes = (n, c) + spatial if draw(st.integers(0, 8)) else (c,)
    dt = draw(st.sampled_from([DT.F32, DT.F32, DT.F64, DT.BF16, DT.I64, DT.C64]))
    x = T(sizes, dt)
    kw: dict[str, V] = {}
    if name == "group_norm":
        maybe(kw, "weight", _channel_vec(draw, c, dt))
        maybe(kw, "bias", _channel_vec(draw, c, dt))
        return Case([x, I(draw(st.sampled_from([1, 1, 2, 3, c, 0])))], kw)
    if name == "batch_norm":
        stats = [_channel_vec(draw, c, dt) or NONE, _channel_vec(draw, c, dt) or NONE]
        if draw(st.integers(0, 3)):
            stats = [T((c,), dt), T((c,), dt)]
        maybe(kw, "weight", _channel_vec(draw, c, dt))
        maybe(kw, "bias", _channel_vec(draw, c, dt))
        maybe(kw, "training", draw(optional(st.booleans().map(B))))
        return Case([x, *stats], kw)
    # (intentional divergence: torch's instance_norm reads its running statistics in some
    # other dtypes, gtdsl asks for the input's, as for batch_norm; so they are drawn so)
    for key in ("running_mean", "running_var"):
        if draw(st.integers(0, 2)) == 0:
            kw[key] = T((c if draw(st.integers(0, 6)) else c + 1,), dt)
    for key in ("weight", "bias"):
        maybe(kw, key, _channel_vec(draw, c, dt) if draw(st.integers(0, 2)) == 0 else None)
    if "running_mean" in kw and "running_var" not in kw:
        kw["running_var"] = T((c,), dt)
    if "running_var" in kw and "running_mean" not in kw:
        kw["running_mean"] = T((c,), dt)
    maybe(kw, "use_input_stats", draw(optional(st.booleans().map(B))))
    return Case([x], kw)


@st.composite
def interpolate_case(draw: st.DrawFn) -> Case:
    spatial = draw(st.integers(0, 4))
    sizes = (draw(st.sampled_from([1, 2, 0])), draw(st.sampled_from([1, 2]))) + tuple(
        draw(st.sampled_from([1, 2, 3, 4])) for _ in range(spatial))
    dt = draw(st.sampled_from([DT.F32, DT.F32, DT.F64, DT.BF16, DT.U8, DT.I64]))
    kw: dict[str, V] = {}
    mode = draw(st.sampled_from(["nearest", "linear", "bilinear", "bicubic", "trilinear",
                                 "area", "nearest-exact", "cubic"]))
    if draw(st.integers(0, 4)):
        kw["mode"] = S(mode)
    k = max(spatial, 1)
    form = draw(st.sampled_from(["size", "scale", "both", "none"] if draw(st.integers(0, 5))
                                == 0 else ["size", "scale"]))
    if form in ("size", "both"):
        vals = [draw(st.sampled_from([1, 2, 5, 0])) for _ in range(
            k if draw(st.integers(0, 5)) else k + 1)]
        kw["size"] = TUP(*map(I, vals)) if draw(st.booleans()) or len(vals) != 1 else \
            I(vals[0])
    if form in ("scale", "both"):
        vals = [draw(st.sampled_from([2.0, 0.5, 1.5, 3, 2])) for _ in range(k)]
        kw["scale_factor"] = TUP(*map(number, vals)) if draw(st.booleans()) else \
            number(vals[0])
    if mode in ("linear", "bilinear", "bicubic", "trilinear") and draw(st.booleans()):
        kw["align_corners"] = B(draw(st.booleans()))
    return Case([T(sizes, dt)], kw)


# ---------------------------------------------------------------------------- scatter, pad


def _smaller(draw: st.DrawFn, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """Sizes at most these (sometimes one larger)."""
    out = [draw(st.integers(0, s)) if s else 0 for s in sizes]
    if out and draw(st.integers(0, 6)) == 0:
        i = draw(st.integers(0, len(out) - 1))
        out[i] += 1
    return tuple(out)


@st.composite
def scatter_case(draw: st.DrawFn, name: str) -> Case:
    sizes = draw(shapes(0, 3))
    dt = draw(DTYPES)
    x, labels = draw(labelled(sizes, dt))
    dim = draw(dim_arg(len(sizes), labels))
    isizes = _smaller(draw, sizes)
    if draw(st.integers(0, 8)) == 0:
        isizes = isizes[:-1]
    if 0 in sizes and 0 not in isizes:  # (an index into an empty dim is a value error)
        isizes = tuple(0 for _ in sizes)
    # (torch skips its index dtype check for a 0-dim input; gtdsl asks for i64 always)
    idt = draw(st.sampled_from([DT.I64, DT.I64, DT.I64, DT.I32])) if sizes else DT.I64
    index = T(isizes, idt, fill="zeros")
    if name == "scatter" and draw(st.integers(0, 3)) == 0:
        src = draw(fill_number())
    else:
        ssizes = tuple(s + draw(st.sampled_from([0, 0, 1])) for s in isizes)
        if draw(st.integers(0, 8)) == 0 and ssizes:
            ssizes = ssizes[:-1]
        src = T(ssizes, dt if draw(st.integers(0, 5)) else draw(DTYPES))
    kw: dict[str, V] = {}
    if name == "scatter_reduce":
        # (torch checks the reduction's name only for an input of at least one dim)
        pos = [x, dim, index, src, S(draw(st.sampled_from(
            ["sum", "prod", "mean", "amax", "amin", "max", "min"] + (["add"] if sizes
                                                                     else []))))]
        maybe(kw, "include_self", draw(optional(st.booleans().map(B))))
        return Case(pos, kw)
    return Case([x, dim, index, src], kw)


@st.composite
def index_into_case(draw: st.DrawFn, name: str) -> Case:
    # (no empty dims: an index into one is out of range, a value error torch reports as a
    # shape error on some paths)
    sizes = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    dt = draw(DTYPES)
    x, labels = draw(labelled(sizes, dt))
    dim = draw(dim_arg(len(sizes), labels))
    n = draw(st.integers(0, 3))
    idt = draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.U8]))
    index = T((n,) if draw(st.integers(0, 5)) else (), idt, fill="zeros")
    p = dim.arg.value if isinstance(dim.arg.value, int) else (
        labels.index(dim.arg.label) if dim.arg.label in labels else 0)
    ssizes = list(sizes)
    if ssizes and -len(ssizes) <= p < len(ssizes):
        ssizes[p] = n if draw(st.integers(0, 5)) else n + 1
    if ssizes and draw(st.integers(0, 8)) == 0:
        ssizes[draw(st.integers(0, len(ssizes) - 1))] += 1
    src = T(tuple(ssizes), dt if draw(st.integers(0, 5)) else draw(DTYPES))
    kw: dict[str, V] = {}
    if name == "index_add":
        maybe(kw, "alpha", draw(optional(st.sampled_from([1, 2]).map(I))))
    return Case([x, dim, index, src], kw)


@st.composite
def pad_case(draw: st.DrawFn) -> Case:
    sizes = draw(shapes(0, 5))
    x = T(sizes, draw(DTYPES))
    k = draw(st.integers(0, 4))
    amounts = [draw(st.sampled_from([0, 1, 2, 3, -1])) for _ in range(2 * k)]
    if draw(st.integers(0, 8)) == 0:
        amounts.append(1)
    kw: dict[str, V] = {}
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular", "wrap"]))
    if draw(st.integers(0, 3)):
        kw["mode"] = S(mode)
    if draw(st.integers(0, 3)) == 0:
        kw["value"] = draw(fill_number())
    return Case([x, TUP(*map(I, amounts))], kw)


@st.composite
def index_put_case(draw: st.DrawFn) -> Case:
    sizes = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    dt = draw(DTYPES)
    x = T(sizes, dt)
    k = draw(st.integers(0, len(sizes) + 1))
    bshape = draw(shapes(0, 2))
    idx = []
    for _ in range(k):
        idt = draw(st.sampled_from([DT.I64, DT.I64, DT.I32, DT.F32]))
        s = bshape if draw(st.integers(0, 5)) else draw(shapes(0, 2))
        idx.append(T(s, idt, fill="zeros"))
    target = bshape + sizes[k:]
    vshape = draw(st.sampled_from([target, target[1:], (), target[:-1] + (1,) if target
                                   else (1,)]))
    if draw(st.integers(0, 6)) == 0:
        vshape = vshape + (2,)
    vdt = dt if draw(st.integers(0, 5)) else draw(DTYPES)
    kw: dict[str, V] = {}
    maybe(kw, "accumulate", draw(optional(st.booleans().map(B))))
    return Case([x, TUP(*idx), T(vshape, vdt)], kw)


# ============================================================================ the table

CASES: dict[str, st.SearchStrategy[Case]] = {}


def _register(names: str | tuple[str, ...], make: Callable[[str], st.SearchStrategy[Case]]
              ) -> None:
    for name in (names,) if isinstance(names, str) else names:
        CASES[name] = make(name)


_register(("exp", "exp2", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh",
           "erf", "sigmoid", "neg", "abs", "relu", "gelu", "silu", "softplus", "dropout",
           "isnan", "logical_not", "floor", "ceil", "round", "trunc", "frac", "nan_to_num",
           "isinf", "isfinite", "leaky_relu", "elu", "selu", "celu", "mish", "hardswish",
           "hardsigmoid", "logsigmoid", "softsign"), unary)
_register("prelu", lambda n: prelu_case())
_register(("add", "sub", "mul", "div", "floor_divide", "remainder", "pow", "eq", "ne", "lt",
           "le", "gt", "ge", "logical_and", "logical_or", "minimum", "maximum"), binary_case)
_register("where", lambda n: where_case())
_register("clamp", lambda n: clamp_case())
_register("masked_fill", lambda n: masked_fill_case())
_register("to", lambda n: to_case())
_register(("contiguous", "T"), lambda n: one_tensor())
_register(("sum", "prod", "mean", "amax", "amin", "logsumexp", "any", "all", "argmax",
           "argmin", "max", "min", "var", "std", "norm"), reduce_case)
_register(("softmax", "log_softmax"), lambda n: softmax_case())
_register(("layer_norm", "rms_norm"), norm_block_case)
_register(("matmul", "bmm"), matmul_case)
_register("linear", lambda n: linear_case())
_register("einsum", lambda n: einsum_case())
_register("scaled_dot_product_attention", lambda n: sdpa_case())
_register(("reshape", "view"), lambda n: reshape_case())
_register("flatten", lambda n: flatten_case())
_register("unflatten", lambda n: unflatten_case())
_register("transpose", lambda n: transpose_case())
_register("permute", lambda n: permute_case())
_register("squeeze", lambda n: squeeze_case())
_register("unsqueeze", lambda n: unsqueeze_case())
_register(("expand", "broadcast_to"), expand_case)
_register(("cat", "stack"), tensor_list)
_register("split", lambda n: split_case())
_register("chunk", lambda n: chunk_case())
_register("narrow", lambda n: narrow_case())
_register("rename", lambda n: rename_case())
_register(("tril", "triu"), lambda n: tri_case())
_register("getitem", lambda n: getitem_case())
_register("index_select", lambda n: index_select_case())
_register("gather", lambda n: gather_case())
_register("embedding", lambda n: embedding_case())
_register(("nonzero", "masked_select", "unique"), data_case)
_register(("zeros", "ones", "empty", "randn", "rand"), lambda n: new_case())
_register("full", lambda n: full_case())
_register(("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "full_like"),
          like_case)
_register("arange", lambda n: arange_case())
_register(("cross_entropy", "nll_loss"), class_loss_case)
_register("mse_loss", lambda n: mse_case())
_register(("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "sort", "argsort"),
          along_case)
_register(("topk", "kthvalue"), select_case)
_register("flip", lambda n: flip_case())
_register("roll", lambda n: roll_case())
_register("repeat", lambda n: repeat_case())
_register("tile", lambda n: tile_case())
_register("repeat_interleave", lambda n: repeat_interleave_case())
_register("one_hot", lambda n: one_hot_case())
_register(("conv1d", "conv2d", "conv_transpose2d"), conv_case)
_register(("group_norm", "batch_norm", "instance_norm"), norm_case)
_register("interpolate", lambda n: interpolate_case())
_register(("scatter", "scatter_add", "scatter_reduce"), scatter_case)
_register(("index_add", "index_copy"), index_into_case)
_register("pad", lambda n: pad_case())
_register("index_put", lambda n: index_put_case())
_register(("max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"), pool_case)

# Examples drawn per op (GTDSL_OP_EXAMPLES=1000 for a longer search than CI's).
EXAMPLES = int(os.environ.get("GTDSL_OP_EXAMPLES", "50"))

# Ops deliberately without a case, each with its reason. Keep this empty or tiny.
EXCLUDED: dict[str, str] = {}


def test_every_op_has_a_case() -> None:
    assert not set(EXCLUDED) & set(CASES)
    assert set(CASES) == set(OPS) - set(EXCLUDED), (
        f"ops without a case: {sorted(set(OPS) - set(EXCLUDED) - set(CASES))}; "
        f"cases for no op: {sorted(set(CASES) - set(OPS))}")


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_op_matches_torch(name: str, data: st.DataObject) -> None:
    check(name, data.draw(CASES[name], label="case"))


# ============================================================================ promotion


def _promotion_operand(dt: DT, form: str) -> tuple[Arg, Any]:
    sizes = (2,) if form == "tensor" else ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        return T(sizes, dt).arg, torch.empty(sizes, dtype=DT_TORCH[dt], device="meta")


def _binary_dtype(name: str, x: Arg, y: Arg) -> DT | None:
    """The relation's dtype, or None where it rejects the operands."""
    try:
        out = OPS[name].relation(Rel(), {"input": x, "other": y})
    except OpError:
        return None
    assert isinstance(out, TTensor)
    return out.dtype


def _true_divide(dt: DT) -> DT:
    """torch's ``/``: integers and bool divide into the default float dtype."""
    return DT.F32 if dt in (DT.BOOL, *INTS) else dt


def _expected(promoted: DT) -> dict[str, DT | None]:
    """add gives torch.result_type, ``/`` its true-divide dtype, comparisons bool (ordering
    ones reject complex operands, like torch)."""
    want: dict[str, DT | None] = {"add": promoted, "div": _true_divide(promoted)}
    for op in COMPARE:
        ordering = op not in ("eq", "ne")
        want[op] = None if ordering and promoted.category is DT.COMPLEX else DT.BOOL
    return want


PAIRS = list(itertools.product(TORCH_DTYPES, repeat=2))
FORMS = [("tensor", "tensor"), ("tensor", "zero"), ("zero", "tensor"), ("zero", "zero")]


@pytest.mark.parametrize("forms", FORMS, ids=["-".join(f) for f in FORMS])
def test_promotion_tensors(forms: tuple[str, str]) -> None:
    """Every ordered pair of concrete dtypes, as tensors with dims and 0-dim tensors."""
    bad = []
    for a, b in PAIRS:
        (xa, xt), (ya, yt) = _promotion_operand(a, forms[0]), _promotion_operand(b, forms[1])
        want = _expected(TORCH_DT[torch.result_type(xt, yt)])
        got = {n: _binary_dtype(n, xa, ya) for n in want}
        if got != want:
            bad.append((a, b, got, want))
    assert not bad, bad[:3]


@pytest.mark.parametrize("scalar", [3, 2.5, True], ids=["int", "float", "bool"])
@pytest.mark.parametrize("form", ["tensor", "zero"])
def test_promotion_scalars(scalar: int | float | bool, form: str) -> None:
    """Every concrete dtype against a Python int, float and bool, on either side."""
    bad = []
    for a in TORCH_DTYPES:
        xa, xt = _promotion_operand(a, form)
        s = number(scalar).arg
        want = _expected(TORCH_DT[torch.result_type(xt, scalar)])
        for order in ((xa, s), (s, xa)):
            got = {n: _binary_dtype(n, *order) for n in want}
            if got != want:
                bad.append((a, scalar, got, want))
    assert not bad, bad[:3]


def test_true_divide_matches_torch() -> None:
    """``_true_divide`` above is torch's rule (checked here where torch runs: not c32)."""
    for a, b in PAIRS:
        if DT.C32 in (a, b) or DT.BC32 in (a, b):
            continue
        x = torch.empty((2,), dtype=DT_TORCH[a], device="meta")
        y = torch.empty((2,), dtype=DT_TORCH[b], device="meta")
        assert TORCH_DT[torch.div(x, y).dtype] == _true_divide(
            TORCH_DT[torch.result_type(x, y)]), (a, b)
