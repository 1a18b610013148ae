"""Writing into a copy of a tensor: the scatter family ``scatter scatter_add scatter_reduce
index_add index_copy``, and padding: ``pad`` (constant, reflect, replicate, circular).

Scatters keep the input's type; the index is i64 or i32 (``index_copy``: i64), the source has
the input's dtype, and the index fits the source and the input (each size at most theirs,
the scattered dim's excepted): checked statically where the sizes are known, at run time
otherwise. Whether index *values* are in range is data, checked by torch when it runs.
``pad`` adds ``left + right`` to each padded dim, from the last dim backwards.
"""

from __future__ import annotations

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, Size, TDim, TDyn, TScalar, TShape, TTensor, as_size, choice,
    resolve_dim,
    same_device, seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import Type
from gtdsl.types.torchrules import probe


def _not_larger(rel: Rel, small: Size | None, big: Size | None, what: str, arg: str) -> None:
    """``small <= big``: an error when both are known and it fails, a check otherwise."""
    if small is None or big is None:
        rel.check(what)
        return
    a, b = small.constant(), big.constant()
    if a is not None and b is not None:
        if a > b:
            raise OpError("GT2004", f"{what}: {a} is more than {b}", arg)
        return
    rel.check(what, ("ge", big, small))


def _scatter_common(rel: Rel, a: dict[str, Arg], op: str, src_name: str = "src",
                    src_number: bool = False) -> TTensor:
    x = tensor_of(a["input"], "input")
    index = tensor_of(a["index"], "index")
    i32 = probe("int32_index")  # not torch 2.6
    if index.dtype.is_concrete and index.dtype not in ((DT.I64, DT.I32) if i32 else (DT.I64,)):
        raise OpError("GT2002", f"`{op}` index must be i64{' or i32' if i32 else ''}, got "
                      f"{index.dtype}", "index", "convert first: index.long()")
    pos = resolve_dim(x.shape, a["dim"], "dim")
    tensors = [("input", x), ("index", index)]
    src_arg = a[src_name]
    src = tensor_of(src_arg, src_name) if isinstance(src_arg.type, TTensor) or (
        isinstance(src_arg.type, TDyn) and not src_number) else None
    if src is None and not (src_number and isinstance(src_arg.type, (TScalar, TDyn))):
        raise OpError("GT2016", f"`{op}` {src_name} must be a tensor", src_name)
    if src is not None:
        tensors.append((src_name, src))
        if x.dtype.is_concrete and src.dtype.is_concrete and src.dtype is not x.dtype:
            raise OpError("GT2002", f"`{op}` {src_name} is {src.dtype} for an input of "
                          f"{x.dtype}", src_name, f"the {src_name} has the input's dtype")
    same_device(tensors, f"`{op}`")
    if x.shape.row is not None or index.shape.row is not None:
        return x
    # torch compares ranks and sizes with a 0-dim tensor read as one of one element
    xd, idx = _as_1d(x.shape.dims), _as_1d(index.shape.dims)
    if len(idx) != len(xd):
        raise OpError("GT2005", f"`{op}` index must have the input's {len(x.shape.dims)} "
                      f"dims, got `{index.shape}`", "index")
    empty = any(d.size is not None and d.size.constant() == 0 for d in index.shape.dims)
    if src is not None and src.shape.row is None:
        sd = _as_1d(src.shape.dims)
        if len(sd) != len(idx) and not empty:
            raise OpError("GT2005", f"`{op}` {src_name} must have the index's "
                          f"{len(index.shape.dims)} dims, got `{src.shape}`", src_name)
        if not empty:
            for i, (di, ds) in enumerate(zip(idx, sd)):
                _not_larger(rel, di.size, ds.size, f"`{op}` index dim {i} against the "
                            f"{src_name}", "index")
    if not empty:
        for i, (di, dx) in enumerate(zip(idx, xd)):
            if i != (pos.index or 0):
                _not_larger(rel, di.size, dx.size, f"`{op}` index dim {i} against the input",
                            "index")
    return x


def _as_1d(dims: tuple[TDim, ...]) -> tuple[TDim, ...]:
    return dims if dims else (TDim(None, Size.of(1)),)


