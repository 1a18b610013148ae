"""What gtdsl knows of the installed torch and Triton follows them (issue #22): the static
rules are the installed torch's, and a Triton interpreter that computes wrong numbers is
refused, not used."""

from __future__ import annotations

import pytest
import torch

from gtdsl.diagnostics.diagnostic import GtdslError
from gtdsl.lower.triton import base


def test_a_working_interpreter_passes_its_check(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(base, "_checked", [])
    base.check_interpreter()
    assert base._checked == ["ok"]


def test_an_interpreter_that_stores_nothing_is_refused(monkeypatch) -> None:
    """Triton 3.0's interpreter with NumPy 2 runs a kernel and stores nothing: the check
    runs a real kernel; here one whose store is masked off everywhere behaves the same."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(base, "_checked", [])
    monkeypatch.setattr(base, "_SELF_CHECK", base._SELF_CHECK.replace(
        "mask = offs < n", "mask = offs < 0"))
    with pytest.raises(GtdslError) as err:
        base.check_interpreter()
    d = err.value.diagnostic
    assert d.code == "GT4004" and "stored [nan, nan, nan, nan, nan]" in d.message
    assert d.location and "numpy" in (d.help or "").lower()
    assert base._checked == []  # checked again next time, never taken as passed



def test_the_declared_torch_range_is_the_tested_one() -> None:
    """pyproject.toml declares the range the matrix (noxfile.py) runs: its lower bound is the
    oldest cells' torch, and the newest cells install within the same range."""
    import ast
    import re

    from tests.conftest import REPO

    declared = re.search(r'"(torch>=[^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    tree = ast.parse((REPO / "noxfile.py").read_text())
    consts = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and t.id.isupper()}
    assert consts["TORCH_RANGE"] == declared
    low = re.match(r"torch>=([0-9.]+)", declared).group(1)
    oldest = consts["OLDEST"]
    assert set(oldest) == set(consts["PYTHONS"]) == {"3.10", "3.11", "3.12", "3.13"}
    assert min(oldest.values(), key=lambda v: tuple(map(int, v.split(".")))).startswith(low)


def test_the_rules_in_use_are_the_installed_torchs() -> None:
    """Whatever the torch, the rules the checker uses are that torch's (shipped, cached or
    made), and promotion reads them: every pair of dtypes it has, against torch itself."""
    from gtdsl.types import torchrules
    from gtdsl.types.lattice import DT, Priority, result_type_concrete, torch_dtypes

    fresh = torchrules.generate()
    r = torchrules.rules()
    assert r.dtypes == tuple(fresh["dtypes"]) and r.probes == fresh["probes"]
    assert r.complex_of == fresh["complex_of"]
    by_name = {d.value: d for d in torch_dtypes()}
    assert set(by_name) == set(fresh["dtypes"])
    for a in torch_dtypes():
        for b in torch_dtypes():
            want = torch.promote_types(getattr(torch, torchrules.TORCH_NAMES[a.value]),
                                       getattr(torch, torchrules.TORCH_NAMES[b.value]))
            got = result_type_concrete([(a, Priority.TENSOR), (b, Priority.TENSOR)])
            assert getattr(torch, torchrules.TORCH_NAMES[got.value]) == want, (a, b)
    assert (DT.BC32 in torch_dtypes()) == hasattr(torch, "bcomplex32")


def test_a_checked_signature_promotes_as_the_installed_torch() -> None:
    """bf16 beside a complex 0-dim tensor: c64 up to torch 2.13, bc32 from 2.14."""
    import gtdsl
    from gtdsl.ops.calls import DT_TORCH

    m = gtdsl.load_source("def rotate(x: bf16[n], z: c64[]):\n    return x * z\n")
    want = torch.result_type(torch.empty(2, dtype=torch.bfloat16, device="meta"),
                             torch.empty((), dtype=torch.complex64, device="meta"))
    name = next(d.value for d, t in DT_TORCH.items() if t == want)
    assert str(m.rotate.signature).endswith(f"-> {name}[n]")


def test_shipped_tables_are_read_without_hashing() -> None:
    """Under the torch release the tables were shipped for, reading both costs no hashlib
    import (the cache key is computed only when a cache entry is looked up); under another
    release the tables come from the cache or are made."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import json, sys\n"
            "from gtdsl.types.torchrules import rules\n"
            "from gtdsl.ops.pyfacts import shipped_fact\n"
            "from gtdsl._torchcache import SOURCES\n"
            "rules(); shipped_fact('torch.matmul')\n"
            "print(json.dumps({'sources': SOURCES, 'hashlib': 'hashlib' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300, check=True)
    got = json.loads(out.stdout.splitlines()[-1])
    assert set(got["sources"]) == {"rules", "names"}
    if set(got["sources"].values()) == {"shipped"}:
        assert not got["hashlib"]
    else:  # another release: its tables are keyed, so hashed
        assert got["hashlib"] and set(got["sources"].values()) <= {"cache", "made"}


@pytest.fixture
def f32_f64_untyped(monkeypatch):
    """The rules of a torch that promotes f32 with f64 to a dtype gtdsl has no node for."""
    from tests.conftest import plant_untyped_promotion

    plant_untyped_promotion(monkeypatch)


def test_a_promotion_to_a_dtype_gtdsl_lacks_is_a_diagnostic(f32_f64_untyped, tmp_path,
                                                            capsys) -> None:
    """A torch outside the supported range may promote to a dtype gtdsl has no node for
    (as 2.14's bcomplex32 once did): a concrete promotion is GT2029 at the op, where an
    unknown dtype leaves the result unknown, and the command line says the same."""
    import gtdsl
    from gtdsl.cli.main import main

    src = "def mix(x: f32[n], y: f64[n]):\n    return x + y\n"
    with pytest.raises(GtdslError) as info:
        gtdsl.load_source(src, "mix.gt")
    d = info.value.diagnostic
    assert d.code == "GT2029" and "promote_types(f32, f64)" in d.message
    assert d.primary is not None and d.primary.span.line == 2
    # float[n] is f16, bf16, f32 or f64: one of them has no gtdsl dtype with f32
    m = gtdsl.load_source("def loose(x: f32[n], y: float[n]):\n    return x + y\n", "loose.gt")
    assert str(m.loose.signature).endswith("-> Tensor[n]"), m.loose.signature
    # dtypes known, ranks not (a 0-dim f64 would not win over f32): unknown too
    m = gtdsl.load_source("def ranks(x: f32, y: f64):\n    return x + y\n", "ranks.gt")
    assert str(m.ranks.signature).endswith("-> Tensor"), m.ranks.signature
    path = tmp_path / "mix.gt"
    path.write_text(src)
    assert main(["check", str(path)]) == 1
    assert "error[GT2029]" in capsys.readouterr().err
