"""The GPU lane in one command: the gpu tests and the GPU benchmark rows, with their results.

It checks the dependencies, runs the ``gpu`` tests and the GPU benchmark rows, and writes
everything under ``benchmarks/results/<gpu-name>/``.

Run on a machine with a CUDA GPU, from the repository root::

    benchmarks/gpu_lane.sh            # or: python -m benchmarks --gpu-lane

The steps, each bounded so the lane ends in about 8 minutes on one H100:

1. dependencies: torch with a CUDA device, triton, lark, pytest and hypothesis, and gtdsl
   importable from this checkout; whatever is missing is named with the command that
   installs it (``lark`` offline: ``pip install --no-index --find-links wheels/ lark``, which
   ``gpu_lane.sh`` runs itself when a ``wheels/`` or ``.whl/`` folder holds it), and the lane
   stops (exit status 2);
2. ``environment.json``: versions, the GPU, its driver (``nvidia-smi``), the commit;
3. ``pytest -m gpu tests/gpu``: its output (``pytest.txt``), JUnit report (``pytest.xml``) and
   counts (``pytest-summary.json``);
4. the benchmark suite on CUDA at ``--quick`` sizes (two per workload, bf16), one workload
   per process so that one slow workload cannot lose the others' rows: ``results.json``,
   ``metrics.json``, ``params.yaml``, ``plots/`` and ``bench.txt``, as the suite writes them;
   each row's result is checked against eager torch (relative error at most 5e-2 in bf16);
5. ``lane.json`` and ``lane.txt``: what each step did and the verdict (exit status 0 when
   every step passed, 1 otherwise).

``--rehearse`` runs the same steps on the CPU, in Triton's interpreter at tiny sizes, into a
temporary folder (or ``--out``): the dependencies but CUDA, the environment, the ``gpu``
tests (collected and skipped without a GPU), the suite with ``--tiny --backend triton``. A
test runs it (``tests/unit/benchmarks/test_gpu_lane.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WHEEL_DIRS = ("wheels", ".whl")  # where gpu_lane.sh looks for carried wheels
TOLERANCE = {"bf16": 5e-2, "f32": 1e-3}  # largest relative error of a row against eager
BUDGET_S = 8 * 60


@dataclass
class Missing:
    name: str
    why: str
    how: str


def check_dependencies(rehearse: bool) -> list[Missing]:
    """What the lane needs and this Python lacks, each with how to install it."""
    missing = []
    wheels = next((d for d in WHEEL_DIRS if (REPO / d).is_dir()), None)
    try:
        import torch
    except ImportError:
        missing.append(Missing("torch", "not installed", "pip install torch (a CUDA build: "
                               "https://pytorch.org/get-started/locally/)"))
        torch = None
    if torch is not None and not rehearse and not torch.cuda.is_available():
        why = "this torch has no CUDA support" if torch.version.cuda is None else \
            "torch sees no CUDA device"
        missing.append(Missing("torch with CUDA", why, "install a CUDA build of torch and "
                               "check the GPU with nvidia-smi (or rehearse on the CPU: "
                               "--rehearse)"))
    for name, why, how in (
            ("triton", "the kernels", "pip install triton"),
            ("lark", "gtdsl's parser", "pip install 'lark>=1.2,<2'" + (
                f"; offline: pip install --no-index --find-links {wheels}/ lark" if wheels
                else "; offline: carry its wheel in wheels/ and pip install --no-index "
                "--find-links wheels/ lark")),
            ("pytest", "the gpu tests", "pip install pytest"),
            ("hypothesis", "the tests' configuration", "pip install hypothesis")):
        if importlib.util.find_spec(name) is None:
            missing.append(Missing(name, f"not installed ({why})", how))
    if not any(m.name == "lark" for m in missing):
        try:
            importlib.import_module("gtdsl")
        except Exception as e:  # broken installs and the wrong directory alike
            missing.append(Missing("gtdsl", f"cannot be imported: {type(e).__name__}: {e}",
                                   f"run from the repository root ({REPO}) or pip install "
                                   "-e ."))
    return missing


def _run(cmd: list[str], env: dict[str, str], timeout: float, log: Path) -> dict[str, Any]:
    """Run ``cmd`` in the repository, its output to ``log``; how it ended."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            p = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                               timeout=max(timeout, 1))
            code, timed_out = p.returncode, False
        except subprocess.TimeoutExpired:
            code, timed_out = None, True
    return {"command": " ".join(cmd), "returncode": code, "timed_out": timed_out,
            "seconds": round(time.perf_counter() - t0, 1)}


