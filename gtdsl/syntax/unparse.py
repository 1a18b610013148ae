"""Unparsing: AST back to canonical gtdsl source.

Contract: ``parse_source(unparse(m)) == m`` and ``parse_type(unparse_type(t)) == t`` for
every tree the parser can produce (spans aside). Output is canonical: 4-space indents,
one space around binary operators, the fewest parentheses that keep the tree, and types in
their ``.gt`` spelling (a string annotation prints bare).
"""

from __future__ import annotations

from gtdsl.syntax import ast

_INDENT = "    "

# Precedence levels, lowest first (Python's).
_TUPLE, _TEST, _OR, _AND, _NOT, _CMP, _ARITH, _TERM, _FACTOR, _POWER, _PRIMARY, _ATOM = range(12)

_BINOP_LEVEL = {
    ast.BinOpKind.ADD: _ARITH, ast.BinOpKind.SUB: _ARITH,
    ast.BinOpKind.MUL: _TERM, ast.BinOpKind.DIV: _TERM, ast.BinOpKind.FLOORDIV: _TERM,
    ast.BinOpKind.MOD: _TERM, ast.BinOpKind.MATMUL: _TERM, ast.BinOpKind.POW: _POWER,
}


# ============================================================================ types


def unparse_size(size: ast.SizeExpr | None, level: int = 0) -> str:
    if size is None:
        return "?"
    if isinstance(size, ast.SizeLit):
        return str(size.value)
    if isinstance(size, ast.SizeVar):
        return size.name
    mine = 1 if size.op in (ast.SizeOp.ADD, ast.SizeOp.SUB) else 2
    text = f"{unparse_size(size.left, mine)} {size.op.value} {unparse_size(size.right, mine + 1)}"
    return f"({text})" if mine < level else text


def unparse_dim(dim: ast.Dim) -> str:
    if dim.label is None:
        return unparse_size(dim.size)
    if isinstance(dim.size, ast.SizeVar) and dim.size.name == dim.label:
        return dim.label
    return f"{dim.label}={unparse_size(dim.size)}"


def unparse_shape(shape: ast.Shape) -> str:
    parts = []
    if shape.variadic is not None:
        parts.append("..." if shape.variadic.name is None else f"*{shape.variadic.name}")
    parts += [unparse_dim(d) for d in shape.dims]
    return "[" + ", ".join(parts) + "]"


def unparse_device(device: ast.Device) -> str:
    if device.index is not None:
        return f"{device.kind.value}:{device.index}"
    return device.kind.value


def unparse_type(ty: ast.TypeExpr) -> str:
    """Canonical surface syntax of a type."""
    if isinstance(ty, ast.DynType):
        return "?"
    if isinstance(ty, ast.ScalarType):
        if ty.size is None:
            return ty.kind.value
        return f"int[{unparse_size(ty.size)}]"
    if isinstance(ty, ast.StructType):
        if not ty.args:
            return ty.name
        return f"{ty.name}[{', '.join(unparse_size(a) for a in ty.args)}]"
    if isinstance(ty, ast.ListType):
        return f"list[{unparse_type(ty.elem)}]"
    if isinstance(ty, ast.TupleType):
        return f"tuple[{', '.join(unparse_type(e) for e in ty.elems)}]"
    return _unparse_tensor(ty)


def _unparse_tensor(ty: ast.TensorType) -> str:
    base = "Tensor" if ty.dtype is None else ty.dtype.value
    text = base + (unparse_shape(ty.shape) if ty.shape is not None else "")
    if ty.device is not None:
        return f"{text} @ {unparse_device(ty.device)}"
    # Spellings that would read back as something else get an explicit `@ ?`.
    if base in ast.SCALAR_NAMES and ty.shape is None:
        return f"{text} @ ?"  # bare `int` is a Python scalar
    if ty.dtype is ast.DType.INT and _is_single_size(ty.shape):
        return f"{text} @ ?"  # `int[N]` is a sized Python int
    return text


def _is_single_size(shape: ast.Shape | None) -> bool:
    if shape is None or shape.variadic is not None or len(shape.dims) != 1:
        return False
    dim = shape.dims[0]
    bare_name = isinstance(dim.size, ast.SizeVar) and dim.size.name == dim.label
    return dim.size is not None and (dim.label is None or bare_name)


# ============================================================================ expressions


