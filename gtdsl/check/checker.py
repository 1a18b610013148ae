"""Checking a function body and elaborating it to the typed IR with casts.

Input: a resolved ``FnInfo`` (its signature converted, its module's names collected).
Output: diagnostics in the session, the function's inferred return type, and its IR
``Function`` in which every place a less precise value meets a more precise expectation holds
a ``CHECK_CAST`` with a blame label, and every op whose relation left facts undecided is
preceded by a ``CHECK_OP``. Errors never abort: the offending value gets an error-marked ``?``
and checking goes on.
"""

from __future__ import annotations

import difflib
import inspect
import math
import operator
from dataclasses import dataclass, field, replace
from typing import Any

from gtdsl.check.env import FnInfo, Session, diag, struct_field_type
from gtdsl.ops.pyallow import writing_args
from gtdsl.types.subst import KEEP, Instance, Mismatch, size_vars_of, strip_labels, substitute
from gtdsl.diagnostics import Span
from gtdsl.ir.core import Blame, BlameKind, Block, Eqn, Function, Lit, Op, Var, op_for
from gtdsl.ops import OPS, UNKNOWN, Arg, OpError, Rel, bind
from gtdsl.ops.base import resolve_dim, seq_elems
from gtdsl.ops.operators import BY_NAME as OPERATORS_BY_NAME, by_symbol
from gtdsl.ops.operators import names as operator_names
from gtdsl.syntax import ast
from gtdsl.types import (
    DT, DYN, Dev, DynReason, Row, ScalarKind, Size, SizeEq, TDim, TDyn, TList, TOther, TScalar,
    TShape, TStruct, TTensor, TTuple, Type, join, leq, meet,
)
from gtdsl.types.lattice import ANY_DEVICE

# Limits that keep checking and running bounded: the iterations of `for` loops over a range
# known when checking (nested loops multiply), and the bits of an int constant.
MAX_LOOP_TRIPS = 1_000_000
MAX_CONSTANT_BITS = 4096
# the syntax tree's operators to their catalogue ops, through the one operator table
BINOPS = {ast.BinOpKind(sym): name for name, sym in operator_names("binary").items()}
CMPOPS = {ast.CmpOp(sym): name for name, sym in operator_names("compare").items()}
SYMBOLS = operator_names("binary", "compare")
_PY_COMPARE = ("compare", "membership", "identity")
_FOLD = {"mul": operator.mul, "pow": operator.pow}
LABEL_PARAMS = {"dim", "dim0", "dim1", "dims", "names", "start_dim", "end_dim"}
DTYPE_NAMES = {d.value: d for d in DT if d.is_concrete and d is not DT.C32}
DEVICE_NAMES = {"cpu": Dev("cpu"), "cuda": Dev("cuda")}


@dataclass
class V:
    """A checked expression: its type, its IR atom, and what is known before run time."""

    type: Type
    atom: Any
    value: Any = UNKNOWN
    label: str | None = None
    span: Span | None = None
    decl: Span | None = None  # the annotation that gave the value its type
    origin: Span | None = None  # where a `?` came from
    extern: bool = False
    unresolved: bool = False  # a bare name that is not a variable: only a label is possible


@dataclass
class Flow:
    env: dict[str, V]
    returned: bool = False


