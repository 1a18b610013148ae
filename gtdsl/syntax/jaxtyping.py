"""jaxtyping annotations as gtdsl types: ``Float[Tensor, "b s d"]`` is ``float[b, s, d]``.

Input: the dtype name (``Float``, ``BFloat16``, ``Shaped``, ...), the array type it was
written with (``Tensor`` or ``torch.Tensor``) and the dims string, each with its place in the
file. Output: the ``ast.TensorType`` with the same meaning, spans inside the string; a form
gtdsl has no meaning for is a GT0011 diagnostic with a hint (raised as ``SyntaxProblem``).
The table is in docs/language.md, "From jaxtyping".

The dims string is read as jaxtyping reads it: dims separated by spaces; ``name`` a size
named ``name`` (the same size wherever it appears, and a label); ``3`` a fixed size;
``name=3`` a labelled fixed size; ``*name`` any number of dims, named; ``...`` any number of
dims; ``_`` or ``_name`` a dim of any size; ``#name`` a dim of size ``name`` or 1, which
gtdsl reads as a dim of any size (it has no broadcastable dims); ``d*3``, ``s+1``, ``n//2``
a size expression (``+ - * // %``, parentheses, no spaces).
"""

from __future__ import annotations

import keyword
import unicodedata

from gtdsl.diagnostics import Diagnostic, Label, SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.tokens import RESERVED_PREFIX, SyntaxProblem

# jaxtyping's dtype names with a gtdsl meaning: a dtype, a category, or None (any dtype)
DTYPES: dict[str, ast.DType | None] = {
    "Float": ast.DType.FLOAT, "Float16": ast.DType.F16, "BFloat16": ast.DType.BF16,
    "Float32": ast.DType.F32, "Float64": ast.DType.F64,
    "Int": ast.DType.INT, "Int8": ast.DType.I8, "Int16": ast.DType.I16,
    "Int32": ast.DType.I32, "Int64": ast.DType.I64,
    "UInt": ast.DType.UINT, "UInt8": ast.DType.U8,
    "Bool": ast.DType.BOOL,
    "Complex": ast.DType.COMPLEX, "Complex64": ast.DType.C64, "Complex128": ast.DType.C128,
    "Shaped": None,
}

_UNION = ("gtdsl's dtype categories form a tree (float, int, uint, complex), so a union of "
          "two of them is no gtdsl type")
# jaxtyping's names gtdsl has no type for, each with why
REFUSED: dict[str, tuple[str, str]] = {
    "Integer": (_UNION, "write `Int` or `UInt`, or `Shaped` for any dtype"),
    "Real": (_UNION, "write `Float`, `Int` or `UInt`, or `Shaped` for any dtype"),
    "Num": (_UNION, "write `Float`, `Int`, `UInt` or `Complex`, or `Shaped` for any dtype"),
    "Inexact": (_UNION, "write `Float` or `Complex`, or `Shaped` for any dtype"),
    "Key": ("a JAX random key has no torch counterpart", "use a tensor type"),
    "UInt16": ("gtdsl's unsigned dtype is u8", "write `UInt8`, or `Int32` for wider values"),
    "UInt32": ("gtdsl's unsigned dtype is u8", "write `UInt8`, or `Int64` for wider values"),
    "UInt64": ("gtdsl's unsigned dtype is u8", "write `UInt8`, or `Int64` for wider values"),
    "Int2": ("gtdsl has no sub-byte dtypes", "write `Int8`"),
    "Int4": ("gtdsl has no sub-byte dtypes", "write `Int8`"),
    "UInt2": ("gtdsl has no sub-byte dtypes", "write `UInt8`"),
    "UInt4": ("gtdsl has no sub-byte dtypes", "write `UInt8`"),
    **{name: ("gtdsl has no 8-bit or 4-bit float dtypes", "write `Float16` or `BFloat16`")
       for name in ("Float4e2m1fn", "Float8e4m3b11fnuz", "Float8e4m3fn", "Float8e4m3fnuz",
                    "Float8e5m2", "Float8e5m2fnuz")},
}

ARRAY_TYPES = ("Tensor", "torch.Tensor")
_DIGITS = "0123456789"
_MAX_DIGITS = 1000  # as gtdsl's own integer literals (GT0016 beyond)

_SIZE_OPS = {"+": ast.SizeOp.ADD, "-": ast.SizeOp.SUB, "*": ast.SizeOp.MUL,
             "//": ast.SizeOp.FLOORDIV, "%": ast.SizeOp.MOD}


def _fail(span: Span, message: str, label: str, help: str | None = None,
          notes: tuple[str, ...] = ()) -> SyntaxProblem:
    return SyntaxProblem(Diagnostic("GT0011", message, Label(span, label), notes=notes,
                                    help=help))


