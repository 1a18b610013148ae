"""gtdsl: a JIT-compiled, shape-polymorphic tensor language with gradual types.

This module is the public API: re-exports only, no logic.
"""

from gtdsl._version import __version__
from gtdsl.diagnostics import Diagnostic, GtdslError, ParseError, Severity
from gtdsl.driver import check
from gtdsl.runtime import CastError, TypeCheckError, jit, load
from gtdsl.syntax import parse_file, parse_function, parse_source, parse_type

__all__ = [
    "CastError",
    "Diagnostic",
    "GtdslError",
    "ParseError",
    "Severity",
    "__version__",
    "TypeCheckError",
    "check",
    "jit",
    "load",
    "parse_file",
    "parse_function",
    "parse_source",
    "parse_type",
]
