"""Reductions (``sum mean max ... norm``) with ``dim`` (label, position or tuple) and
``keepdim``, and the normalisation blocks ``softmax log_softmax layer_norm rms_norm``."""

from __future__ import annotations

import math

from gtdsl.ops.base import (
    DOTS, DT, Arg, OpError, Rel, TDim, TOther, TShape, TTensor, TTuple, promote_types, real_dtype,
    reject_complex, require_float, require_inexact, resolve_dim, resolve_dims, same_device,
    seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import OPS, OpDef, define, parse_params
from gtdsl.types import Size, Type
from gtdsl.types.torchrules import probe


def _all_dims(arg: Arg) -> Arg:
    """``dim=()`` reduces every dim, as in torch (except any/all, where it reduces none)."""
    return Arg(TOther("none"), None) if arg.value == () else arg


def _nonempty(rel: Rel, x: TShape, arg: Arg, op: str) -> None:
    """Reductions without an identity (max, argmax...) reject an empty reduced dim."""
    positions = resolve_dims(x, arg, "dim")
    if positions is None:
        sizes = [d.size.constant() if d.size is not None else None for d in x.dims]
        if 0 in sizes:
            raise OpError("GT2004", f"`{op}` of an empty tensor has no value", "input",
                          "pass the dim to reduce, or make sure the tensor is not empty")
        if x.row is not None or None in sizes:
            dims = [d.size for d in x.dims if d.size is not None]
            if x.row is None and len(dims) == len(x.dims):
                total = Size.of(1)
                for dim_size in dims:
                    total = total * dim_size
                rel.check(f"`{op}`: the input is not empty", ("ge", total, Size.of(1)))
            else:
                rel.check(f"`{op}`: the input is not empty")
        return
    for p in positions:
        d = x.dims[p.index] if p.index is not None and p.index < len(x.dims) else None
        c = d.size.constant() if d is not None and d.size is not None else None
        if c == 0:
            raise OpError("GT2004", f"`{op}` over dim {p.negative}, which has size 0", "dim",
                          f"`{op}` has no identity: the reduced dim must not be empty")
        reduced = d.size if d is not None else None
        if c is None and reduced is not None:
            rel.check(f"`{op}`: dim {p.negative} is not empty", ("ge", reduced, Size.of(1)))
        elif c is None and (d is not None or x.row is not None):
            rel.check(f"`{op}`: dim {p.negative} is not empty")


def _keepdim_needs_dim(a: dict[str, Arg], op: str) -> None:
    if a["keepdim"].value is True and a["dim"].value is None and a["dim"].label is None:
        raise OpError("GT2013", f"`{op}` without `dim` reduces every dim and takes no "
                      "`keepdim`", "keepdim", f"pass the dim: {op}(x, dim=..., keepdim=True)")


def reduce_shape(x: TShape, arg: Arg, keepdim: object) -> TShape:
    positions = resolve_dims(x, arg, "dim")
    keep: bool | None = keepdim is True
    if keepdim not in (True, False):  # unknown flag: rank unknown
        keep = None
    if positions is None:
        if x.row is not None:
            return TShape(DOTS, ()) if keep is not False else TShape(None, ())
        if keep:
            return TShape(None, tuple(TDim(d.label, Size.of(1)) for d in x.dims))
        return TShape(None, ()) if keep is False else TShape(DOTS, ())
    if any(p.index is None for p in positions):
        # a dim inside the variadic part: the dims right of every reduced one survive
        first = min(p.negative for p in positions)
        kept = tuple(d for i, d in enumerate(x.dims) if i - len(x.dims) > first and not any(
            p.index == i for p in positions))
        return TShape(DOTS, kept)
    hit = {p.index for p in positions}
    if keep is None:
        return TShape(DOTS, ())
    dims = []
    for i, d in enumerate(x.dims):
        if i in hit:
            if keep:
                dims.append(TDim(d.label, Size.of(1)))
        else:
            dims.append(d)
    return TShape(x.row, tuple(dims))


def _reduce_dtype(op: str, dt: DT) -> DT:
    if op in ("sum", "prod"):
        return DT.I64 if dt in (DT.BOOL, DT.INT, DT.UINT) or dt.category in (
            DT.INT, DT.UINT) else dt
    if op in ("argmax", "argmin"):
        return DT.I64
    if op in ("any", "all"):
        return DT.U8 if dt is DT.U8 else DT.BOOL if dt is not DT.ANY else DT.ANY
    return dt


def _make_reduce(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        if op == "mean":
            require_inexact(x.dtype, "input", op)
        if op in ("amax", "amin") or (op == "logsumexp" and not probe("logsumexp_complex")):
            reject_complex(x.dtype, "input", op)
        if op == "logsumexp" and (a["dim"].value is None and a["dim"].label is None):
            raise OpError("GT2013", "`logsumexp` needs `dim`", "dim",
                          "pass the dims to reduce, e.g. logsumexp(x, -1)")
        if op == "prod":
            if seq_elems(a["dim"]) is not None:
                raise OpError("GT2016", "`prod` takes one dim, not a tuple", "dim",
                              "reduce one dim at a time")
            _keepdim_needs_dim(a, op)
        dim = a["dim"] if op in ("any", "all") else _all_dims(a["dim"])
        if op in ("amax", "amin"):
            _nonempty(rel, x.shape, dim, op)
        dtype = _reduce_dtype(op, x.dtype)
        if op == "logsumexp" and dtype in (DT.BOOL, DT.I64, DT.I32, DT.I16, DT.I8, DT.U8,
                                           DT.INT, DT.UINT):
            dtype = DT.F32
        return TTensor(dtype, reduce_shape(x.shape, dim, a["keepdim"].value), x.device)

    return relation


def _dim_of_size_one(x: TTensor, a: dict[str, Arg]) -> bool:
    """``a["dim"]`` names one dim of ``x`` whose size is known to be 1."""
    if a["dim"].value is None and a["dim"].label is None or x.shape.row is not None:
        return False
    try:
        pos = resolve_dim(x.shape, a["dim"], "dim")
    except OpError:
        return False
    if pos.index is None or not 0 <= pos.index < len(x.shape.dims):
        return False
    size = x.shape.dims[pos.index].size
    return size is not None and size.constant() == 1


def _make_arg_reduce(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        if seq_elems(a["dim"]) is not None:
            raise OpError("GT2016", f"`{op}` takes one dim, not a tuple", "dim")
        trivial = probe("arg_extreme_trivial_dim") and _dim_of_size_one(x, a)  # torch 2.6
        if not trivial:
            reject_complex(x.dtype, "input", op)
        if x.dtype is DT.BOOL and not trivial:
            raise OpError("GT2002", f"`{op}` is not defined on bool tensors", "input",
                          "convert first: x.to(u8)")
        _nonempty(rel, x.shape, a["dim"], op)
        return TTensor(DT.I64, reduce_shape(x.shape, a["dim"], a["keepdim"].value), x.device)

    return relation


def _make_max_min(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        reject_complex(x.dtype, "input", op)
        _keepdim_needs_dim(a, op)
        if seq_elems(a["dim"]) is not None:
            raise OpError("GT2016", f"`{op}` takes one dim, not a tuple", "dim",
                          "use amax/amin to reduce several dims")
        _nonempty(rel, x.shape, a["dim"], op)
        if a["dim"].value is None and a["dim"].label is None:
            return TTensor(x.dtype, TShape(None, ()), x.device)
        shape = reduce_shape(x.shape, a["dim"], a["keepdim"].value)
        return TTuple((TTensor(x.dtype, shape, x.device), TTensor(DT.I64, shape, x.device)))

    return relation


def _make_var(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        require_inexact(x.dtype, "input", op)
        shape = reduce_shape(x.shape, _all_dims(a["dim"]), a["keepdim"].value)
        return TTensor(real_dtype(x.dtype), shape, x.device)

    return relation


def _norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_inexact(x.dtype, "input", "norm")
    p = a["p"].value
    if isinstance(p, (int, float)) and not isinstance(p, bool) and math.isinf(p):
        _nonempty(rel, x.shape, _all_dims(a["dim"]), "norm")  # the max norm has no identity
    shape = reduce_shape(x.shape, _all_dims(a["dim"]), a["keepdim"].value)
    return TTensor(real_dtype(x.dtype), shape, x.device)


for _name in ("sum", "prod", "mean", "amax", "amin", "logsumexp", "any", "all"):
    OPS[_name] = OpDef(_name, parse_params("input, dim, keepdim=False" if _name == "logsumexp"
                                           else "input, dim=None, keepdim=False"),
                       _make_reduce(_name), f"torch.{_name}", "reduction")
for _name in ("argmax", "argmin"):
    OPS[_name] = OpDef(_name, parse_params("input, dim=None, keepdim=False"),
                       _make_arg_reduce(_name), f"torch.{_name}", "reduction")
for _name in ("max", "min"):
    OPS[_name] = OpDef(_name, parse_params("input, dim=None, keepdim=False"),
                       _make_max_min(_name), f"torch.{_name}", "reduction")
for _name in ("var", "std"):
    OPS[_name] = OpDef(_name, parse_params("input, dim=None, *, correction=1, keepdim=False"),
                       _make_var(_name), f"torch.{_name}", "reduction")
OPS["norm"] = OpDef("norm", parse_params("input, p=2, dim=None, keepdim=False"), _norm,
                    "torch.linalg.vector_norm", "reduction")


# ============================================================================ normalisation


@define(("softmax", "log_softmax"), "input, dim, dtype=None", "torch.{name}", "normalisation")
def _softmax(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    resolve_dim(x.shape, a["dim"], "dim")
    dtype = a["dtype"].value if isinstance(a["dtype"].value, DT) else x.dtype
    require_float(dtype, "input", "softmax")
    return TTensor(dtype, x.shape, x.device)


def normalized_tail(rel: Rel, x: TTensor, a: dict[str, Arg], op: str) -> tuple[TDim, ...]:
    """Check ``normalized_shape`` against x's trailing dims and weight/bias against it."""
    elems = seq_elems(a["normalized_shape"])
    if elems is None:
        raise OpError("GT2016", "`normalized_shape` must be a tuple of sizes", "normalized_shape",
                      "write the trailing sizes as a tuple, e.g. (d,)")
    elems_sizes = [static_int(e, "normalized_shape") for e in elems]
    sizes = [Size.of(s) if isinstance(s, int) else s for s in elems_sizes]
    k = len(sizes)
    if x.shape.row is None and len(x.shape.dims) < k:
        raise OpError("GT2005", f"`{op}` normalises the last {k} dims, but the input has "
                      f"rank {len(x.shape.dims)}", "input")
    tail = list(x.shape.dims[len(x.shape.dims) - k:]) if len(x.shape.dims) >= k else [
        TDim()] * (k - len(x.shape.dims)) + list(x.shape.dims)
    for i, s in enumerate(sizes):
        merged = rel.equal(tail[i].size, s, f"`{op}` normalized_shape[{i}] against the input",
                           "normalized_shape")
        tail[i] = TDim(tail[i].label, merged)
    params = []
    for name in ("weight", "bias"):
        if isinstance(a[name].type, TOther):
            continue
        w = tensor_of(a[name], name)
        params.append((name, w))
        same_device([("input", x), (name, w)], f"`{op}`")
        if w.shape.row is None and len(w.shape.dims) != k:
            raise OpError("GT2005", f"`{op}` {name} must have the normalized shape "
                          f"({k} dims), got `{w.shape}`", name)
        for i in range(1, min(k, len(w.shape.dims)) + 1):
            rel.equal(w.shape.dims[-i].size, tail[-i].size,
                      f"`{op}` {name} dim {-i} against the input", name)
    if op == "layer_norm" and params:
        _param_dtypes(x.dtype, params)
    return tuple(tail)


def _param_dtypes(dt: DT, params: list[tuple[str, TTensor]]) -> None:
    """layer_norm's weight and bias share a dtype: the input's, or f32 for f16/bf16 input."""
    known = [(n, w.dtype) for n, w in params if w.dtype.is_concrete]
    if dt.is_concrete and known:
        first = known[0][1]
        for name, pdt in known:
            if pdt is not first or not (pdt is dt or (pdt is DT.F32 and dt in (DT.F16,
                                                                                DT.BF16))):
                raise OpError("GT2002", f"`layer_norm` {name} is {pdt} for an input of {dt}",
                              name, f"weight and bias must be {dt}" + (
                                  " (or both f32)" if dt in (DT.F16, DT.BF16) else ""))


@define("layer_norm", "input, normalized_shape, weight=None, bias=None, eps=1e-05",
        "torch.nn.functional.layer_norm", "normalisation", method=False)
def _layer_norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", "layer_norm")
    normalized_tail(rel, x, a, "layer_norm")
    return x


@define("rms_norm", "input, normalized_shape, weight=None, eps=None",
        "torch.nn.functional.rms_norm", "normalisation", method=False)
def _rms_norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_inexact(x.dtype, "input", "rms_norm")
    a = dict(a, bias=Arg(TOther("none"), None))
    normalized_tail(rel, x, a, "rms_norm")
    w = a["weight"]
    if isinstance(w.type, TTensor) and probe("rms_norm_promotes_weight"):  # torch 2.6
        return TTensor(promote_types(x.dtype, w.type.dtype), x.shape, x.device)
    return x
