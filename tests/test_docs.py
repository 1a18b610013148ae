"""The documentation's examples run: every ```gt block in docs/*.md parses cleanly, every
```gt-error block fails with the code and line in its first-line header, and every
```gt-types line parses to a type whose canonical spelling is that line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gtdsl
from tests.conftest import REPO

DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
FENCE = re.compile(r"^```(gt|gt-error|gt-types)\n(.*?)^```$", re.S | re.M)
ERROR_HEADER = re.compile(r"# error\[(GT\d{4})\] line (\d+)")


def _blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == kind:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{doc.name}:{line}", match.group(2)))
    return found


def test_the_reference_has_examples() -> None:
    assert len(_blocks("gt")) >= 10 and len(_blocks("gt-error")) >= 8 and _blocks("gt-types")


@pytest.mark.parametrize(("where", "source"), _blocks("gt"), ids=lambda v: v if ":" in v else "")
def test_gt_blocks_parse(where: str, source: str) -> None:
    assert gtdsl.check(source, filename=where) == []


@pytest.mark.parametrize(("where", "source"), _blocks("gt-error"),
                         ids=lambda v: v if ":" in v else "")
def test_gt_error_blocks_fail_as_stated(where: str, source: str) -> None:
    header = ERROR_HEADER.match(source)
    assert header, f"{where}: a gt-error block starts with `# error[GTxxxx] line N`"
    diags = gtdsl.check(source, filename=where)
    assert [(d.code, d.primary.span.line if d.primary else None) for d in diags] == [
        (header.group(1), int(header.group(2)))]


@pytest.mark.parametrize("line", [ln for _, block in _blocks("gt-types")
                                  for ln in block.splitlines() if ln.strip()])
def test_gt_types_are_canonical(line: str) -> None:
    assert str(gtdsl.parse_type(line)) == line


def test_the_op_set_lists_every_op_of_the_catalogue() -> None:
    """docs/language.md §8 names each catalogue op, and no op that is not one."""
    from gtdsl.ops import OPS

    text = (REPO / "docs" / "language.md").read_text(encoding="utf-8")
    section = text.split("## 8. The op set", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(ln for ln in section.splitlines() if ln.startswith("| ") and
                      not ln.startswith("| Family") and not ln.startswith("| ---"))
    named = {word for cell in re.findall(r"`([^`]*)`", table) for word in cell.split()
             if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word)}
    methods = {"float", "long", "type_as", "to", "T"}  # written as methods beside their op
    assert set(OPS) - named == set(), sorted(set(OPS) - named)
    assert named - set(OPS) - methods == set(), sorted(named - set(OPS) - methods)
