"""Rearranging and repeating: ``flip roll repeat tile repeat_interleave one_hot``. Values
keep their dtype; sizes are products of the input's and the repeat counts (``one_hot`` with
``num_classes=-1`` and ``repeat_interleave`` by a tensor of counts have a data-dependent
size, unknown statically, as ``nonzero``'s)."""

from __future__ import annotations

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, Size, TDim, TDyn, TScalar, TShape, TTensor, as_size, numel_of,
    rank_of,
    resolve_dim, same_device, seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import ScalarKind, Type


def _ints(arg: Arg, name: str) -> list[int | Size | None] | None:
    """An int or a tuple/list of ints, each static value (None when unknown); None when the
    argument is no int and no sequence of them."""
    elems = seq_elems(arg)
    if elems is None:
        if isinstance(arg.type, TScalar) and arg.type.kind is ScalarKind.INT:
            return [static_int(arg, name)]
        if isinstance(arg.type, TDyn):
            return None
        raise OpError("GT2016", f"`{name}` must be an int or a tuple of ints", name)
    return [static_int(e, name) for e in elems]


def _no_dims(x: TTensor, name: str, op: str) -> None:
    """torch's ``roll`` and ``repeat_interleave`` take no dim of a 0-dim tensor (where most
    ops take 0 and -1)."""
    if x.shape.row is None and not x.shape.dims:
        raise OpError("GT2010", f"`{op}` takes no dim of a 0-dim tensor", name,
                      f"leave `{name}` out, or reshape to one dim first")


def _dims(x: TTensor, arg: Arg, name: str, op: str, unique: bool = True
          ) -> list[int | None]:
    elems = seq_elems(arg)
    items = list(elems) if elems is not None else [arg]
    out: list[int | None] = []
    seen: set[int] = set()
    for e in items:
        p = resolve_dim(x.shape, e, name)
        if p.index is not None and unique:
            if p.index in seen:
                raise OpError("GT2010", f"dim {p.negative} appears twice in `{op}`", name)
            seen.add(p.index)
        out.append(p.index)
    return out


@define("flip", "input, *dims", "Tensor.flip", "shape")
def _flip(rel: Rel, a: dict[str, Arg]) -> Type:
    """``flip(x, (0, 1))``, ``x.flip(0, 1)`` and ``x.flip(0)`` alike, as ``Tensor.flip``."""
    x = tensor_of(a["input"], "input")
    elems = seq_elems(a["dims"]) or ()
    if len(elems) == 1 and seq_elems(elems[0]) is not None:
        elems = seq_elems(elems[0]) or ()
    from gtdsl.ops.base import TTuple

    _dims(x, Arg(TTuple(tuple(e.type for e in elems)), tuple(elems)), "dims", "flip")
    return x


