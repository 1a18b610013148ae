"""A readable, span-free dump of an AST, for golden files and ``--emit ast``."""

from __future__ import annotations

import enum

from gtdsl._records import is_record, record_fields

_WIDTH = 96


def _compared(value: object) -> list[str] | None:
    """The names of the compared fields of a record (or dataclass) instance, else None."""
    if isinstance(value, type):
        return None
    if is_record(value):
        return [f.name for f in record_fields(value) if f.compare]
    if hasattr(type(value), "__dataclass_fields__"):
        import dataclasses

        return [f.name for f in dataclasses.fields(value) if f.compare]  # type: ignore[arg-type]
    return None


def _inline(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, tuple):
        inner = ", ".join(_inline(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    names = _compared(value)
    if names is not None:
        args = ", ".join(f"{name}={_inline(getattr(value, name))}" for name in names)
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
    names = _compared(node)
    if names is not None:
        lines = [f"{pad}{name}={dump_ast(getattr(node, name), indent + 2)}," for name in names]
        return f"{type(node).__name__}(\n" + "\n".join(lines) + "\n" + "  " * (indent // 2) + ")"
    return flat
