"""The fields of an instance, as struct declarations: what a jitted method's ``self`` is when
its class declares no field types (``gtdsl.check.methods``).

Input: an object (an ``nn.Module`` or any object with attributes). Output: its key (the
structure a compiled method is specialised on) and the struct declarations that type it.
Fields: an ``nn.Module``'s parameters, buffers and submodules, and, for any object, its public
attributes that are tensors or numbers (``self.eps``, ``self.n_heads``, ``self.training``).
A tensor field has its dtype and rank, with unknown sizes (checked where they are used); a
submodule is a struct of its own; an ``nn.ModuleList`` or ``nn.Sequential`` whose elements
have one structure is a list of it (one of several structures is left out: the method cannot
use it). Attributes whose names start with ``_`` and other values are left out.
"""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.syntax import ast

_DTYPES: dict[torch.dtype, ast.DType] = {
    torch.float16: ast.DType.F16, torch.bfloat16: ast.DType.BF16,
    torch.float32: ast.DType.F32, torch.float64: ast.DType.F64,
    torch.int8: ast.DType.I8, torch.int16: ast.DType.I16, torch.int32: ast.DType.I32,
    torch.int64: ast.DType.I64, torch.uint8: ast.DType.U8, torch.bool: ast.DType.BOOL,
    torch.complex64: ast.DType.C64, torch.complex128: ast.DType.C128,
}
_MAX_DEPTH = 64  # submodules nested deeper than this are left out
_LISTS = (torch.nn.ModuleList, torch.nn.Sequential)


def _fields(obj: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    if isinstance(obj, torch.nn.Module):
        for table in (obj._parameters, obj._buffers, obj._modules):
            for name, value in table.items():
                if value is not None and name.isidentifier() and not name.startswith("_"):
                    out.append((name, value))
                    seen.add(name)
    try:
        attrs = vars(obj)
    except TypeError:  # no __dict__ (slots, builtins)
        attrs = {}
    for name, value in attrs.items():
        if name in seen or name.startswith("_") or not name.isidentifier():
            continue
        if isinstance(value, torch.Tensor) or type(value) in (int, float, bool):
            out.append((name, value))
    return out


def instance_key(obj: Any, depth: int = 0) -> tuple:
    """What a method compiled for ``obj`` depends on: its class, and each field's name and
    kind (a tensor's dtype and rank, a number's type, a submodule's key)."""
    fields: list[tuple] = []
    for name, value in _fields(obj):
        if isinstance(value, torch.Tensor):
            fields.append((name, value.dtype, value.dim()))
        elif type(value) in (int, float, bool):
            fields.append((name, type(value)))
        elif depth < _MAX_DEPTH and isinstance(value, _LISTS):
            elems = {instance_key(v, depth + 1) for v in value}
            if len(elems) == 1:
                fields.append((name, list, elems.pop()))
        elif depth < _MAX_DEPTH and isinstance(value, torch.nn.Module):
            fields.append((name, instance_key(value, depth + 1)))
    return (type(obj), tuple(fields))


def instance_structs(obj: Any) -> list[ast.StructDef]:
    """The struct declarations typing ``obj``: its own first, then its submodules'."""
    out: list[ast.StructDef] = []
    names: dict[tuple, str] = {}
    _struct(obj, instance_key(obj), out, names, 0)
    return out


def _struct(obj: Any, key: tuple, out: list[ast.StructDef], names: dict[tuple, str],
            depth: int) -> str:
    found = names.get(key)
    if found is not None:
        return found
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in type(obj).__name__) or "S"
    if not base[0].isalpha():
        base = "S" + base
    name, n = base, 1
    while name in names.values():
        n += 1
        name = f"{base}_{n}"
    names[key] = name
    slot = len(out)
    out.append(ast.StructDef(name, (), ()))  # its place: the instance's own struct is first
    fields: list[ast.Field] = []
    keys = dict((k[0], k) for k in key[1])
    for fname, value in _fields(obj):
        k = keys.get(fname)
        if k is None:
            continue
        t: ast.TypeExpr | None = None
        if isinstance(value, torch.Tensor):
            dims = tuple(ast.Dim(None, None) for _ in range(value.dim()))
            t = ast.TensorType(_DTYPES.get(value.dtype), ast.Shape(None, dims), None)
        elif type(value) in (int, float, bool):
            t = ast.ScalarType(ast.SCALAR_NAMES[type(value).__name__])
        elif isinstance(value, _LISTS):
            first = next(iter(value))
            t = ast.ListType(ast.StructType(_struct(first, k[2], out, names, depth + 1), ()))
        elif isinstance(value, torch.nn.Module):
            t = ast.StructType(_struct(value, k[1], out, names, depth + 1), ())
        if t is not None:
            fields.append(ast.Field(fname, t))
    out[slot] = ast.StructDef(name, (), tuple(fields))
    return name
