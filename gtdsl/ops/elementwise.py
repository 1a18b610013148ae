"""Elementwise ops: unary maths and activations, binary arithmetic and comparisons,
``where``, ``clamp``, ``masked_fill``, ``to``, ``dropout``.

Shapes broadcast value-directedly; dtypes follow ``torch.result_type``; devices must agree.
Two Python numbers combine as numbers: ``D // H`` on ints that name sizes is a size.
"""

from __future__ import annotations

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, TDyn, TOther, TScalar, TTensor, broadcast_shapes, float_dtype,
    is_tensorish, promote, rank_of, real_dtype, reject_complex, require_float,
    require_inexact, same_device, tensor_of,
)
from gtdsl.ops.operators import names
from gtdsl.ops.table import define
from gtdsl.types import DYN, TENSOR, ScalarKind, Size, Type
from gtdsl.types.lattice import Dev
from gtdsl.types.torchrules import probe

FLOAT_MATH = ("exp", "exp2", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh",
              "erf", "sigmoid")
ACTIVATIONS = ("gelu", "silu", "softplus")


def _is_bool(dt: DT) -> bool:
    return dt is DT.BOOL


def _make_float_math(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        if op == "erf":
            reject_complex(x.dtype, "input", op)
        return TTensor(float_dtype(x.dtype), x.shape, x.device)

    return relation


for _op in FLOAT_MATH:
    define(_op, "input", "torch.{name}", "elementwise")(_make_float_math(_op))


def _make_signed(op: str):
    """neg, abs, relu: the input's dtype (abs of a complex tensor: its magnitudes' dtype)."""

    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        if _is_bool(x.dtype):
            raise OpError("GT2002", f"`{op}` is not defined on bool tensors", "input",
                          "convert first: x.to(f32) or x.to(i64)")
        if op == "relu":
            reject_complex(x.dtype, "input", op)
        if op == "abs":
            return TTensor(real_dtype(x.dtype), x.shape, x.device)
        return x

    return relation


for _op in ("neg", "abs", "relu"):
    define(_op, "input", "torch.{name}", "elementwise")(_make_signed(_op))


@define("gelu", "input, approximate='none'", "torch.nn.functional.gelu", "elementwise")
def _gelu(rel: Rel, a: dict[str, Arg]) -> Type:
    approx = a["approximate"].value
    if isinstance(approx, str) and approx not in ("none", "tanh"):
        raise OpError("GT2027", f"approximate must be 'none' or 'tanh', got {approx!r}",
                      "approximate")
    return _activation(a, "gelu")


@define("silu", "input", "torch.nn.functional.silu", "elementwise")
def _silu(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_inexact(x.dtype, "input", "silu")
    return x


@define("softplus", "input, beta=1.0, threshold=20.0", "torch.nn.functional.softplus",
        "elementwise")
def _softplus(rel: Rel, a: dict[str, Arg]) -> Type:
    return _activation(a, "softplus")


def _activation(a: dict[str, Arg], op: str) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", op)
    return x


@define("dropout", "input, p=0.5, training=True", "torch.nn.functional.dropout", "elementwise")
def _dropout(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    p = a["p"].value
    if isinstance(p, (int, float)) and not isinstance(p, bool) and not 0 <= p <= 1:
        raise OpError("GT2027", f"dropout probability must be in [0, 1], got {p}", "p")
    # like torch, dropout that cannot change anything (p 0 or 1, or not training) takes any
    # dtype; otherwise it draws random floats (and from torch 2.15 takes complex inputs)
    if not (a["training"].value is False or (isinstance(p, (int, float)) and p in (0, 1))):
        (require_inexact if probe("dropout_complex") else require_float)(
            x.dtype, "input", "dropout")
    return x


@define("isnan", "input", "torch.isnan", "elementwise")
def _isnan(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    return TTensor(DT.BOOL, x.shape, x.device)


@define("logical_not", "input", "torch.logical_not", "elementwise")
def _logical_not(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    return TTensor(DT.BOOL, x.shape, x.device)


# ============================================================================ binary

# the operator table's tensor operators (matmul is a linear-algebra op)
ARITH = {name: sym for name, sym in names("binary").items() if name != "matmul"}
COMPARE = names("compare")


def _positive(s: Size) -> bool:
    c = s.constant()
    return c is None or c > 0


def _scalar_arith(op: str, x: TScalar, y: TScalar) -> Type:
    """Python numbers: ints stay ints (and sizes stay sizes), ``/`` gives a float."""
    if op in COMPARE:
        return TScalar(ScalarKind.BOOL)
    if op == "div" or x.kind is ScalarKind.FLOAT or y.kind is ScalarKind.FLOAT:
        return TScalar(ScalarKind.FLOAT)
    if op == "pow" and (x.kind is ScalarKind.INT or y.kind is ScalarKind.INT):
        # int ** int: a float when the power is < 0
        k = y.value.constant() if y.value is not None else None
        if k is None and y.kind is ScalarKind.INT:
            return DYN  # int or float, by the power's sign at run time
        if k is not None and k < 0:
            return TScalar(ScalarKind.FLOAT)
    value = None
    if x.value is not None and y.value is not None:
        if op == "add":
            value = x.value + y.value
        elif op == "sub":
            value = x.value - y.value
        elif op == "mul":
            value = x.value * y.value
        elif op == "floor_divide" and _positive(y.value):  # sizes' // and %: by a
            value = x.value.floordiv(y.value)           # positive divisor, as Python's
        elif op == "remainder" and _positive(y.value):
            value = x.value.mod(y.value)
        elif op == "pow" and (k := y.value.constant()) is not None and 0 <= k <= 8:
            value = Size.of(1)
            for _ in range(k):
                value = value * x.value
        if value is not None and (c := value.constant()) is not None and c < 0:
            value = Size.of(c)
    return TScalar(ScalarKind.INT, value)


def _bool_operand(t: Type) -> bool:
    return (isinstance(t, TScalar) and t.kind is ScalarKind.BOOL) or (
        isinstance(t, TTensor) and t.dtype is DT.BOOL)


def _names(op: str) -> tuple[str, str, str]:
    """How messages name a binary op: its symbol, and the what-strings of the device and
    shape checks (the latter names comparisons by op name)."""
    symbol = ARITH.get(op, COMPARE.get(op, op))
    return symbol, f"`{symbol}`", f"`{ARITH.get(op, op)}`"


# made once per op rather than on every call
_NAMES = {op: _names(op) for op in (*ARITH, *COMPARE, "logical_and", "logical_or", "maximum")}
_NO_COMPLEX = frozenset(("floor_divide", "remainder", "lt", "le", "gt", "ge", "maximum"))


def _operand_tensors(tx: Type, ty: Type) -> list[tuple[str, TTensor]]:
    """The tensor operands, by name: tensors first, then ``?`` operands as unknown tensors."""
    if isinstance(tx, TTensor):
        if isinstance(ty, TTensor):
            return [("input", tx), ("other", ty)]
        return [("input", tx), ("other", TENSOR)] if isinstance(ty, TDyn) else [("input", tx)]
    if isinstance(ty, TTensor):
        return [("other", ty), ("input", TENSOR)] if isinstance(tx, TDyn) else [("other", ty)]
    return [(n, TENSOR) for n, t in (("input", tx), ("other", ty)) if isinstance(t, TDyn)]


def binary(rel: Rel, op: str, x: Arg, y: Arg) -> Type:
    tx, ty = x.type, y.type
    if isinstance(tx, TScalar) and isinstance(ty, TScalar):
        return _scalar_arith(op, tx, ty)
    if op in ("logical_and", "logical_or"):
        for name, arg in (("input", x), ("other", y)):
            if isinstance(arg.type, TScalar):
                raise OpError("GT2016", f"`{op}` needs tensors, got a Python "
                              f"{arg.type.kind.value}", name,
                              "compare first, e.g. logical_and(x > 0, y > 0)")
    for name, t in (("input", tx), ("other", ty)):
        if not isinstance(t, (TTensor, TDyn, TScalar)):  # a tensor, ``?`` or a number
            raise OpError("GT2016", f"`{ARITH.get(op, COMPARE.get(op, op))}` needs tensors or "
                          f"numbers, got {t}", name)
    if isinstance(tx, TDyn) and isinstance(ty, TDyn):
        return DYN
    tensors = _operand_tensors(tx, ty)
    symbol, device_what, shape_what = _NAMES.get(op) or _names(op)
    device = same_device(tensors, device_what)
    shape = broadcast_shapes(rel, [t.shape for _, t in tensors], shape_what)
    dtype = promote([tx, ty])
    if op == "sub" and (_bool_operand(tx) or _bool_operand(ty)):
        raise OpError("GT2002", "`-` is not defined on bool operands", None,
                      "invert a mask with logical_not, or convert with .to(i64)")
    if op in ("floor_divide", "remainder", "pow") and dtype is DT.BOOL and not (
            op == "pow" and isinstance(ty, TScalar)):  # x ** True is x, like torch
        raise OpError("GT2002", f"`{symbol}` is not defined on two bool operands", None,
                      "convert one side with .to(i64)")
    if op in _NO_COMPLEX:
        reject_complex(dtype, None, symbol if op != "maximum" else "minimum/maximum")
    if op == "pow" and isinstance(ty, TScalar) and ty.kind is ScalarKind.INT and (
            ty.value is not None and (k := ty.value.constant()) is not None and k < 0) and (
            dtype is DT.INT or dtype.category in (DT.INT, DT.UINT)):
        raise OpError("GT2027", f"an integer tensor cannot be raised to the negative power "
                      f"{k}", "other", "convert first: x.to(f32) ** k")
    if op == "div":
        dtype = float_dtype(dtype)
    if op in COMPARE or op in ("logical_and", "logical_or"):
        dtype = DT.BOOL
    return TTensor(dtype, shape, device)


def _make_binary(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        return binary(rel, op, a["input"], a["other"])

    return relation


for _op in (*ARITH, *COMPARE, "logical_and", "logical_or"):
    define(_op, "input, other", "torch.{name}", "elementwise")(_make_binary(_op))


@define(("minimum", "maximum"), "input, other", "torch.{name}", "elementwise")
def _min_max(rel: Rel, a: dict[str, Arg]) -> Type:
    for name in ("input", "other"):
        tensor_of(a[name], name)
    return binary(rel, "maximum", a["input"], a["other"])


@define("where", "condition, input, other", "torch.where", "elementwise", method=False)
def _where(rel: Rel, a: dict[str, Arg]) -> Type:
    cond = tensor_of(a["condition"], "condition")
    if cond.dtype not in (DT.BOOL, DT.U8, DT.UINT, DT.ANY):
        raise OpError("GT2002", f"`where` needs a bool condition, got {cond.dtype}",
                      "condition", "compare first, e.g. where(x > 0, x, 0.0)")
    vals = [a["input"], a["other"]]
    tensors = [("condition", cond)] + [
        (n, tensor_of(v, n)) for n, v in zip(("input", "other"), vals)
        if not isinstance(v.type, TScalar)]
    device = same_device(tensors, "`where`")
    shape = broadcast_shapes(rel, [t.shape for _, t in tensors], "`where`")
    return TTensor(promote([v.type for v in vals]), shape, device)


@define("clamp", "input, min=None, max=None", "torch.clamp", "elementwise")
def _clamp(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    named = [(n, a[n]) for n in ("min", "max") if not isinstance(a[n].type, TOther)]
    if not named:
        raise OpError("GT2013", "`clamp` needs `min` or `max`", None,
                      "pass clamp(x, min=...) or clamp(x, max=...)")
    if len({isinstance(b.type, TScalar) for _, b in named}) > 1:
        # like torch: with a number for one bound, the other must be a number too; a 0-dim
        # tensor is read as one
        named = [(n, _as_number(b, n)) for n, b in named]
    bounds = [b for _, b in named]
    tensors = [("input", x)] + [(n, tensor_of(b, n)) for n, b in named if is_tensorish(b.type)]
    device = same_device(tensors, "`clamp`")
    shape = broadcast_shapes(rel, [t.shape for _, t in tensors], "`clamp`")
    dtype = promote([x, *(b.type for b in bounds)])
    reject_complex(dtype, "input", "clamp")
    if dtype is DT.BOOL and (len(bounds) == 2 or isinstance(bounds[0].type, TScalar)):
        # like torch, which clamps bool tensors only by one tensor bound (maximum/minimum)
        raise OpError("GT2002", "`clamp` of a bool tensor is not defined", "input",
                      "convert first: x.to(i64)")
    return TTensor(dtype, shape, device)


def _as_number(b: Arg, name: str) -> Arg:
    t = b.type
    if not isinstance(t, TTensor):
        return b
    if rank_of(t.shape) != 0:
        raise OpError("GT2013", "`clamp` takes two numbers or two tensors as bounds, not one "
                      "of each", name, "write clamp(clamp(x, min=...), max=...)")
    reject_complex(t.dtype, name, "clamp")
    kind = {DT.BOOL: ScalarKind.BOOL, DT.INT: ScalarKind.INT, DT.UINT: ScalarKind.INT,
            DT.FLOAT: ScalarKind.FLOAT}.get(t.dtype.category)
    return Arg(TScalar(kind) if kind else t)


@define("masked_fill", "input, mask, value", "torch.masked_fill", "elementwise")
def _masked_fill(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    mask = tensor_of(a["mask"], "mask")
    if mask.dtype not in (DT.BOOL, DT.ANY):
        raise OpError("GT2002", f"`masked_fill` needs a bool mask, got {mask.dtype}", "mask")
    value = a["value"].type
    if isinstance(value, TTensor) and rank_of(value.shape) not in (0, None):
        raise OpError("GT2005", "`masked_fill` takes a number or a 0-dim tensor as its value",
                      "value")
    device = same_device([("input", x), ("mask", mask)], "`masked_fill`")
    # like torch, the result has the broadcast shape of the input and the mask
    out = broadcast_shapes(rel, [x.shape, mask.shape], "`masked_fill` mask")
    return TTensor(x.dtype, out, device)


@define("to", "input, dtype=None, device=None", "Tensor.to", "elementwise")
def _to(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    dtype, device = x.dtype, x.device
    for name in ("dtype", "device"):
        v, vt = a[name].value, a[name].type
        if isinstance(v, DT):
            dtype = v
        elif isinstance(v, Dev):
            device = v
        elif isinstance(vt, TOther) and vt.what in ("dtype", "device"):
            if vt.what == "dtype":
                dtype = DT.ANY
            else:
                device = Dev()
        elif v is not None:
            raise OpError("GT2016", f"`to` takes a dtype or a device, got {a[name].type}", name,
                          "write x.to(f16) or x.to(device=cuda)")
    return TTensor(dtype, x.shape, device)


@define("contiguous", "input", "Tensor.contiguous", "shape")
def _contiguous(rel: Rel, a: dict[str, Arg]) -> Type:
    return tensor_of(a["input"], "input")


# ============================================================================ more unary ops

# rounding keeps the dtype: floats round, ints are their own rounding; bool and complex
# have none (torch: "not implemented for 'Bool'")
ROUNDING = ("floor", "ceil", "trunc")


def _make_rounding(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        if _is_bool(x.dtype):
            raise OpError("GT2002", f"`{op}` is not defined on bool tensors", "input",
                          "convert first: x.to(f32)")
        reject_complex(x.dtype, "input", op)
        return x

    return relation


for _op in ROUNDING:
    define(_op, "input", "torch.{name}", "elementwise")(_make_rounding(_op))


@define("round", "input, *, decimals=0", "torch.round", "elementwise")
def _round(rel: Rel, a: dict[str, Arg]) -> Type:
    x = _make_rounding("round")(rel, a)
    decimals = a["decimals"].value
    if isinstance(decimals, int) and decimals != 0 and not isinstance(decimals, bool):
        assert isinstance(x, TTensor)
        require_float(x.dtype, "input", "round with decimals")
    return x


@define("frac", "input", "torch.frac", "elementwise")
def _frac(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", "frac")
    return x


@define("nan_to_num", "input, nan=0.0, posinf=None, neginf=None", "torch.nan_to_num",
        "elementwise")
def _nan_to_num(rel: Rel, a: dict[str, Arg]) -> Type:
    return tensor_of(a["input"], "input")


def _make_predicate(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        return TTensor(DT.BOOL, x.shape, x.device)

    return relation


for _op in ("isinf", "isfinite"):
    define(_op, "input", "torch.{name}", "elementwise")(_make_predicate(_op))


# activations on floating-point tensors only (torch has no integer kernels for them)
FLOAT_ACTIVATIONS = {
    "leaky_relu": "input, negative_slope=0.01", "elu": "input, alpha=1.0", "selu": "input",
    "celu": "input, alpha=1.0", "mish": "input", "hardswish": "input",
    "hardsigmoid": "input", "logsigmoid": "input",
}


def _make_float_activation(op: str):
    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        return _activation(a, op)

    return relation


for _op, _params in FLOAT_ACTIVATIONS.items():
    define(_op, _params, "torch.nn.functional.{name}", "elementwise")(
        _make_float_activation(_op))


@define("softsign", "input", "torch.nn.functional.softsign", "elementwise")
def _softsign(rel: Rel, a: dict[str, Arg]) -> Type:
    """x / (1 + |x|): ints divide into the default float; bool has no abs."""
    x = tensor_of(a["input"], "input")
    if _is_bool(x.dtype):
        raise OpError("GT2002", "`softsign` is not defined on bool tensors", "input",
                      "convert first: x.to(f32)")
    return TTensor(float_dtype(x.dtype), x.shape, x.device)


@define("prelu", "input, weight", "torch.nn.functional.prelu", "elementwise", method=False)
def _prelu(rel: Rel, a: dict[str, Arg]) -> Type:
    """One slope (weight of one element) or one per channel (dim 1 of the input)."""
    x = tensor_of(a["input"], "input")
    w = tensor_of(a["weight"], "weight")
    require_float(x.dtype, "input", "prelu")
    same_device([("input", x), ("weight", w)], "`prelu`")
    if x.dtype.is_concrete and w.dtype.is_concrete and x.dtype is not w.dtype:
        raise OpError("GT2002", f"`prelu` weight is {w.dtype} for an input of {x.dtype}",
                      "weight", "the weight has the input's dtype")
    if w.shape.row is None and len(w.shape.dims) > 1:
        raise OpError("GT2005", f"`prelu` weight must have one dim, got `{w.shape}`", "weight")
    if w.shape.row is None and len(w.shape.dims) == 1:
        n = w.shape.dims[0].size
        if n is not None and n.constant() != 1:
            channels = x.shape.dims[1].size if x.shape.row is None and len(
                x.shape.dims) >= 2 else None
            if x.shape.row is None and len(x.shape.dims) < 2:
                raise OpError("GT2005", "`prelu` with one slope per channel needs an input "
                              "of at least 2 dims (channels are dim 1)", "input")
            rel.equal(n, channels, "`prelu` weight size against the input's channels (dim 1)",
                      "weight")
    return x
