"""The fusion pass: the eqns of a function's top-level block that run together in one kernel
become one ``KERNEL`` eqn.

``fuse(fn)`` returns ``fn`` with each group of fused eqns replaced by one ``KERNEL`` eqn placed
where the group's last eqn was: its inputs are the values the group reads from outside, its
outputs the values used after it, its parameter ``kernel`` a ``Kernel`` (kind, name, iteration
shape) and its block the group's eqns ending in ``YIELD`` of the outputs. Values only the
kernel uses are defined only inside the block. Everything else stays as it was (run as
torch ops by the torch code generator). The groups:

- ``pointwise``: elementwise ops and broadcasts whose results all have the group's shape;
- ``row``: elementwise ops and reductions along the last dim (sum, mean, amax, amin with
  ``keepdim``, softmax, log_softmax, layer_norm, rms_norm) over rows of one length; the
  row statistics stay in registers, so ``x * rsqrt(mean(x * x, -1, keepdim=True) + eps) * w``
  is one kernel;
- ``matmul``: a matrix product (``@`` with a 2-D right operand, possibly ``.T`` of a weight,
  or ``linear``) with an elementwise epilogue on its result: bias, activation, residual;
- ``attention``: ``scaled_dot_product_attention`` on [B, H, L, D] tensors, causal or not,
  with no mask, a bool mask or an additive bias (``classify_attention``).

Rules that keep the rewrite correct: the kernel runs where the group's last eqn was, so an
eqn joins a group only if no input it takes from outside depends on the group, and no torch
op placed among the group's eqns uses a value the group computes; every
value the group hands out has the group's full shape (or is a row statistic of a row group);
every tensor involved has a concrete floating-point dtype. Loops, branches, calls and checks
stay torch code.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TypeGuard

from gtdsl.ir.core import Atom, Block, Eqn, Function, Lit, Op, Var, op_for, walk
from gtdsl.lower.triton.exprs import (
    BINARY, FLOATS, OTHER, ROW_REDUCE, UNARY, elementwise,
)
from gtdsl.ops import OPS
from gtdsl.types import DT, Size, TDim, TScalar, TShape, TTensor, TTuple, Type

OP_NAMES = {op_for(n): n for n in OPS}


@dataclass(frozen=True, slots=True)
class Kernel:
    """The ``kernel`` parameter of a ``KERNEL`` eqn: the kernel's kind (``pointwise``,
    ``row``, ``matmul``, ``attention``), its name and its iteration shape (row: the full
    rows). The launcher is built from the eqn: this, its inputs and its block."""

    kind: str
    name: str
    shape: TShape

    def __str__(self) -> str:
        return f"{self.name}: {self.kind}"


@dataclass
class Group:
    """A group being formed by the analysis (``fuse`` turns each into a ``KERNEL`` eqn)."""

    kind: str  # "pointwise" | "row" | "matmul" | "attention"
    eqns: list[Eqn]
    shape: TShape  # the iteration shape (row: the full rows)
    start: int = 0  # index of the first eqn in the block
    defined: set[int] = field(default_factory=set)  # vars the group computes
    outputs: list[Var] = field(default_factory=list)
    inputs: list[Var] = field(default_factory=list)  # first-use order

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.eqns[0].outs[0].id}"


def fuse(fn: Function) -> Function:
    """``fn`` with each fused group of its top-level eqns replaced by one ``KERNEL`` eqn."""
    found = groups(fn)
    if not found:
        return fn
    last = {id(g.eqns[-1]): g for g in found}
    members = {id(e) for g in found for e in g.eqns}
    fresh = itertools.count(_max_id(fn) + 1)
    eqns: list[Eqn] = []
    for e in fn.body.eqns:
        if id(e) in last:
            eqns.append(_kernel_eqn(last[id(e)], fresh))
        elif id(e) not in members:
            eqns.append(e)
    return replace(fn, body=Block(tuple(eqns)))


def _kernel_eqn(g: Group, fresh: Iterator[int]) -> Eqn:
    """The group as one eqn. Its outputs keep their vars outside; inside the block the eqns
    that compute them define fresh ones (a var is defined once), which the YIELD hands out."""
    inner = {o.id: Var(next(fresh), o.hint, o.type) for o in g.outputs}

    def sub(v: Var) -> Var:
        return inner.get(v.id, v)

    body = [replace(e, ins=tuple(sub(a) if isinstance(a, Var) else a for a in e.ins),
                    outs=tuple(sub(o) for o in e.outs)) for e in g.eqns]
    body.append(Eqn(Op.YIELD, tuple(inner[o.id] for o in g.outputs), ()))
    kernel = Kernel(g.kind, g.name, g.shape)
    return Eqn(Op.KERNEL, tuple(g.inputs), tuple(g.outputs), (("kernel", kernel),),
               (Block(tuple(body)),), g.eqns[-1].span)


def _max_id(fn: Function) -> int:
    """The largest var id ``fn`` defines (its parameters, eqn outputs and loop binders)."""
    ids = [p.id for p in fn.params]
    for e in walk(fn.body):
        ids += [o.id for o in e.outs]
        if e.op is Op.FOR:
            ids += [v.id for v in e.param("binders", ())]
    return max(ids, default=0)


def describe(fn: Function) -> str:
    """The launch plan of a fused function: one line per step, in run order (the entry
    checks and the return left out)."""
    lines = []
    for e in fn.body.eqns:
        if e.op is Op.KERNEL:
            k = e.param("kernel")
            ops = ", ".join(OP_NAMES.get(x.op, x.op.name.lower()) for x in e.blocks[0].eqns[:-1])
            outs = ", ".join(f"%{o.id}" for o in e.outs)
            lines.append(f"kernel {k.name} [{k.kind}]: {ops} -> {outs}")
        elif e.op.name not in ("CHECK_CAST", "RETURN") or e.op is Op.CHECK_CAST and \
                e.param("blame").kind.value != "arg":
            lines.append(f"torch  {e.op.name.lower()}" + (f" -> %{e.outs[0].id}" if e.outs
                                                          else ""))
    return "\n".join(lines)


def op_name(e: Eqn) -> str | None:
    return OP_NAMES.get(e.op)


def _args(e: Eqn) -> dict[str, Atom]:
    return dict(zip(e.param("names", ()), e.ins))


def _is_float_tensor(t: Type) -> TypeGuard[TTensor]:
    return isinstance(t, TTensor) and t.dtype in FLOATS


def tensor_of(a: Atom) -> TTensor:
    """The tensor type of ``a``, where the fusion rules guarantee a tensor (the output of a
    fused op, the operand a group's kind is chosen by)."""
    if not isinstance(a.type, TTensor):
        raise TypeError(f"{a} is not a tensor but {a.type}")
    return a.type


def _atom_ok(a: Atom) -> bool:
    """A tensor operand of float dtype, or a number (a Python scalar or literal)."""
    t = a.type
    if isinstance(t, TTensor):
        return t.dtype in FLOATS or t.dtype is DT.BOOL
    if isinstance(t, TScalar):  # a size variable's literal (a polynomial) stays a torch op
        return not isinstance(a, Lit) or isinstance(a.value, (int, float)) and not isinstance(
            a.value, bool)
    return isinstance(a, Lit) and isinstance(a.value, (int, float)) and not isinstance(
        a.value, bool)


def _none_or_vector(a: Atom) -> bool:
    """A norm's weight or bias: None, or a float vector."""
    t = a.type
    return isinstance(a, Lit) and a.value is None or _is_float_tensor(t) and len(
        t.shape.dims) == 1 and t.shape.row is None


def _last_dim_is(a: Atom, t: TTensor) -> bool:
    dims = t.shape.dims
    if not dims:
        return False
    v = a.value if isinstance(a, Lit) else None
    return v == -1 or (isinstance(v, int) and t.shape.row is None and v == len(dims) - 1) or \
        (isinstance(v, tuple) and len(v) == 1 and (v[0] == -1 or t.shape.row is None and
                                                   v[0] == len(dims) - 1))


def classify(e: Eqn) -> str | None:
    """"ew", "reduce", "rowop", "matmul", "T" or None (not fusible)."""
    name = op_name(e)
    if name is None or not e.outs:
        return None
    args = _args(e)
    out_t = e.outs[0].type
    if name in UNARY or name in BINARY or name in OTHER:
        if name == "to":
            device = args.get("device")
            return "ew" if _is_float_tensor(out_t) and isinstance(device, Lit) and \
                device.value is None and _is_float_tensor(args["input"].type) else None
        lits = {k: a.value for k, a in args.items() if isinstance(a, Lit)}
        if name == "gelu" and lits.get("approximate", "none") not in ("none", "tanh"):
            return None
        if name == "pow" and (not isinstance(args["other"], Lit) or elementwise(
                "pow", {"input": "a"}, {"other": args["other"].value}) is None):
            return None
        if name == "clamp" and any(isinstance(args.get(k), Var) and not isinstance(
                args[k].type, TScalar) for k in ("min", "max")):
            return None
        tensors = [a for k, a in args.items() if isinstance(a.type, TTensor)]
        if not tensors or not all(_atom_ok(a) for a in args.values()
                                  if not (isinstance(a, Lit) and (a.value is None or
                                                                  isinstance(a.value, str)))):
            return None
        if not (_is_float_tensor(out_t) or isinstance(out_t, TTensor) and out_t.dtype is DT.BOOL):
            return None
        return "ew"
    x = args.get("input")
    if x is None or not _is_float_tensor(x.type) or not _is_float_tensor(out_t):
        return None
    if name in ROW_REDUCE and _last_dim_is(args["dim"], x.type):
        # keepdim a literal: a variable one leaves the result's rank to the run
        keepdim = args["keepdim"]
        return "reduce" if isinstance(keepdim, Lit) and keepdim.value is not None else None
    if name in ("softmax", "log_softmax") and _last_dim_is(args["dim"], x.type):
        dtype = args.get("dtype")
        if isinstance(dtype, Lit) and dtype.value is None:
            return "rowop"
    if name in ("layer_norm", "rms_norm"):
        shape = args["normalized_shape"]
        last = x.type.shape.dims[-1].size if x.type.shape.dims else None
        if isinstance(shape, Lit) and isinstance(shape.value, tuple) and len(shape.value) == 1:
            one = Size.of(shape.value[0]) if isinstance(shape.value[0], int) else shape.value[0]
        elif isinstance(shape, Var) and isinstance(shape.type, TTuple) and len(
                shape.type.elems) == 1 and isinstance(shape.type.elems[0], TScalar):
            one = shape.type.elems[0].value
        else:
            one = None
        if one is not None and last is not None and one == last:
            if all(_none_or_vector(args[k]) for k in ("weight", "bias") if k in args):
                eps = args["eps"]
                if isinstance(eps, Lit) or isinstance(eps.type, TScalar):
                    return "rowop"
        return None
    if name in ("matmul", "linear") and x.type.dtype is DT.F64:
        return None  # the templates accumulate in f32
    if name == "matmul":
        y = args["other"]
        if _is_float_tensor(y.type) and y.type.shape.row is None and len(
                y.type.shape.dims) == 2 and x.type.dtype == y.type.dtype and len(
                x.type.shape.dims) >= 1 and (x.type.shape.row is not None or len(
                x.type.shape.dims) >= 2):
            return "matmul"
    if name == "linear":
        w = args["weight"]
        if _is_float_tensor(w.type) and len(w.type.shape.dims) == 2 and \
                w.type.shape.row is None and x.type.dtype == w.type.dtype:
            return "matmul"
    if name == "T" and len(x.type.shape.dims) == 2 and x.type.shape.row is None:
        return "T"
    return None


def classify_attention(e: Eqn) -> bool:
    """scaled_dot_product_attention on [B, H, L, D] tensors of one float dtype (f16, bf16,
    f32, f64) and one head dim D, no dropout, a literal ``is_causal``, a numeric or default
    scale, and no mask or a mask of at most 4 dims (no row variable) that is bool (True
    attends) or an additive bias of the query's dtype: the attention templates' case."""
    if op_name(e) != "scaled_dot_product_attention":
        return False
    args = _args(e)
    tensors = [t for t in (args["query"].type, args["key"].type, args["value"].type)
               if _is_float_tensor(t)]
    if len(tensors) != 3:
        return False
    if not all(t.shape.row is None and len(t.shape.dims) == 4 and t.dtype == tensors[0].dtype
               for t in tensors):
        return False
    mask = args["attn_mask"]
    if not (isinstance(mask, Lit) and mask.value is None):
        m = mask.type
        if not (isinstance(mask, Var) and isinstance(m, TTensor) and m.shape.row is None
                and len(m.shape.dims) <= 4 and m.dtype in (DT.BOOL, tensors[0].dtype)):
            return False
    if not (isinstance(args["dropout_p"], Lit) and args["dropout_p"].value == 0.0):
        return False
    if not isinstance(args["is_causal"], Lit):
        return False
    d = [t.shape.dims[-1].size for t in tensors]
    if any(x is None for x in d) or not (d[0] == d[1] == d[2]):
        return False
    scale = args["scale"]
    return isinstance(scale, Lit) or isinstance(scale.type, TScalar)


def _same_shape(a: TShape | None, b: TShape | None) -> bool:
    """Both shapes are known equal: the same row variable (two ``...`` may differ) and equal
    known sizes."""
    if a is None or b is None or a.row != b.row or len(a.dims) != len(b.dims):
        return False
    if a.row is not None and a.row.name is None:
        return False
    return all(x.size is not None and y.size is not None and x.size == y.size
               for x, y in zip(a.dims, b.dims))


def _stat_shape(full: TShape) -> TShape:
    return TShape(full.row, full.dims[:-1] + (TDim(None, Size.of(1)),))


def groups(fn: Function) -> list[Group]:
    """The fused groups of ``fn``'s top-level block, each with its inputs and outputs.

    A matrix product's epilogue hands out no value a later kernel recomputes cheaply: an
    epilogue op whose result is only used after the kernel, computed from values the kernel
    hands out anyway (``x * x`` after ``x = x + a @ w.T``, for the next norm), is left out of
    the epilogue and fuses into its users' kernel instead, saving a tensor's write and read."""
    keep_out: set[int] = set()
    for _ in range(len(fn.body.eqns) + 1):
        found = _groups(fn, keep_out)
        more = {id(e) for g in found if g.kind == "matmul" for e in _recomputable(g)}
        if more <= keep_out:
            return found
        keep_out |= more
    return found


def _recomputable(g: Group) -> list[Eqn]:
    """The epilogue eqns of a matmul group that only add outputs: each one's results are used
    outside the group only, and the group values it reads are outputs already."""
    if len(g.outputs) < 2:
        return []
    out_ids = {o.id for o in g.outputs}
    read_inside = {a.id for e in g.eqns for a in e.ins if isinstance(a, Var)}
    return [e for e in g.eqns if classify(e) == "ew"
            and all(o.id in out_ids and o.id not in read_inside for o in e.outs)
            and all(a.id in out_ids for a in e.ins if isinstance(a, Var) and a.id in g.defined)]


def _groups(fn: Function, keep_out: set[int]) -> list[Group]:
    """``groups``, the eqns ``keep_out`` names (by ``id``) kept out of matmul epilogues."""
    eqns = list(fn.body.eqns)
    uses: dict[int, int] = {}
    for e in walk(fn.body):
        for a in e.ins:
            if isinstance(a, Var):
                uses[a.id] = uses.get(a.id, 0) + 1
    producer_index: dict[int, int] = {o.id: i for i, e in enumerate(eqns) for o in e.outs}
    ancestors: dict[int, frozenset[int]] = {}

    def ancestry(i: int) -> frozenset[int]:
        """The top-level eqns that eqn ``i`` depends on, itself included."""
        if i not in ancestors:
            out = {i}
            for a in eqns[i].ins:
                if isinstance(a, Var) and a.id in producer_index:
                    out |= ancestry(producer_index[a.id])
            ancestors[i] = frozenset(out)
        return ancestors[i]

    def users_between(g: Group, stop: int) -> bool:
        """Does a torch eqn placed among the group's eqns use one of its values?"""
        members = {id(x) for x in g.eqns}
        for j in range(g.start, stop):
            x = eqns[j]
            if id(x) not in members and any(isinstance(a, Var) and a.id in g.defined
                                            for b in [x] for a in _all_ins(b)):
                return True
        return False

    producer: dict[int, Group] = {}
    found: list[Group] = []
    transposes: dict[int, Eqn] = {}  # var id -> its T eqn (folded into a matmul)
    for i, e in enumerate(eqns):
        if classify_attention(e):
            g = Group("attention", [e], tensor_of(e.outs[0]).shape, i, {e.outs[0].id})
            found.append(g)
            continue
        kind = classify(e)
        if kind is None:
            continue
        args = _args(e)
        out = e.outs[0]
        if kind == "T":
            transposes[out.id] = e
            continue
        candidates = [producer[a.id] for a in e.ins if isinstance(a, Var) and a.id in producer]
        if found and found[-1] not in candidates:
            # an independent op of the same shape can share the latest kernel:
            # in `gelu(x + c) * sigmoid(y)`, sigmoid(y) joins the gelu group
            candidates.insert(0, found[-1])
        joined = None
        for g in reversed(candidates):
            group_eqns = {i2 for i2, x in enumerate(eqns) if id(x) in {id(y) for y in g.eqns}}
            # an outside input must not depend on the group (the launch would need itself)
            independent = all(not (ancestry(producer_index[a.id]) & group_eqns)
                              for a in e.ins if isinstance(a, Var) and a.id not in g.defined
                              and a.id in producer_index)
            if independent and not users_between(g, i) and _can_join(g, e, kind, args) and \
                    not (g.kind == "matmul" and id(e) in keep_out):
                joined = g
                break
        if joined is None:
            joined = _new_group(e, kind, args, i)
            found.append(joined)
        else:
            joined.eqns.append(e)
            if joined.kind == "pointwise" and kind in ("reduce", "rowop"):
                joined.kind = "row"
                joined.shape = tensor_of(args["input"]).shape
        joined.defined.add(out.id)
        producer[out.id] = joined
        if kind == "matmul":
            rhs = args.get("other", args.get("weight"))
            t = transposes.get(rhs.id) if isinstance(rhs, Var) else None
            if t is not None and uses.get(t.outs[0].id, 0) == 1:
                joined.eqns.insert(0, t)
                joined.defined.add(t.outs[0].id)
    for g in found:
        _finish(g, uses)
    # a group whose values nobody uses stays torch code: it still runs (and may fail) as the
    # reference does, but no kernel is built for it
    return [g for g in found if g.outputs]


def _new_group(e: Eqn, kind: str, args: dict[str, Atom], i: int) -> Group:
    out_t = tensor_of(e.outs[0])
    if kind == "ew":
        return Group("pointwise", [e], out_t.shape, i)
    if kind in ("reduce", "rowop"):
        return Group("row", [e], tensor_of(args["input"]).shape, i)
    return Group("matmul", [e], out_t.shape, i)


def _all_ins(e: Eqn) -> Iterator[Atom]:
    """Every atom an eqn reads, inside its blocks too."""
    yield from e.ins
    for b in e.blocks:
        for x in walk(b):
            yield from x.ins


def _can_join(g: Group, e: Eqn, kind: str, args: dict[str, Atom]) -> bool:
    out_t = tensor_of(e.outs[0])
    if kind == "matmul":
        return False
    if g.kind == "matmul":
        # an epilogue: elementwise on the product's shape, other tensors full or [N] bias
        if kind != "ew" or not _same_shape(out_t.shape, g.shape):
            return False
        for a in e.ins:
            if isinstance(a, Var) and a.id not in g.defined and isinstance(a.type, TTensor):
                dims = a.type.shape.dims
                if not (_same_shape(a.type.shape, g.shape) or (
                        a.type.shape.row is None and len(dims) == 1 and dims[0].size is not None
                        and g.shape.dims and dims[0].size == g.shape.dims[-1].size)):
                    return False
        return True
    if kind == "ew":
        if g.kind == "row":
            if _same_shape(out_t.shape, g.shape):
                return True
            # a row statistic's shape: only from the group's own statistics (a tensor read
            # from outside is loaded along the row, and would make the result a full row)
            return _same_shape(out_t.shape, _stat_shape(g.shape)) and all(
                a.id in g.defined for a in e.ins
                if isinstance(a, Var) and isinstance(a.type, TTensor))
        # every value of a pointwise group has the group's shape, so an op on the group's
        # values (and numbers) has it too, also where the types cannot say (``...``)
        tensors = [a for a in e.ins if isinstance(a, Var) and isinstance(a.type, TTensor)]
        return _same_shape(out_t.shape, g.shape) or bool(tensors) and all(
            a.id in g.defined for a in tensors)
    # a reduction or row op joins a pointwise group over the same full shape, or a row group
    return bool(g.shape.dims) and _same_shape(tensor_of(args["input"]).shape, g.shape)


def _finish(g: Group, uses: dict[int, int]) -> None:
    inside: dict[int, int] = {}
    for e in g.eqns:
        for a in e.ins:
            if isinstance(a, Var):
                inside[a.id] = inside.get(a.id, 0) + 1
    seen: set[int] = set()
    for e in g.eqns:
        for a in e.ins:
            if isinstance(a, Var) and a.id not in g.defined and a.id not in seen:
                seen.add(a.id)
                g.inputs.append(a)
        for o in e.outs:
            if uses.get(o.id, 0) > inside.get(o.id, 0) and o not in g.outputs:
                g.outputs.append(o)


__all__ = ["Group", "Kernel", "classify", "describe", "fuse", "groups", "op_name"]
