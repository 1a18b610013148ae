"""Per-call overhead and cold compile time of the JIT on the CPU (docs/benchmarks.md,
"Per-call overhead").

For 1-op and 5-op functions with 1, 4 and 8 tensor arguments on small CPU tensors, each call
on a cache hit is timed four ways in the same run: eager torch (the same ops as a Python
function), gtdsl (checked entry + compiled body), ``torch.compile`` (default options, after
warm-up), and jaxtyping+beartype checking the same annotations (when installed:
``pip install jaxtyping beartype``). The figure that matters is the difference to eager.
Then the cold compile time of a 20-op function: parse, check, lower and first call (each run
a new source, so no checked program is reused).

Times are process CPU time (interference from other processes on a shared machine does not
count), the implementations of a row are timed interleaved (a batch of each in turn, repeated;
``benchmarks.timing``), and each figure is the fastest batch. The spread of the batches
(``(median - min) / min``) is recorded per implementation (``<impl>_spread``); one above 10%
prints a warning after the table.

Run: ``python -m benchmarks.overhead [--quick] [--json OUT]``. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch

from benchmarks import timing

N_ELEMS = 16  # small tensors: the call, not the arithmetic, is measured


def _gt_source(name: str, ops: int, args: int) -> str:
    params = ", ".join(f"x{i}: f32[n]" for i in range(args))
    return f"def {name}({params}) -> f32[n]:\n    return {_expr(ops, args)}\n"


def _expr(ops: int, args: int) -> str:
    """``ops`` binary ops over the arguments: x0 * x1 + x2 * x3 ... (cycling)."""
    text = "x0"
    for i in range(ops):
        op = "*" if i % 2 == 0 else "+"
        text = f"({text} {op} x{(i + 1) % args})"
    return text


def _python_fn(ops: int, args: int, annotate: str | None = None) -> Callable[..., Any]:
    ann = f": {annotate}" if annotate else ""
    params = ", ".join(f"x{i}{ann}" for i in range(args))
    ret = f" -> {annotate}" if annotate else ""
    ns: dict[str, Any] = {"torch": torch}
    if annotate:
        from jaxtyping import Float  # noqa: F401 - used by the annotation text

        ns.update(Float=Float, Tensor=torch.Tensor)
    exec(f"def f({params}){ret}:\n    return {_expr(ops, args)}\n", ns)  # noqa: S102
    return ns["f"]


def per_call_us(fn: Callable[..., Any], args: list[Any], calls: int, repeats: int) -> float:
    """The fastest of ``repeats`` batches of ``calls`` calls, in µs of process CPU time a call."""
    return per_call_stats({"fn": fn}, args, {"fn": calls}, repeats)["fn"].min * 1e6


def per_call_stats(fns: dict[str, Callable[..., Any]], args: list[Any], calls: dict[str, int],
                   repeats: int) -> dict[str, timing.Stats]:
    """Seconds a call of each function, its batches interleaved with the others'."""
    return timing.measure({k: (lambda f=f: f(*args)) for k, f in fns.items()}, repeats,
                          calls=calls, warmup=min(200, min(calls.values())))


def _jaxtyped(ops: int, args: int) -> Callable[..., Any] | None:
    try:
        from beartype import beartype
        from jaxtyping import jaxtyped
    except ImportError:
        return None
    return jaxtyped(typechecker=beartype)(_python_fn(ops, args, 'Float[Tensor, "n"]'))


def _compiled(fn: Callable[..., Any], args: list[Any]) -> Callable[..., Any] | None:
    try:
        c = torch.compile(fn)
        c(*args)
        return c
    except Exception:  # no C++ toolchain, unsupported platform, ...
        return None


