"""Checking a function body and elaborating it to the typed IR with casts.

Input: a resolved ``FnInfo`` (its signature converted, its module's names collected).
Output: diagnostics in the session, the function's inferred return type, and its IR
``Function`` in which every place a less precise value meets a more precise expectation holds
a ``CHECK_CAST`` with a blame label, and every op whose relation left facts undecided is
preceded by a ``CHECK_OP`` (docs/types.md, "What is checked, and when"). Errors never abort:
the offending value gets an error-marked ``?`` and checking goes on.

``FunctionChecker`` stacks the checker's layers: ``builder`` (IR and diagnostics),
``casts``, ``calls``, ``expressions`` and ``statements``; this module binds the parameters
and checks the body.
"""

from __future__ import annotations

from typing import Any

from gtdsl.check.builder import Flow, V
from gtdsl.check.statements import StmtChecker
from gtdsl.ir.core import BlameKind, Block, Function, Lit, Op
from gtdsl.ops import UNKNOWN
from gtdsl.syntax import ast
from gtdsl.types import DYN, ScalarKind, Size, TDyn, TOther, TScalar, Type, join

NOT_LITERAL: Any = type("NotLiteral", (), {"__repr__": lambda self: "NOT_LITERAL"})()


def default_value(expr: ast.Expr) -> Any:
    """A parameter default's value: a number (signed), a string, a bool, None, or a tuple or
    list of them; ``NOT_LITERAL`` for anything else (reported as GT2028). A list default is
    one list for every call, as in Python; gtdsl code cannot change a list."""
    if isinstance(expr, (ast.Int, ast.Float, ast.Str, ast.Bool)):
        return expr.value
    if isinstance(expr, ast.NoneLit):
        return None
    if isinstance(expr, ast.UnaryOp) and expr.op in (ast.UnaryOpKind.NEG, ast.UnaryOpKind.POS) \
            and isinstance(expr.operand, (ast.Int, ast.Float)):
        v = expr.operand.value
        return -v if expr.op is ast.UnaryOpKind.NEG else v
    if isinstance(expr, (ast.Tuple, ast.List)):
        items = [default_value(e) for e in expr.elts]
        if any(i is NOT_LITERAL for i in items):
            return NOT_LITERAL
        return tuple(items) if isinstance(expr, ast.Tuple) else items
    return NOT_LITERAL


class FunctionChecker(StmtChecker):
    def run(self) -> Function:
        """The function's IR: each annotated parameter cast at entry (an ``n: int``
        parameter binds the size ``n``), then the body; an inferred return type is the
        join of the returned types."""
        fn = self.fn
        raw, env = [], {}
        for name, t, p in fn.params:
            v = self.var(name, DYN)
            raw.append(v)
            if p.default is not None and default_value(p.default) is NOT_LITERAL:
                self.error("GT2028", f"the default of `{name}` is not a literal",
                           p.default.span, "computed here",
                           help="a default is a number, a string, True, False, None, or a tuple "
                           f"or list of them; to compute one, default to None and set `{name}` in the "
                           "body")
            t_body: Type
            if isinstance(t, TScalar) and t.kind is ScalarKind.INT and t.value is None and \
                    name not in fn.size_vars:
                t_body = TScalar(ScalarKind.INT, Size.of(name))
                self.rigid = self.rigid | {name}
            else:
                t_body = t
            atom = v
            if not isinstance(t, TDyn):
                out = self.var(name, t_body)
                if self.ir:
                    self.emit(Op.CHECK_CAST, (v,), (out,), (  # `n: int` binds the size n
                        ("target", t_body), ("blame", self.blame(
                            BlameKind.ARG, f"argument `{name}`",
                            p.annotation.span if p.annotation else p.span, param=name))),
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
            ret = self.returns[0]
            for t in self.returns[1:]:
                ret = join(ret, t)
            fn.inferred_return = ret
        return Function(fn.qualname, tuple(raw), fn.returns, Block(tuple(self.blocks[0])),
                        fn.decl.span)
