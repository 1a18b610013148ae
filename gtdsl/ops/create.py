"""Creation ops (zeros ones full empty arange randn rand and the ``*_like`` forms) and the
losses (cross_entropy, nll_loss, mse_loss). Like torch, a new tensor is f32 on the CPU unless
``dtype=`` and ``device=`` say otherwise."""

from __future__ import annotations

import math

from gtdsl.ops.base import (
    ANY_SHAPE, DT, UNKNOWN, Arg, OpError, Rel, Size, TDim, TOther, TScalar, TShape, TTensor, TTuple, as_size,
    broadcast_shapes, promote_types, rank_of, require_float, require_inexact, same_device,
    seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import CPU, Dev, ScalarKind, TDyn, TList, Type
from gtdsl.types.lattice import SCALAR_DTYPE
from gtdsl.types.torchrules import probe


def _dtype(arg: Arg, default: DT) -> DT:
    v = arg.value
    if isinstance(v, DT):
        return v
    if v is None:
        return default
    if isinstance(arg.type, TOther) and arg.type.what == "dtype":
        return DT.ANY
    raise OpError("GT2016", f"`dtype` must be a dtype such as f32, got {arg.type}", "dtype")


def _device(arg: Arg) -> Dev:
    v = arg.value
    if isinstance(v, Dev):
        return v
    if v is None:
        return CPU
    if isinstance(arg.type, TOther) and arg.type.what == "device":
        return Dev()
    raise OpError("GT2016", f"`device` must be a device such as cuda, got {arg.type}",
                  "device")


def _shape(rel: Rel, arg: Arg, name: str) -> TShape:
    elems = seq_elems(arg)
    if elems is None and isinstance(arg.type, TTuple):  # a tuple value: its element types
        elems = tuple(Arg(t, UNKNOWN) for t in arg.type.elems)
    if elems is None and isinstance(arg.type, (TDyn, TList)):
        rel.check(f"`{name}`: a sequence of non-negative ints")
        return ANY_SHAPE  # its length is known only at run time
    if elems is None:
        raise OpError("GT2014", f"`{name}` must be sizes written in place, e.g. (n, 4)", name)
    dims = []
    for i, e in enumerate(elems):
        v = as_size(static_int(e, name))
        if v is not None and (c := v.constant()) is not None and c < 0:
            raise OpError("GT2026", f"sizes must be non-negative, got {c}", f"{name}[{i}]",
                          "a tensor's sizes are 0 or more")
        dims.append(TDim(e.label if not isinstance(e.value, int) else None, v))
    return TShape(None, tuple(dims))


def _random_dtype(op: str, dt: DT) -> DT:
    """rand and randn draw floating-point or complex numbers only."""
    if op.startswith("rand"):
        require_inexact(dt, "dtype", op)
    return dt


def _make_new(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        return TTensor(_random_dtype(op, _dtype(a["dtype"], DT.F32)),
                       _shape(rel, a["size"], "size"),
                       _device(a["device"]))

    return relation


for _op in ("zeros", "ones", "empty", "randn", "rand"):
    define(_op, "*size, dtype=None, device=None", "torch.{name}", "creation",
           method=False)(_make_new(_op))


def _fill_dtype(value: Arg) -> DT:
    t = value.type
    if isinstance(t, TScalar):
        return SCALAR_DTYPE[t.kind.value]
    if isinstance(t, TTensor):
        return t.dtype
    return DT.ANY


@define("full", "size, fill_value, *, dtype=None, device=None", "torch.full", "creation",
        method=False)
def _full(rel: Rel, a: dict[str, Arg]) -> Type:
    return TTensor(_dtype(a["dtype"], _fill_dtype(a["fill_value"])),
                   _shape(rel, a["size"], "size"),
                   _device(a["device"]))


def _make_like(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        device = x.device if a["device"].value is None else _device(a["device"])
        return TTensor(_random_dtype(op, _dtype(a["dtype"], x.dtype)), x.shape, device)

    return relation


for _op in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"):
    define(_op, "input, *, dtype=None, device=None", "torch.{name}",
           "creation")(_make_like(_op))


@define("full_like", "input, fill_value, *, dtype=None, device=None", "torch.full_like",
        "creation")
def _full_like(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    device = x.device if a["device"].value is None else _device(a["device"])
    return TTensor(_dtype(a["dtype"], x.dtype), x.shape, device)


@define("arange", "start, end=None, step=1, *, dtype=None, device=None", "torch.arange",
        "creation", method=False)
def _arange(rel: Rel, a: dict[str, Arg]) -> Type:
    args = [a["start"], a["end"], a["step"]]
    if a["end"].value is None and not isinstance(a["end"].type, TScalar):
        args = [Arg(TScalar(ScalarKind.INT, Size.of(0)), 0), a["start"], a["step"]]
    start, end, step = args
    floats = any(isinstance(x.type, TScalar) and x.type.kind is ScalarKind.FLOAT for x in args)
    dtype = _dtype(a["dtype"], DT.F32 if floats else DT.I64)
    if dtype is DT.BOOL or dtype.category is DT.COMPLEX:
        raise OpError("GT2002", f"arange makes real numbers, not {dtype}", "dtype",
                      "use an integer or floating-point dtype")
    size: Size | None = None
    numbers = [x.value for x in args]
    if floats and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for v in numbers):
        # like torch: ceil((end - start) / step), computed in double precision, or for i64
        # before torch 2.14 on the numbers truncated to integers
        o0, o1, ost = numbers
        if dtype is DT.I64 and not probe("arange_i64_in_double"):
            numbers = [int(v) for v in numbers]
        v0, v1, st = numbers
        if dtype.category in (DT.INT, DT.UINT) and probe("arange_int_checks_truncated"):
            # torch 2.6: the step and the direction are checked on the numbers as the dtype
            c0, c1, cst = (int(v) for v in (o0, o1, ost))
            if cst == 0:
                raise OpError("GT2026", f"arange step {ost} is 0 as {dtype}", "step")
            if (c1 - c0) * cst < 0:
                raise OpError("GT2026", f"arange from {c0} to {c1} (as {dtype}) with step "
                              f"{cst} goes the wrong way", "end",
                              "the step's sign must take start towards end")
            n = math.ceil((v1 - v0) / st)
            if n < 0:  # torch: an invalid size
                raise OpError("GT2026", f"arange from {o0} to {o1} with step {ost} has "
                              f"{n} elements", "end")
            size = Size.of(n)
        else:
            if st == 0:
                raise OpError("GT2026", "arange step must not be 0", "step")
            if (o1 - o0) / ost < 0:
                raise OpError("GT2026", f"arange from {v0} to {v1} with step {st} goes the "
                              "wrong way", "end", "the step's sign must take start towards end")
            size = Size.of(math.ceil((v1 - v0) / st))
    if not floats:
        s0, s1, st = (as_size(static_int(x, n)) for x, n in zip(args, ("start", "end", "step")))
        if s0 is not None and s1 is not None and st is not None:
            c = st.constant()
            if c == 0:
                raise OpError("GT2026", "arange step must not be 0", "step")
            if c == 1:
                size = s1 - s0
                if (k := size.constant()) is not None and k < 0:
                    raise OpError("GT2026", "arange end is before start", "end")
            elif c is not None and (a0 := s0.constant()) is not None and (
                    a1 := s1.constant()) is not None:
                if (a1 - a0) * c < 0:
                    raise OpError("GT2026", f"arange from {a0} to {a1} with step {c} goes the "
                                  "wrong way", "end", "the step's sign must take start "
                                  "towards end")
                size = Size.of(len(range(a0, a1, c)))
        if size is not None and size.constant() is None:
            rel.check("arange: end >= start", ("ge", size, Size.of(0)))
    return TTensor(dtype, TShape(None, (TDim(None, size),)), _device(a["device"]))


# ============================================================================ losses


def _reduction(a: dict[str, Arg]) -> str | None:
    r = a["reduction"].value
    if isinstance(r, str) and r not in ("mean", "sum", "none"):
        raise OpError("GT2027", f"reduction must be 'mean', 'sum' or 'none', got {r!r}",
                      "reduction")
    return r if isinstance(r, str) else None


def _class_loss(rel: Rel, a: dict[str, Arg], op: str) -> Type:
    x, y = tensor_of(a["input"], "input"), tensor_of(a["target"], "target")
    require_float(x.dtype, "input", op)
    device = same_device([("input", x), ("target", y)], f"`{op}`")
    red = _reduction(a)
    rx = rank_of(x.shape)
    if rx == 0:
        raise OpError("GT2005", f"`{op}` input needs a class dim", "input")
    dtype = x.dtype
    if op == "nll_loss" or not _probabilities(x, y):
        # like torch: u8 class targets only without spatial dims (rank 1 or 2 input)
        byte = (DT.U8, DT.UINT) if rx in (1, 2, None) else ()
        if y.dtype not in (DT.I64, DT.ANY, DT.INT, *byte):
            raise OpError("GT2002", f"`{op}` class targets must be i64, got {y.dtype}",
                          "target", "convert with target.to(i64)")
        # class indices: target shape = input shape without the class dim (dim 1, or 0 if 1-D)
        if rx is not None:
            expect = x.shape.dims[:1] + x.shape.dims[2:] if rx >= 2 else ()
            ry = rank_of(y.shape)
            if rx == 1 and ry == 1:
                # like torch, one unbatched target may come as (1,) (torch 2.6: as (C,))
                one = Size.of(1) if probe("nll_loss_target_of_one") else x.shape.dims[0].size
                rel.equal(y.shape.dims[0].size, one, f"`{op}` target of a 1-dim input",
                          "target")
            elif ry is not None and ry != len(expect):
                raise OpError("GT2005", f"`{op}` target must have rank {len(expect)} for an "
                              f"input of rank {rx}, got {ry}", "target")
            else:
                for e, t in zip(expect[::-1], y.shape.dims[::-1]):
                    rel.equal(e.size, t.size, f"`{op}` target against input", "target")
            out = TShape(None, expect)
        else:
            out = y.shape
    else:  # class probabilities: exactly the input's shape
        if y.dtype.category is not DT.FLOAT and y.dtype is not DT.FLOAT:
            raise OpError("GT2002", f"`{op}` targets must be i64 classes or float "
                          f"probabilities, got {y.dtype}", "target")
        for i, (d, t) in enumerate(zip(x.shape.dims, y.shape.dims)):
            rel.equal(d.size, t.size, f"`{op}` probabilities dim {i} against the input",
                      "target")
        out = TShape(None, x.shape.dims[:1] + x.shape.dims[2:]) if rx and rx >= 2 else \
            TShape(None, ())
        dtype = promote_types(x.dtype, y.dtype)
    if red == "none":
        return TTensor(dtype, out, device)
    return TTensor(dtype, TShape(None, ()), device)


def _probabilities(x: TTensor, y: TTensor) -> bool:
    """torch reads the target as class probabilities iff it has the input's shape (when the
    shapes are unknown: iff it is floating-point)."""
    rx, ry = rank_of(x.shape), rank_of(y.shape)
    if rx is not None and ry is not None and all(
            d.size is not None and d.size.constant() is not None
            for d in x.shape.dims + y.shape.dims):
        return [d.size for d in x.shape.dims] == [d.size for d in y.shape.dims]
    return y.dtype.category is DT.FLOAT or y.dtype is DT.FLOAT


@define("cross_entropy", "input, target, weight=None, ignore_index=-100, reduction='mean', "
        "label_smoothing=0.0", "torch.nn.functional.cross_entropy", "loss", method=False)
def _cross_entropy(rel: Rel, a: dict[str, Arg]) -> Type:
    return _class_loss(rel, a, "cross_entropy")


@define("nll_loss", "input, target, weight=None, ignore_index=-100, reduction='mean'",
        "torch.nn.functional.nll_loss", "loss", method=False)
def _nll_loss(rel: Rel, a: dict[str, Arg]) -> Type:
    return _class_loss(rel, a, "nll_loss")


@define("mse_loss", "input, target, reduction='mean'", "torch.nn.functional.mse_loss", "loss",
        method=False)
def _mse(rel: Rel, a: dict[str, Arg]) -> Type:
    x, y = tensor_of(a["input"], "input"), tensor_of(a["target"], "target")
    device = same_device([("input", x), ("target", y)], "`mse_loss`")
    shape = broadcast_shapes(rel, [x.shape, y.shape], "`mse_loss`")
    dtype = promote_types(x.dtype, y.dtype)  # like torch, without the priority of dims
    require_float(dtype, "input", "mse_loss")
    if _reduction(a) == "none":
        return TTensor(dtype, shape, device)
    return TTensor(dtype, TShape(None, ()), device)
