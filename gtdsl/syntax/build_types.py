"""Building type and literal AST nodes from Lark's parse tree.

The base of the AST builder: spans, failures, literals and every type form, including
string annotations (``x: "f32[n]"``), which are parsed with the ``type`` start rule and
whose spans are placed inside the string in the same file. Which name is a dtype,
``Tensor``, a Python scalar or a struct is decided here, not in the grammar.
"""

from __future__ import annotations

import ast as pyast
import math
import warnings
from typing import NoReturn

from lark import Token, Tree

from gtdsl.diagnostics import Diagnostic, Label, SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.errors import parse_tree
from gtdsl.syntax.grammar import SyntaxProblem, token_span

_SIZE_OPS = {
    "size_add": ast.SizeOp.ADD, "size_sub": ast.SizeOp.SUB, "size_mul": ast.SizeOp.MUL,
    "size_floordiv": ast.SizeOp.FLOORDIV, "size_mod": ast.SizeOp.MOD,
}
_STRING_PREFIX_CHARS = "rRbBuUfF"
# Python refuses to print ints past 4300 digits; a literal this long is a mistake anyway.
_MAX_LITERAL_DIGITS = 1000


class TypeBuilder:
    """Types and literals from a parse tree; ``offset`` places a nested parse in its file."""

    def __init__(self, file: SourceFile, offset: int = 0) -> None:
        self.file = file
        self.offset = offset

    # ------------------------------------------------------------------ helpers
    def span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            return token_span(self.file, node, self.offset)
        meta = node.meta
        if meta.empty:
            return Span(self.file, self.offset, self.offset)
        return Span(self.file, meta.start_pos + self.offset, meta.end_pos + self.offset)

    def fail(self, code: str, message: str, where: Tree | Token | Span, label: str = "",
             help: str | None = None, notes: tuple[str, ...] = ()) -> NoReturn:
        span = where if isinstance(where, Span) else self.span(where)
        raise SyntaxProblem(Diagnostic(code, message, Label(span, label), notes=notes, help=help))

    def int_value(self, tok: Token) -> int:
        text = tok.value
        if len(text) > _MAX_LITERAL_DIGITS:
            self.fail("GT0016", "integer literal too large", tok,
                      f"more than {_MAX_LITERAL_DIGITS} digits")
        try:
            return int(text, 0)
        except ValueError:
            self.fail("GT0016", f"invalid integer literal `{text}`", tok,
                      "leading zeros are not allowed in decimal integers",
                      help=f"write `{text.lstrip('0_') or '0'}`, or `0o...` for octal")

    def float_value(self, tok: Token) -> float:
        value = float(tok.value)
        if not math.isfinite(value):
            self.fail("GT0016", "float literal out of range", tok,
                      "larger than the largest float", help="use `math.inf` for infinity")
        return value

    def string_token_value(self, tok: Token) -> str:
        prefix = _string_prefix(tok.value)
        lowered = prefix.lower()
        if "f" in lowered:
            self.fail("GT0007", "f-strings are not supported in gtdsl", tok,
                      "formatted string", help="use a plain string literal")
        if "b" in lowered:
            self.fail("GT0007", "bytes literals are not supported in gtdsl", tok,
                      "bytes literal", help="use a plain string literal")
        try:
            with warnings.catch_warnings():  # `"\q"`: accepted as Python accepts it
                warnings.simplefilter("ignore")
                value = pyast.literal_eval(tok.value)
        except (SyntaxError, ValueError):
            self.fail("GT0016", "invalid string literal", tok, "it holds a malformed escape",
                      help="check the backslash escapes, or use a raw string `r\"...\"`")
        assert isinstance(value, str)
        return value

    # ------------------------------------------------------------------ types
    def annotation(self, tree: Tree | Token) -> ast.TypeExpr:
        if isinstance(tree, Tree) and tree.data == "string_annotation":
            return self.string_annotation(tree.children[0])
        return self.type(tree)

    def string_annotation(self, tok: Token) -> ast.TypeExpr:
        """A type written as a string (``x: "f32[n]"``), parsed with the ``type`` rule."""
        self.string_token_value(tok)  # rejects f/b prefixes and broken escapes
        prefix = _string_prefix(tok.value)
        quote = tok.value[len(prefix) : len(prefix) + 3]
        quote = quote if quote in ('"""', "'''") else quote[0]
        content = tok.value[len(prefix) + len(quote) : len(tok.value) - len(quote)]
        if "\\" in content:
            self.fail("GT0011", "a string annotation cannot contain escapes", tok,
                      "write the type without backslashes")
        stripped = content.lstrip()
        if not stripped.strip():
            self.fail("GT0011", "empty string annotation", tok, "a type is expected inside",
                      help='write a type, e.g. "f32[n]", or remove the annotation')
        start = (tok.start_pos or 0) + self.offset + len(prefix) + len(quote)
        start += len(content) - len(stripped)
        nested = parse_tree(self.file, stripped.rstrip(), "type", start)
        return TypeBuilder(self.file, start).type(nested)

    def type(self, tree: Tree) -> ast.TypeExpr:
        kind = tree.data
        span = self.span(tree)
        if kind == "dyn_type":
            _q, shape, device = tree.children
            if shape is None and device is None:
                return ast.DynType(span)
            return ast.TensorType(None, self.shape(shape), self.device(device), span)
        if kind == "named_type":
            return self.named_type(tree)
        if kind == "list_type":
            return ast.ListType(self.type(tree.children[0]), span)
        if kind == "tuple_type":
            return ast.TupleType(tuple(self.type(c) for c in tree.children), span)
        raise AssertionError(kind)

    def named_type(self, tree: Tree) -> ast.TypeExpr:
        name_tok, shape, device = tree.children
        name = name_tok.value
        span = self.span(tree)
        # `int`, `float`, `bool` alone are Python scalars; a written shape or device makes
        # them tensor dtypes (`bool[]`, `int @ cuda`); `int[N]` alone is an int naming size N.
        if name in ast.SCALAR_NAMES and shape is None and device is None:
            return ast.ScalarType(ast.SCALAR_NAMES[name], None, span)
        if name == "int" and device is None and _single_size_dim(shape):
            return ast.ScalarType(ast.ScalarKind.INT, self.size(shape.children[0].children[0].children[0]), span)
        if name in ast.DTYPE_NAMES or name == "Tensor":
            dtype = ast.DTYPE_NAMES.get(name)
            return ast.TensorType(dtype, self.shape(shape), self.device(device), span)
        if device is not None:
            self.fail("GT0011", f"`{name}` is not a dtype, so it takes no device", device,
                      "a struct type has no device",
                      help="dtypes are f16 bf16 f32 f64 i8 i16 i32 i64 u8 bool c64 c128, "
                           "and the categories float int uint complex")
        return ast.StructType(name, self.struct_args(name, shape), span)

    def struct_args(self, name: str, shape: Tree | None) -> tuple[ast.SizeExpr | None, ...]:
        if shape is None or shape.children[0] is None:
            return ()
        args: list[ast.SizeExpr | None] = []
        for dim in shape.children[0].children:
            if dim.data == "size_dim":
                args.append(self.size(dim.children[0]))
            elif dim.data == "dyn_dim":
                args.append(None)
            else:
                self.fail("GT0011", f"struct `{name}` takes sizes, not dims", dim,
                          "expected a size such as `768`, `D` or `4*D`",
                          help="labels and variadic parts belong to tensor shapes")
        return tuple(args)

    def shape(self, tree: Tree | None) -> ast.Shape | None:
        if tree is None:
            return None
        (dims_tree,) = tree.children
        span = self.span(tree)
        if dims_tree is None:
            return ast.Shape(None, (), span)
        variadic = None
        dims: list[ast.Dim] = []
        for i, dim in enumerate(dims_tree.children):
            kind = dim.data
            if kind in ("row_dim", "ellipsis_dim"):
                if i != 0:
                    self.fail("GT0011", "a variadic part may only come first in a shape", dim,
                              "variadic part after a dim",
                              help="move it to the front: shapes are aligned from the right, "
                                   "as in broadcasting",
                              notes=("with variadic parts at both ends two shapes have no exact "
                                     "meet, so gtdsl allows one, leading",))
                name = dim.children[0].value if kind == "row_dim" else None
                variadic = ast.Variadic(name, self.span(dim))
            elif kind == "dyn_dim":
                dims.append(ast.Dim(None, None, self.span(dim)))
            elif kind == "labelled_dim":
                label, size = dim.children
                dims.append(ast.Dim(label.value, self.size(size), self.span(dim)))
            else:
                size = self.size(dim.children[0])
                label = size.name if isinstance(size, ast.SizeVar) else None
                dims.append(ast.Dim(label, size, self.span(dim)))
        return ast.Shape(variadic, tuple(dims), span)

    def size(self, tree: Tree) -> ast.SizeExpr | None:
        kind = tree.data
        span = self.span(tree)
        if kind == "dyn_size":
            return None
        if kind == "size_int":
            return ast.SizeLit(self.int_value(tree.children[0]), span)
        if kind == "size_name":
            return ast.SizeVar(tree.children[0].value, span)
        left, right = tree.children
        lhs, rhs = self.size(left), self.size(right)
        assert lhs is not None and rhs is not None
        return ast.SizeBinOp(_SIZE_OPS[kind], lhs, rhs, span)

    def device(self, tree: Tree | None) -> ast.Device | None:
        if tree is None:
            return None
        (tok,) = tree.children
        span = self.span(tree)
        if tok.type == "QMARK":
            return None
        if tok.type == "CUDA_INDEX":
            digits = tok.value.split(":")[1]
            if len(digits) > 9:
                self.fail("GT0011", "CUDA device index too large", tok, "not a device",
                          help="write `@ cuda:N` with N a GPU number, e.g. `@ cuda:0`")
            return ast.Device(ast.DeviceKind.CUDA, int(digits), span)
        if tok.value == "cpu":
            return ast.Device(ast.DeviceKind.CPU, None, span)
        if tok.value == "cuda":
            return ast.Device(ast.DeviceKind.CUDA, None, span)
        self.fail("GT0011", f"unknown device `{tok.value}`", tok, "not a device",
                  help="write `@ cpu`, `@ cuda`, `@ cuda:0` (any index) or `@ ?`")



def _string_prefix(text: str) -> str:
    i = 0
    while i < len(text) and text[i] in _STRING_PREFIX_CHARS:
        i += 1
    return text[:i]


def _single_size_dim(shape: Tree | None) -> bool:
    """True for ``[N]``, ``[768]``, ``[2*H]``: the shape that makes ``int[...]`` a sized int."""
    if shape is None or shape.children[0] is None:
        return False
    dims = shape.children[0].children
    return len(dims) == 1 and dims[0].data == "size_dim"


