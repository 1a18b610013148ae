"""Long explanations of diagnostic codes: the pages ``docs/errors/<CODE>.md``."""

from __future__ import annotations

from gtdsl._resources import data_path
from gtdsl.diagnostics.codes import CodeInfo, lookup_code


def explanation(code: str) -> tuple[CodeInfo, str] | None:
    """The code's registry entry and its page, or None for an unknown code."""
    info = lookup_code(code)
    if info is None:
        return None
    page = data_path("errors", f"{info.code}.md")
    if page is None:
        return info, f"# {info.code}: {info.title}\n\n(No longer explanation is installed.)\n"
    return info, page.read_text(encoding="utf-8")
