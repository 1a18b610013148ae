"""Fuzzing the whole pipeline with mutated real sources: the language examples and the models'
own ``.gt`` files, each mutated a few times (characters and tokens deleted, duplicated or
inserted, numbers changed, lines swapped). Every outcome of `gtdsl check` and of `gtdsl run` on
every function is a result or a gtdsl diagnostic with its exit status (0, 1 or 2): never an
internal error (exit 3), never a Python traceback, and never longer than a time limit."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gtdsl.cli import main
from tests.conftest import REPO

SOURCES = sorted([*(REPO / "docs" / "examples" / "language").glob("*.gt"),
                  *(REPO / "gtdsl" / "models").glob("*.gt")])
TEXTS = {p: p.read_text() for p in SOURCES}  # read once: drawing must not depend on the disk
# pieces a mutation inserts: the language's own tokens, and values that stress its limits
PIECES = ["(", ")", "[", "]", ":", ",", "-", "*", "**", "@", "?", "=", "==", ".", "\n",
          "    ", "\t", "x", "n", "*b", "f32", "i64[", "def ", "return ", "if x:", "for i in ",
          "range(", "import torch\n", "torch.", "math.inf", "0", "9", "1e308", "-1",
          "10 ** 12", "9 ** 9 ** 9", "\u00e9", "\uff4e", "\x00", '"', "#", "...", "None",
          "struct ", "lambda", "assert ", "not ", "and ", "keepdim=True", "dim=", "x.T"]
TIME_LIMIT_S = 60


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Timeout


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Path, str]:
    source = draw(st.sampled_from(SOURCES))
    text = TEXTS[source]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "swap_lines", "digit"]))
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(1, 12)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(PIECES)) + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "swap_lines":
            lines = text.split("\n")
            a, b = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        else:
            digits = [k for k, c in enumerate(text) if c.isdigit()]
            if digits:
                k = draw(st.sampled_from(digits))
                text = text[:k] + draw(st.sampled_from("0123456789")) + text[k + 1:]
    return source, text


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out, err)
    return code, out.getvalue() + err.getvalue()


def _functions(text: str) -> list[str]:
    return [line[4:].split("(")[0].split("[")[0].strip() for line in text.split("\n")
            if line.startswith("def ")][:3]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_sources_end_in_a_result_or_a_diagnostic(case: tuple[Path, str],
                                                         tmp_path_factory) -> None:
    source, text = case
    folder = tmp_path_factory.mktemp("fuzz")
    for sibling in SOURCES:  # imports resolve next to the file
        if sibling.parent == source.parent:
            (folder / sibling.name).write_text(TEXTS[sibling])
    path = folder / source.name
    path.write_text(text)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        code, shown = _run(["check", str(path)])
        assert code in (0, 1), shown
        assert "Traceback" not in shown and "GT9001" not in shown, shown
        if code == 0:
            for fn in _functions(text):
                code, shown = _run(["run", str(path), "--fn", fn, "--backend", "torch"])
                assert code in (0, 1, 2), shown
                assert "Traceback" not in shown and "GT9001" not in shown, shown
    except _Timeout:
        pytest.fail(f"no answer within {TIME_LIMIT_S} s for:\n{text}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
