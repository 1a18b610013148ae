"""Jitted methods: ``self`` as a struct value.

A ``@gtdsl.jit`` function defined in a class body is a method; its first parameter (``self``,
unannotated) is a struct value whose fields are the instance's attributes. Two ways to know
the fields' types:

- **declared**: the class annotates its fields (``weight: "f32[o, i]"`` or
  ``weight: Float[Tensor, "o i"]``) in its body. The class is then a struct whose size
  parameters are the size names of its field types, in order of first appearance
  (``Linear[o, i]``), and ``self`` has that type with those names: sizes named in the fields
  are the method's size variables, bound through ``self`` at each call (``-> f32[b, o]`` is
  the output width of ``self.weight``). The method is fully checked when decorated.
- **read from the instance** (no field annotations): at the first call the instance's
  parameters, buffers, submodules and number attributes are fields with the dtype and rank
  they have (sizes unknown: checked where they are used), ``gtdsl.driver`` compiles the
  method once per such structure and checks the instance against it at every call.

Input: the method's ``ast.FunctionDef`` and the Python syntax tree of its file (to read the
class's annotations, never running anything). Output: the struct declarations and the method
with ``self`` typed.
"""

from __future__ import annotations

import ast as pyast
from typing import Any

from gtdsl.diagnostics import Diagnostic, Label, ParseError, SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_type_in

_IGNORED_ANNOTATIONS = ("ClassVar", "typing.ClassVar", "Final", "typing.Final")


def is_method(qualname: str, decl: ast.FunctionDef) -> bool:
    """Whether ``decl`` (named ``qualname`` by Python) is defined in a class body and takes
    an unannotated first parameter (its instance)."""
    parts = qualname.split(".")
    return (len(parts) >= 2 and parts[-2] != "<locals>" and bool(decl.params)
            and decl.params[0].annotation is None)


def class_of(tree: pyast.Module, def_line: int) -> pyast.ClassDef | None:
    """The class whose body holds the function whose source (decorators included) starts at
    line ``def_line``."""
    for node in pyast.walk(tree):
        if isinstance(node, pyast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, (pyast.FunctionDef, pyast.AsyncFunctionDef)):
                    first = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
                    if first == def_line:
                        return node
    return None


def field_annotations(cls: pyast.ClassDef) -> list[pyast.AnnAssign]:
    """The class body's field annotations (``name: type``), ClassVar and Final left out."""
    out = []
    for stmt in cls.body:
        if isinstance(stmt, pyast.AnnAssign) and isinstance(stmt.target, pyast.Name):
            head = stmt.annotation
            if isinstance(head, pyast.Subscript):
                head = head.value
            if pyast.unparse(head) in _IGNORED_ANNOTATIONS:
                continue
            out.append(stmt)
    return out


def declared_structs(file: SourceFile, tree: pyast.Module, cls: pyast.ClassDef
                     ) -> list[ast.StructDef]:
    """The struct ``cls`` declares with its field annotations, first, then those of the
    classes its fields name (``up: "Linear[d, f]"`` with ``class Linear`` in the file);
    ParseError for an annotation that is no gtdsl type."""
    classes = {n.name: n for n in pyast.walk(tree) if isinstance(n, pyast.ClassDef)}
    out: list[ast.StructDef] = []
    done: set[str] = set()
    todo = [cls]
    while todo:
        c = todo.pop(0)
        if c.name in done:
            continue
        done.add(c.name)
        struct = _struct(file, c)
        out.append(struct)
        for f in struct.fields:
            for name in struct_names_of(f.annotation):
                other = classes.get(name)
                if other is not None and name not in done and field_annotations(other):
                    todo.append(other)
    return out


