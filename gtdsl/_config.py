"""Configuration read from the environment, in one place.

A leaf module: imports nothing from gtdsl. ``GTDSL_CACHE_DIR`` names the directory for
gtdsl's caches (default: ``$XDG_CACHE_HOME/gtdsl``, else ``~/.cache/gtdsl``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Config:
    cache_dir: Path


def load_config(environ: dict[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    if env.get("GTDSL_CACHE_DIR"):
        cache = Path(env["GTDSL_CACHE_DIR"]).expanduser()
    else:
        base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        cache = Path(base) / "gtdsl"
    return Config(cache_dir=cache)
