"""Gradual types: values, and precision, consistency, meet and join (docs/types.md, "What is
checked, and when"; docs/language.md, "What types mean (the design)").

A tensor type is a product of a dtype node, a shape and a device node, and each relation is
componentwise. Shapes have at most one leading variadic part: ``...`` (unknown dims) or a
row variable ``*b``. ``TDyn`` is ``?``, the fully unknown value, and records why it is
unknown so that errors do not cascade.

``meet`` returns the type denoting the intersection together with the size equations that
must hold for it to be exact (equations the solver answers UNKNOWN); it returns None when
the intersection is empty for every assignment.
"""

from __future__ import annotations

import enum
from typing import TypeVar, Union

from gtdsl._records import field, record
from gtdsl.types.lattice import (
    ANY_DEVICE, DT, Dev, dev_join, dev_leq, dev_meet, dt_join, dt_leq, dt_meet,
)
from gtdsl.types.sizes import Size, Verdict, decide, size_str


class DynReason(enum.Enum):
    UNANNOTATED = "unannotated"
    EXPLICIT = "written `?`"
    ERROR = "an earlier error"
    EXTERN = "result of an unchecked import"
    INFERRED = "not known statically"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


@record
class TDim:
    label: str | None = None
    size: Size | None = None

    def __str__(self) -> str:
        if self.label is None:
            return size_str(self.size)
        if self.size is not None and self.size == Size.of(self.label):
            return self.label
        return f"{self.label}={size_str(self.size)}"


@record
class Row:
    """A leading variadic part: a row variable ``*name``, or ``...`` when name is None."""

    name: str | None = None

    def __str__(self) -> str:
        return "..." if self.name is None else f"*{self.name}"


DOTS = Row(None)


@record
class TShape:
    row: Row | None
    dims: tuple[TDim, ...]

    @property
    def fixed(self) -> bool:
        return self.row is None

    @property
    def rank(self) -> int | None:
        return len(self.dims) if self.row is None else None

    def __str__(self) -> str:
        parts = ([str(self.row)] if self.row is not None else []) + [str(d) for d in self.dims]
        return "[" + ", ".join(parts) + "]"


ANY_SHAPE = TShape(DOTS, ())


@record
class TTensor:
    dtype: DT = DT.ANY
    shape: TShape = ANY_SHAPE
    device: Dev = ANY_DEVICE

    def __str__(self) -> str:
        if self.dtype is DT.ANY and self.shape == ANY_SHAPE:
            text = "Tensor"
        elif self.dtype is DT.ANY:
            text = f"Tensor{self.shape}"
        elif self.shape == ANY_SHAPE:
            text = str(self.dtype)
        else:
            text = f"{self.dtype}{self.shape}"
        if self.device.kind is not None:
            text += f" @ {self.device}"
        return text


class ScalarKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


@record
class TScalar:
    """A Python number; an int may carry its value as a size (``int[N]``, or a literal)."""

    kind: ScalarKind
    value: Size | None = None

    def __str__(self) -> str:
        if self.value is not None and self.kind is ScalarKind.INT:
            return f"int[{self.value}]"
        return self.kind.value


@record
class TStruct:
    name: str
    args: tuple[Size | None, ...] = ()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}[{', '.join(size_str(a) for a in self.args)}]"


@record
class TList:
    elem: Type

    def __str__(self) -> str:
        return f"list[{self.elem}]"


@record
class TTuple:
    elems: tuple[Type, ...]

    def __str__(self) -> str:
        return f"tuple[{', '.join(str(e) for e in self.elems)}]"


@record
class TDyn:
    reason: DynReason = field(default=DynReason.EXPLICIT, compare=False)

    def __str__(self) -> str:
        return "?"


@record
class TOther:
    """Values that only appear as op arguments: None, strings, dtypes, devices, labels."""

    what: str  # "none" | "str" | "dtype" | "device" | "label" | "module" | "function" | "range"

    def __str__(self) -> str:
        return self.what


Type = Union[TTensor, TScalar, TStruct, TList, TTuple, TDyn, TOther]
DYN = TDyn()
TENSOR = TTensor()


def is_static(t: Type) -> bool:
    """No ``?`` anywhere (size variables allowed)."""
    if isinstance(t, TDyn):
        return False
    if isinstance(t, TTensor):
        return (t.dtype.is_concrete and t.device.kind is not None and t.shape.row != DOTS
                and all(d.size is not None for d in t.shape.dims))
    if isinstance(t, TStruct):
        return all(a is not None for a in t.args)
    if isinstance(t, TList):
        return is_static(t.elem)
    if isinstance(t, TTuple):
        return all(is_static(e) for e in t.elems)
    return True


# ============================================================================ equations


@record
class SizeEq:
    """A residual equation ``left = right`` the solver could not decide."""

    left: Size
    right: Size

    def __str__(self) -> str:
        return f"{self.left} == {self.right}"