def unparse_expr(expr: ast.Expr, level: int = _TUPLE) -> str:
    text, mine = _expr(expr)
    return f"({text})" if mine < level else text


def _expr(e: ast.Expr) -> tuple[str, int]:
    match e:
        case ast.Name(id=name):
            return name, _ATOM
        case ast.Int(value=value):
            return str(value), _ATOM
        case ast.Float(value=value):
            return repr(value), _ATOM
        case ast.Str(value=value):
            return repr(value), _ATOM
        case ast.Bool(value=value):
            return ("True" if value else "False"), _ATOM
        case ast.NoneLit():
            return "None", _ATOM
        case ast.EllipsisLit():
            return "...", _ATOM
        case ast.Tuple(elts=elts):
            if len(elts) == 1:
                return f"({unparse_expr(elts[0], _TEST)},)", _ATOM
            return "(" + ", ".join(unparse_expr(x, _TEST) for x in elts) + ")", _ATOM
        case ast.List(elts=elts):
            return "[" + ", ".join(unparse_expr(x, _TEST) for x in elts) + "]", _ATOM
        case ast.Attribute(value=value, attr=attr):
            inner = unparse_expr(value, _PRIMARY)
            if isinstance(value, ast.Int):  # `1.real` would lex as a float
                inner = f"({inner})"
            return f"{inner}.{attr}", _PRIMARY
        case ast.Call(func=func, args=args, keywords=keywords):
            parts = [unparse_expr(a, _TEST) for a in args]
            parts += [f"{k.name}={unparse_expr(k.value, _TEST)}" for k in keywords]
            return f"{unparse_expr(func, _PRIMARY)}({', '.join(parts)})", _PRIMARY
        case ast.Subscript(value=value, indices=indices):
            inner = ", ".join(_index(i) for i in indices)
            return f"{unparse_expr(value, _PRIMARY)}[{inner}]", _PRIMARY
        case ast.BinOp(op=op, left=left, right=right):
            mine = _BINOP_LEVEL[op]
            if op is ast.BinOpKind.POW:
                return f"{unparse_expr(left, _PRIMARY)} ** {unparse_expr(right, _FACTOR)}", mine
            return f"{unparse_expr(left, mine)} {op.value} {unparse_expr(right, mine + 1)}", mine
        case ast.UnaryOp(op=op, operand=operand):
            if op is ast.UnaryOpKind.NOT:
                return f"not {unparse_expr(operand, _NOT)}", _NOT
            return f"{op.value}{unparse_expr(operand, _FACTOR)}", _FACTOR
        case ast.BoolOp(op=op, values=values):
            mine = _AND if op is ast.BoolOpKind.AND else _OR
            return f" {op.value} ".join(unparse_expr(v, mine + 1) for v in values), mine
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            parts = [unparse_expr(left, _ARITH)]
            for cmp_op, comp in zip(ops, comparators):
                parts += [cmp_op.value, unparse_expr(comp, _ARITH)]
            return " ".join(parts), _CMP
        case ast.IfExp(test=test, body=body, orelse=orelse):
            text = (f"{unparse_expr(body, _OR)} if {unparse_expr(test, _OR)} "
                    f"else {unparse_expr(orelse, _TEST)}")
            return text, _TEST
    raise TypeError(f"not an expression: {e!r}")


def _index(item: ast.Expr | ast.Slice) -> str:
    if isinstance(item, ast.Slice):
        lo = unparse_expr(item.lower, _TEST) if item.lower is not None else ""
        hi = unparse_expr(item.upper, _TEST) if item.upper is not None else ""
        if item.step is None:
            return f"{lo}:{hi}"
        return f"{lo}:{hi}:{unparse_expr(item.step, _TEST)}"
    return unparse_expr(item, _TEST)


# ============================================================================ statements


def _docstring(text: str) -> str:
    if '"""' not in text and "\\" not in text and not text.endswith('"') and text.replace("\n", "").isprintable():
        return f'"""{text}"""'
    return repr(text)


def _target(target: ast.Name | ast.Tuple) -> str:
    return unparse_expr(target, _TEST)


def _stmts(body: tuple[ast.Stmt, ...], depth: int) -> list[str]:
    lines: list[str] = []
    for stmt in body:
        lines += _stmt(stmt, depth)
    return lines


