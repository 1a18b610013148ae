"""The ahead-of-time lane (``python -m benchmarks.aot``) on a representative subset: a fused
pointwise kernel and a row kernel (softmax) compile for sm_80 and sm_90 without a GPU, at the
launch settings a GPU uses, with no stack frame (no spills)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SUBSET = ["gelu(x * y + 1.0)|x: f32[m, n], y: f32[n]", "softmax(x, -1)|x: f32[b, m, n]"]


def test_pointwise_and_row_kernels_compile_for_sm80_and_sm90_without_spills(
        tmp_path: Path) -> None:
    out = tmp_path / "aot.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-m", "benchmarks.aot", "--json", str(out),
                          "--max-row-block", "1024", *(f"--case={c}" for c in SUBSET)],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())
    assert {(r["kind"], r["target"]) for r in rows} == {
        (k, t) for k in ("pointwise", "row") for t in ("sm_80", "sm_90")}
    assert any(r["kind"] == "row" and r["BLOCK_N"] == 1024 for r in rows)
    for r in rows:
        assert "error" not in r, r
        assert 0 < r["registers"] <= 255 and not r["spills"], r
