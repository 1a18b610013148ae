"""The ahead-of-time lane in CI (``python -m benchmarks.aot --subset ci``): without a GPU,
every kernel gtdsl launches for a representative subset compiles at the settings a GPU
launch uses, with no spills and within the target's shared memory: pointwise and row kernels
at a small (128) and a very long (65536) row, an example and a model layer's own kernels for
sm_80 and sm_90; attention forward and backward and every tile of a matrix product with an
epilogue (bf16) for sm_90, with the backward kernels a training step adds (the gradient
products, the backward of each pointwise and row group). The full set (every example, model layer and workload, both
targets) is ``python -m benchmarks.aot --all``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gtdsl.lower.triton.aot import ARCHS
from tests.conftest import REPO

KINDS = ("pointwise", "row", "matmul", "attention")
TARGETS = ("sm_80", "sm_90")


def test_the_ci_subset_compiles_for_sm80_and_sm90_without_spills(tmp_path: Path) -> None:
    out = tmp_path / "aot.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-m", "benchmarks.aot", "--subset", "ci",
                          "--archs", ",".join(TARGETS), "--jobs", "2", "--json", str(out),
                          "--quiet"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=900)
    assert out.exists(), run.stderr
    result = json.loads(out.read_text())
    rows = result["kernels"]
    # what it covers: every kind of kernel for sm_90, pointwise and row for both targets,
    # forward and backward, from every set
    assert {(r["kind"], r["arch"]) for r in rows} >= {(k, "sm_90") for k in KINDS} | {
        (k, t) for k in ("pointwise", "row") for t in TARGETS}
    for kind in KINDS:  # a training step's kernels too: gradient products, backward groups
        assert {r["phase"] for r in rows if r["kind"] == kind} == {"forward", "backward"}, kind
    assert any(r["name"].endswith("_dw_db") for r in rows)  # linear+bias+GELU's weight grad
    assert {r["set"] for r in rows} == {"workloads", "examples", "models"}
    assert result["input_errors"] == []
    units = {r["unit"] for r in rows} | {u["unit"] for u in result["unlaunched"]}
    for name in ("softmax", "layer_norm", "elementwise"):
        for n in (128, 65536):
            assert any(u.startswith(f"workload {name} ") and f"n={n}" in u for u in units), \
                (name, n)
    # a long row either compiles or runs as torch ops, said so; nothing else is left out
    assert all("n=65536" in u["unit"] and u["kind"] == "row" for u in result["unlaunched"])
    # every compile is clean
    bad = [r for r in rows if r.get("error") or r.get("problems")]
    assert not bad, "spills or compile errors:\n" + "\n".join(
        f"{r['arch']} {r['name']} ({r['kind']}, {r['phase']}) {r.get('constexprs')} "
        f"warps={r.get('num_warps')}: {r.get('error') or '; '.join(r['problems'])} "
        f"[{r['unit']}]" for r in bad)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for r in rows:
        assert 0 < r["registers"] <= 255 and r["spill_bytes"] == 0 and r["local_bytes"] == 0, r
        assert r["shared_bytes"] <= ARCHS[r["arch"]][1], r
    s = result["summary"]
    assert s["kernels"] == len(rows) and s["errors"] == s["spills"] == 0
    assert 0 < s["compiles"] <= len(rows)  # each distinct kernel compiled once per target
