"""Loading the grammar and laying out tokens: the Lark parser.

Well-formed programs are read by the direct parser (``gtdsl.syntax.direct``); this parser is
the definition, and explains every syntax error. Its LALR tables ship with gtdsl
(``grammar/gtdsl.tables.json``, see ``_load_shipped``). The grammar file is found in an
installed wheel (``gtdsl/_data/grammar``) or, in a checkout, at ``grammar/gtdsl.lark`` beside
the package (see ``gtdsl._resources``). The
``Layout`` postlexer (a Lark ``Indenter``) turns newlines into _NEWLINE/_INDENT/_DEDENT
tokens as Python's tokenizer does, matches brackets, and rejects Python keywords that gtdsl
does not support, each as a diagnostic raised through ``SyntaxProblem``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Literal, NoReturn

import lark
from lark import Lark, Token
from lark.grammar import Rule
from lark.indenter import Indenter
from lark.lexer import TerminalDef

from gtdsl._config import load_config
from gtdsl._resources import data_path, read_private_file, remove_private_file, write_private_file
from gtdsl.diagnostics import Diagnostic, InternalError, Label, SourceFile, Span
from gtdsl.syntax.tokens import (  # noqa: F401 (re-exported: the Lark side's names)
    CLOSERS, GRAMMAR_KEYWORDS, OPENERS, STATEMENT_KEYWORD_TOKENS, STATEMENT_KEYWORDS, TAB_SIZE,
    UNSUPPORTED_KEYWORDS, SyntaxProblem,
)

try:
    from lark.lark import _LOAD_ALLOWED_OPTIONS  # given again on load, never stored
except ImportError:  # pragma: no cover - a Lark that moved it
    _LOAD_ALLOWED_OPTIONS = {"postlex", "transformer", "lexer_callbacks", "use_bytes",
                             "debug", "g_regex_flags", "regex", "propagate_positions",
                             "tree_class", "_plugins"}

GRAMMAR_FILE = "gtdsl.lark"


def grammar_text() -> str:
    """The text of the grammar this installation uses."""
    path = data_path("grammar", GRAMMAR_FILE)
    if path is None:
        raise InternalError(f"the grammar file {GRAMMAR_FILE} is missing from the installation")
    return path.read_text(encoding="utf-8")


def token_span(file: SourceFile, tok: Token, offset: int = 0) -> Span:
    start = (tok.start_pos or 0) + offset
    end = tok.end_pos + offset if tok.end_pos is not None else start + len(tok.value)
    return Span(file, start, max(start, end))


class Layout(Indenter):
    """Postlexer for one parse: indentation, bracket matching and reserved words.

    Lark's Indenter protocol, with ``handle_NL`` overridden so that indentation follows
    Python (tabs advance to the next multiple of 8), INDENT tokens sit where the indented
    line starts, a bad dedent is a located diagnostic rather than an unlocated DedentError,
    and a block may start at a base indentation (a method read from a ``.py`` file).
    """

    NL_type = "_NEWLINE"
    OPEN_PAREN_types = list(OPENERS)
    CLOSE_PAREN_types = list(CLOSERS)
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = TAB_SIZE

    def __init__(self, file: SourceFile, offset: int = 0, base_indent: int = 0) -> None:
        super().__init__()
        self.file = file
        self.offset = offset
        self.base_indent = base_indent
        self.brackets: list[Token] = []
        self.newline_in_brackets = False
        self.history: list[Token] = []

    def _span(self, tok: Token) -> Span:
        return token_span(self.file, tok, self.offset)

    def _fail(self, code: str, message: str, tok: Token, label: str = "",
              help: str | None = None) -> NoReturn:
        raise SyntaxProblem(Diagnostic(code, message, Label(self._span(tok), label), help=help))

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.indent_level = indents = [self.base_indent]
        last: Token | None = None
        line_start = True
        for tok in stream:
            last = tok
            kind = tok.type
            if kind == "_NEWLINE":
                if self.brackets:
                    self.newline_in_brackets = True
                    continue
                yield from self.handle_NL(tok)
                line_start = True
                continue
            if kind in OPENERS:
                self.brackets.append(tok)
            elif kind in CLOSERS:
                self._close(tok)
            elif kind in ("NAME", "STRUCT") and tok.value == "struct":
                # The contextual lexer picks keyword or name in the LALR state *before* a
                # statement's reductions, where a top-level `struct` may follow; the layout
                # knows: `struct` is the keyword only first on a line at the top level.
                kind = "STRUCT" if line_start and len(indents) == 1 else "NAME"
                tok = Token.new_borrow_pos(kind, tok.value, tok)
            elif kind == "NAME":
                self._check_name(tok)
            line_start = False
            self.history.append(tok)
            yield tok
        if self.brackets:
            opener = self.brackets[-1]
            self._fail("GT0009", f"`{opener.value}` was never closed", opener, "opened here",
                       help=f"add the matching `{_closing_text(opener)}`")
        end = last.end_pos if last is not None and last.end_pos is not None else 0
        while len(indents) > 1:
            indents.pop()
            yield Token("_DEDENT", "", start_pos=end, end_pos=end)

    def handle_NL(self, nl: Token) -> Iterator[Token]:
        yield nl
        indents = self.indent_level
        indent_text = nl.value.rsplit("\n", 1)[-1]
        width = len(indent_text.expandtabs(TAB_SIZE))
        pos = nl.end_pos if nl.end_pos is not None else 0
        if not self.file.text[self.offset + pos:].strip():
            width = self.base_indent  # the end of the text closes blocks down to the base
        levels = list(indents)
        if width > indents[-1]:
            indents.append(width)
            yield Token("_INDENT", indent_text, start_pos=pos, end_pos=pos,
                        line=nl.end_line, column=nl.end_column)
            return
        while width < indents[-1]:
            indents.pop()
            yield Token("_DEDENT", indent_text, start_pos=pos, end_pos=pos,
                        line=nl.end_line, column=nl.end_column)
        if width != indents[-1]:
            span = Span(self.file, pos + self.offset, pos + self.offset)
            raise SyntaxProblem(Diagnostic(
                "GT0006", "unindent does not match any outer indentation level",
                Label(span, f"this line is indented by {width}, "
                            f"but the enclosing blocks are indented by "
                            f"{', '.join(map(str, levels))}"),
                help="indent this line exactly as far as the block it belongs to",
            ))

    def _close(self, tok: Token) -> None:
        problem = closing_diagnostic(self.file, self.offset, self.brackets, tok)
        if problem is not None:
            raise SyntaxProblem(problem)
        self.brackets.pop()

    def _check_name(self, tok: Token) -> None:
        word = tok.value
        if word in UNSUPPORTED_KEYWORDS or word in GRAMMAR_KEYWORDS:
            self._check_unclosed(tok)
        if word in UNSUPPORTED_KEYWORDS:
            message, advice = UNSUPPORTED_KEYWORDS[word]
            self._fail("GT0007", message, tok, f"`{word}` is not part of the language",
                       help=advice)
        previous = self.history[-1] if self.history else None
        if word in ("None", "True", "False") and previous is not None and previous.type in (
                "ARROW", "COLON"):
            self._fail("GT0011", f"`{word}` is not a type", tok, "a type is expected here",
                       help="leave the annotation out (an unannotated result is `?`), or "
                            "write a type such as `f32[n]`")
        if word in GRAMMAR_KEYWORDS:
            self._fail("GT0001", f"unexpected keyword `{word}`", tok,
                       "a keyword cannot stand here",
                       help=_keyword_help(word))


    def unclosed_before(self, tok: Token) -> Token | None:
        """The innermost open bracket, if ``tok`` reads as the next statement after it.

        That is: the input ends, or ``tok`` starts a line after the bracket opened and is a
        statement keyword or is indented no further than the bracket's own line.
        """
        if not self.brackets or not self.newline_in_brackets:
            return None
        opener = self.brackets[-1]
        if tok.type == "$END":
            return opener
        previous = self.history[-1] if self.history else None
        if previous is None or (tok.line or 0) <= (previous.end_line or 0):
            return None
        if tok.type in STATEMENT_KEYWORD_TOKENS or (
                tok.type == "NAME" and tok.value in STATEMENT_KEYWORDS):
            return opener
        if self._indent_at(tok) <= self._indent_at(opener):
            return opener
        return None

    def _indent_at(self, tok: Token) -> int:
        pos = self.offset + (tok.start_pos or 0)
        line = self.file.line_text(self.file.line_index(pos))
        return len(line.expandtabs(TAB_SIZE)) - len(line.expandtabs(TAB_SIZE).lstrip())

    def _check_unclosed(self, tok: Token) -> None:
        opener = self.unclosed_before(tok)
        if opener is not None:
            raise SyntaxProblem(unclosed_diagnostic(self.file, self.offset, opener, tok))


def closing_diagnostic(file: SourceFile, offset: int, brackets: list[Token],
                       tok: Token) -> Diagnostic | None:
    """The problem with closing bracket ``tok`` given the open ``brackets``, if any."""
    at = token_span(file, tok, offset)
    if not brackets:
        return Diagnostic("GT0009", f"unmatched `{tok.value}`", Label(at, "nothing to close here"),
                          help="remove it, or add the opening bracket before it")
    opener = brackets[-1]
    if OPENERS[opener.type] == tok.type:
        return None
    closing = _closing_text(opener)
    return Diagnostic(
        "GT0009", f"closing `{tok.value}` does not match `{opener.value}`",
        Label(at, f"expected `{closing}`"),
        (Label(token_span(file, opener, offset), "opened here"),),
        help=f"close `{opener.value}` with `{closing}` first",
    )


def unclosed_diagnostic(file: SourceFile, offset: int, opener: Token, tok: Token) -> Diagnostic:
    at = token_span(file, tok, offset)
    return Diagnostic(
        "GT0009", f"`{opener.value}` was never closed",
        Label(token_span(file, opener, offset), "opened here"),
        (Label(at, "the code continues here as if it were closed"),),
        help=f"add `{_closing_text(opener)}` where the bracketed part ends",
    )


def _closing_text(opener: Token) -> str:
    return {"(": ")", "[": "]"}[opener.value]


def _keyword_help(word: str) -> str:
    if word in ("else", "elif"):
        return f"`{word}` must follow an `if` block at the same indentation"
    if word in ("return", "pass", "assert", "for", "if"):
        return f"`{word}` starts a statement: put it on a line of its own"
    return f"`{word}` is reserved; rename the variable if it is meant as a name"


_CURRENT_LAYOUT: ContextVar[Layout] = ContextVar("gtdsl_layout")


class _LayoutDispatch:
    """The one postlexer Lark holds; it hands each parse to that parse's own Layout."""

    always_accept = ("_NEWLINE",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return _CURRENT_LAYOUT.get().process(stream)


_TABLES_FORMAT = b"gtdsl-lalr-tables 1"
_TABLES_LIMIT = 8 << 20  # bytes; the tables are about 0.25 MB
_PARSER_OPTIONS: dict = dict(parser="lalr", lexer="contextual", start=["module", "type"],
                             maybe_placeholders=True)
# options Lark takes again when it loads tables (the rest are stored with them)
_LOAD_OPTIONS: dict = dict(propagate_positions=True)


def _table_cache() -> str | Literal[False]:
    """Where the LALR tables are kept between processes (~0.2 s to build, ~20 ms to load),
    or False where there is no private place for them.

    A per-user directory that gtdsl makes (0700), never the shared temp dir. The tables are
    stored as JSON data, never as a pickle: what is read back is verified (see
    ``_load_tables``) and can only ever describe a parser, never run code.
    """
    try:
        directory = load_config().cache_dir / "parser"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = directory.lstat()
    except (OSError, RuntimeError, KeyError):  # no home directory, read-only disk, ...
        return False
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "geteuid") and (
            info.st_uid != os.geteuid() or info.st_mode & 0o022)):
        return False  # another user could plant the tables: build them instead
    if not os.access(directory, os.W_OK):
        return False
    return str(directory / _tables_name())


