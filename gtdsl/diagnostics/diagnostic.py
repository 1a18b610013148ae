"""The Diagnostic value and the exceptions that carry diagnostics to users."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from gtdsl._records import record
from gtdsl.diagnostics.codes import CODES
from gtdsl.diagnostics.source import Span


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@record
class Label:
    """A span with a short message: ``^^^`` under a primary label, ``---`` under others."""

    span: Span
    message: str = ""


@record
class Diagnostic:
    """One problem: a registered code, a one-line headline, where, and what to do.

    ``primary`` is None only for problems that have no place in a source text (a file
    that cannot be read, a bad command line); ``path`` then names what is at fault.
    """

    code: str
    message: str
    primary: Label | None = None
    secondary: tuple[Label, ...] = ()
    notes: tuple[str, ...] = ()
    help: str | None = None
    severity: Severity = Severity.ERROR
    path: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unregistered diagnostic code {self.code}")

    @property
    def file_name(self) -> str | None:
        return self.primary.span.file.name if self.primary is not None else self.path

    @property
    def location(self) -> str | None:
        """``file:line:col`` of the primary label, or the path alone, or None."""
        if self.primary is not None:
            return self.primary.span.location
        return self.path

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class GtdslError(Exception):
    """Base of every gtdsl error; ``str()`` is the rendered diagnostics."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self.diagnostics)

    def __str__(self) -> str:
        from gtdsl.diagnostics.render import render_text

        return "\n".join(render_text(d) for d in self.diagnostics).rstrip("\n")

    @property
    def diagnostic(self) -> Diagnostic:
        """The first diagnostic (a parse stops at its first error)."""
        return self.diagnostics[0]


class ParseError(GtdslError):
    """The source could not be read or parsed."""


class InternalError(Exception):
    """A bug in gtdsl itself, never the user's fault (the command line reports it as
    GT9001); ``what`` is the one-line account of what went wrong."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"internal error in gtdsl: {what}\n"
            "This is a bug in gtdsl, not in your program; please report it with the input "
            "(`gtdsl explain GT9001` says what to include)."
        )
