"""Parsing entry points: text, files and types to AST, or a ParseError.

Input: text (or a path). Output: ``ast.Module`` / ``ast.TypeExpr``; on failure a
``ParseError`` holding one located Diagnostic. Reading files turns every OS and encoding
problem into a diagnostic as well (GT09xx).
"""

from __future__ import annotations

import os
import re

from gtdsl._resources import SOURCE_LIMIT, FileTooLarge, NotRegularFile, read_regular_file
from gtdsl.diagnostics import Diagnostic, Label, ParseError, Severity, SourceFile, Span
from gtdsl.syntax import ast, direct
from gtdsl.syntax.tokens import SyntaxProblem

# Every parse tries the direct parser first (``gtdsl.syntax.direct``: no Lark); what it does
# not build, Lark parses, which gives the same tree or the diagnostic. False: Lark only (the
# tests that compare the two, or exercise Lark's tables, set it).
DIRECT = True


def normalise_newlines(text: str) -> str:
    """``\\r\\n`` and a lone ``\\r`` end lines as ``\\n`` does (Python's universal newlines)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def parse_source(text: str, filename: str = "<string>") -> ast.Module:
    """Parse a whole gtdsl module held in ``text``."""
    return parse_file_text(SourceFile(filename, normalise_newlines(text)))


def parse_file_text(file: SourceFile, base_indent: int = 0) -> ast.Module:
    """Parse a module whose SourceFile is already made.

    ``base_indent`` is the column its top-level statements start at: 0 for a file, the
    indentation of the ``def`` for a method or nested function read from a ``.py`` file.
    """
    text = file.text
    try:
        _reject_bidi_controls(file)
        if base_indent == 0:
            _reject_indented_start(file)
        text = text if text.endswith("\n") else text + "\n"
        module = direct.parse_module(file, text, base_indent) if DIRECT else None
        if module is not None:
            return module
        from gtdsl.syntax.build import AstBuilder
        from gtdsl.syntax.errors import parse_tree

        tree = parse_tree(file, text, "module", base_indent=base_indent)
        return AstBuilder(file).module(tree)
    except SyntaxProblem as problem:
        raise ParseError([problem.diagnostic]) from None
    except RecursionError:
        raise ParseError([_too_deep(file)]) from None


def _too_deep(file: SourceFile, offset: int = 0) -> Diagnostic:
    from gtdsl.syntax.errors import too_deep

    return too_deep(file, offset)


_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_CHARS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _reject_bidi_controls(file: SourceFile) -> None:
    """Bidirectional-text controls make code read differently from how it runs ("Trojan
    Source", CVE-2021-42574): refused anywhere in a source, comments and strings included."""
    text = file.text
    # each `in` is a fast scan, and none at all in text whose every character is below
    # U+0100; the pattern says where, when one is there
    if not any(c in text for c in _BIDI_CHARS):
        return
    m = _BIDI.search(text)
    if m is not None:
        raise SyntaxProblem(Diagnostic(
            "GT0002", f"bidirectional-text control character U+{ord(m.group()):04X}",
            Label(Span(file, m.start(), m.end()), "reorders how the text around it is shown"),
            help="delete it: a source must read as it runs (write the character as an escape "
            "in a string, e.g. \"\\u202e\")"))


def _reject_indented_start(file: SourceFile) -> None:
    """Python rejects an indented first statement; Lark would silently skip the indent."""
    for idx in range(file.line_count):
        line = file.line_text(idx)
        stripped = line.lstrip(" \t\f")
        if not stripped or stripped.startswith("#"):
            continue
        if stripped != line:
            start = file.line_start(idx) + len(line) - len(stripped)
            raise SyntaxProblem(Diagnostic(
                "GT0005", "unexpected indent", Label(Span(file, start, start),
                                                     "the first statement is indented"),
                help="start top-level definitions in column 1",
            ))
        return


def parse_type_in(file: SourceFile, start: int, end: int) -> ast.TypeExpr:
    """The type written at ``file.text[start:end]`` (a class's field annotation in a ``.py``
    file), with spans in ``file``; ParseError when it is none."""
    try:
        found = direct.parse_type_at(file, start, end) if DIRECT else None
        if found is not None:
            return found
        from gtdsl.syntax.build_types import TypeBuilder
        from gtdsl.syntax.errors import parse_tree

        tree = parse_tree(file, file.text[start:end], "type", start)
        return TypeBuilder(file, start).type(tree)
    except SyntaxProblem as problem:
        raise ParseError([problem.diagnostic]) from None
    except RecursionError:
        raise ParseError([_too_deep(file, start)]) from None


def parse_type(text: str) -> ast.TypeExpr:
    """Parse one type, e.g. ``"f32[b, 768] @ cuda"``; ``str()`` of the result parses back."""
    file = SourceFile("<type>", text)
    stripped = text.strip()
    try:
        if not stripped:
            raise SyntaxProblem(Diagnostic("GT0011", "empty type", Label(Span(file, 0, 0)),
                                           help="write a type such as `f32[n]` or `?`"))
        start = len(text) - len(text.lstrip())
        found = direct.parse_type_at(file, start, start + len(stripped)) if DIRECT else None
        if found is not None:
            return found
        from gtdsl.syntax.build_types import TypeBuilder
        from gtdsl.syntax.errors import parse_tree

        tree = parse_tree(file, stripped, "type", start)
        return TypeBuilder(file, start).type(tree)
    except SyntaxProblem as problem:
        raise ParseError([problem.diagnostic]) from None
    except RecursionError:
        raise ParseError([_too_deep(file)]) from None


def read_source(path: str | os.PathLike[str]) -> tuple[SourceFile, list[Diagnostic]]:
    """Read a source file as UTF-8 text, or explain why it cannot be read.

    Returns the SourceFile and any warnings (an empty file); raises ParseError (GT090x) if
    there is no text to parse. Only a regular file of at most ``SOURCE_LIMIT`` bytes is read:
    a directory is GT0903, a FIFO, device or socket GT0901 and a larger file GT0910, each
    refused at once (nothing waits on a pipe or reads an endless device).
    """
    name = os.fspath(path)
    try:
        data = read_regular_file(name, SOURCE_LIMIT)
    except NotRegularFile as err:
        if err.kind == "a directory":
            raise ParseError([Diagnostic("GT0903", f"`{name}` is a directory, not a source file",
                                         path=name, help="name the .gt files inside it")]
                             ) from None
        raise ParseError([Diagnostic("GT0901", f"cannot read `{name}`: it is {err.kind}, not a "
                                     "regular file", path=name,
                                     help="name a .gt source file; gtdsl reads only regular "
                                          "files")]) from None
    except FileTooLarge as err:
        raise ParseError([Diagnostic("GT0910", f"`{name}` is too large: {_size(err.size)}, "
                                     f"more than the limit of {_size(err.limit)}", path=name,
                                     help="split the module into smaller .gt files that "
                                          "import each other")]) from None
    except FileNotFoundError:
        raise ParseError([Diagnostic("GT0901", f"cannot read `{name}`: no such file",
                                     path=name, help="check the path and the current directory")]
                         ) from None
    except IsADirectoryError:
        raise ParseError([Diagnostic("GT0903", f"`{name}` is a directory, not a source file",
                                     path=name, help="name the .gt files inside it")]) from None
    except PermissionError:
        raise ParseError([Diagnostic("GT0901", f"cannot read `{name}`: permission denied",
                                     path=name)]) from None
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise ParseError([Diagnostic("GT0901", f"cannot read `{name}`: {reason.lower()}",
                                     path=name)]) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        good = data[: err.start].decode("utf-8", errors="replace")
        file = SourceFile(name, data.decode("utf-8", errors="replace"))
        raise ParseError([Diagnostic(
            "GT0902", f"`{name}` is not valid UTF-8 text",
            Label(Span(file, len(good), len(good) + 1),
                  f"byte 0x{data[err.start]:02x} cannot start or continue a UTF-8 character"),
            help="save the file as UTF-8",
        )]) from None
    file = SourceFile(name, normalise_newlines(text))
    warnings = []
    if not text.strip():
        warnings.append(Diagnostic("GT0904", f"`{name}` is empty: there is nothing to check",
                                   path=name, severity=Severity.WARNING))
    return file, warnings


def _size(n: int) -> str:
    """``16777216 bytes (16 MiB)``: exact, and readable."""
    mib = n / (1 << 20)
    return f"{n} bytes" + (f" ({mib:.{0 if mib == int(mib) else 1}f} MiB)" if n >= 1 << 20 else "")


def parse_file(path: str | os.PathLike[str]) -> ast.Module:
    """Read and parse a ``.gt`` file; every failure is a ParseError."""
    file, _warnings = read_source(path)
    return parse_file_text(file)
