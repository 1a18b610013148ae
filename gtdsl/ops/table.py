"""The op table: one ``OpDef`` per op, keyed by name, and argument binding.

Each entry holds the op's signature (torch's parameter names and order), its type relation,
and the torch callable that implements it (``torch.sum``, ``F.gelu``, ``Tensor.to``), which
the reference interpreter and the torch backend use. Families register their ops here with
``define``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gtdsl.ops.base import Arg, OpError, Rel
from gtdsl.types import TDyn, TList, TOther, TTuple, Type

REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: object = REQUIRED
    variadic: bool = False  # ``*sizes``: takes the remaining positional arguments
    keyword_only: bool = False


Relation = Callable[[Rel, dict[str, Arg]], Type]


@dataclass(frozen=True, slots=True)
class OpDef:
    name: str
    params: tuple[Param, ...]
    relation: Relation
    torch: str
    family: str
    method: bool = True  # callable as ``x.name(...)`` with ``x`` as the first argument

    def signature(self) -> str:
        parts = []
        star = False
        for p in self.params:
            if p.keyword_only and not star:
                parts.append("*")
                star = True
            text = ("*" if p.variadic else "") + p.name
            if p.default is not REQUIRED:
                text += f"={p.default!r}"
            parts.append(text)
        return f"{self.name}({', '.join(parts)})"


OPS: dict[str, OpDef] = {}


def parse_params(spec: str) -> tuple[Param, ...]:
    """``"x, dim=None, *, keepdim=False"`` to Params (defaults are Python literals)."""
    out: list[Param] = []
    kw_only = False
    for raw in (p.strip() for p in spec.split(",") if p.strip()):
        if raw == "*":
            kw_only = True
            continue
        if raw.startswith("*"):
            out.append(Param(raw[1:], (), variadic=True))
            kw_only = True
            continue
        if "=" in raw:
            name, default = raw.split("=", 1)
            out.append(Param(name.strip(), eval(default, {"__builtins__": {}}),  # noqa: S307
                             keyword_only=kw_only))
        else:
            out.append(Param(raw, keyword_only=kw_only))
    return tuple(out)


def define(names: str | Sequence[str], params: str, torch: str | Sequence[str], family: str,
           method: bool = True) -> Callable[[Relation], Relation]:
    """Register ``relation`` under each name; ``torch`` is one path or one per name."""
    names = [names] if isinstance(names, str) else list(names)
    torches = [torch] * len(names) if isinstance(torch, str) else list(torch)

    def register(relation: Relation) -> Relation:
        for name, path in zip(names, torches):
            if name in OPS:
                raise ValueError(f"op {name} defined twice")
            OPS[name] = OpDef(name, parse_params(params), relation,
                              path.replace("{name}", name), family, method)
        return relation

    return register


def bind(op: OpDef, args: Sequence[Arg], kwargs: dict[str, Arg]) -> dict[str, Arg]:
    """Match call arguments to the op's parameters, filling defaults."""
    bound: dict[str, Arg] = {}
    positional = list(args)
    for p in op.params:
        if p.variadic:
            rest = tuple(positional)
            positional = []
            if len(rest) == 1 and (isinstance(rest[0].value, tuple) or isinstance(
                    rest[0].type, (TTuple, TList, TDyn))):  # the sequence itself
                bound[p.name] = rest[0]
            else:
                bound[p.name] = Arg(TTuple(tuple(a.type for a in rest)), rest)
            continue
        if positional and not p.keyword_only:
            bound[p.name] = positional.pop(0)
    if positional:
        raise OpError("GT2013", f"`{op.name}` takes at most {len(bound)} positional "
                      f"arguments, got {len(args)}", None, f"the signature is {op.signature()}")
    for name, arg in kwargs.items():
        param = next((p for p in op.params if p.name == name and not p.variadic), None)
        if param is None:
            raise OpError("GT2013", f"`{op.name}` has no parameter `{name}`", name,
                          f"the signature is {op.signature()}")
        if name in bound:
            raise OpError("GT2013", f"`{op.name}` got `{name}` twice", name)
        bound[name] = arg
    for p in op.params:
        if p.name in bound:
            continue
        if p.default is REQUIRED:
            raise OpError("GT2013", f"`{op.name}` is missing its argument `{p.name}`", None,
                          f"the signature is {op.signature()}")
        bound[p.name] = default_arg(p.default)
    return bound


def default_arg(value: object) -> Arg:
    from gtdsl.types import ScalarKind, Size, TScalar

    if value is None:
        return Arg(TOther("none"), None)
    if isinstance(value, bool):
        return Arg(TScalar(ScalarKind.BOOL), value)
    if isinstance(value, int):
        return Arg(TScalar(ScalarKind.INT, Size.of(value)), value)
    if isinstance(value, float):
        return Arg(TScalar(ScalarKind.FLOAT), value)
    if isinstance(value, str):
        return Arg(TOther("str"), value)
    if isinstance(value, tuple):
        return Arg(TTuple(()), ())
    raise TypeError(value)
