"""Gradual types: dtype and device trees, sizes and the solver, shapes, the lattice operations."""

from gtdsl.types.convert import type_of
from gtdsl.types.core import (
    ANY_SHAPE, DOTS, DYN, TENSOR, DynReason, Row, ScalarKind, SizeEq, TDim, TDyn, TList, TOther,
    TScalar, TShape, TStruct, TTensor, TTuple, Type, consistent, is_static, join, leq, meet,
)
from gtdsl.types.lattice import ANY_DEVICE, CPU, DT, Dev, Priority, result_type
from gtdsl.types.sizes import Size, Verdict, decide, solve_for

__all__ = [
    "ANY_DEVICE", "ANY_SHAPE", "CPU", "DOTS", "DT", "DYN", "TENSOR", "Dev", "DynReason",
    "Priority", "Row", "ScalarKind", "Size", "SizeEq", "TDim", "TDyn", "TList", "TOther",
    "TScalar", "TShape", "TStruct", "TTensor", "TTuple", "Type", "Verdict", "consistent",
    "decide", "is_static", "join", "leq", "meet", "result_type", "solve_for", "type_of",
]