class FunctionChecker:
    def __init__(self, session: Session, fn: FnInfo, ensure) -> None:
        self.s, self.fn, self.ensure = session, fn, ensure
        self.file = fn.module.file
        self.blocks: list[list[Eqn]] = [[]]
        self.counter = 0
        self.rigid = frozenset(fn.size_vars) | frozenset(fn.row_vars)
        self.returns: list[Type] = []
        self.lets: dict[tuple[int, int], Type] = {}  # (start, end) of a target -> its type
        self.trips = 1  # how many times the enclosing loops run the current statement

    # ---------------------------------------------------------------- plumbing
    def var(self, hint: str, t: Type) -> Var:
        self.counter += 1
        return Var(self.counter, hint, t)

    def emit(self, op: Op, ins: tuple, outs: tuple, params: tuple = (), blocks: tuple = (),
             span: Span | None = None) -> None:
        self.blocks[-1].append(Eqn(op, tuple(ins), tuple(outs), tuple(params), tuple(blocks),
                                   span))

    def error(self, code: str, message: str, span: Span | None, label: str = "",
              secondary: tuple = (), help: str | None = None, notes: tuple = ()) -> V:
        self.s.error(diag(code, message, span, label, secondary, help, notes))
        return self.dyn_error(span)

    def dyn_error(self, span: Span | None) -> V:
        t = TDyn(DynReason.ERROR)
        return V(t, self.var("err", t), span=span)

    def blame(self, kind: BlameKind, what: str, span: Span | None,
              origin: Span | None = None, param: str | None = None) -> Blame:
        return Blame(kind, self.fn.qualname, span, what, kind is not BlameKind.ARG, origin,
                     param)

    # ---------------------------------------------------------------- function
    def run(self) -> Function:
        fn = self.fn
        raw, env = [], {}
        for name, t, p in fn.params:
            v = self.var(name, DYN)
            raw.append(v)
            if isinstance(t, TScalar) and t.kind is ScalarKind.INT and t.value is None and \
                    name not in fn.size_vars:
                t_body = TScalar(ScalarKind.INT, Size.of(name))
                self.rigid = self.rigid | {name}
            else:
                t_body = t
            atom = v
            if not isinstance(t, TDyn):
                out = self.var(name, t_body)
                self.emit(Op.CHECK_CAST, (v,), (out,), (  # `n: int` binds the size n
                    ("target", t_body), ("blame", self.blame(BlameKind.ARG, f"argument `{name}`",
                                                        p.annotation.span if p.annotation
                                                        else p.span, param=name))),
                    span=p.span)
                atom = out
            env[name] = V(t_body, atom, span=p.span,
                          decl=p.annotation.span if p.annotation else None,
                          origin=p.span if isinstance(t, TDyn) else None,
                          value=t_body.value if isinstance(t_body, TScalar) and
                          t_body.value is not None else UNKNOWN)
        flow = self.stmts(fn.decl.body, Flow(env))
        if not flow.returned:
            if fn.declared_return is not None and not (
                    isinstance(fn.declared_return, TOther) and fn.declared_return.what == "none"):
                self.error("GT2017", f"`{fn.name}` can reach its end without returning a value",
                           fn.decl.span, "this function",
                           ((fn.decl.returns.span if fn.decl.returns else None,
                             "declared to return this"),),
                           help="add a return statement at the end of the body")
            none = TOther("none")
            self.returns.append(none)
            self.emit(Op.RETURN, (Lit(None, none),), ())
        if fn.declared_return is None:
            out = self.returns[0]
            for t in self.returns[1:]:
                out = join(out, t)
            fn.inferred_return = out
        return Function(fn.qualname, tuple(raw), fn.returns, Block(tuple(self.blocks[0])),
                        fn.decl.span)

    # ---------------------------------------------------------------- statements
    def stmts(self, body: tuple, flow: Flow) -> Flow:
        for st in body:
            if flow.returned:
                break
            flow = self.stmt(st, flow)
        return flow

    def stmt(self, st: Any, flow: Flow) -> Flow:
        env = flow.env
        if isinstance(st, ast.Assign):
            v = self.expr(st.value, env)
            self.assign(st.target, v, env)
        elif isinstance(st, ast.AnnAssign):
            self.ann_assign(st, env)
        elif isinstance(st, ast.AugAssign):
            left = self.expr(st.target, env)
            right = self.expr(st.value, env)
            env[st.target.id] = replace(self.binary(BINOPS[st.op], left, right, st.span),
                                        decl=left.decl)
        elif isinstance(st, ast.Return):
            self.ret(st, env)
            return Flow(env, True)
        elif isinstance(st, ast.If):
            return self.if_stmt(st, flow)
        elif isinstance(st, ast.For):
            self.for_stmt(st, env)
        elif isinstance(st, ast.Assert):
            v = self.expr(st.test, env)
            msg = st.msg.value if isinstance(st.msg, ast.Str) else None
            self.emit(Op.ASSERT, (v.atom,), (), (("message", msg),), span=st.span)
        elif isinstance(st, ast.ExprStmt):
            self.expr(st.value, env)
        return flow

    def assign(self, target: Any, v: V, env: dict[str, V]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = replace(v, label=None, unresolved=False, span=target.span,
                                     decl=v.decl)
            if target.span is not None:
                self.lets[(target.span.start, target.span.end)] = v.type
            return
        n = len(target.elts)
        t = v.type
        if isinstance(t, TTuple):
            if len(t.elems) != n:
                self.error("GT2013", f"cannot unpack {len(t.elems)} values into {n} names",
                           target.span, "here", help="match the number of names to the "
                           "number of values")
                elems: list[Type] = [TDyn(DynReason.ERROR)] * n
            else:
                elems = list(t.elems)
        elif isinstance(t, TList):
            elems = [t.elem] * n
        elif isinstance(t, TDyn):
            elems = [TDyn(t.reason)] * n
        else:
            self.error("GT2016", f"cannot unpack {t}", target.span, "here")
            elems = [TDyn(DynReason.ERROR)] * n
        for i, (name, et) in enumerate(zip(target.elts, elems)):
            out = self.var(name.id, et)
            self.emit(Op.GET_ITEM, (v.atom,), (out,), (("index", i),), span=name.span)
            value = v.value[i].value if isinstance(v.value, tuple) and len(v.value) == n else \
                UNKNOWN
            self.assign(name, V(et, out, value=value, span=name.span, origin=v.origin,
                                extern=v.extern), env)

    def ann_assign(self, st: ast.AnnAssign, env: dict[str, V]) -> None:
        t = self.s.resolve_type(self.fn.module, st.annotation, None, "")
        # New size variables in a let annotation are bound by the value (existentials).
        v = self.expr(st.value, env, expected=t)
        names: list[str] = []
        rows: list[str] = []
        size_vars_of(t, names, rows)
        fresh = frozenset(n for n in names if n not in self.rigid)
        fresh_rows = frozenset(r for r in rows if r not in self.rigid)
        if fresh or fresh_rows:
            inst = Instance(fresh, fresh_rows, rigid=self.rigid)
            try:
                inst.unify(strip_labels(v.type), t, "the value")
            except Mismatch:
                pass
            t = substitute(t, lambda n: inst.sizes.get(n, KEEP) if n in fresh else KEEP,
                           {r: inst.rows.get(r) for r in fresh_rows if r in inst.rows})
        out = self.coerce(v, t, self.blame(BlameKind.ANNOT, f"`{st.target.id}`",
                                           st.annotation.span, v.origin),
                          st.annotation.span, f"`{st.target.id}`", st.value.span)
        if not (isinstance(out.type, TDyn) and out.type.reason is DynReason.ERROR):
            # The variable has the declared type: an annotation names dims, and may forget
            # what the value knows (`acc: f32[?, d] = x` lets a loop grow `acc`).
            out = replace(out, type=t)
        env[st.target.id] = replace(out, span=st.target.span, decl=st.annotation.span)
        if st.target.span is not None:
            self.lets[(st.target.span.start, st.target.span.end)] = out.type

    def ret(self, st: ast.Return, env: dict[str, V]) -> None:
        declared = self.fn.declared_return
        if st.value is None:
            v = V(TOther("none"), Lit(None, TOther("none")), value=None, span=st.span)
        else:
            v = self.expr(st.value, env, expected=declared)
        if declared is not None:
            span = st.value.span if st.value is not None else st.span
            v = self.coerce(v, declared, self.blame(BlameKind.RET, "the result", span,
                                                    v.origin),
                            self.fn.decl.returns.span if self.fn.decl.returns else None,
                            "the returned value", span)
        else:
            self.returns.append(v.type)
        self.emit(Op.RETURN, (v.atom,), (), span=st.span)

    def if_stmt(self, st: ast.If, flow: Flow) -> Flow:
        test = self.expr(st.test, flow.env)
        results = []
        blocks = []
        for body in (st.body, st.orelse):
            self.blocks.append([])
            sub = self.stmts(body, Flow(dict(flow.env)))
            results.append(sub)
            blocks.append(self.blocks.pop())
        live = [r for r in results if not r.returned]
        if not live:
            for b in blocks:
                b.append(Eqn(Op.RETURN, (Lit(None, TOther("none")),), ())) if not b or \
                    b[-1].op is not Op.RETURN else None
            self.emit(Op.IF, (test.atom,), (), (), tuple(Block(tuple(b)) for b in blocks),
                      st.span)
            return Flow(flow.env, True)
        names = [n for n in live[0].env if all(n in r.env for r in live)]
        changed = [n for n in names if any(r.env[n] is not flow.env.get(n) for r in live)]
        merged: dict[str, V] = dict(flow.env)
        for n in list(merged):
            if n not in names:
                del merged[n]
        outs = []
        for n in changed:
            t = live[0].env[n].type
            for r in live[1:]:
                t = join(t, r.env[n].type)
            out = self.var(n, t)
            outs.append(out)
            merged[n] = V(t, out, span=live[0].env[n].span, decl=live[0].env[n].decl)
        for r, b in zip(results, blocks):
            if not r.returned:
                b.append(Eqn(Op.YIELD, tuple(r.env[n].atom for n in changed), ()))
            elif not b or b[-1].op is not Op.RETURN:
                b.append(Eqn(Op.RETURN, (Lit(None, TOther("none")),), ()))
        self.emit(Op.IF, (test.atom,), tuple(outs), (), tuple(Block(tuple(b)) for b in blocks),
                  st.span)
        return Flow(merged)

    def loop_trips(self, args: list[V], it: ast.Call) -> int:
        """How many times ``range(*args)`` runs, when its arguments are known here (1
        otherwise); more than ``MAX_LOOP_TRIPS`` runs, counting enclosing loops, is GT2021."""
        values = [a.value for a in args]
        if not all(isinstance(v, int) for v in values):
            return 1  # known only at run time: the loop runs that many times, as Python would
        if len(values) == 3 and values[2] == 0:
            self.error("GT2013", "range's step must not be zero", args[2].span, "zero step")
            return 1
        trips = len(range(*values))
        if trips * self.trips > MAX_LOOP_TRIPS:
            inside = f" inside loops that run {self.trips} times" if self.trips > 1 else ""
            self.error("GT2021", f"loop too long: it runs {_count(trips)} times{inside}, more "
                       f"than {MAX_LOOP_TRIPS} in all", it.span, f"{_count(trips)} iterations",
                       help="loop over a tensor dim with a vectorised op instead, or pass the "
                       "count as an argument")
            return 1
        return trips

    def for_stmt(self, st: ast.For, env: dict[str, V]) -> None:
        it = st.iter
        trips = 1
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
                and "range" not in env:
            args = [self.expr(a, env) for a in it.args]
            for a in args:
                if not isinstance(a.type, (TScalar, TDyn)) or isinstance(
                        a.type, TScalar) and a.type.kind is ScalarKind.FLOAT:
                    self.error("GT2016", f"range takes ints, got {a.type}", a.span, "here")
            if it.keywords or not 1 <= len(it.args) <= 3:
                self.error("GT2013", "range takes 1 to 3 positional arguments: range(stop), "
                           "range(start, stop) or range(start, stop, step)", it.span,
                           "called here")
            else:
                trips = self.loop_trips(args, it)
            source = V(TList(TScalar(ScalarKind.INT)), self.var("range", TList(TScalar(
                ScalarKind.INT))), span=it.span)
            self.emit(Op.RANGE, tuple(a.atom for a in args), (source.atom,), span=it.span)
            elem: Type = TScalar(ScalarKind.INT)
        else:
            source = self.expr(it, env)
            t = source.type
            if isinstance(t, TList):
                elem = t.elem
            elif isinstance(t, TTuple) and t.elems:
                elem = t.elems[0]
                for e in t.elems[1:]:
                    elem = join(elem, e)
            elif isinstance(t, TDyn):
                elem = TDyn(t.reason)
            else:
                self.error("GT2016", f"cannot loop over {t}", it.span, "not a list",
                           help="loop over a list value or range(...)")
                elem = TDyn(DynReason.ERROR)
        assigned = _assigned_names(st.body)
        targets = [st.target] if isinstance(st.target, ast.Name) else list(st.target.elts)
        carried = [n for n in assigned if n in env and n not in {t.id for t in targets}]
        inner = dict(env)
        binders = []
        item = self.var(targets[0].id if len(targets) == 1 else "item", elem)
        binders.append(item)
        carried_in = {}
        for n in carried:
            cv = self.var(n, env[n].type)
            binders.append(cv)
            carried_in[n] = cv
            inner[n] = replace(env[n], atom=cv)
        self.blocks.append([])
        self.assign(st.target, V(elem, item, span=st.target.span), inner)
        outer_trips = self.trips
        self.trips *= trips  # the body runs this many times in all, as far as known
        sub = self.stmts(st.body, Flow(inner))
        self.trips = outer_trips
        for ret in _returns_in(st.body):
            self.error("GT2019", "`return` inside a `for` loop is not supported", ret.span,
                       "returns from inside the loop",
                       ((replace(st.span, end=st.iter.span.end), "in this loop"),),
                       help="assign the result to a variable and return after the loop")
        exits = []
        for n in carried:
            before, after = env[n], sub.env[n]
            v = self.coerce(after, before.type, self.blame(
                BlameKind.ANNOT, f"`{n}` at the end of a loop iteration", after.span,
                after.origin), before.decl or before.span, f"`{n}` (the loop invariant)",
                after.span, code_on_fail="GT2018")
            exits.append(v.atom)
        self.blocks[-1].append(Eqn(Op.YIELD, tuple(exits), ()))
        block = self.blocks.pop()
        outs = tuple(self.var(n, env[n].type) for n in carried)
        self.emit(Op.FOR, (source.atom, *(env[n].atom for n in carried)), outs,
                  (("binders", tuple(binders)),), (Block(tuple(block)),), st.span)
        for n, o in zip(carried, outs):
            env[n] = replace(env[n], atom=o)

    # ---------------------------------------------------------------- casts
    def coerce(self, v: V, target: Type, blame: Blame, decl: Span | None, what: str,
               span: Span | None, code_on_fail: str | None = None) -> V:
        """``v`` as a value of ``target``: as is when ⊑, through a cast when consistent."""
        s, t = strip_labels(v.type), strip_labels(target)
        if isinstance(v.type, TDyn) and v.type.reason is DynReason.ERROR:
            return replace(v, type=target)
        if leq(s, t):
            return v
        eqs: list[SizeEq] = []
        m = meet(t, s, eqs)  # target first: an undecided size keeps the declared one
        if m is None:
            code, detail = explain(s, t)
            self.error(code_on_fail or code, f"{what} does not match its declared type: "
                       f"{detail}", span, f"this has type {v.type}",
                       ((decl, f"declared as {target}"),),
                       help=_help_for(code, target, v.type), notes=(f"expected: {target}",
                                                            f"found:    {v.type}"))
            return self.dyn_error(span)
        for eq in eqs:
            if not eq.left.has_opaque() and not eq.right.has_opaque() and (
                    eq.left.variables() | eq.right.variables()) <= self.rigid:
                self.error("GT2006", f"{what}: size {eq.right} is not {eq.left} for every "
                           "value of the size variables", span, f"this has type {v.type}",
                           ((decl, f"declared as {target}"),),
                           help="a function's size variables are rigid inside its body: it "
                           "must work for every value of them; use one variable where sizes "
                           "must be equal")
                return self.dyn_error(span)
        m = _relabel(m, target)
        out = self.var("cast", m)
        self.emit(Op.CHECK_CAST, (v.atom,), (out,), (("target", m), ("blame", blame)),
                  span=span)
        return replace(v, type=m, atom=out)

    # ---------------------------------------------------------------- expressions
    def expr(self, e: Any, env: dict[str, V], expected: Type | None = None) -> V:
        if isinstance(e, ast.BinOp) and expected is not None and e.op is not ast.BinOpKind.MATMUL:
            left, right = self.expr(e.left, env), self.expr(e.right, env)
            # Bidirectional: an unknown operand of an elementwise op takes the expected type.
            if isinstance(expected, TTensor):
                for side in ("left", "right"):
                    v = left if side == "left" else right
                    if isinstance(v.type, TDyn) and v.type.reason is not DynReason.ERROR:
                        kind = BlameKind.EXTERN if v.extern else BlameKind.OP_ARG
                        c = self.coerce(v, expected, self.blame(kind, "this operand", v.span,
                                                                v.origin), None,
                                        "this operand", v.span)
                        left, right = (c, right) if side == "left" else (left, c)
            return self.binary(BINOPS[e.op], left, right, e.span)
        v = self._expr(e, env)
        if v.unresolved:
            return self.error("GT1001", f"undefined name `{v.label}`", e.span, "not defined",
                              help=_undefined_help(v.label, env, self.fn))
        return v

    def _expr(self, e: Any, env: dict[str, V]) -> V:
        if isinstance(e, ast.Name):
            return self.name(e, env)
        if isinstance(e, ast.Int):
            t = TScalar(ScalarKind.INT, Size.of(e.value))
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Float):
            t = TScalar(ScalarKind.FLOAT)
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Bool):
            t = TScalar(ScalarKind.BOOL)
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Str):
            t = TOther("str")
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.NoneLit):
            t = TOther("none")
            return V(t, Lit(None, t), value=None, span=e.span)
        if isinstance(e, ast.EllipsisLit):
            t = TOther("ellipsis")
            return V(t, Lit(Ellipsis, t), value=Ellipsis, span=e.span)
        if isinstance(e, ast.BinOp):
            return self.binary(BINOPS[e.op], self.expr(e.left, env), self.expr(e.right, env),
                               e.span)
        if isinstance(e, ast.UnaryOp):
            v = self.expr(e.operand, env)
            if e.op is not ast.UnaryOpKind.NOT:
                return self.unary("-" if e.op is ast.UnaryOpKind.NEG else "+", v, e.span)
            if isinstance(v.type, (TTensor,)):
                return self.op_call("logical_not", [v], {}, e.span)
            out = self.var("not", TScalar(ScalarKind.BOOL))
            self.emit(Op.NOT, (v.atom,), (out,), span=e.span)
            return V(out.type, out, span=e.span)
        if isinstance(e, ast.BoolOp):
            vals = [self.expr(x, env) for x in e.values]
            if any(isinstance(v.type, TTensor) for v in vals):
                name = "logical_and" if e.op is ast.BoolOpKind.AND else "logical_or"
                out = vals[0]
                for v in vals[1:]:
                    out = self.op_call(name, [out, v], {}, e.span)
                return out
            t = TScalar(ScalarKind.BOOL)
            out_v = self.var(e.op.value, t)
            self.emit(Op.BOOL_OP, tuple(v.atom for v in vals), (out_v,),
                      (("op", by_symbol(e.op.value, ("bool",)).name),), span=e.span)
            return V(t, out_v, span=e.span)
        if isinstance(e, ast.Compare):
            left = self.expr(e.left, env)
            result = None
            for op, comp in zip(e.ops, e.comparators):
                right = self.expr(comp, env)
                if op not in CMPOPS or not any(isinstance(x.type, (TTensor, TScalar))
                                               for x in (left, right)) or isinstance(
                        left.type, TOther) or isinstance(right.type, TOther):
                    t = TScalar(ScalarKind.BOOL)
                    out = self.var("cmp", t)
                    self.emit(Op.COMPARE, (left.atom, right.atom), (out,),
                              (("op", by_symbol(op.value, _PY_COMPARE).name),), span=e.span)
                    part = V(t, out, span=e.span)
                else:
                    part = self.binary(CMPOPS[op], left, right, e.span)
                result = part if result is None else self.op_call(
                    "logical_and", [result, part], {}, e.span) if isinstance(
                    part.type, TTensor) else part
                left = right
            return result  # type: ignore[return-value]
        if isinstance(e, ast.IfExp):
            return self.if_exp(e, env)
        if isinstance(e, (ast.Tuple, ast.List)):
            vals = [self.expr(x, env) for x in e.elts]
            if isinstance(e, ast.Tuple):
                t: Type = TTuple(tuple(v.type for v in vals))
            else:
                elem: Type = vals[0].type if vals else DYN
                for v in vals[1:]:
                    elem = join(elem, v.type)
                t = TList(elem)
            out = self.var("tup", t)
            self.emit(Op.TUPLE if isinstance(e, ast.Tuple) else Op.LIST,
                      tuple(v.atom for v in vals), (out,), span=e.span)
            return V(t, out, value=tuple(self.arg(v) for v in vals), span=e.span)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, env)
        if isinstance(e, ast.Subscript):
            return self.subscript(e, env)
        if isinstance(e, ast.Call):
            return self.call(e, env)
        raise AssertionError(f"unexpected expression {e!r}")

    def unary(self, sym: str, v: V, span: Span | None) -> V:
        """``-v`` or ``+v``: a tensor op on a tensor, Python's arithmetic on a number (a
        bool becomes an int), and on a value of unknown type whichever it is at run time."""
        t = v.type
        if isinstance(t, TTensor):
            return self.op_call("neg", [v], {}, span) if sym == "-" else replace(v, span=span)
        if isinstance(t, TScalar):
            atom = v.atom
            if isinstance(atom, Lit) and (isinstance(atom.value, (int, float)) or isinstance(
                    atom.value, Size) and atom.value.constant() is not None):
                value = atom.value.constant() if isinstance(atom.value, Size) else int(
                    atom.value) if isinstance(atom.value, bool) else atom.value
                value = -value if sym == "-" else value
                kind = ScalarKind.FLOAT if isinstance(value, float) else ScalarKind.INT
                rt = TScalar(kind, Size.of(value) if kind is ScalarKind.INT else None)
                return V(rt, Lit(value, rt), value=value, span=span)
            if sym == "+" and t.kind is not ScalarKind.BOOL:
                return replace(v, span=span)
            kind = ScalarKind.FLOAT if t.kind is ScalarKind.FLOAT else ScalarKind.INT
            size = (-t.value if sym == "-" else t.value) if kind is ScalarKind.INT and \
                t.kind is ScalarKind.INT and t.value is not None else None
            rt = TScalar(kind, size)
            out = self.var("neg" if sym == "-" else "pos", rt)
            self.emit(Op.UNARY, (v.atom,), (out,),
                      (("op", by_symbol(sym, ("unary",)).name),), span=span)
            known: Any = UNKNOWN
            if size is not None:
                known = size.constant() if size.constant() is not None else size
            return V(rt, out, value=known, span=span)
        if isinstance(t, TDyn):
            if t.reason is DynReason.ERROR:
                return v
            rt = TDyn(t.reason)
            out = self.var("neg" if sym == "-" else "pos", rt)
            self.emit(Op.UNARY, (v.atom,), (out,),
                      (("op", by_symbol(sym, ("unary",)).name),), span=span)
            return V(rt, out, span=span, origin=v.origin, extern=v.extern)
        return self.error("GT2016", f"unary `{sym}` needs a tensor or a number, got "
                          f"{_kind(t)}", span, f"this has type {t}")

    def name(self, e: ast.Name, env: dict[str, V]) -> V:
        n = e.id
        if n in env:
            return replace(env[n], span=e.span, label=None)
        if n in self.fn.size_vars or n in self.rigid and n not in self.fn.row_vars:
            t = TScalar(ScalarKind.INT, Size.of(n))  # its value: the size bound at run time
            return V(t, Lit(Size.of(n), t), value=Size.of(n), label=n, span=e.span)
        if n in self.fn.row_vars:
            return self.error("GT2024", f"`{n}` is a row variable: `*{n}` stands for several "
                              "dims, not one size", e.span, "used as a value",
                              help="read the dims from a tensor's shape, e.g. `x.shape`")
        if n in DTYPE_NAMES:
            t = TOther("dtype")
            return V(t, Lit(DTYPE_NAMES[n], t), value=DTYPE_NAMES[n], span=e.span)
        if n in DEVICE_NAMES:
            t = TOther("device")
            return V(t, Lit(DEVICE_NAMES[n], t), value=DEVICE_NAMES[n], span=e.span)
        mod = self.fn.module
        if n in mod.externs and _is_value(self.s.allowed, mod.externs[n]):
            return self.python_value(mod.externs[n], e.span)  # `from math import inf`
        if mod.function(n) is not None or n in OPS or n in mod.externs:
            return self.error("GT2024", f"`{n}` is a function; functions are not values here",
                              e.span, "used as a value", help=f"call it: {n}(...)")
        if n in mod.py_modules:
            return self.error("GT2024", f"`{n}` is a module", e.span, "used as a value",
                              help=f"use one of its names: {n}.NAME")
        t = TOther("label")
        return V(t, Lit(n, t), value=UNKNOWN, label=n, span=e.span, unresolved=True)

    def if_exp(self, e: ast.IfExp, env: dict[str, V]) -> V:
        test = self.expr(e.test, env)
        vals, blocks = [], []
        for branch in (e.body, e.orelse):
            self.blocks.append([])
            v = self.expr(branch, env)
            self.blocks[-1].append(Eqn(Op.YIELD, (v.atom,), ()))
            blocks.append(Block(tuple(self.blocks.pop())))
            vals.append(v)
        t = join(vals[0].type, vals[1].type)
        out = self.var("ifexp", t)
        self.emit(Op.IF, (test.atom,), (out,), (), tuple(blocks), e.span)
        value = vals[0].value if vals[0].value == vals[1].value else UNKNOWN
        return V(t, out, value=value, span=e.span)

    def python_path(self, e: ast.Expr, env: dict[str, V]) -> str | None:
        """The full dotted Python name ``e`` spells (``torch.nn.functional.gelu``) when it is
        an attribute chain on an imported Python namespace, else ``None``."""
        parts: list[str] = []
        while isinstance(e, ast.Attribute):
            parts.append(e.attr)
            e = e.value
        mod = self.fn.module
        if not (isinstance(e, ast.Name) and e.id in mod.py_modules and e.id not in env):
            return None
        return ".".join([mod.py_modules[e.id], *reversed(parts)])

    def python_name(self, path: str, span: Span | None) -> V | None:
        """An error unless ``path`` is an allowlisted Python name (``None`` when it is)."""
        allowed = self.s.allowed
        if allowed.is_name(path):
            return self.python_missing(path, span)
        if allowed.is_namespace(path):
            return self.error("GT2024", f"`{path}` is a module", span, "used as a value",
                              help=f"use one of its names: {path}.NAME")
        return self.error("GT1012", f"`{path}` is not an allowlisted Python name", span,
                          "not allowed", help="a .gt file may use only the pure tensor and "
                          "math functions and values on gtdsl's allowlist (see `gtdsl explain "
                          "GT1012`)", notes=(
                              "a .gt file is data: it never reaches files, processes, the "
                              "network, or functions that call values they are given",))

    def python_value(self, path: str, span: Span | None) -> V:
        """An allowlisted Python name used as a value. Numbers (``math.inf``, ``torch.pi``)
        are constants of their scalar type, as if written out; anything else is an extern
        of type ``?``."""
        obj = self.s.allowed.resolve(path)
        kind = {bool: ScalarKind.BOOL, int: ScalarKind.INT, float: ScalarKind.FLOAT}.get(
            type(obj))
        if kind is not None:
            t = TScalar(kind, Size.of(obj) if kind is ScalarKind.INT else None)
            return V(t, Lit(obj, t), value=obj, span=span)
        t = TDyn(DynReason.EXTERN)
        out = self.var(path.rsplit(".", 1)[-1], t)
        self.emit(Op.EXTERN, (), (out,), (("path", path), ("call", False)), span=span)
        return V(t, out, span=span, origin=span, extern=True)

    def python_writes(self, path: str, args: list[V], kwargs: dict[str, V]) -> V | None:
        """An error when the call would write into a tensor it is given (``out=``,
        ``inplace=True``, ``max_norm=`` of an embedding, ...): only values known statically
        to leave the arguments alone pass."""
        rules = writing_args(path)
        try:
            params = list(inspect.signature(self.s.allowed.resolve(path)).parameters)
        except (TypeError, ValueError):  # a builtin: its writing arguments are keyword-only
            params = []
        given = dict(zip(params, args))
        given.update(kwargs)
        for name, v in given.items():
            allowed = rules.get(name)
            if allowed is None or v.value is not UNKNOWN and any(
                    type(v.value) is type(a) and v.value == a for a in allowed):
                continue
            return self.error("GT1012", f"`{path}` with `{name}=` writes into the tensors it "
                              "is given", v.span, "not allowed", help="leave the argument out"
                              + (f" or pass {', '.join(map(repr, allowed))}" if allowed !=
                                 (None,) else ""), notes=(
                                  "a .gt file never writes into its caller's tensors",))
        return None

    def python_missing(self, path: str, span: Span | None) -> V | None:
        """An error when the allowlisted ``path`` does not exist in the installed modules."""
        try:
            self.s.allowed.resolve(path)
        except LookupError as err:
            return self.error("GT1012", str(err), span, "not available",
                              help="this Python or torch version lacks it: use another "
                              "allowlisted name")
        return None

    def attribute(self, e: ast.Attribute, env: dict[str, V]) -> V:
        base = e.value
        mod = self.fn.module
        path = self.python_path(e, env)
        if path is not None:
            refused = self.python_name(path, e.span)
            if refused is not None:
                return refused
            return self.python_value(path, e.span)
        v = self.expr(base, env)
        t = v.type
        if isinstance(t, TStruct):
            info = self.s.structs.get(t.name) if mod.struct(t.name) is None else mod.struct(
                t.name)
            ft = struct_field_type(info, e.attr, t.args) if info is not None else None
            if ft is None:
                fields = ", ".join(info.fields) if info is not None else ""
                return self.error("GT1007", f"`{t.name}` has no field `{e.attr}`", e.span,
                                  "no such field", ((info.decl.span if info else None,
                                                     f"`{t.name}` declared here"),),
                                  help=f"its fields are: {fields}")
            out = self.var(e.attr, ft)
            self.emit(Op.GET_FIELD, (v.atom,), (out,), (("field", e.attr),), span=e.span)
            return V(ft, out, span=e.span, decl=info.fields[e.attr][1].span)  # type: ignore
        if isinstance(t, (TTensor, TDyn)):
            if e.attr == "T":
                return self.op_call("T", [v], {}, e.span)
            if e.attr in ("shape", "ndim", "dtype", "device"):
                return self.metadata(v, e.attr, e.span)
        if isinstance(t, TDyn):
            if e.attr.startswith("_"):
                return self.error("GT1012", f"`{e.attr}` is a private attribute", e.span,
                                  "not allowed", help="a .gt file may read only public "
                                  "attributes (names not starting with `_`) of unchecked "
                                  "values")
            out = self.var(e.attr, TDyn(DynReason.INFERRED))
            self.emit(Op.GETATTR, (v.atom,), (out,), (("attr", e.attr),), span=e.span)
            return V(out.type, out, span=e.span, origin=e.span)
        return self.error("GT1011", f"{_kind(t)} has no attribute `{e.attr}`", e.span,
                          "unknown attribute", help="tensors have .T, .shape, .ndim, .dtype, "
                          ".device and every op as a method" if isinstance(t, TTensor) else None)

    def metadata(self, v: V, attr: str, span: Span | None) -> V:
        t = v.type if isinstance(v.type, TTensor) else TTensor()
        value: Any = UNKNOWN
        if attr == "shape":
            if t.shape.row is None:
                elems = tuple(TScalar(ScalarKind.INT, d.size) for d in t.shape.dims)
                rt: Type = TTuple(elems)
                value = tuple(Arg(x, x.value if x.value is not None else UNKNOWN)
                              for x in elems)
            else:
                rt = TList(TScalar(ScalarKind.INT))
        elif attr == "ndim":
            r = len(t.shape.dims) if t.shape.row is None else None
            rt = TScalar(ScalarKind.INT, Size.of(r) if r is not None else None)
            value = r if r is not None else UNKNOWN
        elif attr == "dtype":
            rt = TOther("dtype")
            value = t.dtype if t.dtype.is_concrete else UNKNOWN
        else:
            rt = TOther("device")
            value = t.device if t.device.kind is not None else UNKNOWN
        out = self.var(attr, rt)
        self.emit(Op.ATTR, (v.atom,), (out,), (("attr", attr),), span=span)
        return V(rt, out, value=value, span=span)

    def subscript(self, e: ast.Subscript, env: dict[str, V]) -> V:
        v = self.expr(e.value, env)
        t = v.type
        if isinstance(t, (TTuple, TList)) and len(e.indices) == 1 and not isinstance(
                e.indices[0], ast.Slice):
            i = self.expr(e.indices[0], env)
            if isinstance(t, TList):
                et: Type = t.elem
                idx: Any = i.value if isinstance(i.value, int) else None
            else:
                k = i.value if isinstance(i.value, int) else None
                if k is None or not -len(t.elems) <= k < len(t.elems):
                    return self.error("GT2010", f"tuple index must be an int literal in "
                                      f"{-len(t.elems)}..{len(t.elems) - 1}", i.span, "here")
                et, idx = t.elems[k], k
            out = self.var("item", et)
            self.emit(Op.GET_ITEM, (v.atom, i.atom), (out,), (("index", idx),), span=e.span)
            value = v.value[idx].value if isinstance(v.value, tuple) and isinstance(
                idx, int) else UNKNOWN
            return V(et, out, value=value, span=e.span)
        items = []
        for ix in e.indices:
            if isinstance(ix, ast.Slice):
                parts = []
                for p in (ix.lower, ix.upper, ix.step):
                    if p is None:
                        none = TOther("none")
                        parts.append(V(none, Lit(None, none), value=None))
                    else:
                        parts.append(self.expr(p, env))
                st = TOther("slice")
                out = self.var("slice", st)
                self.emit(Op.SLICE, tuple(p.atom for p in parts), (out,), span=ix.span)
                items.append(V(st, out, value=tuple(self.arg(p) for p in parts), span=ix.span))
            else:
                items.append(self.expr(ix, env))
        tup_t = TTuple(tuple(i.type for i in items))
        tup = self.var("idx", tup_t)
        self.emit(Op.TUPLE, tuple(i.atom for i in items), (tup,), span=e.span)
        return self.op_call("getitem", [v, V(tup_t, tup, value=tuple(self.arg(i) for i in
                                                                      items))], {}, e.span)

    # ---------------------------------------------------------------- calls
    def call(self, e: ast.Call, env: dict[str, V]) -> V:
        f = e.func
        mod = self.fn.module
        kwargs = {k.name: self._expr(k.value, env) for k in e.keywords}
        if isinstance(f, ast.Name) and f.id not in env:
            args = [self._expr(a, env) for a in e.args]
            if f.id in mod.failed:  # its import was already reported
                return self.dyn_error(e.span)
            callee = mod.function(f.id)
            if callee is not None:
                return self.user_call(callee, args, kwargs, e)
            if f.id in mod.externs:
                return self.extern_call(mod.externs[f.id], args, kwargs, e)
            if f.id in OPS:
                return self.op_call(f.id, args, kwargs, e.span)
            if mod.struct(f.id) is not None:
                return self.error("GT2025", f"`{f.id}` is a struct; struct values come from "
                                  "parameters", f.span, "not callable",
                                  help="take the struct as a parameter and load it from "
                                  "weights")
            return self.error("GT1001", f"undefined function `{f.id}`", f.span, "not defined",
                              help=_undefined_help(f.id, env, self.fn, calls=True))
        if isinstance(f, ast.Attribute):
            base = f.value
            path = self.python_path(f, env)
            if path is not None:
                args = [self._expr(a, env) for a in e.args]
                refused = self.python_name(path, f.span)
                if refused is not None:
                    return refused
                return self.extern_call(path, args, kwargs, e)
            recv = self.expr(base, env)
            args = [self._expr(a, env) for a in e.args]
            op = OPS.get(f.attr)
            if op is not None and op.method and isinstance(recv.type, (TTensor, TDyn)):
                return self.op_call(f.attr, [recv, *args], kwargs, e.span)
            return self.error("GT1011", f"{_kind(recv.type)} has no method `{f.attr}`", f.span,
                              "unknown method", help="every op of the catalogue is a tensor "
                              "method: x.sum(dim=n), x.to(f16), x.transpose(0, 1)")
        return self.error("GT2025", "this expression is not callable", f.span, "called here",
                          help="call a function, an op or a method: f(x), x.sum()")

    def arg(self, v: V) -> Arg:
        value = v.value
        if value is UNKNOWN and isinstance(v.type, TScalar) and v.type.value is not None:
            value = v.type.value.constant() if v.type.value.constant() is not None else \
                v.type.value
        return Arg(v.type, value, v.label, v.span)

    def op_call(self, name: str, args: list[V], kwargs: dict[str, V], span: Span | None,
                shown: str | None = None) -> V:
        """``shown`` is how the source wrote the op when it is an operator (``+``)."""
        op = OPS[name]
        all_args = list(zip(op.params, args)) + [(next((p for p in op.params if p.name == k),
                                                       None), v) for k, v in kwargs.items()]
        for p, v in all_args:
            if v.unresolved and (p is None or p.name not in LABEL_PARAMS):
                return self.error("GT1001", f"undefined name `{v.label}`", v.span, "not "
                                  "defined", help=_undefined_help(v.label, {}, self.fn))
        try:
            bound = bind(op, [self.arg(a) for a in args],
                         {k: self.arg(v) for k, v in kwargs.items()})
            rel = Rel(rigid=self.rigid)
            out_t = op.relation(rel, bound)
        except OpError as err:
            culprit = None
            if err.arg is not None:
                by_name = dict(zip((p.name for p in op.params), args)) | kwargs
                base, _, rest = err.arg.partition("[")
                culprit = by_name.get(base)
                if rest and culprit is not None and isinstance(culprit.value, tuple):
                    i = int(rest.rstrip("]"))
                    elem = culprit.value[i] if i < len(culprit.value) else None
                    if elem is not None:  # an element of a tuple argument: point at it
                        culprit = V(elem.type, None, span=elem.span)
            where = culprit.span if culprit is not None and culprit.span else span
            secondary = ()
            if culprit is not None and culprit.decl is not None:
                secondary = ((culprit.decl, f"its type is declared here: {culprit.type}"),)
            elif culprit is None:
                secondary = tuple((a.decl, f"declared as {a.type}") for a in
                                  [*args, *kwargs.values()] if a.decl is not None)[:2]
            sig = (f"`{shown}` is {op.signature()}" if shown else
                   f"the signature is {op.signature()}")
            return self.error(err.code, err.message, where,
                              _op_label(f"`{shown}`" if shown else f"call to `{name}`",
                                        culprit), secondary, help=err.help or sig,
                              notes=err.notes)
        names = tuple(bound)
        sources = self._sources(op, args, kwargs)
        ref = _reference_shape(bound[op.params[0].name].type) if op.params else None
        ins = []
        for k in names:
            try:
                ins.append(self._in_atom(k, bound[k], sources.get(k), ref, span))
            except OpError as err:
                return self.error(err.code, err.message, span,
                                  _op_label(f"call to `{name}`", None), help=err.help)
        # An operand of unknown type: the relation is re-run on its metadata when it runs.
        dyn = [a for a in [*args, *kwargs.values()] if _has_dyn(a.type)]
        if dyn and not rel.residuals:
            rel.check("operands of unknown type")
        if rel.residuals:
            origin = next((a.origin for a in args if a.origin is not None), None)
            extern = any(a.extern for a in args)
            self.emit(Op.CHECK_OP, tuple(ins), (), (
                ("op", name), ("names", names), ("facts", tuple(rel.residuals)),
                ("blame", self.blame(BlameKind.EXTERN if extern else BlameKind.OP_ARG,
                                     f"the arguments of `{name}`", span, origin))), span=span)
        out = self.var(name, out_t)
        self.emit(op_for(name), tuple(ins), (out,), (("names", names),), span=span)
        value = UNKNOWN
        if isinstance(out_t, TScalar) and out_t.value is not None:
            c = out_t.value.constant()
            value = c if c is not None else out_t.value
        origin = next((a.origin for a in args if a.origin is not None and isinstance(
            out_t, TTensor) and out_t.dtype is DT.ANY), None)
        return V(out_t, out, value=value, span=span, origin=origin)

    def _sources(self, op, args: list[V], kwargs: dict[str, V]) -> dict[str, Any]:
        """Each parameter's source: a V, or for a variadic parameter a list of Vs."""
        out: dict[str, Any] = {}
        positional = list(args)
        for p in op.params:
            if p.variadic:
                out[p.name] = positional if len(positional) != 1 or not isinstance(
                    positional[0].type, (TTuple, TList, TDyn)) else positional[0]
                positional = []
            elif positional and not p.keyword_only:
                out[p.name] = positional.pop(0)
        out.update(kwargs)
        return out

    def _in_atom(self, k: str, a: Arg, src: Any, ref: TShape | None, span: Span | None):
        """The IR input for parameter ``k``: dims named by label become positions, a
        variadic parameter becomes one tuple, labels of ``rename`` become strings."""
        if k == "names":
            return Lit(tuple(e.label for e in (seq_elems(a) or (a,))), TOther("label"))
        elems = seq_elems(a)
        if k in LABEL_PARAMS and ref is not None and any(
                e.label is not None and not isinstance(e.value, int)
                for e in (elems if elems is not None else (a,))):
            def pos(e: Arg) -> int:
                p = resolve_dim(ref, e, k)
                if p.index is None:
                    raise OpError("GT2013", f"`{k}` mixes labels with positions known only "
                                  "at run time", k, "pass every dim by label or every dim "
                                  "by position")
                return p.index if ref.row is None else p.negative
            if elems is None:
                return Lit(pos(a), TScalar(ScalarKind.INT))
            return Lit(tuple(pos(e) for e in elems), a.type)
        if isinstance(src, list):  # a variadic parameter given as separate arguments
            if all(isinstance(v.atom, Lit) for v in src):
                return Lit(tuple(v.atom.value for v in src), a.type)
            out = self.var("tup", a.type)
            self.emit(Op.TUPLE, tuple(v.atom for v in src), (out,), span=span)
            return out
        if src is not None and not src.unresolved:
            return src.atom
        return Lit(a.value, a.type)

    def binary(self, name: str, left: V, right: V, span: Span | None) -> V:
        for v in (left, right):  # an operand already in error: reported once, where it was
            if isinstance(v.type, TDyn) and v.type.reason is DynReason.ERROR:
                return self.dyn_error(span)
        if name in _GROWS and isinstance(left.type, TScalar) and isinstance(
                right.type, TScalar) and left.type.kind is ScalarKind.INT and \
                right.type.kind is ScalarKind.INT:
            out = self.fold(name, left, right, span)
            if isinstance(out, V):
                return out
            left, right = out
        return self.op_call(name, [left, right], {}, span, SYMBOLS.get(name))

    def fold(self, name: str, left: V, right: V, span: Span | None) -> V | tuple[V, V]:
        """Python arithmetic on two ints: folded to a constant when both are constants, an
        error (GT2022) when that constant, or one Python would compute at run time, passes
        ``MAX_CONSTANT_BITS``. Otherwise the operands, with their static sizes forgotten
        when tracking them would grow too large (the value is then known at run time)."""
        a, b = self.arg(left).value, self.arg(right).value
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and \
                not isinstance(b, bool):
            if name in ("floor_divide", "remainder") and b == 0 or name == "pow" and b < 0:
                return left, right  # an error or a float at run time, as Python has it
            # only a power can take long to compute: bound it first, the others are exact
            bits = _result_bits(name, abs(a).bit_length(), abs(b).bit_length(), b, a) \
                if name == "pow" else 0
            value = None
            if bits <= MAX_CONSTANT_BITS + 1:
                # Python's own arithmetic: the table's bounded `*` and `**` would refuse
                # what this check measures and reports
                value = _FOLD.get(name, OPERATORS_BY_NAME[name].fn)(a, b)
                bits = abs(value).bit_length()
            if bits > MAX_CONSTANT_BITS:
                return self.error(
                    "GT2022", f"constant too large: `{SYMBOLS[name]}` on {_short(a)} and "
                    f"{_short(b)} gives an int of {'about ' * (value is None)}{bits} bits, "
                    f"more than {MAX_CONSTANT_BITS}", span, "computed here",
                    help="no tensor op takes an int this large; check the expression")
            t = TScalar(ScalarKind.INT, Size.of(value))
            return V(t, Lit(value, t), value=value, span=span)
        sa, sb = left.type.value, right.type.value
        if sa is None or sb is None or name not in ("mul", "pow"):
            return left, right
        k = sb.constant() if name == "pow" else None
        terms = len(sa.terms) * len(sb.terms) if name == "mul" else \
            len(sa.terms) ** k if k is not None and 0 <= k <= 8 else 0
        bits = _result_bits(name, _size_bits(sa), _size_bits(sb), k if k is not None else 0, 0)
        if terms > _MAX_SIZE_TERMS or bits > MAX_CONSTANT_BITS:
            forget = TScalar(ScalarKind.INT)  # too large to track: known at run time only
            left = replace(left, type=forget, value=UNKNOWN, label=None)
        return left, right

    def extern_call(self, path: str, args: list[V], kwargs: dict[str, V], e: ast.Call) -> V:
        for v in [*args, *kwargs.values()]:
            if v.unresolved:
                return self.error("GT1001", f"undefined name `{v.label}`", v.span,
                                  "not defined")
        missing = self.python_missing(path, e.span) or self.python_writes(path, args, kwargs)
        if missing is not None:
            return missing
        t = TDyn(DynReason.EXTERN)
        out = self.var(path.rsplit(".", 1)[-1], t)
        self.emit(Op.EXTERN, tuple(a.atom for a in args) + tuple(v.atom for v in
                                                                  kwargs.values()), (out,),
                  (("path", path), ("keywords", tuple(kwargs))), span=e.span)
        return V(t, out, span=e.span, origin=e.span, extern=True)

    def user_call(self, callee: FnInfo, args: list[V], kwargs: dict[str, V],
                  e: ast.Call) -> V:
        for v in [*args, *kwargs.values()]:
            if v.unresolved:
                return self.error("GT1001", f"undefined name `{v.label}`", v.span,
                                  "not defined", help=_undefined_help(v.label, {}, self.fn))
        if callee.state != "done" and id(callee) in self.s.cyclic:
            return self.dyn_error(e.span)  # a call on a cycle: reported as GT2020
        self.ensure(callee)
        params = callee.params
        bound: dict[str, V] = {}
        if len(args) > len(params):
            return self.error("GT2013", f"`{callee.name}` takes {len(params)} arguments, got "
                              f"{len(args)}", e.span, "called here",
                              ((callee.decl.span, "defined here"),))
        for (pname, _, _), v in zip(params, args):
            bound[pname] = v
        size_args: dict[str, Size] = {}
        for k, v in kwargs.items():
            if k not in {p[0] for p in params} and k in callee.size_vars:
                # a size variable of the callee, given by keyword (as from Python)
                value = v.type.value if isinstance(v.type, TScalar) and \
                    v.type.kind is ScalarKind.INT else None
                if value is None or value.has_opaque() or value.variables() - self.rigid:
                    return self.error(
                        "GT2013", f"size `{k}` of `{callee.name}` needs a size the checker "
                        f"knows, got {v.type}", v.span, "not a known size",
                        ((callee.decl.span, "defined here"),),
                        help="pass a size variable, an integer literal, or an expression "
                        "of them")
                size_args[k] = value
                continue
            if k not in {p[0] for p in params}:
                return self.error("GT2013", f"`{callee.name}` has no parameter `{k}`", v.span,
                                  "unknown keyword", ((callee.decl.span, "defined here"),))
            if k in bound:
                return self.error("GT2013", f"`{callee.name}` got `{k}` twice", v.span, "here")
            bound[k] = v
        for pname, _, p in params:
            if pname not in bound and p.default is None:
                return self.error("GT2013", f"`{callee.name}` is missing its argument "
                                  f"`{pname}`", e.span, "called here",
                                  ((p.span, "parameter declared here"),))
        # Rename the callee's variables apart, then instantiate them afresh for this call.
        ren = {v: f"{v}'" for v in callee.size_vars}
        ren_rows = {r: f"{r}'" for r in callee.row_vars}
        int_params = {pname for pname, t, _ in params if isinstance(t, TScalar)
                      and t.kind is ScalarKind.INT and t.value is None}

        def rename(t: Type) -> Type:
            return substitute(t, lambda v: Size.of(ren[v]) if v in ren else (
                None if v in int_params else KEEP),
                {r: TShape(Row(n), ()) for r, n in ren_rows.items()})

        inst = Instance(frozenset(ren.values()), frozenset(ren_rows.values()), rigid=self.rigid)
        inst.sizes.update({ren[k]: value for k, value in size_args.items()})
        ptypes = {pname: rename(t) for pname, t, _ in params}
        pdecl = {pname: p.annotation.span if p.annotation else p.span for pname, _, p in params}
        for pname, v in bound.items():
            try:
                inst.unify(strip_labels(v.type), ptypes[pname], f"argument `{pname}`")
            except Mismatch as m:
                return self.error(m.code, f"in a call to `{callee.name}`: {m.message}", v.span,
                                  f"this has type {v.type}",
                                  ((pdecl[pname], f"parameter `{pname}` declared here"),),
                                  help=m.help or "pass a value of the declared type, or "
                                  "loosen the parameter's annotation")
        inst.settle()
        # a size the arguments leave open (`H` and `K` from an `H*K` dim) fails at run time
        # too, unless an argument whose size is not known statically can still fix it
        later = {x for pname, v in bound.items() if not _fully_static(v.type)
                 for x in _size_vars(ptypes[pname])}
        open_vars = inst.undetermined(later)
        if open_vars:
            back = {r: v for v, r in ren.items()}
            names = [back[x] for x in open_vars]
            where = next(pname for pname, _, _ in params
                         if set(open_vars) & _size_vars(ptypes[pname]))
            shown = ", ".join(f"`{n}`" for n in names)
            return self.error(
                "GT2013", f"in a call to `{callee.name}`: no argument determines {shown}",
                e.span, "called here",
                ((pdecl[where], f"`{where}` mentions {shown} only in products or "
                  "sums of unknowns"),),
                help="give them by keyword: " + ", ".join(f"{n}=..." for n in names))
        atoms = []
        for pname, _, p in params:
            if pname not in bound:
                continue
            v = bound[pname]
            target = inst.resolve(ptypes[pname])
            kind = BlameKind.EXTERN if v.extern else BlameKind.OP_ARG
            c = self.coerce(v, target, self.blame(kind, f"argument `{pname}` of "
                                                  f"`{callee.name}`", v.span, v.origin),
                            pdecl[pname], f"argument `{pname}` of `{callee.name}`", v.span)
            atoms.append(c.atom)
        rt = inst.resolve(rename(callee.returns))
        out = self.var(callee.name, rt)
        # The callee's size variables as this call instantiated them: the callee binds them
        # from these (`attention[H, K]` cannot recover H and K from `H*K`-sized weights).
        pnames = {pname for pname, _, _ in params}
        sizes = tuple((v, inst.sizes[ren[v]]) for v in callee.size_vars
                      if v not in pnames and ren[v] in inst.sizes and not (
                          inst.sizes[ren[v]].variables() - self.rigid))
        self.emit(Op.CALL, tuple(atoms), (out,), (("callee", callee.qualname),
                                                  ("args", tuple(n for n in bound)),
                                                  ("sizes", sizes)),
                  span=e.span)
        return V(rt, out, span=e.span)