# ============================================================================ sizes and dims


def size_leq(a: Size | None, b: Size | None) -> bool:
    return b is None or (a is not None and decide(a, b) is Verdict.VALID)


def size_meet(a: Size | None, b: Size | None, eqs: list[SizeEq]) -> tuple[bool, Size | None]:
    if a is None:
        return True, b
    if b is None:
        return True, a
    verdict = decide(a, b)
    if verdict is Verdict.UNSAT:
        return False, None
    if verdict is Verdict.UNKNOWN:
        eqs.append(SizeEq(a, b))
        if b.constant() is not None:
            return True, b
    return True, a


def size_join(a: Size | None, b: Size | None) -> Size | None:
    if a is None or b is None:
        return None
    return a if decide(a, b) is Verdict.VALID else None


def label_leq(a: str | None, b: str | None) -> bool:
    return b is None or a == b


def label_meet(a: str | None, b: str | None) -> tuple[bool, str | None]:
    if a is None or b is None or a == b:
        return True, a if a is not None else b
    return False, None


def dim_leq(a: TDim, b: TDim) -> bool:
    return label_leq(a.label, b.label) and size_leq(a.size, b.size)


_T = TypeVar("_T")


def _all_met(parts: list[_T | None]) -> tuple[_T, ...] | None:
    """The parts' meets, or None when one of them is empty."""
    met = tuple(p for p in parts if p is not None)
    return met if len(met) == len(parts) else None


def dim_meet(a: TDim, b: TDim, eqs: list[SizeEq]) -> TDim | None:
    ok, label = label_meet(a.label, b.label)
    ok2, size = size_meet(a.size, b.size, eqs)
    return TDim(label, size) if ok and ok2 else None


def dim_join(a: TDim, b: TDim) -> TDim:
    return TDim(a.label if a.label == b.label else None, size_join(a.size, b.size))


# ============================================================================ shapes


def shape_leq(a: TShape, b: TShape) -> bool:
    if b.row is None:
        return a.row is None and len(a.dims) == len(b.dims) and all(
            map(dim_leq, a.dims, b.dims))
    if b.row.name is not None:  # a row variable: only itself, with the same suffix
        return a.row == b.row and len(a.dims) == len(b.dims) and all(
            map(dim_leq, a.dims, b.dims))
    # b = [..., e1..ek]: a needs at least k right-aligned dims, pointwise ⊑.
    k = len(b.dims)
    if len(a.dims) < k:
        return False
    return all(dim_leq(x, y) for x, y in zip(a.dims[len(a.dims) - k:], b.dims))


def shape_meet(a: TShape, b: TShape, eqs: list[SizeEq]) -> TShape | None:
    """The intersection; rows of two different row variables meet only when identical."""
    if a.row is not None and a.row.name is not None and a.row != b.row:
        if b.row is not None and b.row.name is not None:
            return _row_meet(a, b, eqs)
        a, b = b, a
    if b.row is not None and b.row.name is not None and a.row != b.row:
        return _row_meet(b, a, eqs)
    if a.row is None and b.row is None or a.row is not None and a.row == b.row and a.row.name:
        if len(a.dims) != len(b.dims):
            return None
        dims = _all_met([dim_meet(x, y, eqs) for x, y in zip(a.dims, b.dims)])
        return None if dims is None else TShape(a.row, dims)
    if a.row is None:  # fixed vs variadic ...
        return _right_aligned(a, b, eqs, fixed=True)
    if b.row is None:
        return _right_aligned(b, a, eqs, fixed=True)
    return _right_aligned(a, b, eqs, fixed=False)


def _right_aligned(a: TShape, b: TShape, eqs: list[SizeEq], fixed: bool) -> TShape | None:
    """``a`` fixed (or variadic) against variadic ``b``: right-align, pointwise meet."""
    if fixed and len(a.dims) < len(b.dims):
        return None
    n = max(len(a.dims), len(b.dims))
    ad = (TDim(),) * (n - len(a.dims)) + a.dims
    bd = (TDim(),) * (n - len(b.dims)) + b.dims
    dims = _all_met([dim_meet(x, y, eqs) for x, y in zip(ad, bd)])
    if dims is None:
        return None
    return TShape(None if fixed else DOTS, dims)


def _row_meet(rowed: TShape, other: TShape, eqs: list[SizeEq]) -> TShape | None:
    """A row-variable shape against anything else: keep the row side, meet the common suffix.

    Whether the row variable's dims agree with the other side's leading dims is a runtime
    fact; the shapes are consistent when the aligned suffix is.
    """
    k = min(len(rowed.dims), len(other.dims))
    if other.row is None and len(other.dims) < len(rowed.dims):
        return None
    dims = list(rowed.dims)
    for i in range(1, k + 1):
        m = dim_meet(rowed.dims[-i], other.dims[-i], eqs)
        if m is None:
            return None
        dims[-i] = m
    return TShape(rowed.row, tuple(dims))