def _struct(file: SourceFile, cls: pyast.ClassDef) -> ast.StructDef:
    lines = file.text.splitlines(keepends=True)
    fields: list[ast.Field] = []
    errors: list[Diagnostic] = []
    for stmt in field_annotations(cls):
        a = stmt.annotation
        start = _offset(file, lines, a.lineno, a.col_offset)
        end = _offset(file, lines, a.end_lineno or a.lineno, a.end_col_offset or 0)
        if isinstance(a, pyast.Constant) and isinstance(a.value, str):
            raw = file.text[start:end]
            body = raw.lstrip("rRuU")
            quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
            inner_start = start + (len(raw) - len(body)) + len(quote)
            inner = file.text[inner_start:end - len(quote)]
            if "\\" in inner or not inner.strip():
                errors.append(Diagnostic("GT0011", "a field's string annotation must hold a "
                                         "type, without escapes", Label(Span(file, start, end),
                                                                        "here"),
                                         help='write a type, e.g. "f32[o, i]"'))
                continue
            start = inner_start + len(inner) - len(inner.lstrip())
            end = start + len(inner.strip())
        try:
            annotation = parse_type_in(file, start, end)
        except ParseError as err:
            errors += err.diagnostics
            continue
        target = stmt.target
        assert isinstance(target, pyast.Name)
        fields.append(ast.Field(target.id, annotation, Span(file, _offset(
            file, lines, stmt.lineno, stmt.col_offset), end)))
    if errors:
        raise ParseError(errors)
    params: list[str] = []
    for f in fields:
        for n in size_names(f.annotation):
            if n not in params:
                params.append(n)
    head = _offset(file, lines, cls.lineno, cls.col_offset)
    span = Span(file, head, head + len("class ") + len(cls.name))
    return ast.StructDef(cls.name, tuple(ast.SizeParam(p, span) for p in params),
                         tuple(fields), None, span)


def _offset(file: SourceFile, lines: list[str], line: int, byte_col: int) -> int:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = byte_col if text.isascii() else len(
        text.encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "ignore"))
    return min(file._line_starts[min(line - 1, len(file._line_starts) - 1)] + col,
               len(file.text))


def size_names(t: Any) -> list[str]:
    """The size variables a type names, in order of first appearance (not its rows)."""
    out: list[str] = []

    def size(s: Any) -> None:
        if isinstance(s, ast.SizeVar):
            if s.name not in out:
                out.append(s.name)
        elif isinstance(s, ast.SizeBinOp):
            size(s.left)
            size(s.right)

    def walk(t: Any) -> None:
        if isinstance(t, ast.TensorType) and t.shape is not None:
            for d in t.shape.dims:
                size(d.size)
        elif isinstance(t, ast.ScalarType):
            size(t.size)
        elif isinstance(t, ast.StructType):
            for a in t.args:
                size(a)
        elif isinstance(t, ast.ListType):
            walk(t.elem)
        elif isinstance(t, ast.TupleType):
            for e in t.elems:
                walk(e)

    walk(t)
    return out


def struct_names_of(t: Any) -> list[str]:
    if isinstance(t, ast.StructType):
        return [t.name]
    if isinstance(t, ast.ListType):
        return struct_names_of(t.elem)
    if isinstance(t, ast.TupleType):
        return [n for e in t.elems for n in struct_names_of(e)]
    return []


def typed_self(decl: ast.FunctionDef, self_type: ast.TypeExpr) -> ast.FunctionDef:
    """``decl`` with its first parameter (the instance) of type ``self_type``."""
    first = decl.params[0]
    typed = ast.Param(first.name, self_type, first.default, first.span)
    return ast.FunctionDef(decl.name, decl.size_params, (typed,) + decl.params[1:],
                           decl.returns, decl.body, decl.docstring, decl.decorators,
                           decl.span)


def self_struct_type(struct: ast.StructDef, at: Span | None) -> ast.StructType:
    """``Linear[o, i]``: the struct with its own size parameters as arguments."""
    return ast.StructType(struct.name, tuple(ast.SizeVar(p.name, at) for p in
                                             struct.size_params), at)


def loosen_return(decl: ast.FunctionDef) -> ast.FunctionDef:
    """For a method whose ``self`` is read from the instance (its fields' sizes have no
    names): sizes named only in the return type (``-> f32[b, o]``, ``o`` the width of a
    weight) are not known before the result is; they become unknown (``o=?``) rather than
    unbound (GT1008)."""
    if decl.returns is None:
        return decl
    bound: set[str] = {p.name for p in decl.size_params}
    for p in decl.params[1:]:
        bound.update(size_names(p.annotation))
    returns = _loosen(decl.returns, bound)
    return ast.FunctionDef(decl.name, decl.size_params, decl.params, returns, decl.body,
                           decl.docstring, decl.decorators, decl.span)


def _loosen(t: Any, bound: set[str]) -> Any:
    if isinstance(t, ast.TensorType) and t.shape is not None:
        dims = tuple(d if d.size is None or set(size_names(ast.ScalarType(
            ast.ScalarKind.INT, d.size))) <= bound else ast.Dim(d.label, None, d.span)
            for d in t.shape.dims)
        return ast.TensorType(t.dtype, ast.Shape(t.shape.variadic, dims, t.shape.span),
                              t.device, t.span)
    if isinstance(t, ast.ListType):
        return ast.ListType(_loosen(t.elem, bound), t.span)
    if isinstance(t, ast.TupleType):
        return ast.TupleType(tuple(_loosen(e, bound) for e in t.elems), t.span)
    return t


