"""The direct parser: well-formed gtdsl text to the AST in one pass, without Lark.

The grammar is ``grammar/gtdsl.lark``; the Lark parser built from it (``gtdsl.syntax.grammar``
with ``gtdsl.syntax.build``) defines what a program means and explains every syntax error.
This parser is a recursive-descent copy of the same grammar for the common case: it tokenizes
with one regular expression, lays out indentation as the ``Layout`` postlexer does, and
builds the ``gtdsl.syntax.ast`` nodes the Lark path builds, spans included, from text that
Lark accepts. Whatever it is not sure of (a syntax error, a name the builder would refuse,
a rare form such as a backslash continuation, a prefixed string or a literal with
underscores in a device index) it does not build: it answers None and the caller runs the
Lark path, which gives the same tree or the diagnostic. So it may refuse more than Lark, but
never accepts more, and never builds a different tree; ``tests/unit/syntax/test_direct.py``
compares the two on every corpus and on mutated programs.

It is many times faster than the Lark path and imports no Lark: checking a well-formed
program never loads Lark's tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from gtdsl.diagnostics import SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.tokens import (
    GRAMMAR_KEYWORDS, MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH, RESERVED_PREFIX, TAB_SIZE,
    UNSUPPORTED_KEYWORDS, trim_end,
)


class _Bail(Exception):
    """Not a program this parser builds: the Lark path decides."""


_new = object.__new__
_SLOTS = vars(Span)  # the slot descriptors: setting through them skips the frozen __setattr__
_set_file, _set_start, _set_end = (_SLOTS[n].__set__ for n in ("file", "start", "end"))


def _make_span(file: SourceFile, start: int, end: int) -> Span:
    """``Span(file, start, end)`` for positions of tokens (in order by construction), without
    the dataclass's generic construction and its check."""
    span = _new(Span)
    _set_file(span, file)
    _set_start(span, start)
    _set_end(span, end)
    return span


# Words the Layout postlexer refuses as names; the grammar takes some of them as keywords.
_RESERVED = frozenset(GRAMMAR_KEYWORDS) | frozenset(UNSUPPORTED_KEYWORDS)
# Kept a margin below the builder's limits: the depths here are upper bounds.
_EXPR_LIMIT = MAX_EXPR_DEPTH - 10
_BLOCK_LIMIT = MAX_BLOCK_DEPTH - 4
_NEST_LIMIT = 40  # recursive expression levels (Python's stack, and a bound on the depth)
_MAX_LITERAL_DIGITS = 1000  # as gtdsl.syntax.build_types

# Token kinds: "N" a name, "K" a reserved word, "I" an integer, "F" a float, "S" a plain
# string, "\n" a newline (with the blank lines and comments after it), ">" an indent, "<" a
# dedent, "$" the end; an operator or bracket is its own text.
_FLOAT = (r"(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?"
          r"|[0-9](?:_?[0-9])*\.(?:[eE][-+]?[0-9](?:_?[0-9])*)?"
          r"|[0-9](?:_?[0-9])*[eE][-+]?[0-9](?:_?[0-9])*)")
_INT = r"(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[0-9](?:_?[0-9])*)"
# One token per match, the blanks before it included (a token starts at its group).
_TOKEN = re.compile(
    r"[ \t]*(?:"
    r"((?:\n[ \t]*|\#[^\n]*)+)"                      # 1 newline run
    r"|([A-Za-z_][A-Za-z0-9_]*)(?![\"'])"            # 2 name (not a string prefix)
    r"|(\*\*=|//=|\.\.\.|->|\*\*|//|==|!=|<=|>=|[-+*/%@]=|[-+*/%@<>=()\[\],:?]"
    r"|\.(?![0-9]))"                                  # 3 operator or bracket
    rf"|({_FLOAT})(?![A-Za-z0-9_.])"                  # 4 float
    rf"|({_INT})(?![A-Za-z0-9_.])"                    # 5 int
    r'|("""[^\\]*?"""|\'\'\'[^\\]*?\'\'\'|"[^"\\\n]*"|\'[^\'\\\n]*\')'  # 6 plain string
    r"|([^ \t]))"                                     # 7 anything else: not ours
)
# Text the direct parser leaves to Lark outright: carriage returns, form feeds, NULs and
# other control characters, lone surrogates (no string holding one is valid). Non-ASCII
# text may stand in strings and comments; a non-ASCII name, which the builder
# NFKC-normalises, is no token here, so Lark reads such a program.
_NOT_OURS = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_OPEN = {"(": ")", "[": "]"}
_EXPR_START = frozenset(("N", "I", "F", "S", "(", "[", "-", "+", "..."))
_EXPR_WORDS = frozenset(("not", "None", "True", "False"))
_CMP = {"<": ast.CmpOp.LT, ">": ast.CmpOp.GT, "==": ast.CmpOp.EQ, ">=": ast.CmpOp.GE,
        "<=": ast.CmpOp.LE, "!=": ast.CmpOp.NE}
