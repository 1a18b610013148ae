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
from itertools import accumulate, repeat

from gtdsl.diagnostics import SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.tokens import (
    GRAMMAR_KEYWORDS, MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH, RESERVED_PREFIX, TAB_SIZE,
    UNSUPPORTED_KEYWORDS, SyntaxProblem, trim_end,
)


class _Bail(Exception):
    """Not a program this parser builds: the Lark path decides."""


_new = object.__new__
_SLOTS = vars(Span)  # the slot descriptors: setting through them skips the frozen __setattr__
_set_file, _set_start, _set_end = (_SLOTS[n].__set__ for n in ("file", "start", "end"))


# Words the Layout postlexer refuses as names; the grammar takes some of them as keywords.
_RESERVED = frozenset(GRAMMAR_KEYWORDS) | frozenset(UNSUPPORTED_KEYWORDS)
# Kept a margin below the builder's limits: the depths here are upper bounds.
_EXPR_LIMIT = MAX_EXPR_DEPTH - 10
_BLOCK_LIMIT = MAX_BLOCK_DEPTH - 4
_NEST_LIMIT = 40  # recursive expression levels (Python's stack, and a bound on the depth)
_MAX_LITERAL_DIGITS = 1000  # as gtdsl.syntax.build_types

# Token kinds: "N" a name, "K" a reserved word, "I" an integer, "F" a float, "S" a plain
# string, "\n" a newline (with the blank lines and comments after it), "{" a newline that
# opens a block (the Layout postlexer's newline and indent: one token here), "}" a dedent,
# "$" the end; an operator or bracket is its own text.
# A number: a hexadecimal, octal or binary int, or a decimal int or float. The grammar's
# float forms (digits and a point and digits, digits and a point, a point and digits, each
# with an optional exponent; or digits and an exponent) and its decimal int, merged into one
# form with the same matches, which compiles in half the time.
_DIGITS = r"[0-9](?:_?[0-9])*"
_NUMBER = (r"(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+"
           rf"|(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][-+]?{_DIGITS})?)")
# The text of one token. Each alternative starts with a character or a class of its own (the
# regular-expression engine passes over an alternative whose first character does not fit),
# but for "." and the digits: "." is an operator unless a digit follows.
_ONE_TOKEN = (
    r"[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_\"'])"      # a name (not a string prefix)
    r"|[,()\[\]:]|==?|\*(?:\*=?|=)?|/(?:/=?|=)?|-[>=]?|[+%@]=?|[<>!]=|[<>?]"
    r"|\.\.\.|\.(?![0-9])"                               # an operator or bracket
    r"|(?:\n[ \t]*|\#[^\n]*)+"                           # a newline run
    rf"|{_NUMBER}(?![A-Za-z0-9_.])"                      # a number
    r'|"""[^\\]*?"""|\'\'\'[^\\]*?\'\'\'|"[^"\\\n]*"|\'[^\'\\\n]*\''  # a plain string
)
# One token per match, the blanks before it included, so that the matches tile the text (but
# for blanks at its end): a token ends at the running sum of the match lengths. Anything
# else, which is not ours, takes the rest of the text: it can only be the last match.
_TOKEN = re.compile(rf"[ \t]*(?:{_ONE_TOKEN}|[^ \t][\s\S]*)")
_IS_TOKEN: re.Pattern[str] | None = None  # _ONE_TOKEN, compiled where first needed


def _is_token_at(text: str, pos: int, end: int) -> bool:
    """Whether a token starts at ``pos``: the last match of ``_TOKEN`` is one, or what no
    token is. A newline run or a comment always is (the usual end of a file), so the
    pattern is compiled only for other endings (a type, a file without a final newline)."""
    global _IS_TOKEN
    if text.startswith(("\n", "#"), pos, end):
        return True
    if _IS_TOKEN is None:
        _IS_TOKEN = re.compile(_ONE_TOKEN)
    return _IS_TOKEN.match(text, pos, end) is not None
# A token's kind by its whole text (an operator, a bracket, a reserved word), else by its
# first character ("0": a number).
_KIND_OF_TEXT = {
    **{op: op for op in ("**= //= ... -> ** // == != <= >= += -= *= /= %= @= "
                         "- + * / % @ < > = ( ) [ ] , : ? .").split()},
    **{word: "K" for word in _RESERVED}}
