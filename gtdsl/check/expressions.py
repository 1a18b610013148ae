"""Checking expressions: names, constants, operators (Python arithmetic on ints folded to
constants, bounded), conditional expressions, attributes (struct fields, tensor metadata),
subscripts and the dispatch of a call to an op, a gtdsl function or a Python name. An operand
of unknown type takes the type its context expects (bidirectional checking).
"""

from __future__ import annotations

from functools import partial
import math
import operator
from typing import Any

from gtdsl.check.builder import V
from gtdsl.check.calls import CallChecker, is_python_value
from gtdsl.check.env import struct_field_type
from gtdsl.check.messages import kind_of, short_int, undefined_help
from gtdsl.diagnostics import Span
from gtdsl.ir.core import BlameKind, Block, Eqn, Lit, Op
from gtdsl.ops import OPS, UNKNOWN, Arg
from gtdsl.ops.operators import BY_NAME as OPERATORS_BY_NAME, by_symbol
from gtdsl.ops.operators import names as operator_names
from gtdsl.syntax import ast
from gtdsl.ops.base import numel_of
from gtdsl.syntax.unparse import unparse_expr
from gtdsl.types import (
    DT, DYN, Dev, DynReason, ScalarKind, Size, TDyn, TList, TOther, TScalar, TStruct, TTensor,
    TTuple, Type, join,
)

# The bits of an int constant: a limit that keeps checking and running bounded.
MAX_CONSTANT_BITS = 4096
# the syntax tree's operators to their catalogue ops, through the one operator table
BINOPS = {ast.BinOpKind(sym): name for name, sym in operator_names("binary").items()}
CMPOPS = {ast.CmpOp(sym): name for name, sym in operator_names("compare").items()}
SYMBOLS = operator_names("binary", "compare")
_PY_COMPARE = ("compare", "membership", "identity")
_FOLD = {"mul": operator.mul, "pow": operator.pow}
DTYPE_NAMES = {d.value: d for d in DT if d.is_concrete and d not in (DT.C32, DT.BC32)}
DEVICE_NAMES = {"cpu": Dev("cpu"), "cuda": Dev("cuda")}
_GROWS = ("add", "sub", "mul", "pow", "floor_divide", "remainder")
_MAX_SIZE_TERMS = 256  # terms of a size polynomial the checker tracks


def _empty(v: V) -> bool:
    """Whether ``v`` is the literal ``[]`` (its element type says nothing)."""
    return isinstance(v.value, tuple) and not v.value