def _env(rehearse: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    if rehearse:
        env["TRITON_INTERPRET"] = "1"
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, even where a GPU exists
    else:
        env.pop("TRITON_INTERPRET", None)
    return env


def environment(rehearse: bool) -> dict[str, Any]:
    import torch

    import gtdsl

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "gtdsl": gtdsl.__version__, "rehearsal": rehearse,
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", "--gpu-lane",
                             *sys.argv[1:]])}
    for name in ("triton", "lark", "pytest", "hypothesis"):
        try:
            info[name] = importlib.import_module(name).__version__
        except Exception:
            info[name] = None
    if not rehearse and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(), capability=f"sm_{p.major}{p.minor}",
                    multiprocessors=p.multi_processor_count,
                    gpu_memory_gib=round(p.total_memory / 2 ** 30, 1))
    smi = shutil.which("nvidia-smi")
    if smi and not rehearse:
        q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True)
        info["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    git = shutil.which("git")
    if git and (REPO / ".git").exists():
        head = subprocess.run([git, "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run([git, "status", "--porcelain"], cwd=REPO, capture_output=True,
                               text=True).stdout.strip()
        info["commit"] = head or None
        info["uncommitted_changes"] = bool(dirty)
    return info


def pytest_counts(xml: Path) -> dict[str, Any]:
    """Passed, failed, errors and skipped from pytest's JUnit report."""
    if not xml.is_file():
        return {}
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors",
                                                              "skipped")}
    n["passed"] = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    n["seconds"] = round(sum(float(s.get("time", 0)) for s in suites), 1)
    n["failed_tests"] = [f"{c.get('classname')}::{c.get('name')}" for s in suites
                         for c in s.iter("testcase")
                         if c.find("failure") is not None or c.find("error") is not None]
    return n


def run_tests(out: Path, rehearse: bool, timeout: float) -> dict[str, Any]:
    xml = out / "pytest.xml"
    step = _run([sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rfEs",
                 "-p", "no:cacheprovider", f"--junitxml={xml}"], _env(rehearse), timeout,
                out / "pytest.txt")
    step["counts"] = counts = pytest_counts(xml)
    if rehearse:  # no GPU: every test is collected and skipped
        step["ok"] = step["returncode"] == 0 and counts.get("tests", 0) > 0 and \
            counts["skipped"] == counts["tests"]
    else:
        step["ok"] = step["returncode"] == 0 and counts.get("passed", 0) > 0
    (out / "pytest-summary.json").write_text(json.dumps(step, indent=1) + "\n")
    return step


