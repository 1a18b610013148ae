"""The vocabulary of op type relations: arguments, the relation context, shared shape rules.

An op's relation is a function ``(Rel, BoundArgs) -> Type``. It reads the argument types
(and the static values of non-tensor arguments: dims, sizes, flags), asks the ``Rel`` to
equate sizes (VALID passes, UNSAT and violated rigid variables raise ``OpError``, UNKNOWN
becomes a residual runtime check) and returns the output type. Applied to concrete metadata
(every size a literal) the same function computes the output metadata or raises: it is the
reference semantics of the op's types, used statically by the checker and at run time by
the interpreter.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

from gtdsl._records import field, record
from gtdsl.diagnostics import Span
from gtdsl.types import (
    ANY_DEVICE, ANY_SHAPE, DOTS, DT, TENSOR, Dev, Priority, ScalarKind, Size, TDim, TDyn,
    TOther, TScalar, TShape, TTensor, TTuple, TList, Type, Verdict, decide, result_type,
)
from gtdsl.types.lattice import CPU, SCALAR_DTYPE, NoGtdslDtype, dev_meet, dt_join
from gtdsl.types.sizes import size_str


class _Unknown:
    """The static value of an argument whose value is not known before run time."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@record
class Arg:
    """One argument as the relation sees it.

    ``value`` is the static value (an int, float, bool, str, None, ``DT``, ``Dev``, a ``Size``
    for an int whose value is a size expression, or a tuple of Args for a tuple or list
    literal) or ``UNKNOWN``. ``label`` is set when the argument was a bare name that can be
    read as a dim label (``dim=seq``).
    """

    type: Type
    value: Any = UNKNOWN
    label: str | None = None
    span: Span | None = field(default=None, compare=False)


