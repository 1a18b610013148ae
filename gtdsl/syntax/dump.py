"""A readable, span-free dump of an AST, for golden files and ``--emit ast``."""

from __future__ import annotations

import dataclasses
import enum

_WIDTH = 96


def _inline(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, tuple):
        inner = ", ".join(_inline(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [f for f in dataclasses.fields(value) if f.compare]
        args = ", ".join(f"{f.name}={_inline(getattr(value, f.name))}" for f in fields)
        return f"{type(value).__name__}({args})"
    return repr(value)


def dump_ast(node: object, indent: int = 0) -> str:
    """``node`` as nested constructor calls, one field a line where it does not fit in one."""
    flat = _inline(node)
    if len(flat) + indent <= _WIDTH:
        return flat
    pad = "  " * (indent // 2 + 1)
    if isinstance(node, tuple):
        items = [pad + dump_ast(v, indent + 2) + "," for v in node]
        return "(\n" + "\n".join(items) + "\n" + "  " * (indent // 2) + ")"
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        fields = [f for f in dataclasses.fields(node) if f.compare]
        lines = [f"{pad}{f.name}={dump_ast(getattr(node, f.name), indent + 2)}," for f in fields]
        return f"{type(node).__name__}(\n" + "\n".join(lines) + "\n" + "  " * (indent // 2) + ")"
    return flat