def run_bench(out: Path, rehearse: bool, deadline: float, only: tuple[str, ...] = ()
              ) -> dict[str, Any]:
    """The suite, one workload per process (each bounded by what is left of the lane's
    time), its results merged into the files one run writes."""
    from benchmarks.suite import metrics, params_yaml, plots, table
    from benchmarks.workloads import WORKLOADS

    sizes = ["--tiny", "--backend", "triton"] if rehearse else ["--quick"]
    device = "cpu" if rehearse else "cuda"
    merged: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    log = out / "bench.txt"
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix="gtdsl-lane-") as tmp:
        for w in WORKLOADS:
            if only and w.name not in only:
                continue
            left = deadline - time.monotonic()
            if left < 15:
                steps.append({"workload": w.name, "ok": False, "note": "not run: out of time"})
                continue
            part = Path(tmp) / w.name
            # torch.compile is compared on the first workload only, as --quick does
            compile_ = [] if not steps and not rehearse else ["--no-compile"]
            step = _run([sys.executable, "-m", "benchmarks", "--device", device, *sizes,
                         *compile_, "--only", w.name, "--no-progress", "--out", str(part)],
                        _env(rehearse), left, part.with_suffix(".log"))
            with open(log, "a") as f:
                f.write(f"$ {step['command']}\n{part.with_suffix('.log').read_text()}\n")
            step["workload"] = w.name
            res = part / "results.json"
            if step["returncode"] == 0 and res.is_file():
                r = json.loads(res.read_text())
                if not merged:
                    merged = {k: v for k, v in r.items() if k != "workloads"}
                    merged["workloads"] = []
                merged["workloads"] += r["workloads"]
                errs = [row["gtdsl_error"] for wl in r["workloads"] for row in wl["rows"]]
                tol = TOLERANCE.get(r["workloads"][0]["dtype"], 1e-3)
                step["max_relative_error"] = max(errs)
                step["ok"] = max(errs) <= tol
                if not step["ok"]:
                    step["note"] = f"a result differs from eager torch by {max(errs):.3g} " \
                                   f"(more than {tol})"
            else:
                step["ok"] = False
                step["note"] = "timed out" if step["timed_out"] else \
                    f"exit status {step['returncode']} (see bench.txt)"
            steps.append(step)
    if merged:
        (out / "results.json").write_text(json.dumps(merged, indent=2))
        (out / "metrics.json").write_text(json.dumps(metrics(merged), indent=2))
        env = merged["environment"]
        params = {"device": device, "quick": not rehearse, "tiny": rehearse,
                  "dtype": merged["workloads"][0]["dtype"],
                  "workloads": [w["name"] for w in merged["workloads"]],
                  "torch_compile": False if rehearse else "first workload",
                  **{k: v for k, v in env.items() if k != "device"}}
        (out / "params.yaml").write_text(params_yaml(params))
        plots(merged, out / "plots")
        with open(log, "a") as f:
            f.write("\n# all workloads\n" + table(merged) + "\n")
    return {"ok": bool(steps) and all(s["ok"] for s in steps), "workloads": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks --gpu-lane",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rehearse", action="store_true", default=bool(os.environ.get(
        "GTDSL_LANE_REHEARSE")), help="on the CPU, in Triton's interpreter, at tiny sizes, "
        "into a temporary folder (also: GTDSL_LANE_REHEARSE=1)")
    ap.add_argument("--out", metavar="DIR", help="where results go (default "
                    "benchmarks/results/<gpu-name>; rehearsals: a temporary folder)")
    ap.add_argument("--tests-timeout", type=float, default=210.0, metavar="S")
    ap.add_argument("--budget", type=float, default=BUDGET_S, metavar="S",
                    help=f"the whole lane's time (default {BUDGET_S} s)")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--only", action="append", default=[], metavar="WORKLOAD",
                    help="benchmark only these workloads")
    a = ap.parse_args(argv)
    start = time.monotonic()
    missing = check_dependencies(a.rehearse)
    if missing:
        print("The GPU lane cannot run; missing:", file=sys.stderr)
        for m in missing:
            print(f"  - {m.name}: {m.why}\n      install: {m.how}", file=sys.stderr)
        return 2
    from benchmarks.workloads import WORKLOADS

    unknown = sorted(set(a.only) - {w.name for w in WORKLOADS})
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)}; choose from "
                 + ", ".join(w.name for w in WORKLOADS))
    if a.out:
        out = Path(a.out)
    elif a.rehearse:
        out = Path(tempfile.mkdtemp(prefix="gtdsl-gpu-lane-rehearsal-"))
    else:
        from benchmarks.suite import results_name

        out = HERE / "results" / results_name("cuda")
    out.mkdir(parents=True, exist_ok=True)
    env = environment(a.rehearse)
    (out / "environment.json").write_text(json.dumps(env, indent=1) + "\n")
    where = env.get("gpu") or "the CPU (rehearsal: Triton's interpreter)"
    print(f"GPU lane on {where}; results in {out}", flush=True)
    lane: dict[str, Any] = {"rehearsal": a.rehearse, "out": str(out), "gpu": env.get("gpu")}
    if not a.skip_tests:
        print("- pytest -m gpu tests/gpu ...", flush=True)
        lane["tests"] = run_tests(out, a.rehearse, min(a.tests_timeout, a.budget))
    if not a.skip_bench:
        print("- benchmark rows ...", flush=True)
        lane["bench"] = run_bench(out, a.rehearse, start + a.budget, tuple(a.only))
    lane["seconds"] = round(time.monotonic() - start, 1)
    lane["ok"] = all(lane[s]["ok"] for s in ("tests", "bench") if s in lane)
    (out / "lane.json").write_text(json.dumps(lane, indent=1) + "\n")
    text = summary(lane)
    (out / "lane.txt").write_text(text + "\n")
    print(text)
    return 0 if lane["ok"] else 1


def summary(lane: dict[str, Any]) -> str:
    lines = [f"GPU lane{' (rehearsal)' if lane['rehearsal'] else ''}: "
             f"{'passed' if lane['ok'] else 'FAILED'} in {lane['seconds']} s; results in "
             f"{lane['out']}"]
    t = lane.get("tests")
    if t is not None:
        c = t.get("counts") or {}
        state = "timed out" if t["timed_out"] else f"exit status {t['returncode']}"
        lines.append(f"  tests: {c.get('passed', 0)} passed, {c.get('failures', 0)} failed, "
                     f"{c.get('errors', 0)} errors, {c.get('skipped', 0)} skipped "
                     f"({state}, {t['seconds']} s)")
        lines += [f"    failed: {name}" for name in c.get("failed_tests", [])]
    b = lane.get("bench")
    if b is not None:
        for s in b["workloads"]:
            err = f", max relative error {s['max_relative_error']:.2g}" \
                if "max_relative_error" in s else ""
            lines.append(f"  bench {s['workload']}: {'ok' if s['ok'] else 'FAILED'}"
                         f"{err}{' (' + s['note'] + ')' if s.get('note') else ''}"
                         f"{', ' + str(s['seconds']) + ' s' if 'seconds' in s else ''}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
