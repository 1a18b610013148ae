"""The gtdsl command: exit statuses 0/1/2, readable messages, never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gtdsl import __version__
from gtdsl.cli.main import main
from tests.conftest import REPO

EXAMPLES = sorted(str(p) for p in (REPO / "docs" / "examples").rglob("*.gt"))
ERRORS = sorted((REPO / "tests" / "golden" / "errors").glob("*.gt"))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_check_examples_ok() -> None:
    code, out, err = run("check", *EXAMPLES)
    assert code == 0, err
    assert out == f"ok: {len(EXAMPLES)} files checked, no errors\n" and err == ""


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.name)
def test_broken_files_exit_1_with_a_location(path: Path) -> None:
    header = path.read_text().splitlines()[0]  # "# error[GT0003] 2:27"
    code_name, where = header[len("# error["):].split("] ")
    code, out, err = run("check", str(path))
    assert code == 1
    assert err.startswith(f"error[{code_name}]: ")
    assert f"--> {path}:{where}\n" in err
    assert "Traceback" not in err and out == "found 1 error in 1 file\n"


def test_json_format(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gt"
    bad.write_text("def f(x)\n    return x\n")
    code, out, _ = run("check", "--format", "json", str(bad), EXAMPLES[0])
    assert code == 1
    (diag,) = json.loads(out)
    assert (diag["code"], diag["file"], diag["line"], diag["column"]) == ("GT0003", str(bad), 1, 9)


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.gt"
    latin1.write_bytes(b"def f(x):\n    return x  # caf\xe9\n")
    cases = {
        str(tmp_path / "missing.gt"): ("GT0901", "no such file"),
        str(tmp_path): ("GT0903", "is a directory"),
        str(latin1): ("GT0902", "not valid UTF-8"),
    }
    for path, (want, fragment) in cases.items():
        code, _, err = run("check", path)
        assert code == 2, path
        assert err.startswith(f"error[{want}]") and fragment in err
    code, _, err = run("check", str(latin1))
    assert f"--> {latin1}:2:20" in err


def test_unreadable_beats_syntax_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gt"
    bad.write_text("def f(x)\n")
    code, _, err = run("check", str(bad), str(tmp_path / "nope.gt"))
    assert code == 2 and "GT0003" in err and "GT0901" in err


def test_empty_file_is_a_warning(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gt"
    empty.write_text("\n  \n")
    code, out, err = run("check", str(empty))
    assert code == 0
    assert err.startswith("warning[GT0904]") and out.startswith("ok:")


def test_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.gt"
    f.write_bytes(b"\xef\xbb\xbfdef f(x):\n    return x\n")
    assert run("check", str(f))[0] == 0


def test_explain() -> None:
    code, out, _ = run("explain", "GT0003")
    assert code == 0 and out.startswith("# GT0003: missing colon\n")
    assert run("explain", "gt3")[1] == out
    code, _, err = run("explain", "GT0030")
    assert code == 2 and err.startswith("error[GT0907]") and "did you mean GT" in err and "GT0903" in err
    code, _, err = run("explain", "nonsense")
    assert code == 2 and "codes look like GT0003" in err


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["check"], ["check", "--format", "xml", "a"],
                                  ["explain"], ["--bogus"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2
    if argv:
        assert err.startswith("error[GT0906]")


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    exe = bin_dir / "gtdsl"
    assert exe.exists(), "the gtdsl console script is installed with the package"
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == f"gtdsl {__version__}"
    bad = tmp_path / "bad.gt"
    bad.write_bytes(b"def f(x):\n    return {x}\n")
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    for cmd in ([str(exe), "check", str(bad)], [sys.executable, "-m", "gtdsl.cli", "check", str(bad)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error[GT0007]") and "Traceback" not in proc.stderr
