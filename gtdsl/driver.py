"""The driver: runs the front-end stages over a file or text and collects diagnostics.

Input: a path or source text. Output: the diagnostics of reading, parsing and type checking
(never raises on bad user input), and for the compile command the checked module: its
signatures, its typed program and its IR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gtdsl.check import CheckResult, check_module
from gtdsl.check.typed import print_typed
from gtdsl.diagnostics import Diagnostic, ParseError, SourceFile
from gtdsl.ir.printer import print_function
from gtdsl.syntax.parse import parse_file_text, read_source

_SOURCE_SUFFIXES = (".gt",)


def _looks_like_path(arg: str | os.PathLike[str]) -> bool:
    if isinstance(arg, os.PathLike):
        return True
    return "\n" not in arg and arg.strip().endswith(_SOURCE_SUFFIXES)


@dataclass(frozen=True)
class Checked:
    """Everything the front end produced for one file (``result`` None: it did not parse)."""

    diagnostics: tuple[Diagnostic, ...]
    result: CheckResult | None
    unreadable: bool = False

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)


def check_file(path_or_source: str | os.PathLike[str], filename: str | None = None,
               is_path: bool | None = None) -> Checked:
    """Read (when a path), parse and check; ``is_path`` None guesses from the argument."""
    path: Path | None = None
    try:
        if is_path or (is_path is None and _looks_like_path(path_or_source)):
            path = Path(path_or_source)
            file, warnings = read_source(path)
        else:
            file, warnings = SourceFile(filename or "<string>", str(path_or_source)), []
        tree = parse_file_text(file)
    except ParseError as err:
        return Checked(tuple(err.diagnostics), None,
                       any(d.code.startswith("GT09") for d in err.diagnostics))
    result = check_module(file, tree, path)
    return Checked(tuple(warnings) + result.diagnostics, result)


def check(path_or_source: str | os.PathLike[str], filename: str | None = None) -> list[Diagnostic]:
    """Check a ``.gt`` file (a path, or a string ending in ``.gt``) or source text.

    Returns every diagnostic found, errors and warnings: syntax, names, types and shapes.
    An empty list means the program is well typed.
    """
    return list(check_file(path_or_source, filename).diagnostics)


def emit(result: CheckResult, fn_name: str, what: str) -> str | None:
    """``typed`` or ``ir`` text of one function of a checked module; None if no such function."""
    fn = result.module.functions.get(fn_name)
    if fn is None or fn.ir is None:
        return None
    if what == "ir":
        return print_function(fn.ir)
    return print_typed(fn, result.signature(fn_name), getattr(fn, "lets", {}))
