"""Each checker error page shows its example's real output: the page's first program (or the
files named `` `x.gt`: `` before their blocks) run through the command its ``text`` block shows
gives exactly the text shown."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from gtdsl.cli import main
from tests.conftest import REPO, plant_untyped_promotion

PAGES = sorted((REPO / "docs" / "errors").glob("GT[12]*.md"))
BLOCK = re.compile(r"(?:`(?P<name>[\w/]+\.gt)`:\s*\n\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)


def _example(page: Path) -> tuple[dict[str, str], list[str], str]:
    files: dict[str, str] = {}
    first: str | None = None
    for m in BLOCK.finditer(page.read_text()):
        lang, body = m.group("lang"), m.group("body")
        if lang == "text" and body.startswith("$ gtdsl "):
            command, _, expected = body.partition("\n")
            argv = command.split()[2:]
            target = argv[-1]
            if not files:
                files[target] = first or ""
            return files, argv, expected
        if lang in ("", "gt"):
            if m.group("name"):
                files[m.group("name")] = body
            elif first is None:
                first = body
    raise AssertionError(f"{page.name}: no example output")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_error_page_example_output_is_real(page: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    files, argv, expected = _example(page)
    if page.stem == "GT2029":  # shown under a newer torch's rules, as the page says
        plant_untyped_promotion(monkeypatch, "2.16.0")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(argv)
    assert code == 1
    assert out.getvalue().strip() == expected.strip()
    assert f"[{page.stem}]" in expected
