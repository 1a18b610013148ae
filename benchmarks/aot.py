"""Ahead-of-time compiles of every Triton kernel gtdsl generates, for named GPU targets, without
a GPU: registers and spills as ``cuobjdump -res-usage`` reports them.

The kernels are those the interpreter lane generates for its cases (``tests/differential/
test_triton.py``: every op with a Triton lowering, the fused groups, matmul and attention).
Each is captured at its first launch in Triton's interpreter, with the types of its arguments,
then compiled by ``triton.compile`` for each target with the launch settings a GPU uses:
pointwise blocks of 1024, row blocks of the captured width and of ``ROW_BLOCKS``, every
autotuned matmul tile, 64x64 attention tiles. A kernel that spills (local memory) is listed.

Run: ``python -m benchmarks.aot [--targets 80,90] [--json OUT]``. Not a test: nothing here
asserts (``tests/unit/benchmarks/test_aot.py`` compiles a representative subset in CI).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

ROW_BLOCKS = (1024, 4096)  # row widths a GPU run meets beyond the captured one

_PTR = {"torch.float32": "*fp32", "torch.float16": "*fp16", "torch.bfloat16": "*bf16",
        "torch.float64": "*fp64", "torch.int64": "*i64", "torch.int32": "*i32",
        "torch.bool": "*i1", "torch.int8": "*i8", "torch.uint8": "*u8"}


@dataclass
class Captured:
    """One kernel as launched: its source, name, argument types and launch settings."""

    name: str
    source: str
    kind: str  # pointwise | row | matmul | attention
    signature: dict[str, str]
    constexprs: dict[str, Any]
    settings: list[dict[str, Any]] = field(default_factory=list)  # the GPU launches to compile


def _arg_type(v: Any) -> str:
    import torch

    if isinstance(v, torch.Tensor):
        return _PTR[str(v.dtype)]
    if isinstance(v, bool):
        return "i1"
    if isinstance(v, int):
        return "i32" if -2**31 <= v < 2**31 else "i64"
    if isinstance(v, float):
        return "fp32"
    raise TypeError(f"unexpected kernel argument {type(v).__name__}")


def capture(cases: list[tuple[str, str]]) -> list[Captured]:
    """Run each case's function once in Triton's interpreter (``TRITON_INTERPRET=1`` must be
    set before Triton is imported: ``main`` runs this in a child process), recording each
    kernel at its first launch."""
    import torch

    from gtdsl.lower.triton import kernels
    from gtdsl.runtime.inputs import Sampler
    from gtdsl.driver import load_source

    seen: dict[str, Captured] = {}
    real = {cls: cls.__call__ for cls in (kernels.GroupLauncher, kernels.MatmulLauncher,
                                          kernels.AttentionLauncher)}

    def recording(cls: Any) -> Any:
        def launch(self: Any, *values: Any) -> Any:
            for sp in self.specs(*values):
                if sp.source not in seen:
                    sig = dict(sp.signature)
                    kind = self.group.kind
                    seen[sp.source] = Captured(sp.name, sp.source, kind, sig, dict(sp.constexprs))
            return real[cls](self, *values)
        return launch

    for cls in real:
        cls.__call__ = recording(cls)
    try:
        for i, (expr, params) in enumerate(cases):
            src = f"def f({params}):\n    return {expr}\n"
            m = load_source(src, f"aot{i}.gt", backend="triton")
            fn = m.functions["f"]
            s = Sampler({"m": 3, "n": 5, "k": 7, "b": 2}, {}, torch.Generator().manual_seed(0),
                        m.program.struct, m.structs)
            args = [s.value(t, n) for n, t in fn._params]
            args = [a.abs() + 0.1 if isinstance(a, torch.Tensor) and a.is_floating_point()
                    else a for a in args]
            fn(*args)
    finally:
        for cls, f in real.items():
            cls.__call__ = f
    out = list(seen.values())
    for c in out:
        c.settings = _gpu_settings(c)
    return out


def _gpu_settings(c: Captured) -> list[dict[str, Any]]:
    """The launch settings a GPU run uses for this kernel (see ``gtdsl.lower.triton``)."""
    from gtdsl.lower.triton.kernels import MATMUL_CONFIGS

    if c.kind == "pointwise":
        return [{"constexprs": {"BLOCK": 1024}, "num_warps": 4, "num_stages": 3}]
    if c.kind == "row":
        widths = sorted({c.constexprs["BLOCK_N"], *ROW_BLOCKS})
        return [{"constexprs": {"BLOCK_N": w}, "num_warps": 4, "num_stages": 3} for w in widths]
    if c.kind == "matmul":
        return [{"constexprs": {**c.constexprs, "BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk},
                 "num_warps": w, "num_stages": st} for bm, bn, bk, w, st in MATMUL_CONFIGS]
    ieee = c.signature.get("q_ptr") == "*fp32"
    return [{"constexprs": {**c.constexprs, "BLOCK_M": 64, "BLOCK_N": 64, "IEEE": ieee},
             "num_warps": 4, "num_stages": 3}]


def _load(c: Captured, folder: Path) -> Any:
    """The kernel as a real ``triton.jit`` function (the capture ran interpreted ones)."""
    import importlib.util

    path = folder / f"{c.name}.py"
    path.write_text("import triton\nimport triton.language as tl\n\n" + c.source)
    spec = importlib.util.spec_from_file_location(c.name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return getattr(module, c.name)


_RES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")


def _cuobjdump() -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump")


def compile_all(captured: list[Captured], targets: list[int]) -> list[dict[str, Any]]:
    """Each kernel, for each target and GPU setting: registers, stack, local memory."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, c in enumerate(captured):
            c.name = f"{c.name}_{i}"  # names repeat across modules; sources do not
            c.source = c.source.replace("def " + c.source.split("def ", 1)[1].split("(", 1)[0],
                                        "def " + c.name, 1)
            fn = _load(c, folder)
            for setting in c.settings:
                consts = setting["constexprs"]
                for cap in targets:
                    row = {"kernel": c.name, "kind": c.kind, "target": f"sm_{cap}",
                           **{k: v for k, v in consts.items() if k.startswith("BLOCK")},
                           "num_warps": setting["num_warps"],
                           "num_stages": setting["num_stages"]}
                    t0 = time.perf_counter()
                    try:
                        k = triton.compile(ASTSource(fn, c.signature, consts),
                                           target=GPUTarget("cuda", cap, 32),
                                           options={"num_warps": setting["num_warps"],
                                                    "num_stages": setting["num_stages"]})
                    except Exception as e:  # a compile failure is a result to report
                        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                        rows.append(row)
                        continue
                    cubin = folder / f"{c.name}_{cap}.cubin"
                    cubin.write_bytes(k.asm["cubin"])
                    res = subprocess.run([_cuobjdump(), "-res-usage", str(cubin)],
                                         capture_output=True, text=True).stdout
                    m = _RES.search(res)
                    if m is None:
                        row["error"] = f"cuobjdump printed no resource usage: {res[:200]}"
                    else:
                        reg, stack, shared, local = map(int, m.groups())
                        row.update(registers=reg, stack=stack, shared=shared, local=local,
                                   spills=local > 0 or stack > 0)
                    row["compile_s"] = round(time.perf_counter() - t0, 3)
                    rows.append(row)
    return rows


