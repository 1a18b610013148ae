"""The package runs on the oldest Python it claims (``requires-python`` in pyproject.toml):
its regular expressions use no syntax added later (possessive quantifiers and atomic
groups came in 3.11), so that importing gtdsl cannot fail there."""

from __future__ import annotations

import importlib
import pkgutil
import re

import gtdsl
from tests.conftest import REPO

# `x*+`, `x++`, `x?+`, `x{m,n}+` and `(?>...)`, outside character classes and escapes
_NEWER = re.compile(r"(?<!\\)(?:[*+?}]\+|\(\?>)")


def _without_classes_and_escapes(pattern: str) -> str:
    return re.sub(r"\\.|\[(?:\\.|[^\]\\])*\]", "_", pattern)


def test_oldest_python_claimed_is_310() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'requires-python\s*=\s*">=3\.10"', text), "update _NEWER for it"


def test_regular_expressions_use_no_newer_syntax() -> None:
    found = []
    for info in pkgutil.walk_packages(gtdsl.__path__, "gtdsl."):
        if info.name.startswith(("gtdsl.models", "gtdsl.lower.triton", "gtdsl.runtime")) \
                or info.name.endswith("__main__"):
            continue  # torch or triton (no patterns at import there), or a program
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            pattern = value.pattern if isinstance(value, re.Pattern) else value if (
                isinstance(value, str) and name.isupper() and name.startswith("_")) else None
            if isinstance(pattern, str) and _NEWER.search(
                    _without_classes_and_escapes(pattern)):
                found.append(f"{info.name}.{name}")
    assert not found, found


def test_the_check_catches_what_310_refuses() -> None:
    for newer in (r"[a-z]*+x", r"a++", r"(?>ab)c", r"x{2,3}+"):
        assert _NEWER.search(_without_classes_and_escapes(newer)), newer
    for fine in (r"[*+]", r"\*+", r"a+", r"[?+]x", r"(?:a)+"):
        assert not _NEWER.search(_without_classes_and_escapes(fine)), fine