def jaxtyping_type(file: SourceFile, name: str, name_span: Span, array: str,
                   array_span: Span, raw: str, raw_start: int, span: Span) -> ast.TensorType:
    """``name[array, raw]`` (``raw`` the string token as written, starting at file offset
    ``raw_start``) as the gtdsl tensor type it means."""
    if name in REFUSED:
        why, fix = REFUSED[name]
        raise _fail(name_span, f"jaxtyping's `{name}` has no gtdsl type", why, help=fix)
    if name not in DTYPES:
        raise _fail(name_span, f"`{name}[...]` with a string is not a type",
                    "not a jaxtyping dtype",
                    help="a jaxtyping type is written `Float[Tensor, \"b s d\"]`, with one of "
                         + ", ".join(f"`{n}`" for n in DTYPES))
    if array not in ARRAY_TYPES:
        raise _fail(array_span, f"jaxtyping's `{name}[{array}, ...]` is not a torch tensor",
                    "gtdsl types torch tensors",
                    help=f"write `{name}[Tensor, ...]` (with `from torch import Tensor`)")
    quote, content = _string_content(raw, raw_start, file)
    start = raw_start + len(raw) - len(raw.lstrip("rRuUfFbB")) + len(quote)
    shape = _shape(file, content, start, Span(file, raw_start, raw_start + len(raw)))
    return ast.TensorType(DTYPES[name], shape, None, span)


def _string_content(raw: str, raw_start: int, file: SourceFile) -> tuple[str, str]:
    body = raw.lstrip("rRuUfFbB")
    prefix = raw[:len(raw) - len(body)]
    whole = Span(file, raw_start, raw_start + len(raw))
    if any(c in prefix for c in "fFbB") or prefix.count("r") + prefix.count("R") > 1:
        raise _fail(whole, "a jaxtyping shape must be a plain string", "not a plain string",
                    help="write the dims as a plain string, e.g. \"b s d\"")
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    content = body[len(quote):len(body) - len(quote)]
    if "\\" in content or "\n" in content:
        raise _fail(whole, "a jaxtyping shape cannot contain escapes or line breaks",
                    "in this string", help="write the dims on one line, separated by spaces")
    return quote, content


def _shape(file: SourceFile, content: str, start: int, whole: Span) -> ast.Shape:
    variadic: ast.Variadic | None = None
    dims: list[ast.Dim] = []
    i = 0
    n = len(content)
    while i < n:
        if content[i] in " \t":
            i += 1
            continue
        j = i
        while j < n and content[j] not in " \t":
            j += 1
        elem, at = content[i:j], start + i
        span = Span(file, at, at + len(elem))
        i = j
        if "," in elem:
            raise _fail(span, "jaxtyping dims are separated by spaces, not commas",
                        "a comma", help="write \"b s d\", not \"b, s, d\"")
        if elem == "..." or elem.startswith("*"):
            if variadic is not None:
                raise _fail(span, "a shape can hold one variadic part (`*name` or `...`)",
                            "a second one", help="name the other dims one by one")
            if dims:
                raise _fail(span, "gtdsl allows a variadic part (`*name` or `...`) only "
                            "first in a shape", "variadic part after a dim",
                            help="move it to the front: shapes are aligned from the right, "
                                 "as in broadcasting",
                            notes=("with variadic parts at both ends two shapes have no "
                                   "exact meet, so gtdsl allows one, leading",))
            variadic = _variadic(elem, span)
            continue
        dims.append(_dim(file, elem, at, span))
    return ast.Shape(variadic, tuple(dims), whole)


def _variadic(elem: str, span: Span) -> ast.Variadic:
    if elem == "...":
        return ast.Variadic(None, span)
    rest = elem[1:]
    if rest.startswith("#"):  # broadcastable: may be 1s where another binding is not
        rest = rest[1:]
        if rest.isidentifier():
            _name(rest, span)
            return ast.Variadic(None, span)  # gtdsl has no broadcastable rows: any dims
    if rest == "_" or (rest.startswith("_") and rest[1:2] != "_" and rest[1:].isidentifier()):
        return ast.Variadic(None, span)
    if rest.startswith("?"):
        raise _treepath(span)
    if not rest.isidentifier():
        raise _fail(span, f"`{elem}` is not a variadic part", "expected `*name`",
                    help="a variadic part is `*name` or `...`")
    return ast.Variadic(_name(rest, span), span)


def _name(text: str, span: Span) -> str:
    """A name in the dims string, read as Python reads names (NFKC), never reserved."""
    value = unicodedata.normalize("NFKC", text) if not text.isascii() else text
    if not value.isidentifier() or keyword.iskeyword(value) and value != "in":
        raise _fail(span, f"`{text}` is not a name", "not a size name",
                    help="size names are Python names")
    if value.startswith(RESERVED_PREFIX):
        raise SyntaxProblem(Diagnostic("GT0001", f"names starting with `{RESERVED_PREFIX}` "
                                       "are reserved", Label(span, "reserved for gtdsl's "
                                                             "generated code"),
                                       help="rename it"))
    return value


def _treepath(span: Span) -> SyntaxProblem:
    return _fail(span, "`?` dims (sizes that depend on a position in a PyTree) have no "
                 "gtdsl meaning", "a PyTree-dependent dim",
                 help="write the name alone: in gtdsl a size name means one size per call")


