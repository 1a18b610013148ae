"""Building a function's typed IR: fresh variables, equations in nested blocks, diagnostics
and blame labels. The layers of the checker build on this one: ``casts`` (where a value meets
a more precise type), ``calls``, ``expressions``, ``statements`` and ``function`` (a whole
function body).

A checked expression is a ``V``: its type, its IR atom and what is known of it before run
time. Errors never abort: the offending value gets an error-marked ``?`` and checking goes on.
"""

from __future__ import annotations

from typing import Any, Callable, cast

from gtdsl._records import record
from gtdsl.check.env import FnInfo, Session, diag
from gtdsl.diagnostics import Span
from gtdsl.ir.core import Blame, BlameKind, Eqn, Op, Var
from gtdsl.ops import UNKNOWN, Arg
from gtdsl.syntax import ast
from gtdsl.types import DynReason, TDyn, TScalar, Type


# Every value's atom where no IR is kept (``Session.ir`` False): atoms only reach equations.
_NO_IR = Var(0, "no_ir", TDyn(DynReason.UNANNOTATED))


@record(frozen=False, slots=False)
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

    def but(self, **changes: Any) -> V:
        """A copy with ``changes``: ``dataclasses.replace``, without its generic cost."""
        new = V.__new__(V)
        fields = self.__dict__.copy()  # a copy and an update: twice as fast as update(d, **kw)
        fields.update(changes)
        new.__dict__ = fields
        return new


@record(frozen=False, slots=False)
class Flow:
    env: dict[str, V]
    returned: bool = False


def target_names(target: ast.Name | ast.Tuple) -> list[ast.Name]:
    """The names an assignment or loop target binds, in order."""
    if isinstance(target, ast.Name):
        return [target]
    # the parser admits only names in a tuple target (GT0013 otherwise)
    return [cast(ast.Name, n) for n in target.elts]


class Builder:
    """The state of checking one function: its IR blocks under construction, its variable
    counter, the size variables that are rigid in its body, and the types of its lets."""

    def __init__(self, session: Session, fn: FnInfo,
                 ensure: Callable[[FnInfo], None]) -> None:
        self.s, self.fn, self.ensure = session, fn, ensure
        self.file = fn.module.file
        self.blocks: list[list[Eqn]] = [[]]
        self.counter = 0
        self.rigid = frozenset(fn.size_vars) | frozenset(fn.row_vars)
        self.returns: list[Type] = []
        self.lets: dict[tuple[int, int], Type] = {}  # (start, end) of a target -> its type
        self.trips = 1  # how many times the enclosing loops run the current statement
        self.ir = session.ir  # False: the equations are not kept (diagnostics only)

    def var(self, hint: str, t: Type) -> Var:
        if not self.ir:  # an atom is read by the IR alone
            return _NO_IR
        self.counter += 1
        return Var(self.counter, hint, t)

    def emit(self, op: Op, ins: tuple, outs: tuple, params: tuple = (), blocks: tuple = (),
             span: Span | None = None) -> None:
        if self.ir:
                self.blocks[-1].append(Eqn(op, tuple(ins), tuple(outs), tuple(params),
                                       tuple(blocks), span))

    def error(self, code: str, message: str, span: Span | None, label: str = "",
              secondary: tuple[tuple[Span | None, str], ...] = (), help: str | None = None,
              notes: tuple[str, ...] = ()) -> V:
        self.s.error(diag(code, message, span, label, secondary, help, notes))
        return self.dyn_error(span)

    def dyn_error(self, span: Span | None) -> V:
        t = TDyn(DynReason.ERROR)
        return V(t, self.var("err", t), span=span)

    def blame(self, kind: BlameKind, what: str, span: Span | None,
              origin: Span | None = None, param: str | None = None) -> Blame:
        return Blame(kind, self.fn.qualname, span, what, kind is not BlameKind.ARG, origin,
                     param)

    def arg(self, v: V) -> Arg:
        """``v`` as an op's relation reads it: a known int size as its value."""
        value = v.value
        if value is UNKNOWN and isinstance(v.type, TScalar) and v.type.value is not None:
            value = v.type.value.constant() if v.type.value.constant() is not None else \
                v.type.value
        return Arg(v.type, value, v.label, v.span)
