"""Golden Triton output: for each ``triton/*.gt`` file, `gtdsl compile --emit triton` of its
function (launch plan, kernel source, host code) equals the sibling ``.expected`` file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gtdsl.cli.main import main
from tests.conftest import check_golden

CASES = sorted((Path(__file__).parent / "triton").glob("*.gt"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_generated_triton_source(path: Path, update_golden: bool) -> None:
    name = path.read_text().split("def ", 1)[1].split("(", 1)[0]
    out, err = io.StringIO(), io.StringIO()
    assert main(["compile", str(path), "--fn", name, "--emit", "triton"], out, err) == 0, \
        err.getvalue()
    check_golden(path.with_suffix(".expected"), out.getvalue(), update_golden)