_ARITH = {"+": ast.BinOpKind.ADD, "-": ast.BinOpKind.SUB}
_TERM = {"*": ast.BinOpKind.MUL, "/": ast.BinOpKind.DIV, "//": ast.BinOpKind.FLOORDIV,
         "%": ast.BinOpKind.MOD, "@": ast.BinOpKind.MATMUL}
_AUGOPS = {f"{k.value}=": k for k in ast.BinOpKind}
_SIZE_ARITH = {"+": ast.SizeOp.ADD, "-": ast.SizeOp.SUB}
_SIZE_TERM = {"*": ast.SizeOp.MUL, "//": ast.SizeOp.FLOORDIV, "%": ast.SizeOp.MOD}


def parse_module(file: SourceFile, text: str, base_indent: int = 0) -> ast.Module | None:
    """The module ``text`` (``file.text``, with a final newline) holds, or None: the Lark
    path then parses it (and gives the same tree, or the error)."""
    if not _ours(file.text):
        return None
    try:
        p = _Parser(file, text, 0, len(text), base_indent, layout=True)
        return p.module()
    except (_Bail, RecursionError):
        return None


def parse_type_at(file: SourceFile, start: int, end: int) -> ast.TypeExpr | None:
    """The type written at ``file.text[start:end]``, or None (the Lark path decides)."""
    if not _ours(file.text):
        return None
    try:
        return _type_at(file, start, end)
    except (_Bail, RecursionError):
        return None


def _type_at(file: SourceFile, start: int, end: int) -> ast.TypeExpr:
    return _Parser(file, file.text, start, end, 0, layout=False).whole_type()


def _ours(text: str) -> bool:
    return _NOT_OURS.search(text) is None and RESERVED_PREFIX not in text


