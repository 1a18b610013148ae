"""Cumulative and ordering ops: ``cumsum cumprod cummax cummin logcumsumexp`` along a dim,
``sort argsort topk kthvalue``. Values keep the input's dtype (``cumsum`` and ``cumprod`` of
integers and bool accumulate in i64, as torch does); indices are i64. Orderings are not
defined on complex tensors (and ``topk``/``kthvalue`` not on bool); ``k`` must fit the dim:
checked statically when both are known, at run time otherwise."""

from __future__ import annotations

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, Size, TDim, TShape, TTensor, TTuple, as_size, reject_complex,
    require_inexact, resolve_dim, static_int, tensor_of,
)
from gtdsl.ops.reduce import reduce_shape
from gtdsl.ops.table import define
from gtdsl.types import Type
from gtdsl.types.torchrules import probe

_INTEGRAL = (DT.BOOL, DT.INT, DT.UINT)


def _is_integral(dt: DT) -> bool:
    return dt in _INTEGRAL or dt.category in (DT.INT, DT.UINT)


def _zero_dim(x: TTensor) -> bool:
    return x.shape.row is None and not x.shape.dims


def _one_dim(x: TTensor, a: dict[str, Arg], op: str) -> None:
    if isinstance(a["dim"].value, tuple):
        raise OpError("GT2016", f"`{op}` takes one dim, not a tuple", "dim")
    resolve_dim(x.shape, a["dim"], "dim")


def _make_cumulative(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        _one_dim(x, a, op)
        dtype = a["dtype"].value
        if dtype is DT.BOOL:
            raise OpError("GT2002", f"`{op}` cannot accumulate in bool", "dtype",
                          "accumulate in i64 (the default for bool input)")
        if isinstance(dtype, DT):
            return TTensor(dtype, x.shape, x.device)
        return TTensor(DT.I64 if _is_integral(x.dtype) else x.dtype, x.shape, x.device)

    return relation


for _op in ("cumsum", "cumprod"):
    define(_op, "input, dim, *, dtype=None", "torch.{name}", "order")(_make_cumulative(_op))


def _make_cum_extreme(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        reject_complex(x.dtype, "input", op)
        if not (_zero_dim(x) and probe("cum_extreme_0dim_any_dim")):  # torch 2.6: any dim
            _one_dim(x, a, op)
        return TTuple((x, TTensor(DT.I64, x.shape, x.device)))

    return relation


for _op in ("cummax", "cummin"):
    define(_op, "input, dim", "torch.{name}", "order")(_make_cum_extreme(_op))


@define("logcumsumexp", "input, dim", "torch.logcumsumexp", "order")
def _logcumsumexp(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_inexact(x.dtype, "input", "logcumsumexp")
    _one_dim(x, a, "logcumsumexp")
    return x


@define("sort", "input, dim=-1, descending=False, *, stable=False", "torch.sort", "order")
def _sort(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if not (_zero_dim(x) and probe("sort_complex_0dim")):  # torch 2.6 returns a 0-dim one
        reject_complex(x.dtype, "input", "sort")
    _one_dim(x, a, "sort")
    return TTuple((x, TTensor(DT.I64, x.shape, x.device)))


@define("argsort", "input, dim=-1, descending=False, *, stable=False", "torch.argsort",
        "order")
def _argsort(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if not (_zero_dim(x) and probe("sort_complex_0dim")):
        reject_complex(x.dtype, "input", "argsort")
    _one_dim(x, a, "argsort")
    return TTensor(DT.I64, x.shape, x.device)


def _selected(rel: Rel, x: TTensor, a: dict[str, Arg], op: str) -> tuple[int | None,
                                                                        Size | None]:
    """The dim's position and size, and ``k`` checked against it (``topk``: 0..size,
    ``kthvalue``: 1..size)."""
    reject_complex(x.dtype, "input", op)
    if x.dtype is DT.BOOL:
        raise OpError("GT2002", f"`{op}` is not defined on bool tensors", "input",
                      "convert first: x.to(u8)")
    _one_dim(x, a, op)
    pos = resolve_dim(x.shape, a["dim"], "dim")
    size: Size | None
    if x.shape.row is None and not x.shape.dims:
        size = Size.of(1)  # a 0-dim tensor is one value along its only dim
    elif pos.index is not None:
        size = x.shape.dims[pos.index].size
    else:
        size = None
    k = static_int(a["k"], "k")
    low = 0 if op == "topk" else 1
    ks = as_size(k)
    kc = ks.constant() if ks is not None else None
    if kc is not None and kc < low:
        raise OpError("GT2027", f"`{op}` needs k >= {low}, got {kc}", "k")
    sc = size.constant() if size is not None else None
    if kc is not None and sc is not None and kc > sc:
        raise OpError("GT2004", f"`{op}`: k = {kc} is more than the {sc} values of dim "
                      f"{pos.negative}", "k", "k can be at most the dim's size")
    if ks is not None and size is not None and (kc is None or sc is None):
        rel.check(f"`{op}`: k is at most the size of dim {pos.negative}", ("ge", size, ks))
    elif ks is None or size is None:
        rel.check(f"`{op}`: k is at most the size of dim {pos.negative}")
    return pos.index, ks


@define("topk", "input, k, dim=-1, largest=True, sorted=True", "torch.topk", "order")
def _topk(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    index, k = _selected(rel, x, a, "topk")
    if x.shape.row is None and not x.shape.dims:
        shape = x.shape
    elif index is None:  # the dim is known only at run time: any of them may shrink
        shape = TShape(x.shape.row, tuple(TDim() for _ in x.shape.dims))
    else:
        dims = list(x.shape.dims)
        dims[index] = TDim(dims[index].label, k)
        shape = TShape(x.shape.row, tuple(dims))
    return TTuple((TTensor(x.dtype, shape, x.device), TTensor(DT.I64, shape, x.device)))


@define("kthvalue", "input, k, dim=-1, keepdim=False", "torch.kthvalue", "order")
def _kthvalue(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    _selected(rel, x, a, "kthvalue")
    shape = reduce_shape(x.shape, a["dim"], a["keepdim"].value)
    return TTuple((TTensor(x.dtype, shape, x.device), TTensor(DT.I64, shape, x.device)))
