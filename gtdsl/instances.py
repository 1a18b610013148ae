"""The fields of an instance, as struct declarations: what a jitted method's ``self`` is when
its class declares no field types (``gtdsl.check.methods``).

Input: an object (an ``nn.Module`` or any object with attributes). Output: its key (the
structure a compiled method is specialised on) and the struct declarations that type it.
Fields: an ``nn.Module``'s parameters, buffers and submodules, and, for any object, its public
attributes that are tensors or numbers (``self.eps``, ``self.n_heads``, ``self.training``).
A tensor field has its dtype and rank, with unknown sizes (checked where they are used); a
submodule is a struct of its own; an ``nn.ModuleList`` or ``nn.Sequential`` whose elements
have one structure is a list of it (one of several structures is left out: the method cannot
use it). Attributes whose names start with ``_`` and other values are left out.
"""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.syntax import ast
from gtdsl.syntax.unparse import unparse_expr

_DTYPES: dict[torch.dtype, ast.DType] = {
    torch.float16: ast.DType.F16, torch.bfloat16: ast.DType.BF16,
    torch.float32: ast.DType.F32, torch.float64: ast.DType.F64,
    torch.int8: ast.DType.I8, torch.int16: ast.DType.I16, torch.int32: ast.DType.I32,
    torch.int64: ast.DType.I64, torch.uint8: ast.DType.U8, torch.bool: ast.DType.BOOL,
    torch.complex64: ast.DType.C64, torch.complex128: ast.DType.C128,
}
_MAX_DEPTH = 64  # submodules nested deeper than this are left out
_LISTS = (torch.nn.ModuleList, torch.nn.Sequential)


_NUMBERS = (int, float, bool)
_Tensor = torch.Tensor
_Module = torch.nn.Module


def _fields(obj: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    if isinstance(obj, _Module):
        for table in (obj._parameters, obj._buffers, obj._modules):
            for name, value in table.items():
                if value is not None and name.isidentifier() and not name.startswith("_"):
                    out.append((name, value))
                    seen.add(name)
    try:
        attrs = vars(obj)
    except TypeError:  # no __dict__ (slots, builtins)
        attrs = {}
    for name, value in attrs.items():
        # the value's kind first: most of a module's attributes are neither
        cls = value.__class__
        if not (cls in _NUMBERS or isinstance(value, _Tensor) or (cls is tuple and _ints(value))):
            continue
        if name in seen or name.startswith("_") or not name.isidentifier():
            continue
        out.append((name, value))
    return out


def _ints(value: Any) -> bool:
    """A tuple of ints (``normalized_shape``, ``kernel_size``)."""
    return type(value) is tuple and all(type(v) is int for v in value)


def instance_key(obj: Any, depth: int = 0) -> tuple:
    """What a method compiled for ``obj`` depends on: its class, and each field's name and
    kind (a tensor's dtype and rank, a number's type, a submodule's key)."""
    fields: list[tuple] = []
    for name, value in _fields(obj):
        if isinstance(value, torch.Tensor):
            fields.append((name, value.dtype, value.dim()))
        elif type(value) in (int, float, bool):
            fields.append((name, type(value)))
        elif _ints(value):
            fields.append((name, tuple, len(value)))
        elif depth < _MAX_DEPTH and isinstance(value, _LISTS):
            keys = tuple(instance_key(v, depth + 1) for v in value)
            if keys and len(set(keys)) == 1:
                fields.append((name, list, keys[0]))
            else:  # modules of several structures: a tuple, one type per position
                fields.append((name, tuple, keys))
        elif depth < _MAX_DEPTH and isinstance(value, torch.nn.Module):
            fields.append((name, instance_key(value, depth + 1)))
    return (type(obj), tuple(fields), config_key(obj) if isinstance(obj, torch.nn.Module)
            else ())


def instance_structs(obj: Any) -> list[ast.StructDef]:
    """The struct declarations typing ``obj``: its own first, then its submodules'."""
    out: list[ast.StructDef] = []
    names: dict[tuple, str] = {}
    _struct(obj, instance_key(obj), out, names, 0)
    return out


def _struct(obj: Any, key: tuple, out: list[ast.StructDef], names: dict[tuple, str],
            depth: int) -> str:
    found = names.get(key)
    if found is not None:
        return found
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in type(obj).__name__) or "S"
    if not base[0].isalpha():
        base = "S" + base
    name, n = base, 1
    while name in names.values():
        n += 1
        name = f"{base}_{n}"
    names[key] = name
    slot = len(out)
    out.append(ast.StructDef(name, (), ()))  # its place: the instance's own struct is first
    fields: list[ast.Field] = []
    keys = dict((k[0], k) for k in key[1])
    for fname, value in _fields(obj):
        k = keys.get(fname)
        if k is None:
            continue
        t: ast.TypeExpr | None = None
        if isinstance(value, torch.Tensor):
            dims = tuple(ast.Dim(None, None) for _ in range(value.dim()))
            t = ast.TensorType(_DTYPES.get(value.dtype), ast.Shape(None, dims), None)
        elif type(value) in (int, float, bool):
            t = ast.ScalarType(ast.SCALAR_NAMES[type(value).__name__])
        elif _ints(value):
            t = ast.TupleType(tuple(ast.ScalarType(ast.ScalarKind.INT) for _ in value))
        elif isinstance(value, _LISTS) and k[1] is list:
            first = next(iter(value))
            t = ast.ListType(ast.StructType(_struct(first, k[2], out, names, depth + 1), ()))
        elif isinstance(value, _LISTS):
            t = ast.TupleType(tuple(ast.StructType(_struct(v, kv, out, names, depth + 1), ())
                                    for v, kv in zip(value, k[2])))
        elif isinstance(value, torch.nn.Module):
            t = ast.StructType(_struct(value, k[1], out, names, depth + 1), ())
        if t is not None:
            fields.append(ast.Field(fname, t))
    out[slot] = ast.StructDef(name, (), tuple(fields))
    return name


