"""IR → straight-line Python over torch ops: the torch backend's code generator.

Input: one IR ``Function``. Output: ``Generated``, the source of ``def __gt_body(params...,
sizes...)`` and the constants it refers to as globals ``__gt_k<i>``: typed records
(``gtdsl.lower.records``: cast sites, op checks, callees, torch functions, Python names,
kernel launches) and plain values (torch dtypes). The generated body runs no interpretation at call
time: every op is a direct call. The entry casts are not in it: the generated entry check
(``gtdsl.runtime.entry``) runs them and passes the bound sizes in, as ``__gt_s_<name>``
(row variables as tuples, ``__gt_r_<name>``). A ``KERNEL`` eqn (from a backend's fusion
pass) becomes ``if <launch>.ok(ins): outs = <launch>(ins)``, its block lowered in the
``else`` branch for the inputs the kernel does not take.

User text never reaches the source unescaped: variables are named by number (their hint is
reduced to identifier characters), literals are written with ``repr`` of ints, bools,
strings and None only, and everything else is a constant.
"""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from gtdsl.diagnostics import InternalError
from gtdsl.ir.core import Block, BlameKind, Eqn, Function, Lit, Op, Var
from gtdsl.lower.records import (
    AssertSite, Callee, CastSite, DirectCallee, FastCast, Launch, OpCheck, PythonName,
    TorchFunction, TrustedCallee,
)
from gtdsl.ops.calls import DT_TORCH, PLANS, is_default
from gtdsl.ops.operators import BY_NAME as OPERATORS
from gtdsl.types import (
    DT, Dev, ScalarKind, Size, TDyn, TList, TScalar, TStruct, TTensor, TTuple, Type,
)
from gtdsl.types.subst import size_vars_of

PREFIX = "__gt_"


@dataclass
class Generated:
    source: str
    constants: list[Any]  # records of gtdsl.lower.records, or plain values
    sizes: tuple[str, ...]  # the size variables the body takes, in order
    rows: tuple[str, ...]


@dataclass(frozen=True)
class CalleeInfo:
    """What a caller needs to call a gtdsl function's trusted entry: its parameters' entry
    types, their defaults, and its size and row variables in the order its body takes them."""

    params: list[tuple[str, Type]]
    defaults: dict[str, Any]
    sizes: tuple[str, ...]
    rows: tuple[str, ...]
    key: tuple[tuple[int, str], ...] = ()  # its specialization key: (parameter, what) parts


@dataclass
class _Ctx:
    fn: Function
    sizes: set[str]
    rows: set[str]
    emit: bool
    callees: Callable[[str], CalleeInfo | None] | None = None
    cuda: bool | None = None  # whether the calls this body serves run on CUDA, if one kind
    lines: list[str] = field(default_factory=list)
    constants: list[Any] = field(default_factory=list)
    alias: dict[int, str] = field(default_factory=dict)
    cast_outs: set[int] = field(default_factory=set)  # values a body cast checked
    folded: set[str] = field(default_factory=set)  # locals never assigned: sizes computed

    def const(self, value: Any) -> str:
        self.constants.append(value)
        return f"{PREFIX}k{len(self.constants) - 1}"


def var_name(v: Var) -> str:
    hint = re.sub(r"[^A-Za-z0-9_]", "", v.hint or "")[:24]
    return f"v{v.id}_{hint}" if hint else f"v{v.id}"


def size_py(s: Size, opaque: Callable[[str, str, str], str] | None = None) -> str:
    """A size polynomial as a Python expression over the bound size locals. ``opaque``
    writes a ``//`` or ``%`` atom from its operands' texts (default: plainly)."""
    c = s.constant()
    if c is not None:
        return str(c)
    terms = []
    for mono, coeff in s.terms:
        factors = [] if coeff == 1 and mono else [str(coeff)]
        for atom, power in mono:
            if isinstance(atom, str):
                base = f"{PREFIX}s_{atom}"
            else:
                num, den = size_py(atom.num, opaque), size_py(atom.den, opaque)
                base = opaque(num, atom.op, den) if opaque else f"({num} {atom.op} {den})"
            factors += [base] * power
        terms.append(" * ".join(factors))
    return "(" + " + ".join(terms) + ")"


