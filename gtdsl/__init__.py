"""gtdsl: a JIT-compiled, shape-polymorphic tensor language with gradual types.

This module is the public API: re-exports only, no logic.
"""

from gtdsl._version import __version__
from gtdsl.diagnostics import Diagnostic, GtdslError, ParseError, Severity
from gtdsl.driver import check, jit, load, load_source
from gtdsl.runtime import CastError, TypeCheckError
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
    "load_source",
    "parse_file",
    "parse_function",
    "parse_source",
    "parse_type",
]
