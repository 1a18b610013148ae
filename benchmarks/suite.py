"""The benchmark suite: gtdsl against eager torch and torch.compile, measured in one run.

For every workload of ``benchmarks.workloads`` and every size of its sweep: the same inputs
through eager torch, gtdsl (``backend="auto"``: torch code on the CPU, Triton kernels on a
GPU), ``torch.compile(dynamic=True)`` and, on a GPU, the Triton tutorials' hand-written
kernels where one exists. Each result is checked against eager before it is timed. Every
figure is reported as a ratio to eager measured in the same run and as a fraction of the
ceilings measured at the start (copy bandwidth; a large matmul). Compiles over each sweep, and
cold and warm (the checked program reused) first-call times, are recorded.

Outputs, under ``--out`` (default ``benchmarks/results/<device>``): ``results.json``, DVC-style
``metrics.json`` and ``params.yaml``, and PNG plots (``plots/``: throughput against size with
the measured ceiling, and per-call overhead bars). A terminal table at the end, a progress bar
while running. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks import timing
from benchmarks.workloads import WORKLOADS, Workload

HERE = Path(__file__).resolve().parent


# ====================================================================== timing


class Progress:
    """A one-line progress bar on standard error."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = max(total, 1), 0, enabled
        self.start = time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total} {elapsed:5.0f}s  {what}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], device: str, budget: float = 0.05,
              repeats: int = 7) -> float:
    """Seconds per call. On a GPU, ``triton.testing.do_bench``'s median. On the CPU, the
    fastest of ``repeats`` timed loops of about ``budget`` seconds each: on a shared 2-core
    machine interference only ever adds time, so the minimum is the stable figure."""
    return time_call_spread(fn, device, budget, repeats)[0]


def time_call_spread(fn: Callable[[], Any], device: str, budget: float = 0.05,
                     repeats: int = 7) -> tuple[float, float | None]:
    """``time_call``'s figure and the spread of its loops, ``(median - min) / min`` (None on
    a GPU, where ``do_bench`` takes its own median)."""
    if device == "cuda":
        try:
            from triton.testing import do_bench

            return do_bench(fn, return_mode="median") * 1e-3, None
        except ImportError:
            pass
    fn()
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    once = max(time.perf_counter() - t, 1e-7)
    n = max(1, min(10000, int(budget / once)))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(device)
        samples.append((time.perf_counter() - t) / n)
    return min(samples), timing.spread(samples)


def _timed(row: dict[str, Any], impl: str, fn: Callable[[], Any], device: str) -> None:
    """``row[impl_s]`` and, on the CPU, ``row[impl_spread]``."""
    row[f"{impl}_s"], sp = time_call_spread(fn, device)
    if sp is not None:
        row[f"{impl}_spread"] = round(sp, 4)


def spread_warnings(result: dict[str, Any], limit: float = timing.SPREAD_LIMIT) -> list[str]:
    """A warning for each timed figure whose loops spread more than ``limit`` above the
    fastest: the machine was busy while it ran, and the figure may be off."""
    out = []
    for w in result.get("workloads", []):
        for r in w["rows"]:
            for impl in ("eager", "gtdsl", "compile", "tutorial"):
                sp = r.get(f"{impl}_spread")
                if sp is not None and sp > limit:
                    size = ",".join(f"{k}={v}" for k, v in r["sizes"].items())
                    out.append(f"warning: {w['name']} {size} {impl}: the loops spread {sp:.0%} "
                               f"above the fastest (limit {limit:.0%}); do not trust this "
                               "figure")
    return out


def ceilings(device: str, quick: bool) -> dict[str, float]:
    """The machine's copy bandwidth (bytes read + written) and a large matmul's rate."""
    n = (1 << 24 if quick else 1 << 26) if device == "cpu" else 1 << 28
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    copy_s = time_call(lambda: dst.copy_(src), device, budget=0.1)
    size = (512 if quick else 1024) if device == "cpu" else 8192
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    mm_s = time_call(lambda: a @ b, device, budget=0.2)
    return {"copy_GBps": 2 * n / copy_s / 1e9, "matmul_TFLOPs": 2 * size ** 3 / mm_s / 1e12,
            "matmul_dtype": str(dtype).replace("torch.", ""), "matmul_size": size}


