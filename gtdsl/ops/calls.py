"""How each catalogue op is called on torch: the callable its ``OpDef.torch`` path names and
which arguments go by position or keyword.

Required and variadic parameters go by position, in torch's order; an optional parameter is
passed by keyword, and only when its value differs from the default, so torch's overloads
(``torch.max(x)`` against ``torch.max(x, dim)``) see the call the user wrote. One plan serves
the reference interpreter and the generated code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.ops.operators import BY_NAME, names
from gtdsl.ops.table import OPS, REQUIRED, OpDef
from gtdsl.types import DT

DT_TORCH: dict[DT, torch.dtype] = {
    DT.F16: torch.float16, DT.BF16: torch.bfloat16, DT.F32: torch.float32,
    DT.F64: torch.float64, DT.I8: torch.int8, DT.I16: torch.int16, DT.I32: torch.int32,
    DT.I64: torch.int64, DT.U8: torch.uint8, DT.BOOL: torch.bool, DT.C32: torch.complex32,
    DT.C64: torch.complex64, DT.C128: torch.complex128,
}
if hasattr(torch, "bcomplex32"):  # torch 2.14: the complex of bf16
    DT_TORCH[DT.BC32] = torch.bcomplex32


# Where torch's keyword differs from the catalogue's parameter name.
KEYWORD_NAMES: dict[str, dict[str, str]] = {"norm": {"p": "ord"}}


@dataclass(frozen=True, slots=True)
class CallPlan:
    op: str
    kind: str  # "function" | "method" | "getitem" | "identity" | "attribute"
    target: str  # the function path, or the method / attribute name
    positional: tuple[str, ...]  # parameter names passed by position
    optional: tuple[tuple[str, Any], ...]  # (torch keyword, default): passed when not default
    params: tuple[str, ...] = ()  # the catalogue names of ``optional``, in the same order

    def values_of(self, values: dict[str, Any]) -> list[Any]:
        return [values[n] for n in self.params]


def _plan(op: OpDef) -> CallPlan:
    plan = _plan0(op)
    names = tuple(p.name for p in op.params if p.default is not REQUIRED and not p.variadic)
    return CallPlan(plan.op, plan.kind, plan.target, plan.positional, plan.optional,
                    names if plan.optional else ())


# Arithmetic and comparisons are Python's operators: torch's semantics on tensors, Python's
# on two numbers (``n * 2`` of two sizes stays an int; torch.mul would reject it).
BINARY = names("binary", "compare")


def _plan0(op: OpDef) -> CallPlan:
    path = op.torch
    if op.name in BINARY:
        return CallPlan(op.name, "binary", BINARY[op.name], ("input", "other"), ())
    if op.name == "neg":
        return CallPlan(op.name, "negate", "-", ("input",), ())
    positional = tuple(p.name for p in op.params if p.default is REQUIRED or p.variadic)
    optional = tuple((p.name, p.default) for p in op.params
                     if p.default is not REQUIRED and not p.variadic)
    optional = tuple((KEYWORD_NAMES.get(op.name, {}).get(n, n), d) for n, d in optional)
    if path == "operator.getitem":
        return CallPlan(op.name, "getitem", path, positional, optional)
    if path == "gtdsl.rename":  # labels are static names: nothing happens at run time
        return CallPlan(op.name, "identity", path, positional[:1], ())
    if path == "Tensor.T":
        return CallPlan(op.name, "attribute", "T", positional, optional)
    if path.startswith("Tensor."):
        return CallPlan(op.name, "method", path[len("Tensor."):], positional, optional)
    return CallPlan(op.name, "function", path, positional, optional)


PLANS: dict[str, CallPlan] = {name: _plan(op) for name, op in OPS.items()}


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def is_default(value: Any, default: Any) -> bool:
    if isinstance(value, torch.Tensor) or isinstance(default, torch.Tensor):
        return False
    if default is None or value is None:
        return value is default
    return type(value) is type(default) and value == default


def call_op(name: str, values: dict[str, Any]) -> Any:
    """Run op ``name`` on torch with its arguments by parameter name (the interpreter's way)."""
    plan = PLANS[name]
    pos = [values[p] for p in plan.positional]
    kw = {k: v for (k, d), v in zip(plan.optional, plan.values_of(values))
          if not is_default(v, d)}
    if plan.kind == "binary":
        return BY_NAME[plan.op].fn(pos[0], pos[1])
    if plan.kind == "negate":
        return -pos[0]
    if plan.kind == "identity":
        return pos[0]
    if plan.kind == "getitem":
        return pos[0][pos[1]]
    if plan.kind == "attribute":
        return getattr(pos[0], plan.target)
    if plan.kind == "method":
        return getattr(pos[0], plan.target)(*pos[1:], **kw)
    return _callable(plan.target)(*pos, **kw)


_CALLABLES: dict[str, Callable[..., Any]] = {}


def _callable(path: str) -> Callable[..., Any]:
    fn = _CALLABLES.get(path)
    if fn is None:
        fn = _CALLABLES[path] = resolve(path)
    return fn
