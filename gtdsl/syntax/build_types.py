"""Building type and literal AST nodes from Lark's parse tree.

The base of the AST builder: spans, failures, literals and every type form, including
string annotations (``x: "f32[n]"``), which are parsed with the ``type`` start rule and
whose spans are placed inside the string in the same file. Which name is a dtype,
``Tensor``, a Python scalar or a struct is decided here, not in the grammar.
"""

from __future__ import annotations

import ast as pyast
import keyword
import math
import unicodedata
import warnings
from typing import NoReturn

from lark import Token, Tree

from gtdsl.diagnostics import Diagnostic, Label, SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.errors import parse_tree
from gtdsl.syntax.grammar import SyntaxProblem, token_span
from gtdsl.syntax.tokens import MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH, RESERVED_PREFIX

_SIZE_OPS = {
    "size_add": ast.SizeOp.ADD, "size_sub": ast.SizeOp.SUB, "size_mul": ast.SizeOp.MUL,
    "size_floordiv": ast.SizeOp.FLOORDIV, "size_mod": ast.SizeOp.MOD,
}
_STRING_PREFIX_CHARS = "rRbBuUfF"
# Python refuses to print ints past 4300 digits; a literal this long is a mistake anyway.
_MAX_LITERAL_DIGITS = 1000
_BLOCK_NODES = frozenset(("module", "suite", "if_stmt", "elif_clause", "for_stmt", "if_exp"))