class ExprChecker(CallChecker):
    def expr(self, e: ast.Expr, env: dict[str, V], expected: Type | None = None) -> V:
        if isinstance(e, ast.BinOp) and expected is not None and e.op is not ast.BinOpKind.MATMUL:
            left, right = self.expr(e.left, env), self.expr(e.right, env)
            # Bidirectional: an unknown operand of an elementwise op takes the expected type.
            if isinstance(expected, TTensor):
                for side in ("left", "right"):
                    v = left if side == "left" else right
                    if isinstance(v.type, TDyn) and v.type.reason is not DynReason.ERROR:
                        kind = BlameKind.EXTERN if v.extern else BlameKind.OP_ARG
                        c = self.coerce(v, expected, partial(
                            self.blame, kind, "this operand", v.span, v.origin), None,
                            "this operand", v.span)
                        left, right = (c, right) if side == "left" else (left, c)
            return self.binary(BINOPS[e.op], left, right, e.span)
        v = self._expr(e, env)
        if v.unresolved:
            return self.error("GT1001", f"undefined name `{v.label}`", e.span, "not defined",
                              help=undefined_help(v.label, env, self.fn))
        return v

    def _expr(self, e: ast.Expr, env: dict[str, V]) -> V:
        t: Type
        # the common kinds first (no AST class has subclasses)
        if type(e) is ast.Name:
            return self.name(e, env)
        if type(e) is ast.Call:
            return self.call(e, env)
        if type(e) is ast.Attribute:
            return self.attribute(e, env)
        if type(e) is ast.BinOp:
            return self.binary(BINOPS[e.op], self.expr(e.left, env), self.expr(e.right, env),
                               e.span)
        if type(e) is ast.Subscript:
            return self.subscript(e, env)
        if isinstance(e, ast.Int):
            t = TScalar(ScalarKind.INT, Size.of(e.value))
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Float):
            t = TScalar(ScalarKind.FLOAT)
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Bool):
            t = TScalar(ScalarKind.BOOL)
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.Str):
            t = TOther("str")
            return V(t, Lit(e.value, t), value=e.value, span=e.span)
        if isinstance(e, ast.NoneLit):
            t = TOther("none")
            return V(t, Lit(None, t), value=None, span=e.span)
        if isinstance(e, ast.EllipsisLit):
            t = TOther("ellipsis")
            return V(t, Lit(Ellipsis, t), value=Ellipsis, span=e.span)
        if isinstance(e, ast.BinOp):
            return self.binary(BINOPS[e.op], self.expr(e.left, env), self.expr(e.right, env),
                               e.span)
        if isinstance(e, ast.UnaryOp):
            v = self.expr(e.operand, env)
            if e.op is not ast.UnaryOpKind.NOT:
                return self.unary("-" if e.op is ast.UnaryOpKind.NEG else "+", v, e.span)
            if isinstance(v.type, (TTensor,)):
                return self.op_call("logical_not", [v], {}, e.span)
            out = self.var("not", TScalar(ScalarKind.BOOL))
            self.emit(Op.NOT, (v.atom,), (out,), span=e.span)
            return V(out.type, out, span=e.span)
        if isinstance(e, ast.BoolOp):
            vals = [self.expr(x, env) for x in e.values]
            if any(isinstance(v.type, TTensor) for v in vals):
                name = "logical_and" if e.op is ast.BoolOpKind.AND else "logical_or"
                acc = vals[0]
                for v in vals[1:]:
                    acc = self.op_call(name, [acc, v], {}, e.span)
                return acc
            t = TScalar(ScalarKind.BOOL)
            out_v = self.var(e.op.value, t)
            self.emit(Op.BOOL_OP, tuple(v.atom for v in vals), (out_v,),
                      (("op", by_symbol(e.op.value, ("bool",)).name),), span=e.span)
            return V(t, out_v, span=e.span)
        if isinstance(e, ast.Compare):
            return self.compare(e, env)
        if isinstance(e, ast.IfExp):
            return self.if_exp(e, env)
        if isinstance(e, (ast.Tuple, ast.List)):
            vals = [self.expr(x, env) for x in e.elts]
            if isinstance(e, ast.Tuple):
                t = TTuple(tuple(v.type for v in vals))
            else:
                elem: Type = vals[0].type if vals else DYN
                for v in vals[1:]:
                    elem = join(elem, v.type)
                t = TList(elem)
            out = self.var("tup", t)
            self.emit(Op.TUPLE if isinstance(e, ast.Tuple) else Op.LIST,
                      tuple(v.atom for v in vals), (out,), span=e.span)
            return V(t, out, value=tuple(self.arg(v) for v in vals), span=e.span)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, env)
        if isinstance(e, ast.Subscript):
            return self.subscript(e, env)
        if isinstance(e, ast.Call):
            return self.call(e, env)
        raise AssertionError(f"unexpected expression {e!r}")

    def compare(self, e: ast.Compare, env: dict[str, V]) -> V:
        """A chain of comparisons: an op on tensors and numbers, Python's comparison on
        other values; the links of a chain of tensor comparisons are and-ed."""
        left = self.expr(e.left, env)
        result = None
        for op, comp in zip(e.ops, e.comparators):
            right = self.expr(comp, env)
            if op not in CMPOPS or not any(isinstance(x.type, (TTensor, TScalar))
                                           for x in (left, right)) or isinstance(
                    left.type, TOther) or isinstance(right.type, TOther):
                t = TScalar(ScalarKind.BOOL)
                out = self.var("cmp", t)
                self.emit(Op.COMPARE, (left.atom, right.atom), (out,),
                          (("op", by_symbol(op.value, _PY_COMPARE).name),), span=e.span)
                part = V(t, out, span=e.span)
            else:
                part = self.binary(CMPOPS[op], left, right, e.span)
            result = part if result is None else self.op_call(
                "logical_and", [result, part], {}, e.span) if isinstance(
                part.type, TTensor) else part
            left = right
        assert result is not None  # the parser builds a comparison of at least one link
        return result

    def unary(self, sym: str, v: V, span: Span | None) -> V:
        """``-v`` or ``+v``: a tensor op on a tensor, Python's arithmetic on a number (a
        bool becomes an int), and on a value of unknown type whichever it is at run time."""
        t = v.type
        rt: Type
        if isinstance(t, TTensor):
            return self.op_call("neg", [v], {}, span) if sym == "-" else v.but(span=span)
        if isinstance(t, TScalar):
            atom = v.atom
            number = _literal_number(atom.value) if isinstance(atom, Lit) else None
            if number is not None:
                value = -number if sym == "-" else number
                kind = ScalarKind.FLOAT if isinstance(value, float) else ScalarKind.INT
                rt = TScalar(kind, Size.of(value) if isinstance(value, int) else None)
                return V(rt, Lit(value, rt), value=value, span=span)
            if sym == "+" and t.kind is not ScalarKind.BOOL:
                return v.but(span=span)
            kind = ScalarKind.FLOAT if t.kind is ScalarKind.FLOAT else ScalarKind.INT
            size = (-t.value if sym == "-" else t.value) if kind is ScalarKind.INT and \
                t.kind is ScalarKind.INT and t.value is not None else None
            rt = TScalar(kind, size)
            out = self.var("neg" if sym == "-" else "pos", rt)
            self.emit(Op.UNARY, (v.atom,), (out,),
                      (("op", by_symbol(sym, ("unary",)).name),), span=span)
            known: Any = UNKNOWN
            if size is not None:
                known = size.constant() if size.constant() is not None else size
            return V(rt, out, value=known, span=span)
        if isinstance(t, TDyn):
            if t.reason is DynReason.ERROR:
                return v
            rt = TDyn(t.reason)
            out = self.var("neg" if sym == "-" else "pos", rt)
            self.emit(Op.UNARY, (v.atom,), (out,),
                      (("op", by_symbol(sym, ("unary",)).name),), span=span)
            return V(rt, out, span=span, origin=v.origin, extern=v.extern)
        return self.error("GT2016", f"unary `{sym}` needs a tensor or a number, got "
                          f"{kind_of(t)}", span, f"this has type {t}")

    def name(self, e: ast.Name, env: dict[str, V]) -> V:
        n = e.id
        t: Type
        if n in env:
            return env[n].but(span=e.span, label=None)
        if n in self.fn.size_vars or n in self.rigid and n not in self.fn.row_vars:
            t = TScalar(ScalarKind.INT, Size.of(n))  # its value: the size bound at run time
            return V(t, Lit(Size.of(n), t), value=Size.of(n), label=n, span=e.span)
        if n in self.fn.row_vars:
            return self.error("GT2024", f"`{n}` is a row variable: `*{n}` stands for several "
                              "dims, not one size", e.span, "used as a value",
                              help="read the dims from a tensor's shape, e.g. `x.shape`")
        if n in DTYPE_NAMES:
            t = TOther("dtype")
            return V(t, Lit(DTYPE_NAMES[n], t), value=DTYPE_NAMES[n], span=e.span)
        if n in DEVICE_NAMES:
            t = TOther("device")
            return V(t, Lit(DEVICE_NAMES[n], t), value=DEVICE_NAMES[n], span=e.span)
        mod = self.fn.module
        if n in mod.externs and is_python_value(self.s.allowed, mod.externs[n]):
            return self.python_value(mod.externs[n], e.span)  # `from math import inf`
        if n in mod.constants:  # a number from a jitted function's module, as if written out
            return self.constant(mod.constants[n], e.span)
        if n in mod.refused:
            return self.refused(n, e.span)
        if mod.function(n) is not None or n in OPS or n in mod.externs:
            return self.error("GT2024", f"`{n}` is a function; functions are not values here",
                              e.span, "used as a value", help=f"call it: {n}(...)")
        if n in mod.py_modules:
            return self.error("GT2024", f"`{n}` is a module", e.span, "used as a value",
                              help=f"use one of its names: {n}.NAME")
        t = TOther("label")
        return V(t, Lit(n, t), value=UNKNOWN, label=n, span=e.span, unresolved=True)

    def if_exp(self, e: ast.IfExp, env: dict[str, V]) -> V:
        test = self.expr(e.test, env)
        vals, blocks = [], []
        for branch in (e.body, e.orelse):
            self.blocks.append([])
            v = self.expr(branch, env)
            self.blocks[-1].append(Eqn(Op.YIELD, (v.atom,), ()))
            blocks.append(Block(tuple(self.blocks.pop())))
            vals.append(v)
        t = join(vals[0].type, vals[1].type)
        out = self.var("ifexp", t)
        self.emit(Op.IF, (test.atom,), (out,), (), tuple(blocks), e.span)
        value = vals[0].value if vals[0].value == vals[1].value else UNKNOWN
        return V(t, out, value=value, span=e.span)

    def attribute(self, e: ast.Attribute, env: dict[str, V]) -> V:
        base = e.value
        mod = self.fn.module
        path = self.python_path(e, env)
        if path is not None:
            refused = self.python_name(path, e.span)
            if refused is not None:
                return refused
            return self.python_value(path, e.span)
        v = self.expr(base, env)
        t = v.type
        if isinstance(t, TStruct):
            info = self.s.structs.get(t.name) if mod.struct(t.name) is None else mod.struct(
                t.name)
            ft = struct_field_type(info, e.attr, t.args) if info is not None else None
            if ft is None or info is None:
                fields = ", ".join(info.fields) if info is not None else ""
                return self.error("GT1007", f"`{t.name}` has no field `{e.attr}`", e.span,
                                  "no such field", ((info.decl.span if info else None,
                                                     f"`{t.name}` declared here"),),
                                  help=f"its fields are: {fields}")
            out = self.var(e.attr, ft)
            self.emit(Op.GET_FIELD, (v.atom,), (out,), (("field", e.attr),), span=e.span)
            return V(ft, out, span=e.span, decl=info.fields[e.attr][1].span)
        if isinstance(t, (TTensor, TDyn)):
            if e.attr == "T":
                return self.op_call("T", [v], {}, e.span)
            if e.attr in ("shape", "ndim", "dtype", "device"):
                return self.metadata(v, e.attr, e.span)
        if isinstance(t, TDyn):
            if e.attr.startswith("_"):
                return self.error("GT1012", f"`{e.attr}` is a private attribute", e.span,
                                  "not allowed", help="a .gt file may read only public "
                                  "attributes (names not starting with `_`) of unchecked "
                                  "values")
            out = self.var(e.attr, TDyn(DynReason.INFERRED))
            self.emit(Op.GETATTR, (v.atom,), (out,), (("attr", e.attr),), span=e.span)
            return V(out.type, out, span=e.span, origin=e.span)
        return self.error("GT1011", f"{kind_of(t)} has no attribute `{e.attr}`", e.span,
                          "unknown attribute", help="tensors have .T, .shape, .ndim, .dtype, "
                          ".device and every op as a method" if isinstance(t, TTensor) else None)

    def metadata(self, v: V, attr: str, span: Span | None) -> V:
        t = v.type if isinstance(v.type, TTensor) else TTensor()
        value: Any = UNKNOWN
        rt: Type
        if attr == "shape":
            if t.shape.row is None:
                elems = tuple(TScalar(ScalarKind.INT, d.size) for d in t.shape.dims)
                rt = TTuple(elems)
                value = tuple(Arg(x, x.value if x.value is not None else UNKNOWN)
                              for x in elems)
            else:
                rt = TList(TScalar(ScalarKind.INT))
        elif attr == "ndim":
            r = len(t.shape.dims) if t.shape.row is None else None
            rt = TScalar(ScalarKind.INT, Size.of(r) if r is not None else None)
            value = r if r is not None else UNKNOWN
        elif attr == "numel":
            n = numel_of(t.shape)
            rt = TScalar(ScalarKind.INT, n)
            value = n.constant() if n is not None and n.constant() is not None else UNKNOWN
        elif attr == "dtype":
            rt = TOther("dtype")
            value = t.dtype if t.dtype.is_concrete else UNKNOWN
        else:
            rt = TOther("device")
            value = t.device if t.device.kind is not None else UNKNOWN
        out = self.var(attr, rt)
        self.emit(Op.ATTR, (v.atom,), (out,), (("attr", attr),), span=span)
        return V(rt, out, value=value, span=span)

    def item(self, v: V, i: V, span: Span | None) -> V:
        """``v[i]`` of a tuple (``i`` a literal in range) or a list."""
        t = v.type
        if isinstance(t, TList):
            et: Type = t.elem
            idx: Any = i.value if isinstance(i.value, int) and not isinstance(
                i.value, bool) else None
            if idx is not None and isinstance(v.value, tuple) and not \
                    -len(v.value) <= idx < len(v.value):
                return self.error("GT2010", f"list index {idx} is out of range: the list has "
                                  f"{len(v.value)} elements here", i.span, "here")
        else:
            assert isinstance(t, TTuple)
            k = i.value if isinstance(i.value, int) and not isinstance(i.value, bool) else None
            if k is None or not -len(t.elems) <= k < len(t.elems):
                return self.error("GT2010", f"tuple index must be an int literal in "
                                  f"{-len(t.elems)}..{len(t.elems) - 1}", i.span, "here")
            et, idx = t.elems[k], k
        out = self.var("item", et)
        self.emit(Op.GET_ITEM, (v.atom, i.atom), (out,), (("index", idx),), span=span)
        value = v.value[idx].value if isinstance(v.value, tuple) and isinstance(
            idx, int) else UNKNOWN
        return V(et, out, value=value, span=span)

    def subscript(self, e: ast.Subscript, env: dict[str, V]) -> V:
        v = self.expr(e.value, env)
        t = v.type
        if isinstance(t, (TTuple, TList)) and len(e.indices) == 1 and not isinstance(
                e.indices[0], ast.Slice):
            return self.item(v, self.expr(e.indices[0], env), e.span)
        items = []
        for ix in e.indices:
            if isinstance(ix, ast.Slice):
                parts = []
                for p in (ix.lower, ix.upper, ix.step):
                    if p is None:
                        none = TOther("none")
                        parts.append(V(none, Lit(None, none), value=None))
                    else:
                        parts.append(self.expr(p, env))
                st = TOther("slice")
                out = self.var("slice", st)
                self.emit(Op.SLICE, tuple(p.atom for p in parts), (out,), span=ix.span)
                items.append(V(st, out, value=tuple(self.arg(p) for p in parts), span=ix.span))
            else:
                items.append(self.expr(ix, env))
        tup_t = TTuple(tuple(i.type for i in items))
        tup = self.var("idx", tup_t)
        self.emit(Op.TUPLE, tuple(i.atom for i in items), (tup,), span=e.span)
        return self.op_call("getitem", [v, V(tup_t, tup, value=tuple(self.arg(i) for i in
                                                                      items))], {}, e.span)

    def call(self, e: ast.Call, env: dict[str, V]) -> V:
        """A call as written: its arguments checked, then the op, gtdsl function, Python
        name or method it names called (``calls``)."""
        f = e.func
        mod = self.fn.module
        kwargs = {k.name: self._expr(k.value, env) for k in e.keywords}
        if isinstance(f, ast.Name) and f.id not in env:
            args = [self._expr(a, env) for a in e.args]
            if f.id in mod.failed:  # its import was already reported
                return self.dyn_error(e.span)
            if f.id in mod.refused:
                return self.refused(f.id, f.span)
            if f.id in mod.unknown_calls:  # (no IR: a check for diagnostics alone)
                return V(TDyn(DynReason.INFERRED), self.var(f.id, TDyn(DynReason.INFERRED)),
                         span=e.span)
            if f.id == "float" and mod.function(f.id) is None and f.id not in mod.externs:
                special = _special_float(e)
                if special is not None:  # float("-inf"): a constant, as Python computes it
                    return self.constant(special, e.span)
            callee = mod.function(f.id)
            if callee is not None:
                return self.user_call(callee, args, kwargs, e)
            if f.id == "len" and f.id not in mod.externs and f.id not in OPS:
                return self.length(args, kwargs, e.span)
            if f.id in mod.externs:
                return self.extern_call(mod.externs[f.id], args, kwargs, e)
            if f.id in OPS:
                return self.op_call(f.id, args, kwargs, e.span)
            if mod.struct(f.id) is not None:
                return self.error("GT2025", f"`{f.id}` is a struct; struct values come from "
                                  "parameters", f.span, "not callable",
                                  help="take the struct as a parameter and load it from "
                                  "weights")
            return self.error("GT1001", f"undefined function `{f.id}`", f.span, "not defined",
                              help=undefined_help(f.id, env, self.fn, calls=True))
        if isinstance(f, ast.Attribute):
            base = f.value
            path = self.python_path(f, env)
            if path is not None:
                args = [self._expr(a, env) for a in e.args]
                refused = self.python_name(path, f.span)
                if refused is not None:
                    return refused
                return self.extern_call(path, args, kwargs, e)
            recv = self.expr(base, env)
            args = [self._expr(a, env) for a in e.args]
            if isinstance(recv.type, TDyn) and recv.type.reason is DynReason.ERROR:
                return self.dyn_error(e.span)  # reported where the receiver went wrong
            if isinstance(recv.type, (TTensor, TDyn)) and f.attr in TENSOR_METHODS:
                return self.tensor_method(recv, f.attr, args, kwargs, e.span)
            op = OPS.get(f.attr)
            if op is not None and op.method and isinstance(recv.type, (TTensor, TDyn)):
                return self.op_call(f.attr, [recv, *args], kwargs, e.span)
            if isinstance(recv.type, TStruct):
                info = self.s.structs.get(recv.type.name)
                if info is not None and f.attr in info.fields:
                    return self.error(
                        "GT1011", f"`{f.attr}` is a field of the `{recv.type.name}` struct, "
                        "which gtdsl cannot call", f.span, "called here",
                        help="a jitted method calls a submodule whose class's forward is "
                        "@gtdsl.jit, or one of torch's layers gtdsl knows (nn.Linear, "
                        "nn.LayerNorm, nn.RMSNorm, nn.Embedding, nn.Dropout, nn.GELU, nn.ReLU, "
                        "nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softmax, nn.LogSoftmax, "
                        "nn.Identity, nn.Sequential of them); for another layer call its op "
                        "with the layer's "
                        f"tensors, e.g. F.conv2d(x, {unparse_expr(f)}.weight, "
                        f"{unparse_expr(f)}.bias)")
            hint = "every op of the catalogue is a tensor method: x.sum(dim=n), x.to(f16), " \
                "x.transpose(0, 1)"
            if isinstance(recv.type, TScalar) and recv.type.kind is ScalarKind.INT:
                hint += ("; for a tensor of ints write `i64[...]` (`int` and `int[n]` are a "
                         "Python int)")
            return self.error("GT1011", f"{kind_of(recv.type)} has no method `{f.attr}`", f.span,
                              "unknown method", help=hint)
        return self.error("GT2025", "this expression is not callable", f.span, "called here",
                          help="call a function, an op or a method: f(x), x.sum()")

    def tensor_method(self, x: V, name: str, args: list[V], kwargs: dict[str, V],
                      span: Span | None) -> V:
        """The tensor methods that are no catalogue op: ``x.size()``, ``x.size(d)``,
        ``x.dim()``, ``x.numel()`` (metadata), and the dtype conversions ``x.float()``,
        ``x.long()``, ..., ``x.type_as(y)`` (the op ``to``)."""
        given = len(args) + len(kwargs)
        if name in _DTYPE_METHODS or name == "type_as":
            if name == "type_as":
                if len(args) != 1 or kwargs:
                    return self.error("GT2017", "`type_as` takes one tensor: x.type_as(y)",
                                      span, "called here", help="x.type_as(y) is x.to(y.dtype)")
                dtype = self.metadata(args[0], "dtype", span)
            else:
                if given:
                    return self.error("GT2017", f"`{name}()` takes no arguments", span,
                                      "called here", help=f"x.{name}() is x.to("
                                      f"{_DTYPE_METHODS[name]})")
                dt = DT[_DTYPE_METHODS[name].upper()]
                dtype = V(TOther("dtype"), Lit(dt, TOther("dtype")), value=dt)
            return self.op_call("to", [x, dtype], {}, span)
        if name == "size":
            if not given:
                return self.metadata(x, "shape", span)
            dim = args[0] if args else kwargs.get("dim")
            if len(args) + len(kwargs) != 1 or dim is None:
                return self.error("GT2017", "`size` takes at most one dim: x.size() or "
                                  "x.size(d)", span, "called here")
            return self.item(self.metadata(x, "shape", span), dim, span)
        if given:
            return self.error("GT2017", f"`{name}()` takes no arguments", span, "called here",
                              help=f"x.{name}()")
        return self.metadata(x, "ndim" if name == "dim" else "numel", span)

    def length(self, args: list[V], kwargs: dict[str, V], span: Span | None) -> V:
        """``len(x)``: a tensor's first size, a tuple's length (a constant)."""
        if len(args) != 1 or kwargs:
            return self.error("GT2017", "`len` takes one value", span, "called here")
        v = args[0]
        t = v.type
        if isinstance(t, TTuple):
            return self.constant(len(t.elems), span)
        if isinstance(t, (TTensor, TDyn)):
            if isinstance(t, TTensor) and t.shape.row is None and not t.shape.dims:
                return self.error("GT2005", "`len` of a 0-dim tensor", v.span,
                                  f"this has type {t}", help="a 0-dim tensor has no first "
                                  "dim; use x.numel() or x.item()")
            zero = self.constant(0, span)
            return self.item(self.metadata(v, "shape", span), zero, span)
        return self.error("GT2017", f"`len` of {kind_of(t)} is not supported", v.span,
                          "here", help="len takes a tensor (its first size) or a tuple")

    def constant(self, value: int | float | bool, span: Span | None) -> V:
        """A number known before run time, as its literal would be."""
        if isinstance(value, bool):
            t = TScalar(ScalarKind.BOOL)
        elif isinstance(value, int):
            t = TScalar(ScalarKind.INT, Size.of(value))
        else:
            t = TScalar(ScalarKind.FLOAT)
        return V(t, Lit(value, t), value=value, span=span)

    def refused(self, name: str, span: Span | None) -> V:
        """A name of a jitted function's Python module that gtdsl cannot use."""
        return self.error(
            "GT1012", f"`{name}` is {self.fn.module.refused[name]}, which a jitted function "
            "cannot use", span, "from the module's globals",
            help="a jitted function may call other @gtdsl.jit functions and the allowlisted "
            "names of torch, torch.nn.functional (F), torch.linalg, torch.special and math, "
            "and read numbers (ints, floats, bools) defined in its module; pass anything else "
            "as an argument", notes=("see `gtdsl explain GT1012` for the allowlist",))

    # ---------------------------------------------------------------- operators
    def binary(self, name: str, left: V, right: V, span: Span | None) -> V:
        for v in (left, right):  # an operand already in error: reported once, where it was
            if isinstance(v.type, TDyn) and v.type.reason is DynReason.ERROR:
                return self.dyn_error(span)
        if name == "add" and isinstance(left.type, TList) and isinstance(right.type, TList):
            return self.list_cat(left, right, span)
        if isinstance(left.type, TList) or isinstance(right.type, TList):
            lst, other = (left, right) if isinstance(left.type, TList) else (right, left)
            symbol = SYMBOLS.get(name, name)
            if name != "add":
                return self.error("GT2016", f"`{symbol}` is not defined on lists, got "
                                  f"{left.type} and {right.type}", lst.span,
                                  f"this has type {lst.type}",
                                  help="lists support `+` (concatenation), indexing and `for`")
            return self.error("GT2016", f"`{symbol}` on a list takes a list on both sides, got "
                              f"{left.type} and {right.type}", other.span,
                              f"this has type {other.type}",
                              help="lists are concatenated: to add an element `x`, write "
                              "`xs + [x]`")
        if name in _GROWS and isinstance(left.type, TScalar) and isinstance(
                right.type, TScalar) and left.type.kind is ScalarKind.INT and \
                right.type.kind is ScalarKind.INT:
            out = self.fold(name, left, right, span)
            if isinstance(out, V):
                return out
            left, right = out
        return self.op_call(name, [left, right], {}, span, SYMBOLS.get(name))

    def list_cat(self, left: V, right: V, span: Span | None) -> V:
        """``xs + ys`` on two lists: a new list of the elements of both (the element type is
        the join of theirs, as in a list literal), so that a loop can build a list:
        ``ks = ks + [k]``."""
        assert isinstance(left.type, TList) and isinstance(right.type, TList)
        elem = right.type.elem if _empty(left) else left.type.elem if _empty(right) else \
            join(left.type.elem, right.type.elem)
        t = TList(elem)
        out = self.var("list", t)
        self.emit(Op.LIST_CAT, (left.atom, right.atom), (out,), span=span)
        value = left.value + right.value if isinstance(left.value, tuple) and isinstance(
            right.value, tuple) else UNKNOWN
        return V(t, out, value=value, span=span)

    def fold(self, name: str, left: V, right: V, span: Span | None) -> V | tuple[V, V]:
        """Python arithmetic on two ints: folded to a constant when both are constants, an
        error (GT2022) when that constant, or one Python would compute at run time, passes
        ``MAX_CONSTANT_BITS``. Otherwise the operands, with their static sizes forgotten
        when tracking them would grow too large (the value is then known at run time)."""
        a, b = self.arg(left).value, self.arg(right).value
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and \
                not isinstance(b, bool):
            if name in ("floor_divide", "remainder") and b == 0 or name == "pow" and b < 0:
                return left, right  # an error or a float at run time, as Python has it
            # only a power can take long to compute: bound it first, the others are exact
            bits = _result_bits(name, abs(a).bit_length(), abs(b).bit_length(), b, a) \
                if name == "pow" else 0
            value = None
            if bits <= MAX_CONSTANT_BITS + 1:
                # Python's own arithmetic: the table's bounded `*` and `**` would refuse
                # what this check measures and reports
                value = _FOLD.get(name, OPERATORS_BY_NAME[name].fn)(a, b)
                bits = abs(value).bit_length()
            if bits > MAX_CONSTANT_BITS:
                return self.error(
                    "GT2022", f"constant too large: `{SYMBOLS[name]}` on {short_int(a)} and "
                    f"{short_int(b)} gives an int of {'about ' * (value is None)}{bits} bits, "
                    f"more than {MAX_CONSTANT_BITS}", span, "computed here",
                    help="no tensor op takes an int this large; check the expression")
            assert value is not None  # computed whenever its bits were within the bound
            t = TScalar(ScalarKind.INT, Size.of(value))
            return V(t, Lit(value, t), value=value, span=span)
        assert isinstance(left.type, TScalar) and isinstance(right.type, TScalar)  # ints
        sa, sb = left.type.value, right.type.value
        if sa is None or sb is None or name not in ("mul", "pow"):
            return left, right
        k = sb.constant() if name == "pow" else None
        terms = len(sa.terms) * len(sb.terms) if name == "mul" else \
            len(sa.terms) ** k if k is not None and 0 <= k <= 8 else 0
        bits = _result_bits(name, _size_bits(sa), _size_bits(sb), k if k is not None else 0, 0)
        if terms > _MAX_SIZE_TERMS or bits > MAX_CONSTANT_BITS:
            forget = TScalar(ScalarKind.INT)  # too large to track: known at run time only
            left = left.but(type=forget, value=UNKNOWN, label=None)
        return left, right