# ============================================================================ call graph

# The longest chain of nested calls between gtdsl functions: each call takes three to five
# Python frames at run time (more inside blocks, in the reference interpreter), and Python
# stops at 1000 frames, some of them the caller's.
MAX_CALL_DEPTH = 100
_SHOWN_IN_CHAIN = 6  # functions named at each end of a long cycle or chain


def call_order(session: Session) -> list[FnInfo]:
    """Every function of the session, callees before their callers, so that checking a
    caller finds each callee checked and nothing recurses. Reports a cycle of calls (GT2020)
    and calls nested more than ``MAX_CALL_DEPTH`` deep (GT2023), and records the functions
    on cycles in ``session.cyclic``. Iterative: a long chain costs no stack.

    The depth of a function is 1 for itself plus the deepest of its own blocks and of its
    calls, each call counting the ``if``/``for`` blocks and conditional expressions it sits
    in: what the reference interpreter nests at run time."""
    fns = [fn for mod in session.modules.values() for fn in mod.functions.values()]
    edges: dict[int, list[tuple[FnInfo, ast.Call, int]]] = {}
    own: dict[int, int] = {}
    for fn in fns:
        edges[id(fn)], own[id(fn)] = _calls_of(fn)
    sccs = _components(fns, edges)  # callees' components first
    comp: dict[int, int] = {id(fn): i for i, scc in enumerate(sccs) for fn in scc}
    depth: dict[int, int] = {}
    deepest: dict[int, tuple[FnInfo, ast.Call] | None] = {}
    for i, scc in enumerate(sccs):
        members = {id(fn) for fn in scc}
        if len(scc) > 1 or any(c is scc[0] for c, _, _ in edges[id(scc[0])]):
            session.cyclic |= members
            _report_cycle(session, scc, members, edges)
        for fn in scc:  # a cycle is reported already: its inner calls count once
            best: tuple[int, tuple[FnInfo, ast.Call] | None] = (own[id(fn)], None)
            for c, call, blocks in edges[id(fn)]:
                if comp[id(c)] != i and blocks + depth[id(c)] > best[0]:
                    best = (blocks + depth[id(c)], (c, call))
            depth[id(fn)], deepest[id(fn)] = best[0] + 1, best[1]
        for fn in scc:
            step = deepest[id(fn)]
            if depth[id(fn)] > MAX_CALL_DEPTH and step is not None and \
                    depth[id(step[0])] <= MAX_CALL_DEPTH:
                _report_depth(session, fn, step, deepest, depth[id(fn)])
    return [fn for scc in sccs for fn in scc]


