"""Regressions for defects found in review: each input once crashed or misreported."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gtdsl
from gtdsl.syntax import ast, parse_source, unparse
from gtdsl.syntax import grammar
from tests.fixtures import jit_functions as F


def _code(src: str) -> str:
    (diag,) = gtdsl.check(src)
    return diag.code


@pytest.mark.parametrize(("src", "code"), [
    ("def f(x: f32 @ cuda:" + "9" * 5000 + "):\n    pass\n", "GT0011"),
    ("def f(x):\n    return " + "9" * 5000 + "\n", "GT0016"),
    ("def f(x):\n    return 0x" + "f" * 5000 + "\n", "GT0016"),
    ("def f(x):\n    return 1e999\n", "GT0016"),
    ("def f(x, x):\n    pass\n", "GT0017"),
    ("def f[N, N](x):\n    pass\n", "GT0017"),
])
def test_huge_literals_and_duplicates_are_diagnostics(src: str, code: str) -> None:
    assert _code(src) == code


@pytest.mark.parametrize(("src", "code", "message"), [
    ("def f(a, b, c):\n    x = [\n        a,\n        b\n        c,\n    ]\n", "GT0001",
     "unexpected name `c`"),
    ("def f(x):\n    return g(x,\n             lambda y: y)\n", "GT0007", "`lambda`"),
    ("def f():\n    return (a\n        b)\n", "GT0001", "unexpected name `b`"),
    ("def f(x):\n    y = (a\n    b = 2\n", "GT0009", "`(` was never closed"),
    ("def f(x):\n    return foo(a if b)\n", "GT0001", "unexpected `)`"),
    ("def f(x):\n    return [a if b]\n", "GT0001", "unexpected `]`"),
    ("@dec\nimport x\n", "GT0014", "only functions take decorators"),
])
def test_bracket_diagnostics_blame_the_right_thing(src: str, code: str, message: str) -> None:
    (diag,) = gtdsl.check(src)
    assert diag.code == code and message in diag.message


def test_line_endings() -> None:
    crlf = 'def f():\r\n    return "a\\\r\nb"\r\n'
    assert parse_source(crlf).body[0].body[0].value == ast.Str("ab")  # type: ignore[union-attr]
    cr_only = "def f(x):\r    y = x\r    return y\r"
    assert parse_source(cr_only) == parse_source(cr_only.replace("\r", "\n"))


def test_escapes_do_not_depend_on_the_warning_filter() -> None:
    src = 'def f():\n    return "\\q"\n'
    code = "import gtdsl; print(gtdsl.check(%r))" % src
    for flags in ([], ["-W", "error"]):
        out = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout == "[]\n" and out.stderr == ""


def test_python_function_lines_are_parsed_as_they_stand() -> None:
    fn = gtdsl.parse_function(F.Odd.continued)
    lines = inspect.getsource(F).splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith('  y: "f32[*b, m]"')) + 1
    annotation = fn.params[2].annotation
    assert annotation is not None and annotation.span is not None
    assert (annotation.span.line, annotation.span.column) == (row, 7)
    assert fn.docstring == F.Odd.continued.__doc__
    assign = fn.body[0]
    assert isinstance(assign, ast.Assign) and assign.value == ast.Str(F.Odd().continued(0, 0))
    assert parse_source(unparse(fn)).body[0] == fn


def test_wrapped_functions_are_blamed_in_their_own_file() -> None:
    with pytest.raises(gtdsl.ParseError) as err:
        gtdsl.parse_function(F.wrapped)
    location = err.value.diagnostic.location
    assert location is not None and location.startswith(inspect.getsourcefile(F) + ":")


def test_table_cache_falls_back_when_there_is_no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home(self: Path) -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("GTDSL_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "expanduser", no_home)
    assert grammar._table_cache() is False


def test_table_cache_refuses_a_shared_directory(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "parser").mkdir()
    os.chmod(tmp_path / "parser", 0o777)
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path))
    assert grammar._table_cache() is False
    os.chmod(tmp_path / "parser", 0o700)
    assert isinstance(grammar._table_cache(), str)


def test_explain_on_an_ascii_terminal() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    out = subprocess.run([sys.executable, "-m", "gtdsl.cli", "explain", "GT0011"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.startswith("# GT0011") and out.stderr == ""
