"""Elementwise ops as Triton expressions, and the row operations (reductions along the last
dim) as Triton statements: one table shared by every kernel kind.

An op is fusible when it is in ``UNARY``/``BINARY``/``OTHER`` and every tensor it touches has
a concrete floating-point dtype (bool masks from comparisons are allowed inside a kernel).
Arithmetic runs in f32 (f64 for f64 data) and is rounded to the stored dtype once, on store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gtdsl.ops.operators import BY_NAME as OPERATORS
from gtdsl.ops.operators import names
from gtdsl.types import DT

FLOATS = (DT.F16, DT.BF16, DT.F32, DT.F64)
TL_DTYPE = {DT.F16: "tl.float16", DT.BF16: "tl.bfloat16", DT.F32: "tl.float32",
            DT.F64: "tl.float64", DT.BOOL: "tl.int1"}


def _tanh(a: str) -> str:
    return f"(2.0 * tl.sigmoid(2.0 * {a}) - 1.0)"


UNARY: dict[str, Callable[[str], str]] = {
    "neg": lambda a: f"(-{a})",
    "exp": lambda a: f"tl.exp({a})",
    "exp2": lambda a: f"tl.exp2({a})",
    "log": lambda a: f"tl.log({a})",
    "log2": lambda a: f"tl.log2({a})",
    "sqrt": lambda a: f"tl.sqrt({a})",
    "rsqrt": lambda a: f"tl.rsqrt({a})",
    "abs": lambda a: f"tl.abs({a})",
    "sin": lambda a: f"tl.sin({a})",
    "cos": lambda a: f"tl.cos({a})",
    "erf": lambda a: f"tl.erf({a})",
    "tanh": _tanh,
    "sigmoid": lambda a: f"tl.sigmoid({a})",
    "relu": lambda a: f"tl.maximum({a}, 0.0)",
    "silu": lambda a: f"({a} * tl.sigmoid({a}))",
}
def _infix(name: str) -> Callable[[str, str], str]:
    op = OPERATORS[name]
    return lambda a, b: op.emit(a, b)


# the operator table's arithmetic and comparisons Triton computes as Python writes them
# (floor division, remainder and powers have their own lowerings, or none)
COMPARE = set(names("compare"))
BINARY: dict[str, Callable[[str, str], str]] = {
    **{n: _infix(n) for n in ("add", "sub", "mul", "div", *COMPARE)},
    "maximum": lambda a, b: f"tl.maximum({a}, {b})",
    "minimum": lambda a, b: f"tl.minimum({a}, {b})",
}
OTHER = {"where", "gelu", "pow", "clamp", "to", "logical_and", "logical_or", "logical_not"}
ROW_REDUCE = {"sum", "mean", "amax", "amin"}
POW_EXPONENTS = {2: "({a} * {a})", 3: "({a} * {a} * {a})", 0.5: "tl.sqrt({a})",
                 -1: "(1.0 / {a})", 1: "{a}", -0.5: "tl.rsqrt({a})"}


def elementwise(op: str, args: dict[str, str], lits: dict[str, Any]) -> str | None:
    """The expression for op ``op`` with its tensor/scalar arguments already expressions
    (``args``) and its literal parameters (``lits``); None when not expressible."""
    if op in UNARY:
        return UNARY[op](args["input"])
    if op in BINARY:
        return BINARY[op](args["input"], args["other"])
    if op == "where":
        return f"tl.where({args['condition']}, {args['input']}, {args['other']})"
    if op == "gelu":
        a = args["input"]
        if lits.get("approximate", "none") == "tanh":
            inner = f"0.7978845608028654 * ({a} + 0.044715 * {a} * {a} * {a})"
            return f"(0.5 * {a} * (1.0 + {_tanh(inner)}))"
        return f"(0.5 * {a} * (1.0 + tl.erf({a} * 0.7071067811865476)))"
    if op == "pow":
        e = lits.get("other")
        if isinstance(e, (int, float)) and not isinstance(e, bool) and e in POW_EXPONENTS:
            return POW_EXPONENTS[e].format(a=args["input"])
        return None
    if op == "clamp":
        out = args["input"]
        if "min" in args:
            out = f"tl.maximum({out}, {args['min']})"
        if "max" in args:
            out = f"tl.minimum({out}, {args['max']})"
        return out
    if op == "logical_and":
        return f"(({args['input']} != 0) & ({args['other']} != 0))"
    if op == "logical_or":
        return f"(({args['input']} != 0) | ({args['other']} != 0))"
    if op == "logical_not":
        return f"({args['input']} == 0)"
    if op == "to":
        return args["input"]  # the value is rounded to the stored dtype on store
    return None


def literal(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return "float('inf')" if v > 0 else "float('-inf')"
        return repr(v)
    return repr(v)


__all__ = ["BINARY", "COMPARE", "FLOATS", "OTHER", "ROW_REDUCE", "TL_DTYPE", "UNARY",
           "elementwise", "literal"]