def _calls_of(fn: FnInfo) -> tuple[list[tuple[FnInfo, ast.Call, int]], int]:
    """The gtdsl functions ``fn``'s body calls by name, in source order, each with the call
    site inside the most blocks and that number of blocks; and the body's deepest block."""
    out: dict[int, tuple[FnInfo, ast.Call, int]] = {}
    deepest = 0
    stack: list[tuple[Any, int]] = [(st, 0) for st in reversed(fn.decl.body)]
    while stack:
        node, blocks = stack.pop()
        deepest = max(deepest, blocks)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            callee = fn.module.function(node.func.id)
            if callee is not None and (id(callee) not in out or out[id(callee)][2] < blocks):
                out[id(callee)] = (callee, node, blocks)
        kids: list[tuple[Any, int]] = []
        for name in getattr(node, "__dataclass_fields__", ()):
            if name == "span":
                continue
            inner = blocks + 1 if name in ("body", "orelse") and isinstance(
                node, (ast.If, ast.For, ast.IfExp)) else blocks
            value = getattr(node, name)
            if isinstance(value, tuple):
                kids += [(v, inner) for v in value if hasattr(v, "__dataclass_fields__")]
            elif hasattr(value, "__dataclass_fields__"):
                kids.append((value, inner))
        stack += reversed(kids)
    return list(out.values()), deepest


