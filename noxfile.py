"""The test matrix (issue #22): every Python the package accepts x the oldest and the newest
torch that has wheels for it.

    nox -s "tests-3.13(torch='newest')"      # one cell
    nox -s tests                              # every cell (each installs its own torch)
    nox -s tests -- tests/unit/syntax         # arguments after -- go to pytest

Each cell installs torch first (the oldest: the first release with wheels for that Python;
the newest: whatever pip resolves, so a newer release is tested the day it appears), then
the package with its dev extra, then runs the fast lane (``-m "not slow"``). The pythons come
from pyenv on the development machines. The wheels are CUDA builds from PyPI (several GB per
cell): the matrix runs here, not in CI.
"""

from __future__ import annotations

import glob
import os

import nox

# pyenv's interpreters themselves, first on PATH (its shims answer only for the versions
# pyenv is set to)
for _bin in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin"))):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# the first torch release with wheels for each Python (torch 2.4 has none for 3.13)
OLDEST = {"3.10": "2.4.0", "3.11": "2.4.0", "3.12": "2.4.0", "3.13": "2.5.0"}

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips


@nox.session(python=PYTHONS)
@nox.parametrize("torch", ["oldest", "newest"])
def tests(session: nox.Session, torch: str) -> None:
    python = str(session.python)
    spec = f"torch=={OLDEST[python]}" if torch == "oldest" else "torch"
    session.install("--upgrade", spec)
    session.install("-e", ".[dev]", f"torch=={OLDEST[python]}" if torch == "oldest" else
                    "torch")
    session.run("python", "-c", "import sys, torch; print('Python', sys.version.split()[0], "
                "'torch', torch.__version__)")
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
                *session.posargs)