def rewrite_struct_calls(decl: ast.FunctionDef, self_struct: str,
                         structs: dict[str, ast.StructDef], callable_struct: Any,
                         taken: set[str]) -> tuple[ast.FunctionDef, dict[str, str]]:
    """``decl`` (a method whose ``self`` is the declared struct ``self_struct``) with its calls
    of fields made explicit: ``self.up(x)``, with ``up: "Linear[d, f]"`` and ``Linear`` a
    class whose forward is jitted (``callable_struct(name)``), is a call of that forward with
    ``self.up`` as its ``self``, under a new local name. Fields are found through ``self``,
    indexes of list fields (``self.layers[0]``) and loop variables over them. Returns the
    new decl and, for each local name, the struct whose forward it calls."""
    from gtdsl._records import replace

    self_name = decl.params[0].name
    callees: dict[str, str] = {}
    by_struct: dict[str, str] = {}

    def field_type(struct: str, name: str) -> Any:
        s = structs.get(struct)
        if s is None:
            return None
        for f in s.fields:
            if f.name == name:
                return f.annotation
        return None

    def type_of(e: Any, loops: dict[str, Any]) -> Any:
        if isinstance(e, ast.Name):
            if e.id == self_name:
                return ast.StructType(self_struct, ())
            return loops.get(e.id)
        if isinstance(e, ast.Attribute):
            base = type_of(e.value, loops)
            if isinstance(base, ast.StructType):
                return field_type(base.name, e.attr)
            return None
        if isinstance(e, ast.Subscript) and len(e.indices) == 1 and isinstance(
                e.indices[0], ast.Int):
            base = type_of(e.value, loops)
            return base.elem if isinstance(base, ast.ListType) else None
        return None

    def element(it: Any, loops: dict[str, Any]) -> Any:
        seq = type_of(it, loops)
        return seq.elem if isinstance(seq, ast.ListType) else None

    def on_call(node: ast.Call, loops: dict[str, Any]) -> Any:
        if isinstance(node.func, ast.Name) and node.func.id == self_name:
            return None
        t = type_of(node.func, loops)
        if not (isinstance(t, ast.StructType) and callable_struct(t.name)):
            return None
        local = by_struct.get(t.name)
        if local is None:
            base = f"{t.name}_forward"
            local, n = base, 1
            while local in taken or local in callees:
                n += 1
                local = f"{base}_{n}"
            by_struct[t.name] = local
            callees[local] = t.name
        return ast.Call(ast.Name(local, node.span), (node.func, *node.args), node.keywords,
                        node.span)

    return replace(decl, body=rewrite_calls_in(decl.body, element, on_call)), callees


def rewrite_calls_in(body: tuple[Any, ...], element: Any, on_call: Any) -> tuple[Any, ...]:
    """``body`` rebuilt bottom-up (nodes shared where nothing changed): each ``ast.Call``,
    its parts rewritten first, is replaced by ``on_call(call, loops)`` unless that is None;
    a ``for NAME in ITER`` whose ``element(ITER, loops)`` is not None walks its body with
    ``loops[NAME]`` bound to it (what the loop variable stands for)."""
    from gtdsl._records import is_record, record_fields, replace

    def walk(node: Any, loops: dict[str, Any]) -> Any:
        if isinstance(node, tuple):
            items = [walk(n, loops) for n in node]
            return tuple(items) if any(a is not b for a, b in zip(items, node)) else node
        if not is_record(node):
            return node
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            bound = element(node.iter, loops)
            if bound is not None:
                inner = dict(loops)
                inner[node.target.id] = bound
                body = walk(node.body, inner)
                it = walk(node.iter, loops)
                if body is node.body and it is node.iter:
                    return node
                return replace(node, body=body, iter=it)
        changes = {}
        for f in record_fields(type(node)):
            if f.name != "span":
                value = getattr(node, f.name)
                new = walk(value, loops)
                if new is not value:
                    changes[f.name] = new
        if changes:
            node = replace(node, **changes)
        if isinstance(node, ast.Call):
            out = on_call(node, loops)
            if out is not None:
                return out
        return node

    out = walk(body, {})
    assert isinstance(out, tuple)
    return out