@define("scatter", "input, dim, index, src", "torch.scatter", "scatter")
def _scatter(rel: Rel, a: dict[str, Arg]) -> Type:
    return _scatter_common(rel, a, "scatter", src_number=True)


@define("scatter_add", "input, dim, index, src", "torch.scatter_add", "scatter")
def _scatter_add(rel: Rel, a: dict[str, Arg]) -> Type:
    return _scatter_common(rel, a, "scatter_add")


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin", "max", "min")  # (max, min: amax, amin)


@define("scatter_reduce", "input, dim, index, src, reduce, *, include_self=True",
        "torch.scatter_reduce", "scatter")
def _scatter_reduce(rel: Rel, a: dict[str, Arg]) -> Type:
    reduce = choice(a["reduce"], "reduce", "scatter_reduce", _REDUCTIONS)
    x = _scatter_common(rel, a, "scatter_reduce")
    if reduce == "mean" and x.dtype is DT.BOOL:
        raise OpError("GT2002", "`scatter_reduce` mean is not defined on bool tensors",
                      "input", "convert first: x.to(f32)")
    if reduce in ("amax", "amin", "max", "min") and x.dtype.category is DT.COMPLEX:
        raise OpError("GT2002", f"`scatter_reduce` {reduce} is not defined on complex tensors",
                      "input")
    return x


def _index_into(rel: Rel, a: dict[str, Arg], op: str) -> Type:
    """index_add / index_copy: the source is the input with the dim's size the index's."""
    x = tensor_of(a["input"], "input")
    index = tensor_of(a["index"], "index")
    src = tensor_of(a["source"], "source")
    allowed = (DT.I64, DT.I32) if op == "index_add" else (DT.I64,)
    if index.dtype.is_concrete and index.dtype not in allowed:
        raise OpError("GT2002", f"`{op}` index must be {' or '.join(map(str, allowed))}, got "
                      f"{index.dtype}", "index", "convert first: index.long()")
    if x.dtype.is_concrete and src.dtype.is_concrete and src.dtype is not x.dtype:
        raise OpError("GT2002", f"`{op}` source is {src.dtype} for an input of {x.dtype}",
                      "source", "the source has the input's dtype")
    same_device([("input", x), ("index", index), ("source", src)], f"`{op}`")
    if index.shape.row is None and len(index.shape.dims) > 1:
        raise OpError("GT2005", f"`{op}` index must have at most one dim, got "
                      f"`{index.shape}`", "index")
    pos = resolve_dim(x.shape, a["dim"], "dim")
    if x.shape.row is not None or src.shape.row is not None:
        return x
    if not x.shape.dims:  # into a 0-dim tensor: one index, one value
        n0 = index.shape.dims[0].size if index.shape.row is None and index.shape.dims else \
            Size.of(1)
        rel.equal(n0, Size.of(1), f"`{op}` of a 0-dim tensor takes one index", "index")
    if len(src.shape.dims) != len(x.shape.dims) and (x.shape.dims or len(src.shape.dims) > 1):
        raise OpError("GT2005", f"`{op}` source must have the input's {len(x.shape.dims)} "
                      f"dims, got `{src.shape}`", "source")
    n = index.shape.dims[0].size if index.shape.row is None and index.shape.dims else (
        Size.of(1) if index.shape.row is None else None)
    for i, (ds, dx) in enumerate(zip(src.shape.dims, x.shape.dims)):
        if i == pos.index:
            rel.equal(ds.size, n, f"`{op}` source dim {i} against the index's length",
                      "source", "the source has one slice per index")
        else:
            rel.equal(ds.size, dx.size, f"`{op}` source dim {i} against the input",
                      "source")
    return x


@define("index_add", "input, dim, index, source, *, alpha=1", "torch.index_add", "scatter")
def _index_add(rel: Rel, a: dict[str, Arg]) -> Type:
    return _index_into(rel, a, "index_add")


@define("index_copy", "input, dim, index, source", "torch.index_copy", "scatter")
def _index_copy(rel: Rel, a: dict[str, Arg]) -> Type:
    return _index_into(rel, a, "index_copy")


# ---------------------------------------------------------------- pad

