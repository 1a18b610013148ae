"""Rendering diagnostics: Rust/Elm-style text with source excerpts, and JSON.

The first line (``error[GT0003]: message``) and the ``--> file:line:col`` line are stable
for editors and tests. Tabs in excerpts are expanded so carets line up.
"""

from __future__ import annotations

from typing import Any

from gtdsl.diagnostics.diagnostic import Diagnostic, Label
from gtdsl.diagnostics.source import SourceFile, Span

_TAB = 4


def _display_col(text: str, col: int) -> int:
    """Width of ``text[:col]`` once tabs are expanded."""
    return len(text[:col].expandtabs(_TAB))


def _excerpt(labels: list[tuple[Label, str]], file: SourceFile) -> list[tuple[int, str, list[str]]]:
    """For each line with a label: (1-based line number, display text, marker lines)."""
    by_line: dict[int, list[tuple[int, int, str, str]]] = {}
    for label, mark in labels:
        span = label.span
        first = file.line_index(span.start)
        last = file.line_index(max(span.start, span.end - 1)) if span.end > span.start else first
        line_text = file.line_text(first)
        start_col = span.start - file.line_start(first)
        if last == first:
            end_col = max(span.end - file.line_start(first), start_col + 1)
        else:
            end_col = max(len(line_text), start_col + 1)
        by_line.setdefault(first, []).append((start_col, end_col, mark, label.message))
    rows = []
    for idx in sorted(by_line):
        text = file.line_text(idx)
        markers = []
        for start_col, end_col, mark, message in sorted(by_line[idx]):
            lo = _display_col(text, start_col)
            hi = max(_display_col(text, end_col), lo + 1)
            markers.append(" " * lo + mark * (hi - lo) + (f" {message}" if message else ""))
        rows.append((idx + 1 + file.line_offset, text.expandtabs(_TAB), markers))
    return rows


# Runtime failures report these facts as their own lines (docs/runtime.md, "What is checked
# when"), not as notes.
BARE_NOTES = ("called from ", "got: ", "mismatch: ", "bindings: ", "op: ")


def render_text(diag: Diagnostic) -> str:
    """The diagnostic as a human reads it in a terminal (no colour)."""
    out = [f"{diag.severity.value}[{diag.code}]: {diag.message}"]
    labels: list[tuple[Label, str]] = []
    if diag.primary is not None:
        labels.append((diag.primary, "^"))
    file = diag.primary.span.file if diag.primary is not None else None
    labels += [(lab, "-") for lab in diag.secondary if file is None or lab.span.file is file]
    loc = diag.location
    rows = _excerpt(labels, file) if file is not None and file.text else []
    width = max((len(str(n)) for n, _, _ in rows), default=1)
    pad = " " * width
    if loc is not None:
        out.append(f"{pad}--> {loc}")
    if rows:
        out.append(f"{pad} |")
        previous = None
        for number, text, markers in rows:
            if previous is not None and number > previous + 1:
                out.append("...")
            out.append(f"{number:>{width}} | {text}".rstrip())
            out += [f"{pad} | {m}".rstrip() for m in markers]
            previous = number
    for lab in diag.secondary:
        if file is None or lab.span.file is not file:
            out.append(f"{pad} = note: {lab.message} ({lab.span.location})")
    for note in diag.notes:
        bare = note.startswith(BARE_NOTES)
        out.append(f"{pad} = {note}" if bare else f"{pad} = note: {note}")
    if diag.help:
        out.append(f"{pad} = help: {diag.help}")
    return "\n".join(out) + "\n"


def _span_json(span: Span) -> dict[str, Any]:
    line, col = span.file.line_col(span.start)
    end_line, end_col = span.file.line_col(span.end)
    return {
        "file": span.file.name,
        "line": line,
        "column": col,
        "end_line": end_line,
        "end_column": end_col,
    }


def diagnostic_to_dict(diag: Diagnostic) -> dict[str, Any]:
    """A JSON-ready dict: stable keys, positions 1-based."""
    primary = None
    if diag.primary is not None:
        primary = {**_span_json(diag.primary.span), "message": diag.primary.message}
    return {
        "severity": diag.severity.value,
        "code": diag.code,
        "message": diag.message,
        "file": diag.file_name,
        "line": primary["line"] if primary else None,
        "column": primary["column"] if primary else None,
        "primary": primary,
        "secondary": [
            {**_span_json(lab.span), "message": lab.message} for lab in diag.secondary
        ],
        "notes": list(diag.notes),
        "help": diag.help,
    }


def render_json(diags: list[Diagnostic] | tuple[Diagnostic, ...]) -> str:
    import json

    return json.dumps([diagnostic_to_dict(d) for d in diags], indent=2)
