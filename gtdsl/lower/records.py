"""What lowering hands the runtime: the constants a generated body refers to, as typed records.

A generated body names each constant ``__gt_k<i>``. Data the runtime's helpers read (a cast's
target and blame, an op's residual check, an assertion's message) stays a record; names the
runtime resolves before the body runs (a gtdsl callee, an op's torch function, an allowlisted
Python name, a fused kernel) are records the runtime turns into callables, each by one rule
(``gtdsl.runtime.module``). Anything else (a torch dtype) is a plain value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gtdsl.diagnostics import Span
from gtdsl.ir.core import Blame
from gtdsl.types import Type


@dataclass(frozen=True, slots=True)
class CastSite:
    """A ``CHECK_CAST`` inside a body: ``__gt_cast(site, value, sizes)``."""

    target: Type
    blame: Blame


@dataclass(frozen=True, slots=True)
class FastCast:
    """A ``CHECK_CAST`` inside a body, as generated checks: ``site(value, sizes..., rows...)``
    with the body's bound ``sizes`` and ``rows``, returning the ``new`` sizes and
    ``new_rows`` the cast binds (the reference cast explains a failure)."""

    site: CastSite
    sizes: tuple[str, ...]
    rows: tuple[str, ...]
    new: tuple[str, ...]
    new_rows: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpCheck:
    """A ``CHECK_OP``: op ``op``'s relation re-run on its arguments' metadata:
    ``site((sizes...), (rows...), ins...)`` with the values of the body's bound ``sizes``
    and ``rows`` (for the message of a failure)."""

    op: str
    names: tuple[str, ...]
    blame: Blame
    sizes: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AssertSite:
    """An ``ASSERT``: the function, place and message of the error it raises."""

    function: str
    span: Span | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Callee:
    """A gtdsl function called by qualified name (the runtime's compiled function)."""

    qualname: str


@dataclass(frozen=True, slots=True)
class TrustedCallee:
    """A gtdsl function called from a body that proved its arguments: its trusted entry
    (sizes computed by the caller, nothing checked again)."""

    qualname: str


@dataclass(frozen=True, slots=True)
class DirectCallee:
    """A gtdsl function called from a body that proved its arguments and whose types fix
    the callee's specialization key: its compiled body for ``key``."""

    qualname: str
    key: tuple


@dataclass(frozen=True, slots=True)
class TorchFunction:
    """A catalogue op's torch callable by dotted path (``torch.sum``)."""

    path: str


@dataclass(frozen=True, slots=True)
class PythonName:
    """An allowlisted Python function or value by full dotted path, resolved through the
    allowlist again at run time."""

    path: str


@dataclass(frozen=True, slots=True)
class Launch:
    """A fused Triton kernel: its launcher is built from the kernel's description."""

    kernel: Any


Record = (CastSite | FastCast | OpCheck | AssertSite | Callee | TrustedCallee | DirectCallee | TorchFunction
          | PythonName | Launch)

__all__ = ["AssertSite", "Callee", "CastSite", "DirectCallee", "FastCast", "Launch", "OpCheck", "PythonName", "Record",
           "TorchFunction", "TrustedCallee"]
