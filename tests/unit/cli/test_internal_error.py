"""An exception escaping a command is a bug in gtdsl: every command prints it as the GT9001
diagnostic (what failed, where, the versions, how to report it) and exits with status 3; the
traceback only under ``GTDSL_LOG=debug``; Ctrl-C stays ``interrupted`` with status 130."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gtdsl.diagnostics import InternalError
from tests.conftest import REPO

cli = importlib.import_module("gtdsl.cli.main")
RMS = str(REPO / "docs" / "examples" / "language" / "rms_norm.gt")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def _raise(exc: BaseException) -> Any:
    def fail(*_: Any, **__: Any) -> Any:
        raise exc
    return fail


# (the command line, the module attribute its work goes through, the path it names)
COMMANDS = [
    (["check", RMS], (cli, "run_check"), RMS),
    (["compile", RMS, "--fn", "rms_norm"], (cli, "run_compile"), RMS),
    (["run", RMS, "--fn", "rms_norm", "--arg", "x=f32[2, 3]"], ("gtdsl.cli.run", "run_function"),
     RMS),
    (["embed", "some/model", "hello"], (cli, "run_embed"), "some/model"),
    (["generate", "some/model", "hello", "--beams", "2"], (cli, "run_generate"), "some/model"),
    (["explain", "GT0001"], (cli, "run_explain"), "GT0001"),
    (["bench", "--quick"], (cli, "run_bench"), None),
]
FAILURES = [
    (InternalError("a relation returned a type outside its declared range"),
     "internal error in gtdsl: a relation returned a type outside its declared range"),
    (KeyError("weight"), "internal error in gtdsl: KeyError: 'weight'"),
    (RecursionError("maximum recursion depth exceeded"),
     "internal error in gtdsl: RecursionError: maximum recursion depth exceeded"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "GTDSL_LOG=debug"])
@pytest.mark.parametrize(("exc", "headline"), FAILURES, ids=["InternalError", "KeyError",
                                                             "RecursionError"])
@pytest.mark.parametrize(("argv", "where", "path"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_every_command_reports_an_escaping_exception_as_gt9001(
        argv: list[str], where: tuple[Any, str], path: str | None, exc: Exception,
        headline: str, debug: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    module, attr = where
    monkeypatch.setattr(importlib.import_module(module) if isinstance(module, str) else module,
                        attr, _raise(exc))
    if debug:
        monkeypatch.setenv("GTDSL_LOG", "recompiles,debug")
    else:
        monkeypatch.delenv("GTDSL_LOG", raising=False)
    code, out, err = run(*argv)
    assert code == cli.EXIT_INTERNAL == 3 and out == ""
    text = err[err.index("error[GT9001]"):] if debug else err
    assert text.startswith(f"error[GT9001]: {headline}\n"), err
    assert "this is a bug in gtdsl, not in your input" in text
    assert "= note: raised in fail (test_internal_error.py:" in text
    assert "= note: versions: gtdsl " in text and "torch " in text
    assert f"= note: command: gtdsl {' '.join(argv)}" in text
    if path is not None:
        assert f" --> {path}\n" in text
    if debug:
        assert err.startswith("Traceback (most recent call last):")
        assert f"{type(exc).__name__}" in err[:err.index("error[GT9001]")]
        assert "GTDSL_LOG=debug to add" not in text
    else:
        assert "Traceback" not in err and "GTDSL_LOG=debug to add the Python traceback" in text


def test_an_internal_error_deep_in_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised where gtdsl raises them: compiling a function's body during `gtdsl run`."""
    from gtdsl.runtime.jit import JitFunction

    def broken(self: Any, key: tuple) -> Any:
        raise InternalError(f"generated code for `{self.qualname}` does not compile")

    monkeypatch.setattr(JitFunction, "_build", broken)
    monkeypatch.delenv("GTDSL_LOG", raising=False)
    code, out, err = run("run", RMS, "--fn", "rms_norm", "--arg", "x=f32[2, 3]")
    assert code == 3 and out == "" and "Traceback" not in err
    assert err.startswith("error[GT9001]: internal error in gtdsl: generated code for "
                          "`rms_norm` does not compile\n")
    assert "= note: raised in broken (" in err


def test_check_json_reports_it_in_the_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "check_file", _raise(ValueError("bad state")))
    monkeypatch.delenv("GTDSL_LOG", raising=False)
    code, out, err = run("check", "--format", "json", RMS)
    assert code == 3 and err == ""
    (d,) = json.loads(out)
    assert d["code"] == "GT9001" and d["message"] == "internal error in gtdsl: ValueError: " \
        "bad state" and d["file"] == RMS


def test_a_gtdsl_error_no_command_caught_is_still_the_users(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A diagnostic raised where a command did not expect one is printed as it is (not as
    GT9001), with its usual status."""
    from gtdsl.diagnostics import Diagnostic, GtdslError

    monkeypatch.setattr(cli, "run_compile", _raise(GtdslError([Diagnostic(
        "GT5001", "unknown backend 'x'", path="m.gt")])))
    code, out, err = run("compile", RMS, "--fn", "rms_norm")
    assert code == 1 and err.startswith("error[GT5001]: unknown backend 'x'\n --> m.gt")
    monkeypatch.setattr(cli, "run_compile", _raise(GtdslError([Diagnostic(
        "GT0901", "cannot read `m.gt`", path="m.gt")])))
    assert run("compile", RMS, "--fn", "rms_norm")[0] == 2


def test_keyboard_interrupt_stays_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(cli, "run_check", _raise(KeyboardInterrupt()))
    assert run("check", RMS) == (130, "", "interrupted\n")


def test_the_real_command_exits_3_with_the_diagnostic_only(tmp_path: Path) -> None:
    """The installed entry point, its own streams and exit status, a traceback only on
    request."""
    script = ("import sys, importlib\n"
              "m = importlib.import_module('gtdsl.cli.main')\n"
              "from gtdsl.diagnostics import InternalError\n"
              "def broken(*a, **k):\n"
              "    raise InternalError('lost track of a size')\n"
              "m.run_check = broken\n"
              "sys.exit(m.main())\n")
    for debug in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "GTDSL_LOG"}
        if debug:
            env["GTDSL_LOG"] = "debug"
        done = subprocess.run([sys.executable, "-c", script, "check", RMS], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 3 and done.stdout == ""
        assert "error[GT9001]: internal error in gtdsl: lost track of a size" in done.stderr
        assert ("Traceback" in done.stderr) is debug


def test_the_page_explains_reporting() -> None:
    code, out, _ = run("explain", "GT9001")
    assert code == 0 and out.startswith("# GT9001: internal error in gtdsl")
    assert "GTDSL_LOG=debug" in out and "status 3" in out


def test_internal_error_from_python_points_to_the_page() -> None:
    e = InternalError("x")
    assert e.what == "x" and str(e).startswith("internal error in gtdsl: x\n")
    assert "gtdsl explain GT9001" in str(e)
