"""Configuration read from the environment, in one place.

A leaf module: imports nothing from gtdsl.

- ``GTDSL_CACHE_DIR``: the directory for gtdsl's on-disk caches (default:
  ``$XDG_CACHE_HOME/gtdsl``, else ``~/.cache/gtdsl``). Where the parser tables shipped with
  gtdsl do not fit the installed Lark, gtdsl keeps the ones it builds (data, never code) in a
  private subdirectory of it (``parser/``, mode 0700) and reads back only what passes the
  private-file rules of ``gtdsl._resources``; the directory itself may be shared.
- ``GTDSL_LOG``: comma-separated log topics; ``recompiles`` says why each compile after the
  first happened (to standard error); ``debug`` adds the Python traceback to a `gtdsl`
  command's internal-error report (GT9001).
"""

from __future__ import annotations

import os
from pathlib import Path

from gtdsl._records import record


@record
class Config:
    cache_dir: Path
    log: frozenset[str] = frozenset()


def load_config(environ: dict[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    if env.get("GTDSL_CACHE_DIR"):
        cache = Path(env["GTDSL_CACHE_DIR"]).expanduser()
    else:
        base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        cache = Path(base) / "gtdsl"
    log = frozenset(t.strip() for t in env.get("GTDSL_LOG", "").split(",") if t.strip())
    return Config(cache_dir=cache, log=log)