def lower_function(fn: Function, sizes: tuple[str, ...], rows: tuple[str, ...],
                   emit: bool = True,
                   callees: Callable[[str], CalleeInfo | None] | None = None,
                   cuda: bool | None = None) -> Generated:
    """Lower ``fn``; with ``emit`` False only the constants are collected (a cached source
    is being reused: the constants come out in the same order). A ``KERNEL`` eqn becomes
    its launch, with its block lowered as the path for inputs the kernel does not take.

    ``callees`` describes the gtdsl functions ``fn`` calls: a call whose arguments the
    checker proved (none of them checked by a cast in this body) and whose callee's sizes
    this body knows goes to the callee's trusted entry (``TrustedCallee``), which checks
    nothing again, or, where the arguments' types fix the callee's specialization key
    (with ``cuda``, whether this body runs on CUDA), straight to the callee's body for that
    key (``DirectCallee``); other calls go through the callee's checked entry."""
    ctx = _Ctx(fn, set(sizes), set(rows), emit, callees, cuda)
    params = [var_name(p) for p in fn.params]
    extra = [f"{PREFIX}s_{s}" for s in sizes] + [f"{PREFIX}r_{r}" for r in rows]
    ctx.lines.append(f"def {PREFIX}body({', '.join(params + extra)}):")
    _block(ctx, fn.body, 1, entry=True)
    if len(ctx.lines) == 1:
        ctx.lines.append("    pass")
    source = "\n".join(ctx.lines) + "\n" if emit else ""
    return Generated(source, ctx.constants, sizes, rows)


def _atom(ctx: _Ctx, a: Any) -> str:
    if isinstance(a, Var):
        return ctx.alias.get(a.id, var_name(a))
    return _literal(ctx, a.value)


def _literal(ctx: _Ctx, value: Any) -> str:
    if isinstance(value, Size):
        c = value.constant()
        if c is not None:
            return str(c)
        return size_py(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(ctx, x) for x in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, DT):
        return ctx.const(DT_TORCH[value])
    if isinstance(value, Dev):
        return repr(str(value))
    return ctx.const(value)


def _block(ctx: _Ctx, block: Block, depth: int, entry: bool = False,
           yield_to: list[str] | None = None) -> None:
    pad = "    " * depth
    start = len(ctx.lines)
    dead = _dead_after(ctx, block) if entry else {}
    for i, e in enumerate(block.eqns):
        _eqn(ctx, e, pad, depth, entry, yield_to)
        names = [n for n in dead.get(i, ()) if n not in ctx.folded]
        if names and ctx.emit and e.op is not Op.RETURN:
            # free intermediate tensors as soon as they are dead, as eager code does: keeping
            # them alive to the end of the function defeats the caching allocator
            ctx.lines.append(f"{pad}del {', '.join(names)}")
    if len(ctx.lines) == start and ctx.emit:
        ctx.lines.append(f"{pad}pass")


def _dead_after(ctx: _Ctx, block: Block) -> dict[int, list[str]]:
    """For each top-level eqn, the locals it defines or reads for the last time (parameters
    excluded: the caller holds them anyway)."""
    from gtdsl.ir.core import walk as walk_block

    alias: dict[int, int] = {}
    for e in block.eqns:
        if e.op is Op.CHECK_CAST:
            src = e.ins[0]
            if isinstance(src, Var):
                alias[e.outs[0].id] = alias.get(src.id, src.id)
    params = {p.id for p in ctx.fn.params}
    last: dict[int, int] = {}
    defined: dict[int, int] = {}
    for i, e in enumerate(block.eqns):
        atoms = list(e.ins) + [a for b in e.blocks for x in walk_block(b) for a in x.ins]
        for a in atoms:
            if isinstance(a, Var):
                r = alias.get(a.id, a.id)
                last[r] = max(last.get(r, -1), i)
        if e.op is not Op.CHECK_CAST:
            for o in e.outs:
                defined[o.id] = i
    out: dict[int, list[str]] = {}
    for v, i in defined.items():
        if v in params:
            continue
        when = max(last.get(v, i), i)
        out.setdefault(when, []).append(var_name(next(o for e in block.eqns for o in e.outs
                                                      if o.id == v)))
    return out


