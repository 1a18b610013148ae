"""Shape ops: reshape/view (``-1`` solved symbolically, element counts checked), flatten,
unflatten, transpose, permute, ``.T``, squeeze, unsqueeze, expand, broadcast_to, cat, stack,
split, chunk, narrow, rename, tril/triu."""

from __future__ import annotations

from gtdsl.ops.base import (
    ANY_SHAPE, DOTS, Arg, OpError, Rel, Size, TDim, TList, TShape, TTensor, TTuple,
    as_size, broadcast_shapes, promote, rank_of, resolve_dim, resolve_dims, same_device,
    seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import Type, Verdict, decide
from gtdsl.types.core import dim_meet


def _product(dims: tuple[TDim, ...]) -> Size | None:
    out = Size.of(1)
    for d in dims:
        if d.size is None:
            return None
        out = out * d.size
    return out


def _sizes_arg(arg: Arg, name: str) -> list[tuple[Size | None, str | None]] | None:
    """A shape argument: (size or None for -1/unknown, label) per element; None if unknown."""
    elems = seq_elems(arg)
    if elems is None:
        return None
    out = []
    for e in elems:
        v = static_int(e, name)
        out.append((as_size(v), e.label if not isinstance(e.value, int) else None))
    return out


def solve_target(rel: Rel, total: Size | None, target: list[tuple[Size | None, str | None]],
                 what: str) -> tuple[TDim, ...]:
    """Target dims of a reshape: ``-1`` becomes ``total / known``; counts must match."""
    minus = [i for i, (s, _) in enumerate(target) if s is not None and s.constant() == -1]
    if len(minus) > 1:
        raise OpError("GT2015", f"{what}: only one dim may be -1", "shape")
    for s, _ in target:
        if s is not None and (c := s.constant()) is not None and c < -1:
            raise OpError("GT2026", f"{what}: invalid size {c}", "shape",
                          "sizes are non-negative, or -1 for the one size to infer")
    known = Size.of(1)
    unknown = False
    for i, (s, _) in enumerate(target):
        if i in minus:
            continue
        if s is None:
            unknown = True
        else:
            known = known * s
    dims = [TDim(label, s) for s, label in target]
    if minus:
        i = minus[0]
        value: Size | None = None
        if total is not None and not unknown:
            if known.constant() == 0:
                raise OpError("GT2015", f"{what}: -1 is ambiguous when the other sizes "
                              "multiply to 0", "shape")
            value = total.exact_div(known) if known.terms else None
            ct, ck = total.constant(), known.constant()
            if value is None and ct is not None and ck is not None:
                raise OpError("GT2015", f"{what}: the -1 dim would be {ct}/{ck}: {ct} elements "
                              f"are not a multiple of {ck} (the other sizes' product)",
                              "shape", "a reshape keeps the number of elements")
            if value is None:
                value = total.floordiv(known)
                rel.check(f"{what}: {total} is divisible by {known}",
                          ("divides", known, total))
        else:
            rel.check(f"{what}: element counts agree")
        dims[i] = TDim(target[i][1], value)
    elif total is not None and not unknown:
        try:
            rel.equal(total, known, f"{what}: element count", "shape",
                      "a reshape keeps the number of elements: the product of the new sizes "
                      "must equal the product of the old")
        except OpError as err:
            if err.code != "GT2004":
                raise
            raise OpError("GT2015", f"{what}: {total} elements cannot take the shape of "
                          f"{known} elements", err.arg, err.help) from None
    else:
        rel.check(f"{what}: element counts agree")
    return tuple(dims)


@define(("reshape", "view"), "input, *shape", "Tensor.{name}", "shape")
def _reshape(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    target = _sizes_arg(a["shape"], "shape")
    if target is None:
        rel.check("reshape target")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    total = _product(x.shape.dims) if x.shape.row is None else None
    return TTensor(x.dtype, TShape(None, solve_target(rel, total, target, "reshape")), x.device)


@define("flatten", "input, start_dim=0, end_dim=-1", "torch.flatten", "shape")
def _flatten(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if rank_of(x.shape) == 0:
        for name in ("start_dim", "end_dim"):
            resolve_dim(x.shape, a[name], name)
        return TTensor(x.dtype, TShape(None, (TDim(None, Size.of(1)),)), x.device)
    s = resolve_dim(x.shape, a["start_dim"], "start_dim")
    e = resolve_dim(x.shape, a["end_dim"], "end_dim")
    if s.index is None or e.index is None:
        if e.index is not None and e.index == len(x.shape.dims) - 1 and s.index is None:
            return TTensor(x.dtype, TShape(DOTS, ()), x.device)
        rel.check("flatten: dims")
        tail = x.shape.dims[e.index + 1:] if e.index is not None else ()
        return TTensor(x.dtype, TShape(DOTS, tail), x.device)
    if s.index > e.index:
        raise OpError("GT2010", "flatten: start_dim comes after end_dim", "start_dim")
    merged = TDim(None, _product(x.shape.dims[s.index:e.index + 1]))
    dims = x.shape.dims[:s.index] + (merged,) + x.shape.dims[e.index + 1:]
    return TTensor(x.dtype, TShape(x.shape.row, dims), x.device)


@define("unflatten", "input, dim, sizes", "torch.unflatten", "shape")
def _unflatten(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    _needs_a_dim(x, "unflatten")
    p = resolve_dim(x.shape, a["dim"], "dim")
    target = _sizes_arg(a["sizes"], "sizes")
    if target is None:
        raise OpError("GT2014", "unflatten: `sizes` must be a tuple written in place",
                      "sizes")
    if not target:
        raise OpError("GT2026", "unflatten: `sizes` must not be empty", "sizes")
    if p.index is None:
        rel.check("unflatten: dim")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    old = x.shape.dims[p.index]
    new = solve_target(rel, old.size, target, "unflatten")
    dims = x.shape.dims[:p.index] + new + x.shape.dims[p.index + 1:]
    return TTensor(x.dtype, TShape(x.shape.row, dims), x.device)


def _swap(x: TTensor, i: int, j: int) -> TTensor:
    dims = list(x.shape.dims)
    dims[i], dims[j] = dims[j], dims[i]
    return TTensor(x.dtype, TShape(x.shape.row, tuple(dims)), x.device)


@define("transpose", "input, dim0, dim1", "torch.transpose", "shape")
def _transpose(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if rank_of(x.shape) == 0:
        for n in ("dim0", "dim1"):
            resolve_dim(x.shape, a[n], n)
        return x
    p0, p1 = resolve_dim(x.shape, a["dim0"], "dim0"), resolve_dim(x.shape, a["dim1"], "dim1")
    if p0.index is None or p1.index is None:
        rel.check("transpose: dims")
        right = max(p0.negative, p1.negative)
        return TTensor(x.dtype, TShape(DOTS, x.shape.dims[len(x.shape.dims) + right + 1:]
                                       if right < -1 else ()), x.device)
    return _swap(x, p0.index, p1.index)


@define("T", "input", "Tensor.T", "shape")
def _t(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if x.shape.row is not None:
        rel.check(".T: rank")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    return TTensor(x.dtype, TShape(None, x.shape.dims[::-1]), x.device)


@define("permute", "input, *dims", "torch.permute", "shape")
def _permute(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    elems = seq_elems(a["dims"]) or ()
    positions = [resolve_dim(x.shape, e, "dims") for e in elems]
    if x.shape.row is not None:
        if any(p.index is None for p in positions):
            rel.check("permute: dims")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
        raise OpError("GT2009", "permute needs the tensor's rank known statically", "dims",
                      "annotate the tensor with a fixed number of dims")
    rank = len(x.shape.dims)
    known = [p.index for p in positions if p.index is not None]
    if len(known) < len(positions):  # a dim given only at run time: the rank stays known
        if len(positions) == rank and len(set(known)) == len(known):
            rel.check("permute: dims")
            return TTensor(x.dtype, TShape(None, (TDim(),) * rank), x.device)
    elif sorted(known) == list(range(rank)):
        return TTensor(x.dtype, TShape(None, tuple(x.shape.dims[i] for i in known)), x.device)
    raise OpError("GT2010", f"permute needs each of the {rank} dims exactly once", "dims")


def _is_one(d: TDim) -> bool | None:
    if d.size is None:
        return None
    c = d.size.constant()
    if c is not None:
        return c == 1
    return None if decide(d.size, Size.of(1)) is not Verdict.UNSAT else False


@define("squeeze", "input, dim=None", "torch.squeeze", "shape")
def _squeeze(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    if a["dim"].value is None and a["dim"].label is None:
        if x.shape.row is not None or any(_is_one(d) is None for d in x.shape.dims):
            rel.check("squeeze: which dims are 1")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
        return TTensor(x.dtype, TShape(None, tuple(d for d in x.shape.dims if not _is_one(d))),
                       x.device)
    positions = resolve_dims(x.shape, a["dim"], "dim") or []
    if rank_of(x.shape) == 0:
        return x
    drop = set()
    for p in positions:
        if p.index is None:
            rel.check("squeeze: dim")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
        one = _is_one(x.shape.dims[p.index])
        if one is None:
            rel.check("squeeze: whether the dim is 1")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
        if one:
            drop.add(p.index)
    dims = tuple(d for i, d in enumerate(x.shape.dims) if i not in drop)
    return TTensor(x.dtype, TShape(x.shape.row, dims), x.device)


@define("unsqueeze", "input, dim", "torch.unsqueeze", "shape")
def _unsqueeze(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    p = resolve_dim(x.shape, a["dim"], "dim", extra=1)
    one = TDim(None, Size.of(1))
    if p.index is None:
        rel.check("unsqueeze: dim")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    if x.shape.row is None:
        dims = x.shape.dims[:p.index] + (one,) + x.shape.dims[p.index:]
    else:  # counted from the right
        k = -p.negative - 1
        cut = len(x.shape.dims) - k
        dims = x.shape.dims[:cut] + (one,) + x.shape.dims[cut:]
    return TTensor(x.dtype, TShape(x.shape.row, dims), x.device)


def _expand(rel: Rel, x: TTensor, target: list[tuple[Size | None, str | None]],
            op: str) -> TTensor:
    n = len(target)
    if x.shape.row is None and len(x.shape.dims) > n:
        raise OpError("GT2005", f"{op}: {n} sizes for a tensor of rank {len(x.shape.dims)}",
                      "size")
    dims: list[TDim] = []
    for i, (s, label) in enumerate(target):
        k = n - i
        src = x.shape.dims[-k] if k <= len(x.shape.dims) else None
        if s is not None and (c := s.constant()) is not None and c < -1:
            raise OpError("GT2026", f"{op}: invalid size {c}", "size",
                          "sizes are non-negative, or -1 to keep a dim")
        if s is not None and s.constant() == -1:
            if src is None:
                raise OpError("GT2015", f"{op}: -1 is not allowed for a new leading dim",
                              "size")
            dims.append(src)
            continue
        if src is None:
            if x.shape.row is not None:
                rel.check(f"{op}: leading dims")
            dims.append(TDim(label, s))
            continue
        if src.size is not None and s is not None and decide(src.size, s) is Verdict.VALID:
            dims.append(TDim(src.label or label, s))
        elif _is_one(src):
            dims.append(TDim(label or src.label, s))
        else:
            rel.equal(src.size, s, f"{op}: dim {i} (a dim that is not 1 cannot expand)",
                      "size")
            dims.append(TDim(src.label or label, s if s is not None else src.size))
    return TTensor(x.dtype, TShape(None, tuple(dims)), x.device)


def _make_expand(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        target = _sizes_arg(a["size"], "size")
        if target is None:
            rel.check(f"{op}: sizes")
            return TTensor(x.dtype, ANY_SHAPE, x.device)
        return _expand(rel, x, target, op)

    return relation


define("expand", "input, *size", "Tensor.expand", "shape")(_make_expand("expand"))
define("broadcast_to", "input, size", "torch.broadcast_to", "shape")(
    _make_expand("broadcast_to"))


def _tensor_list(rel: Rel, arg: Arg, op: str) -> tuple[list[tuple[str, TTensor]], bool]:
    """The tensors of a tuple/list argument; the flag says whether their number is known."""
    elems = seq_elems(arg)
    if elems is not None:
        if not elems:
            raise OpError("GT2013", f"`{op}` needs at least one tensor", "tensors")
        return [(f"tensors[{i}]", tensor_of(e, f"tensors[{i}]")) for i, e in
                enumerate(elems)], True
    t = arg.type
    if isinstance(t, TList):
        return [("tensors", tensor_of(Arg(t.elem), "tensors"))], False
    if isinstance(t, TTuple):
        return [(f"tensors[{i}]", tensor_of(Arg(e), f"tensors[{i}]")) for i, e in
                enumerate(t.elems)], True
    return [("tensors", tensor_of(arg, "tensors"))], False


@define("cat", "tensors, dim=0", "torch.cat", "shape", method=False)
def _cat(rel: Rel, a: dict[str, Arg]) -> Type:
    items, counted = _tensor_list(rel, a["tensors"], "cat")
    device = same_device(items, "`cat`")
    dtype = promote([t for _, t in items])
    first_name, first = items[0]
    p = resolve_dim(first.shape, a["dim"], "dim")
    if rank_of(first.shape) == 0:
        raise OpError("GT2005", "`cat` cannot join 0-dim tensors", first_name,
                      "use stack to make a new dim")
    dims = list(first.shape.dims)
    total: Size | None = first.shape.dims[p.index].size if p.index is not None else None
    for name, t in items[1:]:
        if first.shape.row is None and t.shape.row is None and len(t.shape.dims) != len(dims):
            raise OpError("GT2005", f"`cat` needs tensors of one rank: `{first_name}` has "
                          f"{len(dims)} dims, `{name}` has {len(t.shape.dims)}", name)
        q = resolve_dim(t.shape, a["dim"], "dim")
        k = min(len(dims), len(t.shape.dims))
        for i in range(1, k + 1):
            j = len(dims) - i
            if p.index is not None and j == p.index:
                s = t.shape.dims[-i].size
                total = None if total is None or s is None else total + s
                continue
            other = t.shape.dims[-i]
            size = rel.equal(dims[j].size, other.size,
                             f"`cat` dim {j - len(dims)}: `{first_name}` against `{name}`",
                             name, "tensors joined by cat must agree on every other dim")
            m = dim_meet(dims[j], other, [])
            dims[j] = TDim(m.label if m is not None else None, size)
        del q
    if p.index is None:
        rel.check("cat: dim")
        return TTensor(dtype, TShape(DOTS, ()), device)
    dims[p.index] = TDim(dims[p.index].label, total if counted else None)
    return TTensor(dtype, TShape(first.shape.row, tuple(dims)), device)


@define("stack", "tensors, dim=0", "torch.stack", "shape", method=False)
def _stack(rel: Rel, a: dict[str, Arg]) -> Type:
    items, counted = _tensor_list(rel, a["tensors"], "stack")
    device = same_device(items, "`stack`")
    dtype = promote([t for _, t in items])
    first_name, shape = items[0][0], items[0][1].shape
    for name, t in items[1:]:
        if shape.row is None and t.shape.row is None and len(t.shape.dims) != len(shape.dims):
            raise OpError("GT2005", f"`stack` needs tensors of one shape: `{first_name}` has "
                          f"{len(shape.dims)} dims, `{name}` has {len(t.shape.dims)}", name)
        k = min(len(shape.dims), len(t.shape.dims))
        dims = list(shape.dims)
        for i in range(1, k + 1):
            size = rel.equal(dims[-i].size, t.shape.dims[-i].size,
                             f"`stack` dim {-i}: `{first_name}` against `{name}`", name,
                             "tensors stacked together must have one shape")
            dims[-i] = TDim(dims[-i].label, size)
        shape = TShape(shape.row, tuple(dims))
    n = Size.of(len(items)) if counted else None
    p = resolve_dim(shape, a["dim"], "dim", extra=1)
    new = TDim(None, n)
    if p.index is None:
        rel.check("stack: dim")
        return TTensor(dtype, ANY_SHAPE, device)
    if shape.row is None:
        dims_t = shape.dims[:p.index] + (new,) + shape.dims[p.index:]
    else:
        cut = len(shape.dims) + p.negative + 1
        dims_t = shape.dims[:cut] + (new,) + shape.dims[cut:]
    return TTensor(dtype, TShape(shape.row, dims_t), device)


def _needs_a_dim(x: TTensor, op: str) -> None:
    if rank_of(x.shape) == 0:
        raise OpError("GT2005", f"`{op}` needs a tensor with at least one dim, got a 0-dim one",
                      "input")


def _with_dim(x: TTensor, index: int, dim: TDim) -> TTensor:
    dims = list(x.shape.dims)
    dims[index] = dim
    return TTensor(x.dtype, TShape(x.shape.row, tuple(dims)), x.device)


@define("split", "tensor, split_size_or_sections, dim=0", "torch.split", "shape")
def _split(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["tensor"], "tensor")
    _needs_a_dim(x, "split")
    p = resolve_dim(x.shape, a["dim"], "dim")
    sections = _sizes_arg(a["split_size_or_sections"], "split_size_or_sections")
    for s, _ in sections or ():
        if s is not None and (c := s.constant()) is not None and c < 0:
            raise OpError("GT2026", f"split sections must be non-negative, got {c}",
                          "split_size_or_sections")
    if p.index is None:
        rel.check("split: dim")
        return TList(TTensor(x.dtype, ANY_SHAPE, x.device))
    d = x.shape.dims[p.index]
    if sections is not None:
        total: Size | None = Size.of(0)
        for s, _ in sections:
            total = total + s if s is not None and total is not None else None
        if total is not None:
            rel.equal(d.size, total, "split: the sections must add up to the dim's size",
                      "split_size_or_sections")
        return TTuple(tuple(_with_dim(x, p.index, TDim(d.label, s)) for s, _ in sections))
    size = as_size(static_int(a["split_size_or_sections"], "split_size_or_sections"))
    n, c = d.size.constant() if d.size is not None else None, size.constant() if size else None
    if c is not None and (c < 0 or (c == 0 and n not in (0, None))):
        raise OpError("GT2026", f"split size {c} for a dim of size {n}" if c == 0 else
                      f"split size must be non-negative, got {c}", "split_size_or_sections",
                      "a split size of 0 only splits an empty dim" if c == 0 else None)
    if n == 0 and c == 0:
        return TTuple((x,))
    if n is not None and c is not None and c > 0:
        counts = [c] * (n // c) + ([n % c] if n % c else [])
        if n == 0:
            counts = [0]
        return TTuple(tuple(_with_dim(x, p.index, TDim(d.label, Size.of(k))) for k in counts))
    return TList(_with_dim(x, p.index, TDim(d.label, None)))


@define("chunk", "input, chunks, dim=0", "torch.chunk", "shape")
def _chunk(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    _needs_a_dim(x, "chunk")
    p = resolve_dim(x.shape, a["dim"], "dim")
    chunks = static_int(a["chunks"], "chunks")
    if p.index is None or not isinstance(chunks, int):
        rel.check("chunk: sizes")
        return TList(TTensor(x.dtype, ANY_SHAPE, x.device))
    if chunks <= 0:
        raise OpError("GT2026", f"chunk needs a positive number of chunks, got {chunks}",
                      "chunks")
    d = x.shape.dims[p.index]
    n = d.size.constant() if d.size is not None else None
    if n is not None:
        step = -(-n // chunks) if n else 0
        # like torch, an empty dim splits into `chunks` empty pieces
        counts = [min(step, n - i) for i in range(0, n, step)] if step else [0] * chunks
        return TTuple(tuple(_with_dim(x, p.index, TDim(d.label, Size.of(k))) for k in counts))
    each = d.size.exact_div(Size.of(chunks)) if d.size is not None else None
    if each is not None:
        rel.check(f"chunk: {d.size} is not 0")
        return TTuple(tuple(_with_dim(x, p.index, TDim(d.label, each)) for _ in range(chunks)))
    return TList(_with_dim(x, p.index, TDim(d.label, None)))


@define("narrow", "input, dim, start, length", "torch.narrow", "shape")
def _narrow(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    _needs_a_dim(x, "narrow")
    p = resolve_dim(x.shape, a["dim"], "dim")
    length = as_size(static_int(a["length"], "length"))
    start = as_size(static_int(a["start"], "start"))
    if length is not None and (c := length.constant()) is not None and c < 0:
        raise OpError("GT2026", f"narrow: length must be non-negative, got {c}", "length")
    if p.index is None:
        rel.check("narrow: dim")
        return TTensor(x.dtype, ANY_SHAPE, x.device)
    d = x.shape.dims[p.index]
    n = d.size.constant() if d.size is not None else None
    s0 = start.constant() if start is not None else None
    k = length.constant() if length is not None else None
    if n is not None and s0 is not None:
        if not -n <= s0 <= n:
            raise OpError("GT2010", f"narrow: start {s0} is out of range for a dim of size "
                          f"{n}", "start", f"use a start in {-n}..{n}")
        first = s0 + n if s0 < 0 else s0
        if k is not None and first + k > n:
            raise OpError("GT2010", f"narrow: start {s0} + length {k} exceeds the dim's size "
                          f"{n}", "length")
    elif d.size is not None and length is not None and start is not None:
        over = start + length - d.size
        if (c := over.constant()) is not None and c > 0 and (s0 or 0) >= 0:
            raise OpError("GT2010", f"narrow: start {start} + length {length} exceeds the "
                          f"dim's size {d.size}", "length")
    if n is None or s0 is None or k is None:
        rel.check("narrow: start + length within the dim")
    return _with_dim(x, p.index, TDim(d.label, length))


@define("rename", "input, *names", "gtdsl.rename", "shape")
def _rename(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    elems = seq_elems(a["names"]) or ()
    labels = []
    for e in elems:
        if e.label is None and e.value is not None:
            raise OpError("GT2016", "rename takes labels (bare names) or None", "names")
        labels.append(e.label)
    if x.shape.row is None and len(labels) != len(x.shape.dims):
        raise OpError("GT2005", f"rename: {len(labels)} labels for a tensor of rank "
                      f"{len(x.shape.dims)}", "names")
    if len(labels) > len(x.shape.dims):
        raise OpError("GT2009", "rename: more labels than known dims", "names",
                      "annotate the tensor's dims first")
    k = len(labels)
    dims = x.shape.dims[:len(x.shape.dims) - k] + tuple(
        TDim(label, d.size) for label, d in zip(labels, x.shape.dims[len(x.shape.dims) - k:]))
    return TTensor(x.dtype, TShape(x.shape.row, dims), x.device)


@define(("tril", "triu"), "input, diagonal=0", "torch.{name}", "shape")
def _tri(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    r = rank_of(x.shape)
    if (r is not None and r < 2) or (r is None and len(x.shape.dims) < 2):
        if r is not None:
            raise OpError("GT2005", f"tril/triu need rank ≥ 2, got {r}", "input")
        rel.check("tril/triu: rank ≥ 2")
    return x


__all__ = ["broadcast_shapes", "solve_target"]
