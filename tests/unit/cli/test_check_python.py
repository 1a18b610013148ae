"""`gtdsl check FILE.py`: every @gtdsl.jit function of a Python file checked without importing
or running the file, with the rules that hold when it is decorated. The oracle is decorating:
each function's diagnostics (code, line, column, message) and signature are those the
decorator gives when the file is imported."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gtdsl.cli.main import main
from gtdsl.pyfile import check_python_file
from gtdsl.runtime.errors import TypeCheckError
from tests.conftest import REPO

CLEAN = REPO / "tests" / "fixtures" / "pyfiles" / "clean_model.py"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_clean_file_passes_with_the_signatures_decorating_gives() -> None:
    code, out, err = _cli("check", str(CLEAN))
    assert (code, out, err) == (0, "ok: 1 file checked, no errors\n", "")
    code, out, _ = _cli("check", "--types", str(CLEAN))
    assert code == 0
    module = _import(CLEAN, "clean_model_for_check")
    decorated = [module.gelu_mlp, module.masked, module.block, module.Scaler.scale,
                 module.Untyped.forward, module.negated, module.later]
    # a class that declares no field types types `self` at the first call, from the instance
    # (`Untyped`, a struct of its weight); read from the file, nothing is known of it (`?`)
    module.Untyped(3)(torch.randn(2, 3))
    expected = [str(f.signature).replace("self: Untyped", "self: ?") for f in decorated]
    assert out.splitlines() == expected


HEADER = '''\
import math

import torch
import torch.nn.functional as F
from torch import Tensor
from jaxtyping import Float

import gtdsl
from gtdsl import jit as J

LIMIT = 2 ** 10
NAMES = ["a", "b"]


def helper(x):
    return x

'''

BROKEN = [
    '''\
@gtdsl.jit
def matmul(x: "f32[b, d]", w: "f32[e, f]") -> "f32[b, f]":
    return x @ w
''',
    '''\
@J
def uses_helper(x: "f32[n]") -> "f32[n]":
    return helper(x)
''',
    '''\
@gtdsl.jit(backend="torch")
def uses_list(x: "f32[n]"):
    return x * NAMES
''',
    '''\
@gtdsl.jit
def jaxtyped(x: Float[Tensor, "b n"], y: Float[Tensor, "n b"]) -> Float[Tensor, "b n"]:
    return x + y
''',
    '''\
class Model:
    w: "f32[n]"

    @gtdsl.jit
    def method(self, x: "f32[n]") -> "i64[n]":
        return F.gelu(x * self.w)
''',
    '''\
@gtdsl.jit
def not_allowed(x: "f32[n]"):
    return math.factorial(x)
''',
    '''\
@gtdsl.jit
def bad_type(x: "f32[n, *b]"):
    return x
''',
    '''\
@gtdsl.jit
def ok_one(x: "f32[n]") -> "f32[n]":
    return x * LIMIT + math.inf
''',
]


def _decorated_diagnostics(tmp_path: Path, index: int) -> list[tuple]:
    """Import a file holding the header and function ``index`` alone, at the lines it has
    in the whole file (the others blanked): what decorating it reports."""
    parts = [HEADER] + [f if i == index else "\n" * f.count("\n") for i, f in
                        enumerate(BROKEN)]
    path = tmp_path / f"one_{index}.py"
    path.write_text("\n".join(parts), encoding="utf-8")
    try:
        _import(path, f"one_{index}")
    except TypeCheckError as err:
        return [(d.code, d.primary.span.line, d.primary.span.column, d.message)
                for d in err.diagnostics]
    except Exception as err:  # a ParseError: a syntax or type-syntax error
        diags = getattr(err, "diagnostics", None)
        assert diags is not None, repr(err)
        return [(d.code, d.primary.span.line, d.primary.span.column, d.message)
                for d in diags]
    return []


def test_a_broken_file_reports_what_decorating_each_function_reports(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("\n".join([HEADER] + BROKEN), encoding="utf-8")
    found = check_python_file(path)
    assert found.functions == len(BROKEN)
    ours = [(d.code, d.primary.span.line, d.primary.span.column, d.message)
            for d in found.diagnostics]
    expected = [d for i in range(len(BROKEN)) for d in _decorated_diagnostics(tmp_path, i)]
    assert sorted(ours) == sorted(expected)
    assert {c for c, *_ in ours} >= {"GT2006", "GT1012", "GT0011", "GT2002"}, ours
    code, out, err = _cli("check", str(path))
    assert code == 1
    assert out == f"found {len(ours)} errors in 1 file\n"
    assert f"{path}:{ours[0][1]}:{ours[0][2]}" in err  # Python line numbers
    code, out, _ = _cli("check", "--format", "json", str(path))
    assert code == 1 and len(json.loads(out)) == len(ours)


def test_the_file_is_never_imported_or_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "sneaky.py"
    path.write_text(textwrap.dedent(f'''\
        import gtdsl
        open({str(marker)!r}, "w").write("ran")
        import os
        os.system("touch {marker}")
        raise SystemExit(3)


        @gtdsl.jit
        def f(x: "f32[n]") -> "f32[n]":
            return x + 1
        '''), encoding="utf-8")
    code = subprocess.run([sys.executable, "-m", "gtdsl.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=tmp_path).returncode
    assert code == 0
    assert not marker.exists()


def test_a_python_syntax_error_is_a_located_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("import gtdsl\n\n\ndef f(x:\n    return x\n", encoding="utf-8")
    code, out, err = _cli("check", str(path))
    assert code == 1
    assert "error[GT0001]: Python syntax error" in err and f"{path}:4:" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("import gtdsl\n\n@gtdsl.jit(allow_python=NAMES)\ndef f(x: \"f32[n]\"):\n    return x\n",
     ("GT1012", 3, "allow_python must be written as a tuple of strings")),
    ("import gtdsl\n\n@gtdsl.jit(allow_python=(\"os\",))\ndef f(x: \"f32[n]\"):\n    return x\n",
     ("GT1012", 3, "allow_python:")),
    ("import gtdsl\n\n@gtdsl.jit(fast=True)\ndef f(x: \"f32[n]\"):\n    return x\n",
     ("GT1012", 3, "no option `fast`")),
    ("import gtdsl\n\n@gtdsl.jit\nasync def f(x: \"f32[n]\"):\n    return x\n",
     ("GT0007", 3, "async def")),
])
def test_unreadable_decorator_options_are_located(tmp_path: Path, text: str,
                                                  expected: tuple) -> None:
    path = tmp_path / "opts.py"
    path.write_text(text, encoding="utf-8")
    (diag,) = check_python_file(path).diagnostics
    assert (diag.code, diag.primary.span.line) == expected[:2]
    assert expected[2] in diag.message


def test_only_gtdsl_jit_decorators_count(tmp_path: Path) -> None:
    path = tmp_path / "others.py"
    path.write_text(textwrap.dedent('''\
        import torch
        from torch import jit


        @jit.script
        def f(x: "f32[n]", y: "f32[m]"):
            return x @ y


        @torch.compile
        def g(x: "f32[n]", y: "f32[m]"):
            return x @ y
        '''), encoding="utf-8")
    found = check_python_file(path)
    assert found.functions == 0 and found.diagnostics == ()


def test_missing_and_unreadable_files_exit_as_for_gt_files(tmp_path: Path) -> None:
    code, _, err = _cli("check", str(tmp_path / "missing.py"))
    assert code == 2 and "GT0901" in err
    code, _, err = _cli("check", str(tmp_path))
    assert code == 2


def test_methods_of_modules_are_checked_from_the_file() -> None:
    """Declared fields: checked fully, calls of declared submodules included; fields read
    from the instance: what goes through `self` is unknown, the rest is checked."""
    fixtures = REPO / "tests" / "fixtures" / "jit_modules.py"
    code, out, _ = _cli("check", "--types", str(fixtures))
    assert code == 0
    assert "def forward(self: MLP[f, d], x: f32[b, d]) -> f32[b, d]" in out.splitlines()
    assert "def forward(self: ?, ids: i64[b, s]) -> f32[b, s, v=?]" in out.splitlines()


def test_a_broken_method_is_found_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken_module.py"
    path.write_text(textwrap.dedent('''\
        import gtdsl
        from torch import nn
        import torch.nn.functional as F


        class Linear(nn.Module):
            weight: "f32[o, i]"

            @gtdsl.jit
            def forward(self, x: "f32[b, i]") -> "f32[b, o]":
                return x @ self.weight.T


        class Twice(nn.Module):
            first: "Linear[f, d]"

            @gtdsl.jit
            def forward(self, x: "f32[b, d]") -> "f32[b, d]":
                return self.first(x)


        class Untyped(nn.Module):
            @gtdsl.jit
            def forward(self, x: "f32[b, d]", y: "f32[b, e]"):
                return self.proj(x) + x @ y
        '''), encoding="utf-8")
    found = check_python_file(path)
    got = [(d.code, d.primary.span.line) for d in found.diagnostics]
    assert got == [("GT2006", 19), ("GT2006", 25)], found.diagnostics


@pytest.mark.parametrize(("text", "expected"), [
    # `from gtdsl import *` binds jit
    ('from gtdsl import *\n\n@jit\ndef f(x: "f32[n]") -> "f32[m]":\n    return x\n',
     [("GT1008", 4)]),
    # a jit imported under try, with a fallback: still gtdsl's
    ('try:\n    from gtdsl import jit\nexcept ImportError:\n    jit = lambda f: f\n\n\n'
     '@jit\ndef f(x: "f32[n]") -> "f32[m]":\n    return x\n', [("GT1008", 8)]),
    # numbers changed in place and bound by `:=` are numbers
    ('import gtdsl\nN = 3\nN += 1\n(M := 4)\n\n\n@gtdsl.jit\ndef f(x: "f32[n]") -> "f32[n]":'
     '\n    return x * N * M\n', []),
    # a class inside a function: its methods are found (one declared field: checked)
    ('import gtdsl\n\n\ndef outer():\n    class C:\n        w: "f32[n]"\n\n        @gtdsl.jit\n'
     '        def g(self, x: "f32[m]") -> "f32[m]":\n            return x + self.w\n'
     '    return C\n', [("GT2006", 10)]),
])
def test_more_ways_of_writing_a_module(tmp_path: Path, text: str, expected: list) -> None:
    path = tmp_path / "ways.py"
    path.write_text(text, encoding="utf-8")
    found = check_python_file(path)
    assert [(d.code, d.primary.span.line) for d in found.diagnostics] == expected, \
        found.diagnostics