def _eqn(ctx: _Ctx, e: Eqn, pad: str, depth: int, entry: bool,
         yield_to: list[str] | None) -> None:
    w = ctx.lines.append if ctx.emit else (lambda _line: None)
    op = e.op
    ins = [_atom(ctx, a) for a in e.ins]
    if op is Op.CHECK_CAST:
        blame = e.param("blame")
        if entry and blame.kind is BlameKind.ARG:
            ctx.alias[e.outs[0].id] = ins[0]  # the entry check did this one
            return
        target = e.param("target")
        if blame.kind is not BlameKind.ARG:
            # generated checks, given the sizes bound so far; they return the new ones
            bound, brows = tuple(sorted(ctx.sizes)), tuple(sorted(ctx.rows))
            new = _new_names(ctx, target)
            nsizes = tuple(n for n in new if not n.startswith("*"))
            nrows = tuple(n[1:] for n in new if n.startswith("*"))
            k = ctx.const(FastCast(CastSite(target, blame), bound, brows, nsizes, nrows))
            args = ", ".join([ins[0]] + [f"{PREFIX}s_{v}" for v in bound] +
                             [f"{PREFIX}r_{r}" for r in brows])
            outs = [f"{PREFIX}s_{v}" for v in nsizes] + [f"{PREFIX}r_{r}" for r in nrows]
            w(f"{pad}{', '.join(outs)}, = {k}({args})" if outs else f"{pad}{k}({args})")
            ctx.alias[e.outs[0].id] = ins[0]
            ctx.cast_outs.add(e.outs[0].id)
            return
        k = ctx.const(CastSite(target, blame))
        sizes = _sizes_dict(ctx)  # the names bound so far: the cast binds the new ones
        new = _new_names(ctx, target)
        if new:
            w(f"{pad}{PREFIX}b = {PREFIX}cast({k}, {ins[0]}, {sizes})")
            for n in new:
                w(f"{pad}{PREFIX}s_{n} = {PREFIX}b.sizes[{n!r}]" if not n.startswith("*")
                  else f"{pad}{PREFIX}r_{n[1:]} = {PREFIX}b.rows[{n[1:]!r}]")
        else:
            w(f"{pad}{PREFIX}cast({k}, {ins[0]}, {sizes})")
        ctx.alias[e.outs[0].id] = ins[0]
        ctx.cast_outs.add(e.outs[0].id)
        return
    if op is Op.CHECK_OP:
        known, rows = tuple(sorted(ctx.sizes)), tuple(sorted(ctx.rows))
        k = ctx.const(OpCheck(e.param("op"), e.param("names"), e.param("blame"), known, rows))
        values = [f"({''.join(f'{PREFIX}s_{v}, ' for v in known)})",
                  f"({''.join(f'{PREFIX}r_{r}, ' for r in rows)})"]
        call = f"{k}({', '.join(values + ins)})"
        cond = _preds_py(ctx, e.param("preds", None))
        op_name = re.sub(r"[^A-Za-z0-9_]", "", str(e.param("op")))
        if cond is None:
            w(f"{pad}{call}  # op check: {op_name}")
        elif any(a.has_opaque() or b.has_opaque() for _, a, b in e.param("preds")):
            # the facts as integer comparisons; only when they fail (or a `//` divides by
            # zero) does the op's relation run, to say why or to accept what they do not
            w(f"{pad}try:")
            w(f"{pad}    {PREFIX}ok = {cond}")
            w(f"{pad}except ZeroDivisionError:")
            w(f"{pad}    {PREFIX}ok = False")
            w(f"{pad}if not {PREFIX}ok:  # op check compiled: {op_name}")
            w(f"{pad}    {call}")
        else:
            w(f"{pad}if not ({cond}):  # op check compiled: {op_name}")
            w(f"{pad}    {call}")
        return
    if op is Op.RETURN:
        w(f"{pad}return {ins[0]}")
        return
    if op is Op.YIELD:
        assert yield_to is not None
        for name, v in zip(yield_to, ins):
            if name != v:
                w(f"{pad}{name} = {v}")
        return
    if op is Op.IF:
        outs = [var_name(o) for o in e.outs]
        w(f"{pad}if {ins[0]}:")
        _block(ctx, e.blocks[0], depth + 1, yield_to=outs)
        w(f"{pad}else:")
        _block(ctx, e.blocks[1], depth + 1, yield_to=outs)
        return
    if op is Op.FOR:
        binders = [var_name(b) for b in e.param("binders")]
        for name, init in zip(binders[1:], ins[1:]):
            w(f"{pad}{name} = {init}")
        w(f"{pad}for {binders[0]} in {ins[0]}:")
        _block(ctx, e.blocks[0], depth + 1, yield_to=binders[1:])
        for o, name in zip(e.outs, binders[1:]):
            w(f"{pad}{var_name(o)} = {name}")
        return
    if op is Op.KERNEL:
        # launch the kernel; for inputs it does not take (32-bit offsets overflow, a row too
        # long for one block), run its block as torch ops
        k = ctx.const(Launch(e))
        outs = [var_name(o) for o in e.outs]
        args = ", ".join(ins)
        if ctx.emit:
            ops = ", ".join(x.op.name.lower() for x in e.blocks[0].eqns[:-1])
            w(f"{pad}# kernel {' '.join(str(e.param('kernel')).split())} ({ops})")
        w(f"{pad}if {k}.ok({args}):")
        w(f"{pad}    {', '.join(outs)} = {k}({args})")
        w(f"{pad}else:")
        _block(ctx, e.blocks[0], depth + 1, yield_to=outs)
        return
    if op is Op.ASSERT:
        k = ctx.const(AssertSite(ctx.fn.name, e.span, e.param("message")))
        w(f"{pad}if not {ins[0]}:")
        w(f"{pad}    {PREFIX}assert_failed({k})")
        return
    folded = _folded_size(ctx, e)
    if folded is not None:
        ctx.alias[e.outs[0].id] = folded
        ctx.folded.add(var_name(e.outs[0]))
        return
    out = var_name(e.outs[0]) if e.outs else "_"
    w(f"{pad}{out} = {_expr(ctx, e, ins)}")


