"""The docstring gtdsl's Python front end reports is ``fn.__doc__`` on the running Python:
Python 3.13 strips a docstring's indentation when it compiles it. ``compiled_docstring`` is
compared with a Python 3.13 interpreter's own compile on random docstrings (the machine's
pyenv provides one), and ``parse_function`` with ``__doc__`` on the running Python."""

from __future__ import annotations

import glob
import json
import random
import shutil
import subprocess
import sys

import pytest

import gtdsl
from gtdsl.syntax.pyfront import compiled_docstring


def _python313() -> str | None:
    found = [shutil.which(f"python3.{minor}") for minor in (13, 14)]
    found += sorted(glob.glob("/root/.pyenv/versions/3.1[3-9]*/bin/python3.1[3-9]"))
    for path in found:
        if not path:
            continue
        try:
            out = subprocess.run([path, "-c", "import sys; print(sys.version_info >= (3, 13))"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.stdout.strip() == "True":
            return path
    return None


def _samples(n: int) -> list[str]:
    rng = random.Random(0)
    pieces = [" ", "  ", "    ", "\t", "\n", "word", "a b", "\n    ", "\n  ", "\n\t", "x"]
    return [rng.choice(["", " ", "  "]) + "".join(rng.choice(pieces) for _ in range(
        rng.randint(0, 12))) for _ in range(n)]


def test_compiled_docstrings_equal_python_313s() -> None:
    python = _python313()
    if python is None:
        pytest.skip("no Python 3.13 or later on this machine to compare with")
    samples = _samples(300) + ["Adds.", "\n    Body\n\n    more\n", "x\n\tTab\n    four"]
    script = ("import json, sys\nout = []\nfor s in json.load(sys.stdin):\n"
              "    ns = {}\n    exec('def f():\\n    ' + json.dumps(s) + '\\n', ns)\n"
              "    out.append(ns['f'].__doc__)\nprint(json.dumps(out))\n")
    run = subprocess.run([python, "-c", script], input=json.dumps(samples), text=True,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    want = json.loads(run.stdout)
    assert [compiled_docstring(s) for s in samples] == want


def _documented(x: "f32[n]") -> "f32[n]":
    """Doubles.

        Indented more.
    """
    return x * 2.0


def test_the_front_end_reports_the_running_pythons_docstring() -> None:
    fn = gtdsl.parse_function(_documented)
    assert fn.docstring == _documented.__doc__
    kept = "\n        Indented more." if sys.version_info < (3, 13) else "\nIndented more."
    assert kept in fn.docstring