class _Parser:
    def __init__(self, file: SourceFile, text: str, start: int, end: int, base_indent: int,
                 layout: bool) -> None:
        self.file = file
        self.K: list[str] = []
        self.V: list[str] = []
        self.S: list[int] = []
        self.E: list[int] = []
        self._tokenize(text, start, end, base_indent, layout)
        self.i = 0
        self.h = 0  # the height of the tree the last expression or type parse built
        self.nest = 0  # enclosing expression levels
        self.ifexps = 0  # conditional expressions in the current statement
        self.block = 0  # the statement's block level, as the builder counts it
        # the dims of the last shape read as a struct's size arguments (None: they are not)
        self._struct_args: tuple[ast.SizeExpr | None, ...] | None = None

    # ------------------------------------------------------------------ tokens
    def _tokenize(self, text: str, start: int, end: int, base: int, layout: bool) -> None:
        K, V, S, E = self.K, self.V, self.S, self.E
        kind, value, starts, ends = K.append, V.append, S.append, E.append
        depth = 0
        indents = [base]
        reserved = _RESERVED
        for m in _TOKEN.finditer(text, start, end):
            g: int = m.lastindex  # type: ignore[assignment]  # one group always matches
            if g == 1:
                if depth or not layout:
                    if not depth:
                        raise _Bail  # a newline in a type
                    continue
                s, e = m.span(1)
                kind("\n"), value(""), starts(s), ends(e)
                if e >= end:  # nothing but blanks follow: close blocks down to the base
                    width = base
                else:
                    indent = text[text.rfind("\n", s, e) + 1:e]
                    width = len(indent.expandtabs(TAB_SIZE)) if "\t" in indent else len(indent)
                if width > indents[-1]:
                    indents.append(width)
                    kind(">"), value(""), starts(e), ends(e)
                    continue
                while width < indents[-1]:
                    indents.pop()
                    kind("<"), value(""), starts(e), ends(e)
                if width != indents[-1]:
                    raise _Bail
                continue
            v = m.group(g)
            if g == 2:
                kind("K" if v in reserved else "N")
            elif g == 3:
                kind(v)
                if v in _OPEN:
                    depth += 1
                elif v == ")" or v == "]":
                    if not depth:
                        raise _Bail
                    depth -= 1
            elif g == 6:
                kind("S")
            elif g == 5:
                kind("I")
            elif g == 4:
                kind("F")
            else:
                raise _Bail
            value(v), starts(m.start(g)), ends(m.end())
        if depth:
            raise _Bail
        while layout and len(indents) > 1:
            indents.pop()
            kind("<"), value(""), starts(end), ends(end)
        kind("$"), value(""), starts(end), ends(end)

    def _span(self, first: int, last: int) -> Span:
        """From the start of token ``first`` to the end of token ``last``: what Lark's
        propagated positions give a rule (a block's counts its newline and dedent)."""
        return _make_span(self.file, self.S[first], self.E[last])

    def _expect(self, kind: str) -> None:
        if self.K[self.i] != kind:
            raise _Bail
        self.i += 1

    def _word(self, word: str) -> None:
        i = self.i
        if self.K[i] != "K" or self.V[i] != word:
            raise _Bail
        self.i = i + 1

    def _is_word(self, word: str) -> bool:
        i = self.i
        return self.K[i] == "K" and self.V[i] == word

    def _name(self) -> str:
        i = self.i
        if self.K[i] != "N":
            raise _Bail
        self.i = i + 1
        return self.V[i]

    def _trim_end(self, end: int, floor: int) -> int:
        return trim_end(self.file.text, end, floor)

    def _root(self, base: int) -> None:
        """A statement, parameter or annotation rooted at tree depth ``base`` holds a tree of
        height ``self.h``: leave it to the builder's depth check when it might fail."""
        if base + self.h > _EXPR_LIMIT:
            raise _Bail

    # ------------------------------------------------------------------ module level
    def module(self) -> ast.Module:
        K, V = self.K, self.V
        body: list[ast.Decl] = []
        docstring = None
        first = True
        while True:
            k = K[self.i]
            if k == "\n":
                self.i += 1
                continue
            if k == "$":
                break
            if k == "S":
                if not first or K[self.i + 1] != "\n":
                    raise _Bail
                docstring = _string_value(V[self.i])
                self.i += 2
                first = False
                continue
            first = False
            v = V[self.i]
            if k == "K":
                if v == "def":
                    body.append(self.funcdef(self.i, ()))
                elif v == "from":
                    body.append(self.import_from())
                elif v == "import":
                    body.append(self.import_name())
                else:
                    raise _Bail
            elif k == "N" and v == "struct":
                body.append(self.structdef())
            elif k == "@":
                body.append(self.decorated())
            else:
                raise _Bail
        last = self.i - 1
        span = self._span(0, last) if last >= 0 else Span(self.file, 0, 0)
        return ast.Module(tuple(body), docstring, span)

    def decorated(self) -> ast.FunctionDef:
        start = self.i
        decorators = []
        while self.K[self.i] == "@":
            self.i += 1
            d0 = self.i
            expr: ast.Expr = ast.Name(self._name(), self._span(d0, d0))
            while self.K[self.i] == ".":
                self.i += 1
                expr = ast.Attribute(expr, self._name(), self._span(d0, self.i - 1))
            if self.K[self.i] == "(":
                args, keywords, height = self.call_args()
                self.h = height
                self._root(2)
                expr = ast.Call(expr, args, keywords, self._span(d0, self.i - 1))
            self._expect("\n")
            decorators.append(expr)
        if not self._is_word("def"):
            raise _Bail
        return self.funcdef(start, tuple(decorators))

    def funcdef(self, start: int, decorators: tuple[ast.Expr, ...]) -> ast.FunctionDef:
        K = self.K
        self.i += 1  # def
        name = self._name()
        size_params = self.size_params() if K[self.i] == "[" else ()
        self._expect("(")
        params = self.parameters() if K[self.i] != ")" else ()
        self._expect(")")
        returns = None
        if K[self.i] == "->":
            self.i += 1
            returns = self.annotation(1)
        self._expect(":")
        header_end = self.S[self.i]
        self.block = 0
        body = self.suite()
        docstring = None
        if body and isinstance(body[0], ast.ExprStmt) and isinstance(body[0].value, ast.Str):
            docstring, body = body[0].value.value, body[1:]
        s = self.S[start]
        return ast.FunctionDef(name, size_params, params, returns, body, docstring, decorators,
                               Span(self.file, s, max(s, self._trim_end(self.E[self.i - 1],
                                                                        header_end))))

    def size_params(self) -> tuple[ast.SizeParam, ...]:
        self.i += 1  # [
        out = []
        seen = set()
        while True:
            t = self.i
            name = self._name()
            if name in seen:
                raise _Bail
            seen.add(name)
            out.append(ast.SizeParam(name, self._span(t, t)))
            if self.K[self.i] != ",":
                break
            self.i += 1
            if self.K[self.i] == "]":
                break
        self._expect("]")
        return tuple(out)

    def parameters(self) -> tuple[ast.Param, ...]:
        K = self.K
        out = []
        seen = set()
        defaults = False
        while True:
            p0 = self.i
            name = self._name()
            if name in seen:
                raise _Bail
            seen.add(name)
            annotation = default = None
            if K[self.i] == ":":
                self.i += 1
                annotation = self.annotation(3)
            if K[self.i] == "=":
                self.i += 1
                default = self.test()
                self._root(3)
                defaults = True
            elif defaults:
                raise _Bail  # a parameter without a default after one with
            out.append(ast.Param(name, annotation, default, self._span(p0, self.i - 1)))
            if K[self.i] != ",":
                break
            self.i += 1
            if K[self.i] == ")":
                break
        return tuple(out)

    def structdef(self) -> ast.StructDef:
        K, V = self.K, self.V
        start = self.i
        self.i += 1  # struct
        name = self._name()
        size_params = self.size_params() if K[self.i] == "[" else ()
        self._expect(":")
        self._expect("\n")
        self._expect(">")
        fields = []
        docstring = None
        index = 0
        while K[self.i] != "<":
            k = K[self.i]
            if k == "S":
                if index or K[self.i + 1] != "\n":
                    raise _Bail
                docstring = _string_value(V[self.i])
                self.i += 2
            elif k == "K" and V[self.i] == "pass":
                self.i += 1
                self._expect("\n")
            else:
                f0 = self.i
                fname = self._name()
                self._expect(":")
                annotation = self.annotation(2)
                self._expect("\n")
                fields.append(ast.Field(fname, annotation, self._span(f0, self.i - 1)))
            index += 1
        self.i += 1  # dedent
        s = self.S[start]
        return ast.StructDef(name, size_params, tuple(fields), docstring,
                             Span(self.file, s, self._trim_end(self.E[self.i - 1], s)))

    def _dotted(self) -> str:
        parts = [self._name()]
        while self.K[self.i] == ".":
            self.i += 1
            parts.append(self._name())
        return ".".join(parts)

    def import_from(self) -> ast.ImportFrom:
        start = self.i
        self.i += 1  # from
        module = self._dotted()
        self._word("import")
        paren = self.K[self.i] == "("
        self.i += paren
        names = []
        while True:
            a0 = self.i
            name = self._name()
            asname = None
            if self._is_word("as"):
                self.i += 1
                asname = self._name()
            names.append(ast.Alias(name, asname, self._span(a0, self.i - 1)))
            if self.K[self.i] != ",":
                break
            self.i += 1
            if self.K[self.i] in ("\n", ")"):
                break
        if paren:
            self._expect(")")
        self._expect("\n")  # the span of the statement takes in its newline
        return ast.ImportFrom(module, tuple(names), self._span(start, self.i - 1))

    def import_name(self) -> ast.Import:
        start = self.i
        self.i += 1  # import
        names = []
        while True:
            a0 = self.i
            name = self._dotted()
            asname = None
            if self._is_word("as"):
                self.i += 1
                asname = self._name()
            names.append(ast.Alias(name, asname, self._span(a0, self.i - 1)))
            if self.K[self.i] != ",":
                break
            self.i += 1
        self._expect("\n")
        return ast.Import(tuple(names), self._span(start, self.i - 1))

    # ------------------------------------------------------------------ statements
    def suite(self) -> tuple[ast.Stmt, ...]:
        if self.K[self.i] != "\n":
            return (self.simple_stmt(),)
        self.i += 1
        self._expect(">")
        out = []
        K = self.K
        while K[self.i] != "<":
            out.append(self.stmt())
        self.i += 1
        return tuple(out)

    def stmt(self) -> ast.Stmt:
        if self.K[self.i] == "K":
            v = self.V[self.i]
            if v == "if":
                return self.if_stmt()
            if v == "for":
                return self.for_stmt()
        return self.simple_stmt()

    def _block(self, level: int) -> None:
        if level > _BLOCK_LIMIT:
            raise _Bail

    def _expr_root(self) -> ast.Expr:
        """A statement's own expression: tree depth 1, conditional expressions counted as
        blocks."""
        self.ifexps = 0
        node = self.test()
        self._root(1)
        self._block(self.block + self.ifexps)
        return node

    def _testlist_root(self) -> tuple[ast.Expr, bool]:
        self.ifexps = 0
        node, bare = self.testlist()
        self._root(1)
        self._block(self.block + self.ifexps)
        return node, bare

    def simple_stmt(self) -> ast.Stmt:
        K, V = self.K, self.V
        start = self.i
        k = K[start]
        node: ast.Stmt
        if k == "K" and V[start] in ("return", "pass", "assert"):
            word = V[start]
            self.i += 1
            if word == "return":
                value = None if K[self.i] == "\n" else self._testlist_root()[0]
                node = ast.Return(value, self._span(start, self.i - 1))
            elif word == "pass":
                node = ast.Pass(self._span(start, start))
            else:
                test = self._expr_root()
                msg = None
                if K[self.i] == ",":
                    self.i += 1
                    msg = self._expr_root()
                node = ast.Assert(test, msg, self._span(start, self.i - 1))
        else:
            first, bare = self._testlist_root()
            k = K[self.i]
            if k == "=":
                self.i += 1
                value = self._testlist_root()[0]
                node = ast.Assign(_target(first), value, self._span(start, self.i - 1))
            elif k == ":":
                if not isinstance(first, ast.Name):
                    raise _Bail
                self.i += 1
                annotation = self.annotation(1)
                self._expect("=")
                value = self._testlist_root()[0]
                node = ast.AnnAssign(first, annotation, value, self._span(start, self.i - 1))
            elif k in _AUGOPS:
                if not isinstance(first, ast.Name) or bare:
                    raise _Bail
                self.i += 1
                value = self._testlist_root()[0]
                node = ast.AugAssign(first, _AUGOPS[k], value, self._span(start, self.i - 1))
            else:
                node = ast.ExprStmt(first, self._span(start, self.i - 1))
        self._expect("\n")
        return node

    def if_stmt(self) -> ast.Stmt:
        start = self.i
        block = self.block
        self._block(block)
        self.i += 1  # if
        test = self._expr_root()
        self._expect(":")
        self.block = block + 1
        body = self.suite()
        clauses = []
        level = block + 1
        while self._is_word("elif"):
            c0 = self.i
            self.i += 1
            self.block = level
            self._block(level)
            ctest = self._expr_root()
            self._expect(":")
            self.block = level + 1
            cbody = self.suite()
            clauses.append((c0, ctest, cbody, self.E[self.i - 1]))
            level += 1
        tail: tuple[ast.Stmt, ...] = ()
        if self._is_word("else"):
            self.i += 1
            self._expect(":")
            self.block = level
            tail = self.suite()
        end = self.E[self.i - 1]
        self.block = block
        for c0, ctest, cbody, cend in reversed(clauses):
            span = Span(self.file, self.S[c0], cend)
            if tail:
                last = tail[-1].span
                assert last is not None
                span = span.to(last)
            tail = (ast.If(ctest, cbody, tail, span),)
        s = self.S[start]
        return ast.If(test, body, tail, Span(self.file, s, self._trim_end(end, s)))

    def for_stmt(self) -> ast.Stmt:
        K = self.K
        start = self.i
        block = self.block
        self._block(block)
        self.i += 1  # for
        t0 = self.i
        names = [ast.Name(self._name(), self._span(t0, t0))]
        comma = False
        while K[self.i] == ",":
            self.i += 1
            if K[self.i] != "N":
                comma = True
                break
            t = self.i
            names.append(ast.Name(self._name(), self._span(t, t)))
        target: ast.Name | ast.Tuple = (
            names[0] if len(names) == 1 and not comma
            else ast.Tuple(tuple(names), self._span(t0, self.i - 1)))
        self._word("in")
        iterable = self._testlist_root()[0]
        self._expect(":")
        self.block = block + 1
        body = self.suite()
        self.block = block
        s = self.S[start]
        return ast.For(target, iterable, body,
                       Span(self.file, s, self._trim_end(self.E[self.i - 1], s)))

    # ------------------------------------------------------------------ expressions
    def testlist(self) -> tuple[ast.Expr, bool]:
        """``test`` or an unparenthesised tuple (and whether it was one)."""
        K = self.K
        t0 = self.i
        first = self.test()
        if K[self.i] != ",":
            return first, False
        elts = [first]
        height = self.h
        while K[self.i] == ",":
            self.i += 1
            k = K[self.i]
            if k in _EXPR_START or (k == "K" and self.V[self.i] in _EXPR_WORDS):
                elts.append(self.test())
                height = max(height, self.h)
            else:
                break
        self.h = height + 1
        return ast.Tuple(tuple(elts), self._span(t0, self.i - 1)), True

    def test(self) -> ast.Expr:
        self.nest += 1
        if self.nest > _NEST_LIMIT:
            raise _Bail
        t0 = self.i
        node = self.or_test()
        i = self.i
        if self.K[i] == "K" and self.V[i] == "if":
            height = self.h
            self.i += 1
            cond = self.or_test()
            height = max(height, self.h)
            self._word("else")
            orelse = self.test()
            self.h = max(height, self.h) + 1
            self.ifexps += 1
            node = ast.IfExp(cond, node, orelse, self._span(t0, self.i - 1))
        self.nest -= 1
        return node

    def or_test(self) -> ast.Expr:
        t0 = self.i
        node = self.and_test()
        if not self._is_word("or"):
            return node
        values = [node]
        height = self.h
        while self._is_word("or"):
            self.i += 1
            values.append(self.and_test())
            height = max(height, self.h)
        self.h = height + len(values) - 1
        return ast.BoolOp(ast.BoolOpKind.OR, tuple(values), self._span(t0, self.i - 1))

    def and_test(self) -> ast.Expr:
        t0 = self.i
        node = self.not_test()
        if not self._is_word("and"):
            return node
        values = [node]
        height = self.h
        while self._is_word("and"):
            self.i += 1
            values.append(self.not_test())
            height = max(height, self.h)
        self.h = height + len(values) - 1
        return ast.BoolOp(ast.BoolOpKind.AND, tuple(values), self._span(t0, self.i - 1))

    def not_test(self) -> ast.Expr:
        if not self._is_word("not"):
            return self.comparison()
        t0 = self.i
        self.i += 1
        self.nest += 1
        if self.nest > _NEST_LIMIT:
            raise _Bail
        operand = self.not_test()
        self.nest -= 1
        self.h += 1
        return ast.UnaryOp(ast.UnaryOpKind.NOT, operand, self._span(t0, self.i - 1))

    def comparison(self) -> ast.Expr:
        K, V = self.K, self.V
        t0 = self.i
        left = self.arith()
        ops = []
        comparators = []
        height = self.h
        while True:
            i = self.i
            k = K[i]
            if k in _CMP:
                op = _CMP[k]
                self.i = i + 1
            elif k == "K":
                v = V[i]
                if v == "in":
                    op = ast.CmpOp.IN
                    self.i = i + 1
                elif v == "not" and K[i + 1] == "K" and V[i + 1] == "in":
                    op = ast.CmpOp.NOT_IN
                    self.i = i + 2
                elif v == "is":
                    if K[i + 1] == "K" and V[i + 1] == "not":
                        op = ast.CmpOp.IS_NOT
                        self.i = i + 2
                    else:
                        op = ast.CmpOp.IS
                        self.i = i + 1
                else:
                    break
            else:
                break
            ops.append(op)
            comparators.append(self.arith())
            height = max(height, self.h)
        if not ops:
            return left
        self.h = height + 1
        return ast.Compare(left, tuple(ops), tuple(comparators), self._span(t0, self.i - 1))

    def arith(self) -> ast.Expr:
        return self._left_assoc(_ARITH, self.term)

    def term(self) -> ast.Expr:
        return self._left_assoc(_TERM, self.factor)

    def _left_assoc(self, ops: dict[str, ast.BinOpKind], operand: Callable[[], ast.Expr]
                    ) -> ast.Expr:
        """``operand (op operand)*`` with the ops of one precedence level, left-associative."""
        K = self.K
        t0 = self.i
        node = operand()
        if K[self.i] not in ops:
            return node
        height = self.h
        count = 0
        while K[self.i] in ops:
            op = ops[K[self.i]]
            self.i += 1
            right = operand()
            height = max(height, self.h)
            count += 1
            node = ast.BinOp(op, node, right, self._span(t0, self.i - 1))
        self.h = height + count
        return node

    def factor(self) -> ast.Expr:
        k = self.K[self.i]
        if k != "-" and k != "+":
            return self.power()
        t0 = self.i
        self.i += 1
        self.nest += 1
        if self.nest > _NEST_LIMIT:
            raise _Bail
        operand = self.factor()
        self.nest -= 1
        self.h += 1
        op = ast.UnaryOpKind.NEG if k == "-" else ast.UnaryOpKind.POS
        return ast.UnaryOp(op, operand, self._span(t0, self.i - 1))

    def power(self) -> ast.Expr:
        t0 = self.i
        node = self.primary()
        if self.K[self.i] != "**":
            return node
        height = self.h
        self.i += 1
        self.nest += 1
        if self.nest > _NEST_LIMIT:
            raise _Bail
        exponent = self.factor()
        self.nest -= 1
        self.h = max(height, self.h) + 1
        return ast.BinOp(ast.BinOpKind.POW, node, exponent, self._span(t0, self.i - 1))

    def primary(self) -> ast.Expr:
        K = self.K
        t0 = self.i
        node = self.atom()
        height = self.h
        while True:
            k = K[self.i]
            if k == ".":
                self.i += 1
                node = ast.Attribute(node, self._name(), self._span(t0, self.i - 1))
                height += 1
            elif k == "(":
                args, keywords, inner = self.call_args()
                node = ast.Call(node, args, keywords, self._span(t0, self.i - 1))
                height = max(height + 1, inner + 1)
            elif k == "[":
                indices, inner = self.subscripts()
                node = ast.Subscript(node, indices, self._span(t0, self.i - 1))
                height = max(height + 1, inner + 1)
            else:
                break
        self.h = height
        return node

    def atom(self) -> ast.Expr:
        i = self.i
        k = self.K[i]
        self.h = 1
        if k == "N":
            self.i = i + 1
            return ast.Name(self.V[i], _make_span(self.file, self.S[i], self.E[i]))
        if k == "(":
            return self.paren()
        if k == "I":
            self.i = i + 1
            return ast.Int(_int_value(self.V[i]), _make_span(self.file, self.S[i], self.E[i]))
        if k == "F":
            self.i = i + 1
            return ast.Float(_float_value(self.V[i]), _make_span(self.file, self.S[i], self.E[i]))
        if k == "S":
            if self.K[i + 1] == "S":
                raise _Bail  # implicit concatenation: the Lark path's
            self.i = i + 1
            return ast.Str(_string_value(self.V[i]), _make_span(self.file, self.S[i], self.E[i]))
        if k == "[":
            return self.list_lit()
        if k == "...":
            self.i = i + 1
            return ast.EllipsisLit(self._span(i, i))
        if k == "K":
            v = self.V[i]
            if v == "None":
                self.i = i + 1
                return ast.NoneLit(self._span(i, i))
            if v == "True" or v == "False":
                self.i = i + 1
                return ast.Bool(v == "True", self._span(i, i))
        raise _Bail

    def paren(self) -> ast.Expr:
        t0 = self.i
        self.i += 1
        if self.K[self.i] == ")":
            self.i += 1
            self.h = 1
            return ast.Tuple((), self._span(t0, self.i - 1))
        inner, _bare = self.testlist()
        self._expect(")")
        self.h += 1
        if isinstance(inner, ast.Tuple):  # the tuple's span takes in its parentheses
            return ast.Tuple(inner.elts, self._span(t0, self.i - 1))
        return inner

    def list_lit(self) -> ast.Expr:
        K = self.K
        t0 = self.i
        self.i += 1
        elts = []
        height = 0
        while K[self.i] != "]":
            elts.append(self.test())
            height = max(height, self.h)
            if K[self.i] != ",":
                break
            self.i += 1
        self._expect("]")
        self.h = height + 2
        return ast.List(tuple(elts), self._span(t0, self.i - 1))

    def call_args(self) -> tuple[tuple[ast.Expr, ...], tuple[ast.Keyword, ...], int]:
        """``( arguments )``: the arguments, the keywords, and the height they add."""
        K = self.K
        self.i += 1  # (
        args: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        height = 0
        while K[self.i] != ")":
            a0 = self.i
            if K[a0] == "N" and K[a0 + 1] == "=":
                name = self.V[a0]
                if any(kw.name == name for kw in keywords):
                    raise _Bail
                self.i += 2
                value = self.test()
                height = max(height, self.h + 3)
                keywords.append(ast.Keyword(name, value, self._span(a0, self.i - 1)))
            else:
                if keywords:
                    raise _Bail  # a positional argument after a keyword
                args.append(self.test())
                height = max(height, self.h + 2)
            if K[self.i] != ",":
                break
            self.i += 1
        self._expect(")")
        return tuple(args), tuple(keywords), height + 1

    def subscripts(self) -> tuple[tuple[ast.Expr | ast.Slice, ...], int]:
        K = self.K
        self.i += 1  # [
        out: list[ast.Expr | ast.Slice] = []
        height = 0
        while True:
            s0 = self.i
            lower = None
            if K[s0] != ":":
                lower = self.test()
                height = max(height, self.h + 1)
                if K[self.i] != ":":
                    out.append(lower)
                    if K[self.i] != ",":
                        break
                    self.i += 1
                    if K[self.i] == "]":
                        break
                    continue
            self.i += 1  # :
            upper = step = None
            if K[self.i] not in (":", ",", "]"):
                upper = self.test()
                height = max(height, self.h + 2)
            if K[self.i] == ":":
                self.i += 1
                if K[self.i] not in (",", "]"):
                    step = self.test()
                    height = max(height, self.h + 2)
            out.append(ast.Slice(lower, upper, step, self._span(s0, self.i - 1)))
            if K[self.i] != ",":
                break
            self.i += 1
            if K[self.i] == "]":
                break
        self._expect("]")
        return tuple(out), height + 1

    # ------------------------------------------------------------------ types
    def whole_type(self) -> ast.TypeExpr:
        node = self.type_()
        if self.K[self.i] != "$" or self.h > _EXPR_LIMIT:
            raise _Bail
        return node

    def annotation(self, base: int) -> ast.TypeExpr:
        i = self.i
        if self.K[i] == "S":
            node = self.string_annotation(i)
            self.i = i + 1
            return node
        node = self.type_()
        self._root(base)
        return node

    def string_annotation(self, i: int) -> ast.TypeExpr:
        raw = self.V[i]
        quote = 3 if raw[:3] in ('"""', "'''") else 1
        content = raw[quote:len(raw) - quote]
        stripped = content.lstrip()
        if not stripped.strip():
            raise _Bail
        start = self.S[i] + quote + len(content) - len(stripped)
        return _type_at(self.file, start, start + len(stripped.rstrip()))

    def type_(self) -> ast.TypeExpr:
        K, V = self.K, self.V
        t0 = self.i
        k = K[t0]
        if k == "?":
            self.i += 1
            shape, height, _single = self.shape() if K[self.i] == "[" else (None, 0, None)
            written, device, dheight = self.device() if K[self.i] == "@" else (False, None, 0)
            self.h = max(height, dheight) + 1
            span = self._span(t0, self.i - 1)
            if shape is None and not written:
                return ast.DynType(span)
            return ast.TensorType(None, shape, device, span)
        if k != "N":
            raise _Bail
        name = V[t0]
        if name == "list" or name == "tuple":
            if K[t0 + 1] != "[":
                raise _Bail
            self.i += 2
            elems = [self.type_()]
            height = self.h
            if name == "tuple":
                while K[self.i] == ",":
                    self.i += 1
                    if K[self.i] == "]":
                        break
                    elems.append(self.type_())
                    height = max(height, self.h)
            self._expect("]")
            self.h = height + 1
            span = self._span(t0, self.i - 1)
            if name == "list":
                return ast.ListType(elems[0], span)
            return ast.TupleType(tuple(elems), span)
        self.i += 1
        shape, height, single = self.shape() if K[self.i] == "[" else (None, 0, None)
        written, device, dheight = self.device() if K[self.i] == "@" else (False, None, 0)
        self.h = max(height, dheight) + 1
        span = self._span(t0, self.i - 1)
        if name in ast.SCALAR_NAMES and shape is None and not written:
            return ast.ScalarType(ast.SCALAR_NAMES[name], None, span)
        if name == "int" and not written and single is not None:
            return ast.ScalarType(ast.ScalarKind.INT, single, span)
        if name in ast.DTYPE_NAMES or name == "Tensor":
            return ast.TensorType(ast.DTYPE_NAMES.get(name), shape, device, span)
        args = self._struct_args if shape is not None else ()
        if written or args is None:
            raise _Bail
        return ast.StructType(name, args, span)

    def shape(self) -> tuple[ast.Shape, int, ast.SizeExpr | None]:
        """``[dims]``, the height of its tree, and the size of a lone unlabelled dim (what
        makes ``int[N]`` a sized int). ``self._struct_args`` is the dims read as a struct's
        size arguments, or None when they are no such thing."""
        K, V = self.K, self.V
        t0 = self.i
        self.i += 1  # [
        variadic = None
        dims: list[ast.Dim] = []
        struct: list[ast.SizeExpr | None] | None = []
        single: ast.SizeExpr | None = None
        height = 0
        index = 0
        while K[self.i] != "]":
            d0 = self.i
            k = K[d0]
            if k == "?":
                self.i += 1
                dims.append(ast.Dim(None, None, self._span(d0, d0)))
                if struct is not None:
                    struct.append(None)
                height = max(height, 1)
            elif k == "*" or k == "...":
                if index:
                    raise _Bail  # a variadic part after a dim
                self.i += 1
                name = self._name() if k == "*" else None
                variadic = ast.Variadic(name, self._span(d0, self.i - 1))
                struct = None
                height = max(height, 1)
            elif (k == "N" or (k == "K" and V[d0] == "in")) and K[d0 + 1] == "=":
                self.i += 2
                size = self.size_or_dyn()
                dims.append(ast.Dim(V[d0], size, self._span(d0, self.i - 1)))
                struct = None
                height = max(height, self.h + 1)
            else:
                size = self.size_sum()
                label = size.name if isinstance(size, ast.SizeVar) else None
                dims.append(ast.Dim(label, size, self._span(d0, self.i - 1)))
                if struct is not None:
                    struct.append(size)
                height = max(height, self.h + 1)
                if index == 0:
                    single = size
            index += 1
            if K[self.i] != ",":
                break
            self.i += 1
        self._expect("]")
        self._struct_args = tuple(struct) if struct is not None else None
        if index != 1 or not dims or struct is None:
            single = None
        return (ast.Shape(variadic, tuple(dims), self._span(t0, self.i - 1)), height + 2,
                single)

    def size_or_dyn(self) -> ast.SizeExpr | None:
        if self.K[self.i] == "?":
            self.i += 1
            self.h = 1
            return None
        return self.size_sum()

    def size_sum(self) -> ast.SizeExpr:
        K = self.K
        t0 = self.i
        node = self.size_prod()
        height = self.h
        count = 0
        while K[self.i] in _SIZE_ARITH:
            op = _SIZE_ARITH[K[self.i]]
            self.i += 1
            right = self.size_prod()
            height = max(height, self.h)
            count += 1
            node = ast.SizeBinOp(op, node, right, self._span(t0, self.i - 1))
        self.h = height + count
        return node

    def size_prod(self) -> ast.SizeExpr:
        K = self.K
        t0 = self.i
        node = self.size_atom()
        height = self.h
        count = 0
        while K[self.i] in _SIZE_TERM:
            op = _SIZE_TERM[K[self.i]]
            self.i += 1
            right = self.size_atom()
            height = max(height, self.h)
            count += 1
            node = ast.SizeBinOp(op, node, right, self._span(t0, self.i - 1))
        self.h = height + count
        return node

    def size_atom(self) -> ast.SizeExpr:
        i = self.i
        k = self.K[i]
        if k == "I":
            self.i = i + 1
            self.h = 1
            return ast.SizeLit(_int_value(self.V[i]), self._span(i, i))
        if k == "N":
            self.i = i + 1
            self.h = 1
            return ast.SizeVar(self.V[i], self._span(i, i))
        if k == "(":
            self.i += 1
            self.nest += 1
            if self.nest > _NEST_LIMIT:
                raise _Bail
            node = self.size_sum()
            self.nest -= 1
            self._expect(")")
            return node
        raise _Bail

    def device(self) -> tuple[bool, ast.Device | None, int]:
        """``@ device``: written (True), the device (None for ``?``), the height."""
        K, V = self.K, self.V
        t0 = self.i
        self.i += 1  # @
        i = self.i
        k = K[i]
        if k == "?":
            self.i += 1
            return True, None, 1
        if k != "N":
            raise _Bail
        v = V[i]
        if v == "cuda" and K[i + 1] == ":" and K[i + 2] == "I" and self.E[i] == self.S[i + 1] \
                and self.E[i + 1] == self.S[i + 2]:
            digits = V[i + 2]
            if not digits.isdigit() or len(digits) > 9:
                raise _Bail
            self.i = i + 3
            return True, ast.Device(ast.DeviceKind.CUDA, int(digits),
                                    self._span(t0, self.i - 1)), 1
        self.i = i + 1
        if v == "cpu":
            return True, ast.Device(ast.DeviceKind.CPU, None, self._span(t0, i)), 1
        if v == "cuda":
            return True, ast.Device(ast.DeviceKind.CUDA, None, self._span(t0, i)), 1
        raise _Bail


def _target(expr: ast.Expr) -> ast.Name | ast.Tuple:
    if isinstance(expr, ast.Name):
        return expr
    if isinstance(expr, ast.Tuple) and expr.elts and all(
            isinstance(e, ast.Name) for e in expr.elts):
        return expr
    raise _Bail


def _int_value(text: str) -> int:
    if len(text) > _MAX_LITERAL_DIGITS:
        raise _Bail
    try:
        return int(text, 0)
    except ValueError:
        raise _Bail from None


def _float_value(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bail
    return value


def _string_value(raw: str) -> str:
    """A plain string without backslashes means what it says."""
    quote = 3 if raw[:3] in ('"""', "'''") else 1
    return raw[quote:len(raw) - quote]