def _components(fns: list[FnInfo], edges: dict[int, list[tuple[FnInfo, ast.Call, int]]]
                ) -> list[list[FnInfo]]:
    """Tarjan's strongly connected components, iteratively; a component comes after every
    component it calls into. Members keep source order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[FnInfo] = []
    order = {id(fn): i for i, fn in enumerate(fns)}
    out: list[list[FnInfo]] = []
    for root in fns:
        if id(root) in index:
            continue
        work: list[tuple[FnInfo, int]] = [(root, 0)]
        while work:
            fn, i = work.pop()
            key = id(fn)
            if i == 0:
                index[key] = low[key] = len(index)
                stack.append(fn)
                on_stack.add(key)
            callees = edges.get(key, [])
            if i > 0:  # back from callees[i - 1]
                low[key] = min(low[key], low[id(callees[i - 1][0])])
            while i < len(callees):
                c = callees[i][0]
                if id(c) not in index:
                    break
                if id(c) in on_stack:
                    low[key] = min(low[key], index[id(c)])
                i += 1
            if i < len(callees):
                work.append((fn, i + 1))
                work.append((callees[i][0], 0))
                continue
            if low[key] == index[key]:
                scc: list[FnInfo] = []
                while True:
                    m = stack.pop()
                    on_stack.discard(id(m))
                    scc.append(m)
                    if m is fn:
                        break
                out.append(sorted(scc, key=lambda f: order.get(id(f), 0)))
    return out


def _chain_text(names: list[str]) -> str:
    if len(names) > 2 * _SHOWN_IN_CHAIN + 1:
        names = names[:_SHOWN_IN_CHAIN] + ["..."] + names[-_SHOWN_IN_CHAIN:]
    return " -> ".join(n if n == "..." else f"`{n}`" for n in names)


def _report_cycle(session: Session, scc: list[FnInfo], members: set[int],
                  edges: dict[int, list[tuple[FnInfo, ast.Call, int]]]) -> None:
    """GT2020 at the first call of the shortest cycle through the component's first
    function, with the other calls of the cycle as secondary labels."""
    start = scc[0]
    parent: dict[int, tuple[FnInfo, ast.Call]] = {}
    queue, head, closing = [start], 0, None
    while head < len(queue) and closing is None:
        fn = queue[head]
        head += 1
        for c, call, _ in edges[id(fn)]:
            if c is start:
                closing = (fn, call)
                break
            if id(c) in members and id(c) not in parent:
                parent[id(c)] = (fn, call)
                queue.append(c)
    assert closing is not None
    steps = [closing]  # (caller, call site), from the last call back to the first
    while steps[-1][0] is not start:
        steps.append(parent[id(steps[-1][0])])
    steps.reverse()
    names = [fn.qualname for fn, _ in steps] + [start.qualname]
    first_fn, first_call = steps[0]
    callee = steps[1][0] if len(steps) > 1 else start
    message = (f"recursive call: `{start.qualname}` calls itself" if len(steps) == 1 else
               f"recursive call: {_chain_text(names)}")
    secondary = tuple((call.span, f"`{fn.qualname}` calls `{nxt.qualname}` here")
                      for (fn, call), nxt in zip(steps[1:], [f for f, _ in steps[2:]] + [start])
                      )[:3]
    session.error(diag("GT2020", message, first_call.span,
                       f"`{first_fn.qualname}` calls `{callee.qualname}` here", secondary,
                       help="compute the repetition with a `for` loop, or unroll it into "
                       "separate functions",
                       notes=((f"a cycle of {len(steps)} functions: " if len(steps) > 1
                               else "") + "gtdsl functions may not call themselves, directly "
                              "or through other functions",)))


def _report_depth(session: Session, fn: FnInfo, step: tuple[FnInfo, ast.Call],
                  deepest: dict[int, tuple[FnInfo, ast.Call] | None], depth: int) -> None:
    names = [fn.qualname]
    cur: tuple[FnInfo, ast.Call] | None = step
    while cur is not None:
        names.append(cur[0].qualname)
        cur = deepest[id(cur[0])]
    levels = f" inside {depth - len(names)} blocks: {depth} levels" if depth > len(
        names) else ""
    session.error(diag(
        "GT2023", f"calls nested too deeply: `{fn.qualname}` starts a chain of {len(names)} "
        f"nested calls{levels}, more than {MAX_CALL_DEPTH}", step[1].span,
        f"the chain goes on through `{step[0].qualname}`",
        help="call the steps one after another from one function instead of each "
        "calling the next", notes=(f"the chain: {_chain_text(names)}",
                                   "each call counts one level, and so does each `if`, `for` "
                                   "or conditional expression a call sits in")))


# ============================================================================ helpers


_GROWS = ("add", "sub", "mul", "pow", "floor_divide", "remainder")
_MAX_SIZE_TERMS = 256  # terms of a size polynomial the checker tracks


def _result_bits(name: str, bits_a: int, bits_b: int, b: int, a: int) -> int:
    """An upper bound on the bits of ``a <name> b`` for ints of these bit lengths (for
    ``pow``, ``b`` is the exponent itself)."""
    if name in ("add", "sub"):
        return max(bits_a, bits_b) + 1
    if name == "mul":
        return bits_a + bits_b
    if name == "pow":
        if b <= 0 or a in (-1, 0, 1) and bits_a <= 1:
            return max(bits_a, 1)
        if a not in (-1, 0, 1):  # a known base: the bits of |a| ** b, rounded up
            return math.ceil(b * math.log2(abs(a))) + 1
        return bits_a * b
    return bits_a  # `//` and `%` shrink


def _size_bits(s: Size) -> int:
    """An upper bound on the bits of a size polynomial's coefficients and constant."""
    return max((abs(c).bit_length() for _, c in s.terms), default=0) + \
        len(s.terms).bit_length()


