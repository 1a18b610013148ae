"""The typed core IR: what cast insertion produces and every later stage consumes.

::

    program  ::= function* struct* exports
    function ::= name (param: type [= literal])* [size vars] -> type { block }
    block    ::= eqn*
    eqn      ::= (out: type)* = OP[param=value, ...](atom, ...)  @ span
               | IF(cond) { block } else { block } -> outs        (blocks end in YIELD or RETURN)
               | FOR(item in list; carried) { block } -> outs     (the block ends in YIELD)
               | KERNEL[kernel](ins) { block } -> outs            (the block ends in YIELD)
    atom     ::= var | literal

The program is the boundary between checking and execution: the interpreter, the code
generators and the runtime read nothing else (no syntax trees, no checker state). A ``Lit``
whose value is a ``Size`` is a size expression, evaluated from the size variables bound by
the function's entry casts. ``Op`` is closed and spelled out below: the structural ops plus
one member per catalogue op (``Op.SUM``, ``Op.MATMUL`` ...). ``CHECK_CAST`` carries its
target type and a ``Blame``; it checks, never converts. ``CHECK_OP`` carries the residual
facts an op relation could not decide, checked at run time by re-running the relation on
concrete metadata.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any, Union

from gtdsl._records import field, record
from gtdsl.diagnostics import Span
from gtdsl.types import Size, Type

class Op(enum.Enum):
    """Every op of the IR: the structural ops, then one per catalogue op, whose value is its
    catalogue name (``Op.SUM.value == "sum"``; a unit test keeps this list equal to
    ``gtdsl.ops.OPS``)."""

    CHECK_CAST = "check_cast"  # out = in, after checking it against params.target
    CHECK_OP = "check_op"  # residual facts of the op that follows (params.op, params.names)
    CONST = "const"  # out = params.value
    CALL = "call"  # out = gtdsl function params.callee (a module-qualified name)
    EXTERN = "extern"  # out = allowlisted Python name params.path, called or not (params.call)
    GET_FIELD = "get_field"  # out = in.params.field
    GET_ITEM = "get_item"  # out = in[params.index] for tuples and lists
    TUPLE = "tuple"  # out = (in, ...)
    LIST = "list"  # out = [in, ...]
    LIST_CAT = "list_cat"  # out = in0 + in1 on lists (a new list)
    ATTR = "attr"  # out = metadata of a tensor: params.attr in shape, ndim, dtype, device
    GETATTR = "getattr"  # out = the public attribute params.attr of an unchecked value
    COMPARE = "compare"  # out = in0 <params.op> in1 on Python values (operator table)
    BOOL_OP = "bool_op"  # out = in0 and/or in1 ... (params.op)
    RANGE = "range"  # out = the ints of range(in...), at most MAX_RANGE of them
    SLICE = "slice"  # out = slice(in0, in1, in2)
    ASSERT = "assert"  # check the condition in; params.message
    NOT = "not"  # out = not in
    UNARY = "unary"  # out = -in or +in (params.op: neg, pos) on a number or unchecked value
    KERNEL = "kernel"  # outs = one fused kernel over ins (params.kernel); its block: the eqns
    IF = "if"
    FOR = "for"
    YIELD = "yield"  # end of an IF/FOR/KERNEL block: the values of the block's outputs
    RETURN = "return"  # return in from the function
    # the catalogue
    T = "T"
    ABS = "abs"
    ADD = "add"
    ALL = "all"
    AMAX = "amax"
    AMIN = "amin"
    ANY = "any"
    ARANGE = "arange"
    ARGMAX = "argmax"
    ARGMIN = "argmin"
    BMM = "bmm"
    BROADCAST_TO = "broadcast_to"
    CAT = "cat"
    CHUNK = "chunk"
    CLAMP = "clamp"
    CONTIGUOUS = "contiguous"
    COS = "cos"
    CROSS_ENTROPY = "cross_entropy"
    DIV = "div"
    DROPOUT = "dropout"
    EINSUM = "einsum"
    EMBEDDING = "embedding"
    EMPTY = "empty"
    EMPTY_LIKE = "empty_like"
    EQ = "eq"
    ERF = "erf"
    EXP = "exp"
    EXP2 = "exp2"
    EXPAND = "expand"
    FLATTEN = "flatten"
    FLOOR_DIVIDE = "floor_divide"
    FULL = "full"
    FULL_LIKE = "full_like"
    GATHER = "gather"
    GE = "ge"
    GELU = "gelu"
    GETITEM = "getitem"
    GT = "gt"
    INDEX_SELECT = "index_select"
    ISNAN = "isnan"
    LAYER_NORM = "layer_norm"
    LE = "le"
    LINEAR = "linear"
    LOG = "log"
    LOG1P = "log1p"
    LOG2 = "log2"
    LOG_SOFTMAX = "log_softmax"
    LOGICAL_AND = "logical_and"
    LOGICAL_NOT = "logical_not"
    LOGICAL_OR = "logical_or"
    LOGSUMEXP = "logsumexp"
    LT = "lt"
    MASKED_FILL = "masked_fill"
    MASKED_SELECT = "masked_select"
    MATMUL = "matmul"
    MAX = "max"
    MAXIMUM = "maximum"
    MEAN = "mean"
    MIN = "min"
    MINIMUM = "minimum"
    MSE_LOSS = "mse_loss"
    MUL = "mul"
    NARROW = "narrow"
    NE = "ne"
    NEG = "neg"
    NLL_LOSS = "nll_loss"
    NONZERO = "nonzero"
    NORM = "norm"
    ONES = "ones"
    ONES_LIKE = "ones_like"
    PERMUTE = "permute"
    POW = "pow"
    PROD = "prod"
    RAND = "rand"
    RAND_LIKE = "rand_like"
    RANDN = "randn"
    RANDN_LIKE = "randn_like"
    RELU = "relu"
    REMAINDER = "remainder"
    RENAME = "rename"
    RESHAPE = "reshape"
    RMS_NORM = "rms_norm"
    RSQRT = "rsqrt"
    SCALED_DOT_PRODUCT_ATTENTION = "scaled_dot_product_attention"
    SIGMOID = "sigmoid"
    SILU = "silu"
    SIN = "sin"
    SOFTMAX = "softmax"
    SOFTPLUS = "softplus"
    SPLIT = "split"
    SQRT = "sqrt"
    SQUEEZE = "squeeze"
    STACK = "stack"
    STD = "std"
    SUB = "sub"
    SUM = "sum"
    TANH = "tanh"
    TO = "to"
    TRANSPOSE = "transpose"
    TRIL = "tril"
    TRIU = "triu"
    UNFLATTEN = "unflatten"
    UNIQUE = "unique"
    UNSQUEEZE = "unsqueeze"
    VAR = "var"
    VIEW = "view"
    WHERE = "where"
    ZEROS = "zeros"
    ZEROS_LIKE = "zeros_like"
    INDEX_PUT = "index_put"
    INDEX_ADD = "index_add"
    INDEX_COPY = "index_copy"
    PAD = "pad"
    SCATTER = "scatter"
    SCATTER_ADD = "scatter_add"
    SCATTER_REDUCE = "scatter_reduce"
    BATCH_NORM = "batch_norm"
    GROUP_NORM = "group_norm"
    INSTANCE_NORM = "instance_norm"
    INTERPOLATE = "interpolate"
    ADAPTIVE_AVG_POOL1D = "adaptive_avg_pool1d"
    ADAPTIVE_AVG_POOL2D = "adaptive_avg_pool2d"
    ADAPTIVE_MAX_POOL1D = "adaptive_max_pool1d"
    ADAPTIVE_MAX_POOL2D = "adaptive_max_pool2d"
    AVG_POOL1D = "avg_pool1d"
    AVG_POOL2D = "avg_pool2d"
    CONV1D = "conv1d"
    CONV2D = "conv2d"
    CONV_TRANSPOSE2D = "conv_transpose2d"
    MAX_POOL1D = "max_pool1d"
    MAX_POOL2D = "max_pool2d"
    ARGSORT = "argsort"
    CUMMAX = "cummax"
    CUMMIN = "cummin"
    CUMPROD = "cumprod"
    CUMSUM = "cumsum"
    FLIP = "flip"
    KTHVALUE = "kthvalue"
    LOGCUMSUMEXP = "logcumsumexp"
    ONE_HOT = "one_hot"
    REPEAT = "repeat"
    REPEAT_INTERLEAVE = "repeat_interleave"
    ROLL = "roll"
    SORT = "sort"
    TILE = "tile"
    TOPK = "topk"
    CEIL = "ceil"
    CELU = "celu"
    ELU = "elu"
    FLOOR = "floor"
    FRAC = "frac"
    HARDSIGMOID = "hardsigmoid"
    HARDSWISH = "hardswish"
    ISFINITE = "isfinite"
    ISINF = "isinf"
    LEAKY_RELU = "leaky_relu"
    LOGSIGMOID = "logsigmoid"
    MISH = "mish"
    NAN_TO_NUM = "nan_to_num"
    PRELU = "prelu"
    ROUND = "round"
    SELU = "selu"
    SOFTSIGN = "softsign"
    TRUNC = "trunc"

    @property
    def catalogue(self) -> bool:
        """Whether this is a catalogue op (its value names its ``OpDef``)."""
        return self not in STRUCTURAL

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


STRUCTURAL: frozenset[Op] = frozenset(
    op for op in Op if op.name in (
        "CHECK_CAST", "CHECK_OP", "CONST", "CALL", "EXTERN", "GET_FIELD", "GET_ITEM", "TUPLE",
        "LIST", "LIST_CAT", "ATTR", "GETATTR", "COMPARE", "BOOL_OP", "RANGE", "SLICE", "ASSERT",
        "NOT", "UNARY", "KERNEL", "IF", "FOR", "YIELD", "RETURN"))


def op_for(name: str) -> Op:
    """The IR op of catalogue op ``name``."""
    return _OP_BY_NAME[name]


_OP_BY_NAME = {op.value: op for op in Op}  # what ``Op(name)`` finds, without its cost


@record
class Var:
    id: int
    hint: str
    type: Type

    def __str__(self) -> str:
        return f"%{self.hint}{self.id}" if self.hint else f"%{self.id}"


@record
class Lit:
    value: Any
    type: Type

    def __str__(self) -> str:
        return format_value(self.value)


def format_value(v: Any) -> str:
    """A literal as it reads in the IR: sizes as expressions, dtypes and devices by name."""
    if isinstance(v, tuple):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, Size):
        return f"size({v})"
    if isinstance(v, enum.Enum):
        return str(v.value)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return repr(v)
    return str(v)


Atom = Union[Var, Lit]


class BlameKind(enum.Enum):
    ARG = "arg"  # a function's parameter at entry: the caller is blamed
    RET = "ret"  # a function's result against its declared return type
    OP_ARG = "op-arg"  # an argument of an op or call inside a checked body
    ANNOT = "annot"  # a let annotation
    EXTERN = "extern"  # the result of an unchecked import

    __hash__ = object.__hash__  # members are singletons: as `DT` (types/lattice.py)


@record
class Blame:
    """Who is at fault when a run-time check fails (docs/types.md, "Reading an error")."""

    kind: BlameKind
    function: str
    span: Span | None = field(compare=False)
    what: str  # e.g. "argument `x`", "the result", "`hardswish(...)`"
    positive: bool = True  # True: the value's producer is blamed; False: its consumer
    origin: Span | None = field(default=None, compare=False)  # where the vaguer type came from
    param: str | None = None  # ARG: the parameter's name

    def __str__(self) -> str:
        where = self.span.location if self.span is not None else "?"
        return f"{self.kind.value} {self.what} of {self.function} at {where}"


@record
class Eqn:
    op: Op
    ins: tuple[Atom, ...]
    outs: tuple[Var, ...]
    params: tuple[tuple[str, Any], ...] = ()
    blocks: tuple[Block, ...] = ()
    span: Span | None = field(default=None, compare=False)

    def param(self, name: str, default: Any = None) -> Any:
        return next((v for k, v in self.params if k == name), default)


@record
class Block:
    eqns: tuple[Eqn, ...]


@record
class Function:
    """One checked function: what calling and running it needs, and nothing of the source.

    ``names`` are the parameters' names (Python's call rules bind by them), ``defaults``
    the literal defaults by name, ``size_vars`` the size variables a caller may give by
    keyword or the entry binds, ``signature`` the checked signature as source text."""

    name: str  # module-qualified
    params: tuple[Var, ...]
    returns: Type
    body: Block
    span: Span | None = field(default=None, compare=False)
    names: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    param_spans: tuple[Span | None, ...] = field(default=(), compare=False)
    size_vars: tuple[str, ...] = ()
    doc: str | None = None
    signature: str = ""

    def param_names(self) -> tuple[str, ...]:
        return self.names or tuple(p.hint for p in self.params)


@record
class Field:
    name: str
    type: Type
    span: Span | None = field(default=None, compare=False)


@record
class StructDecl:
    """A struct declaration: its size parameters and its fields' declared types."""

    name: str
    params: tuple[str, ...]
    fields: tuple[Field, ...]
    span: Span | None = field(default=None, compare=False)

    def field_types(self) -> dict[str, Type]:
        return {f.name: f.type for f in self.fields}


@record
class Program:
    """A checked module and what it imports: every function (callees first), every struct,
    and the names the module exports (its own functions and the ones it imports, by the
    name the module uses, to their qualified names)."""

    functions: tuple[Function, ...]
    structs: tuple[StructDecl, ...] = ()
    exports: tuple[tuple[str, str], ...] = ()

    def function(self, name: str) -> Function:
        return next(f for f in self.functions if f.name == name)

    def struct(self, name: str) -> StructDecl | None:
        return next((s for s in self.structs if s.name == name), None)


def walk(block: Block) -> Iterator[Eqn]:
    """Every eqn of a block, nested blocks included, in order."""
    for eqn in block.eqns:
        yield eqn
        for b in eqn.blocks:
            yield from walk(b)


def count(fn: Function | Program, op: Op) -> int:
    fns = fn.functions if isinstance(fn, Program) else (fn,)
    return sum(1 for f in fns for e in walk(f.body) if e.op is op)
