"""The ``gtdsl`` command line: check, explain, --version.

Exit status: 0 success, 1 the program has errors, 2 bad usage or unreadable input.
Every failure is a diagnostic; no Python traceback reaches the user.
"""

from gtdsl.cli.main import main

__all__ = ["main"]