def _folded_size(ctx: _Ctx, e: Eqn) -> str | None:
    """Integer arithmetic whose result the checker knows as a size of the bound variables
    (``H*K`` of ``H: int[H]``): that size's expression, computed where it is used."""
    if len(e.outs) != 1 or e.op.value not in PLANS or e.blocks:
        return None
    t = e.outs[0].type
    if not isinstance(t, TScalar) or t.kind is not ScalarKind.INT or t.value is None:
        return None
    if PLANS[e.op.value].kind not in ("binary", "negate", "identity"):
        return None
    if t.value.variables() - ctx.sizes:
        return None
    return size_py(t.value)


def _expr(ctx: _Ctx, e: Eqn, ins: list[str]) -> str:
    op = e.op
    if op is Op.TUPLE:
        return f"({', '.join(ins)},)" if len(ins) == 1 else f"({', '.join(ins)})"
    if op is Op.LIST:
        return f"[{', '.join(ins)}]"
    if op is Op.LIST_CAT:
        return f"[*{ins[0]}, *{ins[1]}]"
    if op is Op.NOT:
        return f"not {ins[0]}"
    if op is Op.UNARY:
        return OPERATORS[e.param("op")].emit(_operand(ins[0]))
    if op is Op.COMPARE or op is Op.BOOL_OP:
        return OPERATORS[e.param("op")].emit(*ins)
    if op is Op.RANGE:
        return f"{PREFIX}range({', '.join(ins)})"
    if op is Op.SLICE:
        lits = [a.value for a in e.ins if isinstance(a, Lit) and (
            a.value is None or type(a.value) is int)]
        if len(lits) == len(e.ins):  # a constant slice: made once
            return ctx.const(slice(*lits))
        return f"slice({', '.join(ins)})"
    if op is Op.GETATTR:
        attr = e.param("attr")
        if attr.startswith("_") or not attr.isidentifier():
            raise InternalError(f"private attribute `{attr}` in the IR")
        return f"getattr({ins[0]}, {attr!r})"
    if op is Op.CONST:
        return _literal(ctx, e.param("value"))
    if op is Op.GET_FIELD:
        name = e.param("field")
        if name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_"):
            # a module's struct class is read by attribute; anything else (a dict, another
            # mapping, an object) the way the entry check read it
            return (f"{ins[0]}.{name} if {ins[0]}.__class__ in {PREFIX}plain else "
                    f"{PREFIX}field({ins[0]}, {name!r})")
        return f"{PREFIX}field({ins[0]}, {name!r})"
    if op is Op.GET_ITEM:
        idx = e.param("index")
        if len(ins) > 1:
            return f"{ins[0]}[{ins[1]}]"
        return f"{ins[0]}[{int(idx)}]"
    if op is Op.ATTR:
        attr = e.param("attr")
        return {"shape": f"tuple({ins[0]}.shape)", "ndim": f"{ins[0]}.dim()",
                "numel": f"{ins[0]}.numel()", "dtype": f"{ins[0]}.dtype",
                "device": f"{ins[0]}.device"}[attr]
    if op is Op.CALL:
        trusted = _trusted_call(ctx, e, ins)
        if trusted is not None:
            return trusted
        k = ctx.const(Callee(e.param("callee")))
        args = [f"{n}={a}" for n, a in zip(e.param("args"), ins)]
        args += [f"{v}={_literal(ctx, s)}" for v, s in e.param("sizes", ())]
        return f"{k}({', '.join(args)})"
    if op is Op.EXTERN:
        return _extern(ctx, e, ins)
    return _op(ctx, e, ins)


