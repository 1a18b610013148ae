"""docs/architecture.md says true things: every file it names exists, and the fused IR it
shows is what `gtdsl compile --emit ir --backend triton` prints for the program it shows."""

from __future__ import annotations

import io
import re
from pathlib import Path

from gtdsl.cli.main import main
from tests.conftest import REPO

DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:gtdsl|tests|grammar|docs)/[\w/.]+?\.(?:py|gt|lark|md))`", DOC))
    # `runtime/module.py` and the like, inside gtdsl/
    short = set(re.findall(r"`((?:runtime|lower|check|ir|ops|models)/[\w/.]+?\.py)`", DOC))
    assert len(named) >= 10 and len(short) >= 3
    missing = [p for p in sorted(named) if not (REPO / p).is_file()] + [
        p for p in sorted(short) if not (REPO / "gtdsl" / p).is_file()]
    assert not missing, missing
    dirs = set(re.findall(r"`(gtdsl/[\w/]+/)`", DOC))
    assert all((REPO / d).is_dir() for d in dirs if "<" not in d), dirs


def test_the_fused_ir_shown_is_real(tmp_path: Path, monkeypatch, capsys) -> None:
    source = re.search(r"```gt\n(def norm.*?)```", DOC, re.S).group(1)
    shown = re.search(r"```text\n\$ gtdsl compile norm.gt --fn norm --emit ir --backend "
                      r"triton\n(.*?)```", DOC, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "norm.gt").write_text(source)
    assert main(["compile", "norm.gt", "--fn", "norm", "--emit", "ir", "--backend",
                 "triton"]) == 0
    assert capsys.readouterr().out == shown
