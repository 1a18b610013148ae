"""Golden runtime errors: each ``runtime/*.gt`` file's first line says the arguments
(``# args: x=f32[2, 3]; heads=3``, tensors drawn from those types); calling the file's last
function with them raises a ``CastError`` rendered exactly as the sibling ``.expected`` file.
The compiled backend and the reference interpreter give the same text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.cli.run import _number, _parse_type
from gtdsl.runtime.errors import CALLER
from gtdsl.runtime.inputs import Sampler
from tests.conftest import check_golden

HERE = Path(__file__).parent / "runtime"
CASES = sorted(HERE.glob("*.gt"))


def _args(path: Path) -> dict[str, object]:
    head = path.read_text().splitlines()[0]
    assert head.startswith("# args: "), path.name
    s = Sampler({}, {}, torch.Generator().manual_seed(0))
    out: dict[str, object] = {}
    for part in head[len("# args: "):].split(";"):
        name, _, text = part.strip().partition("=")
        n = _number(text)
        out[name] = n if n is not None else s.value(_parse_type(text))
    return out


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_runtime_error_is_rendered(path: Path, backend: str, update_golden: bool) -> None:
    module = gtdsl.load(path, backend=backend)
    fn = list(module.functions.values())[-1]
    token = CALLER.set("caller.py:1")
    try:
        with pytest.raises(gtdsl.CastError) as err:
            fn(**_args(path))
    finally:
        CALLER.reset(token)
    text = str(err.value).replace(str(path), path.name)
    assert isinstance(err.value, TypeError)
    check_golden(path.with_suffix(".expected"), text, update_golden and backend == "torch")
