"""The ``gtdsl`` command line: check, explain, --version.

Exit status: 0 success, 1 the program has errors, 2 bad usage or unreadable input, 3 an
internal error in gtdsl (GT9001), 130 interrupted. Every failure is a diagnostic; no Python
traceback reaches the user (an internal error's only under ``GTDSL_LOG=debug``).
"""

from gtdsl.cli.main import main

__all__ = ["main"]
