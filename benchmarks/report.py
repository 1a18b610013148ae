"""Render a results directory (``results.json`` and ``plots/``) as Markdown for
docs/benchmarks.md: ``python -m benchmarks.report benchmarks/results/cpu``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def render(directory: Path, relative_to: Path) -> str:
    r = json.loads((directory / "results.json").read_text())
    env, ceil = r["environment"], r["ceilings"]
    rel = Path(os.path.relpath(directory, relative_to))
    lines = [f"Device: {env['device']}" + (f" ({env['gpu']})" if env.get("gpu") else
                                            f" ({env['cpus']} cores)")
             + f"; torch {env['torch']}, Python {env['python']}, triton {env['triton']}.",
             f"Measured ceilings: copy {ceil['copy_GBps']:.1f} GB/s (bytes read + written), "
             f"matmul {ceil['matmul_TFLOPs'] * 1e3:.1f} GFLOP/s ({ceil['matmul_dtype']}, "
             f"{ceil['matmul_size']}³)." + (" Quick run." if r.get("quick") else ""), ""]
    for w in r["workloads"]:
        key = "GBps" if w["metric"] == "GB/s" else "TFLOPs"
        frac = "of_copy" if key == "GBps" else "of_matmul"
        lines.append(f"### {w['name']}: {w['title']} ({w['dtype']})")
        lines.append("")
        cold = w["gtdsl_cold_first_call_s"] * 1e3
        warm = w["gtdsl_warm_first_call_s"] * 1e3
        comp = w["compile_first_call_s"]
        lines.append(f"gtdsl compiles over the {w['sizes']} sizes: {w['gtdsl_compiles']}; "
                     f"first call {cold:.1f} ms cold, {warm:.1f} ms with the checked program reused"
                     + (f"; torch.compile first call {comp * 1e3:.0f} ms, "
                        f"{w['compile_graphs']} graph(s) over the sweep" if comp else "") + ".")
        lines.append("")
        unit = w["metric"]
        lines.append(f"| sizes | eager {unit} | gtdsl {unit} | torch.compile {unit} | "
                     f"gtdsl / eager | gtdsl / compile | gtdsl of ceiling |")
        lines.append("|---|---|---|---|---|---|---|")
        for row in w["rows"]:
            size = ", ".join(f"{k}={v}" for k, v in row["sizes"].items())

            def f(impl: str, row=row) -> str:
                v = row.get(f"{impl}_{key}")
                return "—" if v is None else f"{v:.3g}"
            vc = row.get("gtdsl_speedup_vs_compile")
            lines.append(f"| {size} | {f('eager')} | {f('gtdsl')} | {f('compile')} | "
                         f"{row['gtdsl_speedup_vs_eager']:.2f} | "
                         f"{'—' if vc is None else f'{vc:.2f}'} | "
                         f"{row[f'gtdsl_{frac}'] * 100:.1f}% |")
        plot = directory / "plots" / f"{w['name']}.png"
        if plot.exists():
            lines += ["", f"![{w['name']}]({rel / 'plots' / plot.name})"]
        lines.append("")
    if r.get("overhead"):
        lines += ["### Per-call overhead (cache hit, 16-element tensors, one thread)", "",
                  "| ops | args | eager µs | gtdsl over eager | torch.compile over eager | "
                  "jaxtyping+beartype over eager |", "|---|---|---|---|---|---|"]
        for o in r["overhead"]:
            def g(k: str, o=o) -> str:
                v = o.get(f"{k}_over_eager_us")
                return "—" if v is None else f"+{v:.2f} µs"
            lines.append(f"| {o['ops']} | {o['args']} | {o['eager_us']:.2f} | {g('gtdsl')} | "
                         f"{g('torch_compile')} | {g('jaxtyping_beartype')} |")
        cc = r["cold_compile"]
        lines += ["", f"Cold compile of a 20-op function (parse, check, lower, first call): "
                  f"{cc['median_ms']:.1f} ms (median of {cc['runs']})."]
        if (directory / "plots" / "overhead.png").exists():
            lines += ["", f"![overhead]({rel / 'plots' / 'overhead.png'})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else "benchmarks/results/cpu")
    print(render(directory, Path("docs")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
