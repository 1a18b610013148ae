"""Start-up: the commands that only read and check (`--version`, `explain`, `check`, `compile
--emit ast|typed|ir`) never import torch, and checking a well-formed program imports no Lark
(the direct parser builds it); loading what needs the runtime still works from the same
process. Each case runs in a fresh interpreter, where nothing was imported before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MODELS = REPO / "gtdsl" / "models"
EXAMPLES = REPO / "docs" / "examples" / "language"


def _fresh(code: str, cwd: Path = REPO) -> dict:
    """Run ``code`` in a new interpreter; it prints a JSON object as its last line (what it
    printed before comes back as ``printed``)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=cwd, timeout=300)
    assert out.returncode == 0, out.stderr
    *printed, last = out.stdout.strip().splitlines()
    return {**json.loads(last), **({"printed": printed} if printed else {})}


COMMANDS = [
    ["--version"],
    ["explain", "GT3001"],
    ["check", str(MODELS / "bert.gt"), str(MODELS / "gpt2.gt"), str(MODELS / "t5.gt")],
    ["check", "--types", str(EXAMPLES / "encoder.gt")],
    ["check", str(REPO / "tests" / "fixtures" / "pyfiles" / "clean_model.py")],
    ["compile", str(MODELS / "blocks.gt"), "--fn", "dense", "--emit", "ast"],
    ["compile", str(MODELS / "blocks.gt"), "--fn", "attend", "--emit", "typed"],
    ["compile", str(MODELS / "blocks.gt"), "--fn", "attend", "--emit", "ir"],
    ["compile", str(EXAMPLES / "mlp.gt"), "--fn", "mlp", "--emit", "ir", "--backend",
     "triton"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:1] + a[-2:]))
def test_front_end_commands_never_import_torch(argv: list[str]) -> None:
    code = ("import io, json, sys\n"
            "from gtdsl.cli.main import main\n"
            "out, err = io.StringIO(), io.StringIO()\n"
            f"code = main({argv!r}, out, err)\n"
            "print(json.dumps({'code': code, 'out': out.getvalue(), 'err': err.getvalue(),\n"
            "                  'torch': 'torch' in sys.modules, 'lark': 'lark' in sys.modules}))\n")
    result = _fresh(code)
    assert result["code"] == 0, result["err"]
    assert result["out"] or result["printed"][0].startswith("gtdsl ")  # --version: stdout
    assert not result["torch"], "torch was imported"
    assert not result["lark"], "Lark was imported for a well-formed program"


def test_the_gtdsl_command_checks_without_torch() -> None:
    """The real entry point (which ends the process as soon as its output is out)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "gtdsl.cli", "check",
                          str(MODELS / "bert.gt")], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0 and out.stdout == "ok: 1 file checked, no errors\n", out.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()
                if line.startswith("import time:")}
    assert "gtdsl.check" in imported and "torch" not in imported
    # nor what only writing code or reading live objects needs, also for a file that names
    # allowlisted torch functions (their facts ship as data)
    named = subprocess.run([sys.executable, "-X", "importtime", "-m", "gtdsl.cli", "check",
                            str(EXAMPLES / "gated.gt")], capture_output=True, text=True,
                           cwd=REPO, timeout=300)
    assert named.returncode == 0, named.stderr
    imported |= {line.rsplit("|", 1)[-1].strip() for line in named.stderr.splitlines()
                 if line.startswith("import time:")}
    assert "gtdsl.ops.pyfacts" in imported
    assert not imported & {"torch", "dataclasses", "inspect", "tempfile", "difflib"}
    # errors: reported, with the exit status, by the same early exit
    bad = subprocess.run([sys.executable, "-m", "gtdsl.cli", "check", str(REPO / "tests" /
                          "golden" / "errors" / "lambda.gt")], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert bad.returncode == 1 and "GT0007" in bad.stderr and bad.stdout.startswith("found 1 ")


def test_a_syntax_error_is_explained_without_torch() -> None:
    code = ("import io, json, sys\n"
            "from gtdsl.cli.main import main\n"
            "err = io.StringIO()\n"
            f"code = main(['check', {str(REPO / 'tests/golden/errors/lambda.gt')!r}],"
            " io.StringIO(), err)\n"
            "print(json.dumps({'code': code, 'err': err.getvalue(),"
            " 'torch': 'torch' in sys.modules}))\n")
    result = _fresh(code)
    assert result["code"] == 1 and "GT0007" in result["err"] and not result["torch"]


def test_import_gtdsl_loads_the_runtime_on_first_use() -> None:
    code = ("import json, sys\n"
            "import gtdsl\n"
            "before = 'torch' in sys.modules\n"
            "names = sorted(gtdsl.__all__)\n"
            "cast_error = gtdsl.CastError\n"
            "m = gtdsl.load_source('def f(x: f32[n]) -> f32[n]:\\n    return x + 1\\n')\n"
            "import torch\n"
            "print(json.dumps({'before': before, 'after': 'torch' in sys.modules,\n"
            "                  'value': m.f(torch.ones(2)).tolist(),\n"
            "                  'cast': issubclass(cast_error, TypeError),\n"
            "                  'all': all(hasattr(gtdsl, n) for n in names)}))\n")
    result = _fresh(code, cwd=REPO / "tests")
    assert result == {"before": False, "after": True, "value": [2.0, 2.0], "cast": True,
                      "all": True}


def test_with_torch_loaded_first_the_runtime_comes_with_gtdsl() -> None:
    code = ("import json, sys\n"
            "import torch\n"
            "import gtdsl\n"
            "print(json.dumps({'runtime': 'gtdsl.runtime' in sys.modules}))\n")
    assert _fresh(code) == {"runtime": True}


def test_a_reader_that_left_gets_no_traceback() -> None:
    """`gtdsl check --types FILE | head`: output flushed on the way out to a closed pipe is
    handled as any broken pipe (exit 1, nothing on standard error)."""
    p = subprocess.Popen([sys.executable, "-m", "gtdsl.cli", "check", "--types",
                          str(MODELS / "bert.gt")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=REPO)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 1 and err == ""


def test_the_ir_each_backend_runs_is_its_registry_pass() -> None:
    """``--emit ir --backend B`` finds B's IR pass without importing the runtime
    (``driver.backend_pass``); it is the pass the runtime's registry runs."""
    from gtdsl.driver import backend_pass, check_file, emit
    from gtdsl.ir.printer import print_function
    from gtdsl.runtime.backends import REGISTRY

    checked = check_file(EXAMPLES / "mlp.gt", is_path=True)
    assert checked.result is not None
    fn = checked.result.module.functions["mlp"].ir
    assert fn is not None
    shown = set()
    for name, backend in REGISTRY.items():
        expected = print_function(backend.prepare(fn))
        assert print_function(backend_pass(name)(fn)) == expected
        assert emit(checked.result, "mlp", "ir", name) == expected
        shown.add(expected)
    assert len(shown) == 2  # the triton pass fuses; torch and interpret run the IR as it is
