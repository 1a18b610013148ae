"""``check_module(..., ir=False)`` (what ``gtdsl check`` runs): the same diagnostics and
signatures as a check that builds the IR, for every program of the corpus, the erroneous
ones included; no IR program is offered for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtdsl.check import check_module
from gtdsl.diagnostics import ParseError
from gtdsl.driver import check_file, read_source
from gtdsl.syntax.parse import parse_file_text
from tests.conftest import REPO

CORPUS = sorted(p for d in ("gtdsl/models", "docs/examples", "examples", "tests/golden")
                for p in (REPO / d).rglob("*.gt"))


def _seen(diagnostics: tuple) -> list[tuple]:
    return [(d.code, d.message, str(d)) for d in diagnostics]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(REPO)))
def test_the_same_diagnostics_and_signatures_without_the_ir(path: Path) -> None:
    try:
        file, _ = read_source(path)
        tree = parse_file_text(file)
    except ParseError:
        return  # a syntax error: no check runs either way
    full = check_module(file, tree, path)
    alone = check_module(file, tree, path, ir=False)
    assert _seen(alone.diagnostics) == _seen(full.diagnostics)
    assert alone.signatures == full.signatures
    assert full.has_ir and not alone.has_ir
    assert all(f.ir is None for f in alone.module.functions.values())
    with pytest.raises(ValueError, match="no IR program"):
        alone.program


def test_the_corpus_has_errors_and_clean_programs() -> None:
    # what the comparison above covers: programs that check clean, and programs with errors
    results = [check_file(p, is_path=True, ir=False) for p in CORPUS]
    assert any(r.result is not None and r.result.ok for r in results)
    assert sum(1 for r in results if r.result is not None and not r.result.ok) >= 10