def run_overhead(quick: bool, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    from gtdsl.driver import load_source

    calls, repeats = (2000, 3) if quick else (20000, 5)
    rows = []
    for ops in (1, 5):
        for nargs in (1, 4, 8):
            progress(f"overhead {ops}-op, {nargs} args")
            args = [torch.randn(N_ELEMS) for _ in range(nargs)]
            eager = _python_fn(ops, nargs)
            gt = load_source(_gt_source("f", ops, nargs), f"bench_{ops}_{nargs}.gt").f
            row: dict[str, Any] = {"ops": ops, "args": nargs}
            comp = None if quick else _compiled(eager, args)
            jt = _jaxtyped(ops, nargs)
            fns = {"eager": eager, "gtdsl": gt, "torch_compile": comp, "jaxtyping_beartype": jt}
            fns = {k: f for k, f in fns.items() if f is not None}
            stats = per_call_stats(fns, args, {k: calls // 4 or 1 if k == "jaxtyping_beartype"
                                               else calls for k in fns}, repeats)
            for k in ("eager", "gtdsl", "torch_compile", "jaxtyping_beartype"):
                row[f"{k}_us"] = stats[k].min * 1e6 if k in stats else None
            for k, st in stats.items():
                row[f"{k}_spread"] = round(st.spread, 4)
            for k in ("gtdsl", "torch_compile", "jaxtyping_beartype"):
                v = row[f"{k}_us"]
                row[f"{k}_over_eager_us"] = None if v is None else v - row["eager_us"]
            row["gtdsl_compiles"] = gt.cache_info().compiles
            rows.append(row)
    return rows


def chain_source(name: str = "chain") -> str:
    """A 20-op function: a mix of elementwise ops, matmuls and reductions over
    ``x: f32[n, d], w: f32[d, d], b: f32[d]``."""
    lines = [f"def {name}(x: f32[n, d], w: f32[d, d], b: f32[d]) -> f32[n, d]:", "    h = x"]
    unary = ["tanh", "exp", "sigmoid", "relu", "gelu"]
    for i in range(20):
        k = i % 4
        if k == 0:
            lines.append(f"    h = {unary[i % len(unary)]}(h)")
        elif k == 1:
            lines.append("    h = h @ w")
        elif k == 2:
            lines.append("    h = h + b")
        else:
            lines.append("    h = h - h.mean(-1, keepdim=True)")
    lines.append("    return h")
    return "\n".join(lines) + "\n"


def run_cold_compile(quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    from gtdsl.driver import load_source

    src = chain_source("chain")
    x, w, b = torch.randn(4, 8), torch.randn(8, 8), torch.randn(8)
    times = []
    for i in range(3 if quick else 15):
        progress(f"cold compile {i + 1}")
        t = timing.cpu_clock()
        m = load_source(src.replace("def chain", f"def chain{i}"), f"cold{i}.gt")
        getattr(m, f"chain{i}")(x, w, b)
        times.append((timing.cpu_clock() - t) / 1e6)
    return {"ops": 20, "median_ms": statistics.median(times), "min_ms": min(times),
            "runs": len(times), "spread": round(timing.spread(times), 4)}


def environment() -> dict[str, Any]:
    import gtdsl

    return {"python": platform.python_version(), "torch": torch.__version__,
            "gtdsl": gtdsl.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


def table(rows: list[dict[str, Any]]) -> str:
    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.2f}"

    out = ["| ops | args | eager µs | gtdsl µs (over eager) | torch.compile µs (over) | "
           "jaxtyping+beartype µs (over) |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['ops']} | {r['args']} | {f(r['eager_us'])} | {f(r['gtdsl_us'])} "
                   f"(+{f(r['gtdsl_over_eager_us'])}) | {f(r['torch_compile_us'])} "
                   f"(+{f(r['torch_compile_over_eager_us'])}) | "
                   f"{f(r['jaxtyping_beartype_us'])} (+{f(r['jaxtyping_beartype_over_eager_us'])}) |")
    return "\n".join(out)


def warnings(rows: list[dict[str, Any]], cold: dict[str, Any] | None = None,
             limit: float = timing.SPREAD_LIMIT) -> list[str]:
    """A warning for each figure whose repetitions spread more than ``limit``."""
    out = []
    for r in rows:
        for k in ("eager", "gtdsl", "torch_compile", "jaxtyping_beartype"):
            sp = r.get(f"{k}_spread")
            if sp is not None and sp > limit:
                out.append(f"warning: overhead {r['ops']}-op, {r['args']} args, {k}: the "
                           f"batches spread {sp:.0%} above the fastest (limit {limit:.0%}); "
                           "the machine was busy: do not trust this figure")
    if cold and cold.get("spread", 0.0) > limit:
        out.append(f"warning: cold compile: the runs spread {cold['spread']:.0%} above the "
                   f"fastest (limit {limit:.0%}); do not trust the median")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls; skips torch.compile")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    def progress(what: str) -> None:
        sys.stderr.write(f"\r\033[K{what}...")
        sys.stderr.flush()

    result = {"environment": environment(), "overhead": run_overhead(a.quick, progress),
              "cold_compile": run_cold_compile(a.quick, progress)}
    sys.stderr.write("\r\033[K")
    print(table(result["overhead"]))
    cc = result["cold_compile"]
    print(f"\ncold compile of a 20-op function: median {cc['median_ms']:.1f} ms "
          f"(min {cc['min_ms']:.1f} ms, {cc['runs']} runs)")
    for w in warnings(result["overhead"], cc):
        print(w)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