def _preds_py(ctx: _Ctx, preds: tuple[tuple[str, Size, Size], ...] | None) -> str | None:
    """A CHECK_OP's facts as one Python condition over the bound sizes, or None where they
    have no such form. Every size variable in them must also be non-negative (an int
    argument can bind one to a negative value; the relation reasons for sizes)."""
    if not preds:
        return None
    names: set[str] = set()
    for _, a, b in preds:
        names |= a.variables() | b.variables()
    if names - ctx.sizes:
        return None
    parts = [f"{PREFIX}s_{v} >= 0" for v in sorted(names)]
    for kind, a, b in preds:
        x, y = size_py(a), size_py(b)
        parts.append({"eq": f"{x} == {y}", "ge": f"{x} >= {y}",
                      "divides": f"{x} > 0 and {y} % {x} == 0"}[kind])
    return " and ".join(parts)


def _trusted_call(ctx: _Ctx, e: Eqn, ins: list[str]) -> str | None:
    """``callee.trusted(args..., sizes..., rows...)`` when every argument's type is proved
    and this body can compute each of the callee's size variables; else None."""
    info = ctx.callees(e.param("callee")) if ctx.callees is not None else None
    if info is None:
        return None
    given = dict(zip(e.param("args"), zip(e.ins, ins)))
    env: dict[str, str] = {}
    rows: dict[str, str] = {}
    for v, size in e.param("sizes", ()):
        text = _size_text(ctx, size)
        if text is not None:
            env[v] = text
    args = []
    for name, t in info.params:
        if name in given:
            atom, text = given[name]
            if isinstance(atom, Var) and atom.id in ctx.cast_outs:
                return None  # a cast checked it here: the callee's entry checks the device too
            if not _match(ctx, t, atom.type, text, env, rows):
                return None
            args.append(text)
        elif name in info.defaults:
            value = info.defaults[name]
            text = _literal(ctx, value)
            if isinstance(t, TScalar) and t.value is not None:
                v = _simple(t.value)
                if v is None or not isinstance(value, int):
                    return None
                env.setdefault(v, text)
            args.append(text)
        else:
            return None
    if any(v not in env for v in info.sizes) or any(r not in rows for r in info.rows):
        return None
    key = _static_key(ctx, info, given)
    k = ctx.const(TrustedCallee(e.param("callee")) if key is None else
                  DirectCallee(e.param("callee"), key))
    return f"{k}({', '.join(args + [env[v] for v in info.sizes] + [rows[r] for r in info.rows])})"