def _count(n: int) -> str:
    return str(n) if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def _short(n: int) -> str:
    text = str(n) if n.bit_length() <= 200 else f"an int of {n.bit_length()} bits"
    return text


def _fully_static(t: Type) -> bool:
    """Every size in ``t`` is known statically (as a constant or a size variable)."""
    if isinstance(t, TTensor):
        return t.shape.row is None and all(d.size is not None for d in t.shape.dims)
    if isinstance(t, TStruct):
        return all(a is not None for a in t.args)
    if isinstance(t, (TList,)):
        return _fully_static(t.elem)
    if isinstance(t, TTuple):
        return all(_fully_static(e) for e in t.elems)
    return not isinstance(t, TDyn)


def _size_vars(t: Type) -> set[str]:
    names: list[str] = []
    size_vars_of(t, names, [])
    return set(names)


def _assigned_names(body: tuple) -> list[str]:
    out: list[str] = []

    def add(n: str) -> None:
        if n not in out:
            out.append(n)

    for st in body:
        if isinstance(st, (ast.Assign,)):
            targets = [st.target] if isinstance(st.target, ast.Name) else list(st.target.elts)
            for t in targets:
                add(t.id)
        elif isinstance(st, (ast.AnnAssign, ast.AugAssign)):
            add(st.target.id)
        elif isinstance(st, ast.If):
            for n in _assigned_names(st.body) + _assigned_names(st.orelse):
                add(n)
        elif isinstance(st, ast.For):
            for n in _assigned_names(st.body):
                add(n)
    return out


