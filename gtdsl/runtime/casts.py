"""Runtime casts, the reference version: does a value belong to a type, given the size
bindings so far? Binds what is unbound, never converts (docs/runtime.md, "What is checked
when").

The order is the one that section states: is it a tensor, device, dtype, rank, then sizes (first
bind unbound variables, then compare literals, bound variables and expressions); labels never.
A failure is a ``Mismatch`` saying which part differs and why. The generated entry checks
(``gtdsl.runtime.entry``) are the fast path; on any failure they call this to explain it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import torch

from gtdsl.types import (
    DT, Dev, ScalarKind, Size, TDyn, TList, TOther, TScalar, TStruct, TTensor, TTuple,
    Type,
)
from gtdsl.types.lattice import dt_leq
from gtdsl.types.sizes import size_str

from gtdsl.runtime.values import describe_value, dtype_of


@dataclass
class Bindings:
    """Size and row variables bound so far, and where each was bound (for messages)."""

    sizes: dict[str, int] = field(default_factory=dict)
    rows: dict[str, tuple[int, ...]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    # The call's device: at a function's entry, every tensor whose type names no device is on
    # the device of the first such tensor (None: not bound yet, or not an entry check).
    device: torch.device | None = None

    def copy(self) -> Bindings:
        return Bindings(dict(self.sizes), dict(self.rows), dict(self.where), self.device)

    def describe(self, where: bool = True) -> str:
        """``n=3 (x dim 0), ...``; without ``where``, sorted by name and bare."""
        if not where:
            parts = [f"{k}={v}" for k, v in sorted(self.sizes.items()) if not k.startswith("#")]
            parts += [f"*{k}={_row(v)}" for k, v in sorted(self.rows.items())]
            return ", ".join(parts)
        parts = [f"{k}={v}" + (f" ({self.where[k]})" if k in self.where else "")
                 for k, v in self.sizes.items() if not k.startswith("#")]
        parts += [f"*{k}={_row(v)}" + (
            f" ({self.where['*' + k]})" if "*" + k in self.where else "")
            for k, v in self.rows.items()]
        return ", ".join(parts)


@dataclass(frozen=True)
class Mismatch:
    """Where a value departs from a type: ``path`` within the value (``dim 2 (`hidden`)``,
    ``field `weight```), what was expected and what was found."""

    path: str
    expected: str
    got: str
    reason: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        why = f" ({self.reason})" if self.reason else ""
        return f"{where}expected {self.expected}, got {self.got}{why}"


StructLookup = Callable[[str], Any]  # struct name -> its ir.StructDecl, or None


def _row(sizes: Any) -> str:
    """A row's sizes as Python writes a tuple: ``(4,)``, ``(2, 3)``, ``()``."""
    return str(tuple(int(n) for n in sizes))


class CastFailed(Exception):
    def __init__(self, mismatch: Mismatch) -> None:
        super().__init__(str(mismatch))
        self.mismatch = mismatch


def check_value(value: Any, t: Type, b: Bindings, what: str = "",
                structs: StructLookup | None = None, owner: str = "",
                entry: bool = False) -> None:
    """Raise ``CastFailed`` unless ``value`` belongs to ``t``; bind new variables in ``b``.

    Equations that mention a variable bound nowhere yet are solved when linear in it
    (``n + 1`` against 5 binds n = 4); sizes that cannot be solved are compared once bound.
    """
    pending = _Pending()
    pending.entry_owner = owner if entry else None
    before = set(b.where)
    try:
        _check(value, t, b, what, structs, pending)
        _finish(b, pending)
    finally:  # bindings made here say whose dims bound them ("x dim 0"), failing or not
        if owner:
            for k in set(b.where) - before:
                b.where[k] = owned(owner, b.where[k])


def owned(owner: str, path: str) -> str:
    """``path`` inside the value named ``owner``: ``x dim 0``, and a struct's fields as
    attributes: ``field `weight`, dim 0`` of ``self`` is ```self.weight`, dim 0``."""
    names: list[str] = []
    rest = path
    while rest.startswith("field `"):
        end = rest.find("`", 7)
        if end < 0:
            break
        names.append(rest[7:end])
        rest = rest[end + 1:]
        rest = rest[2:] if rest.startswith(", ") else rest
    if not names:
        return f"{owner} {path}" if path else owner
    head = "`" + ".".join([owner, *names]) + "`"
    return f"{head}, {rest}" if rest else head


class _Pending(list[tuple[Size, int, str]]):
    """Equations left for the end of a check; also says whether this is an entry check (and
    of which parameter), where tensors without a device must share the call's device."""

    entry_owner: str | None = None


def _fail(path: str, expected: str, got: str, reason: str = "") -> NoReturn:
    raise CastFailed(Mismatch(path, expected, got, reason))


