"""``python -m benchmarks.exporting``: ``gtdsl.export`` of MiniLM's ``hidden_states``, its
AOTInductor compile, and the time per call of the gtdsl model, the exported program's
``module()`` and the AOTInductor package at sizes other than the example's (one thread,
process CPU time, min of ``--calls`` calls; outputs compared with the model's)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def _best(f: Any, x: Any, calls: int) -> float:
    times = []
    for _ in range(calls):
        t = time.process_time()
        f(x)
        times.append(time.process_time() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    import torch

    import gtdsl
    from gtdsl.models.bert import Bert

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    bert = Bert("all-MiniLM-L6-v2")
    g = torch.Generator().manual_seed(0)
    t = time.process_time()
    ep = gtdsl.export(bert.hidden_states, torch.randint(0, 1000, (2, 7), generator=g))
    print(f"export: {time.process_time() - t:.1f} s CPU")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.process_time()
        path = torch._inductor.aoti_compile_and_package(
            ep, package_path=str(Path(tmp) / "minilm.pt2"))
        print(f"AOTInductor compile: {time.process_time() - t:.1f} s CPU (this process)")
        package = torch._inductor.aoti_load_package(path)
        program = ep.module()
        for b, s in ((1, 16), (8, 64), (32, 128)):
            x = torch.randint(0, 1000, (b, s), generator=g)
            with torch.no_grad():
                want = bert.hidden_states(x)
                errors = [(f(x) - want).abs().max().item() for f in (program, package)]
                ms = [_best(f, x, a.calls) * 1000 for f in (bert.hidden_states, program,
                                                            package)]
            print(f"b={b} s={s}: gtdsl {ms[0]:.2f} ms, exported module() {ms[1]:.2f} ms, "
                  f"AOTInductor {ms[2]:.2f} ms; max difference {errors[0]:.1e} (module), "
                  f"{errors[1]:.1e} (AOTInductor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
