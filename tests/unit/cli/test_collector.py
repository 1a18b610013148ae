"""The garbage collector: the ``gtdsl`` program turns it off for a command that only reads
and checks (it ends the process itself); importing gtdsl, and running commands in-process,
leave it as they found it. Each case runs in a fresh interpreter."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys

from gtdsl.cli.main import main
from tests.conftest import REPO

RMS = str(REPO / "docs" / "examples" / "language" / "rms_norm.gt")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_gtdsl_leaves_the_collector_on() -> None:
    code = ("import gc, json\n"
            "import gtdsl, gtdsl.cli, gtdsl.cli.main, gtdsl.driver\n"
            "print(json.dumps({'enabled': gc.isenabled()}))\n")
    assert _fresh(code) == {"enabled": True}


def test_the_program_checks_with_the_collector_off() -> None:
    """As the console script runs it (no arguments given: ``sys.argv``); the early exit
    is replaced by a probe, so the program returns and restores the collector."""
    code = ("import gc, importlib, json, sys\n"
            f"sys.argv = ['gtdsl', 'check', {RMS!r}]\n"
            "m = importlib.import_module('gtdsl.cli.main')\n"
            "seen = []\n"
            "m._exit_now = lambda code: seen.append((code, gc.isenabled()))\n"
            "code = m.main()\n"
            "print()\n"
            "print(json.dumps({'code': code, 'at_exit': seen, 'after': gc.isenabled()}))\n")
    assert _fresh(code) == {"code": 0, "at_exit": [[0, False]], "after": True}


def test_a_command_that_runs_more_keeps_the_collector() -> None:
    code = ("import gc, importlib, json, sys\n"
            "sys.argv = ['gtdsl', 'bench', '--help']\n"
            "m = importlib.import_module('gtdsl.cli.main')\n"
            "seen = []\n"
            "m.run_bench = lambda argv, err: seen.append(gc.isenabled()) or 0\n"
            "code = m.main()\n"
            "print(json.dumps({'code': code, 'during': seen, 'after': gc.isenabled()}))\n")
    assert _fresh(code) == {"code": 0, "during": [True], "after": True}


def test_main_in_process_leaves_the_collector_as_it_found_it() -> None:
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            out, err = io.StringIO(), io.StringIO()
            assert main(["check", RMS], out, err) == 0, err.getvalue()
            assert main(["--version"], out, err) == 0
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
