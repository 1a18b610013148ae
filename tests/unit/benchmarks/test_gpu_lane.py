"""The GPU lane (``benchmarks/gpu_lane.sh``, ``python -m benchmarks --gpu-lane``) rehearsed on
the CPU: the same steps in Triton's interpreter at tiny sizes write the same files (the
environment, the gpu tests' report and counts, the benchmark rows checked against eager torch,
the lane's summary); and a missing dependency is named with how to install it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from benchmarks import gpu_lane
from tests.conftest import REPO

ONLY = ("softmax", "linear_gelu")


def test_the_rehearsal_runs_every_step_and_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "lane"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # the lane runs `python`: this interpreter's, activated or not
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    run = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_lane.sh"), "--rehearse",
                          "--out", str(out), *(f"--only={w}" for w in ONLY)],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert {p.name for p in out.iterdir()} >= {
        "environment.json", "pytest.txt", "pytest.xml", "pytest-summary.json", "results.json",
        "metrics.json", "params.yaml", "bench.txt", "lane.json", "lane.txt"}
    environment = json.loads((out / "environment.json").read_text())
    import lark
    import torch
    import triton

    assert environment["rehearsal"] is True
    assert (environment["torch"], environment["triton"], environment["lark"]) == (
        torch.__version__, triton.__version__, lark.__version__)
    # the gpu tests: collected and, without a GPU, skipped; the counts are the report's
    tests = json.loads((out / "pytest-summary.json").read_text())
    assert tests["returncode"] == 0 and tests["ok"] is True
    assert tests["counts"]["tests"] == tests["counts"]["skipped"] > 0
    assert f"{tests['counts']['skipped']} skipped" in (out / "pytest.txt").read_text()
    assert "tests/gpu" in tests["command"] and "-m gpu" in tests["command"]
    # the benchmark rows: each workload asked for, at one tiny size, in Triton's interpreter,
    # its result checked against eager torch
    results = json.loads((out / "results.json").read_text())
    assert [w["name"] for w in results["workloads"]] == list(ONLY)
    assert results["tiny"] is True and results["backend"] == "triton"
    for w in results["workloads"]:
        assert w["dtype"] == "f32" and len(w["rows"]) == 1
        row = w["rows"][0]
        assert max(row["sizes"].values()) <= 32
        assert row["gtdsl_error"] <= 1e-4 and row["gtdsl_s"] > 0 and row["eager_s"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(ONLY)
    assert "tiny: true" in (out / "params.yaml").read_text()
    bench = (out / "bench.txt").read_text()
    assert all(f"--only {w}" in bench for w in ONLY) and "--backend triton" in bench
    lane = json.loads((out / "lane.json").read_text())
    assert lane["ok"] is True and lane["rehearsal"] is True
    assert [s["workload"] for s in lane["bench"]["workloads"]] == list(ONLY)
    summary = (out / "lane.txt").read_text()
    assert summary.startswith("GPU lane (rehearsal): passed")
    assert summary in run.stdout + "\n"


def test_a_missing_dependency_is_named_with_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lark", None)  # find_spec sees no lark
    err = io.StringIO()
    with redirect_stderr(err):
        code = gpu_lane.main(["--rehearse", "--out", "/nonexistent/never-written"])
    assert code == 2
    text = err.getvalue()
    assert text.startswith("The GPU lane cannot run; missing:")
    assert "- lark: not installed (gtdsl's parser)" in text
    assert "pip install --no-index --find-links" in text and "lark" in text
    assert not Path("/nonexistent/never-written").exists()


def test_without_cuda_the_real_lane_stops_before_running_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    missing = gpu_lane.check_dependencies(rehearse=False)
    assert [m.name for m in missing] == ["torch with CUDA"]
    assert "CUDA" in missing[0].how and "--rehearse" in missing[0].how
    assert gpu_lane.check_dependencies(rehearse=True) == []
