"""The typed core IR: what cast insertion produces and the backends consume.

::

    module   ::= function*
    function ::= name (param: type)* -> type { block }
    block    ::= eqn*
    eqn      ::= (out: type)* = OP[param=value, ...](atom, ...)  @ span
               | IF(cond) { block } else { block } -> outs        (blocks end in YIELD or RETURN)
               | FOR(item in list; carried) { block } -> outs     (the block ends in YIELD)
    atom     ::= var | literal

A ``Lit`` whose value is a ``Size`` is a size expression, evaluated from the size variables
bound by the function's entry casts. ``Op`` is closed: the structural ops below plus one member per catalogue op (``Op.SUM``,
``Op.MATMUL`` ...). ``CHECK_CAST`` carries its target type and a ``Blame``; it checks, never
converts. ``CHECK_OP`` carries the residual facts an op relation could not decide, checked at
run time by re-running the relation on concrete metadata.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

from gtdsl.diagnostics import Span
from gtdsl.ops import OPS
from gtdsl.types import Size, Type

STRUCTURAL = (
    "CHECK_CAST",  # out = in, after checking it against params.target
    "CHECK_OP",  # residual facts of the op that follows (params.op, params.facts)
    "CONST",  # out = params.value
    "CALL",  # out = gtdsl function params.callee (a module-qualified name)
    "EXTERN",  # out = Python callable params.path (result unchecked)
    "GET_FIELD",  # out = in.params.field
    "GET_ITEM",  # out = in[params.index] for tuples and lists
    "TUPLE",  # out = (in, ...)
    "LIST",  # out = [in, ...]
    "ATTR",  # out = metadata of a tensor: params.attr in shape, ndim, dtype, device
    "ASSERT",  # check the condition in; params.message
    "NOT",  # out = not in
    "UNARY",  # out = -in or +in (params.op) on a Python number or an unchecked value
    "IF",
    "FOR",
    "YIELD",  # end of an IF/FOR block: the values of the block's outputs
    "RETURN",  # return in from the function
)

Op = enum.Enum("Op", [*STRUCTURAL, *(name.upper() for name in sorted(OPS))])  # type: ignore[misc]


def op_for(name: str) -> Op:
    """The IR op of catalogue op ``name``."""
    return Op[name.upper()]


@dataclass(frozen=True, slots=True)
class Var:
    id: int
    hint: str
    type: Type

    def __str__(self) -> str:
        return f"%{self.hint}{self.id}" if self.hint else f"%{self.id}"


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any
    type: Type

    def __str__(self) -> str:
        return format_value(self.value)


def format_value(v: Any) -> str:
    """A literal as it reads in the IR: sizes as expressions, dtypes and devices by name."""
    if isinstance(v, tuple):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, Size):
        return f"size({v})"
    if isinstance(v, enum.Enum):
        return str(v.value)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return repr(v)
    return str(v)


Atom = Union[Var, Lit]


class BlameKind(enum.Enum):
    ARG = "arg"  # a function's parameter at entry: the caller is blamed
    RET = "ret"  # a function's result against its declared return type
    OP_ARG = "op-arg"  # an argument of an op or call inside a checked body
    ANNOT = "annot"  # a let annotation
    EXTERN = "extern"  # the result of an unchecked import


@dataclass(frozen=True, slots=True)
class Blame:
    """Who is at fault when a runtime check fails (TYPES.md §6)."""

    kind: BlameKind
    function: str
    span: Span | None = field(compare=False)
    what: str  # e.g. "argument `x`", "the result", "`hardswish(...)`"
    positive: bool = True  # True: the value's producer is blamed; False: its consumer
    origin: Span | None = field(default=None, compare=False)  # where the vaguer type came from

    def __str__(self) -> str:
        where = self.span.location if self.span is not None else "?"
        return f"{self.kind.value} {self.what} of {self.function} at {where}"


@dataclass(frozen=True, slots=True)
class Eqn:
    op: Op
    ins: tuple[Atom, ...]
    outs: tuple[Var, ...]
    params: tuple[tuple[str, Any], ...] = ()
    blocks: tuple[Block, ...] = ()
    span: Span | None = field(default=None, compare=False)

    def param(self, name: str, default: Any = None) -> Any:
        return next((v for k, v in self.params if k == name), default)


@dataclass(frozen=True, slots=True)
class Block:
    eqns: tuple[Eqn, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[Var, ...]
    returns: Type
    body: Block
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Program:
    functions: tuple[Function, ...]

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)


def walk(block: Block):
    """Every eqn of a block, nested blocks included, in order."""
    for eqn in block.eqns:
        yield eqn
        for b in eqn.blocks:
            yield from walk(b)


def count(fn: Function | Program, op: Op) -> int:
    fns = fn.functions if isinstance(fn, Program) else (fn,)
    return sum(1 for f in fns for e in walk(f.body) if e.op is op)