def _dim(file: SourceFile, elem: str, at: int, span: Span) -> ast.Dim:
    if elem.startswith("?"):
        raise _treepath(span)
    if elem.startswith("#"):  # broadcastable (this size or 1): gtdsl reads any size
        rest = elem[1:]
        if rest.startswith(("#", "_")) or not rest:
            raise _fail(span, f"`{elem}` is not a jaxtyping dim", "malformed",
                        help="`#name` is a dim of size `name` or 1")
        _size(file, rest, at + 1)  # well formed, though not kept
        return ast.Dim(None, None, span)
    if elem == "_" or (elem.startswith("_") and elem[1:2] != "_" and elem[1:].isidentifier()):
        return ast.Dim(None, None, span)
    if elem.count("=") == 1:
        label, size_text = elem.split("=")
        if not label.isidentifier():
            raise _fail(span, f"`{label}` is not a name", "before `=`",
                        help="write `name=size`, e.g. \"rows=3\"")
        return ast.Dim(_name(label, Span(file, at, at + len(label))),
                       _size(file, size_text, at + len(label) + 1), span)
    if elem.isidentifier():
        name = _name(elem, span)
        return ast.Dim(name, ast.SizeVar(name, span), span)
    return ast.Dim(None, _size(file, elem, at), span)


def _size(file: SourceFile, text: str, at: int) -> ast.SizeExpr:
    """A size expression in a jaxtyping dim: ints, names, ``+ - * // %``, parentheses."""
    tokens: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in _DIGITS:
            j = i
            while j < len(text) and (text[j] in _DIGITS or text[j] == "_"):
                j += 1
        elif (c.isalpha() or c == "_") and ("a" + c).isidentifier():
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
        elif text.startswith("//", i):
            j = i + 2
        elif c in "+-*%()":
            j = i + 1
            if text.startswith("**", i):
                raise _fail(Span(file, at + i, at + i + 2), "`**` is not a size operator",
                            "a power", help="sizes use + - * // % and parentheses")
        else:
            raise _fail(Span(file, at + i, at + i + 1), f"`{c}` cannot appear in a size",
                        "not a size expression",
                        help="sizes use names, integers, + - * // % and parentheses; "
                             "jaxtyping's other Python expressions have no gtdsl meaning")
        tokens.append((text[i:j], at + i))
        i = j
    parser = _SizeParser(file, tokens, at, at + len(text))
    node = parser.sum()
    if parser.i != len(tokens):
        tok, pos = tokens[parser.i]
        raise _fail(Span(file, pos, pos + len(tok)), f"unexpected `{tok}` in a size",
                    "not a size expression", help="sizes use + - * // % and parentheses")
    return node


class _SizeParser:
    def __init__(self, file: SourceFile, tokens: list[tuple[str, int]], start: int,
                 end: int) -> None:
        self.file, self.tokens, self.start, self.end = file, tokens, start, end
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def _span_from(self, first: int) -> Span:
        tok, pos = self.tokens[self.i - 1]
        return Span(self.file, self.tokens[first][1], pos + len(tok))

    def sum(self) -> ast.SizeExpr:
        first = self.i
        node = self.prod()
        while self._peek() in ("+", "-"):
            op = _SIZE_OPS[self.tokens[self.i][0]]
            self.i += 1
            node = ast.SizeBinOp(op, node, self.prod(), self._span_from(first))
        return node

    def prod(self) -> ast.SizeExpr:
        first = self.i
        node = self.atom()
        while self._peek() in ("*", "//", "%"):
            op = _SIZE_OPS[self.tokens[self.i][0]]
            self.i += 1
            node = ast.SizeBinOp(op, node, self.atom(), self._span_from(first))
        return node

    def atom(self) -> ast.SizeExpr:
        if self.i >= len(self.tokens):
            where = self.tokens[-1][1] + len(self.tokens[-1][0]) if self.tokens else self.end
            raise _fail(Span(self.file, self.start, max(where, self.start + 1)),
                        "incomplete size expression", "a size is missing",
                        help="sizes use names, integers, + - * // % and parentheses")
        tok, pos = self.tokens[self.i]
        span = Span(self.file, pos, pos + len(tok))
        self.i += 1
        if tok[0] in _DIGITS:
            if len(tok) > 1 and tok[0] == "0" or tok.endswith("_") or "__" in tok:
                raise _fail(span, f"invalid size `{tok}`", "not a size",
                            help="write a decimal integer without leading zeros")
            if len(tok) > _MAX_DIGITS:
                raise SyntaxProblem(Diagnostic("GT0016", "integer literal too large",
                                               Label(span, f"more than {_MAX_DIGITS} digits"),
                                               help="no tensor has a size this large"))
            return ast.SizeLit(int(tok), span)
        if tok.isidentifier():
            return ast.SizeVar(_name(tok, span), span)
        if tok == "(":
            node = self.sum()
            if self._peek() != ")":
                raise _fail(span, "unclosed `(` in a size", "opened here")
            self.i += 1
            return node
        raise _fail(span, f"unexpected `{tok}` in a size", "not a size expression",
                    help="sizes use names, integers, + - * // % and parentheses")
