"""Checked modules are kept per process: loading a model file again (as each model object
built does: ``Bert``, ``GPT2`` and ``T5`` load their ``.gt`` file) neither parses nor checks
it, whatever backend is asked for; only another allowlist or a change of its text or of an
imported module's does."""

from __future__ import annotations

import importlib

import pytest

import gtdsl
from tests.conftest import REPO

MODELS = REPO / "gtdsl" / "models"


@pytest.mark.parametrize("model", ["bert.gt", "gpt2.gt", "t5.gt"])
def test_loading_a_model_file_twice_checks_it_once(model: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    driver = importlib.import_module("gtdsl.driver")
    syntax_parse = importlib.import_module("gtdsl.syntax.parse")
    checks: list[str] = []
    parses: list[str] = []
    real_check, real_parse = driver.check_module, driver.parse_file_text
    monkeypatch.setattr(driver, "check_module",
                        lambda file, *a, **k: checks.append(file.name) or real_check(file, *a,
                                                                                   **k))
    monkeypatch.setattr(driver, "parse_file_text",
                        lambda file, *a, **k: parses.append(file.name) or real_parse(file, *a,
                                                                                   **k))
    driver._CHECKED.clear()
    first = gtdsl.load(MODELS / model)
    again = gtdsl.load(MODELS / model)
    other_backend = gtdsl.load(MODELS / model, backend="interpret")
    assert len(checks) == 1 and len(parses) == 1, (checks, parses)
    assert set(first.functions) == set(again.functions) == set(other_backend.functions)
    assert syntax_parse.DIRECT  # and it was the direct parser that read it


def test_a_model_whose_imported_module_changed_is_checked_again(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept program is dropped when an imported module's text changes (read again, not
    parsed, to compare)."""
    driver = importlib.import_module("gtdsl.driver")
    for name in ("blocks.gt", "bert.gt"):
        (tmp_path / name).write_text((MODELS / name).read_text())
    checks: list[int] = []
    real = driver.check_module
    monkeypatch.setattr(driver, "check_module",
                        lambda *a, **k: checks.append(1) or real(*a, **k))
    gtdsl.load(tmp_path / "bert.gt")
    gtdsl.load(tmp_path / "bert.gt")
    assert len(checks) == 1
    blocks = tmp_path / "blocks.gt"
    blocks.write_text(blocks.read_text() + "\n# edited\n")
    gtdsl.load(tmp_path / "bert.gt")
    assert len(checks) == 2
