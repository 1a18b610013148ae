"""Surface type syntax (``gtdsl.syntax.ast``) to gradual types.

Struct names are kept as written; the checker resolves them. ``f32`` and ``f32[...]`` become
one type here, as do ``Tensor`` and ``?[...]``.

The checker converts every annotation of every signature and struct field, so the
conversions below avoid the slow parts of enums: ``Enum.value`` is a Python property and
``DT(value)`` a Python-level lookup, while a member's ``_value_`` (a plain attribute, the
documented sunder name) indexes a dict at C speed.
"""

from __future__ import annotations

from gtdsl.syntax import ast
from gtdsl.types.core import (
    ANY_SHAPE, DOTS, DYN, DynReason, Row, ScalarKind, TDim, TDyn, TList, TScalar, TShape,
    TStruct, TTensor, TTuple, Type,
)
from gtdsl.types.lattice import ANY_DEVICE, DT, Dev
from gtdsl.types.sizes import Size

_DTYPES: dict[str, DT] = {d.value: d for d in DT}
_SCALAR_KINDS: dict[str, ScalarKind] = {k.value: k for k in ScalarKind}
_ADD, _SUB, _MUL, _FLOORDIV = ast.SizeOp.ADD, ast.SizeOp.SUB, ast.SizeOp.MUL, ast.SizeOp.FLOORDIV

# Literal sizes interned by value: a program writes the same few literals (1, 2, 64...)
# in many annotations, and a shared Size also compares faster (tuple identity). Bounded.
_LITERALS: dict[int, Size] = {}


def _literal(value: int) -> Size:
    if type(value) is not int:  # a bool is refused by Size.of; no interning for it
        return Size.of(value)
    found = _LITERALS.get(value)
    if found is None:
        found = Size.of(value)
        if len(_LITERALS) < 4096:
            _LITERALS[value] = found
    return found


def size_of_expr(expr: ast.SizeExpr) -> Size:
    if isinstance(expr, ast.SizeVar):
        return Size.of(expr.name)
    if isinstance(expr, ast.SizeLit):
        return _literal(expr.value)
    left, right = size_of_expr(expr.left), size_of_expr(expr.right)
    op = expr.op
    if op is _ADD:
        return left + right
    if op is _SUB:
        return left - right
    if op is _MUL:
        return left * right
    if op is _FLOORDIV:
        return left.floordiv(right)
    return left.mod(right)


def dim_of(dim: ast.Dim) -> TDim:
    return TDim(dim.label, None if dim.size is None else size_of_expr(dim.size))


def shape_of(shape: ast.Shape | None) -> TShape:
    if shape is None:
        return ANY_SHAPE
    row = None
    if shape.variadic is not None:
        row = DOTS if shape.variadic.name is None else Row(shape.variadic.name)
    dims = []
    for d in shape.dims:  # dim_of, inlined, with its most common size (a variable) first
        s = d.size
        dims.append(TDim(d.label, None if s is None else Size.of(s.name)
                         if type(s) is ast.SizeVar else size_of_expr(s)))
    return TShape(row, tuple(dims))


def device_of(device: ast.Device | None) -> Dev:
    if device is None:
        return ANY_DEVICE
    key = (device.kind._value_, device.index)
    found = _DEVICES.get(key)
    if found is None:
        found = Dev(*key)
        if len(_DEVICES) < 256:
            _DEVICES[key] = found
    return found


# Devices interned: the op rules compare devices, and one object per device lets them
# stop at identity (``same_device``).
_DEVICES: dict[tuple[str, int | None], Dev] = {}


def dtype_of(dtype: ast.DType | None) -> DT:
    if dtype is None:
        return DT.ANY
    found = _DTYPES.get(dtype._value_)
    return found if found is not None else DT(dtype._value_)  # DT's own error otherwise


def type_of(t: ast.TypeExpr | None, unannotated: DynReason = DynReason.UNANNOTATED) -> Type:
    """The gradual type an annotation denotes (None, no annotation, is ``?``)."""
    if t is None:
        return TDyn(unannotated)
    # the forms in order of frequency
    if isinstance(t, ast.TensorType):
        return TTensor(dtype_of(t.dtype), shape_of(t.shape), device_of(t.device))
    if isinstance(t, ast.StructType):
        return TStruct(t.name, tuple([None if a is None else size_of_expr(a)
                                      for a in t.args]))
    if isinstance(t, ast.ScalarType):
        value = None if t.size is None else size_of_expr(t.size)
        kind = _SCALAR_KINDS.get(t.kind._value_)
        return TScalar(kind if kind is not None else ScalarKind(t.kind._value_), value)
    if isinstance(t, ast.DynType):
        return DYN
    if isinstance(t, ast.ListType):
        return TList(type_of(t.elem))
    if isinstance(t, ast.TupleType):
        return TTuple(tuple([type_of(e) for e in t.elems]))
    raise TypeError(f"not a type: {t!r}")
