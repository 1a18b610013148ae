"""The facts about allowlisted torch names in use (shipped in ``gtdsl/ops/torch_names.json`` for
the pinned torch, else made from the installed torch and cached) are what the installed torch
says, and checking a file that names one does not import torch on a warm cache."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from gtdsl._torchcache import cache_name, same_release, versioned_table
from gtdsl.ops import pyfacts
from gtdsl.ops.pyallow import PYTHON_NAMES, Allowlist
from gtdsl.types import torchrules
from tests.conftest import REPO


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def test_the_table_in_use_is_what_the_installed_torch_says() -> None:
    """Shipped (the pinned torch), cached or made: the facts in use are the installed
    torch's, for every name the allowlist has."""
    in_use = versioned_table("names", pyfacts.TABLE, pyfacts.FORMAT, pyfacts.generate,
                             pyfacts._valid)
    fresh = json.loads(pyfacts.dumps(pyfacts.generate()))  # as written: inf, nan round-trip
    assert in_use is not None and same_release(in_use["torch"], fresh["torch"])
    in_use.pop("key", None)  # (a cached table records what it was made for)
    in_use["torch"] = fresh["torch"]  # a build of the release (+cpu, +cu130): the same facts
    assert pyfacts.dumps(in_use) == pyfacts.dumps(fresh), (
        "the shipped table is stale: regenerate it with python -m gtdsl.ops.pyfacts")
    assert set(in_use["names"]) == {n for n in PYTHON_NAMES if n.startswith("torch.")}


def test_the_shipped_table_is_the_pinned_torchs() -> None:
    """The package ships the facts of the torch the README and CI pin."""
    pinned = re.search(r"torch==([0-9.]+)", (REPO / ".ci" / "run").read_text()).group(1)
    for table in (pyfacts.TABLE, torchrules.TABLE):
        assert json.loads(table.read_text("utf-8"))["torch"].split("+")[0] == pinned, table


def test_the_version_is_read_without_torch() -> None:
    code = ("import json, sys\n"
            "from gtdsl._torchcache import installed_torch_version\n"
            "v = installed_torch_version()\n"
            "print(json.dumps({'v': v, 'torch': 'torch' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    import torch

    assert got == {"v": torch.__version__, "torch": False}


@pytest.mark.parametrize("path", sorted(n for n in PYTHON_NAMES if n.startswith("torch.")))
def test_each_fact_in_use_matches_the_object(path: str) -> None:
    fact = pyfacts.shipped_fact(path)
    assert fact is not None, "no table describes the installed torch"
    live = pyfacts.live_fact(Allowlist().resolve, path)
    assert (fact.error, fact.is_callable, fact.params) == \
        (live.error, live.is_callable, live.params)
    assert _same(fact.value, live.value)


def _another_torchs_table(tmp_path, monkeypatch) -> None:
    """Ship tables made for a torch that is not installed (version 0.0.1), with made-up facts,
    and an empty cache."""
    for module in (pyfacts, torchrules):
        data = json.loads(module.TABLE.read_text("utf-8"))
        data["torch"] = "0.0.1"
        if module is pyfacts:
            data["names"]["torch.nn.functional.gelu"] = {"error": "made up"}
        else:
            data["probes"] = {k: not v for k, v in data["probes"].items()}
        other = tmp_path / module.TABLE.name
        other.write_text(json.dumps(data))
        monkeypatch.setattr(module, "TABLE", other)
    monkeypatch.setattr(pyfacts, "_table", None)
    monkeypatch.setattr(torchrules, "_rules", [])
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path / "cache"))


def test_a_table_for_another_torch_is_made_from_the_installed_one(tmp_path, monkeypatch) -> None:
    _another_torchs_table(tmp_path, monkeypatch)
    fact = pyfacts.shipped_fact("torch.nn.functional.gelu")
    assert fact is not None and fact.error is None and fact.is_callable  # torch's, not made up
    assert torchrules.rules().probes == torchrules.generate()["probes"]
    import torch

    cached = sorted(p.name for p in (tmp_path / "cache" / "torch").iterdir())
    prefix = [cache_name(kind, torch.__version__)[:-len(".json")] for kind in ("names", "rules")]
    assert len(cached) == 2 and all(n.startswith(p) for n, p in zip(cached, prefix)), cached
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "cache" / "torch").iterdir())


_RUN_CHECK = """\
import io, json, sys
from pathlib import Path
from gtdsl.ops import pyfacts
from gtdsl.types import torchrules
pyfacts.TABLE = Path({names!r})
torchrules.TABLE = Path({rules!r})
from gtdsl.cli.main import main
out, err = io.StringIO(), io.StringIO()
code = main(['check', {src!r}], out, err)
from gtdsl._torchcache import SOURCES
print(json.dumps({{'code': code, 'err': err.getvalue(), 'torch': 'torch' in sys.modules,
                  'sources': SOURCES}}))
"""


def test_a_warm_cache_checks_without_torch(tmp_path, monkeypatch) -> None:
    """Under a torch the shipped tables do not describe, the first check makes the tables
    (importing torch) and the next reads them from the cache without importing torch; a
    corrupted or foreign cache entry is made again, never trusted."""
    _another_torchs_table(tmp_path, monkeypatch)
    src = tmp_path / "uses_torch.gt"
    src.write_text(SOURCE)
    code = _RUN_CHECK.format(names=str(pyfacts.TABLE), rules=str(torchrules.TABLE), src=str(src))

    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["code"] == 1 and got["err"].count("error[") == 1, got["err"]
        assert "GT1012" in got["err"] and "max_norm" in got["err"]
        return got

    first = run()
    assert first["torch"] and first["sources"] == {"names": "made", "rules": "made"}
    second = run()
    assert not second["torch"], "torch was imported on a warm cache"
    assert second["sources"] == {"names": "cache", "rules": "cache"}
    import torch

    folder = tmp_path / "cache" / "torch"
    entry, = folder.glob(cache_name("names", torch.__version__)[:-len(".json")] + "*.json")
    entry.write_text("{not json")
    assert run()["sources"]["names"] == "made"
    data = json.loads(entry.read_text())
    data["names"]["torch.nn.functional.gelu"] = {"error": "planted"}
    data["torch"] = "0.0.2"  # made for another torch: not this version's entry
    entry.write_text(json.dumps(data))
    assert run()["sources"]["names"] == "made"
    entry.chmod(0o666)  # writable by others: not trusted
    assert run()["sources"]["names"] == "made"
    data = json.loads(entry.read_text())
    data["key"] = "0" * 64  # made by a gtdsl with other names: not this one's
    entry.write_text(json.dumps(data))
    assert run()["sources"]["names"] == "made"


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