class OpError(Exception):
    """A relation rejects its arguments: code, message, the argument to blame, and help."""

    def __init__(self, code: str, message: str, arg: str | None = None,
                 help: str | None = None, notes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.arg, self.help = code, message, arg, help
        self.notes = tuple(notes)


@record(frozen=False, slots=False)
class Rel:
    """What a relation may do besides computing: equate sizes, and record residual checks.

    ``rigid`` names the size variables that are universally quantified where the op is
    used (the enclosing function's own variables): an equation between distinct rigid
    polynomials cannot be left to run time, because the function claims to work for every
    value of them.
    """

    rigid: frozenset[str] = frozenset()
    residuals: list[str] = field(default_factory=list)
    # the residuals as size predicates, for compiled code: ("eq", a, b) a == b, ("ge", a, b)
    # a >= b, ("divides", a, b) a > 0 and b % a == 0; `opaque` when one has no such form
    preds: list[tuple[str, Size, Size]] = field(default_factory=list)
    opaque: bool = False

    def equal(self, a: Size | None, b: Size | None, what: str, arg: str | None = None,
              help: str | None = None) -> Size | None:
        """Require ``a == b``; return the more precise of the two."""
        if a is None or b is None:
            self.opaque = True
            if a is not None or b is not None:
                self.residuals.append(f"{what}: {size_str(a)} == {size_str(b)}")
            else:
                self.residuals.append(f"{what}: equal sizes")
            return a if a is not None else b
        if a is b:  # VALID, without asking the solver
            return a
        verdict = decide(a, b)
        if verdict is Verdict.VALID:
            return a
        if verdict is Verdict.UNSAT:
            raise OpError("GT2004", f"{what}: {a} is not {b}", arg, help)
        if not a.has_opaque() and not b.has_opaque() and (
                (a.variables() | b.variables()) <= self.rigid):
            raise OpError(
                "GT2006", f"{what}: {a} is not {b} for every value of the size variables",
                arg, help or "the function's size variables are rigid: it must work for every "
                "value of them; use the same size variable where sizes must agree",
            )
        self.residuals.append(f"{what}: {a} == {b}")
        self.preds.append(("eq", a, b))
        return b if b.constant() is not None else a

    def check(self, fact: str, *preds: tuple[str, Size, Size]) -> None:
        """A fact the checker cannot decide: checked at run time. ``preds``, when given, are
        the fact as size predicates (see ``preds``)."""
        self.residuals.append(fact)
        if preds:
            self.preds.extend(preds)
        else:
            self.opaque = True


# ============================================================================ argument views


def tensor_of(arg: Arg, name: str) -> TTensor:
    """The argument as a tensor type; ``?`` is the unknown tensor, scalars are rejected."""
    t = arg.type
    if isinstance(t, TTensor):
        return t
    if isinstance(t, TDyn):
        return TENSOR
    hint = "pass a tensor here"
    if isinstance(t, TScalar) and t.kind is ScalarKind.INT:  # `int[seq]` written for a tensor
        hint += ("; for a tensor of ints write `i64[...]` (`int` and `int[n]` are a Python "
                 "int, `int[n]` one whose value is the size `n`)")
    raise OpError("GT2016", f"`{name}` must be a tensor, got {describe(t)}", name, hint)


def describe(t: Type) -> str:
    if isinstance(t, TScalar):
        return f"a Python {t.kind.value}"
    if isinstance(t, TOther):
        return {"none": "None", "str": "a string", "label": "a label"}.get(t.what, t.what)
    return f"`{t}`"


def is_tensorish(t: Type) -> bool:
    return isinstance(t, (TTensor, TDyn))


def static_int(arg: Arg, name: str, allow_size: bool = True) -> int | Size | None:
    """An int argument's static value: an int, a Size, or None when unknown."""
    v = arg.value
    if isinstance(v, bool):
        raise OpError("GT2016", f"`{name}` must be an int, got a bool", name)
    if isinstance(v, int):
        return v
    if isinstance(v, Size):
        c = v.constant()
        return c if c is not None else (v if allow_size else None)
    if v is UNKNOWN or v is None:
        if isinstance(arg.type, TScalar) and arg.type.kind is ScalarKind.INT:
            return arg.type.value
        if isinstance(arg.type, (TDyn, TScalar)):
            return None
    raise OpError("GT2016", f"`{name}` must be an int, got {describe(arg.type)}", name)


def as_size(v: int | Size | None) -> Size | None:
    return Size.of(v) if isinstance(v, int) else v


def choice(arg: Arg, name: str, op: str, choices: Sequence[str]) -> Any:
    """The value of a string argument that must be one of ``choices`` (GT2027 when it is a
    string that is not; an unknown value passes, for the runtime to see)."""
    value = arg.value
    if isinstance(value, str) and value not in choices:
        raise OpError("GT2027", f"`{op}` {name} must be one of {', '.join(choices)}, got "
                      f"{value!r}", name)
    return value


def seq_elems(arg: Arg) -> tuple[Arg, ...] | None:
    """The elements of a tuple/list literal argument, or of a value of a tuple type (each
    element's value unknown: ``self.normalized_shape``)."""
    if isinstance(arg.value, tuple):
        return arg.value
    if isinstance(arg.type, TTuple):
        return tuple(Arg(t) for t in arg.type.elems)
    return None


# ============================================================================ dims


def numel_of(s: TShape) -> Size | None:
    """The number of elements of a shape: the product of its sizes; None when the rank or a
    size is unknown."""
    if s.row is not None or any(d.size is None for d in s.dims):
        return None
    n = Size.of(1)
    for d in s.dims:
        assert d.size is not None
        n = n * d.size
    return n


def rank_of(s: TShape) -> int | None:
    return len(s.dims) if s.row is None else None


@record
class DimPos:
    """A resolved dim: ``index`` into ``shape.dims`` (None: inside the variadic part)."""

    index: int | None
    negative: int  # the position counted from the right, -1 for the last dim


def resolve_dim(shape: TShape, arg: Arg, name: str, extra: int = 0) -> DimPos:
    """A dim argument (label or position) as a position in ``shape``.

    ``extra`` admits positions one past the end (``unsqueeze`` inserts there).
    """
    if arg.label is not None and not isinstance(arg.value, int):
        hits = [i for i, d in enumerate(shape.dims) if d.label == arg.label]
        if len(hits) > 1:
            raise OpError("GT2008", f"the label `{arg.label}` names {len(hits)} dims of "
                          f"`{shape}`", name, "pass the dim by position instead")
        if not hits:
            if shape.row is not None:
                raise OpError(
                    "GT2009", f"no dim labelled `{arg.label}` among the known dims of "
                    f"`{shape}`", name, f"annotate the tensor so that `{arg.label}` is one "
                    "of its trailing dims, or pass the dim by position")
            raise OpError("GT2007", f"no dim labelled `{arg.label}` in `{shape}`", name,
                          "use one of the labels the tensor's type declares, or a position")
        i = hits[0]
        return DimPos(i, i - len(shape.dims))
    v = static_int(arg, name, allow_size=False)
    if not isinstance(v, int):
        # A position known only at run time: the dims it could be are unknown statically.
        return DimPos(None, 0)
    n = len(shape.dims)
    if shape.row is None:
        total = n + extra
        if (total == 0 and v not in (0, -1)) or (total > 0 and not -total <= v < total):
            raise OpError("GT2010", f"dim {v} is out of range for a tensor of rank {n}", name,
                          f"use a dim in {-total}..{total - 1}" if total else
                          "a 0-dim tensor has no dims")
        if total == 0:
            return DimPos(0, -1)
        i = v % total
        return DimPos(i, i - total)
    if v < 0:
        k = -v
        if k <= n + extra:
            return DimPos(n + extra - k, -k)
        return DimPos(None, v)
    return DimPos(None, v)


def resolve_dims(shape: TShape, arg: Arg, name: str) -> list[DimPos] | None:
    """A ``dim`` that may be None (all dims), one dim, or a tuple of dims."""
    if arg.value is None and arg.label is None:
        return None
    elems = seq_elems(arg)
    if elems is not None:
        out = [resolve_dim(shape, e, name) for e in elems]
    else:
        out = [resolve_dim(shape, arg, name)]
    seen = set()
    for p in out:
        key = p.index if p.index is not None else ("v", p.negative)
        if key in seen:
            raise OpError("GT2010", f"dim {p.negative} appears twice in `{name}`", name)
        seen.add(key)
    return out


# ============================================================================ broadcasting


def broadcast_dim(rel: Rel, a: TDim, b: TDim, what: str) -> TDim:
    """Value-directed broadcasting of one pair of dims (labels: docs/types.md, "Labels")."""
    sa, sb = a.size, b.size
    # Labels are static names: where two differ, the result is unlabelled (a size-1 side
    # takes the other's label). Annotations relabel; by-name ops need a label to resolve.
    if a.label is not None and b.label is not None and a.label != b.label:
        label = b.label if _is_one(a) else a.label if _is_one(b) else None
    else:
        label = a.label if a.label is not None else b.label
    if sa is not None and sb is not None:
        # equal sizes, most often the same Size object: no need to ask the solver
        if sa is sb or sa == sb or decide(sa, sb) is Verdict.VALID:
            return a if label == a.label else TDim(label, sa)
        if _is_one(a):
            return TDim(b.label if b.label is not None else label, sb)
        if _is_one(b):
            return TDim(a.label if a.label is not None else label, sa)
        ca, cb = sa.constant(), sb.constant()
        if ca is not None and cb is not None:
            raise OpError("GT2011", f"{what}: sizes {ca} and {cb} do not broadcast",
                          None, "sizes must be equal, or one of them 1")
        if not (sa.has_opaque() or sb.has_opaque()) and (
                sa.variables() | sb.variables()) <= rel.rigid:
            raise OpError("GT2006", f"{what}: sizes {sa} and {sb} do not broadcast for every "
                          "value of the size variables", None,
                          "use the same size variable where sizes must agree")
        rel.check(f"{what}: {sa} and {sb} broadcast")
        return TDim(label, None)
    known = sa if sa is not None else sb
    if known is not None:
        c = known.constant()
        if c == 1:
            return TDim(label, None)
        if c is not None:
            rel.check(f"{what}: ? broadcasts against {c}")
            return TDim(label, known)
    rel.check(f"{what}: sizes broadcast")
    return TDim(label, None)


def broadcast_shapes(rel: Rel, shapes: Sequence[TShape], what: str) -> TShape:
    out = shapes[0]
    for s in shapes[1:]:
        out = _broadcast2(rel, out, s, what)
    return out


def _broadcast2(rel: Rel, a: TShape, b: TShape, what: str) -> TShape:
    ad, bd = a.dims, b.dims
    na, nb = len(ad), len(bd)
    # right-aligned, from the last dim leftwards (the order residuals and errors come in)
    dims = [broadcast_dim(rel, x, y, what) for x, y in zip(reversed(ad), reversed(bd))]
    k = len(dims)
    if na > k:  # b has no dim here, or one hidden in its variadic part
        if b.row is None:
            dims.extend(reversed(ad[:na - k]))
        else:
            dims.extend(broadcast_dim(rel, ad[-i], TDim(), what) for i in range(k + 1, na + 1))
    elif nb > k:
        if a.row is None:
            dims.extend(reversed(bd[:nb - k]))
        else:
            dims.extend(broadcast_dim(rel, TDim(), bd[-i], what) for i in range(k + 1, nb + 1))
    dims.reverse()
    if a.row is None and b.row is None:
        row = None
    elif a.row == b.row and na == nb:
        row = a.row
    elif b.row is None and nb <= na:
        row = a.row
    elif a.row is None and na <= nb:
        row = b.row
    else:
        row = DOTS
    return TShape(row, tuple(dims))


def _is_one(d: TDim) -> bool:
    return d.size is not None and d.size == _ONE


_ONE = Size.of(1)


# ============================================================================ dtypes and devices


def priority(t: TTensor) -> list[Priority]:
    rank = rank_of(t.shape)
    if rank is None:
        return [Priority.TENSOR, Priority.ZERO_DIM] if not t.shape.dims else [Priority.TENSOR]
    return [Priority.ZERO_DIM] if rank == 0 else [Priority.TENSOR]


# by ScalarKind value (``kind._value_``: a plain attribute, where ``.value`` is a property)
_SCALAR_OPERANDS = {name: (dt, Priority.SCALAR) for name, dt in SCALAR_DTYPE.items()}


def promote(args: Sequence[Type]) -> DT:
    """torch.result_type over tensors and Python numbers (``?`` args are unknown tensors)."""
    # The common case: every operand's priority is known (a scalar, or a tensor whose rank
    # is known to be 0 or not), so there is one combination to promote.
    operands: list[tuple[DT, Priority]] = []
    for t in args:
        if isinstance(t, TTensor):
            if t.shape.dims:
                operands.append((t.dtype, Priority.TENSOR))
            elif t.shape.row is None:
                operands.append((t.dtype, Priority.ZERO_DIM))
            else:
                break
        elif isinstance(t, TScalar):
            operands.append(_SCALAR_OPERANDS[t.kind._value_])
        else:
            break
    else:
        try:
            return result_type(operands)
        except NoGtdslDtype as err:
            raise _no_gtdsl_dtype(err) from None
    options: list[list[tuple[DT, Priority]]] = []
    for t in args:
        if isinstance(t, TScalar):
            options.append([(SCALAR_DTYPE[t.kind.value], Priority.SCALAR)])
        elif isinstance(t, TTensor):
            options.append([(t.dtype, p) for p in priority(t)])
        else:
            options.append([(DT.ANY, Priority.TENSOR), (DT.ANY, Priority.ZERO_DIM)])
    out: DT | None = None
    for combo in itertools.product(*options):
        try:
            r = result_type(list(combo))
        except NoGtdslDtype:  # one of the possible ranks gives no gtdsl dtype: unknown
            return DT.ANY
        out = r if out is None else dt_join(out, r)
    assert out is not None
    return out


def _no_gtdsl_dtype(err: NoGtdslDtype) -> OpError:
    from importlib.metadata import PackageNotFoundError, requires

    from gtdsl._torchcache import installed_torch_version

    try:
        declared = next((r.split(";")[0].replace(" ", "") for r in requires("gtdsl") or ()
                         if re.match(r"torch\b", r)), None)
    except PackageNotFoundError:  # a source tree without metadata: the range goes unnamed
        declared = None
    supported = f"the torch releases it declares ({declared})" if declared else \
        "the torch releases it declares"
    return OpError(
        "GT2029", f"the installed torch ({installed_torch_version()}) promotes to a dtype "
        f"gtdsl does not type: {err.what}",
        help=f"gtdsl types {supported}: install one of them, or convert an operand with "
             "`.to(...)` so that torch promotes to a dtype gtdsl types")


def same_device(tensors: Sequence[tuple[str, TTensor]], what: str) -> Dev:
    """The common device of tensor arguments; distinct known devices are an error.

    As in torch, a 0-dim CPU tensor may join tensors on another device.
    """
    d = tensors[0][1].device if tensors else ANY_DEVICE
    if d.kind != "cpu":
        for _, t in tensors:
            if t.device is not d:
                break
        else:  # one device object throughout (most often `?`): what the loop below gives
            return ANY_DEVICE if d.kind is None else d
    out = ANY_DEVICE
    first = None
    skipped = False
    several = len(tensors) > 1
    for name, t in tensors:
        if several and _zero_dim_cpu(t):
            skipped = True
            continue
        m = dev_meet(out, t.device)
        if m is None:
            raise OpError("GT2003", f"{what}: `{first}` is on {out} but `{name}` is on "
                          f"{t.device}", name, "move one of them with .to(device=...) before "
                          "combining them", notes=["tensors combined by one op must be on "
                          "the same device"])
        if t.device.kind is not None and first is None:
            first = name
        out = m
    if skipped and out == ANY_DEVICE and all(_zero_dim_cpu(t) for _, t in tensors):
        return CPU  # only 0-dim CPU tensors: the result is on the CPU
    return out


def _zero_dim_cpu(t: TTensor) -> bool:
    d = t.device
    return d.kind == "cpu" and d.index is None and not t.shape.dims and t.shape.row is None


# bool and the integer dtypes (and their categories): what a float op turns into f32
_INTEGRAL = frozenset(d for d in DT if d in (DT.BOOL, DT.INT, DT.UINT)
                      or d.category in (DT.INT, DT.UINT))
_FLOATING = frozenset(d for d in DT if d is DT.ANY or d.category is DT.FLOAT)
_INEXACT = frozenset(d for d in DT if d is DT.ANY or d.category in (DT.FLOAT, DT.COMPLEX))


def float_dtype(dt: DT) -> DT:
    """The dtype of a floating-point op's result: ints and bool become torch's default float."""
    if dt in _INTEGRAL:
        return DT.F32
    return dt


def require_float(dt: DT, name: str, op: str) -> None:
    if dt in _FLOATING:
        return
    raise OpError("GT2002", f"`{op}` needs a floating-point `{name}`, got {dt}", name,
                  f"convert first: {name}.to(f32)")


def require_inexact(dt: DT, name: str, op: str) -> None:
    """A floating-point or complex dtype (``mean``, ``silu``, ``var``...)."""
    if dt in _INEXACT:
        return
    raise OpError("GT2002", f"`{op}` needs a floating-point or complex `{name}`, got {dt}",
                  name, f"convert first: {name}.to(f32)")


def reject_complex(dt: DT, name: str | None, op: str) -> None:
    """Ops that order values (comparisons, min/max, clamp) are not defined on complex."""
    if dt.category is DT.COMPLEX:
        raise OpError("GT2002", f"`{op}` is not defined on complex tensors, got {dt}", name,
                      "compare real parts or magnitudes: x.abs()")


def real_dtype(dt: DT) -> DT:
    """The dtype of a complex tensor's magnitudes (``abs``, ``norm``, ``var``)."""
    return _REAL.get(dt, dt)


_REAL = {DT.C32: DT.F16, DT.BC32: DT.BF16, DT.C64: DT.F32, DT.C128: DT.F64, DT.COMPLEX: DT.FLOAT}


def promote_types(a: DT, b: DT) -> DT:
    """torch.promote_types: two dtypes, without the priority of dims over 0-dim tensors."""
    try:
        return result_type([(a, Priority.TENSOR), (b, Priority.TENSOR)])
    except NoGtdslDtype as err:
        raise _no_gtdsl_dtype(err) from None


def tensor(dtype: DT, dims: Sequence[TDim] | TShape, device: Dev) -> TTensor:
    shape = dims if isinstance(dims, TShape) else TShape(None, tuple(dims))
    return TTensor(dtype, shape, device)


def fixed(*sizes: int | Size | None) -> tuple[TDim, ...]:
    return tuple(TDim(None, as_size(s)) for s in sizes)


__all__ = [
    "ANY_DEVICE", "ANY_SHAPE", "Arg", "Callable", "DOTS", "DT", "Dev", "DimPos", "OpError",
    "Rel", "Size", "TDim", "TDyn", "TList", "TOther", "TScalar", "TShape", "TTensor", "TTuple",
    "UNKNOWN", "as_size", "broadcast_dim", "broadcast_shapes", "describe", "fixed",
    "float_dtype", "is_tensorish", "promote", "promote_types", "rank_of", "real_dtype",
    "reject_complex", "require_float", "require_inexact", "resolve_dim", "resolve_dims",
    "same_device", "seq_elems", "static_int", "tensor", "tensor_of",
]
