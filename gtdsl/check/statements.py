"""Checking statements: assignments and unpacking, annotated assignments (a cast where the
value is less precise than the annotation), returns, ``if`` (the variables a branch changes
merged by join), ``for`` (the variables the body assigns carried as loop invariants, cast back
to their type at the end of each iteration) and asserts.
"""

from __future__ import annotations

from functools import partial
from gtdsl._records import replace
from gtdsl.check.builder import Flow, V, target_names
from gtdsl.check.expressions import BINOPS, ExprChecker
from gtdsl.check.messages import count_text
from gtdsl.ir.core import BlameKind, Block, Eqn, Lit, Op
from gtdsl.ops import UNKNOWN
from gtdsl.syntax import ast
from gtdsl.types import DynReason, ScalarKind, TDyn, TList, TOther, TScalar, TTuple, Type, join
from gtdsl.types.subst import KEEP, Instance, Mismatch, size_vars_of, substitute

# The iterations of `for` loops over a range known when checking (nested loops multiply): a
# limit that keeps checking and running bounded.
MAX_LOOP_TRIPS = 1_000_000


class StmtChecker(ExprChecker):
    def stmts(self, body: tuple[ast.Stmt, ...], flow: Flow) -> Flow:
        for st in body:
            if flow.returned:
                break
            flow = self.stmt(st, flow)
        return flow

    def stmt(self, st: ast.Stmt, flow: Flow) -> Flow:
        env = flow.env
        if isinstance(st, ast.Assign):
            v = self.expr(st.value, env)
            self.assign(st.target, v, env)
        elif isinstance(st, ast.AnnAssign):
            self.ann_assign(st, env)
        elif isinstance(st, ast.AugAssign):
            left = self.expr(st.target, env)
            right = self.expr(st.value, env)
            env[st.target.id] = self.binary(BINOPS[st.op], left, right, st.span).but(
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

    def assign(self, target: ast.Name | ast.Tuple, v: V, env: dict[str, V]) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = v.but(label=None, unresolved=False, span=target.span,
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
        for i, (name, et) in enumerate(zip(target_names(target), elems)):
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
                inst.unify(v.type, t, "the value")
            except Mismatch:
                pass
            t = substitute(t, lambda n: inst.sizes.get(n, KEEP) if n in fresh else KEEP,
                           {r: inst.rows.get(r) for r in fresh_rows if r in inst.rows})
        out = self.coerce(v, t, lambda: self.blame(BlameKind.ANNOT, f"`{st.target.id}`",
                                                   st.annotation.span, v.origin),
                          st.annotation.span, f"`{st.target.id}`", st.value.span)
        if not (isinstance(out.type, TDyn) and out.type.reason is DynReason.ERROR):
            # The variable has the declared type: an annotation names dims, and may forget
            # what the value knows (`acc: f32[?, d] = x` lets a loop grow `acc`).
            out = out.but(type=t)
        env[st.target.id] = out.but(span=st.target.span, decl=st.annotation.span)
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
            origin = v.origin
            v = self.coerce(v, declared, lambda: self.blame(BlameKind.RET, "the result", span,
                                                            origin),
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
            self.error("GT2021", f"loop too long: it runs {count_text(trips)} times{inside}, "
                       f"more than {MAX_LOOP_TRIPS} in all", it.span,
                       f"{count_text(trips)} iterations",
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
        targets = target_names(st.target)
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
            # its value before the loop is not its value in later trips: `i = i + 1` must
            # not fold from `i: int = 0` (nor a list's elements be read from before the loop)
            inner[n] = env[n].but(atom=cv, value=UNKNOWN)
        self.blocks.append([])
        self.assign(st.target, V(elem, item, span=st.target.span), inner)
        outer_trips = self.trips
        self.trips *= trips  # the body runs this many times in all, as far as known
        sub = self.stmts(st.body, Flow(inner))
        self.trips = outer_trips
        for ret in _returns_in(st.body):
            head = replace(st.span, end=st.iter.span.end) if st.span is not None and \
                st.iter.span is not None else st.span  # the loop's first line
            self.error("GT2019", "`return` inside a `for` loop is not supported", ret.span,
                       "returns from inside the loop", ((head, "in this loop"),),
                       help="assign the result to a variable and return after the loop")
        exits = []
        for n in carried:
            before, after = env[n], sub.env[n]
            v = self.coerce(after, before.type, partial(
                self.blame, BlameKind.ANNOT, f"`{n}` at the end of a loop iteration",
                after.span, after.origin), before.decl or before.span, f"`{n}` (the loop invariant)",
                after.span, code_on_fail="GT2018")
            exits.append(v.atom)
        self.blocks[-1].append(Eqn(Op.YIELD, tuple(exits), ()))
        block = self.blocks.pop()
        outs = tuple(self.var(n, env[n].type) for n in carried)
        self.emit(Op.FOR, (source.atom, *(env[n].atom for n in carried)), outs,
                  (("binders", tuple(binders)),), (Block(tuple(block)),), st.span)
        for n, o in zip(carried, outs):
            env[n] = env[n].but(atom=o, value=UNKNOWN)


def _assigned_names(body: tuple[ast.Stmt, ...]) -> list[str]:
    """The names ``body`` assigns, in order of first assignment, inner blocks included."""
    out: list[str] = []

    def add(n: str) -> None:
        if n not in out:
            out.append(n)

    for st in body:
        if isinstance(st, (ast.Assign,)):
            for t in target_names(st.target):
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


def _returns_in(body: tuple[ast.Stmt, ...]) -> list[ast.Return]:
    """Every ``return`` statement in ``body``, inside ``if`` branches and inner loops too."""
    out: list[ast.Return] = []
    for st in body:
        if isinstance(st, ast.Return):
            out.append(st)
        elif isinstance(st, ast.If):
            out += _returns_in(st.body) + _returns_in(st.orelse)
    return out  # an inner loop reports its own
