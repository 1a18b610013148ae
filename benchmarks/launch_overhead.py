"""Host time of one pointwise or row kernel launch, gtdsl's Python work only, on the CPU.

Each case is a fused group (a pointwise chain, a bias chain with a broadcast vector, a
layer_norm with weight and bias, a softmax); its launcher runs as the generated host code calls
it (``launcher.ok(*ins)`` then ``launcher(*ins)``) with the Triton kernel's launch replaced by
a no-op: what is timed is what gtdsl does per launch (reading sizes and strides, choosing the
kernel variant, allocating the outputs, building the arguments), not Triton's launcher nor
the GPU. Cases are interleaved and each figure is the minimum over several runs.

The backward rows time one backward of a matrix product with an epilogue (``MatmulBackward``)
the same way, all launches no-ops: the gradient products computing dZ in their tiles, against
the unfused path the backward takes past 32-bit offsets (the epilogue's derivative kernel
writing dZ, then two plain products and torch's sum for a bias), interleaved.

Run: ``python -m benchmarks.launch_overhead [--quick] [--json OUT]``. Not a test: nothing here
asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

# plans take the settings of a GPU launch (the kernel is never run)
os.environ["TRITON_INTERPRET"] = "0"

import torch  # noqa: E402

CASES = [
    ("pointwise x*y+z", "def f(x: f32[m, n], y: f32[m, n], z: f32[m, n]):\n"
     "    return x * y + z\n", lambda m, n: [torch.randn(m, n) for _ in range(3)]),
    ("pointwise gelu(x+b)*sigmoid(y)+x", "def f(x: f32[m, n], b: f32[n], y: f32[m, n]):\n"
     "    return gelu(x + b) * sigmoid(y) + x\n",
     lambda m, n: [torch.randn(m, n), torch.randn(n), torch.randn(m, n)]),
    ("row layer_norm(x, w, b)", "def f(x: f32[m, n], w: f32[n], b: f32[n]):\n"
     "    return layer_norm(x, (n,), w, b, 1e-5)\n",
     lambda m, n: [torch.randn(m, n), torch.randn(n), torch.randn(n)]),
    ("row softmax", "def f(x: f32[b, m, n]):\n    return softmax(x, -1)\n",
     lambda m, n: [torch.randn(2, m, n)]),
]


class _NoLaunch:
    """A compiled kernel whose launch does nothing."""

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        return self._run

    def run(self, *args: Any, **kwargs: Any) -> None:
        return None

    def _run(self, *args: Any, **kwargs: Any) -> None:
        return None


def launcher_of(src: str, args: list[Any]) -> tuple[Any, tuple[Any, ...]]:
    """The launcher of the function's kernel and its inputs, as a call with ``args`` has them
    (captured from the call)."""
    from gtdsl.driver import load_source
    from gtdsl.lower.triton.rows import GroupLauncher

    seen: list[tuple[Any, tuple[Any, ...]]] = []
    real = GroupLauncher.__call__

    def capture(self: Any, *values: Any) -> Any:
        seen.append((self, values))
        return real(self, *values)

    GroupLauncher.__call__ = capture  # type: ignore[method-assign]
    try:
        load_source(src, "overhead.gt", backend="triton").f(*args)
    finally:
        GroupLauncher.__call__ = real  # type: ignore[method-assign]
    return seen[0]


def per_launch_us(launcher: Any, ins: list[Any], calls: int) -> float:
    ok = launcher.ok
    t = time.perf_counter()
    for _ in range(calls):
        if ok(*ins):
            launcher(*ins)
    return (time.perf_counter() - t) / calls * 1e6


def run(quick: bool) -> list[dict[str, Any]]:
    from gtdsl.lower.triton import rows

    rows._compile = lambda name, source: _NoLaunch()  # type: ignore[attr-defined]
    calls, repeats = (2000, 3) if quick else (20000, 7)
    setups = []
    for name, src, make in CASES:
        launcher, ins = launcher_of(src, make(64, 128))
        launcher(*ins)  # the variant is built once, outside the timing
        setups.append((name, launcher, ins))
    best = {name: float("inf") for name, _, _ in setups}
    for _ in range(repeats):  # interleaved: each repeat times every case once
        for name, launcher, ins in setups:
            best[name] = min(best[name], per_launch_us(launcher, ins, calls))
    return [{"case": name, "host_us_per_launch": round(best[name], 3)} for name, _, _ in setups]


BACKWARD_CASES = [
    ("backward gelu(linear(x, w, c))", "def f(x: f32[m, k], w: f32[n, k], c: f32[n]):\n"
     "    return gelu(linear(x, w, c))\n"),
    ("backward x @ w + c", "def f(x: f32[m, k], w: f32[k, n], c: f32[n]):\n"
     "    return x @ w + c\n"),
]


def backward_rows(quick: bool) -> list[dict[str, Any]]:
    """Host µs per matmul backward: fused gradient products vs the unfused path."""
    from gtdsl.driver import load_source
    from gtdsl.ir.core import Op, walk
    from gtdsl.lower.triton import matmul, matmul_grad, rows
    from gtdsl.lower.triton.autograd import differentiable
    from gtdsl.lower.triton.kernels import launcher_for

    rows._compile = lambda name, source: _NoLaunch()  # type: ignore[attr-defined]
    matmul.MatmulKernel._fn = lambda self, variant: _NoLaunch()  # type: ignore[method-assign]
    # one configuration, no tuning: the choice is made once per class of launches anyway
    matmul.MatmulKernel.choices = (  # type: ignore[method-assign]
        lambda self, plan, target: ("generic", [matmul.INTERPRETER_CONFIG]))
    matmul._capability = lambda device: (9, 0)  # type: ignore[assignment]
    real_fit = matmul_grad.offsets_fit
    calls, repeats = (300, 3) if quick else (3000, 7)
    setups = []
    for name, src in BACKWARD_CASES:
        fn = load_source(src, "overhead.gt", backend="triton").f
        (eqn,) = [e for e in walk(fn.fused().body) if e.op is Op.KERNEL]
        op = differentiable(launcher_for(eqn))
        sizes = {"m": 64, "k": 96, "n": 128}
        ins = tuple(torch.randn([sizes[d.label] for d in a.type.shape.dims]) for a in eqn.ins)
        outs, saved = op.forward_saving(ins)
        grads = tuple(torch.randn(o.shape) for o in outs)
        needs = (True,) * len(ins)
        setups.append((name, op.matmul_backward(), ins, saved, grads, needs))
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeats):
        for name, mb, ins, saved, grads, needs in setups:
            for path, fit in (("fused", real_fit), ("unfused", lambda *a: False)):
                matmul_grad.offsets_fit = fit  # type: ignore[assignment]
                mb(ins, saved, grads, needs)  # plans made once, outside the timing
                t = time.process_time()
                for _ in range(calls):
                    mb(ins, saved, grads, needs)
                us = (time.process_time() - t) / calls * 1e6
                best[name, path] = min(best.get((name, path), float("inf")), us)
    matmul_grad.offsets_fit = real_fit
    return [{"case": f"{name} ({path})", "host_us_per_launch": round(best[name, path], 3)}
            for name, *_ in setups for path in ("fused", "unfused")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(a.quick) + backward_rows(a.quick)
    for r in result:
        print(f"{r['case']:40s} {r['host_us_per_launch']:8.2f} µs")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