def _tables_name() -> str:
    return f"gtdsl-tables-lark-{lark.__version__}.json"


def _tables_key(text: str) -> bytes:
    """What the tables are a function of: the grammar, the options, Lark and Python."""
    h = hashlib.sha256()
    for part in (_TABLES_FORMAT.decode(), lark.__version__, sys.version.split()[0],
                 repr(sorted(_PARSER_OPTIONS.items())), text):
        h.update(len(part).to_bytes(8, "little") + part.encode("utf-8"))
    return h.hexdigest().encode()


def _to_json(value: object) -> object:
    """Lark's serialized tables as JSON: integer-keyed maps and tuples are tagged."""
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("\0") for k in value):
            return {k: _to_json(v) for k, v in value.items()}
        return {"\0map": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"\0tuple": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the parser tables")


def _from_json(tagged: dict) -> object:
    """``json.loads`` hook: the tagged maps and tuples back (the inner values already are)."""
    if len(tagged) == 1:
        if "\0map" in tagged:
            return dict(map(tuple, tagged["\0map"]))
        if "\0tuple" in tagged:
            return tuple(tagged["\0tuple"])
    return tagged


def _load_tables(text: str) -> Lark | None:
    """The parser from the tables on disk, or None when there are none to trust.

    The file passes the private-file rules (``gtdsl._resources``); then its header must name
    this grammar, options, Lark and Python, and the digest of the data must match, all before
    the data is decoded; JSON decoding builds only lists, maps, strings and numbers, and Lark
    instantiates only its own table classes from them.
    """
    path = _table_cache()
    if not path:
        return None
    directory = Path(path).parent
    raw = read_private_file(directory.parent, (directory.name,), _tables_name(), _TABLES_LIMIT)
    if raw is None:
        return None
    head, _, payload = raw.partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 4 or b" ".join(parts[:2]) != _TABLES_FORMAT or \
            parts[2] != _tables_key(text) or \
            parts[3] != hashlib.sha256(payload).hexdigest().encode():
        return None
    try:
        return _from_payload(payload)
    except Exception:  # a Lark that stores its tables differently: build them instead
        return None


def _payload(parser: Lark) -> bytes:
    """The parser's tables as JSON data (raises TypeError etc. for a Lark that stores more)."""
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items()
                       if k not in _LOAD_ALLOWED_OPTIONS}
    return json.dumps(_to_json({"data": data, "memo": memo}), separators=(",", ":"),
                      sort_keys=True).encode()


