"""Indexing and gathering: ``x[...]`` (torch-accurate slicing and clamping), index_select,
gather, embedding, and the data-dependent ops nonzero, masked_select, unique.

Whether index *values* are in range is data, not metadata: torch checks it when the op runs,
so the relations record no residual check for it.
"""

from __future__ import annotations

from typing import TypeGuard

from gtdsl.ops.base import (
    ANY_SHAPE, DOTS, DT, Arg, OpError, Rel, Size, TDim, TDyn, TOther, TScalar, TShape,
    TTensor, as_size, broadcast_shapes, rank_of, resolve_dim, same_device, seq_elems,
    static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import Type
from gtdsl.types.torchrules import probe
from gtdsl.types.sizes import sign_forced


def _nonneg(s: Size) -> bool:
    """Provably ``s >= 0`` (every coefficient non-negative)."""
    return all(c >= 0 for _, c in s.terms)


def _le(a: Size, b: Size) -> bool:
    return _nonneg(b - a)


def slice_length(rel: Rel, n: Size | None, start: Size | None, stop: Size | None,
                 step: int, has_start: bool, has_stop: bool) -> Size | None:
    """The length of ``range(n)[start:stop:step]`` like torch (step > 0), when decidable."""
    if n is None:
        return None
    cn = n.constant()
    cs = start.constant() if start is not None else None
    ce = stop.constant() if stop is not None else None
    if cn is not None and (cs is not None or not has_start) and (ce is not None or not has_stop):
        return Size.of(len(range(cn)[slice(cs, ce, step)]))

    def norm(v: Size | None, present: bool, default: Size) -> Size | None:
        if not present:
            return default
        assert v is not None
        c = v.constant()
        if c is not None and c < 0:
            lo = n + c
            return lo if _nonneg(lo) else None  # provably within range, else clamped
        if _le(v, n):
            return v
        if c is not None and _le(n, v):
            return n
        return None

    lo = norm(start, has_start, Size.of(0))
    hi = norm(stop, has_stop, n)
    if lo is None or hi is None:
        return None
    length = hi - lo
    if not _nonneg(length):
        if sign_forced(length) and length.const_part() < 0:
            return Size.of(0)
        return None
    if step == 1:
        return length
    return (length + (step - 1)).floordiv(Size.of(step))


@define("getitem", "input, indices", "operator.getitem", "index", method=False)
def _getitem(rel: Rel, a: dict[str, Arg]) -> Type:
    """``x[i, j:k, None, ..., idx, mask]`` like torch: ints and slices index one dim each,
    a bool (or u8) mask as many dims as it has; integer index tensors and masks are advanced
    indices: their shapes broadcast together (a mask counts as one dim of unknown size), and
    the result takes their place if they are adjacent (ints between them do not count) or
    goes first otherwise."""
    x = tensor_of(a["input"], "input")
    items = seq_elems(a["indices"])
    assert items is not None
    n_ell = sum(1 for it in items if it.value is Ellipsis)
    if n_ell > 1:
        raise OpError("GT2027", "an index may contain at most one `...`", "indices")
    consumed = sum(_consumes(it) for it in items)
    if x.shape.row is None and consumed > len(x.shape.dims):
        raise OpError("GT2010", f"too many indices ({consumed}) for a tensor of rank "
                      f"{len(x.shape.dims)}", "indices")
    # Split the indices around ``...``: the front applies to leading dims, the back to trailing.
    if n_ell:
        k = next(i for i, it in enumerate(items) if it.value is Ellipsis)
        front, back = list(items[:k]), list(items[k + 1:])
    else:
        front, back = list(items), []
    n_front = sum(_consumes(it) for it in front)
    n_back = sum(_consumes(it) for it in back)
    dims = x.shape.dims
    if x.shape.row is not None:
        if len(dims) < n_back + (n_front if n_front else 0):
            rel.check("indexing: rank")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
    if x.shape.row is None:
        lead, mid, tail = dims[:n_front], dims[n_front:len(dims) - n_back], dims[len(dims) - n_back:]
    elif n_front:  # leading dims of a variadic shape are unknown
        lead, mid, tail = (TDim(),) * n_front, (), dims[len(dims) - n_back:] if n_back else ()
    else:
        lead, mid, tail = (), dims[:len(dims) - n_back], dims[len(dims) - n_back:]
    pieces_front = _apply(rel, front, list(lead), x)
    # the dims ``...`` stands for (with a variadic shape, also its unknown leading dims)
    middle: list[Piece] = [("dims", list(mid))] if mid or (
        x.shape.row is not None and not n_front) else []
    pieces = pieces_front + middle + _apply(rel, back, list(tail), x)
    adv = [i for i, (kind, _) in enumerate(pieces) if kind == "adv"]
    adjacent = adv == list(range(adv[0], adv[-1] + 1)) if adv else True
    if x.shape.row is not None and (n_front or pieces_front or not adjacent):
        # the leading output dims are unknown: keep those after the last advanced index
        start = max(adv[-1] + 1 if adv else 0, len(pieces_front) + len(middle))
        return TTensor(x.dtype, TShape(DOTS, _flat(pieces[start:])), x.device)
    if adv:
        b = broadcast_shapes(rel, [p for kind, p in pieces if kind == "adv"],
                             "indexing: index tensors")
        rest = [p for p in pieces if p[0] != "adv"]
        if adjacent:
            out = _flat(pieces[:adv[0]]) + b.dims + _flat(pieces[adv[-1] + 1:])
        else:
            out = b.dims + _flat(rest)
    else:
        out = _flat(pieces)
    return TTensor(x.dtype, TShape(x.shape.row, tuple(out)), x.device)


Piece = tuple  # ("dims", [TDim, ...]) or ("adv", TShape): what one index contributes


def _flat(pieces: list[Piece]) -> tuple[TDim, ...]:
    return tuple(d for kind, p in pieces if kind == "dims" for d in p)


def _is_mask(t: Type) -> TypeGuard[TTensor]:
    return isinstance(t, TTensor) and t.dtype in (DT.BOOL, DT.U8, DT.UINT)


def _consumes(it: Arg) -> int:
    """How many input dims an index takes: None and ``...`` none, a mask its rank."""
    if it.value is None or it.value is Ellipsis:
        return 0
    if _is_mask(it.type):
        r = rank_of(it.type.shape)
        if r is None:
            raise OpError("GT2009", "a mask index needs a known rank", "indices")
        return r
    return 1


def _apply(rel: Rel, indices: list[Arg], dims: list[TDim], x: TTensor) -> list[Piece]:
    out: list[Piece] = []
    pos = 0
    for it in indices:
        v = it.value
        if v is None:
            out.append(("dims", [TDim(None, Size.of(1))]))
            continue
        if _is_mask(it.type):
            t = tensor_of(it, "index")
            same_device([("input", x), ("index", t)], "indexing")
            k = _consumes(it)
            for i, (m, d) in enumerate(zip(t.shape.dims, dims[pos:pos + k])):
                rel.equal(m.size, d.size, f"indexing: mask dim {i} against the indexed dim",
                          "indices", "a mask has the shape of the dims it selects from")
            pos += k
            out.append(("adv", TShape(None, (TDim(None, None),))))  # how many: data
            continue
        d = dims[pos]
        pos += 1
        if isinstance(v, tuple) and len(v) == 3 and isinstance(it.type, TOther) and \
                it.type.what == "slice":
            out.append(("dims", [_slice(rel, d, v)]))
            continue
        if isinstance(it.type, TScalar) and it.type.kind.value in ("int",):
            at = static_int(it, "index")
            if isinstance(at, int) and d.size is not None and (n := d.size.constant()) is not None:
                if not -n <= at < n:
                    raise OpError("GT2010", f"index {at} is out of range for a dim of size {n}",
                                  "indices")
            elif d.size is not None and at is not None:
                # compiled: a non-negative index below the size (a negative one, or one
                # the compiled form does not settle, runs the relation)
                if isinstance(at, int) and at < 0:  # from the end: the size is at least -at
                    rel.check("indexing: index within the dim", ("ge", d.size, Size.of(-at)))
                else:
                    idx = at if isinstance(at, Size) else Size.of(at)
                    rel.check("indexing: index within the dim", ("ge", d.size, idx + 1),
                              ("ge", idx, Size.of(0)))
            else:
                rel.check("indexing: index within the dim")
            continue
        if isinstance(it.type, (TTensor, TDyn)):
            t = tensor_of(it, "index")
            same_device([("input", x), ("index", t)], "indexing")
            if rank_of(t.shape) == 0 and t.dtype in (DT.I64, DT.I32, DT.I16, DT.I8, DT.INT):
                continue  # like torch, a 0-dim integer tensor indexes like an int
            if t.dtype is DT.ANY or t.dtype in (DT.I64, DT.I32, DT.INT):
                if t.shape.row is not None:
                    raise OpError("GT2009", "an index tensor needs a known rank", "indices")
                out.append(("adv", t.shape))
            else:
                raise OpError("GT2002", f"index tensors must be i64, i32, bool or u8, got "
                              f"{t.dtype}", "indices")
            continue
        raise OpError("GT2016", f"cannot index with {it.type}", "indices",
                      "use ints, slices, None, ..., or an integer or bool tensor")
    return out


def _slice(rel: Rel, d: TDim, parts: tuple[Arg, Arg, Arg]) -> TDim:
    start_a, stop_a, step_a = parts
    step = static_int(step_a, "step") if step_a.value is not None else 1
    if not isinstance(step, int):
        rel.check("slicing: step")
        return TDim(d.label, None)
    if step <= 0:
        raise OpError("GT2026", "slice steps must be positive", "indices",
                      "torch has no negative steps; to reverse a dim of size n, index it with "
                      "arange(n - 1, -1, -1)")
    start = as_size(static_int(start_a, "start")) if start_a.value is not None else None
    stop = as_size(static_int(stop_a, "stop")) if stop_a.value is not None else None
    has_start = start_a.value is not None
    has_stop = stop_a.value is not None
    if (has_start and start is None) or (has_stop and stop is None):
        return TDim(d.label, None)
    return TDim(d.label, slice_length(rel, d.size, start, stop, step, has_start, has_stop))


@define("index_select", "input, dim, index", "torch.index_select", "index")
def _index_select(rel: Rel, a: dict[str, Arg]) -> Type:
    x, idx = tensor_of(a["input"], "input"), tensor_of(a["index"], "index")
    if idx.dtype not in (DT.I64, DT.I32, DT.ANY, DT.INT):
        raise OpError("GT2002", f"index_select needs an i64 or i32 index, got {idx.dtype}",
                      "index")
    if rank_of(idx.shape) not in (0, 1, None):
        raise OpError("GT2005", "index_select needs a 1-dim index", "index")
    same_device([("input", x), ("index", idx)], "`index_select`")
    p = resolve_dim(x.shape, a["dim"], "dim")
    if p.index is None:
        rel.check("index_select: dim")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    n = idx.shape.dims[-1].size if idx.shape.dims and idx.shape.row is None else (
        Size.of(1) if rank_of(idx.shape) == 0 else None)
    if rank_of(x.shape) == 0:  # a 0-dim input: the index holds exactly one position
        rel.equal(n, Size.of(1), "index_select: the index of a 0-dim input", "index",
                  "a 0-dim tensor has one element: select it with a one-element index")
        return x
    src = x.shape.dims[p.index].size
    if src is not None and src.constant() == 0 and n is not None and n.constant() != 0:
        raise OpError("GT2010", "index_select: selecting from an empty dim", "index",
                      "an empty dim has no position to select")
    dims = list(x.shape.dims)
    dims[p.index] = TDim(dims[p.index].label, n)
    return TTensor(x.dtype, TShape(x.shape.row, tuple(dims)), x.device)


@define("gather", "input, dim, index", "torch.gather", "index")
def _gather(rel: Rel, a: dict[str, Arg]) -> Type:
    x, idx = tensor_of(a["input"], "input"), tensor_of(a["index"], "index")
    i32 = probe("int32_index")  # not torch 2.6
    if idx.dtype not in ((DT.I64, DT.I32, DT.ANY, DT.INT) if i32 else (DT.I64, DT.ANY, DT.INT)):
        raise OpError("GT2002", f"gather needs an i64{' or i32' if i32 else ''} index, got "
                      f"{idx.dtype}", "index")
    same_device([("input", x), ("index", idx)], "`gather`")
    p = resolve_dim(x.shape, a["dim"], "dim")
    rx, ri = rank_of(x.shape), rank_of(idx.shape)
    # like torch, a 0-dim tensor counts as 1-dim here
    if rx is not None and ri is not None and max(rx, 1) != max(ri, 1):
        raise OpError("GT2005", f"gather needs input and index of one rank, got {rx} and "
                      f"{ri}", "index")
    if rx is None or ri is None or rx == 0 or ri == 0:
        if rx is None or ri is None:
            rel.check("gather: index sizes within the input's")
        return TTensor(x.dtype, idx.shape, x.device)
    # apart from `dim`, the index may not be larger than the input (unless it is empty)
    numel = [d.size.constant() if d.size is not None else None for d in idx.shape.dims]
    if 0 not in numel:
        for i, (d, e) in enumerate(zip(x.shape.dims, idx.shape.dims)):
            if i == p.index:
                continue
            cx = d.size.constant() if d.size is not None else None
            ci = e.size.constant() if e.size is not None else None
            if cx is not None and ci is not None:
                if ci > cx:
                    raise OpError("GT2004", f"gather: index dim {i} has size {ci}, more than "
                                  f"the input's {cx}", "index",
                                  "apart from `dim`, the index may not exceed the input")
            else:
                rel.check(f"gather: index dim {i} within the input's")
    return TTensor(x.dtype, idx.shape, x.device)


@define("embedding", "input, weight, padding_idx=None", "torch.nn.functional.embedding",
        "index", method=False)
def _embedding(rel: Rel, a: dict[str, Arg]) -> Type:
    idx, w = tensor_of(a["input"], "input"), tensor_of(a["weight"], "weight")
    if idx.dtype not in (DT.I64, DT.I32, DT.ANY, DT.INT):
        raise OpError("GT2002", f"embedding needs integer ids, got {idx.dtype}", "input",
                      "token ids are i64 tensors")
    if rank_of(w.shape) not in (2, None):
        raise OpError("GT2005", f"embedding weight must be 2-dim, got `{w.shape}`", "weight")
    same_device([("input", idx), ("weight", w)], "`embedding`")
    pad = a["padding_idx"].value
    n = w.shape.dims[0].size.constant() if w.shape.row is None and w.shape.dims and \
        w.shape.dims[0].size is not None else None
    if isinstance(pad, int) and not isinstance(pad, bool) and n is not None and not (
            -n <= pad < n):
        raise OpError("GT2010", f"padding_idx {pad} is not a row of a {n}-row embedding",
                      "padding_idx", f"use a padding_idx in {-n}..{n - 1}")
    feat = w.shape.dims[-1] if w.shape.dims else TDim()
    return TTensor(w.dtype, TShape(idx.shape.row, idx.shape.dims + (feat,)), w.device)


# ============================================================================ data-dependent


@define("nonzero", "input", "torch.nonzero", "data")
def _nonzero(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    r = rank_of(x.shape)
    return TTensor(DT.I64, TShape(None, (TDim(None, None), TDim(None, as_size(r)))), x.device)


@define("masked_select", "input, mask", "torch.masked_select", "data")
def _masked_select(rel: Rel, a: dict[str, Arg]) -> Type:
    x, m = tensor_of(a["input"], "input"), tensor_of(a["mask"], "mask")
    if m.dtype not in (DT.BOOL, DT.ANY):
        raise OpError("GT2002", f"masked_select needs a bool mask, got {m.dtype}", "mask")
    same_device([("input", x), ("mask", m)], "`masked_select`")
    from gtdsl.ops.base import broadcast_shapes

    broadcast_shapes(rel, [x.shape, m.shape], "masked_select mask")
    return TTensor(x.dtype, TShape(None, (TDim(None, None),)), x.device)


@define("unique", "input, sorted=True", "torch.unique", "data")
def _unique(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if x.dtype is DT.COMPLEX or x.dtype.category is DT.COMPLEX:
        raise OpError("GT2002", f"`unique` sorts its values and is not defined on {x.dtype}",
                      "input")
    return TTensor(x.dtype, TShape(None, (TDim(None, None),)), x.device)