def _static_key(ctx: _Ctx, info: CalleeInfo, given: dict[str, tuple[Any, str]]
                ) -> tuple | None:
    """The callee's specialization key, where the arguments' proved types fix it."""
    out: list[Any] = []
    for index, what in info.key:
        name = info.params[index][0]
        if name not in given:
            return None
        at = given[name][0].type
        if what == "cuda" and isinstance(at, TTensor) and (
                at.device.kind in ("cpu", "cuda") or ctx.cuda is not None):
            out.append(at.device.kind == "cuda" if at.device.kind is not None else ctx.cuda)
        elif what == "dtype" and isinstance(at, TTensor) and at.dtype.is_concrete and \
                at.dtype in DT_TORCH:
            out.append(DT_TORCH[at.dtype])
        elif what == "rank" and isinstance(at, TTensor) and at.shape.row is None:
            out.append(len(at.shape.dims))
        else:
            return None
    return tuple(out)


def _simple(s: Size | None) -> str | None:
    return s.single_variable() if s is not None else None


def _size_text(ctx: _Ctx, s: Size | None) -> str | None:
    """``s`` (in this function's size variables) as an expression, if the body binds them."""
    if s is None or s.variables() - ctx.sizes:
        return None
    return size_py(s)


def _match(ctx: _Ctx, t: Type, at: Type, text: str, env: dict[str, str],
           rows: dict[str, str]) -> bool:
    """Bind the callee's size variables in ``t`` (its parameter's type) from ``at`` (the
    argument's proved type here). False where the argument's type is not one the checker
    proves against ``t`` in the usual way (then the checked entry runs)."""
    if isinstance(t, TDyn):
        return True
    if isinstance(t, TTensor):
        if not isinstance(at, TTensor):
            return False
        k, ka = len(t.shape.dims), len(at.shape.dims)
        if t.shape.row is None and (at.shape.row is not None or ka != k):
            return False
        if ka < k:
            return False
        lead = at.shape.dims[:ka - k]
        for d, ad in zip(t.shape.dims, at.shape.dims[ka - k:]):
            v = _simple(d.size)
            if v is not None and v not in env:
                size = _size_text(ctx, ad.size)
                if size is not None:
                    env[v] = size
        row = t.shape.row
        if row is not None and row.name is not None and row.name not in rows:
            parts = [_size_text(ctx, d.size) for d in lead]
            if any(p is None for p in parts):
                return False
            arow = at.shape.row
            if arow is None:
                rows[row.name] = "(" + "".join(f"{p}, " for p in parts) + ")"
            elif arow.name is not None and arow.name in ctx.rows:
                base = f"{PREFIX}r_{arow.name}"
                rows[row.name] = base if not parts else \
                    "(*" + base + "".join(f", {p}" for p in parts) + ",)"
            else:
                return False
        return True
    if isinstance(t, TScalar):
        if not isinstance(at, TScalar):
            return False
        v = _simple(t.value) if t.kind is ScalarKind.INT else None
        if v is not None and v not in env:
            size = _size_text(ctx, at.value) if at.value is not None else None
            env[v] = size if size is not None else text  # the int itself is the size
        return True
    if isinstance(t, TStruct):
        if not isinstance(at, TStruct) or at.name != t.name or len(at.args) != len(t.args):
            return False
        for a, aa in zip(t.args, at.args):
            v = _simple(a)
            if v is not None and v not in env:
                size = _size_text(ctx, aa)
                if size is not None:
                    env[v] = size
        return True
    if isinstance(t, TTuple):
        if not isinstance(at, TTuple) or len(at.elems) != len(t.elems):
            return False
        return all(_match(ctx, et, ae, f"{text}[{i}]", env, rows)
                   for i, (et, ae) in enumerate(zip(t.elems, at.elems)))
    if isinstance(t, TList):
        # sizes bound only by a list's elements are left open (the list may be empty)
        return isinstance(at, TList)
    return not isinstance(at, TDyn)