def _from_payload(payload: bytes) -> Lark:
    stored = json.loads(payload, object_hook=_from_json)
    return Lark._load_from_dict(stored["data"], stored["memo"], postlex=_LayoutDispatch(),
                                **_LOAD_OPTIONS)


def _save_tables(parser: Lark, text: str) -> None:
    path = _table_cache()
    if not path:
        return
    try:
        payload = _payload(parser)
    except (TypeError, ValueError, AttributeError):
        return
    head = b" ".join((_TABLES_FORMAT, _tables_key(text), hashlib.sha256(payload).hexdigest(
        ).encode()))
    directory = Path(path).parent
    if write_private_file(directory.parent, (directory.name,), _tables_name(),
                          head + b"\n" + payload):
        # tables an earlier gtdsl kept as a pickle are never read: remove them
        remove_private_file(directory.parent, (directory.name,),
                            f"gtdsl-lark-{lark.__version__}.cache")


# ------------------------------------------------------------ the tables shipped with gtdsl
#
# ``grammar/gtdsl.tables.json`` (``gtdsl/_data/grammar`` in a wheel) holds the tables built
# from ``gtdsl.lark`` by the Lark release gtdsl was tested with, so the first syntax error a
# process explains costs a load (~20 ms), not a build (~0.4 s). They are part of the
# installation, read like the grammar beside them, and used only when their header names
# this grammar, these options and the Lark that is installed: with another Lark, the user
# cache above (or a build) serves instead. Regenerate them after editing the grammar:
# ``python -m gtdsl.syntax.grammar`` (tests/unit/syntax/test_tables.py fails until then).

