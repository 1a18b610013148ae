"""Source files and spans.

A ``SourceFile`` holds the text the parser saw and ``line_offset``, the number of lines
before that text in the user's real file (for a function cut out of a ``.py`` file; its
lines are kept as they are, indentation included). A ``Span`` is a half-open range of
character offsets into that text. Lines and columns are 1-based, counted in the user's file.
"""

from __future__ import annotations

import bisect
import re

from gtdsl._records import record


class SourceFile:
    """One source text; compared by identity (two reads of a file are two sources)."""

    __slots__ = ("name", "text", "line_offset", "_line_starts")

    def __init__(self, name: str, text: str, line_offset: int = 0) -> None:
        self.name = name
        self.text = text
        self.line_offset = line_offset
        self._line_starts = (0, *(m.end() for m in re.finditer("\n", text)))

    def __repr__(self) -> str:
        return f"SourceFile({self.name!r})"

    def line_index(self, offset: int) -> int:
        """0-based index into this text's lines of the line holding ``offset``."""
        offset = max(0, min(offset, len(self.text)))
        return bisect.bisect_right(self._line_starts, offset) - 1

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of ``offset`` in the user's file."""
        idx = self.line_index(offset)
        col = max(0, min(offset, len(self.text)) - self._line_starts[idx])
        return idx + 1 + self.line_offset, col + 1

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    def line_text(self, idx: int) -> str:
        """Text of 0-based line ``idx`` of this text, without its newline."""
        start = self._line_starts[idx]
        end = self._line_starts[idx + 1] - 1 if idx + 1 < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def line_start(self, idx: int) -> int:
        return self._line_starts[idx]


@record
class Span:
    """Characters ``start`` (inclusive) to ``end`` (exclusive) of ``file.text``."""

    file: SourceFile
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span {self.start}..{self.end}")

    @property
    def line(self) -> int:
        return self.file.line_col(self.start)[0]

    @property
    def column(self) -> int:
        return self.file.line_col(self.start)[1]

    @property
    def location(self) -> str:
        line, col = self.file.line_col(self.start)
        return f"{self.file.name}:{line}:{col}"

    @property
    def text(self) -> str:
        return self.file.text[self.start : self.end]

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.file, min(self.start, other.start), max(self.end, other.end))