def _relabel(m: Type, target: Type) -> Type:
    """The meet, with the labels the declared type gives (annotations name dims)."""
    if isinstance(m, TTensor) and isinstance(target, TTensor):
        tdims = target.shape.dims
        dims = list(m.shape.dims)
        for i in range(1, min(len(dims), len(tdims)) + 1):
            if tdims[-i].label is not None:
                dims[-i] = TDim(tdims[-i].label, dims[-i].size)
        return TTensor(m.dtype, TShape(m.shape.row, tuple(dims)), m.device)
    return m


def explain(s: Type, t: Type) -> tuple[str, str]:
    """Which component of ``s`` conflicts with ``t``: a code and a sentence."""
    from gtdsl.types.core import shape_meet
    from gtdsl.types.lattice import dev_meet, dt_meet

    if isinstance(s, TTensor) and isinstance(t, TTensor):
        if dt_meet(s.dtype, t.dtype) is None:
            return "GT2002", f"dtype {s.dtype} is not {t.dtype}"
        if dev_meet(s.device, t.device) is None:
            return "GT2003", f"device {s.device} is not {t.device}"
        if shape_meet(s.shape, t.shape, []) is None:
            rs, rt = s.shape.rank, t.shape.rank
            if rs is not None and rt is not None and rs != rt or (
                    rs is not None and t.shape.row is not None and rs < len(t.shape.dims)):
                return "GT2005", f"rank {rs} is not {rt if rt is not None else 'at least ' + str(len(t.shape.dims))}"
            k = min(len(s.shape.dims), len(t.shape.dims))
            for i in range(1, k + 1):
                a, b = s.shape.dims[-i], t.shape.dims[-i]
                if a.size is not None and b.size is not None and meet(
                        TTensor(shape=TShape(None, (a,))), TTensor(shape=TShape(None, (b,)))) \
                        is None:
                    n = len(t.shape.dims) - i if t.shape.row is None else -i
                    return "GT2004", f"dim {n} has size {a.size}, expected {b.size}"
            return "GT2004", f"shape {s.shape} is not {t.shape}"
    if isinstance(s, TStruct) and isinstance(t, TStruct) and s.name == t.name:
        return "GT2004", f"{s} is not {t}"
    return "GT2001", f"{_kind(s)} is not {_kind(t)}"