TABLES_FILE = "gtdsl.tables.json"
_SHIPPED_FORMAT = b"gtdsl-lalr-tables-shipped 1"


def shipped_key(text: str) -> bytes:
    """What shipped tables must match: the grammar, the options and the Lark release."""
    h = hashlib.sha256()
    for part in (_SHIPPED_FORMAT.decode(), lark.__version__,
                 repr(sorted(_PARSER_OPTIONS.items())), text):
        h.update(len(part).to_bytes(8, "little") + part.encode("utf-8"))
    return h.hexdigest().encode()


def shipped_tables(text: str) -> bytes:
    """The shipped-tables file for grammar ``text``, built afresh with the installed Lark."""
    parser = Lark(text, postlex=_LayoutDispatch(), **_PARSER_OPTIONS, **_LOAD_OPTIONS)
    payload = _payload(parser)
    return b" ".join((_SHIPPED_FORMAT, lark.__version__.encode(), shipped_key(text),
                      hashlib.sha256(payload).hexdigest().encode())) + b"\n" + payload


def _load_shipped(text: str) -> Lark | None:
    """The parser from the shipped tables, or None when they are missing or were made for
    another grammar or another Lark."""
    path = data_path("grammar", TABLES_FILE)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head, _, payload = raw.partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 5 or b" ".join(parts[:2]) != _SHIPPED_FORMAT or \
            parts[2] != lark.__version__.encode() or parts[3] != shipped_key(text) or \
            parts[4] != hashlib.sha256(payload).hexdigest().encode():
        return None
    try:
        return _from_payload(payload)
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def _parser_template() -> Lark:
    text = grammar_text()
    parser = _load_shipped(text) or _load_tables(text)
    if parser is None:
        parser = Lark(text, postlex=_LayoutDispatch(), **_PARSER_OPTIONS, **_LOAD_OPTIONS)
        _save_tables(parser, text)
    return parser


