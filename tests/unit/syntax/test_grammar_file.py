"""The grammar file: strict LALR, and the copy shipped in the wheel equals the checkout's."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lark import Lark

from gtdsl._resources import data_path
from gtdsl.syntax.grammar import GRAMMAR_FILE, grammar_text
from tests.conftest import REPO

REPO_GRAMMAR = REPO / "grammar" / GRAMMAR_FILE


def test_grammar_is_strict_lalr() -> None:
    """No LALR conflicts and no terminal collisions (Lark's strict mode checks both)."""
    Lark(REPO_GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
         start=["module", "type"], strict=True)


def test_the_loaded_grammar_is_the_repository_file() -> None:
    assert grammar_text() == REPO_GRAMMAR.read_text(encoding="utf-8")


@pytest.mark.slow
def test_wheel_ships_the_same_grammar_and_error_pages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("gtdsl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = zf.read(f"gtdsl/_data/grammar/{GRAMMAR_FILE}").decode("utf-8")
        assert shipped == REPO_GRAMMAR.read_text(encoding="utf-8")
        tables = REPO / "grammar" / "gtdsl.tables.json"
        assert zf.read("gtdsl/_data/grammar/gtdsl.tables.json") == tables.read_bytes()
        facts = REPO / "gtdsl" / "ops" / "torch_names.json"  # the checker's torch facts
        assert zf.read("gtdsl/ops/torch_names.json") == facts.read_bytes()
        pages = sorted((REPO / "docs" / "errors").glob("GT*.md"))
        assert pages
        for page in pages:
            assert zf.read(f"gtdsl/_data/errors/{page.name}").decode() == page.read_text()
        templates = sorted((REPO / "kernels").glob("*.py"))
        assert templates
        for t in templates:
            assert zf.read(f"gtdsl/_data/kernels/{t.name}").decode() == t.read_text()
        assert "gtdsl/cli/main.py" in names
        assert "gtdsl/models/bert.gt" in names  # the models ship in the wheel
    # An installed copy resolves to the packaged file: unpack and load from there.
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    probe = (
        "import gtdsl, gtdsl._resources as r, gtdsl.syntax.grammar as g;"
        "p = r.data_path('grammar', g.GRAMMAR_FILE); print(p);"
        "print(gtdsl.parse_type('f32[b, 768] @ cuda'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(unpacked)})
    path_line, type_line = out.stdout.splitlines()
    assert path_line.startswith(str(unpacked)) and "_data" in path_line
    assert type_line == "f32[b, 768] @ cuda"


def test_checkout_data_paths() -> None:
    path = data_path("grammar", GRAMMAR_FILE)
    assert path is not None and Path(str(path)).resolve() == REPO_GRAMMAR.resolve()
    assert data_path("errors", "GT0003.md") is not None
    assert data_path("errors", "GT9999.md") is None
    assert data_path("kernels", "matmul.py") is not None


def _parse_in_subprocess(cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """Lark parses, with the user's table cache (the shipped tables made as for another Lark)."""
    code = ("import gtdsl, gtdsl.syntax.grammar as g, gtdsl.syntax.parse as p\n"
            "g._load_shipped = lambda text: None\n"
            "p.DIRECT = False\n"
            "print(gtdsl.parse_type('f32[b, 768] @ cuda'))")
    env = {"GTDSL_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_parser_table_cache_is_written_reused_and_survives_corruption(tmp_path: Path) -> None:
    first = _parse_in_subprocess(tmp_path)
    assert first.returncode == 0 and first.stdout == "f32[b, 768] @ cuda\n" and first.stderr == ""
    (cache,) = (tmp_path / "parser").iterdir()
    assert cache.stat().st_size > 10_000
    assert (tmp_path / "parser").stat().st_mode & 0o077 == 0  # private to the user
    cache.write_bytes(b"not a cache\n\x00\x01")
    again = _parse_in_subprocess(tmp_path)
    assert again.returncode == 0 and again.stdout == first.stdout and again.stderr == ""
    assert cache.stat().st_size > 10_000  # rebuilt and rewritten
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    third = _parse_in_subprocess(blocked)  # the cache directory cannot be made: no cache
    assert third.returncode == 0 and third.stdout == first.stdout and third.stderr == ""
