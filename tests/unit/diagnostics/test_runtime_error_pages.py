"""Each run-time error page (GT3xxx, GT5001, GT0908) shows real output: every ``text`` block
line ``$ gtdsl ...``, ``$ python SCRIPT.py`` or ``$ python -c '...'`` is run in a fresh
directory holding the files the page names (a line `` `x.gt`: `` or `` `x.py`: ``, a blank
line, then the file's block, as in test_error_pages.py), in the page's order, and prints exactly
the text that follows it (modulo trailing whitespace).

``gtdsl`` commands run in-process through ``gtdsl.cli.main.main`` (``gtdsl run`` draws its
random inputs from a fixed seed, so its values are the same on every run); scripts run as
``python SCRIPT.py`` in a subprocess. A script's ``called from`` names its full path, so the
pages show scripts run in ``/tmp/proj`` and the test writes that in place of its own directory.

``pytest --update-golden`` rewrites the pages' outputs from the current code.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gtdsl.cli.main import main
from tests.conftest import REPO

CODES = ("GT3001", "GT3002", "GT3003", "GT3004", "GT3005", "GT5001", "GT0908")
PAGES = [REPO / "docs" / "errors" / f"{code}.md" for code in CODES]
# test_error_pages.BLOCK, with Python scripts named too
BLOCK = re.compile(
    r"(?:`(?P<name>[\w/]+\.(?:gt|py))`:\s*\n\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
SCRIPT_DIR = "/tmp/proj"  # where the pages' scripts are shown running


@dataclass
class Step:
    kind: str  # "file" or "run"
    name: str  # the file's name, or the command line (without `$ `)
    text: str  # the file's text, or the expected output
    span: tuple[int, int] = (0, 0)  # where the expected output is in the page


def _steps(page: str) -> list[Step]:
    steps: list[Step] = []
    for m in BLOCK.finditer(page):
        lang, body = m.group("lang"), m.group("body")
        if m.group("name"):
            steps.append(Step("file", m.group("name"), body))
        elif lang == "text" and body.startswith("$ "):
            start = m.start("body")
            # each `$ ` line and the output up to the next one
            for seg in re.finditer(r"^\$ (?P<cmd>.*)\n(?P<out>(?:(?!\$ ).*\n)*)", body, re.M):
                steps.append(Step("run", seg.group("cmd"), seg.group("out"),
                                  (start + seg.start("out"), start + seg.end("out"))))
    return steps


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def _run(command: str, cwd: Path) -> tuple[str, int]:
    """What ``command`` prints (stdout and stderr together) in ``cwd``, and its exit status."""
    argv = shlex.split(command)
    out = io.StringIO()
    if argv[0] == "gtdsl":
        code = main(argv[1:], out, out)
        return out.getvalue(), code
    if argv[:2] == ["python", "-c"] and len(argv) == 3:
        with torch.random.fork_rng(devices=[]), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out):
            exec(compile(argv[2], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102
        return out.getvalue(), 0
    if argv[0] == "python" and len(argv) == 2 and argv[1].endswith(".py"):
        done = subprocess.run([sys.executable, argv[1]], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        text = done.stdout
        for d in {str(cwd), str(cwd.resolve())}:
            text = text.replace(d + "/", SCRIPT_DIR + "/")
        return text, done.returncode
    raise AssertionError(f"cannot check the example `$ {command}`: only `gtdsl ...`, "
                         "`python SCRIPT.py` and `python -c '...'` are run")


def _status(command: str, output: str) -> int:
    """The exit status expected of a command printing ``output``: a script (which catches
    what it reports) 0; `gtdsl` 2 for a usage error (GT09xx), 1 for another error, else 0."""
    if command.startswith("python") or "error[" not in output:
        return 0
    return 2 if "error[GT09" in output else 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_runtime_error_page_outputs_are_real(page: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             update_golden: bool) -> None:
    text = page.read_text(encoding="utf-8")
    steps = _steps(text)
    runs = [s for s in steps if s.kind == "run"]
    assert runs, f"{page.name}: no example to run"
    monkeypatch.chdir(tmp_path)
    failures, replacements = [], []
    for step in steps:
        if step.kind == "file":
            (tmp_path / step.name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / step.name).write_text(step.text, encoding="utf-8")
            continue
        got, status = _run(step.name, tmp_path)
        actual, expected = _normal(got), _normal(step.text)
        replacements.append((step.span, actual + "\n" if actual else ""))
        if actual != expected:
            failures.append(f"$ {step.name}\n--- the page shows:\n{expected}\n"
                            f"--- it prints:\n{actual}")
        assert status == _status(step.name, actual), f"$ {step.name}: exit status {status}"
    if update_golden and failures:
        for (start, end), new in sorted(replacements, reverse=True):
            text = text[:start] + new + text[end:]
        page.write_text(text, encoding="utf-8")
        return
    assert not failures, f"{page.name}:\n\n" + "\n\n".join(failures)
    assert any(f"error[{page.stem}]" in s.text for s in runs), \
        f"{page.name}: no example shows error[{page.stem}]"
