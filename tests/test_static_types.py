"""The package type-checks: mypy (configured in pyproject.toml, ``[tool.mypy]``) reports no
error in gtdsl/."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_mypy_finds_no_error_in_the_package() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
