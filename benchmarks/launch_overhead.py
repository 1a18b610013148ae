"""Host time of one pointwise or row kernel launch, gtdsl's Python work only, on the CPU.

Each case is a fused group (a pointwise chain, a bias chain with a broadcast vector, a
layer_norm with weight and bias, a softmax); its launcher runs as the generated host code calls
it (``launcher.ok(*ins)`` then ``launcher(*ins)``) with the Triton kernel's launch replaced by
a no-op: what is timed is what gtdsl does per launch (reading sizes and strides, choosing the
kernel variant, allocating the outputs, building the arguments), not Triton's launcher nor
the GPU. Cases are interleaved and each figure is the minimum over several runs.

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(a.quick)
    for r in result:
        print(f"{r['case']:40s} {r['host_us_per_launch']:8.2f} µs")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
