"""Classifying syntax errors into helpful diagnostics.

Input: a Lark exception from a failed parse, the Layout postlexer's state at that point,
and the text. Output: one Diagnostic with a code, a located label and advice. A raw Lark
exception never leaves this module: ``parse_tree`` converts all of them.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from gtdsl.diagnostics import Diagnostic, Label, SourceFile, Span
from gtdsl.syntax.grammar import (
    CLOSERS,
    UNSUPPORTED_KEYWORDS,
    Layout,
    SyntaxProblem,
    closing_diagnostic,
    run_parser,
    terminal_text,
    token_span,
    unclosed_diagnostic,
)

_BLOCK_KEYWORDS = {"def": "function header", "if": "`if` line", "elif": "`elif` line",
                   "else": "`else`", "for": "`for` line", "struct": "struct header"}
_STATEMENT_STARTS = {"DEF", "RETURN", "IF", "FOR", "PASS", "ASSERT", "STRUCT", "FROM",
                     "IMPORT", "ELIF", "ELSE", "AT"}
_TOPLEVEL_EXPECTED = {"DEF", "STRUCT", "FROM", "IMPORT", "AT", "STRING", "_NEWLINE", "$END"}
_EXPRESSION_STARTS = {"NAME", "INT", "FLOAT", "STRING", "LPAR", "LSQB", "NONE", "TRUE",
                      "FALSE", "NOT", "MINUS", "PLUS"}


def parse_tree(file: SourceFile, text: str, start: str, offset: int = 0,
               base_indent: int = 0) -> Tree:
    """Parse ``text`` (which sits at ``offset`` in ``file``); failures raise SyntaxProblem."""
    layout = Layout(file, offset, base_indent)
    try:
        return run_parser(text, start, layout)
    except SyntaxProblem:
        raise
    except UnexpectedInput as err:
        raise SyntaxProblem(classify(err, file, text, offset, layout)) from None
    except RecursionError:
        raise SyntaxProblem(too_deep(file, offset)) from None
    except LarkError as err:  # pragma: no cover - every Lark parse error is an UnexpectedInput
        raise SyntaxProblem(Diagnostic(
            "GT0001", "invalid syntax", Label(Span(file, offset, offset), str(err).split("\n")[0])
        )) from None


def too_deep(file: SourceFile, offset: int = 0) -> Diagnostic:
    return Diagnostic(
        "GT0015", "the program is nested too deeply to compile",
        Label(Span(file, offset, offset), "somewhere in this source"),
        help="split long expressions into several assignments",
    )


def classify(err: UnexpectedInput, file: SourceFile, text: str, offset: int,
             layout: Layout) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        return _unexpected_character(err, file, text, offset)
    if isinstance(err, UnexpectedToken):
        return _unexpected_token(err, file, text, offset, layout)
    if isinstance(err, UnexpectedEOF):
        end = Span(file, offset + len(text), offset + len(text))
        return Diagnostic("GT0012", "unexpected end of input", Label(end, "the input ends here"))
    pos = getattr(err, "pos_in_stream", 0) or 0
    return Diagnostic("GT0001", "invalid syntax", Label(Span(file, offset + pos, offset + pos)))


def _unexpected_character(err: UnexpectedCharacters, file: SourceFile, text: str,
                          offset: int) -> Diagnostic:
    pos = err.pos_in_stream or 0  # always the lexer's int here; Lark's base class types it None
    char = text[pos] if pos < len(text) else ""
    at = Span(file, offset + pos, offset + pos + 1)
    # `'''abc` lexes as the empty string `''` and then fails at the third quote.
    start = pos - 2 if pos >= 2 and text[pos - 2 : pos + 1] == char * 3 else pos
    triple = text[start : start + 3]
    if char in "\"'" and triple == char * 3:
        return Diagnostic("GT0010", "unterminated triple-quoted string",
                          Label(Span(file, offset + start, offset + start + 3),
                                "this string is never closed"),
                          help=f"close it with `{triple}`")
    if char in "\"'":
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        return Diagnostic("GT0010", "unterminated string literal",
                          Label(Span(file, offset + pos, offset + max(pos + 1, line_end)),
                                "this string is never closed"),
                          help=f"close it with `{char}` on the same line, or use triple quotes "
                               "for a string over several lines")
    if char in "{}":
        return Diagnostic("GT0007", "dict and set literals are not supported in gtdsl",
                          Label(at, "`{` starts a dict or set in Python"),
                          help="use a struct for named values, or a list")
    if char in "&|^~":
        return Diagnostic("GT0007", f"the bitwise operator `{char}` is not supported in gtdsl",
                          Label(at, "bitwise operator"),
                          help="use `logical_and`, `logical_or` or `logical_not` on bool "
                               "tensors, or `and`/`or`/`not` on Python values")
    if char == ";":
        return Diagnostic("GT0007", "semicolons are not supported in gtdsl",
                          Label(at, "statement separator"),
                          help="put each statement on a line of its own")
    if char == "\t" or char == " ":
        return Diagnostic("GT0002", "unexpected whitespace", Label(at))
    shown = char if char.isprintable() else repr(char)
    return Diagnostic("GT0002", f"unexpected character `{shown}`",
                      Label(at, "not part of the gtdsl language"),
                      help=_character_help(char))


def _character_help(char: str) -> str | None:
    if char == "!":
        return "`!` alone is not an operator: use `not x`, or `!=` to compare"
    if char == "$" or char == "`":
        return "remove it"
    if char == "\\":
        return "a backslash continues a line only when the newline follows it directly"
    return None


def _unexpected_token(err: UnexpectedToken, file: SourceFile, text: str, offset: int,
                      layout: Layout) -> Diagnostic:
    tok: Token = err.token
    expected = _parser_expected(err)
    kind = tok.type
    if kind == "$END":
        at = Span(file, offset + len(text.rstrip()), offset + len(text.rstrip()))
    else:
        at = token_span(file, tok, offset)
    previous = layout.history[-1] if layout.history else None

    if kind == "NAME" and tok.value in UNSUPPORTED_KEYWORDS:
        message, advice = UNSUPPORTED_KEYWORDS[tok.value]
        return Diagnostic("GT0007", message,
                          Label(at, f"`{tok.value}` is not part of the language"), help=advice)
    # A closer the layout already matched (the parser refused it later) is not a bracket
    # problem; one the contextual lexer refused never reached the layout.
    matched = bool(layout.history) and layout.history[-1].start_pos == tok.start_pos
    if kind in CLOSERS and not matched:
        problem = closing_diagnostic(file, offset, layout.brackets, tok)
        if problem is not None:
            return problem
    if expected and expected <= {"DEF", "AT"} and kind != "$END":
        return Diagnostic("GT0014", "only functions take decorators",
                          Label(at, "a decorator must be followed by `def`"),
                          help="remove the decorator, or put it on a `def`")
    if kind == "NAME" and previous is not None and previous.value == "struct" \
            and previous.type == "NAME" and _starts_line(text, previous.start_pos or 0):
        return Diagnostic("GT0014", "structs must be declared at the top level of a module",
                          Label(token_span(file, previous, offset).to(at), "a struct declaration"),
                          help="move the `struct` out of the function, to column 1")
    if (kind in ("LESSTHAN", "MORETHAN") and previous is not None and previous.type == kind
            and previous.end_pos == tok.start_pos):
        return Diagnostic("GT0007", f"the shift operator `{tok.value * 2}` is not supported in gtdsl",
                          Label(token_span(file, previous, offset).to(at), "bitwise shift"),
                          help="multiply or floor-divide by a power of two")
    if kind == "COLON" and text[(tok.end_pos or 0):(tok.end_pos or 0) + 1] == "=":
        return Diagnostic("GT0007", "assignment expressions (`:=`) are not supported in gtdsl",
                          Label(Span(file, at.start, at.end + 1), "walrus operator"),
                          help="assign in a statement of its own first")
    if kind == "NAME" and previous is not None and previous.type in ("INT", "FLOAT") \
            and previous.end_pos == tok.start_pos and tok.value[:1] in "jJ":
        return Diagnostic("GT0007", "complex literals are not supported in gtdsl",
                          Label(token_span(file, previous, offset).to(at), "complex literal"),
                          help="build complex tensors with `complex(real, imag)` ops instead")
    if kind in ("_NEWLINE", "$END") and expected == {"EQUAL"}:
        return Diagnostic("GT0001", "an annotated name needs a value",
                          Label(at, "expected `= value`"),
                          help="write `name: type = value`; gtdsl has no declarations without "
                               "a value")
    if kind == "QMARK":
        return Diagnostic("GT0008", "`?` is only allowed in types",
                          Label(at, "`?` outside a type"),
                          help="`?` marks an unknown part of a type, e.g. `x: f32[?, 768]`; "
                               "in an expression write the value itself")
    if kind == "_INDENT":
        return Diagnostic("GT0005", "unexpected indent", Label(at, "this line is indented more "
                          "than the one before, but nothing opens a block"),
                          help="indent only the body of a `def`, `if`, `for` or `struct`")
    if "_INDENT" in expected:
        header = _line_of(text, previous.start_pos or 0) if previous is not None else ""
        first = header.split()[0] if header.split() else ""
        label = f"expected an indented block after the {_BLOCK_KEYWORDS.get(first, 'colon')}"
        return Diagnostic("GT0004", "expected an indented block", Label(at, label),
                          help="indent the body by 4 spaces (write `pass` for an empty body)")
    if kind in ("FOR",) and layout.brackets:
        return Diagnostic("GT0007", "comprehensions are not supported in gtdsl",
                          Label(at, "`for` inside brackets makes a comprehension"),
                          help="write a `for` loop that builds a list, or use a vectorised op")
    if kind in ("STAR", "POW") and layout.brackets and layout.brackets[-1].type == "LPAR":
        return Diagnostic("GT0007", "star arguments (`*args`, `**kwargs`) are not supported "
                          "in gtdsl", Label(at, "star argument"),
                          help="name each parameter or argument explicitly")
    unclosed = layout.unclosed_before(tok)
    if unclosed is not None:
        return unclosed_diagnostic(file, offset, unclosed, tok)
    if "COLON" in expected and kind in ("_NEWLINE", "$END", "_DEDENT"):
        line = _line_of(text, (previous.start_pos or 0) if previous is not None else 0)
        first = line.split()[0] if line.split() else ""
        if first in _BLOCK_KEYWORDS:
            end = offset + (previous.end_pos or 0) if previous is not None else at.start
            return Diagnostic("GT0003", f"expected `:` at the end of the {_BLOCK_KEYWORDS[first]}",
                              Label(Span(file, end, end), "expected `:` here"),
                              help="add `:` at the end of the line")
    if kind == "$END" and "DEF" in expected and previous is not None:
        return Diagnostic("GT0012", "a decorator must be followed by a function definition",
                          Label(at, "the input ends after the decorator"),
                          help="add the `def` it decorates, or remove the decorator")
    if kind == "$END":
        return Diagnostic("GT0012", "unexpected end of input", Label(at, "the input ends here"),
                          notes=(f"expected {_expected_text(expected)}",))
    if expected and expected <= _TOPLEVEL_EXPECTED and (kind in _STATEMENT_STARTS or
                                                        kind in _EXPRESSION_STARTS):
        return Diagnostic("GT0014", "only definitions and imports may appear at the top level "
                          "of a module", Label(at, "a statement outside any function"),
                          help="move it into a function body (indented under a `def`)")
    if kind == "EQUAL" and previous is not None:
        words = _line_of(text, tok.start_pos or 0).split()
        if words and words[0] in ("if", "elif", "assert"):
            return Diagnostic("GT0001", "unexpected `=` in a condition",
                              Label(at, "`=` assigns"), help="to compare, write `==`")
    what = _describe_token(tok)
    hint = None
    if (kind in ("NAME", "INT", "FLOAT", "STRING") and previous is not None
            and previous.type in ("NAME", "INT", "FLOAT", "STRING", "RPAR", "RSQB")):
        hint = "is a `,` or an operator missing before it?"
    return Diagnostic("GT0001", f"unexpected {what}",
                      Label(at, f"expected {_expected_text(expected)}"), help=hint)


def _parser_expected(err: UnexpectedToken) -> set[str]:
    """Terminals the parser could take. For a token the contextual lexer refused, Lark's
    ``expected`` lists only what that lexer state could lex (no _INDENT, say)."""
    state: Any = getattr(err, "state", None)  # Lark's parser state; None without one
    try:
        keys = state.parse_conf.parse_table.states[state.position].keys()
    except AttributeError:
        return set(err.expected)
    return {k for k in keys if k == k.upper()}  # terminals only, not rule names


def _starts_line(text: str, pos: int) -> bool:
    return not text[text.rfind("\n", 0, pos) + 1 : pos].strip()


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def _describe_token(tok: Token) -> str:
    kind = tok.type
    if kind == "_NEWLINE":
        return "end of line"
    if kind == "_DEDENT":
        return "end of block"
    if kind == "NAME":
        return f"name `{tok.value}`"
    if kind in ("INT", "FLOAT"):
        return f"number `{tok.value}`"
    if kind == "STRING":
        return "string"
    if tok.value.isalpha():
        return f"keyword `{tok.value}`"
    return f"`{tok.value}`"


def _expected_text(expected: set[str]) -> str:
    names = set(expected)
    parts = []
    if {"NAME", "INT", "LPAR"} <= names:
        parts.append("an expression")
        names -= _EXPRESSION_STARTS | {"ELLIPSIS", "STRING"}
    shown = sorted(terminal_text(n) for n in names)
    parts += shown[: 8 - len(parts)]
    if len(shown) + len(parts) > 8:
        parts.append("...")
    if not parts:
        return "something else"
    return parts[0] if len(parts) == 1 else "one of " + ", ".join(parts)
