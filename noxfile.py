"""The test matrix (issue #22): every Python the package accepts x the oldest and the newest
torch that has wheels for it.

    nox -s "tests-3.13(torch='newest')"      # one cell
    nox -s tests                              # every cell (each installs its own torch)
    nox -s tests -- tests/unit/syntax         # arguments after -- go to pytest

Each cell installs torch first (the oldest: the lower bound the package declares; the
newest: whatever pip resolves within the declared range: 2.14.1 on Python 3.10, which torch
2.15 dropped), then the package with its dev extra, then runs the fast lane
(``-m "not slow"``). The pythons come from pyenv on the development machines. The wheels are
CUDA builds from PyPI (several GB per cell): the matrix runs here, not in CI.

The lower bound is torch 2.10, the oldest release on which every test passes. Older ones
were tried (Python 3.10): torch 2.9.1 fails only in ``torch.export`` (the guard function of
an exported program with a derived dim raises NameError: torch's bug); 2.6.0 and 2.4.0 also
in the Triton kernels (Triton 3.2: no f64 ``tl.dot`` in the interpreter, no
``set_allocator``; Triton 3.0 computes nothing with NumPy 2, which gtdsl refuses: GT4004) and
in export; transformers 5 refuses torch before 2.6. Where those releases type ops
differently, the checker follows them (gtdsl.types.torchrules reads each difference from the
installed torch).
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
# the oldest torch the package declares (pyproject.toml), for each Python
OLDEST = {"3.10": "2.10.0", "3.11": "2.10.0", "3.12": "2.10.0", "3.13": "2.10.0"}
# what the oldest torch needs beside it: Triton 3.6's interpreter fails with NumPy 2.4 (GT4004)
OLDEST_WITH = {"2.10.0": ["numpy<2.4"]}
# the declared range, as pyproject.toml states it
TORCH_RANGE = "torch>=2.10,<2.16"

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips


@nox.session(python=PYTHONS)
@nox.parametrize("torch", ["oldest", "newest"])
def tests(session: nox.Session, torch: str) -> None:
    python = str(session.python)
    pins = [f"torch=={OLDEST[python]}", *OLDEST_WITH.get(OLDEST[python], [])] \
        if torch == "oldest" else [TORCH_RANGE]
    session.install("--upgrade", *pins)
    session.install("-e", ".[dev]", *pins)
    session.run("python", "-c", "import sys, torch; print('Python', sys.version.split()[0], "
                "'torch', torch.__version__)")
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
                "--durations=40", *session.posargs)
