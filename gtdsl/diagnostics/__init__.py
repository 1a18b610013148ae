"""Diagnostics: source files, spans, codes, the Diagnostic value and its renderings.

Contract: the bottom stage. It imports nothing else from gtdsl, so every later stage
(syntax, types, check, runtime, cli) can report through it.
"""

from gtdsl.diagnostics.codes import CODES, CodeInfo, lookup_code
from gtdsl.diagnostics.diagnostic import (
    Diagnostic,
    GtdslError,
    InternalError,
    Label,
    ParseError,
    Severity,
)
from gtdsl.diagnostics.render import render_json, render_text
from gtdsl.diagnostics.source import SourceFile, Span

__all__ = [
    "CODES",
    "CodeInfo",
    "Diagnostic",
    "GtdslError",
    "InternalError",
    "Label",
    "ParseError",
    "Severity",
    "SourceFile",
    "Span",
    "lookup_code",
    "render_json",
    "render_text",
]