def shape_join(a: TShape, b: TShape) -> TShape:
    if a.row == b.row and len(a.dims) == len(b.dims):
        return TShape(a.row, tuple(map(dim_join, a.dims, b.dims)))
    k = min(len(a.dims), len(b.dims))
    return TShape(DOTS, tuple(dim_join(x, y) for x, y in zip(a.dims[len(a.dims) - k:],
                                                               b.dims[len(b.dims) - k:])))


# ============================================================================ types


def leq(a: Type, b: Type) -> bool:
    """Precision ``a ⊑ b``: every value of ``a`` is a value of ``b``."""
    if isinstance(b, TDyn):
        return True
    if isinstance(a, TDyn):
        return False
    if a == b:  # ⊑ is reflexive
        return True
    if isinstance(a, TTensor) and isinstance(b, TTensor):
        return (dt_leq(a.dtype, b.dtype) and dev_leq(a.device, b.device)
                and shape_leq(a.shape, b.shape))
    if isinstance(a, TScalar) and isinstance(b, TScalar):
        return a.kind is b.kind and size_leq(a.value, b.value)
    if isinstance(a, TStruct) and isinstance(b, TStruct):
        return a.name == b.name and len(a.args) == len(b.args) and all(
            map(size_leq, a.args, b.args))
    if isinstance(a, TList) and isinstance(b, TList):
        return leq(a.elem, b.elem)
    if isinstance(a, TTuple) and isinstance(b, TTuple):
        return len(a.elems) == len(b.elems) and all(map(leq, a.elems, b.elems))
    if isinstance(a, TOther) and isinstance(b, TOther):
        return a == b
    return False


def meet(a: Type, b: Type, eqs: list[SizeEq] | None = None) -> Type | None:
    """``a ⊓ b``, or None when inconsistent; undecided size equations go to ``eqs``."""
    eqs = [] if eqs is None else eqs
    if isinstance(a, TDyn):
        return b
    if isinstance(b, TDyn):
        return a
    if isinstance(a, TTensor) and isinstance(b, TTensor):
        dt = dt_meet(a.dtype, b.dtype)
        dev = dev_meet(a.device, b.device)
        shape = shape_meet(a.shape, b.shape, eqs)
        if dt is None or dev is None or shape is None:
            return None
        return TTensor(dt, shape, dev)
    if isinstance(a, TScalar) and isinstance(b, TScalar):
        if a.kind is not b.kind:
            return None
        ok, value = size_meet(a.value, b.value, eqs)
        return TScalar(a.kind, value) if ok else None
    if isinstance(a, TStruct) and isinstance(b, TStruct):
        if a.name != b.name or len(a.args) != len(b.args):
            return None
        args = []
        for x, y in zip(a.args, b.args):
            ok, s = size_meet(x, y, eqs)
            if not ok:
                return None
            args.append(s)
        return TStruct(a.name, tuple(args))
    if isinstance(a, TList) and isinstance(b, TList):
        elem = meet(a.elem, b.elem, eqs)
        return None if elem is None else TList(elem)
    if isinstance(a, TTuple) and isinstance(b, TTuple):
        if len(a.elems) != len(b.elems):
            return None
        elems = [meet(x, y, eqs) for x, y in zip(a.elems, b.elems)]
        met = tuple(e for e in elems if e is not None)
        return TTuple(met) if len(met) == len(elems) else None
    if isinstance(a, TOther) and a == b:
        return a
    return None


def consistent(a: Type, b: Type) -> bool:
    return meet(a, b) is not None


def join(a: Type, b: Type) -> Type:
    """The least representable type containing both."""
    if isinstance(a, TDyn) or isinstance(b, TDyn):
        return DYN
    if isinstance(a, TTensor) and isinstance(b, TTensor):
        return TTensor(dt_join(a.dtype, b.dtype), shape_join(a.shape, b.shape),
                       dev_join(a.device, b.device))
    if isinstance(a, TScalar) and isinstance(b, TScalar) and a.kind is b.kind:
        return TScalar(a.kind, size_join(a.value, b.value))
    if isinstance(a, TStruct) and isinstance(b, TStruct) and a.name == b.name and len(
            a.args) == len(b.args):
        return TStruct(a.name, tuple(map(size_join, a.args, b.args)))
    if isinstance(a, TList) and isinstance(b, TList):
        return TList(join(a.elem, b.elem))
    if isinstance(a, TTuple) and isinstance(b, TTuple) and len(a.elems) == len(b.elems):
        return TTuple(tuple(map(join, a.elems, b.elems)))
    if a == b:
        return a
    return DYN