# ====================================================================== one workload


def _first_call_times(w: Workload, dtype: str, args: list[Any], device: str,
                      cache_dir: str, backend: str = "auto") -> tuple[float, float]:
    """Load and first call: cold (parse, check, lower, compile), and warm (the same sources
    loaded again in this process: the checked program is reused, the body is compiled)."""
    from gtdsl.driver import load_source

    old = os.environ.get("GTDSL_CACHE_DIR")
    try:
        os.environ["GTDSL_CACHE_DIR"] = cache_dir
        t = time.perf_counter()
        load_source(w.gt_source(dtype), f"cold_{w.name}.gt", backend=backend).fn(*args)
        _sync(device)
        cold = time.perf_counter() - t
        load_source(w.gt_source(dtype), f"warm_{w.name}.gt", backend=backend).fn(*args)
        _sync(device)  # the first load checks it once
        t = time.perf_counter()
        f = load_source(w.gt_source(dtype), f"warm_{w.name}.gt", backend=backend).fn
        f(*args)
        _sync(device)
        warm = time.perf_counter() - t
    finally:
        if old is None:
            os.environ.pop("GTDSL_CACHE_DIR", None)
        else:
            os.environ["GTDSL_CACHE_DIR"] = old
    return cold, warm


def _close(a: Any, b: Any, dtype: torch.dtype) -> float:
    """The largest difference relative to the reference's scale."""
    a, b = a.float(), b.float()
    scale = b.abs().max().item() or 1.0
    return (a - b).abs().max().item() / scale


TINY = 32  # --tiny: the largest dimension of a rehearsal's one size


def sweep(w: Workload, device: str, quick: bool, tiny: bool = False) -> tuple[dict, ...]:
    """The sizes a run measures: the device's sweep, its first two (``--quick``), or one
    size with every dimension at most ``TINY`` (``--tiny``: a rehearsal in Triton's
    interpreter)."""
    if tiny:
        return ({k: min(v, TINY) for k, v in w.cpu_sizes[0].items()},)
    if quick:
        return w.quick_sizes(device)
    return w.cpu_sizes if device == "cpu" else w.gpu_sizes


def results_name(device: str) -> str:
    """The folder of a device's results: ``cpu``, or the GPU's name with dashes for spaces
    (``nvidia-h100-80gb-hbm3``)."""
    if device == "cpu":
        return "cpu"
    return torch.cuda.get_device_name().replace(" ", "-").lower()


