"""Surface type syntax (``gtdsl.syntax.ast``) to gradual types.

Struct names are kept as written; the checker resolves them. ``f32`` and ``f32[...]`` become
one type here, as do ``Tensor`` and ``?[...]``.
"""

from __future__ import annotations

from gtdsl.syntax import ast
from gtdsl.types.core import (
    ANY_SHAPE, DOTS, DYN, DynReason, Row, ScalarKind, TDim, TDyn, TList, TScalar, TShape,
    TStruct, TTensor, TTuple, Type,
)
from gtdsl.types.lattice import ANY_DEVICE, DT, Dev
from gtdsl.types.sizes import Size


def size_of_expr(expr: ast.SizeExpr) -> Size:
    if isinstance(expr, ast.SizeLit):
        return Size.of(expr.value)
    if isinstance(expr, ast.SizeVar):
        return Size.of(expr.name)
    left, right = size_of_expr(expr.left), size_of_expr(expr.right)
    if expr.op is ast.SizeOp.ADD:
        return left + right
    if expr.op is ast.SizeOp.SUB:
        return left - right
    if expr.op is ast.SizeOp.MUL:
        return left * right
    if expr.op is ast.SizeOp.FLOORDIV:
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
    return TShape(row, tuple(dim_of(d) for d in shape.dims))


def device_of(device: ast.Device | None) -> Dev:
    if device is None:
        return ANY_DEVICE
    return Dev(device.kind.value, device.index)


def dtype_of(dtype: ast.DType | None) -> DT:
    return DT.ANY if dtype is None else DT(dtype.value)


def type_of(t: ast.TypeExpr | None, unannotated: DynReason = DynReason.UNANNOTATED) -> Type:
    """The gradual type an annotation denotes (None, no annotation, is ``?``)."""
    if t is None:
        return TDyn(unannotated)
    if isinstance(t, ast.DynType):
        return DYN
    if isinstance(t, ast.TensorType):
        return TTensor(dtype_of(t.dtype), shape_of(t.shape), device_of(t.device))
    if isinstance(t, ast.ScalarType):
        value = None if t.size is None else size_of_expr(t.size)
        return TScalar(ScalarKind(t.kind.value), value)
    if isinstance(t, ast.StructType):
        return TStruct(t.name, tuple(None if a is None else size_of_expr(a) for a in t.args))
    if isinstance(t, ast.ListType):
        return TList(type_of(t.elem))
    if isinstance(t, ast.TupleType):
        return TTuple(tuple(type_of(e) for e in t.elems))
    raise TypeError(f"not a type: {t!r}")