class TypeBuilder:
    """Types and literals from a parse tree; ``offset`` places a nested parse in its file."""

    def __init__(self, file: SourceFile, offset: int = 0) -> None:
        self.file = file
        self.offset = offset
        self.prepared = False  # the tree's names normalised and its depth checked

    # ------------------------------------------------------------------ names and depth
    def prepare(self, tree: Tree) -> None:
        """Check the nesting limits and read every name as Python does: NFKC-normalised
        (``ｎ`` is ``n``), a valid identifier, not a keyword, not ``__gt_...``. Iterative, so
        that a too deeply nested tree is a diagnostic before anything recurses over it."""
        self.prepared = True
        text = self.file.text
        names = not text.isascii() or RESERVED_PREFIX in text
        stack: list[tuple[Tree, int, int, Tree]] = [(tree, 0, 0, tree)]
        while stack:
            node, block, depth, parent = stack.pop()
            if block > MAX_BLOCK_DEPTH:
                span = self.span(parent if node.data == "suite" else node)
                line_end = self.file.text.find("\n", span.start)
                span = Span(self.file, span.start, span.end if line_end < 0 else
                            min(span.end, line_end))
                self.fail("GT0015", f"blocks nested more than {MAX_BLOCK_DEPTH} deep", span,
                          f"this block is level {block}", help="move the inner part into a "
                          "function of its own", notes=("each `if`, `elif`, `for` and "
                                                        "conditional expression (`a if c "
                                                        "else b`) is one level",))
            if depth > MAX_EXPR_DEPTH:
                self.fail("GT0015", f"expression nested more than {MAX_EXPR_DEPTH} deep", node,
                          "nested too deeply from here on",
                          help="split the expression into several assignments")
            kind = node.data
            children = node.children
            if names:
                for i, child in enumerate(children):
                    if isinstance(child, Token) and child.type == "NAME":
                        value = self.identifier(child, reserved=not (kind == "attribute" and
                                                                     i == 1))
                        if value != child.value:
                            children[i] = Token.new_borrow_pos(child.type, value, child)
            if kind not in _BLOCK_NODES:
                inner = depth + 1
                for child in reversed(children):  # popped in source order
                    if isinstance(child, Tree):
                        stack.append((child, block, inner, node))
                continue
            if kind in ("module", "suite"):
                states = [(block, 0)] * len(children)
            elif kind == "if_stmt":  # an `elif` is an `if` in the `else` block before it
                elifs = len(children) - 3
                states = [(block, 1), (block + 1, 0)] + [
                    (block + 1 + i, 0) for i in range(elifs)] + [(block + 1 + elifs, 0)]
            elif kind == "elif_clause":
                states = [(block, 1), (block + 1, 0)]
            elif kind == "for_stmt":
                states = [(block, 1), (block, 1), (block + 1, 0)]
            else:  # a conditional expression
                states = [(block + 1, depth + 1)] * len(children)
            for child, (b, d) in reversed(list(zip(children, states))):
                if isinstance(child, Tree):
                    stack.append((child, b, d, node))

    def identifier(self, tok: Token, reserved: bool = True) -> str:
        """The name ``tok`` spells, as Python reads it (PEP 3131), or a diagnostic."""
        raw = tok.value
        if raw.isascii():
            value = raw
        else:
            if not raw.isidentifier():
                i = next((i for i, ch in enumerate(raw) if not ("a" + ch).isidentifier() or
                          i == 0 and not ch.isidentifier()), 0)
                start = self.span(tok).start + i
                self.fail("GT0002", f"invalid character `{raw[i]}` (U+{ord(raw[i]):04X}) in "
                          "a name", Span(self.file, start, start + 1),
                          "not a letter, digit or `_` of a Python name",
                          help="use letters, digits and `_` as in Python names")
            value = unicodedata.normalize("NFKC", raw)
            if not value.isidentifier():
                self.fail("GT0002", f"the name `{raw}` is not a name once normalised "
                          f"(`{value}`)", tok, "Python compares names after NFKC "
                          "normalisation", help="use letters, digits and `_` as in Python "
                          "names")
            if keyword.iskeyword(value):
                self.fail("GT0001", f"the name `{raw}` reads as the keyword `{value}`", tok,
                          "Python compares names after NFKC normalisation",
                          help="rename it")
        if reserved and value.startswith(RESERVED_PREFIX):
            self.fail("GT0001", f"names starting with `{RESERVED_PREFIX}` are reserved", tok,
                      "reserved for gtdsl's generated code", help="rename it")
        return value

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
    def annotation(self, tree: Tree) -> ast.TypeExpr:
        if tree.data == "string_annotation":
            return self.string_annotation(as_token(tree.children[0]))
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
        if not self.prepared:
            self.prepare(tree)
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
        name = as_token(name_tok).value
        span = self.span(tree)
        if _has_jaxtyping_dims(shape):
            return self.jaxtyping(name, as_token(name_tok), shape, device, span)
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

    def jaxtyping(self, name: str, name_tok: Token, shape: Tree, device: Tree | None,
                  span: Span) -> ast.TypeExpr:
        """``Float[Tensor, "b s d"]``: a jaxtyping annotation, as the gtdsl type it means."""
        from gtdsl.syntax.jaxtyping import jaxtyping_type
        dims = shape.children[0].children
        strings = [d for d in dims if d.data in ("string_dim", "dotted_dim")]
        if (len(dims) != 2 or dims[1].data != "string_dim" or dims[0].data == "string_dim"
                or device is not None):
            where = device if device is not None else (strings or [shape])[0]
            self.fail("GT0011", "a string in a shape is a jaxtyping dims string, written "
                      "`Float[Tensor, \"b s d\"]`", where, "not a gtdsl shape",
                      help="write a gtdsl type such as `f32[b, s, d]`, or a jaxtyping one: a "
                           "dtype name, `Tensor` and the dims string")
        array_dim, string_dim = dims
        array = _array_name(array_dim)
        tok = as_token(string_dim.children[0])
        return jaxtyping_type(self.file, name, self.span(name_tok), array or "?",
                              self.span(array_dim), tok.value,
                              (tok.start_pos or 0) + self.offset, span)

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
            if kind in ("string_dim", "dotted_dim"):
                self.fail("GT0011", "a string or dotted name in a shape is part of a "
                          "jaxtyping type, written `Float[Tensor, \"b s d\"]`", dim,
                          "not a dim", help="write dims as names, sizes or `?`, e.g. "
                                            "`f32[b, s, 768]`")
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
            return ast.SizeLit(self.int_value(as_token(tree.children[0])), span)
        if kind == "size_name":
            return ast.SizeVar(as_token(tree.children[0]).value, span)
        left, right = tree.children
        lhs, rhs = self.size(left), self.size(right)
        assert lhs is not None and rhs is not None
        return ast.SizeBinOp(_SIZE_OPS[kind], lhs, rhs, span)

    def device(self, tree: Tree | None) -> ast.Device | None:
        if tree is None:
            return None
        (child,) = tree.children
        tok = as_token(child)
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


def as_token(node: object) -> Token:
    """``node`` as the token the grammar puts at this position of a rule's children."""
    if not isinstance(node, Token):
        raise AssertionError(f"expected a token, got {node!r}")
    return node


def _string_prefix(text: str) -> str:
    i = 0
    while i < len(text) and text[i] in _STRING_PREFIX_CHARS:
        i += 1
    return text[:i]


def _has_jaxtyping_dims(shape: Tree | None) -> bool:
    if shape is None or shape.children[0] is None:
        return False
    return any(d.data in ("string_dim", "dotted_dim") for d in shape.children[0].children)


def _array_name(dim: Tree) -> str | None:
    """``Tensor`` or ``torch.Tensor`` as written in ``Float[<here>, "..."]``; None if the
    dim is no name."""
    if dim.data == "dotted_dim":
        return ".".join(as_token(t).value for t in dim.children)
    if dim.data == "size_dim" and dim.children[0].data == "size_name":
        return as_token(dim.children[0].children[0]).value
    return None


def _single_size_dim(shape: Tree | None) -> bool:
    """True for ``[N]``, ``[768]``, ``[2*H]``: the shape that makes ``int[...]`` a sized int."""
    if shape is None or shape.children[0] is None:
        return False
    dims = shape.children[0].children
    return len(dims) == 1 and dims[0].data == "size_dim"


