"""The driver: runs the front-end stages over a file or text and collects diagnostics.

Input: a path or source text. Output: the list of Diagnostics (never raises on bad user
input). Today the stages are reading and parsing; type checking joins them in the next
stage of the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

from gtdsl.diagnostics import Diagnostic, ParseError, SourceFile
from gtdsl.syntax.parse import parse_file_text, read_source

_SOURCE_SUFFIXES = (".gt",)


def _looks_like_path(arg: str | os.PathLike[str]) -> bool:
    if isinstance(arg, os.PathLike):
        return True
    return "\n" not in arg and arg.strip().endswith(_SOURCE_SUFFIXES)


def check(path_or_source: str | os.PathLike[str], filename: str | None = None) -> list[Diagnostic]:
    """Check a ``.gt`` file (a path, or a string ending in ``.gt``) or source text.

    Returns every diagnostic found, errors and warnings; an empty list means the program
    is well formed.
    """
    try:
        if _looks_like_path(path_or_source):
            file, warnings = read_source(Path(path_or_source))
        else:
            file, warnings = SourceFile(filename or "<string>", str(path_or_source)), []
        parse_file_text(file)
    except ParseError as err:
        return list(err.diagnostics)
    return warnings
