"""Golden tests: programs carrying their own expectations.

- ``parse/*.gt`` and the documented examples in ``docs/examples``: parse cleanly; the AST
  dump is in the sibling ``.expected`` file; unparse then parse gives the same tree.
- ``errors/*.gt``: the first line is ``# error[CODE] LINE:COL``; the file must fail with
  exactly that diagnostic, rendered as in the sibling ``.expected`` file.
Run ``pytest --update-golden`` to rewrite the ``.expected`` files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gtdsl
from gtdsl.diagnostics import render_text
from gtdsl.syntax import parse_file, parse_source, unparse
from gtdsl.syntax.dump import dump_ast
from tests.conftest import REPO, check_golden

HERE = Path(__file__).parent
PARSE_CASES = sorted((HERE / "parse").glob("*.gt"))
EXAMPLES = sorted((REPO / "docs" / "examples").rglob("*.gt"))
ERROR_CASES = sorted((HERE / "errors").glob("*.gt"))
HEADER = re.compile(r"# (error|warning)\[(GT\d{4})\] (\d+):(\d+)$")


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", PARSE_CASES + EXAMPLES, ids=_id)
def test_parses_to_golden_ast(path: Path, update_golden: bool) -> None:
    module = parse_file(path)
    expected = (HERE / "parse" / "expected" / path.name).with_suffix(".expected")
    check_golden(expected, dump_ast(module) + "\n", update_golden)
    assert parse_source(unparse(module)) == module
    diagnostics = gtdsl.check(path)
    if path in EXAMPLES:  # the documented examples also type-check
        assert diagnostics == []
    else:  # the parse cases exercise syntax only: no syntax errors
        assert [d for d in diagnostics if d.code.startswith("GT0")] == []


@pytest.mark.parametrize("path", ERROR_CASES, ids=_id)
def test_syntax_error_is_located(path: Path, update_golden: bool) -> None:
    text = path.read_text(encoding="utf-8")
    match = HEADER.match(text.splitlines()[0])
    assert match, f"{path.name}: first line must be `# error[GTxxxx] LINE:COL`"
    _severity, code, line, col = match.groups()
    diags = gtdsl.check(path)
    assert len(diags) == 1
    (diag,) = diags
    assert diag.primary is not None
    assert (diag.code, diag.primary.span.line, diag.primary.span.column) == (code, int(line), int(col))
    rendered = render_text(diag)
    assert f"--> {path}:{line}:{col}" in rendered
    assert "Traceback" not in rendered and "gtdsl/" not in rendered.replace(str(path), "")
    check_golden(path.with_suffix(".expected"), rendered.replace(str(path), path.name),
                 update_golden)


def test_error_cases_cover_every_syntax_code() -> None:
    codes = {HEADER.match(p.read_text().splitlines()[0]).group(2) for p in ERROR_CASES}
    syntax_codes = {c for c in gtdsl.diagnostics.CODES if c.startswith("GT00")}
    # GT0015 (nesting too deep) needs a huge input; tests/unit/syntax covers it.
    assert syntax_codes - codes == {"GT0015"}


CHECK_CASES = sorted((HERE / "check").glob("*.gt"))


@pytest.mark.parametrize("path", CHECK_CASES, ids=_id)
def test_type_error_is_located(path: Path, update_golden: bool) -> None:
    """Each case's header names the one error the checker must report, and where."""
    text = path.read_text(encoding="utf-8")
    match = HEADER.match(text.splitlines()[0])
    assert match, f"{path.name}: first line must be `# error[GTxxxx] LINE:COL`"
    _severity, code, line, col = match.groups()
    diags = gtdsl.check(path)
    assert [d.code for d in diags] == [code], [render_text(d) for d in diags]
    (diag,) = diags
    assert diag.primary is not None and diag.help, "a type error has a place and a help line"
    assert (diag.primary.span.line, diag.primary.span.column) == (int(line), int(col))
    rendered = render_text(diag)
    assert "Traceback" not in rendered
    check_golden(path.with_suffix(".expected"),
                 rendered.replace(str(path.parent) + "/", "").replace(str(path), path.name),
                 update_golden)


def test_check_cases_cover_every_type_code() -> None:
    codes = {HEADER.match(p.read_text().splitlines()[0]).group(2) for p in CHECK_CASES}
    type_codes = {c for c in gtdsl.diagnostics.CODES if c[2] in "12"}
    # GT2029 (torch promotes to a dtype gtdsl lacks) needs another torch's rules:
    # tests/unit/test_torch_versions.py plants them and covers it.
    assert type_codes - codes == {"GT2029"} and codes <= type_codes
