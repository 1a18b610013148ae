"""The gtdsl abstract syntax tree: frozen values with spans.

Every node is a ``@record`` (a frozen, slotted dataclass: ``gtdsl._records``) whose fields
are tuples, enums, strings, numbers or other nodes, and whose ``span`` is excluded from
equality, so that ``parse(unparse(tree)) == tree``. No Lark object appears here.

Spellings normalised when the tree is built: an unknown dtype is ``dtype=None`` however it
is written (``Tensor[n]`` and ``?[n]`` are one tree); ``@ ?`` and an omitted device are both
``device=None``; a dim ``n`` and ``n=n`` are one Dim. Other spellings with the same meaning
stay distinct trees: ``f32`` (``shape=None``) and ``f32[...]``, ``Tensor`` and ``?[...]``;
deciding that they denote the same type is the type layer's job. A docstring is lifted out of
the body into ``docstring``.
"""

from __future__ import annotations

import enum
from typing import Union

from gtdsl._records import field, record
from gtdsl.diagnostics import Span



def _span() -> Span | None:
    """The ``span`` field: last, optional, excluded from equality and repr."""
    return field(default=None, compare=False, repr=False)


# ============================================================================ types


class DType(enum.Enum):
    """Dtype names of the surface syntax: concrete dtypes, then categories."""

    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"
    I8 = "i8"
    I16 = "i16"
    I32 = "i32"
    I64 = "i64"
    U8 = "u8"
    BOOL = "bool"
    C64 = "c64"
    C128 = "c128"
    FLOAT = "float"
    INT = "int"
    UINT = "uint"
    COMPLEX = "complex"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


DTYPE_NAMES: dict[str, DType] = {d.value: d for d in DType}


class ScalarKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


SCALAR_NAMES: dict[str, ScalarKind] = {k.value: k for k in ScalarKind}


