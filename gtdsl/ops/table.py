"""The op table: one ``OpDef`` per op, keyed by name, and argument binding.

Each entry holds the op's signature (torch's parameter names and order), its type relation,
and the torch callable that implements it (``torch.sum``, ``F.gelu``, ``Tensor.to``), which
the reference interpreter and the torch backend use. Families register their ops here with
``define``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gtdsl._records import record
from gtdsl.ops.base import Arg, OpError, Rel
from gtdsl.types import TDyn, TList, TOther, TTuple, Type

REQUIRED = object()


@record
class Param:
    name: str
    default: object = REQUIRED
    variadic: bool = False  # ``*sizes``: takes the remaining positional arguments
    keyword_only: bool = False


Relation = Callable[[Rel, dict[str, Arg]], Type]


@record
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


_LITERALS: dict[str, Any] = {}  # a default's text -> its value (immutable: shared)


def _literal(text: str) -> Any:
    """A default's value, each text evaluated once (the catalogue repeats a few dozen)."""
    if text not in _LITERALS:
        value = eval(text, {"__builtins__": {}})  # noqa: S307 (the catalogue's own text)
        if value.__class__.__hash__ is None:
            raise ValueError(f"a default must be immutable, got {text}")
        _LITERALS[text] = value
    return _LITERALS[text]


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
            out.append(Param(name.strip(), _literal(default.strip()), keyword_only=kw_only))
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
    if not kwargs:  # most calls: positional arguments only
        plan = _positional_plan(op, len(args))
        if plan is not None:
            bound = dict(zip(plan[0], args))
            bound.update(plan[1])
            return bound
    bound = {}
    params = op.params
    n = len(args)
    i = 0  # the next positional argument
    for p in params:
        if p.variadic:
            rest = tuple(args[i:])
            i = n
            if len(rest) == 1 and (isinstance(rest[0].value, tuple) or isinstance(
                    rest[0].type, (TTuple, TList, TDyn))):  # the sequence itself
                bound[p.name] = rest[0]
            else:
                bound[p.name] = Arg(TTuple(tuple(a.type for a in rest)), rest)
            continue
        if i < n and not p.keyword_only:
            bound[p.name] = args[i]
            i += 1
    if i < n:
        raise OpError("GT2013", f"`{op.name}` takes at most {len(bound)} positional "
                      f"arguments, got {len(args)}", None, f"the signature is {op.signature()}")
    for name, arg in kwargs.items():
        for p in params:
            if p.name == name and not p.variadic:
                break
        else:
            raise OpError("GT2013", f"`{op.name}` has no parameter `{name}`", name,
                          f"the signature is {op.signature()}")
        if name in bound:
            raise OpError("GT2013", f"`{op.name}` got `{name}` twice", name)
        bound[name] = arg
    if len(bound) < len(params):
        for p in params:
            if p.name in bound:
                continue
            if p.default is REQUIRED:
                raise OpError("GT2013", f"`{op.name}` is missing its argument `{p.name}`",
                              None, f"the signature is {op.signature()}")
            bound[p.name] = _default_of(p)
    return bound


def _positional_plan(op: OpDef, n: int) -> tuple[tuple[str, ...], dict[str, Arg]] | None:
    """For ``n`` positional arguments and no keywords, when that binds without error and
    without a variadic parameter: the parameters they bind, and the defaults of the rest
    (in parameter order, as ``bind`` fills them). Made once per op and count."""
    entry = _PLANS.get((id(op), n))
    if entry is not None and entry[0] is op:
        return entry[1]
    params = op.params
    names = tuple(p.name for p in params)
    plan = None
    if (n <= len(params) and len(set(names)) == len(names)
            and not any(p.variadic or p.keyword_only for p in params[:n])
            and not any(p.variadic or p.default is REQUIRED for p in params[n:])):
        plan = names[:n], {p.name: _default_of(p) for p in params[n:]}
    if len(_PLANS) >= 4096:
        _PLANS.clear()
    _PLANS[id(op), n] = (op, plan)  # the entry keeps `op` alive: its id is not reused
    return plan


_PLANS: dict[tuple[int, int], tuple[OpDef, tuple[tuple[str, ...], dict[str, Arg]] | None]] = {}


def positional_names(op: OpDef) -> tuple[str, ...]:
    """The parameters positional arguments bind, in order (those not keyword-only); () when
    one is variadic, whose arguments ``bind`` gathers. Made once per op."""
    found = _POSITIONAL.get(op.name)
    if found is None or found[0] is not op:
        names = () if any(p.variadic for p in op.params) else tuple(
            p.name for p in op.params if not p.keyword_only)
        found = _POSITIONAL[op.name] = (op, names)
    return found[1]


_POSITIONAL: dict[str, tuple[OpDef, tuple[str, ...]]] = {}


# Each parameter's default as an Arg, made once: Args are immutable, and most calls leave
# some parameters to their defaults. Keyed by the Param's identity (kept alive by the entry,
# so its id is not reused); bounded all the same.
_DEFAULTS: dict[int, tuple[Param, Arg]] = {}


def _default_of(p: Param) -> Arg:
    entry = _DEFAULTS.get(id(p))
    if entry is not None and entry[0] is p:
        return entry[1]
    arg = default_arg(p.default)
    if len(_DEFAULTS) >= 4096:
        _DEFAULTS.clear()
    _DEFAULTS[id(p)] = (p, arg)
    return arg


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