def _block(header: str, body: tuple[ast.Stmt, ...], depth: int,
           docstring: str | None = None) -> list[str]:
    pad = _INDENT * depth
    lines = [f"{pad}{header}:"]
    if docstring is not None:
        lines.append(f"{_INDENT * (depth + 1)}{_docstring(docstring)}")
    lines += _stmts(body, depth + 1)
    return lines


def _stmt(s: ast.Stmt, depth: int) -> list[str]:
    pad = _INDENT * depth
    match s:
        case ast.Assign(target=target, value=value):
            return [f"{pad}{_target(target)} = {unparse_expr(value)}"]
        case ast.AnnAssign(target=target, annotation=annotation, value=value):
            return [f"{pad}{target.id}: {unparse_type(annotation)} = {unparse_expr(value)}"]
        case ast.AugAssign(target=target, op=op, value=value):
            return [f"{pad}{target.id} {op.value}= {unparse_expr(value)}"]
        case ast.Return(value=value):
            return [f"{pad}return" + (f" {unparse_expr(value)}" if value is not None else "")]
        case ast.Pass():
            return [f"{pad}pass"]
        case ast.Assert(test=test, msg=msg):
            tail = f", {unparse_expr(msg, _TEST)}" if msg is not None else ""
            return [f"{pad}assert {unparse_expr(test, _TEST)}{tail}"]
        case ast.ExprStmt(value=value):
            return [f"{pad}{unparse_expr(value)}"]
        case ast.For(target=target, iter=iterable, body=body):
            if isinstance(target, ast.Tuple):
                names = ", ".join(n.id for n in target.elts if isinstance(n, ast.Name))
                tgt = names + ("," if len(target.elts) == 1 else "")
            else:
                tgt = target.id
            return _block(f"for {tgt} in {unparse_expr(iterable)}", body, depth)
        case ast.If():
            return _if(s, depth, "if")
    raise TypeError(f"not a statement: {s!r}")


def _if(s: ast.If, depth: int, keyword: str) -> list[str]:
    lines = _block(f"{keyword} {unparse_expr(s.test, _TEST)}", s.body, depth)
    if len(s.orelse) == 1 and isinstance(s.orelse[0], ast.If):
        lines += _if(s.orelse[0], depth, "elif")
    elif s.orelse:
        lines += _block("else", s.orelse, depth)
    return lines


# ============================================================================ declarations


def _param(p: ast.Param) -> str:
    text = p.name
    if p.annotation is not None:
        text += f": {unparse_type(p.annotation)}"
    if p.default is not None:
        text += (" = " if p.annotation is not None else "=") + unparse_expr(p.default, _TEST)
    return text


def _size_params(params: tuple[ast.SizeParam, ...]) -> str:
    return "[" + ", ".join(p.name for p in params) + "]" if params else ""


def _decl(d: ast.Decl) -> list[str]:
    match d:
        case ast.FunctionDef():
            lines = [f"@{unparse_expr(dec, _TEST)}" for dec in d.decorators]
            header = f"def {d.name}{_size_params(d.size_params)}({', '.join(map(_param, d.params))})"
            if d.returns is not None:
                header += f" -> {unparse_type(d.returns)}"
            return lines + _block(header, d.body, 0, d.docstring)
        case ast.StructDef():
            lines = [f"struct {d.name}{_size_params(d.size_params)}:"]
            if d.docstring is not None:
                lines.append(_INDENT + _docstring(d.docstring))
            lines += [f"{_INDENT}{f.name}: {unparse_type(f.annotation)}" for f in d.fields]
            if not d.fields and d.docstring is None:
                lines.append(f"{_INDENT}pass")
            return lines
        case ast.ImportFrom(module=module, names=names):
            return [f"from {module} import {', '.join(map(_alias, names))}"]
        case ast.Import(names=names):
            return [f"import {', '.join(map(_alias, names))}"]
    raise TypeError(f"not a declaration: {d!r}")


def _alias(a: ast.Alias) -> str:
    return a.name if a.asname is None else f"{a.name} as {a.asname}"


def unparse(node: ast.Module | ast.Decl) -> str:
    """Canonical source text of a module or of one declaration."""
    if not isinstance(node, ast.Module):
        return "\n".join(_decl(node)) + "\n"
    chunks = []
    if node.docstring is not None:
        chunks.append(_docstring(node.docstring))
    chunks += ["\n".join(_decl(d)) for d in node.body]
    return "\n\n".join(chunks) + "\n"