def _check(value: Any, t: Type, b: Bindings, path: str, structs: StructLookup | None,
           pending: _Pending) -> None:
    if isinstance(t, TDyn):
        return
    if isinstance(t, TTensor):
        _check_tensor(value, t, b, path, pending)
    elif isinstance(t, TScalar):
        _check_scalar(value, t, b, path, pending)
    elif isinstance(t, TTuple):
        if not isinstance(value, TUPLES) or len(value) != len(t.elems):
            _fail(path, str(t), describe_value(value))
        for i, (v, et) in enumerate(zip(value, t.elems)):
            _check(v, et, b, _join(path, f"element {i}"), structs, pending)
    elif isinstance(t, TList):
        if not isinstance(value, LISTS):
            _fail(path, str(t), describe_value(value), "not a list")
        for i, v in enumerate(value):
            _check(v, t.elem, b, _join(path, f"element {i}"), structs, pending)
    elif isinstance(t, TStruct):
        _check_struct(value, t, b, path, structs, pending)
    elif isinstance(t, TOther):
        ok = {"none": value is None, "str": isinstance(value, str),
              "dtype": isinstance(value, torch.dtype),
              "device": isinstance(value, (torch.device, str))}.get(t.what, True)
        if not ok:
            _fail(path, str(t), describe_value(value))


# what a list type holds: lists and tuples, and torch's lists of modules (a method's
# ``self.layers``)
LISTS = (list, tuple, torch.nn.ModuleList, torch.nn.Sequential)
# what a tuple type holds: tuples, and torch's lists of modules of several structures
TUPLES = (tuple, torch.nn.ModuleList, torch.nn.Sequential)


def _join(path: str, part: str) -> str:
    return f"{path}, {part}" if path else part


def _check_tensor(value: Any, t: TTensor, b: Bindings, path: str, pending: _Pending) -> None:
    if not isinstance(value, torch.Tensor):
        _fail(path, f"a tensor {t}", describe_value(value), "not a tensor")
    if value.is_nested:  # its ragged dims have no size; torch cannot even report its shape
        _fail(path, f"a tensor {t}", f"a nested tensor (torch.nested) of {value.dim()} dims",
              "nested tensors are not taken: pad them to one length (to_padded_tensor)")
    dev = t.device
    if dev.kind is not None:
        on = value.device
        if on.type != dev.kind or (dev.index is not None and on.index != dev.index):
            _fail(_join(path, "device"), str(dev), str(on))
    elif pending.entry_owner is not None:
        if b.device is None:
            b.device = value.device
            b.where["@"] = _join(pending.entry_owner, path) if path else pending.entry_owner
        elif value.device != b.device:
            _fail(_join(path, "device"), f"{b.device} (the call's device, from "
                  f"`{b.where.get('@', '?')}`)", str(value.device),
                  "tensors whose type names no device share one")
    if t.dtype is not DT.ANY:
        got = dtype_of(value)
        if not dt_leq(got, t.dtype):
            _fail(_join(path, "dtype"), str(t.dtype), str(got) if got is not DT.ANY else
                  str(value.dtype))
    shape = tuple(int(s) for s in value.shape)
    dims = t.shape.dims
    k = len(dims)
    if t.shape.row is None and len(shape) != k:
        _fail(_join(path, "rank"), str(k), f"{len(shape)} (shape {list(shape)})")
    if t.shape.row is not None and len(shape) < k:
        _fail(_join(path, "rank"), f"at least {k}", f"{len(shape)} (shape {list(shape)})")
    lead = shape[:len(shape) - k]
    row = t.shape.row
    if row is not None and row.name is not None:
        if row.name in b.rows:
            if b.rows[row.name] != lead:
                by = b.where.get("*" + row.name)
                _fail(_join(path, f"leading dims `*{row.name}`"), str(tuple(b.rows[row.name])),
                      str(tuple(lead)), f"*{row.name} was bound by {by}" if by else "")
        else:
            b.rows[row.name] = lead
            b.where["*" + row.name] = _join(path, f"dims 0..{len(lead) - 1}" if lead else
                                            "no leading dims")
    for i, (d, n) in enumerate(zip(dims, shape[len(lead):])):
        if d.size is None:
            continue
        pos = len(lead) + i
        where = _join(path, f"dim {pos}" + (f" (`{d.label}`)" if d.label else ""))
        _size(d.size, n, b, where, pending)


def _size(s: Size, n: int, b: Bindings, where: str, pending: _Pending) -> None:
    c = s.constant()
    if c is not None:
        if c != n:
            _fail(where, str(c), str(n))
        return
    free = [v for v in s.variables() if v not in b.sizes]
    if not free:
        _compare(s, n, b, where)
        return
    if len(free) == 1 and s == Size.of(free[0]):
        b.sizes[free[0]] = n
        b.where[free[0]] = where
        return
    pending.append((s, n, where))


def _compare(s: Size, n: int, b: Bindings, where: str) -> None:
    got = s.evaluate(b.sizes)
    if got != n:
        bound = ", ".join(f"{v}={b.sizes[v]}" for v in sorted(s.variables()))
        if s.variables() and s == Size.of(next(iter(s.variables()))):
            v = next(iter(s.variables()))
            _fail(where, str(got), str(n), f"`{v}` = {got}, bound by {b.where[v]}"
                  if v in b.where else f"`{v}` = {got}")
        _fail(where, f"{got} ({size_str(s)} with {bound})" if got is not None else
              size_str(s), str(n))


