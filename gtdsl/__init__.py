"""gtdsl: a JIT-compiled, shape-polymorphic tensor language with gradual types.

This module is the public API: re-exports only, no logic. Checking and parsing never import
torch: the runtime (which does) loads with this module only where torch is loaded already,
else on first use: ``load``, ``load_source`` and ``jit`` when called, the runtime's names
(``CastError``, ``TypeCheckError``) on first access (PEP 562).
"""

import sys as _sys
from typing import TYPE_CHECKING, Any

from gtdsl._version import __version__
from gtdsl.diagnostics import Diagnostic, GtdslError, ParseError, Severity
from gtdsl.driver import check, jit, load, load_source
from gtdsl.syntax import parse_file, parse_function, parse_source, parse_type

if TYPE_CHECKING:
    from gtdsl.runtime import CastError, TypeCheckError

__all__ = [
    "CastError",
    "Diagnostic",
    "GtdslError",
    "ParseError",
    "Severity",
    "__version__",
    "TypeCheckError",
    "check",
    "export",
    "jit",
    "load",
    "load_source",
    "parse_file",
    "parse_function",
    "parse_source",
    "parse_type",
]

_RUNTIME_NAMES = ("CastError", "TypeCheckError")

if "torch" in _sys.modules:
    # torch is loaded already: the runtime costs no torch import now, and the first ``load``
    # or ``@jit`` does not pay for loading it
    from gtdsl.runtime import CastError, TypeCheckError


def __getattr__(name: str) -> Any:
    if name == "export":  # torch.export: loaded on first use
        from gtdsl.exporting import export

        globals()["export"] = export
        return export
    if name in _RUNTIME_NAMES:
        import gtdsl.runtime

        value = getattr(gtdsl.runtime, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gtdsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