def struct_names(obj: Any) -> tuple[list[ast.StructDef], dict[tuple, str]]:
    """``instance_structs`` with the name each structure (key) was given."""
    out: list[ast.StructDef] = []
    names: dict[tuple, str] = {}
    _struct(obj, instance_key(obj), out, names, 0)
    return out, names


# ---------------------------------------------------------------- calls of submodules

def jitted_forward(module: Any) -> Any:
    """The Python function of ``module``'s class's ``forward`` when it is a gtdsl jit
    (``@gtdsl.jit def forward(self, ...)``); None otherwise."""
    return jitted_method(module, "forward")


def jitted_method(obj: Any, name: str) -> Any:
    """The Python function of the method ``name`` of ``obj``'s class when it is a gtdsl
    jit; None otherwise."""
    fn = getattr(type(obj), name, None)
    if fn is None or not hasattr(fn, "__wrapped__"):
        return None
    if type(fn).__name__ not in ("JitMethod", "JitFunction", "DeferredJit"):
        return None
    return fn.__wrapped__


def _layer_call(m: Any, acc: ast.Expr, args: tuple[ast.Expr, ...],
                kws: tuple[ast.Keyword, ...], span: Any) -> ast.Expr | None:
    """A call of a torch layer (``self.proj(x)`` with ``self.proj`` an ``nn.Linear``) as the
    op its forward runs, reading its tensors and numbers from ``acc``: typed by the op's
    relation. None for a layer this table does not hold."""
    nn = torch.nn
    if len(args) != 1 or kws:
        return None
    x = args[0]

    def attr(name: str) -> ast.Expr:
        return ast.Attribute(acc, name, span)

    def call(op: str, *a: ast.Expr, **k: ast.Expr) -> ast.Expr:
        return ast.Call(ast.Name(op, span), (x, *a),
                        tuple(ast.Keyword(n, v, span) for n, v in k.items()), span)

    def same(cls: type) -> bool:  # not a subclass that changed what forward does
        return isinstance(m, cls) and getattr(type(m), "forward", None) is getattr(cls, "forward")

    if same(nn.Linear):
        return call("linear", attr("weight"), *([attr("bias")] if m.bias is not None else []))
    if same(nn.LayerNorm) or (hasattr(nn, "RMSNorm") and same(nn.RMSNorm)):
        shape = attr("normalized_shape")  # a field: its values are checked at run time
        k: dict[str, ast.Expr] = {}
        if m.weight is not None:
            k["weight"] = attr("weight")
        if isinstance(m, nn.LayerNorm):
            if m.bias is not None:
                k["bias"] = attr("bias")
            return call("layer_norm", shape, eps=attr("eps"), **k)
        if m.eps is not None:
            k["eps"] = attr("eps")
        return call("rms_norm", shape, **k)
    if same(nn.Embedding):
        if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
            return None
        pad: ast.Expr = ast.NoneLit(span) if m.padding_idx is None else ast.Int(
            int(m.padding_idx), span)
        return call("embedding", attr("weight"), padding_idx=pad)
    if same(nn.Dropout):
        return call("dropout", attr("p"), attr("training"))
    if same(nn.GELU):
        return call("gelu", approximate=ast.Str(m.approximate, span))
    if same(nn.Softmax) and m.dim is not None:
        return call("softmax", ast.Int(int(m.dim), span))
    if same(nn.LogSoftmax) and m.dim is not None:
        return call("log_softmax", ast.Int(int(m.dim), span))
    if same(nn.Identity):
        return x
    for cls, op in ((nn.ReLU, "relu"), (nn.SiLU, "silu"), (nn.Tanh, "tanh"),
                    (nn.Sigmoid, "sigmoid")):
        if same(cls):
            return call(op)
    return None