def run_parser(text: str, start: str, layout: Layout):  # noqa: ANN201 (a Lark tree)
    """Parse ``text`` from rule ``start`` with ``layout`` as the postlexer."""
    token = _CURRENT_LAYOUT.set(layout)
    try:
        return _parser_template().parse(text, start=start)
    finally:
        _CURRENT_LAYOUT.reset(token)


def terminal_text(name: str) -> str:
    """How a terminal reads in a message: its literal text where it has one."""
    special = {
        "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
        "_NEWLINE": "a newline", "_INDENT": "an indented block", "_DEDENT": "a dedent",
        "$END": "the end of the input", "CUDA_INDEX": "`cuda:N`",
    }
    if name in special:
        return special[name]
    try:
        term = _parser_template().get_terminal(name)
    except KeyError:
        return name
    if term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def _write_shipped_tables() -> None:
    """``python -m gtdsl.syntax.grammar``: rebuild ``grammar/gtdsl.tables.json`` in a checkout."""
    from gtdsl._resources import checkout_root

    grammar = checkout_root() / "grammar"
    text = (grammar / GRAMMAR_FILE).read_text(encoding="utf-8")
    (grammar / TABLES_FILE).write_bytes(shipped_tables(text))
    print(f"wrote {grammar / TABLES_FILE} (Lark {lark.__version__})")


if __name__ == "__main__":
    _write_shipped_tables()
