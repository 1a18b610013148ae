"""Linear algebra: ``matmul`` (``@``, with batch broadcasting), ``bmm``, ``linear``,
``einsum`` and ``scaled_dot_product_attention``.

torch does not promote dtypes here: operands must have one dtype.
"""

from __future__ import annotations

from gtdsl.ops.base import (
    ANY_SHAPE, DT, Arg, OpError, Rel, TDim, TOther, TShape, TTensor, broadcast_dim,
    broadcast_shapes, rank_of, require_float, same_device, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import Dev, Type
from gtdsl.types.lattice import dt_meet


def same_dtype(op: str, items: list[tuple[str, TTensor]]) -> DT:
    out = DT.ANY
    first = None
    for name, t in items:
        m = dt_meet(out, t.dtype)
        if m is None:
            raise OpError("GT2002", f"`{op}` needs operands of one dtype: `{first}` is {out}, "
                          f"`{name}` is {t.dtype}", name, f"convert one side, e.g. "
                          f"{name}.to({out})")
        if first is None and t.dtype is not DT.ANY:
            first = name
        out = m
    return out


def contract(rel: Rel, a: TDim, b: TDim, what: str, arg: str) -> None:
    """The contracted dims of a product must have one size (their labels may differ)."""
    rel.equal(a.size, b.size, what, arg,
              "the inner dims of a matrix product must be equal")


def _product_operands(a: dict[str, Arg], second: str, op: str
                      ) -> tuple[TTensor, TTensor, DT, Dev]:
    """The two operands of a matrix product: one dtype (not bool), one device."""
    x, y = tensor_of(a["input"], "input"), tensor_of(a[second], second)
    dtype = same_dtype(op, [("input", x), (second, y)])
    if dtype is DT.BOOL:
        raise OpError("GT2002", f"`{op}` is not defined on bool tensors", "input")
    return x, y, dtype, same_device([("input", x), (second, y)], f"`{op}`")


@define("matmul", "input, other", "torch.matmul", "linalg")
def _matmul(rel: Rel, a: dict[str, Arg]) -> Type:
    x, y, dtype, device = _product_operands(a, "other", "@")
    rx, ry = rank_of(x.shape), rank_of(y.shape)
    for name, r, t in (("input", rx, x), ("other", ry, y)):
        if r == 0:
            raise OpError("GT2005", f"`@` needs tensors of rank ≥ 1, `{name}` is 0-dim", name)
    if ry == 2 and x.shape.dims:
        # [..., k] @ [k, n] is [..., n] whether x is 1-D or batched.
        contract(rel, x.shape.dims[-1], y.shape.dims[0], "`@` inner dims", "other")
        return TTensor(dtype, TShape(x.shape.row, x.shape.dims[:-1] + (y.shape.dims[1],)),
                       device)
    # A variadic operand with fewer than 2 known dims might be 1-D: the result is unknown.
    if (rx is None and len(x.shape.dims) < 2) or (ry is None and len(y.shape.dims) < 2):
        rel.check("`@`: operand ranks")
        return TTensor(dtype, ANY_SHAPE, device)
    what = "`@` inner dims"
    if rx == 1 and ry == 1:
        contract(rel, x.shape.dims[0], y.shape.dims[0], what, "other")
        return TTensor(dtype, TShape(None, ()), device)
    if ry == 1:
        contract(rel, x.shape.dims[-1], y.shape.dims[0], what, "other")
        return TTensor(dtype, TShape(x.shape.row, x.shape.dims[:-1]), device)
    if rx == 1:
        contract(rel, x.shape.dims[0], y.shape.dims[-2], what, "other")
        return TTensor(dtype, TShape(y.shape.row, y.shape.dims[:-2] + y.shape.dims[-1:]),
                       device)
    contract(rel, x.shape.dims[-1], y.shape.dims[-2], what, "other")
    batch = broadcast_shapes(rel, [TShape(x.shape.row, x.shape.dims[:-2]),
                                   TShape(y.shape.row, y.shape.dims[:-2])], "`@` batch dims")
    return TTensor(dtype, TShape(batch.row, batch.dims + (x.shape.dims[-2],
                                                          y.shape.dims[-1])), device)


@define("bmm", "input, mat2", "torch.bmm", "linalg")
def _bmm(rel: Rel, a: dict[str, Arg]) -> Type:
    x, y, dtype, device = _product_operands(a, "mat2", "bmm")
    dims = []
    for name, t in (("input", x), ("mat2", y)):
        r = rank_of(t.shape)
        if r is not None and r != 3:
            raise OpError("GT2005", f"`bmm` needs 3-dim tensors, `{name}` has rank {r}", name,
                          "use matmul (@) for other ranks")
        dims.append(t.shape.dims if r == 3 else (TDim(),) * (3 - len(t.shape.dims)) + t.shape.dims[-3:])
    bx, by = dims
    batch = rel.equal(bx[0].size, by[0].size, "`bmm` batch dims", "mat2")
    contract(rel, bx[2], by[1], "`bmm` inner dims", "mat2")
    return TTensor(dtype, TShape(None, (TDim(bx[0].label or by[0].label, batch), bx[1], by[2])),
                   device)


@define("linear", "input, weight, bias=None", "torch.nn.functional.linear", "linalg",
        method=False)
def _linear(rel: Rel, a: dict[str, Arg]) -> Type:
    x, w = tensor_of(a["input"], "input"), tensor_of(a["weight"], "weight")
    items = [("input", x), ("weight", w)]
    if not isinstance(a["bias"].type, TOther):
        items.append(("bias", tensor_of(a["bias"], "bias")))
    dtype = same_dtype("linear", items)
    if dtype is DT.BOOL:
        raise OpError("GT2002", "`linear` is not defined on bool tensors", "input")
    device = same_device(items, "`linear`")
    rw = rank_of(w.shape)
    if rw not in (1, 2, None):
        raise OpError("GT2005", f"`linear` weight must be 1- or 2-dim, got rank {rw}", "weight")
    if rank_of(x.shape) == 0:
        raise OpError("GT2005", "`linear` input must have at least one dim", "input")
    if rw is None or not x.shape.dims:
        rel.check("`linear`: operand ranks")
        return TTensor(dtype, ANY_SHAPE, device)
    w_in = w.shape.dims[-1]
    contract(rel, x.shape.dims[-1], w_in, "`linear` input features against weight", "weight")
    out_dims = x.shape.dims[:-1] + ((w.shape.dims[0],) if rw == 2 else ())
    out = TShape(x.shape.row, out_dims)
    if len(items) == 3:
        b = items[2][1]
        rb = rank_of(b.shape)
        # like torch, whose fused path (addmm, taken for 2-dim inputs) needs a 2-dim weight
        if rw == 1 and (rb not in (0, None) or rank_of(x.shape) == 2):
            raise OpError("GT2005", "`linear` with a 1-dim weight takes only a 0-dim bias, "
                          "and none for a 2-dim input", "bias")
        if rb is not None and rb > 1:
            raise OpError("GT2005", f"`linear` bias must have shape (out_features,) or (), "
                          f"got `{b.shape}`", "bias")
        if rb == 1 and out.dims:  # the bias broadcasts to the output; it cannot enlarge it
            bd, od = b.shape.dims[0], out.dims[-1]
            if bd.size is None or bd.size.constant() != 1:
                rel.equal(od.size, bd.size, "`linear` bias against the output features",
                          "bias", "the bias has one entry per output feature")
        out = broadcast_shapes(rel, [out, b.shape], "`linear` bias")
    return TTensor(dtype, out, device)


@define("einsum", "equation, *operands", "torch.einsum", "linalg", method=False)
def _einsum(rel: Rel, a: dict[str, Arg]) -> Type:
    eq = a["equation"].value
    if not isinstance(eq, str):
        raise OpError("GT2014", "the einsum equation must be a string literal", "equation")
    ops = a["operands"].value if isinstance(a["operands"].value, tuple) else ()
    tensors = [(f"operands[{i}]", tensor_of(o, f"operands[{i}]")) for i, o in enumerate(ops)]
    spec = eq.replace(" ", "")
    lhs, arrow, rhs = spec.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(tensors):
        raise OpError("GT2013", f"the einsum equation names {len(inputs)} operands, "
                      f"{len(tensors)} given", "equation")
    dtype = same_dtype("einsum", tensors)
    device = same_device(tensors, "`einsum`")
    letters: dict[str, TDim] = {}
    ell: list[TShape] = []
    for term, (name, t) in zip(inputs, tensors):
        has_ell = "..." in term
        subs = term.replace("...", "")
        if not all(c.isalpha() for c in subs):
            raise OpError("GT2027", f"bad einsum term {term!r}", "equation",
                          "terms are letters, optionally with one leading ...")
        r = rank_of(t.shape)
        if r is not None and (r < len(subs) or (not has_ell and r != len(subs))):
            raise OpError("GT2005", f"einsum term {term!r} has {len(subs)} letters but "
                          f"`{name}` has rank {r}", name)
        if t.shape.row is not None and len(t.shape.dims) < len(subs):
            rel.check("einsum operand ranks")
            return TTensor(dtype, ANY_SHAPE, device)
        dims = t.shape.dims[len(t.shape.dims) - len(subs):]
        if has_ell:
            ell.append(TShape(t.shape.row, t.shape.dims[:len(t.shape.dims) - len(subs)]))
        seen: dict[str, TDim] = {}
        for c, d in zip(subs, dims):
            if c in seen:  # a repeated letter in one term (a diagonal): equal sizes
                rel.equal(seen[c].size, d.size, f"einsum letter `{c}` repeated in {term!r}",
                          name)
                continue
            seen[c] = d
            if c in letters:  # across operands, a size-1 dim broadcasts, as in torch
                merged = broadcast_dim(rel, TDim(None, letters[c].size), TDim(None, d.size),
                                       f"einsum letter `{c}`")
                letters[c] = TDim(letters[c].label if letters[c].label == d.label else None,
                                  merged.size)
            else:
                letters[c] = d
    if not arrow:
        counts = {c: lhs.count(c) for c in letters}
        rhs = ("..." if ell else "") + "".join(sorted(c for c, n in counts.items() if n == 1))
    out_ell = broadcast_shapes(rel, ell, "einsum ...") if ell else TShape(None, ())
    subs = rhs.replace("...", "")
    for c in subs:
        if c not in letters:
            raise OpError("GT2027", f"einsum output letter `{c}` is not in any input",
                          "equation")
    dims = tuple(letters[c] for c in subs)
    if "..." in rhs:
        return TTensor(dtype, TShape(out_ell.row, out_ell.dims + dims), device)
    return TTensor(dtype, TShape(None, dims), device)


@define("scaled_dot_product_attention",
        "query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None",
        "torch.nn.functional.scaled_dot_product_attention", "linalg", method=False)
def _sdpa(rel: Rel, a: dict[str, Arg]) -> Type:
    q, k, v = (tensor_of(a[n], n) for n in ("query", "key", "value"))
    items = [("query", q), ("key", k), ("value", v)]
    dtype = same_dtype("scaled_dot_product_attention", items)
    require_float(dtype, "query", "scaled_dot_product_attention")
    device = same_device(items, "`scaled_dot_product_attention`")
    for name, t in items:
        if len(t.shape.dims) < 2 and t.shape.row is not None:
            rel.check("attention operand ranks")
            return TTensor(dtype, ANY_SHAPE, device)
        if t.shape.row is None and len(t.shape.dims) < 2:
            raise OpError("GT2005", f"attention operands need rank ≥ 2, `{name}` has rank "
                          f"{len(t.shape.dims)}", name)
    what = "attention"
    contract(rel, q.shape.dims[-1], k.shape.dims[-1], f"{what}: query and key feature dims",
             "key")
    s = rel.equal(k.shape.dims[-2].size, v.shape.dims[-2].size,
                  f"{what}: key and value sequence lengths", "value")
    batch = broadcast_shapes(rel, [TShape(t.shape.row, t.shape.dims[:-2]) for _, t in items],
                             f"{what}: batch dims")
    if not isinstance(a["attn_mask"].type, TOther):
        m = tensor_of(a["attn_mask"], "attn_mask")
        if m.dtype.is_concrete and dtype.is_concrete and m.dtype not in (DT.BOOL, dtype):
            raise OpError("GT2002", f"the attention mask must be bool or {dtype} (the query's "
                          f"dtype), got {m.dtype}", "attn_mask")
        if a["is_causal"].value is True:
            raise OpError("GT2013", "pass either attn_mask or is_causal=True, not both",
                          "attn_mask")
        # the mask is added in place to the scores q @ k^T: it broadcasts to their shape
        # (the batch dims of query and key, L, S) and cannot enlarge it
        qk = broadcast_shapes(rel, [TShape(t.shape.row, t.shape.dims[:-2]) for _, t in
                                    items[:2]], f"{what}: batch dims")
        full = TShape(qk.row, qk.dims + (q.shape.dims[-2], TDim(k.shape.dims[-2].label, s)))
        if full.row is None and m.shape.row is None and len(m.shape.dims) > len(full.dims):
            raise OpError("GT2005", f"{what}: the mask `{m.shape}` has more dims than the "
                          f"scores `{full}`", "attn_mask")
        for md, fd in zip(reversed(m.shape.dims), reversed(full.dims)):
            if md.size is None or md.size.constant() != 1:
                rel.equal(fd.size, md.size, f"{what}: mask against the scores", "attn_mask",
                          "the mask broadcasts to (..., L, S): each dim equal, or 1")
    out = TShape(batch.row, batch.dims + (q.shape.dims[-2], v.shape.dims[-1]))
    return TTensor(dtype, out, device)
