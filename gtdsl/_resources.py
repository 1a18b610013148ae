"""Files that live outside the package in a checkout and inside it in a wheel.

``grammar/``, ``kernels/`` and ``docs/errors/`` sit at the top of the repository; the wheel
carries them as ``gtdsl/_data/grammar``, ``gtdsl/_data/kernels`` and ``gtdsl/_data/errors``. A leaf module: imports nothing
from gtdsl, so every stage may use it.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

_CHECKOUT_DIRS = {"grammar": ("grammar",), "errors": ("docs", "errors"), "kernels": ("kernels",)}


def checkout_root() -> Path:
    return Path(__file__).resolve().parents[1]


def data_path(kind: str, name: str) -> Traversable | None:
    """The packaged copy if this is an installed wheel, else the checkout's, else None."""
    packaged = resources.files("gtdsl") / "_data" / kind / name
    if packaged.is_file():
        return packaged
    local = checkout_root().joinpath(*_CHECKOUT_DIRS[kind], name)
    return local if local.is_file() else None
