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
            for name in _struct_names(f.annotation):
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


def _struct_names(t: Any) -> list[str]:
    if isinstance(t, ast.StructType):
        return [t.name]
    if isinstance(t, ast.ListType):
        return _struct_names(t.elem)
    if isinstance(t, ast.TupleType):
        return [n for e in t.elems for n in _struct_names(e)]
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
