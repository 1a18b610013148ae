"""Runtime values seen as types: the concrete type of a tensor or number, and the ``Arg`` an op
relation takes when it is re-run on concrete metadata.

Also the maps between gtdsl's dtypes and devices and torch's, and the conversion of IR
literals (dtypes, devices, size expressions) to the values torch takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gtdsl.ops.calls import DT_TORCH
from gtdsl.ops import UNKNOWN, Arg
from gtdsl.types import (
    DT, Dev, ScalarKind, Size, TDim, TList, TOther, TScalar, TShape, TTensor, TTuple, Type,
)

TORCH_DT: dict[torch.dtype, DT] = {v: k for k, v in DT_TORCH.items()}
# torch's wider unsigned dtypes belong to gtdsl's `uint` category
for _name in ("uint16", "uint32", "uint64"):
    if hasattr(torch, _name):
        TORCH_DT[getattr(torch, _name)] = DT.UINT


def dtype_of(t: torch.Tensor) -> DT:
    return TORCH_DT.get(t.dtype, DT.ANY)


def device_of(t: torch.Tensor) -> Dev:
    d = t.device
    return Dev(d.type, d.index if d.type == "cuda" else None)


def tensor_type(t: torch.Tensor) -> TTensor:
    return TTensor(dtype_of(t), TShape(None, tuple(TDim(None, Size.of(int(s)))
                                                   for s in t.shape)), device_of(t))


def type_of_value(v: Any) -> Type:
    """The most precise type of a runtime value (what a cast failure reports as received)."""
    if isinstance(v, torch.Tensor):
        return tensor_type(v)
    if isinstance(v, bool):
        return TScalar(ScalarKind.BOOL)
    if isinstance(v, int):
        return TScalar(ScalarKind.INT, Size.of(v))
    if isinstance(v, float):
        return TScalar(ScalarKind.FLOAT)
    if v is None:
        return TOther("none")
    if isinstance(v, tuple):
        return TTuple(tuple(type_of_value(x) for x in v))
    if isinstance(v, list):
        from gtdsl.types import DYN, join

        elem: Type = type_of_value(v[0]) if v else DYN
        for x in v[1:]:
            elem = join(elem, type_of_value(x))
        return TList(elem)
    if isinstance(v, str):
        return TOther("str")
    if isinstance(v, torch.dtype):
        return TOther("dtype")
    if isinstance(v, torch.device):
        return TOther("device")
    if isinstance(v, slice):
        return TOther("slice")
    if v is Ellipsis:
        return TOther("ellipsis")
    return TOther(type(v).__name__)


def describe_value(v: Any) -> str:
    """A short text for a received value: its type when it has one, else its Python type."""
    if _holds_nested(v):  # a ragged tensor has no shape to state
        return "a nested tensor (torch.nested)" if isinstance(v, torch.Tensor) else \
            f"a Python {type(v).__name__} holding a nested tensor (torch.nested)"
    t = type_of_value(v)
    if isinstance(t, TOther) and t.what not in ("none", "str", "dtype", "device"):
        return f"a Python {type(v).__name__}"
    if isinstance(t, TScalar):
        return f"{t.kind.value} {v!r}"
    return str(t)


def _holds_nested(v: Any, depth: int = 0) -> bool:
    if isinstance(v, torch.Tensor):
        return v.is_nested
    if isinstance(v, (list, tuple)) and depth < 8:
        return any(_holds_nested(x, depth + 1) for x in v)
    return False


def arg_of(v: Any, name: str | None = None) -> Arg:
    """The ``Arg`` a relation takes for a concrete value (sizes literal, dtype and device known).

    ``name`` is the parameter: ``rename``'s ``names`` are labels, not strings.
    """
    if name == "names" and isinstance(v, tuple):
        return Arg(TTuple(tuple(TOther("label") for _ in v)),
                   tuple(Arg(TOther("label"), UNKNOWN, label=s) for s in v))
    if isinstance(v, torch.Tensor):
        return Arg(tensor_type(v), UNKNOWN)
    if isinstance(v, (tuple, list)):
        elems = tuple(arg_of(x) for x in v)
        t: Type = TTuple(tuple(a.type for a in elems)) if isinstance(v, tuple) else \
            type_of_value(v)
        return Arg(t, elems)
    if isinstance(v, torch.dtype):
        return Arg(TOther("dtype"), TORCH_DT.get(v, DT.ANY))
    if isinstance(v, (torch.device, str)) and _is_device_text(v):
        d = torch.device(v)
        return Arg(TOther("device"), Dev(d.type, d.index if d.type == "cuda" else None))
    if isinstance(v, slice):
        return Arg(TOther("slice"), (arg_of(v.start), arg_of(v.stop), arg_of(v.step)))
    return Arg(type_of_value(v), v)


def _is_device_text(v: Any) -> bool:
    if isinstance(v, torch.device):
        return True
    try:
        torch.device(v)
    except (RuntimeError, TypeError):
        return False
    return True


def literal(value: Any, sizes: Mapping[str, Any]) -> Any:
    """An IR literal as a runtime value: sizes evaluated from the bindings, dtypes and devices
    as torch's."""
    if isinstance(value, Size):
        c = value.constant()
        return c if c is not None else value.evaluate(sizes)
    if isinstance(value, tuple):
        return tuple(literal(x, sizes) for x in value)
    if isinstance(value, DT):
        return DT_TORCH[value]
    if isinstance(value, Dev):
        return str(value)
    return value
def get_field(value: Any, name: str) -> Any:
    """Field ``name`` of a struct value: a mapping's item or an object's attribute."""
    if isinstance(value, Mapping):
        return value[name]
    return getattr(value, name)