_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_fits(mode: str, i: int, w: int, left: int, right: int, least: int = 1) -> None:
    """torch's rules for padding dim ``i`` of size ``w`` by ``left`` and ``right`` (negative:
    cropping) in a mode that reads the input, found by enumerating torch: reflect pads less
    than the dim's size, circular at most its size (and crops no more than the dim of 3 or
    more, where torch's kernel fails), and the result has at least ``least`` elements
    (circular: may be empty; replicate of 2 or 3 dims: one dim may be empty, as long as one
    is not, which the caller checks). (A circular pad larger than what cropping leaves fails in torch's kernel
    on a batched input only, as an internal-overlap error: gtdsl accepts it.)"""
    out = w + left + right
    cropped = w + min(left, 0) + min(right, 0)
    for p in (left, right):
        if p <= 0:
            continue
        if mode == "reflect" and p >= w:
            raise OpError("GT2004", f"`pad` reflect: padding {p} of dim {i} must be less "
                          f"than its size {w}", "pad")
        if mode == "circular" and p > w:
            raise OpError("GT2004", f"`pad` circular: padding {p} of dim {i} must be at most "
                          f"its size {w}", "pad")
    if mode == "circular" and cropped < 0 and w >= 3:
        raise OpError("GT2004", f"`pad` circular: cropping dim {i} (size {w}) by "
                      f"{-(min(left, 0) + min(right, 0))}", "pad")
    if out < (0 if mode == "circular" else least):
        raise OpError("GT2004", f"`pad` {mode}: dim {i} (size {w}) would have size {out}",
                      "pad", "reflect and replicate padding leave at least one element")


@define("pad", "input, pad, mode='constant', value=None", "torch.nn.functional.pad", "shape",
        method=False)