_KIND_OF_FIRST = {
    **{c: "N" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"},
    **{c: "0" for c in "0123456789."}, '"': "S", "'": "S", "\n": "\n", "#": "\n"}


class _Kinds(dict[str, str]):
    """Token kinds by text, made for one tokenization: a text is classified once."""

    def __missing__(self, text: str) -> str:
        kind = _KIND_OF_FIRST.get(text[0], "")  # "": no token (the parser stops at it)
        if kind == "0":  # a number (_NUMBER): a float has a point or an exponent (an `e`
            # in no hexadecimal int)
            kind = "F" if "." in text or (text[1:2] not in ("x", "X") and (
                "e" in text or "E" in text)) else "I"
        self[text] = kind
        return kind


# Text the direct parser leaves to Lark outright: carriage returns, form feeds, NULs and
# other control characters, lone surrogates (no string holding one is valid). Non-ASCII
# text may stand in strings and comments; a non-ASCII name, which the builder
# NFKC-normalises, is no token here, so Lark reads such a program.
_CONTROLS = "".join(map(chr, (*range(0x09), *range(0x0b, 0x20), 0x7f)))  # (surrogates: _ours)
_EXPR_START = frozenset(("N", "I", "F", "S", "(", "[", "-", "+", "..."))
_EXPR_WORDS = frozenset(("not", "None", "True", "False"))
# What may follow a primary within a larger expression: a binary or comparison operator, or a
# word (`if`, `or`, `and`, `not in`, `in`, `is`).
_CONTINUES = frozenset(("**", "*", "/", "//", "%", "@", "+", "-", "<", ">", "==", ">=", "<=",
                        "!=", "K"))
_AFTER_NAME = _CONTINUES | {".", "(", "["}  # what makes a name more than an expression alone
_CMP = {"<": ast.CmpOp.LT, ">": ast.CmpOp.GT, "==": ast.CmpOp.EQ, ">=": ast.CmpOp.GE,
        "<=": ast.CmpOp.LE, "!=": ast.CmpOp.NE}
_ARITH = {"+": ast.BinOpKind.ADD, "-": ast.BinOpKind.SUB}
_TERM = {"*": ast.BinOpKind.MUL, "/": ast.BinOpKind.DIV, "//": ast.BinOpKind.FLOORDIV,
         "%": ast.BinOpKind.MOD, "@": ast.BinOpKind.MATMUL}
_AUGOPS = {f"{k.value}=": k for k in ast.BinOpKind}
_SIZE_ARITH = {"+": ast.SizeOp.ADD, "-": ast.SizeOp.SUB}
_SIZE_TERM = {"*": ast.SizeOp.MUL, "//": ast.SizeOp.FLOORDIV, "%": ast.SizeOp.MOD}
_SIZE_OPS = frozenset(_SIZE_ARITH) | frozenset(_SIZE_TERM)


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
    # (one `in` per character: a fast scan each, many times faster than a search for a class)
    if RESERVED_PREFIX in text or any(c in text for c in _CONTROLS):
        return False
    if text.isascii():
        return True
    try:  # a lone surrogate is what strict UTF-8 cannot encode (faster than a search)
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class _Parser:
    def __init__(self, file: SourceFile, text: str, start: int, end: int, base_indent: int,
                 layout: bool) -> None:
        self.file = file
        self.K: list[str]
        self.V: list[str]
        self.E: list[int]
        self._tokenize(text, start, end, base_indent, layout)
        self.i = 0
        self.h = 0  # the height of the tree the last expression or type parse built
        self.nest = 0  # enclosing expression levels
        self.ifexps = 0  # conditional expressions in the current statement
        self.block = 0  # the statement's block level, as the builder counts it

    # ------------------------------------------------------------------ tokens
    def _tokenize(self, text: str, start: int, end: int, base: int, layout: bool) -> None:
        # One regular-expression pass gives the text of every token; the lists are made from
        # it in C (map, accumulate), and only the newlines are seen one by one.
        raw = _TOKEN.findall(text, start, end)
        E = list(accumulate(map(len, raw), initial=start))  # where each token ends
        del E[0]
        V = list(map(str.lstrip, raw, repeat(" \t")))  # its text (it starts at E - len(V))
        if V and not _is_token_at(text, E[-1] - len(V[-1]), end):
            raise _Bail  # the last match is what no token is
        K = list(map(_Kinds(_KIND_OF_TEXT).__getitem__, V))
        # Lay out indentation as the Layout postlexer does. A newline inside brackets is no
        # token: the depth at a newline is the depth at the last one plus the brackets of the
        # text between them, counted in the text itself, or, where it holds a string, in the
        # tokens. An indent makes its newline "{"; the dedents after a newline, and the
        # newlines that go, are the changes to the lists: (index of the newline, the number
        # of dedents after it, or 0: the newline goes).
        changes: list[tuple[int, int]] = []
        index = K.index
        indents = [base]  # the indentation of each open block, the current one last
        depth = 0
        previous, after = -1, start  # the last newline: its index, its end
        j = -1
        while True:
            try:
                j = index("\n", j + 1)
            except ValueError:
                break
            run = V[j]
            line = text[after:E[j] - len(run)]  # from the last newline to this one
            if '"' not in line and "'" not in line:
                depth += (line.count("(") + line.count("[")
                          - line.count(")") - line.count("]"))
            else:
                tokens = K[previous + 1:j]
                depth += (tokens.count("(") + tokens.count("[")
                          - tokens.count(")") - tokens.count("]"))
            previous = j
            after = E[j]
            if depth:
                changes.append((j, 0))
                continue
            if not layout:
                raise _Bail  # a newline in a type
            if after >= end:  # nothing but blanks follow: close blocks down to the base
                width = base
            else:  # the indent is what follows the run's last line break
                width = len(run) - 1 - run.rfind("\n")
                if "\t" in run:
                    width = len(run[len(run) - width:].expandtabs(TAB_SIZE))
            current = indents[-1]
            if width == current:
                continue
            if width > current:
                indents.append(width)
                K[j] = "{"
                continue
            if width < base:
                raise _Bail  # a line left of the base
            dedents = 0
            while width < current:
                indents.pop()
                current = indents[-1]
                dedents += 1
            if width != current:
                raise _Bail
            changes.append((j, dedents))
        # (Brackets that do not pair up need no check here: the parser takes brackets in
        # pairs only, so it stops at the first that has no partner.)
        if changes:
            K, V, E = _lay_out(changes, K, V, E)
        closing = len(indents) - 1 if layout else 0
        K += "}" * closing + "$"
        V += [""] * (closing + 1)
        E += [end] * (closing + 1)
        self.K, self.V, self.E = K, V, E

    def _start(self, i: int) -> int:
        """Where token ``i`` starts: its length before its end."""
        return self.E[i] - len(self.V[i])

    def _span(self, first: int, last: int) -> Span:
        """From the start of token ``first`` to the end of token ``last``: what Lark's
        propagated positions give a rule (a block's counts its newline and dedent)."""
        # Span(file, start, end) without the record's construction and its check (the
        # positions of tokens are in order by construction): the most frequent call here
        span = _new(Span)
        _set_file(span, self.file)
        _set_start(span, self.E[first] - len(self.V[first]))  # as _start
        _set_end(span, self.E[last])
        return span

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
        header_end = self._start(self.i)
        self.block = 0
        body = self.suite()
        docstring = None
        if body and isinstance(body[0], ast.ExprStmt) and isinstance(body[0].value, ast.Str):
            docstring, body = body[0].value.value, body[1:]
        s = self._start(start)
        return ast.FunctionDef(name, size_params, params, returns, body, docstring, decorators,
                               Span(self.file, s, max(s, self._trim_end(self.E[self.i - 1],
                                                                        header_end))))

    def size_params(self) -> tuple[ast.SizeParam, ...]:
        K, V = self.K, self.V
        i = self.i + 1  # [
        out = []
        seen = set()
        while True:
            name = V[i]
            if K[i] != "N" or name in seen:
                raise _Bail
            seen.add(name)
            out.append(ast.SizeParam(name, self._span(i, i)))
            i += 1
            if K[i] != ",":
                break
            i += 1
            if K[i] == "]":
                break
        if K[i] != "]":
            raise _Bail
        self.i = i + 1
        return tuple(out)

    def parameters(self) -> tuple[ast.Param, ...]:
        K, V = self.K, self.V
        out = []
        seen = set()
        defaults = False
        while True:
            p0 = i = self.i
            name = V[i]
            if K[i] != "N" or name in seen:
                raise _Bail
            seen.add(name)
            annotation = default = None
            i += 1
            if K[i] == ":":
                self.i = i + 1
                annotation = self.annotation(3)
                i = self.i
            if K[i] == "=":
                self.i = i + 1
                default = self.test()
                self._root(3)
                defaults = True
                i = self.i
            elif defaults:
                raise _Bail  # a parameter without a default after one with
            out.append(ast.Param(name, annotation, default, self._span(p0, i - 1)))
            if K[i] != ",":
                break
            i += 1
            self.i = i
            if K[i] == ")":
                break
        self.i = i
        return tuple(out)

    def structdef(self) -> ast.StructDef:
        K, V = self.K, self.V
        start = self.i
        self.i += 1  # struct
        name = self._name()
        size_params = self.size_params() if K[self.i] == "[" else ()
        self._expect(":")
        self._expect("{")
        fields = []
        docstring = None
        index = 0
        while K[self.i] != "}":
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
        s = self._start(start)
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
        if self.K[self.i] != "{":
            return (self.simple_stmt(),)
        self.i += 1
        out = []
        K = self.K
        while K[self.i] != "}":
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
            span = Span(self.file, self._start(c0), cend)
            if tail:
                last = tail[-1].span
                assert last is not None
                span = span.to(last)
            tail = (ast.If(ctest, cbody, tail, span),)
        s = self._start(start)
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
        s = self._start(start)
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
        if self.nest >= _NEST_LIMIT:
            raise _Bail
        K = self.K
        t0 = self.i
        k = K[t0]
        if k == "N" and K[t0 + 1] not in _AFTER_NAME:  # a name alone, the commonest of all
            self.i = t0 + 1
            self.h = 1
            return ast.Name(self.V[t0], self._span(t0, t0))
        self.nest += 1
        if k == "-" or k == "+" or (k == "K" and self.V[t0] == "not"):
            node = self.or_test()
        else:
            # Most expressions are a primary alone (a name, a call, an attribute): read it,
            # and go down through the levels of binary operators only when one follows it.
            node = self.primary()
            if K[self.i] not in _CONTINUES:
                self.nest -= 1
                return node
            node = self.or_test(node, t0)
        i = self.i
        if K[i] == "K" and self.V[i] == "if":
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

    # From or_test down to power, each level may be given its first operand already read (a
    # primary, from token t0 on): see test.
    def or_test(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        return self._bool_chain("or", ast.BoolOpKind.OR, self.and_test, first, t0)

    def and_test(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        return self._bool_chain("and", ast.BoolOpKind.AND, self.not_test, first, t0)

    def _bool_chain(self, word: str, kind: ast.BoolOpKind,
                    operand: Callable[..., ast.Expr], first: ast.Expr | None,
                    t0: int) -> ast.Expr:
        """``operand (word operand)*``: one BoolOp of all the operands when there are two
        or more (the height: the tallest operand's, plus one per extra operand)."""
        if first is None:
            t0 = self.i
        node = operand(first, t0)
        if not self._is_word(word):
            return node
        values = [node]
        height = self.h
        while self._is_word(word):
            self.i += 1
            values.append(operand())
            height = max(height, self.h)
        self.h = height + len(values) - 1
        return ast.BoolOp(kind, tuple(values), self._span(t0, self.i - 1))

    def not_test(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        if first is not None or not self._is_word("not"):
            return self.comparison(first, t0)
        t0 = self.i
        self.i += 1
        self.nest += 1
        if self.nest > _NEST_LIMIT:
            raise _Bail
        operand = self.not_test()
        self.nest -= 1
        self.h += 1
        return ast.UnaryOp(ast.UnaryOpKind.NOT, operand, self._span(t0, self.i - 1))

    def comparison(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        K, V = self.K, self.V
        if first is None:
            t0 = self.i
        left = self.arith(first, t0)
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

    def arith(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        return self._left_assoc(_ARITH, self.term, first, t0)

    def term(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        return self._left_assoc(_TERM, self.factor, first, t0)

    def _left_assoc(self, ops: dict[str, ast.BinOpKind],
                    operand: Callable[[ast.Expr | None, int], ast.Expr],
                    first: ast.Expr | None, t0: int) -> ast.Expr:
        """``operand (op operand)*`` with the ops of one precedence level, left-associative."""
        K = self.K
        if first is None:
            t0 = self.i
        node = operand(first, t0)
        if K[self.i] not in ops:
            return node
        height = self.h
        count = 0
        while K[self.i] in ops:
            op = ops[K[self.i]]
            self.i += 1
            right = operand(None, 0)
            height = max(height, self.h)
            count += 1
            node = ast.BinOp(op, node, right, self._span(t0, self.i - 1))
        self.h = height + count
        return node

    def factor(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        if first is not None:
            return self.power(first, t0)
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

    def power(self, first: ast.Expr | None = None, t0: int = 0) -> ast.Expr:
        if first is None:
            t0 = self.i
            node = self.primary()
        else:
            node = first
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
        t0 = i = self.i
        node: ast.Expr
        if K[i] == "N":  # a name, the commonest atom: as atom reads it
            node = ast.Name(self.V[i], self._span(i, i))
            height = 1
            i += 1
        else:
            node = self.atom()
            height = self.h
            i = self.i
        while True:
            k = K[i]
            if k == ".":
                i += 1
                if K[i] != "N":
                    raise _Bail
                node = ast.Attribute(node, self.V[i], self._span(t0, i))
                height += 1
                i += 1
            elif k == "(":
                self.i = i
                args, keywords, inner = self.call_args()
                i = self.i
                node = ast.Call(node, args, keywords, self._span(t0, i - 1))
                height = (height if height > inner else inner) + 1
            elif k == "[":
                self.i = i
                indices, inner = self.subscripts()
                i = self.i
                node = ast.Subscript(node, indices, self._span(t0, i - 1))
                height = (height if height > inner else inner) + 1
            else:
                break
        self.i = i
        self.h = height
        return node

    def atom(self) -> ast.Expr:
        i = self.i
        k = self.K[i]
        self.h = 1
        if k == "N":
            self.i = i + 1
            return ast.Name(self.V[i], self._span(i, i))
        if k == "(":
            return self.paren()
        if k == "I":
            self.i = i + 1
            return ast.Int(_int_value(self.V[i]), self._span(i, i))
        if k == "F":
            self.i = i + 1
            return ast.Float(_float_value(self.V[i]), self._span(i, i))
        if k == "S":
            if self.K[i + 1] == "S":
                raise _Bail  # implicit concatenation: the Lark path's
            self.i = i + 1
            return ast.Str(_string_value(self.V[i]), self._span(i, i))
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
        K, V = self.K, self.V
        i = self.i + 1  # (
        args: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        height = 0
        while K[i] != ")":
            a0 = i
            if K[i] == "N" and K[i + 1] == "=":
                name = V[i]
                for keyword in keywords:
                    if keyword.name == name:
                        raise _Bail
                self.i = i + 2
                value = self.test()
                i = self.i
                if self.h + 3 > height:
                    height = self.h + 3
                keywords.append(ast.Keyword(name, value, self._span(a0, i - 1)))
            else:
                if keywords:
                    raise _Bail  # a positional argument after a keyword
                self.i = i
                args.append(self.test())
                i = self.i
                if self.h + 2 > height:
                    height = self.h + 2
            if K[i] != ",":
                break
            i += 1
        if K[i] != ")":
            raise _Bail
        self.i = i + 1
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
        if self.K[0] == "N" and self.V[0] == "struct":
            # Lark's Layout reads `struct` at the start of a line as the keyword, and a type
            # is parsed from the start of one: Lark refuses it, with its diagnostic
            raise _Bail
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
        if base + self.h > _EXPR_LIMIT:  # as _root
            raise _Bail
        return node

    def string_annotation(self, i: int) -> ast.TypeExpr:
        raw = self.V[i]
        quote = 3 if raw[:3] in ('"""', "'''") else 1
        content = raw[quote:len(raw) - quote]
        stripped = content.lstrip()
        if not stripped.strip():
            raise _Bail
        start = self._start(i) + quote + len(content) - len(stripped)
        return _type_at(self.file, start, start + len(stripped.rstrip()))

    def type_(self) -> ast.TypeExpr:
        K, V = self.K, self.V
        t0 = self.i
        k = K[t0]
        name = ""
        if k == "N":
            name = V[t0]
            if name == "list" or name == "tuple":
                return self.container_type(t0, name)
        elif k != "?":
            raise _Bail
        # A name or `?`, then its shape and its device where they are written. The shape of
        # a struct (a name that is no dtype) is its size arguments, read as such: no Shape.
        struct = k == "N" and name not in ast.DTYPE_NAMES and name != "Tensor"
        i = t0 + 1
        shape = single = device = None
        args: tuple[ast.SizeExpr | None, ...] = ()
        written = False
        height = 0
        if K[i] == "[":
            self.i = i
            if struct and K[i + 1] == "N" and (K[i + 2] == "," or K[i + 2] == "."):
                jax = self.jaxtyping_type(t0)
                if jax is not None:
                    return jax
            if struct:
                args, height = self.struct_args()
            else:
                shape, height, single = self.shape()
            i = self.i
        if K[i] == "@":
            self.i = i
            written, device, dheight = self.device()
            i = self.i
            if dheight > height:
                height = dheight
        self.i = i
        self.h = height + 1
        span = self._span(t0, i - 1)
        if struct:
            if written:
                raise _Bail
            return ast.StructType(name, args, span)
        if k == "?":
            if shape is None and not written:
                return ast.DynType(span)
            return ast.TensorType(None, shape, device, span)
        if name in ast.SCALAR_NAMES and shape is None and not written:
            return ast.ScalarType(ast.SCALAR_NAMES[name], None, span)
        if name == "int" and not written and single is not None:
            return ast.ScalarType(ast.ScalarKind.INT, single, span)
        return ast.TensorType(ast.DTYPE_NAMES.get(name), shape, device, span)

    def jaxtyping_type(self, t0: int) -> ast.TypeExpr | None:
        """``Float[Tensor, "b s d"]`` from token ``t0`` (gtdsl.syntax.jaxtyping); None when
        the brackets hold no string (struct arguments); anything else written with a string
        or a dotted name in them is Lark's to explain."""
        K, V = self.K, self.V
        i = a0 = t0 + 2
        while K[i + 1] == "." and K[i + 2] == "N":
            i += 2
        if i == a0 and K[i + 2] != "S":
            return None
        if K[i + 1] != "," or K[i + 2] != "S" or K[i + 3] != "]" or K[i + 4] == "@":
            raise _Bail
        s = i + 2
        self.i = s + 2
        self.h = 5  # named_type > shape > dims > a name's size_dim > size_name, as Lark's
        from gtdsl.syntax.jaxtyping import jaxtyping_type  # (only where one is written)

        try:
            return jaxtyping_type(self.file, V[t0], self._span(t0, t0), "".join(V[a0:i + 1]),
                                  self._span(a0, i), V[s], self._start(s),
                                  self._span(t0, s + 1))
        except SyntaxProblem:
            raise _Bail from None

    def container_type(self, t0: int, name: str) -> ast.TypeExpr:
        """``list[type]`` or ``tuple[types]``, from token ``t0``."""
        K = self.K
        if K[t0 + 1] != "[":
            raise _Bail
        self.i = t0 + 2
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

    def shape(self) -> tuple[ast.Shape, int, ast.SizeExpr | None]:
        """``[dims]``, the height of its tree, and the size of a lone unlabelled dim (what
        makes ``int[N]`` a sized int)."""
        K, V = self.K, self.V
        t0 = self.i
        i = t0 + 1  # [
        variadic = None
        dims: list[ast.Dim] = []
        single: ast.SizeExpr | None = None
        size: ast.SizeExpr | None
        height = 0
        while K[i] != "]":
            d0 = i
            k = K[i]
            after = K[i + 1] if k == "N" or k == "K" else None  # (no token after the end)
            if k == "N" and (after == "," or after == "]"):
                # a lone name, the commonest dim: its label and its size (as size_sum reads
                # it), with one span (a span is a value: it may be shared)
                name = V[i]
                span = self._span(i, i)
                size = ast.SizeVar(name, span)
                if not dims and variadic is None:
                    single = size
                dims.append(ast.Dim(name, size, span))
                if height < 2:
                    height = 2
                i += 1
            elif k == "?":
                dims.append(ast.Dim(None, None, self._span(i, i)))
                if height < 1:
                    height = 1
                i += 1
            elif k == "*" or k == "...":
                if dims or variadic is not None:
                    raise _Bail  # a variadic part after a dim
                i += 1
                name = None
                if k == "*":
                    if K[i] != "N":
                        raise _Bail
                    name = V[i]
                    i += 1
                variadic = ast.Variadic(name, self._span(d0, i - 1))
                if height < 1:
                    height = 1
            elif (k == "N" or (k == "K" and V[i] == "in")) and after == "=":
                self.i = i + 2
                size = self.size_or_dyn()
                i = self.i
                dims.append(ast.Dim(V[d0], size, self._span(d0, i - 1)))
                if height < self.h + 1:
                    height = self.h + 1
            else:
                self.i = i
                size = self.size_sum()
                i = self.i
                if not dims and variadic is None:
                    single = size
                label = size.name if isinstance(size, ast.SizeVar) else None
                dims.append(ast.Dim(label, size, self._span(d0, i - 1)))
                if height < self.h + 1:
                    height = self.h + 1
            if K[i] != ",":
                break
            i += 1
        if K[i] != "]":
            raise _Bail
        self.i = i + 1
        if len(dims) != 1 or variadic is not None:
            single = None
        return ast.Shape(variadic, tuple(dims), self._span(t0, i)), height + 2, single

    def struct_args(self) -> tuple[tuple[ast.SizeExpr | None, ...], int]:
        """A struct type's size arguments, ``[sizes]`` (None for ``?``), and the height the
        shape they are written as would have: all a struct type takes of its shape (a
        labelled or variadic dim is no size argument, and the size parse refuses it)."""
        K = self.K
        i = self.i + 1  # [
        args: list[ast.SizeExpr | None] = []
        height = 0
        while K[i] != "]":
            if K[i] == "?":
                args.append(None)
                if height < 1:
                    height = 1
                i += 1
            else:
                self.i = i
                args.append(self.size_sum())
                i = self.i
                if height < self.h + 1:
                    height = self.h + 1
            if K[i] != ",":
                break
            i += 1
        if K[i] != "]":
            raise _Bail
        self.i = i + 1
        return tuple(args), height + 2

    def size_or_dyn(self) -> ast.SizeExpr | None:
        if self.K[self.i] == "?":
            self.i += 1
            self.h = 1
            return None
        return self.size_sum()

    def size_sum(self) -> ast.SizeExpr:
        K = self.K
        t0 = self.i
        k = K[t0]
        if (k == "N" or k == "I") and K[t0 + 1] not in _SIZE_OPS:
            # a lone name or number, the commonest size: as size_prod and size_atom read it
            self.i = t0 + 1
            self.h = 1
            span = self._span(t0, t0)
            if k == "N":
                return ast.SizeVar(self.V[t0], span)
            return ast.SizeLit(_int_value(self.V[t0]), span)
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
        if v == "cuda" and K[i + 1] == ":" and K[i + 2] == "I" \
                and self.E[i] == self._start(i + 1) and self.E[i + 1] == self._start(i + 2):
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


def _lay_out(changes: list[tuple[int, int]], K: list[str], V: list[str], E: list[int]
            ) -> tuple[list[str], list[str], list[int]]:
    """The token lists with the layout ``changes``: after the newline at each index, so many
    dedents (at the newline's end), or, for 0, no newline there."""
    K2: list[str] = []
    V2: list[str] = []
    E2: list[int] = []
    prev = 0
    for j, dedents in changes:
        stop = j + 1 if dedents else j
        K2 += K[prev:stop]
        V2 += V[prev:stop]
        E2 += E[prev:stop]
        if dedents:
            K2 += "}" * dedents
            V2 += [""] * dedents
            E2 += [E[j]] * dedents
        prev = j + 1
    K2 += K[prev:]
    V2 += V[prev:]
    E2 += E[prev:]
    return K2, V2, E2


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