class SizeOp(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    FLOORDIV = "//"
    MOD = "%"


@record
class SizeLit:
    value: int
    span: Span | None = _span()


@record
class SizeVar:
    name: str
    span: Span | None = _span()


@record
class SizeBinOp:
    op: SizeOp
    left: SizeExpr
    right: SizeExpr
    span: Span | None = _span()


SizeExpr = Union[SizeLit, SizeVar, SizeBinOp]


@record
class Dim:
    """One dim: an optional label and an optional size (None is ``?``).

    ``n`` is ``Dim("n", SizeVar("n"))``; ``768`` is ``Dim(None, SizeLit(768))``. An
    unlabelled dim never holds a lone size variable: a bare name is always a label.
    """

    label: str | None
    size: SizeExpr | None
    span: Span | None = _span()

    def __post_init__(self) -> None:
        if self.label is None and isinstance(self.size, SizeVar):
            raise ValueError("an unlabelled dim cannot be a lone size variable")


@record
class Variadic:
    """A leading variadic part: ``*name`` (a row variable) or ``...`` (name None)."""

    name: str | None
    span: Span | None = _span()


@record
class Shape:
    variadic: Variadic | None
    dims: tuple[Dim, ...]
    span: Span | None = _span()


class DeviceKind(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


@record
class Device:
    kind: DeviceKind
    index: int | None = None
    span: Span | None = _span()

    def __post_init__(self) -> None:
        if self.index is not None and (self.kind is not DeviceKind.CUDA or self.index < 0):
            raise ValueError("only cuda devices take a non-negative index")


@record
class DynType:
    """``?``: a value nothing is known about."""

    span: Span | None = _span()


@record
class TensorType:
    """``dtype[shape] @ device``; ``dtype=None`` is ``Tensor``, ``shape=None`` any shape."""

    dtype: DType | None
    shape: Shape | None
    device: Device | None
    span: Span | None = _span()


@record
class ScalarType:
    """A Python ``int``, ``float`` or ``bool``; ``int[N]`` also names its value as size N."""

    kind: ScalarKind
    size: SizeExpr | None = None
    span: Span | None = _span()

    def __post_init__(self) -> None:
        if self.size is not None and self.kind is not ScalarKind.INT:
            raise ValueError("only int scalars name a size")


@record
class StructType:
    """An instance of a declared struct, with its size arguments (None is ``?``)."""

    name: str
    args: tuple[SizeExpr | None, ...]
    span: Span | None = _span()


@record
class ListType:
    elem: TypeExpr
    span: Span | None = _span()


@record
class TupleType:
    elems: tuple[TypeExpr, ...]
    span: Span | None = _span()


TypeExpr = Union[DynType, TensorType, ScalarType, StructType, ListType, TupleType]

# ============================================================================ expressions


class BinOpKind(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    FLOORDIV = "//"
    MOD = "%"
    POW = "**"
    MATMUL = "@"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


class UnaryOpKind(enum.Enum):
    NEG = "-"
    POS = "+"
    NOT = "not"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


class BoolOpKind(enum.Enum):
    AND = "and"
    OR = "or"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


class CmpOp(enum.Enum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="
    IN = "in"
    NOT_IN = "not in"
    IS = "is"
    IS_NOT = "is not"

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


@record
class Name:
    id: str
    span: Span | None = _span()


@record
class Int:
    value: int
    span: Span | None = _span()


@record
class Float:
    value: float
    span: Span | None = _span()


@record
class Str:
    value: str
    span: Span | None = _span()


@record
class Bool:
    value: bool
    span: Span | None = _span()


@record
class NoneLit:
    span: Span | None = _span()


@record
class EllipsisLit:
    span: Span | None = _span()


@record
class Attribute:
    value: Expr
    attr: str
    span: Span | None = _span()


@record
class Keyword:
    name: str
    value: Expr
    span: Span | None = _span()


@record
class Call:
    func: Expr
    args: tuple[Expr, ...]
    keywords: tuple[Keyword, ...]
    span: Span | None = _span()


@record
class Slice:
    lower: Expr | None
    upper: Expr | None
    step: Expr | None
    span: Span | None = _span()


@record
class Subscript:
    """``value[i, j, ...]``: one entry per comma-separated index (``x[a]`` has one)."""

    value: Expr
    indices: tuple[Expr | Slice, ...]
    span: Span | None = _span()


@record
class BinOp:
    op: BinOpKind
    left: Expr
    right: Expr
    span: Span | None = _span()


@record
class UnaryOp:
    op: UnaryOpKind
    operand: Expr
    span: Span | None = _span()


@record
class BoolOp:
    """``a and b and c``: a chain of at least two values with one operator."""

    op: BoolOpKind
    values: tuple[Expr, ...]
    span: Span | None = _span()


@record
class Compare:
    """``a < b <= c``: ``ops`` and ``comparators`` have equal, non-zero length."""

    left: Expr
    ops: tuple[CmpOp, ...]
    comparators: tuple[Expr, ...]
    span: Span | None = _span()


@record
class IfExp:
    test: Expr
    body: Expr
    orelse: Expr
    span: Span | None = _span()


@record
class Tuple:
    elts: tuple[Expr, ...]
    span: Span | None = _span()


@record
class List:
    elts: tuple[Expr, ...]
    span: Span | None = _span()


Expr = Union[
    Name, Int, Float, Str, Bool, NoneLit, EllipsisLit, Attribute, Call, Subscript,
    BinOp, UnaryOp, BoolOp, Compare, IfExp, Tuple, List,
]  # fmt: skip

# ============================================================================ statements


@record
class Assign:
    """``target = value``; the target is a Name or a Tuple of Names."""

    target: Name | Tuple
    value: Expr
    span: Span | None = _span()


@record
class AnnAssign:
    """``target: annotation = value``: a checkpoint (a cast where the value is less precise)."""

    target: Name
    annotation: TypeExpr
    value: Expr
    span: Span | None = _span()


@record
class AugAssign:
    target: Name
    op: BinOpKind
    value: Expr
    span: Span | None = _span()


@record
class Return:
    value: Expr | None
    span: Span | None = _span()


@record
class If:
    """``elif`` is an If alone in ``orelse``."""

    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    span: Span | None = _span()


@record
class For:
    target: Name | Tuple
    iter: Expr
    body: tuple[Stmt, ...]
    span: Span | None = _span()


@record
class Assert:
    test: Expr
    msg: Expr | None
    span: Span | None = _span()


@record
class Pass:
    span: Span | None = _span()


@record
class ExprStmt:
    value: Expr
    span: Span | None = _span()


Stmt = Union[Assign, AnnAssign, AugAssign, Return, If, For, Assert, Pass, ExprStmt]

# ============================================================================ declarations


@record
class Param:
    name: str
    annotation: TypeExpr | None
    default: Expr | None
    span: Span | None = _span()


@record
class SizeParam:
    name: str
    span: Span | None = _span()


@record
class FunctionDef:
    name: str
    size_params: tuple[SizeParam, ...]
    params: tuple[Param, ...]
    returns: TypeExpr | None
    body: tuple[Stmt, ...]
    docstring: str | None = None
    decorators: tuple[Expr, ...] = ()
    span: Span | None = _span()


@record
class Field:
    name: str
    annotation: TypeExpr
    span: Span | None = _span()


@record
class StructDef:
    name: str
    size_params: tuple[SizeParam, ...]
    fields: tuple[Field, ...]
    docstring: str | None = None
    span: Span | None = _span()


@record
class Alias:
    """``name as asname`` in an import; ``name`` may be dotted in ``import a.b``."""

    name: str
    asname: str | None
    span: Span | None = _span()


@record
class ImportFrom:
    module: str
    names: tuple[Alias, ...]
    span: Span | None = _span()


@record
class Import:
    names: tuple[Alias, ...]
    span: Span | None = _span()


Decl = Union[FunctionDef, StructDef, ImportFrom, Import]


@record
class Module:
    body: tuple[Decl, ...]
    docstring: str | None = None
    span: Span | None = _span()

    def functions(self) -> tuple[FunctionDef, ...]:
        return tuple(d for d in self.body if isinstance(d, FunctionDef))

    def structs(self) -> tuple[StructDef, ...]:
        return tuple(d for d in self.body if isinstance(d, StructDef))


def _type_str(self: TypeExpr) -> str:
    from gtdsl.syntax.unparse import unparse_type

    return unparse_type(self)


# str() of a type value is its canonical surface syntax.
for _cls in (DynType, TensorType, ScalarType, StructType, ListType, TupleType):
    setattr(_cls, "__str__", _type_str)
del _cls