def _finish(b: Bindings, pending: _Pending) -> None:
    """Solve what is left: bind linear one-variable equations, then compare everything."""
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            s, n, where = item
            free = [v for v in s.variables() if v not in b.sizes]
            if not free:
                pending.remove(item)
                _compare(s, n, b, where)
                progress = True
            elif len(free) == 1:
                # the bound variables as numbers: `heads*k` with heads=3 is linear in k
                known = s.substitute(lambda v: Size.of(b.sizes[v]) if v in b.sizes else None)
                lin = known.linear_coefficient(free[0])
                if lin is None:
                    continue
                coef, rest = lin
                r = rest.evaluate(b.sizes) if not (rest.variables() - b.sizes.keys()) else None
                if r is None or coef == 0 or (n - r) % coef or (n - r) // coef < 0:
                    _fail(where, size_str(s), str(n), f"no size {free[0]} makes them equal")
                b.sizes[free[0]] = (n - r) // coef
                b.where[free[0]] = where
                pending.remove(item)
                progress = True
    for s, n, where in pending:
        free = sorted(v for v in s.variables() if v not in b.sizes)
        _fail(where, size_str(s), str(n), "no argument determines " + ", ".join(
            f"`{v}`" for v in free) + "; give " + ("it" if len(free) == 1 else "them") +
            " by keyword: " + ", ".join(f"{v}=..." for v in free))


def scalar_args(params: Any, args: Any) -> Any:
    """``args`` with each value for an ``int``, ``float`` or ``bool`` parameter that is a
    numpy scalar or a 0-dim tensor as the Python number it holds (``np.float32(0.5)``,
    ``torch.tensor(3)``); a 0-dim tensor that requires grad is left as it is (its gradient
    would be lost: the check refuses it and says so)."""
    out = None
    for i, ((_, t), v) in enumerate(zip(params, args)):
        if not isinstance(t, TScalar) or v.__class__ in (int, float, bool):
            continue
        n = as_python_number(v, t.kind)
        if n is not None:
            if out is None:
                out = list(args)
            out[i] = n
    return args if out is None else tuple(out)


def as_python_number(v: Any, kind: ScalarKind) -> int | float | bool | None:
    """``v`` (a numpy scalar or a 0-dim tensor) as a Python number of ``kind``; None when it
    is neither, holds another kind (a float for an int), or is a tensor that requires grad."""
    if isinstance(v, torch.Tensor):
        if v.dim() != 0 or v.requires_grad or v.is_complex():
            return None
        dt = v.dtype
        if kind is ScalarKind.BOOL:
            return bool(v.item()) if dt is torch.bool else None
        if dt is torch.bool or (kind is ScalarKind.INT and dt.is_floating_point):
            return None
        item = v.item()
        return float(item) if kind is ScalarKind.FLOAT else int(item)
    if type(v).__module__ != "numpy" or getattr(v, "ndim", None) != 0:
        return None
    import numbers

    if kind is ScalarKind.BOOL:
        return bool(v) if type(v).__name__ in ("bool_", "bool") else None
    if type(v).__name__ in ("bool_", "bool"):
        return None
    if isinstance(v, numbers.Integral):
        return int(v) if kind is ScalarKind.INT else float(v)
    if isinstance(v, numbers.Real) and kind is ScalarKind.FLOAT:
        return float(v)
    return None


def _check_scalar(value: Any, t: TScalar, b: Bindings, path: str, pending: _Pending) -> None:
    if t.kind is ScalarKind.BOOL:
        ok = isinstance(value, bool)
    elif t.kind is ScalarKind.INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.requires_grad:
            _fail(path, t.kind.value, describe_value(value), "a 0-dim tensor that requires "
                  "grad: as a Python number its gradient would be lost; declare the "
                  f"parameter {describe_value(value).split(' @')[0]} to keep it")
        _fail(path, t.kind.value, describe_value(value))
    if t.kind is ScalarKind.INT and t.value is not None:
        _size(t.value, value, b, path or "value", pending)


def _check_struct(value: Any, t: TStruct, b: Bindings, path: str,
                  structs: StructLookup | None, pending: _Pending) -> None:
    from gtdsl.types.subst import KEEP, substitute

    info = structs(t.name) if structs is not None else None
    if info is None:
        return
    env: dict[str, Size] = {}
    for p, a in zip(info.params, t.args):
        # an unknown struct argument is a fresh variable, bound by the first field using it
        env[p] = a if a is not None else Size.of(f"#{path}.{p}")
    for name, ft in info.field_types().items():
        if isinstance(value, Mapping):
            if name not in value:
                _fail(_join(path, f"field `{name}`"), "a value", "nothing", "missing")
            fv = value[name]
        else:
            if not hasattr(value, name):
                _fail(_join(path, f"field `{name}`"), "a value", "nothing",
                      f"{describe_value(value)} has no attribute `{name}`")
            fv = getattr(value, name)
        field_t = substitute(ft, lambda v: env.get(v, KEEP), rows={})
        _check(fv, field_t, b, _join(path, f"field `{name}`"), structs, pending)


__all__ = ["Bindings", "CastFailed", "Mismatch", "check_value", "Dev"]