# the tensor methods that are no catalogue op (``tensor_method``)
_DTYPE_METHODS = {"float": "f32", "double": "f64", "half": "f16", "bfloat16": "bf16",
                  "long": "i64", "int": "i32", "short": "i16", "char": "i8", "byte": "u8",
                  "bool": "bool", "cfloat": "c64", "cdouble": "c128"}
TENSOR_METHODS = frozenset(("size", "dim", "numel", "type_as", *_DTYPE_METHODS))

_SPECIAL_FLOATS = frozenset(("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan",
                             "+nan", "-nan"))


def _special_float(e: ast.Call) -> float | None:
    """``float("inf")``, ``float("-inf")``, ``float("nan")``: the value, else None."""
    if len(e.args) == 1 and not e.keywords and isinstance(e.args[0], ast.Str):
        text = e.args[0].value.strip().lower()
        if text in _SPECIAL_FLOATS:
            return float(text)
    return None


def _literal_number(value: Any) -> int | float | None:
    """A literal's number: an int or a float, a bool as an int, a constant size's value."""
    if isinstance(value, Size):
        return value.constant()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return None


def _result_bits(name: str, bits_a: int, bits_b: int, b: int, a: int) -> int:
    """An upper bound on the bits of ``a <name> b`` for ints of these bit lengths (for
    ``pow``, ``b`` is the exponent itself)."""
    if name in ("add", "sub"):
        return max(bits_a, bits_b) + 1
    if name == "mul":
        return bits_a + bits_b
    if name == "pow":
        if b <= 0 or a in (-1, 0, 1) and bits_a <= 1:
            return max(bits_a, 1)
        if a not in (-1, 0, 1):  # a known base: the bits of |a| ** b, rounded up
            return math.ceil(b * math.log2(abs(a))) + 1
        return bits_a * b
    return bits_a  # `//` and `%` shrink


def _size_bits(s: Size) -> int:
    """An upper bound on the bits of a size polynomial's coefficients and constant."""
    return max((abs(c).bit_length() for _, c in s.terms), default=0) + \
        len(s.terms).bit_length()