@define("roll", "input, shifts, dims=None", "torch.roll", "shape")
def _roll(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    shifts = _ints(a["shifts"], "shifts")
    if a["dims"].value is None and a["dims"].label is None:
        if shifts is not None and len(shifts) != 1 and seq_elems(a["shifts"]) is not None:
            raise OpError("GT2016", "`roll` without dims takes one shift", "shifts",
                          "give one dim per shift: roll(x, (1, 2), dims=(0, 1))")
        return x
    _no_dims(x, "dims", "roll")
    dims = _dims(x, a["dims"], "dims", "roll", unique=False)  # a dim twice: rolled twice
    if shifts is not None and len(shifts) != len(dims):
        raise OpError("GT2016", f"`roll` takes one shift per dim: {len(shifts)} shifts for "
                      f"{len(dims)} dims", "shifts")
    return x


def _times(size: Size | None, n: int | Size | None) -> Size | None:
    k = as_size(n)
    if size is None or k is None:
        return None
    return size * k


def _is_one(n: int | Size | None) -> bool:
    s = as_size(n)
    return s is not None and s.constant() == 1


def _counts(values: list[int | Size | None], name: str, op: str) -> None:
    for v in values:
        s = as_size(v)
        c = s.constant() if s is not None else None
        if c is not None and c < 0:
            raise OpError("GT2027", f"`{op}` {name} must not be negative, got {c}", name)


@define("repeat", "input, *repeats", "Tensor.repeat", "shape")
def _repeat(rel: Rel, a: dict[str, Arg]) -> Type:
    """``x.repeat(2, 3)``: at least one count per dim; extra counts add leading dims."""
    x = tensor_of(a["input"], "input")
    elems = seq_elems(a["repeats"]) or ()
    if len(elems) == 1 and seq_elems(elems[0]) is not None:  # x.repeat((2, 3))
        elems = seq_elems(elems[0]) or ()
    reps = [static_int(e, "repeats") for e in elems]
    _counts(reps, "repeats", "repeat")
    r = rank_of(x.shape)
    if r is not None and len(reps) < r:
        raise OpError("GT2016", f"`repeat` needs a count for each of the {r} dims, got "
                      f"{len(reps)}", "repeats", "pass one count per dim (1 keeps a dim)")
    if r is None:
        return TTensor(x.dtype, _any_shape(), x.device)
    lead = len(reps) - r
    dims = [TDim(None, as_size(n)) for n in reps[:lead]]
    dims += [TDim(d.label if _is_one(n) else None, _times(d.size, n))
             for d, n in zip(x.shape.dims, reps[lead:])]
    return TTensor(x.dtype, TShape(None, tuple(dims)), x.device)


def _any_shape() -> TShape:
    from gtdsl.ops.base import DOTS

    return TShape(DOTS, ())


@define("tile", "input, dims", "torch.tile", "shape")
def _tile(rel: Rel, a: dict[str, Arg]) -> Type:
    """``tile(x, (2, 3))``: counts for the trailing dims (missing leading counts are 1;
    extra ones add leading dims)."""
    x = tensor_of(a["input"], "input")
    reps = _ints(a["dims"], "dims")
    r = rank_of(x.shape)
    if reps is None or r is None:
        return TTensor(x.dtype, _any_shape(), x.device)
    _counts(reps, "dims", "tile")
    ones: list[int | Size | None] = [1] * (r - len(reps))
    reps = ones + list(reps)
    lead = len(reps) - r
    dims = [TDim(None, as_size(n)) for n in reps[:lead]]
    dims += [TDim(d.label if _is_one(n) else None, _times(d.size, n))
             for d, n in zip(x.shape.dims, reps[lead:])]
    return TTensor(x.dtype, TShape(None, tuple(dims)), x.device)


@define("repeat_interleave", "input, repeats, dim=None, *, output_size=None",
        "torch.repeat_interleave", "shape")
def _repeat_interleave(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    rep = a["repeats"]
    count: int | Size | None = None
    by_tensor = isinstance(rep.type, TTensor)
    if by_tensor:
        rt = rep.type
        assert isinstance(rt, TTensor)
        same_device([("input", x), ("repeats", rt)], "`repeat_interleave`")
        if rt.dtype.is_concrete and rt.dtype not in (DT.I64, DT.I32):
            raise OpError("GT2002", f"`repeat_interleave` counts must be i64 or i32, got "
                          f"{rt.dtype}", "repeats")
        if rt.shape.row is None and len(rt.shape.dims) > 1:
            raise OpError("GT2005", "`repeat_interleave` counts must have at most one dim, "
                          f"got `{rt.shape}`", "repeats")
    elif isinstance(rep.type, TScalar) and rep.type.kind is ScalarKind.INT:
        count = static_int(rep, "repeats")
        _counts([count], "repeats", "repeat_interleave")
    elif not isinstance(rep.type, TDyn):
        raise OpError("GT2016", "`repeat_interleave` repeats must be an int or a tensor of "
                      "counts", "repeats")
    numel = numel_of(x.shape)
    whole = a["dim"].value is None and a["dim"].label is None
    if not whole:
        _no_dims(x, "dim", "repeat_interleave")
    p = None if whole else resolve_dim(x.shape, a["dim"], "dim")
    if by_tensor:  # one count, or one per value along the dim (of the flattened input)
        rt = rep.type
        assert isinstance(rt, TTensor)
        n = rt.shape.dims[0].size if rt.shape.row is None and rt.shape.dims else Size.of(1)
        along = numel if whole else (Size.of(1) if x.shape.row is None and not x.shape.dims
                                     else x.shape.dims[p.index].size if p is not None and
                                     p.index is not None else None)
        if n is None or n.constant() != 1:
            rel.equal(n, along, "`repeat_interleave` counts against the values they repeat",
                      "repeats", "give one count, or one per value along the dim")
    if whole:
        total = None if by_tensor else _times(numel, count)
        return TTensor(x.dtype, TShape(None, (TDim(None, total),)), x.device)
    assert p is not None
    if p.index is None:
        return TTensor(x.dtype, TShape(x.shape.row, tuple(TDim() for _ in x.shape.dims)),
                       x.device)
    dims = list(x.shape.dims)
    if not dims:  # a 0-dim tensor along dim 0: one dim of `count` values
        return TTensor(x.dtype, TShape(None, (TDim(None, None if by_tensor else as_size(
            count)),)), x.device)
    d = dims[p.index]
    dims[p.index] = TDim(None, None if by_tensor else _times(d.size, count))
    return TTensor(x.dtype, TShape(x.shape.row, tuple(dims)), x.device)


@define("one_hot", "input, num_classes=-1", "torch.nn.functional.one_hot", "index",
        method=False)
def _one_hot(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if x.dtype.is_concrete and x.dtype is not DT.I64:
        raise OpError("GT2002", f"`one_hot` takes an i64 tensor of class indices, got "
                      f"{x.dtype}", "input", "convert first: x.long()")
    n = static_int(a["num_classes"], "num_classes")
    classes = as_size(n)
    c = classes.constant() if classes is not None else None
    if c is not None and c < -1:
        raise OpError("GT2027", f"`one_hot` num_classes must be -1 or a count, got {c}",
                      "num_classes")
    size = None if c == -1 else classes  # -1: one more than the largest index: the data's
    if c == -1 or classes is None:
        rel.check("`one_hot` with num_classes=-1 counts the classes of a non-empty input")
    return TTensor(DT.I64, TShape(x.shape.row, (*x.shape.dims, TDim(None, size))), x.device)