def _cases() -> list[tuple[str, str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.differential.test_triton import CASES

    return list(CASES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="80,90", help="compute capabilities (default 80,90)")
    ap.add_argument("--json", metavar="OUT", help="write every row as JSON")
    ap.add_argument("--case", action="append", default=[], metavar="EXPR|PARAMS",
                    help="compile only the kernels of these cases (default: the interpreter "
                    "lane's), e.g. 'softmax(x, -1)|x: f32[b, m, n]'")
    ap.add_argument("--max-row-block", type=int, default=max(ROW_BLOCKS),
                    help="the widest row block compiled")
    ap.add_argument("--capture-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.capture_only:  # the child: interpreted launches, captured kernels as JSON
        # (the lane's cases come from the tests, whose conftest sets TRITON_INTERPRET=1:
        # only this child imports them)
        cases = [tuple(c.split("|", 1)) for c in args.case] or _cases()
        print(json.dumps([c.__dict__ for c in capture(cases)]))  # type: ignore[arg-type]
        return 0
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.stderr.write("unset TRITON_INTERPRET: the compiles must be real ones\n")
        return 2
    env = dict(os.environ, TRITON_INTERPRET="1")
    child = subprocess.run([sys.executable, "-m", "benchmarks.aot", "--capture-only",
                            *(f"--case={c}" for c in args.case)],
                           capture_output=True, text=True, env=env,
                           cwd=Path(__file__).resolve().parents[1])
    if child.returncode:
        sys.stderr.write(child.stderr)
        return child.returncode
    captured = [Captured(**c) for c in json.loads(child.stdout.strip().splitlines()[-1])]
    for c in captured:
        c.settings = [st for st in c.settings
                      if st["constexprs"].get("BLOCK_N", 0) <= args.max_row_block
                      or c.kind != "row"]
    targets = [int(t) for t in args.targets.split(",")]
    rows = compile_all(captured, targets)
    bad = [r for r in rows if r.get("error") or r.get("spills")]
    for r in rows:
        blocks = " ".join(f"{k}={v}" for k, v in r.items() if k.startswith("BLOCK"))
        state = r.get("error") or (f"regs {r['registers']:3d} local {r['local']} "
                                   f"stack {r['stack']}" + ("  SPILLS" if r["spills"] else ""))
        print(f"{r['target']} {r['kind']:9s} {r['kernel']:30s} {blocks:40s} {state}")
    print(f"{len(captured)} kernels, {len(rows)} compiles, {len(bad)} with spills or errors")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
