"""``gtdsl compile FILE --fn NAME --emit cubin --arch sm_80|sm_90``: every kernel a call
launches, compiled ahead of time without a GPU, with registers, spills and shared memory.

Real compiles run in a child process (this test process runs Triton in its interpreter, so
the command runs itself again without ``TRITON_INTERPRET``); the reporting (diagnostics, exit
statuses, --allow-spills) is also checked in-process with the compiler replaced by a stub
that returns chosen results, and ``compile_spec`` itself against kernels that fail to compile
and that must spill (256 fp32 values live per thread)."""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gtdsl.cli.main import main
from gtdsl.lower.triton import aot as lower_aot
from gtdsl.lower.triton.aot import ARCHS, Compiled
from tests.conftest import REPO

LANG = REPO / "docs" / "examples" / "language"
importlib.import_module("triton")  # here, in the interpreter (conftest set it up)
SELECT = "def positive(x: f32[n]):\n    y: f32[k] = masked_select(x, x > 0.0)\n" \
         "    return y * 2.0\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# ====================================================================== real compiles

# One child process, outside Triton's interpreter, runs every real compile of this file:
# the command four times (a row kernel for both targets; a very long row; with the backward
# kernels), then
# ``compile_spec`` on a source Triton rejects, on a kernel holding two blocks of 4096 fp32
# values in one warp (256 per thread, more than its 255 registers), and on the same kernel
# at 128 in four warps.
REAL = """
import io, json, sys
from gtdsl.cli.main import main
from gtdsl.lower.triton.aot import compile_spec
from gtdsl.lower.triton.base import KernelSpec
softmax = sys.argv[1]
runs = []
for arch, n in (("sm_80", 128), ("sm_90", 128), ("sm_90", 65536)):
    out, err = io.StringIO(), io.StringIO()
    code = main(["compile", softmax, "--fn", "softmax", "--emit", "cubin", "--arch", arch,
                 "--size", f"n={n}", "--format", "json"], out, err)
    runs.append([code, out.getvalue(), err.getvalue()])
out, err = io.StringIO(), io.StringIO()
code = main(["compile", softmax, "--fn", "softmax", "--emit", "cubin", "--size", "n=128",
             "--format", "json", "--backward"], out, err)
runs.append([code, out.getvalue(), err.getvalue()])
bad = KernelSpec("k_bad", "@triton.jit\\ndef k_bad(p, BLOCK: tl.constexpr):\\n"
                 "    x = tl.load(p + tl.arange(0, BLOCK))\\n    tl.store(p, undefined_name)\\n",
                 {"p": "*fp32", "BLOCK": "constexpr"}, {"BLOCK": 16}, 4, 1)
src = ("@triton.jit\\ndef k_big(p, q, o, BLOCK: tl.constexpr):\\n"
       "    offs = tl.arange(0, BLOCK)\\n    x = tl.load(p + offs)\\n    y = tl.load(q + offs)\\n"
       "    tl.store(o + offs, x * tl.sum(y, axis=0) + y * tl.max(x, axis=0))\\n")
sig = {"p": "*fp32", "q": "*fp32", "o": "*fp32", "BLOCK": "constexpr"}
big = KernelSpec("k_big", src, sig, {"BLOCK": 4096}, 1, 1)
small = KernelSpec("k_big", src, sig, {"BLOCK": 128}, 4, 1)
specs = [compile_spec(s, "sm_90").as_dict() for s in (bad, big, small)]
print(json.dumps({"runs": runs, "specs": specs}))
"""


@pytest.fixture(scope="module")
def real() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    child = subprocess.run([sys.executable, "-c", REAL, str(LANG / "softmax.gt")],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])