def _extern(ctx: _Ctx, e: Eqn, ins: list[str]) -> str:
    path = e.param("path")
    k = ctx.const(PythonName(path))
    if e.param("call", True) is False:
        return k
    keywords = e.param("keywords", ()) or ()
    n = len(ins) - len(keywords)
    parts = ins[:n] + [f"{kw}={a}" for kw, a in zip(keywords, ins[n:])]
    return f"{k}({', '.join(parts)})"


def _op(ctx: _Ctx, e: Eqn, ins: list[str]) -> str:
    plan = PLANS[e.op.value]
    by_name = dict(zip(e.param("names"), zip(e.ins, ins)))
    pos = [by_name[p][1] for p in plan.positional]
    kws = []
    for (kw, default), pname in zip(plan.optional, plan.params):
        atom, text = by_name[pname]
        if isinstance(atom, Lit) and not isinstance(atom.value, Size) and is_default(
                atom.value, default):
            continue
        kws.append(f"{kw}={text}")
    if plan.kind == "binary":
        if plan.target in ("**", "*") and not any(isinstance(getattr(a, "type", None),
                                                             TTensor) for a in e.ins):
            # numbers (or `?` values): Python ints grow without bound; these are bounded
            return f"{PREFIX}{'pow' if plan.target == '**' else 'mul'}({pos[0]}, {pos[1]})"
        return f"{_operand(pos[0])} {plan.target} {_operand(pos[1])}"
    if plan.kind == "negate":
        return f"-{_operand(pos[0])}"
    if plan.kind == "identity":
        return pos[0]
    if plan.kind == "getitem":
        return f"{pos[0]}[{pos[1]}]"
    if plan.kind == "attribute":
        return f"{pos[0]}.{plan.target}"
    if plan.kind == "method":
        return f"{pos[0]}.{plan.target}({', '.join(pos[1:] + kws)})"
    k = ctx.const(TorchFunction(plan.target))
    return f"{k}({', '.join(pos + kws)})"


def _operand(text: str) -> str:
    return text if text.isidentifier() else f"({text})"


def _sizes_dict(ctx: _Ctx) -> str:
    parts = [f"{s!r}: {PREFIX}s_{s}" for s in sorted(ctx.sizes)]
    rows = [f"{r!r}: {PREFIX}r_{r}" for r in sorted(ctx.rows)]
    return "({" + ", ".join(parts) + "}, {" + ", ".join(rows) + "})"


def _type_names(t: Type, sizes: set[str], rows: set[str]) -> None:
    names: list[str] = []
    rs: list[str] = []
    size_vars_of(t, names, rs)
    sizes |= set(names)
    rows |= set(rs)


def _new_names(ctx: _Ctx, t: Type) -> list[str]:
    sizes: set[str] = set()
    rows: set[str] = set()
    _type_names(t, sizes, rows)
    new = sorted(sizes - ctx.sizes) + [f"*{r}" for r in sorted(rows - ctx.rows)]
    ctx.sizes |= sizes
    ctx.rows |= rows
    return new


__all__ = ["CalleeInfo", "Generated", "lower_function", "size_py", "var_name"]
