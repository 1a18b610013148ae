"""The ahead-of-time lane: every Triton kernel gtdsl launches for the examples, the models'
blocks and the benchmark workloads, compiled for GPU targets without a GPU, with the
registers, spills and shared memory each uses.

The kernels are those ``gtdsl compile FILE --fn NAME --emit cubin`` compiles (``gtdsl.cli.aot``
finds them in the function's fused IR and asks each launcher for its specs at the given
sizes; ``gtdsl.lower.triton.aot`` compiles them). The sets:

- ``examples``: every function of ``docs/examples/**/*.gt``, at ``gtdsl run``'s sizes;
- ``models``: the layers of ``gtdsl/models`` (BERT's layer, GPT-2's block, T5's encoder and
  decoder layers and decoding step) at the models' real sizes;
- ``workloads``: every workload of ``benchmarks/workloads.py`` in bf16 (the GPU suite's
  dtype), at a small and a very long row: its swept size (``n``, or ``s`` for attention and
  the block) 128 and 65536, the others as in its first GPU size;
- ``ops``: the interpreter lane's cases (``tests/differential/test_triton.py``: every op with
  a Triton lowering), at sizes m=4, n=128.

Every function's kernels include those a training step adds: the backward kernel of each
pointwise and row group, a matrix product's forward that also stores the product and its
gradient products, attention's backward kernels.

Each distinct kernel is compiled once per target (the same template at the same settings
serves several functions). A kernel that spills, needs more shared memory than the target
has, or does not compile fails the run (exit status 1; ``--allow-spills`` relaxes spills).

Run: ``python -m benchmarks.aot --all`` (writes ``benchmarks/results/aot/``); ``--subset ci``
is what the test suite compiles. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SETS = ("examples", "models", "workloads", "ops")
ROWS = (128, 65536)  # the small and the very long row of each workload

# The models' layers at their real sizes (BERT-base, GPT-2 small, T5-small).
MODEL_BLOCKS = [
    ("bert.gt", "layer", {"H": 12, "K": 64, "F": 3072, "b": 1, "s": 128}),
    ("gpt2.gt", "block", {"H": 12, "K": 64, "b": 1, "s": 128, "t": 128}),
    ("t5.gt", "encoder_layer", {"D": 512, "H": 8, "K": 64, "F": 2048, "b": 1, "s": 128}),
    ("t5.gt", "decoder_layer", {"D": 512, "H": 8, "K": 64, "F": 2048, "b": 1, "s": 128,
                                "t": 128}),
    ("t5.gt", "decoder_step", {"D": 512, "H": 8, "K": 64, "F": 2048, "b": 1, "s": 1,
                               "t": 128}),
]


@dataclass
class Unit:
    """One function compiled at one set of sizes."""

    set: str
    label: str
    module: Callable[[], Any]  # loads the module (backend="triton")
    fn: str
    sizes: dict[str, int] = field(default_factory=dict)
    # the call's arguments (META tensors): the sizes are those they bind, not ``sizes``
    values: Callable[[], list[Any]] | None = None
    skip_kinds: tuple[str, ...] = ()  # kernels of these kinds are left out (the CI subset)
    archs: tuple[str, ...] = ()  # only these targets (the CI subset); () every one asked


def _file(path: Path) -> Callable[[], Any]:
    def load() -> Any:
        from gtdsl.driver import load as load_file

        return load_file(path, backend="triton")
    return load


def _source(text: str, name: str) -> Callable[[], Any]:
    def load() -> Any:
        from gtdsl.driver import load_source

        return load_source(text, name, backend="triton")
    return load


def example_units() -> list[Unit]:
    from gtdsl.driver import load

    out = []
    for path in sorted((REPO / "docs" / "examples").rglob("*.gt")):
        rel = path.relative_to(REPO)
        m = load(path, backend="triton")
        for q in m.functions:
            if "." not in q:  # the file's own functions (imported ones are their files')
                out.append(Unit("examples", f"{rel}:{q}", _file(path), q))
    return out


def model_units() -> list[Unit]:
    return [Unit("models", f"gtdsl/models/{f}:{fn}", _file(REPO / "gtdsl" / "models" / f), fn,
                 dict(sizes)) for f, fn, sizes in MODEL_BLOCKS]


def workload_units(rows: tuple[int, ...] = ROWS, only: tuple[str, ...] = ()) -> list[Unit]:
    from benchmarks.workloads import WORKLOADS

    out = []
    for w in WORKLOADS:
        if only and w.name not in only:
            continue
        for n in rows:
            sizes = {**w.gpu_sizes[0], w.size_key: n}
            label = f"workload {w.name} " + ",".join(f"{k}={v}" for k, v in sizes.items())
            out.append(Unit("workloads", label, _source(w.gt_source("bf16"), f"{w.name}.gt"),
                            "fn", sizes, _meta_inputs(w, sizes)))
    return out


def _meta_inputs(w: Any, sizes: dict[str, int]) -> Callable[[], list[Any]]:
    """The workload's own arguments at these sizes, as META tensors (the GPU suite's bf16)."""
    def values() -> list[Any]:
        import torch

        return w.inputs(sizes, "meta", torch.bfloat16)
    return values


def op_units() -> list[Unit]:
    sys.path.insert(0, str(REPO))
    before = os.environ.get("TRITON_INTERPRET")
    try:  # the tests' conftest switches the interpreter on for Triton's first import
        from tests.differential.test_triton import CASES
    finally:
        if before is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = before

    return [Unit("ops", f"op {expr} | {params}",
                 _source(f"def f({params}):\n    return {expr}\n", f"op{i}.gt"), "f",
                 {"m": 4, "n": 128, "k": 8, "b": 2})
            for i, (expr, params) in enumerate(CASES)]


def ci_units() -> list[Unit]:
    """What the test suite compiles (well under a minute of compiling on two cores): pointwise
    and row kernels at a small and a very long row, an example and a model layer's own
    kernels for both targets; attention and every tile of one matmul with an epilogue (bf16,
    the GPU's dtype) for sm_90, the H100's target (the full set compiles them for both). Each
    with the backward kernels a training step adds (``kernels_of`` lists them)."""
    pick = workload_units(only=("elementwise", "softmax", "layer_norm"))
    for u in workload_units((128,), ("attention", "linear_gelu")):
        u.archs = ("sm_90",)
        pick.append(u)
    examples = REPO / "docs" / "examples" / "language"
    pick.append(Unit("examples", "docs/examples/language/rms_norm.gt:rms_norm",
                     _file(examples / "rms_norm.gt"), "rms_norm"))
    f, fn, sizes = MODEL_BLOCKS[2]
    pick.append(Unit("models", f"gtdsl/models/{f}:{fn}", _file(REPO / "gtdsl" / "models" / f),
                     fn, dict(sizes), skip_kinds=("matmul", "attention")))
    return pick


# ====================================================================== compiling


def _compile_one(job: tuple[Any, str]) -> Any:
    from gtdsl.lower.triton.aot import compile_spec

    return compile_spec(*job)


def run(units: list[Unit], archs: list[str], jobs: int = 1,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Collect every unit's kernels for each target, compile each distinct one once, and
    return the rows: one per unit, kernel and target."""
    importlib.import_module("triton")  # before any launcher plans, outside the interpreter

    from gtdsl.cli.aot import AotInputError, bound_sizes, entry_sizes, kernels_of
    from gtdsl.lower.triton.aot import target_of

    planned: list[tuple[Unit, str, Any]] = []  # (unit, arch, Kernel)
    unlaunched: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for u in units:
        try:
            m = u.module()
            f = m.functions[u.fn]
        except Exception as e:  # a file that no longer checks: reported, the rest compiled
            problems.append({"unit": u.label, "arch": ",".join(archs),
                             "error": f"cannot load it: {type(e).__name__}: {e}"[:500]})
            continue
        for arch in archs:
            if u.archs and arch not in u.archs:
                continue
            try:
                env, rows = bound_sizes(m, f, u.values()) if u.values is not None else \
                    entry_sizes(m, f, u.sizes)
                kernels, skipped = kernels_of(m, u.fn, env, rows, target_of(arch),
                                              backward=True)
            except AotInputError as e:
                problems.append({"unit": u.label, "arch": arch, "error": str(e)})
                continue
            planned += [(u, arch, k) for k in kernels if k.kind not in u.skip_kinds]
            if arch == next(a for a in archs if not u.archs or a in u.archs):
                unlaunched += [{"set": u.set, "unit": u.label, "function": s.function,
                                "kernel": s.group, "kind": s.kind, "shapes": s.shapes}
                               for s in skipped]
    key_of = {}
    jobs_list: list[tuple[Any, str]] = []
    for u, arch, k in planned:
        if k.spec is None:
            continue
        sp = k.spec
        key = (arch, sp.source, tuple(sorted(sp.signature.items())),
               repr(sorted(sp.constexprs.items())), sp.num_warps, sp.num_stages, sp.maxnreg)
        if key not in key_of:
            key_of[key] = len(jobs_list)
            jobs_list.append((sp, arch))
    progress(f"{len(planned)} kernels of {len(units)} functions, {len(jobs_list)} distinct "
             f"compiles for {', '.join(archs)}")
    t0 = time.perf_counter()
    if jobs > 1 and len(jobs_list) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            compiled = list(pool.map(_compile_one, jobs_list))
    else:
        compiled = []
        for i, job in enumerate(jobs_list):
            compiled.append(_compile_one(job))
            progress(f"[{i + 1}/{len(jobs_list)}] {job[1]} {job[0].name}")
    wall = time.perf_counter() - t0
    out_rows = []
    for u, arch, k in planned:
        if k.spec is None:
            c = {"name": f"gtdsl_{k.group}", "arch": arch, "error":
                 f"its launcher could not plan the launch: {k.error}", "problems": []}
        else:
            sp = k.spec
            key = (arch, sp.source, tuple(sorted(sp.signature.items())),
                   repr(sorted(sp.constexprs.items())), sp.num_warps, sp.num_stages, sp.maxnreg)
            c = compiled[key_of[key]].as_dict()
        out_rows.append({"set": u.set, "unit": u.label, "function": k.function,
                         "kernel": k.group, "kind": k.kind, "phase": k.phase, **c})
    bad = [r for r in out_rows if r.get("error") or r.get("problems")]
    return {"kernels": out_rows, "unlaunched": unlaunched, "input_errors": problems,
            "summary": {"functions": len(units), "kernels": len(out_rows),
                        "compiles": len(jobs_list), "wall_s": round(wall, 1),
                        "compile_s": round(sum(c.compile_s for c in compiled), 1),
                        "spills": sum(1 for r in out_rows if not r.get("error") and
                                      r.get("problems")),
                        "errors": sum(1 for r in out_rows if r.get("error")),
                        "bad": len(bad), "unlaunched": len(unlaunched)}}


def _consts(c: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in (c or {}).items())


def report(result: dict[str, Any]) -> str:
    """The rows as a table, a summary, and each spill or failure spelled out."""
    lines = [f"{'target':<6} {'kind':<9} {'phase':<8} {'kernel':<28} {'warps':>5} "
             f"{'stages':>6} {'regs':>4} {'spill':>6} {'shared':>7} {'time':>6}  unit; constants"]
    for r in result["kernels"]:
        if r.get("error"):
            state = f"FAILED {r['error'][:100]}"
            lines.append(f"{r['arch']:<6} {r['kind']:<9} {r['phase']:<8} {r['name']:<28} "
                         f"{state}  {r['unit']}")
            continue
        flag = "  SPILLS" if r["spill_bytes"] or r["local_bytes"] else ""
        flag += "  SHARED" if any("shared" in p for p in r["problems"]) else ""
        lines.append(f"{r['arch']:<6} {r['kind']:<9} {r['phase']:<8} {r['name']:<28} "
                     f"{r['num_warps']:>5} {r['num_stages']:>6} {r['registers']:>4} "
                     f"{r['spill_bytes']:>6} {r['shared_bytes']:>7} {r['compile_s']:>5.2f}s  "
                     f"{r['unit']}; {_consts(r['constexprs'])}{flag}")
    s = result["summary"]
    lines.append(f"\n{s['functions']} functions, {s['kernels']} kernels, {s['compiles']} "
                 f"distinct compiles ({s['compile_s']} s of compiling, {s['wall_s']} s wall): "
                 f"{s['spills']} over the target's registers or shared memory, "
                 f"{s['errors']} failed; {s['unlaunched']} kernels run as torch ops at their "
                 "sizes")
    seen = set()
    for r in result["kernels"]:
        if not (r.get("error") or r.get("problems")):
            continue
        key = (r["arch"], r["name"], r["phase"], _consts(r.get("constexprs")),
               r.get("num_warps"), r.get("num_stages"), r.get("error"))
        if key in seen:
            continue
        seen.add(key)
        what = r.get("error") or "; ".join(r["problems"])
        lines.append(f"  {r['arch']} {r['name']} ({r['kind']}, {r['phase']}) "
                     f"{_consts(r.get('constexprs'))} warps={r.get('num_warps')} "
                     f"stages={r.get('num_stages')}: {what}  [{r['unit']}]")
    for u in result["unlaunched"]:
        lines.append(f"  runs as torch ops: {u['kernel']} ({u['kind']}) of `{u['function']}` "
                     f"for {u['shapes']}  [{u['unit']}]")
    for p in result["input_errors"]:
        lines.append(f"  cannot build the inputs of {p['unit']} ({p['arch']}): {p['error']}")
    return "\n".join(lines)


def dump(result: dict[str, Any]) -> str:
    """The result as JSON, one kernel a line (diffs between runs stay readable)."""
    parts = []
    for k, v in result.items():
        if isinstance(v, list):
            body = ",\n".join("  " + json.dumps(x, default=str) for x in v)
            parts.append(f"{json.dumps(k)}: [\n{body}\n ]" if v else f"{json.dumps(k)}: []")
        else:
            parts.append(f"{json.dumps(k)}: {json.dumps(v, default=str)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def environment() -> dict[str, Any]:
    import torch
    import triton

    import gtdsl

    return {"python": platform.python_version(), "torch": torch.__version__,
            "triton": triton.__version__, "gtdsl": gtdsl.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--all", action="store_true", help="every set: " + ", ".join(SETS))
    ap.add_argument("--set", action="append", default=[], choices=SETS,
                    help="compile this set (repeatable)")
    ap.add_argument("--subset", choices=("ci",), help="ci: what the test suite compiles")
    ap.add_argument("--archs", default="sm_80,sm_90", help="targets (default sm_80,sm_90)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="compile in this many processes (default: one per CPU)")
    ap.add_argument("--out", metavar="DIR", help="write kernels.json and kernels.txt here "
                    "(default with --all: benchmarks/results/aot)")
    ap.add_argument("--json", metavar="FILE", help="write the JSON here too")
    ap.add_argument("--allow-spills", action="store_true",
                    help="exit 0 when kernels spill (compile failures still fail)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        # Triton must be imported outside its interpreter: run again without the variable
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        return subprocess.run([sys.executable, "-m", "benchmarks.aot",
                               *(sys.argv[1:] if argv is None else argv)], env=env,
                              cwd=REPO).returncode
    importlib.import_module("triton")  # first, outside the interpreter
    from gtdsl.lower.triton.aot import ARCHS

    archs = [t.strip() for t in a.archs.split(",") if t.strip()]
    unknown = [t for t in archs if t not in ARCHS]
    if unknown or not archs:
        print(f"error: unknown target {', '.join(unknown)}; choose from {', '.join(ARCHS)}",
              file=sys.stderr)
        return 2
    sets = list(SETS) if a.all else a.set
    if not sets and not a.subset:
        ap.error("choose --all, --set NAME or --subset ci")
    units: list[Unit] = ci_units() if a.subset == "ci" else []
    makers = {"examples": example_units, "models": model_units, "workloads": workload_units,
              "ops": op_units}
    for s in sets:
        units += makers[s]()
    say = (lambda s: None) if a.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    result = run(units, archs, max(1, a.jobs), say)
    result["environment"] = environment()
    result["archs"] = archs
    result["sets"] = sets or [f"subset {a.subset}"]
    text = report(result)
    print(text)
    out = Path(a.out) if a.out else (HERE / "results" / "aot" if a.all else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "kernels.json").write_text(dump(result))
        (out / "kernels.txt").write_text(text + "\n")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(dump(result))
    s = result["summary"]
    if s["errors"] or result["input_errors"] or (s["spills"] and not a.allow_spills):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