# what a layer's compiled call depends on beyond its fields' dtypes and ranks
_CONFIG = ("padding_idx", "approximate", "dim", "max_norm",
           "scale_grad_by_freq", "sparse")


def config_key(m: Any) -> tuple:
    d = vars(m)  # (a module's plain attributes: no __getattr__ fallbacks to pay for)
    return tuple((a, repr(d[a])) for a in _CONFIG if a in d and not isinstance(d[a], _Tensor)
                 ) + (("hooks", bool(unrun_code(m))),)


def unrun_code(m: Any) -> str | None:
    """What calling ``m`` would run that a compiled call of its forward or op would not:
    forward hooks and pre-hooks (``weight_norm``'s among them), a ``forward`` set on the
    instance; None when there is nothing."""
    if not isinstance(m, _Module):
        return None
    if m._forward_hooks or m._forward_pre_hooks or getattr(m, "_forward_hooks_with_kwargs",
                                                            None):
        return "forward hooks"
    if "forward" in vars(m):
        return "a forward of its own instance"
    return None


def rewrite_calls(decl: ast.FunctionDef, obj: Any, taken: set[str], shadowed: set[str]
                  ) -> tuple[ast.FunctionDef, dict[str, tuple[Any, Any]], dict[str, str]]:
    """``decl`` (a method of ``obj``) with its calls of submodules made explicit: a torch
    layer's call is the op it runs (``self.proj(x)`` is ``linear(x, self.proj.weight,
    self.proj.bias)``), a submodule whose forward is jitted is a call of that forward with
    the submodule as its ``self``, under a new local name, returned with the Python
    function and the submodule it stands for. Submodules are found through ``self``'s
    attributes, indexes of module lists (``self.layers[0]``) and loop variables over them
    (``for layer in self.layers``). ``taken``: the names the body and its module use (a
    new local name is none of them); ``shadowed``: those they bind (an op name among them is
    not rewritten to). A submodule with code a compiled call would not run (hooks) is a
    call of a refused name (GT1012 where it is called), returned with why."""
    from gtdsl._records import replace
    from gtdsl.check.methods import rewrite_calls_in

    self_name = decl.params[0].name
    callees: dict[str, tuple[Any, Any]] = {}
    refused: dict[str, str] = {}
    by_module: dict[tuple[int, int], str] = {}

    def module_of(e: Any, loops: dict[str, Any]) -> Any:
        if isinstance(e, ast.Name):
            if e.id == self_name:
                return obj
            return loops.get(e.id)
        if isinstance(e, ast.Attribute):
            base = module_of(e.value, loops)
            if isinstance(base, torch.nn.Module):
                child = base._modules.get(e.attr)
                return child
            return None
        if isinstance(e, ast.Subscript) and len(e.indices) == 1 and isinstance(e.indices[0], ast.Int):
            base = module_of(e.value, loops)
            if isinstance(base, _LISTS):
                try:
                    return base[e.indices[0].value]
                except IndexError:
                    return None
        return None

    def callee(fn: Any, m: Any, receiver: ast.Expr, e: ast.Call, what: str) -> ast.Expr:
        local = by_module.get((id(m), id(fn)))
        if local is None:
            base = "".join(c if c.isalnum() else "_" for c in what)
            local, n = base, 1
            while local in taken or local in callees:
                n += 1
                local = f"{base}_{n}"
            by_module[(id(m), id(fn))] = local
            callees[local] = (fn, m)
        return ast.Call(ast.Name(local, e.span), (receiver, *e.args), e.keywords, e.span)

    def call_of(e: ast.Call, loops: dict[str, Any]) -> ast.Expr | None:
        f = e.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and \
                f.value.id == self_name and f.attr not in getattr(obj, "_modules", {}):
            method = jitted_method(obj, f.attr)  # self.other_method(x)
            if method is not None:
                return callee(method, obj, f.value, e, f.attr)
        m = module_of(f, loops)
        if not isinstance(m, torch.nn.Module):
            return None
        why = unrun_code(m)
        if why is not None:  # refused where it is called: GT1012, saying why
            base = "".join(c if c.isalnum() else "_" for c in _describe(f))
            local, n = base, 1
            while local in taken or local in callees:
                n += 1
                local = f"{base}_{n}"
            refused[local] = (f"the submodule `{unparse_expr(f)}`, with {why} (a compiled "
                              "call would not run them)")
            return ast.Call(ast.Name(local, e.span), e.args, e.keywords, e.span)
        if isinstance(m, torch.nn.Sequential) and type(m).forward is \
                torch.nn.Sequential.forward and len(e.args) == 1 and not e.keywords:
            # seq(x) is seq[n-1](...seq[0](x)): each call made explicit in turn
            chain: ast.Expr = e.args[0]
            for i in range(len(m)):
                item = ast.Subscript(f, (ast.Int(i, e.span),), e.span)
                step = ast.Call(item, (chain,), (), e.span)
                made = call_of(step, loops)
                chain = made if made is not None else step
            return chain
        fwd = jitted_forward(m)
        if fwd is not None:  # self(x), self.block(x), layer(x)
            return callee(fwd, m, f, e, _describe(f) + "_forward")
        out = _layer_call(m, f, e.args, e.keywords, e.span)
        if out is None or (isinstance(out, ast.Call) and isinstance(out.func, ast.Name)
                           and out.func.id in shadowed):
            return None
        return out

    def element(it: Any, loops: dict[str, Any]) -> Any:
        seq = module_of(it, loops)
        if not isinstance(seq, _LISTS) or not len(seq) or len({instance_key(v) for v in seq}) \
                != 1:
            return None  # (a list of modules of several structures is no field)
        return next(iter(seq))

    return replace(decl, body=rewrite_calls_in(decl.body, element, call_of)), callees, refused


def _describe(e: Any) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return e.attr
    if isinstance(e, ast.Subscript):
        return _describe(e.value)
    return "module"