@pytest.mark.parametrize(("i", "arch"), [(0, "sm_80"), (1, "sm_90")])
def test_a_row_kernel_compiles_for_both_targets_without_spills(real: dict, i: int,
                                                               arch: str) -> None:
    code, out, err = real["runs"][i]
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 1
    r = rows[0]
    assert r["kind"] == "row" and r["phase"] == "forward" and r["function"] == "softmax"
    assert r["kernel"] == "row_3" and r["name"].startswith("gtdsl_row_3_")
    assert r["arch"] == arch and r["error"] is None and r["problems"] == []
    assert 0 < r["registers"] <= 255 and r["spill_bytes"] == 0 and r["local_bytes"] == 0
    assert 0 <= r["shared_bytes"] <= ARCHS[arch][1]
    assert r["num_warps"] >= 1 and r["num_stages"] >= 1 and r["compile_s"] > 0
    assert r["constexprs"] and all(isinstance(v, (int, bool)) for v in r["constexprs"].values())
    # a row of 128 is held by a power-of-two block of at least 128
    assert any(v >= 128 for k, v in r["constexprs"].items() if k.startswith("BLOCK"))


def test_backward_adds_the_kernels_a_training_step_compiles(real: dict) -> None:
    code, out, err = real["runs"][3]
    assert code == 0, err
    rows = json.loads(out)
    assert [r["phase"] for r in rows] == ["forward", "backward"]
    fwd, bwd = rows
    assert fwd["kernel"] == bwd["kernel"] == "row_3" and "_bwd" in bwd["name"]
    assert bwd["kind"] == "row" and bwd["problems"] == [] and bwd["spill_bytes"] == 0


def test_a_long_row_either_compiles_or_runs_as_torch_ops(real: dict) -> None:
    code, out, err = real["runs"][2]
    assert code == 0, err
    rows = json.loads(out)
    if rows:  # a looped row kernel
        assert all(r["spill_bytes"] == 0 and r["error"] is None for r in rows)
    else:
        assert "kernel row_3 (row) of `softmax` runs as torch ops for inputs [2, 65536]" in err


def test_compile_spec_reports_failures_and_spills(real: dict) -> None:
    bad, big, small = real["specs"]
    assert bad["error"] and "undefined_name" in bad["error"] and bad["registers"] is None
    assert big["error"] is None and 0 < big["registers"] <= 255
    assert big["spill_bytes"] > 0 and big["stack_bytes"] > 0
    assert big["problems"] and big["problems"][0].startswith("spills registers")
    assert small["error"] is None and small["problems"] == []
    assert 0 < small["registers"] < 255 and small["spill_bytes"] == small["stack_bytes"] == 0


def test_the_command_runs_itself_outside_the_interpreter() -> None:
    """This process runs Triton in its interpreter: the command compiles in a child process
    without TRITON_INTERPRET and relays its output and exit status."""
    assert os.environ.get("TRITON_INTERPRET") == "1"
    code, out, err = run("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", "--emit",
                         "cubin", "--arch", "sm_90", "--size", "d=256")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "# `rms_norm` for sm_90 with d=256, *b=(2): 1 kernel"
    assert lines[2].split()[:3] == [lines[2].split()[0], "row", "forward"]
    assert lines[2].startswith("gtdsl_row_7_")
    assert re.fullmatch(r"1 compiled for sm_90 in [\d.]+ s: 0 over the target's resources, "
                        r"0 failed", lines[-1])
    assert os.environ.get("TRITON_INTERPRET") == "1"


# ====================================================================== the error pages


# ====================================================================== reporting, in-process


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command in this process: TRITON_INTERPRET unset for the call (Triton is already
    imported, so nothing switches modes); compiles are replaced by the test's stub."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


def _stub(monkeypatch: pytest.MonkeyPatch, make: object) -> list:
    seen: list = []

    def fake(spec: object, arch: str) -> Compiled:
        seen.append((spec, arch))
        return make(spec, arch)  # type: ignore[operator]

    monkeypatch.setattr(lower_aot, "compile_spec", fake)
    return seen


def _ok(spec: object, arch: str) -> Compiled:
    s = spec  # a KernelSpec
    return Compiled(s.name, arch, s.num_warps, s.num_stages, dict(s.constexprs), 40, 0, 0, 0,
                    0, 0, 0, 0.1)