def _help_for(code: str, target: Type, found: Type | None = None) -> str:
    if code == "GT2005" and isinstance(target, TTensor) and isinstance(found, TTensor) and \
            found.shape.rank is not None:
        return (f"reshape the value to rank {len(target.shape.dims)}, or declare the type "
                f"`{found}`")
    return {
        "GT2002": "convert with .to(...) or change the declared dtype",
        "GT2003": "move the value with .to(device=...) or change the declared device",
        "GT2005": f"reshape the value or change the declared type `{target}`",
        "GT2004": "make the sizes agree, or loosen the declared size to `?`",
    }.get(code, "change the value or its declared type")


def _kind(t: Type) -> str:
    if isinstance(t, TTensor):
        return f"a tensor `{t}`"
    if isinstance(t, TScalar):
        return f"a Python {t.kind.value}"
    if isinstance(t, TStruct):
        return f"a `{t}` struct"
    if isinstance(t, (TList, TTuple)):
        return f"a `{t}`"
    if isinstance(t, TOther):
        return {"none": "None", "str": "a string"}.get(t.what, f"a {t.what}")
    return "`?`"


def _op_label(name: str, culprit: V | None) -> str:
    if culprit is not None and culprit.unresolved:
        return f"the label `{culprit.label}`"
    if culprit is not None:
        return f"this has type {culprit.type}"
    return f"in this {name}"


def _is_value(allowed: Any, path: str) -> bool:
    """Whether the allowlisted name ``path`` is a value (``math.inf``), not a function."""
    try:
        return not callable(allowed.resolve(path))
    except LookupError:
        return False


def _undefined_help(name: str | None, env: dict[str, V], fn: FnInfo, calls: bool = False) -> str:
    if calls:  # functions are not values: offer them only where a call is written
        pool = list(fn.module.functions) + list(fn.module.imported_fns) + list(
            fn.module.externs) + list(OPS)
    else:
        pool = list(env) + list(fn.size_vars)
    close = difflib.get_close_matches(name or "", pool, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return "define it, import it, or (as a dim) use one of the tensor's labels"


def _reference_shape(t: Type) -> TShape | None:
    """The shape whose dims an op's dim arguments name: its first tensor (or first element
    of a tensor list, as in ``cat``)."""
    if isinstance(t, TTensor):
        return t.shape
    if isinstance(t, TTuple) and t.elems:
        return _reference_shape(t.elems[0])
    if isinstance(t, TList):
        return _reference_shape(t.elem)
    return None


def _returns_in(body: tuple) -> list[ast.Return]:
    """Every ``return`` statement in ``body``, inside ``if`` branches and inner loops too."""
    out: list[ast.Return] = []
    for st in body:
        if isinstance(st, ast.Return):
            out.append(st)
        elif isinstance(st, ast.If):
            out += _returns_in(st.body) + _returns_in(st.orelse)
    return out  # an inner loop reports its own


__all__ = ["FunctionChecker", "V", "ANY_DEVICE", "field"]


def _has_dyn(t: Type) -> bool:
    if isinstance(t, TDyn):
        return t.reason is not DynReason.ERROR
    if isinstance(t, TTuple):
        return any(_has_dyn(e) for e in t.elems)
    if isinstance(t, TList):
        return _has_dyn(t.elem)
    return False
