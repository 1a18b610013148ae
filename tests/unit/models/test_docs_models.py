"""docs/models.md shows real output: the tiny models of docs/examples/models/tiny_models.py
are built, every command of "Trying it with real text" is run and prints what the page
says, every ``pycon`` example runs as a doctest, and the translations equal transformers'
on the same folder."""

from __future__ import annotations

import doctest
import importlib.util
import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import torch

from gtdsl.cli.main import main
from tests.conftest import REPO

DOC = REPO / "docs" / "models.md"
EXAMPLE = REPO / "docs" / "examples" / "models" / "tiny_models.py"
FOLDERS = {"translator": "t5", "storyteller": "gpt2", "cloze": "bert",
           "sentiment": "sentiment"}


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text.split("## Trying it with real text", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four tiny models, built by the example, under ``BASE/tiny-*``."""
    spec = importlib.util.spec_from_file_location("tiny_models", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = tmp_path_factory.mktemp("docs")
    for builder, name in FOLDERS.items():
        getattr(module, builder)(base / f"tiny-{name}")
    return base


def _commands(section: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the console blocks, with the lines it prints."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def test_the_commands_print_what_the_page_shows(built: Path) -> None:
    commands = _commands(_section())
    assert len(commands) >= 7
    ran = 0
    for command, shown in commands:
        argv = shlex.split(command.replace("/tmp/tiny-", f"{built}/tiny-"))
        if argv[:2] == ["python", str(EXAMPLE.relative_to(REPO))]:
            assert argv[2] in FOLDERS and shown == [command.split()[-1]]  # it prints its path
            assert (built / f"tiny-{FOLDERS[argv[2]]}" / "model.safetensors").is_file()
            continue
        assert argv[0] == "gtdsl"
        out, err = io.StringIO(), io.StringIO()
        assert main(argv[1:], out, err) == 0, (command, err.getvalue())
        assert out.getvalue().splitlines() == shown, command
        ran += 1
    assert ran >= 5


def test_the_translations_equal_transformers(built: Path) -> None:
    """The translator's answers (greedy and beams) equal transformers' ``generate`` on the
    same folder, decoded by the same tokenizer."""
    from tokenizers import Tokenizer
    from transformers import T5ForConditionalGeneration

    folder = built / "tiny-t5"
    hf = T5ForConditionalGeneration.from_pretrained(folder).eval()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    for text in ("translate English to German: Where is the station?",
                 "translate English to French: The house is wonderful.",
                 "translate English to German: I like green tea."):
        ids = torch.tensor([tok.encode(text).ids])
        for beams in (1, 3):
            want = tok.decode(hf.generate(ids, max_new_tokens=40, num_beams=beams)[0].tolist())
            out, err = io.StringIO(), io.StringIO()
            assert main(["generate", str(folder), text, "--max-new-tokens", "40", "--beams",
                         str(beams)], out, err) == 0, err.getvalue()
            assert out.getvalue() == want + "\n"
    assert "Wo ist der Bahnhof?" in out.getvalue() or "Ich mag" in out.getvalue()


def test_the_python_examples_run_as_shown(built: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```pycon\n(.*?)```", _section(), re.S)
    assert len(blocks) >= 2
    parser = doctest.DocTestParser()
    for i, block in enumerate(blocks):
        block = block.replace("/tmp/tiny-minilm", f"{tmp_path}/tiny-minilm")
        block = block.replace("/tmp/tiny-", f"{built}/tiny-")
        test = parser.get_doctest(block, {}, f"models.md[{i}]", str(DOC), 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        failures: list[Any] = []
        runner.run(test, out=failures.append)
        assert runner.failures == 0, "".join(failures)