def test_every_kernel_of_the_call_tree_is_compiled_once(
        in_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``block`` calls apply_norm twice, linear four times (through self_attention) and
    twice directly: each distinct kernel is compiled once, for the target asked for."""
    seen = _stub(monkeypatch, _ok)
    code, out, err = run("compile", str(LANG / "encoder.gt"), "--fn", "block", "--emit",
                         "cubin", "--arch", "sm_80", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == len(seen) and {a for _, a in seen} == {"sm_80"}
    groups = {(r["function"], r["kernel"], r["kind"]) for r in rows}
    assert {("apply_norm", "row_8", "row"), ("layers.linear", "matmul_6", "matmul"),
            ("block", "pointwise_11", "pointwise")} <= groups
    assert any(k == "attention" for _, _, k in groups)
    keys = [(s.source, tuple(sorted(s.signature.items())), repr(sorted(s.constexprs.items())),
             s.num_warps, s.num_stages) for s, _ in seen]
    assert len(keys) == len(set(keys))
    # the matmul is compiled once per tile its autotuner may pick
    assert len([r for r in rows if r["kind"] == "matmul"]) > 1


def test_spills_and_failures_set_the_exit_status(
        in_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def spilling(spec: object, arch: str) -> Compiled:
        c = _ok(spec, arch)
        c.spill_bytes, c.registers = 96, 255
        c.problems = ["spills registers: 96 bytes of spill stores, 64 bytes of stack frame "
                      "at 255 registers"]
        return c

    _stub(monkeypatch, spilling)
    argv = ("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", "--emit", "cubin",
            "--arch", "sm_90")
    code, out, err = run(*argv)
    assert code == 1
    assert err.startswith("error[GT4002]: kernel gtdsl_row_7")
    assert "exceeds sm_90's registers or shared memory in 1 of its 1 configuration\n" in err
    assert "rms_norm.gt:3:" in err and "96 bytes of spill stores" in err
    assert out.splitlines()[-1].endswith("1 over the target's resources, 0 failed")
    code, out, err = run(*argv, "--allow-spills")
    assert code == 0 and err.startswith("warning[GT4002]")

    def failing(spec: object, arch: str) -> Compiled:
        c = Compiled(spec.name, arch, 4, 1, {})  # type: ignore[attr-defined]
        c.error = "CompilationError: at 3:4: boom"
        return c

    _stub(monkeypatch, failing)
    code, out, err = run(*argv, "--allow-spills")
    assert code == 1
    assert err.startswith("error[GT4001]: kernel gtdsl_row_7")
    assert "does not compile for sm_90: CompilationError: at 3:4: boom" in err
    assert "FAILED: CompilationError" in out and "Traceback" not in err


@pytest.mark.parametrize(("argv", "code", "start"), [
    (["--arch", "sm_70"], 2, "error[GT0911]: `--arch sm_70` is not a target"),
    (["--size", "q=3"], 2, "error[GT0911]: `rms_norm` has no size variable `q`"),
    (["--size", "d"], 2, "error[GT0911]: `--size d` is not NAME=N"),
    (["--size", "d=3", "--size", "d=4"], 2, "error[GT0911]: `--size d` is given twice"),
    (["--backend", "torch"], 2, "error[GT0906]: --backend goes with --emit ir"),
])
def test_bad_arguments_are_diagnostics(in_process: None, monkeypatch: pytest.MonkeyPatch,
                                       argv: list[str], code: int, start: str) -> None:
    seen = _stub(monkeypatch, _ok)
    got, out, err = run("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", "--emit",
                        "cubin", *argv)
    assert (got, out) == (code, "") and err.startswith(start), err
    assert "Traceback" not in err and seen == []


def test_a_missing_function_and_a_missing_triton(in_process: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _stub(monkeypatch, _ok)
    code, out, err = run("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_nrom", "--emit",
                         "cubin")
    assert code == 2 and err.startswith("error[GT0906]: ") and "did you mean `rms_norm`" in err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real(name, *a))
    code, out, err = run("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", "--emit",
                         "cubin")
    assert code == 2 and err.startswith("error[GT4003]: compiling kernels ahead of time "
                                        "needs Triton, which is not installed")


def test_cubin_options_go_with_emit_cubin() -> None:
    for opt in (["--arch", "sm_90"], ["--size", "n=3"], ["--format", "json"],
                ["--allow-spills"]):
        code, out, err = run("compile", str(LANG / "softmax.gt"), "--fn", "softmax",
                             "--emit", "ir", *opt)
        assert code == 2 and err.startswith(f"error[GT0906]: {opt[0]} goes with --emit cubin")


def test_the_table_lists_each_kernel_and_a_summary(
        in_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def big_tiles_spill(spec: object, arch: str) -> Compiled:
        c = _ok(spec, arch)
        if "matmul" in c.name:
            c.spill_bytes, c.registers = 64, 255
            c.problems = ["spills registers: 64 bytes of spill stores, 64 bytes of stack "
                          "frame at 255 registers"]
        return c

    seen = _stub(monkeypatch, big_tiles_spill)
    code, out, err = run("compile", str(LANG / "gated.gt"), "--fn", "gated", "--emit", "cubin",
                         "--arch", "sm_90", "--size", "n=16", "--size", "d=32",
                         "--allow-spills")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"# `gated` for sm_90 with d=32, n=16: {len(seen)} kernels"
    assert lines[1].split()[:6] == ["kernel", "kind", "phase", "warps", "stages", "regs"]
    body = lines[2:-1]
    assert len(body) == len(seen)
    assert [ln.split()[0] for ln in body] == [s.name for s, _ in seen]
    kinds = [ln.split()[1] for ln in body]
    assert "pointwise" in kinds and "matmul" in kinds
    spilled = [ln for ln in body if ln.endswith("SPILLS")]
    big = [s for s, _ in seen if "matmul" in s.name]
    assert len(spilled) == len(big) > 0
    assert re.fullmatch(rf"{len(seen)} compiled for sm_90 in [\d.]+ s: {len(big)} over the "
                        r"target's resources, 0 failed", lines[-1])
    assert err.count("warning[GT4002]") == 1  # one diagnostic per kernel, a note per tile
    assert err.count("  = note: BLOCK_M=") == len(big)
    assert f"in {len(big)} of its {len(big)} configuration" in err


def test_the_gt0911_page_shows_real_output(in_process: None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _stub(monkeypatch, _ok)  # the fix's first line is the plan, whatever the compiles say
    page = (REPO / "docs" / "errors" / "GT0911.md").read_text()
    assert SELECT in page
    (tmp_path / "sel.gt").write_text(SELECT)
    monkeypatch.chdir(tmp_path)
    steps = re.findall(r"^\$ gtdsl (.*)\n((?:(?!\$ |```).*\n)*)", page, re.M)
    assert len(steps) == 3
    for command, expected in steps:
        code, out, err = run(*command.split())
        if expected.strip().endswith("..."):  # the fix: its first line
            assert code == 0, err
            assert out.splitlines()[0] == expected.splitlines()[0]
        else:
            assert code == 2 and out == ""
            assert err.strip() == expected.strip()


def test_a_launcher_that_cannot_plan_is_a_gt4001(in_process: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gtdsl.lower.triton.rows import GroupLauncher

    def broken(self: object, *ins: object, **kw: object) -> list:
        raise RuntimeError("no plan for these inputs")

    seen = _stub(monkeypatch, _ok)
    monkeypatch.setattr(GroupLauncher, "specs", broken)
    code, out, err = run("compile", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", "--emit",
                         "cubin", "--arch", "sm_80")
    assert code == 1 and seen == []
    assert err.startswith("error[GT4001]: kernel gtdsl_row_7 (row, forward) of `rms_norm` "
                          "does not compile for sm_80: its launcher could not plan the "
                          "launch: RuntimeError: no plan for these inputs")
    assert "Traceback" not in err