def _pad(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    mode = choice(a["mode"], "mode", "pad", _MODES)
    elems = seq_elems(a["pad"])
    if elems is None:
        raise OpError("GT2016", "`pad` takes a tuple of sizes: (left, right, top, bottom, ...)",
                      "pad")
    amounts = [as_size(static_int(e, "pad")) for e in elems]
    if len(amounts) % 2:
        raise OpError("GT2016", f"`pad` takes pairs of sizes, got {len(amounts)}", "pad")
    k = len(amounts) // 2
    if x.shape.row is not None:
        return TTensor(x.dtype, TShape(x.shape.row, tuple(TDim() for _ in x.shape.dims)),
                       x.device)
    rank = len(x.shape.dims)
    if k > rank:
        raise OpError("GT2016", f"`pad` pads {k} dims of a tensor of rank {rank}", "pad")
    if isinstance(mode, str) and mode != "constant":
        if a["value"].value is not None and not isinstance(a["value"].type, TDyn):
            raise OpError("GT2027", f"`pad` mode {mode!r} takes no value", "value")
        if k not in (1, 2, 3) or rank not in (k + 1, k + 2):
            raise OpError("GT2005", f"`pad` mode {mode!r} pads 1 to 3 trailing dims of an "
                          f"input with one or two more (padding {k}: rank {k + 1} or "
                          f"{k + 2}), got rank {rank}", "input")
        batch = 1 if rank == k + 2 else 0  # only a batch dim may be empty
        for d in x.shape.dims[batch:]:
            if d.size is not None and d.size.constant() == 0:
                raise OpError("GT2004", f"`pad` mode {mode!r} needs non-empty dims (but a "
                              f"batch dim), got `{x.shape}`", "input")
        if mode in ("reflect", "replicate") and x.dtype is DT.BOOL:
            raise OpError("GT2002", f"`pad` mode {mode!r} is not defined on bool tensors",
                          "input")
    dims = list(x.shape.dims)
    # torch 2.9 and older: once any constant padding is positive, no padded dim may end up empty
    least = 0 if probe("pad_empty_output_dim") or (isinstance(mode, str) and mode != "constant") \
        or not any(p is not None and (p.constant() or 0) > 0 for p in amounts) else 1
    for j in range(k):
        i = rank - 1 - j
        left, right = amounts[2 * j], amounts[2 * j + 1]
        d = dims[i]
        if isinstance(mode, str) and mode != "constant":
            w = d.size.constant() if d.size is not None else None
            lc = left.constant() if left is not None else None
            rc = right.constant() if right is not None else None
            if w is None or lc is None or rc is None:
                rel.check(f"`pad` {mode}: the padding fits dim {i}")
            else:
                _pad_fits(mode, i, w, lc, rc, 0 if mode == "replicate" and k > 1 else 1)
        size = d.size + left + right if d.size is not None and left is not None and \
            right is not None else None
        if d.size is not None and left is not None and right is not None:
            cropped = d.size + min(left.constant() or 0, 0) + min(right.constant() or 0, 0)
            c = cropped.constant()
            if c is not None and c < 0:  # (negative pads crop the input first)
                raise OpError("GT2004", f"`pad`: cropping dim {i} by more than its size "
                              f"{d.size.constant()}", "pad")
        total = size.constant() if size is not None else None
        if total is not None and total < least:
            raise OpError("GT2004", f"`pad`: dim {i} would have size {total}",
                          "pad", "negative padding crops: at most the dim's size" if least == 0
                          else "with positive padding, this torch keeps every padded dim "
                          "non-empty")
        keep = left is not None and right is not None and left.constant() == 0 and \
            right.constant() == 0
        dims[i] = d if keep else TDim(None, size)
    if mode == "replicate" and k > 1:  # like torch: not every padded dim empty
        outs = [dims[rank - 1 - j].size for j in range(k)]
        if all(s is not None and s.constant() == 0 for s in outs):
            raise OpError("GT2004", f"`pad` replicate: every padded dim would be empty",
                          "pad", "replicate padding leaves at least one element")
    return TTensor(x.dtype, TShape(None, tuple(dims)), x.device)


@define("index_put", "input, indices, values, accumulate=False", "torch.index_put",
        "scatter")
def _index_put(rel: Rel, a: dict[str, Arg]) -> Type:
    """``x[indices] = values`` on a copy: integer indices broadcast together and select
    ``broadcast + the dims they do not index``, which ``values`` broadcasts to; a bool mask
    selects a number of elements known only from its data."""
    from gtdsl.ops.base import broadcast_shapes

    x = tensor_of(a["input"], "input")
    v = tensor_of(a["values"], "values")
    elems = seq_elems(a["indices"])
    if elems is None:
        raise OpError("GT2016", "`index_put` indices must be a tuple of tensors", "indices",
                      "write index_put(x, (rows, cols), values)")
    idx = [tensor_of(e, "indices") for e in elems]
    if not idx:
        raise OpError("GT2016", "`index_put` needs at least one index tensor", "indices")
    if x.dtype.is_concrete and v.dtype.is_concrete and v.dtype is not x.dtype:
        raise OpError("GT2002", f"`index_put` values are {v.dtype} for an input of "
                      f"{x.dtype}", "values", "the values have the input's dtype")
    same_device([("input", x), ("values", v)] + [("indices", t) for t in idx],
                "`index_put`")
    masks = False
    for t in idx:
        if t.dtype.is_concrete and t.dtype not in (DT.I64, DT.I32, DT.BOOL, DT.U8):
            raise OpError("GT2002", f"`index_put` indices must be integer or bool tensors, "
                          f"got {t.dtype}", "indices")
        masks |= t.dtype in (DT.BOOL, DT.U8) or not t.dtype.is_concrete
    if x.shape.row is not None or any(t.shape.row is not None for t in idx) or masks:
        rel.check("`index_put`: the values fit the indexed elements")
        return x
    if len(idx) > len(x.shape.dims):
        raise OpError("GT2016", f"`index_put` takes at most {len(x.shape.dims)} index tensors "
                      f"for a tensor of rank {len(x.shape.dims)}, got {len(idx)}", "indices")
    selected = broadcast_shapes(rel, [t.shape for t in idx], "`index_put` indices")
    target = TShape(None, (*selected.dims, *x.shape.dims[len(idx):]))
    if v.shape.row is None:
        # the values broadcast to the indexed elements' shape (one way: a 1 in the values)
        for dv, dt in zip(reversed(v.shape.dims), reversed(target.dims)):
            c = dv.size.constant() if dv.size is not None else None
            if c != 1:
                rel.equal(dv.size, dt.size, "`index_put` values against the indexed "
                          "elements", "values", "the values broadcast to what the indices "
                          "select")
        if len(v.shape.dims) > len(target.dims):  # (not even leading 1s)
            raise OpError("GT2015", f"`index_put` values `{v.shape}` have more dims than the "
                          f"indexed elements `{target}`", "values")
    return x
