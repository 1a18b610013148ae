"""The LALR tables shipped with gtdsl (grammar/gtdsl.tables.json): made from this grammar by
the installed Lark, data only, and the parser they give is the one a build gives. After an
edit of grammar/gtdsl.lark (or a Lark upgrade) these tests fail until the tables are
regenerated: ``python -m gtdsl.syntax.grammar``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import lark
import pytest

from gtdsl.diagnostics import ParseError
from gtdsl.syntax import grammar, parse
from gtdsl.syntax.parse import parse_source
from tests.conftest import REPO

SHIPPED = REPO / "grammar" / grammar.TABLES_FILE
REGENERATE = "regenerate the tables: python -m gtdsl.syntax.grammar"


def _header() -> tuple[list[bytes], bytes]:
    head, _, payload = SHIPPED.read_bytes().partition(b"\n")
    return head.split(b" "), payload


def test_the_shipped_tables_are_made_from_this_grammar_by_this_lark() -> None:
    parts, payload = _header()
    assert len(parts) == 5 and b" ".join(parts[:2]) == b"gtdsl-lalr-tables-shipped 1"
    assert parts[2] == lark.__version__.encode(), f"made by Lark {parts[2]!r}: {REGENERATE}"
    assert parts[3] == grammar.shipped_key(grammar.grammar_text()), \
        f"grammar/gtdsl.lark changed since the tables were made: {REGENERATE}"
    assert parts[4] == hashlib.sha256(payload).hexdigest().encode()
    assert isinstance(json.loads(payload), dict)  # data: JSON, no pickle


def _trees_and_errors(parser: object, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the Lark path makes of every .gt file of the repository with ``parser``."""
    files = sorted(p for d in ("gtdsl/models", "docs/examples", "tests/golden")
                   for p in (REPO / d).rglob("*.gt"))
    out = []
    with monkeypatch.context() as m:
        m.setattr(grammar, "_parser_template", lambda: parser)
        m.setattr(parse, "DIRECT", False)
        for f in files:
            try:
                out.append(repr(parse_source(f.read_text(encoding="utf-8"), str(f))))
            except ParseError as e:
                out.append(str(e))
    assert any(o.startswith("error[") for o in out) and any(
        o.startswith("Module(") for o in out)
    return out


def test_the_shipped_tables_parse_as_a_fresh_build_does(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    text = grammar.grammar_text()
    shipped = grammar._load_shipped(text)
    assert shipped is not None, REGENERATE
    built = lark.Lark(text, postlex=grammar._LayoutDispatch(), **grammar._PARSER_OPTIONS,
                      **grammar._LOAD_OPTIONS)
    assert _trees_and_errors(shipped, monkeypatch) == _trees_and_errors(built, monkeypatch)


def test_a_parser_comes_from_the_shipped_tables_without_a_build_or_a_cache_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path))
    built: list[str] = []
    real_init = grammar.Lark.__init__

    def init(self, *a, **k):  # noqa: ANN001, ANN002, ANN003
        built.append("built")
        real_init(self, *a, **k)

    monkeypatch.setattr(grammar.Lark, "__init__", init)
    parser = grammar._parser_template.__wrapped__()
    assert built == [] and parser is not None
    assert not list(tmp_path.rglob("*"))  # no user cache needed, none written


@pytest.mark.parametrize("case", ["other_lark", "other_grammar", "tampered"])
def test_shipped_tables_for_another_lark_or_grammar_are_not_used(
        case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = grammar.grammar_text()
    if case == "other_lark":
        monkeypatch.setattr(grammar.lark, "__version__", "0.0.1")
    elif case == "other_grammar":
        text += "\n// an edit\n"
    else:
        parts, payload = _header()
        copy = tmp_path / grammar.TABLES_FILE
        copy.write_bytes(b" ".join(parts) + b"\n" + payload.replace(b'"NAME"', b'"NAMF"'))
        monkeypatch.setattr(grammar, "data_path", lambda kind, name: copy)
    assert grammar._load_shipped(text) is None


def test_a_new_process_explains_a_syntax_error_from_the_shipped_tables(tmp_path: Path) -> None:
    code = ("import gtdsl, gtdsl.syntax.grammar as g, pickle\n"
            "def refuse(*a, **k):\n"
            "    raise AssertionError('not from the shipped tables')\n"
            "pickle.load = pickle.loads = refuse\n"
            "g.Lark.__init__ = refuse\n"
            "try:\n"
            "    gtdsl.parse_source('def f(x:\\n    pass\\n')\n"
            "except gtdsl.ParseError as e:\n"
            "    print(str(e).splitlines()[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"GTDSL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("error[GT"), out.stdout
    assert not list(tmp_path.rglob("*"))