def run_workload(w: Workload, device: str, quick: bool, ceil: dict[str, float],
                 progress: Progress, use_compile: bool, cache_dir: str,
                 backend: str = "auto", tiny: bool = False) -> dict[str, Any]:
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    gt_dtype = "f32" if device == "cpu" else "bf16"
    sizes = sweep(w, device, quick, tiny)
    from gtdsl.driver import load_source

    fn = load_source(w.gt_source(gt_dtype), f"bench_{w.name}.gt", backend=backend).fn
    compiled = torch.compile(w.eager, dynamic=True) if use_compile else None
    tutorial = None
    if device == "cuda":
        from benchmarks import tutorial_triton

        tutorial = tutorial_triton.KERNELS.get(w.name)
    rows = []
    compile_first_s = None
    graphs_before = _dynamo_graphs()
    elt = torch.empty((), dtype=dtype).element_size()
    for s in sizes:
        progress.step(f"{w.name} {s}")
        args = w.inputs(s, device, dtype)
        with torch.no_grad():
            ref = w.eager(*args)
            row: dict[str, Any] = {"sizes": s}
            out = fn(*args)
            row["gtdsl_error"] = _close(out, ref, dtype)
            _timed(row, "eager", lambda: w.eager(*args), device)
            _timed(row, "gtdsl", lambda: fn(*args), device)
            if compiled is not None:
                if compile_first_s is None:
                    t = time.perf_counter()
                    compiled(*args)
                    _sync(device)
                    compile_first_s = time.perf_counter() - t
                row["compile_error"] = _close(compiled(*args), ref, dtype)
                _timed(row, "compile", lambda: compiled(*args), device)
            if tutorial is not None:
                _timed(row, "tutorial", lambda: tutorial(*args), device)
        nbytes, nflops = w.bytes(s, elt), w.flops(s)
        for impl in ("eager", "gtdsl", "compile", "tutorial"):
            t = row.get(f"{impl}_s")
            if t is None:
                continue
            if w.metric == "GB/s":
                row[f"{impl}_GBps"] = nbytes / t / 1e9
                row[f"{impl}_of_copy"] = row[f"{impl}_GBps"] / ceil["copy_GBps"]
            else:
                row[f"{impl}_TFLOPs"] = nflops / t / 1e12
                row[f"{impl}_of_matmul"] = row[f"{impl}_TFLOPs"] / ceil["matmul_TFLOPs"]
        row["gtdsl_speedup_vs_eager"] = row["eager_s"] / row["gtdsl_s"]
        if "compile_s" in row:
            row["gtdsl_speedup_vs_compile"] = row["compile_s"] / row["gtdsl_s"]
        rows.append(row)
    progress.step(f"{w.name} first-call times")
    cold, warm = _first_call_times(w, gt_dtype, w.inputs(sizes[0], device, dtype), device,
                                   cache_dir, backend)
    return {"name": w.name, "title": w.title, "metric": w.metric, "dtype": gt_dtype,
            "size_key": w.size_key, "rows": rows,
            "gtdsl_compiles": fn.cache_info().compiles, "sizes": len(sizes),
            "gtdsl_cold_first_call_s": cold, "gtdsl_warm_first_call_s": warm,
            "compile_first_call_s": compile_first_s,
            "compile_graphs": (_dynamo_graphs() - graphs_before) if compiled else None}


def _dynamo_graphs() -> int:
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:  # private API: absent in some versions
        return 0


# ====================================================================== outputs


