"""The one operator table: every Python operator gtdsl source can write.

Each ``Operator`` names the operator once: its name (the catalogue op it is on tensors, where
there is one: ``add`` for ``+``), its Python spelling, its Python semantics on plain values, and
its kind. Every stage reads it: the checker maps the syntax tree's operators through
``by_symbol``, the reference interpreter evaluates ``fn``, the torch code generator writes
``symbol``, the Triton expressions write the arithmetic and comparison symbols.

Integer ``*`` and ``**`` and ``range`` are bounded (``MAX_INT_BITS``, ``MAX_RANGE``): the
run-time twins of the checker's limits (GT2021, GT2022) for values known only at run time.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from gtdsl._records import record

MAX_RANGE = 1_000_000
MAX_INT_BITS = 4096


def checked_pow(a: Any, b: Any) -> Any:
    """``a ** b``, refusing an integer result wider than ``MAX_INT_BITS`` (Python would
    compute it for hours, and hold gigabytes)."""
    if type(a) is int and type(b) is int and b > 0 and abs(a) > 1 and (
            b * (abs(a).bit_length() - 1) > MAX_INT_BITS):
        raise OverflowError(f"{a} ** {b} has more than {MAX_INT_BITS} bits")
    return a ** b


def checked_mul(a: Any, b: Any) -> Any:
    """``a * b``, refusing an integer product wider than ``MAX_INT_BITS`` (a loop squaring a
    number would otherwise double its size each time)."""
    if type(a) is int and type(b) is int and (
            abs(a).bit_length() + abs(b).bit_length() > MAX_INT_BITS + 1):
        raise OverflowError(f"an integer product of more than {MAX_INT_BITS} bits")
    return a * b


def checked_range(*args: Any) -> list[int]:
    """``list(range(*args))`` for a ``for`` loop, of at most ``MAX_RANGE`` iterations."""
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise OverflowError(f"range({', '.join(map(str, args))}) runs {len(r)} times, more "
                            f"than {MAX_RANGE}")
    return list(r)


def _and(a: Any, b: Any) -> Any:
    return a and b


def _or(a: Any, b: Any) -> Any:
    return a or b


def _in(a: Any, b: Any) -> bool:
    return a in b


def _not_in(a: Any, b: Any) -> bool:
    return a not in b


@record
class Operator:
    name: str  # the catalogue op on tensors (binary, compare), else the operator's own name
    symbol: str  # as Python writes it
    fn: Callable[..., Any]  # Python's semantics on plain values (bounded where noted)
    kind: str  # "binary" | "compare" | "membership" | "identity" | "bool" | "unary"

    def emit(self, *operands: str) -> str:
        """The Python expression applying this operator to operand expressions."""
        if len(operands) == 1:
            sep = " " if self.symbol.isalpha() else ""
            return f"{self.symbol}{sep}{operands[0]}"
        return "(" + f" {self.symbol} ".join(operands) + ")"


OPERATORS: tuple[Operator, ...] = (
    Operator("add", "+", operator.add, "binary"),
    Operator("sub", "-", operator.sub, "binary"),
    Operator("mul", "*", checked_mul, "binary"),
    Operator("div", "/", operator.truediv, "binary"),
    Operator("floor_divide", "//", operator.floordiv, "binary"),
    Operator("remainder", "%", operator.mod, "binary"),
    Operator("pow", "**", checked_pow, "binary"),
    Operator("matmul", "@", operator.matmul, "binary"),
    Operator("eq", "==", operator.eq, "compare"),
    Operator("ne", "!=", operator.ne, "compare"),
    Operator("lt", "<", operator.lt, "compare"),
    Operator("le", "<=", operator.le, "compare"),
    Operator("gt", ">", operator.gt, "compare"),
    Operator("ge", ">=", operator.ge, "compare"),
    Operator("in", "in", _in, "membership"),
    Operator("not_in", "not in", _not_in, "membership"),
    Operator("is", "is", operator.is_, "identity"),
    Operator("is_not", "is not", operator.is_not, "identity"),
    Operator("and", "and", _and, "bool"),
    Operator("or", "or", _or, "bool"),
    Operator("neg", "-", operator.neg, "unary"),
    Operator("pos", "+", operator.pos, "unary"),
    Operator("not", "not", operator.not_, "unary"),
)

BY_NAME: dict[str, Operator] = {o.name: o for o in OPERATORS}


def by_symbol(symbol: str, kinds: tuple[str, ...]) -> Operator:
    """The operator of one of ``kinds`` that Python writes ``symbol``."""
    return next(o for o in OPERATORS if o.symbol == symbol and o.kind in kinds)


def names(*kinds: str) -> dict[str, str]:
    """Name -> symbol of the operators of ``kinds``, in table order."""
    return {o.name: o.symbol for o in OPERATORS if o.kind in kinds}


__all__ = ["BY_NAME", "MAX_INT_BITS", "MAX_RANGE", "OPERATORS", "Operator", "by_symbol",
           "checked_mul", "checked_pow", "checked_range", "names"]
