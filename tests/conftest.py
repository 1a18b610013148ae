"""Shared test configuration: the --update-golden flag and hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# Without a CUDA device, Triton kernels run in Triton's interpreter; it must be chosen before
# triton is first imported.
if not os.environ.get("TRITON_INTERPRET"):
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Compiled code and parser tables go to a fresh directory, not the user's cache. The
    tables of torch facts are made there first (under a torch gtdsl ships none for, the first
    check imports torch to make them; the tests that a check does not import torch are about
    a warm cache, and tests/unit/check/test_pyfacts.py covers the cold one)."""
    old = os.environ.get("GTDSL_CACHE_DIR")
    os.environ["GTDSL_CACHE_DIR"] = str(tmp_path_factory.mktemp("gtdsl-cache"))
    from gtdsl.ops import pyfacts
    from gtdsl.types import torchrules

    # (test modules may have read the tables while being collected, before this directory
    # was set: read them again, so that any table made goes to this cache)
    pyfacts._table = None
    torchrules._rules.clear()
    pyfacts.shipped_fact("torch.pi")
    torchrules.rules()
    yield
    if old is None:
        os.environ.pop("GTDSL_CACHE_DIR", None)
    else:
        os.environ["GTDSL_CACHE_DIR"] = old


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the .expected files of golden tests from the current output")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare ``actual`` with the file at ``path``, or rewrite it under --update-golden."""
    if update or not path.exists():
        if not update:
            pytest.fail(f"missing golden file {path.relative_to(REPO)}; run with --update-golden")
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.relative_to(REPO)} differs (rerun with --update-golden)"


def docs_python_example(doc: str, heading: str, tmp_path: Path, name: str) -> Any:
    """The first ```python block after ``heading`` in docs/``doc``, run as a module from a
    file (jitted functions read their source from it); the module."""
    import importlib.util
    import re

    text = (REPO / "docs" / doc).read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / f"{name}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plant_untyped_promotion(monkeypatch: pytest.MonkeyPatch, version: str | None = None) -> None:
    """Rules of a torch that promotes f32 with f64 to a dtype gtdsl has no node for (what a
    torch newer than gtdsl may do: GT2029); ``version`` is the torch version gtdsl then
    reports as installed."""
    from gtdsl import _torchcache
    from gtdsl.types import lattice, torchrules

    r = torchrules.rules()
    promote = dict(r.promote)
    promote["f32", "f64"] = promote["f64", "f32"] = None
    monkeypatch.setattr(torchrules, "_rules", [torchrules.Rules(
        version or r.torch, r.dtypes, promote, r.complex_of, r.probes)])
    for memo in ("_PAIRS", "_COMPLEX_OF", "_RESULT_TYPES"):
        monkeypatch.setattr(lattice, memo, {})
    if version is not None:
        monkeypatch.setattr(_torchcache, "installed_torch_version", lambda: version)