def environment(device: str) -> dict[str, Any]:
    import gtdsl

    env = {"python": platform.python_version(), "torch": torch.__version__,
           "gtdsl": gtdsl.__version__, "machine": platform.machine(),
           "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "device": device}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    return env


def metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics: per workload, the geometric-mean speedups and the best fraction of
    the ceiling; the overhead rows; compile counts and times."""
    out: dict[str, Any] = {}
    for w in result["workloads"]:
        m: dict[str, Any] = {}
        for key in ("gtdsl_speedup_vs_eager", "gtdsl_speedup_vs_compile"):
            vals = [r[key] for r in w["rows"] if key in r]
            if vals:
                m[key + "_geomean"] = round(statistics.geometric_mean(vals), 4)
        frac = "gtdsl_of_copy" if w["metric"] == "GB/s" else "gtdsl_of_matmul"
        m["gtdsl_best_" + frac.split("_of_")[1] + "_fraction"] = round(
            max(r[frac] for r in w["rows"]), 4)
        m["gtdsl_compiles"] = w["gtdsl_compiles"]
        m["gtdsl_cold_first_call_ms"] = round(w["gtdsl_cold_first_call_s"] * 1e3, 2)
        m["gtdsl_warm_first_call_ms"] = round(w["gtdsl_warm_first_call_s"] * 1e3, 2)
        if w["compile_first_call_s"] is not None:
            m["compile_first_call_ms"] = round(w["compile_first_call_s"] * 1e3, 1)
        out[w["name"]] = m
    for r in result.get("overhead", []):
        out[f"overhead_{r['ops']}op_{r['args']}args_us"] = round(r["gtdsl_over_eager_us"], 3)
    if "cold_compile" in result:
        out["cold_compile_20op_ms"] = round(result["cold_compile"]["median_ms"], 2)
    return out


def params_yaml(params: dict[str, Any]) -> str:
    lines = []
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            lines.append(f"{k}:")
            lines += [f"  - {json.dumps(x)}" for x in v]
        else:
            lines.append(f"{k}: {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def table(result: dict[str, Any]) -> str:
    out = []
    for w in result["workloads"]:
        unit = w["metric"]
        key = "GBps" if unit == "GB/s" else "TFLOPs"
        out.append(f"\n{w['name']} ({w['title']}, {w['dtype']}; {unit}; gtdsl compiles over "
                   f"{w['sizes']} sizes: {w['gtdsl_compiles']})")
        out.append(f"  {'sizes':<34} {'eager':>9} {'gtdsl':>9} {'compile':>9} "
                   f"{'x eager':>8} {'x compile':>9}")
        for r in w["rows"]:
            size = ",".join(f"{k}={v}" for k, v in r["sizes"].items())
            def f(impl: str) -> str:
                v = r.get(f"{impl}_{key}")
                return f"{v:9.3f}" if v is not None else f"{'—':>9}"
            vc = r.get("gtdsl_speedup_vs_compile")
            out.append(f"  {size:<34} {f('eager')} {f('gtdsl')} {f('compile')} "
                       f"{r['gtdsl_speedup_vs_eager']:8.2f} "
                       + (f"{vc:9.2f}" if vc is not None else f"{'—':>9}"))
    return "\n".join(out)


def plots(result: dict[str, Any], out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out.mkdir(parents=True, exist_ok=True)
    written = []
    ceil = result["ceilings"]
    for w in result["workloads"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        key = "GBps" if w["metric"] == "GB/s" else "TFLOPs"
        xs = [r["sizes"][w["size_key"]] if w["size_key"] in r["sizes"] else
              list(r["sizes"].values())[-1] for r in w["rows"]]
        for impl, style in (("eager", "o-"), ("gtdsl", "s-"), ("compile", "^-"),
                            ("tutorial", "d-")):
            ys = [r.get(f"{impl}_{key}") for r in w["rows"]]
            if any(y is not None for y in ys):
                ax.plot(xs, [y if y is not None else float("nan") for y in ys], style,
                        label={"compile": "torch.compile"}.get(impl, impl))
        ceiling = ceil["copy_GBps"] if key == "GBps" else ceil["matmul_TFLOPs"]
        ax.axhline(ceiling, color="gray", linestyle="--",
                   label="measured copy bandwidth" if key == "GBps" else "measured matmul")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(w["size_key"])
        ax.set_ylabel(w["metric"])
        ax.set_title(f"{w['name']} ({w['dtype']}, {result['environment']['device']})")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{w['name']}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    if result.get("overhead"):
        fig, ax = plt.subplots(figsize=(7, 4))
        rows = result["overhead"]
        labels = [f"{r['ops']}-op\n{r['args']} args" for r in rows]
        impls = [("gtdsl", "gtdsl"), ("torch_compile", "torch.compile"),
                 ("jaxtyping_beartype", "jaxtyping+beartype")]
        width = 0.8 / len(impls)
        for i, (k, label) in enumerate(impls):
            ys = [r.get(f"{k}_over_eager_us") or 0.0 for r in rows]
            ax.bar([j + i * width for j in range(len(rows))], ys, width, label=label)
        ax.set_xticks([j + width for j in range(len(rows))], labels, fontsize=8)
        ax.set_ylabel("µs per call over eager")
        ax.set_yscale("log")
        ax.set_title("per-call overhead on a cache hit")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "overhead.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path))
    return written


# ====================================================================== main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gtdsl bench", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="two sizes per workload, torch.compile on one workload (under a "
                    "minute on the CPU)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                    help="run only these workloads: " + ", ".join(w.name for w in WORKLOADS))
    ap.add_argument("--out", metavar="DIR", help="where results go "
                    "(default benchmarks/results/<device>)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--backend", choices=("auto", "triton"), default="auto",
                    help="gtdsl's backend (triton on the CPU: Triton's interpreter)")
    ap.add_argument("--tiny", action="store_true", help=f"one size per workload, every "
                    f"dimension at most {TINY} (a rehearsal of a run, not a measurement)")
    ap.add_argument("--gpu-lane", action="store_true", help="run the GPU lane instead: the "
                    "gpu tests and the GPU benchmark rows (`--gpu-lane --help` for its "
                    "options; benchmarks/gpu_lane.sh)")
    ap.add_argument("--no-progress", action="store_true")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu-lane" in argv:  # its own options follow (benchmarks/gpu_lane.py)
        from benchmarks.gpu_lane import main as lane_main

        return lane_main([x for x in argv if x != "--gpu-lane"])
    a = ap.parse_args(argv)
    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    unknown = [n for n in a.only if n not in {w.name for w in WORKLOADS}]
    if unknown:
        print(f"error: unknown workload(s) {', '.join(unknown)}; choose from "
              + ", ".join(w.name for w in WORKLOADS), file=sys.stderr)
        return 2
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    workloads = [w for w in WORKLOADS if not a.only or w.name in a.only]
    steps = sum(len(sweep(w, device, a.quick, a.tiny)) + 1 for w in workloads) + 2
    progress = Progress(steps, not a.no_progress)
    out = Path(a.out) if a.out else HERE / "results" / results_name(device)
    result: dict[str, Any] = {"environment": environment(device), "quick": a.quick,
                              "tiny": a.tiny, "backend": a.backend}
    progress.step("measuring the machine's ceilings")
    result["ceilings"] = ceilings(device, a.quick or a.tiny)
    cache_dir = tempfile.mkdtemp(prefix="gtdsl-bench-")
    result["workloads"] = []
    for w in workloads:
        use_compile = not a.no_compile and (not (a.quick or a.tiny) or w is workloads[0])
        result["workloads"].append(run_workload(w, device, a.quick, result["ceilings"],
                                                progress, use_compile, cache_dir, a.backend,
                                                a.tiny))
    progress.step("per-call overhead")
    from benchmarks.overhead import run_cold_compile, run_overhead

    if not a.only:
        result["overhead"] = run_overhead(a.quick or a.tiny or device != "cpu",
                                          lambda _: None)
        result["cold_compile"] = run_cold_compile(a.quick or a.tiny, lambda _: None)
    progress.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "metrics.json").write_text(json.dumps(metrics(result), indent=2))
    params = {"device": device, "quick": a.quick, "tiny": a.tiny, "backend": a.backend,
              "dtype": "f32" if device == "cpu" else "bf16",
              "workloads": [w.name for w in workloads], "torch_compile": not a.no_compile,
              **{k: v for k, v in result["environment"].items() if k != "device"}}
    (out / "params.yaml").write_text(params_yaml(params))
    written = plots(result, out / "plots")
    print(f"device: {device}  copy {result['ceilings']['copy_GBps']:.1f} GB/s  matmul "
          f"{result['ceilings']['matmul_TFLOPs'] * 1e3:.1f} GFLOP/s "
          f"({result['ceilings']['matmul_dtype']})")
    print(table(result))
    if result.get("overhead"):
        from benchmarks.overhead import table as overhead_table

        print("\nper-call overhead (µs, cache hit):")
        print(overhead_table(result["overhead"]))
        print(f"cold compile of a 20-op function: {result['cold_compile']['median_ms']:.1f} ms")
    from benchmarks.overhead import warnings as overhead_warnings

    for line in spread_warnings(result) + overhead_warnings(result.get("overhead", []),
                                                            result.get("cold_compile")):
        print(line)
    print(f"\nwrote {out / 'results.json'}, metrics.json, params.yaml"
          + (f" and {len(written)} plots" if written else " (no plots: pip install matplotlib)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
