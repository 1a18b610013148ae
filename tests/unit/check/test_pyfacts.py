"""The shipped facts about allowlisted torch names (``gtdsl/ops/torch_names.json``) are what the
installed torch says, and checking a file that names one does not import torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from gtdsl.ops import pyfacts
from gtdsl.ops.pyallow import PYTHON_NAMES, Allowlist
from tests.conftest import REPO


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def test_the_table_is_what_the_installed_torch_says() -> None:
    shipped = json.loads(pyfacts.TABLE.read_text("utf-8"))
    fresh = json.loads(pyfacts.dumps(pyfacts.generate()))  # as written: inf, nan round-trip
    assert pyfacts.same_release(shipped["torch"], fresh["torch"]), (
        "the table was made for another torch: regenerate it with python -m gtdsl.ops.pyfacts")
    shipped["torch"] = fresh["torch"]  # a build of the release (+cpu, +cu130): the same facts
    assert pyfacts.dumps(shipped) == pyfacts.dumps(fresh), (
        "the table is stale: regenerate it with python -m gtdsl.ops.pyfacts")
    assert set(shipped["names"]) == {n for n in PYTHON_NAMES if n.startswith("torch.")}


def test_the_version_is_read_without_torch() -> None:
    code = ("import json, sys\n"
            "from gtdsl.ops.pyfacts import installed_torch_version\n"
            "v = installed_torch_version()\n"
            "print(json.dumps({'v': v, 'torch': 'torch' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    assert got == {"v": torch.__version__, "torch": False}


@pytest.mark.parametrize("path", sorted(n for n in PYTHON_NAMES if n.startswith("torch.")))
def test_each_shipped_fact_matches_the_object(path: str) -> None:
    shipped = pyfacts.shipped_fact(path)
    assert shipped is not None, "the table does not describe the installed torch"
    live = pyfacts.live_fact(Allowlist().resolve, path)
    assert (shipped.error, shipped.is_callable, shipped.params) == \
        (live.error, live.is_callable, live.params)
    assert _same(shipped.value, live.value)


def test_a_table_for_another_torch_is_not_used(tmp_path, monkeypatch) -> None:
    data = json.loads(pyfacts.TABLE.read_text("utf-8"))
    data["torch"] = "0.0.1"
    data["names"]["torch.nn.functional.gelu"] = {"error": "made up"}
    other = tmp_path / "torch_names.json"
    other.write_text(json.dumps(data))
    monkeypatch.setattr(pyfacts, "TABLE", other)
    monkeypatch.setattr(pyfacts, "_table", None)
    assert pyfacts.shipped_fact("torch.nn.functional.gelu") is None
    assert Allowlist().fact("torch.nn.functional.gelu").is_callable  # from torch itself


SOURCE = """\
import torch
from torch.nn.functional import gelu, embedding

def f(x: f32[n, d], w: f32[v, d], i: i64[n]) -> f32[n, d]:
    return gelu(x) * torch.pi + embedding(i, w)

def g(x: f32[n, d], w: f32[v, d], i: i64[n]) -> ?:
    return embedding(i, w, max_norm=1.0)
"""


def test_checking_a_file_naming_torch_functions_does_not_import_torch(tmp_path) -> None:
    src = tmp_path / "uses_torch.gt"
    src.write_text(SOURCE)
    code = ("import io, json, sys\n"
            "from gtdsl.cli.main import main\n"
            "out, err = io.StringIO(), io.StringIO()\n"
            f"code = main(['check', {str(src)!r}], out, err)\n"
            "print(json.dumps({'code': code, 'out': out.getvalue(), 'err': err.getvalue(),\n"
            "                  'torch': 'torch' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not got["torch"], "torch was imported"
    # the same diagnostics as with torch's own answers: only g's max_norm= is refused
    assert got["code"] == 1 and got["err"].count("error[") == 1, got["err"]
    assert "GT1012" in got["err"] and "max_norm" in got["err"]
