"""``python -m benchmarks.serving``: latency and throughput of ``gtdsl serve`` for N concurrent
requests (default 64) from a real HTTP client, with dynamic batching and without it
(``--max-batch 1``), for MiniLM embeddings and greedy completions of the tiny story model of
docs/models.md. Needs the ``serve`` extra and httpx.

    python -m benchmarks.serving [--requests 64] [--rounds 3] [--out FILE.json]

Each configuration runs ``--rounds`` times (after one warm-up round); the best round's wall
time gives the throughput, and its latencies the percentiles. The server runs in this
process (uvicorn in a thread), the model on one thread.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


async def _round(url: str, bodies: list[dict]) -> tuple[float, list[float], int]:
    import httpx

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(
            max_connections=len(bodies))) as client:
        async def one(body: dict) -> tuple[int, float]:
            start = time.perf_counter()
            r = await client.post(url, json=body)
            return r.status_code, time.perf_counter() - start

        start = time.perf_counter()
        done = await asyncio.gather(*(one(b) for b in bodies))
    wall = time.perf_counter() - start
    return wall, sorted(t for _, t in done), sum(code != 200 for code, _ in done)


def _measure(folder: str, path: str, bodies: list[dict], max_batch: int, rounds: int
             ) -> dict[str, Any]:
    from gtdsl.serving import Limits, LocalServer, create_app

    app = create_app(folder, Limits(max_batch=max_batch, max_queue=max(256, len(bodies))))
    with LocalServer(app) as server:
        asyncio.run(_round(server.url + path, bodies))  # warm-up
        batcher = app.state.batchers[path.rsplit("/", 1)[1]]
        best = None
        for _ in range(rounds):
            calls = batcher.calls
            wall, lat, failed = asyncio.run(_round(server.url + path, bodies))
            row = {"wall_s": round(wall, 4), "requests_per_s": round(len(bodies) / wall, 1),
                   "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
                   "p95_ms": round(lat[int(len(lat) * 0.95) - 1] * 1000, 1),
                   "max_ms": round(lat[-1] * 1000, 1), "model_calls": batcher.calls - calls,
                   "failed": failed}
            if best is None or wall < best["wall_s"]:
                best = row
    assert best is not None
    return best


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="also write the rows as JSON here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location(
        "tiny_models", REPO / "docs" / "examples" / "models" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(tiny)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        story = str(tiny.storyteller(Path(tmp) / "storyteller"))
        work = [
            ("embeddings", "all-MiniLM-L6-v2", "/v1/embeddings",
             [{"input": f"sentence number {i} about {'cats' if i % 2 else 'the weather'}"}
              for i in range(a.requests)]),
            ("completions", story, "/v1/completions",
             [{"prompt": f"the {w} and the", "max_tokens": 16, "temperature": 0}
              for w in ("sun", "moon", "star", "sea") * (a.requests // 4)]),
        ]
        for name, folder, path, bodies in work:
            for max_batch in (32, 1):
                row = {"workload": name, "requests": len(bodies), "max_batch": max_batch,
                       **_measure(folder, path, bodies, max_batch, a.rounds)}
                rows.append(row)
                print(json.dumps(row))
    for name in ("embeddings", "completions"):
        batched, single = [r for r in rows if r["workload"] == name]
        print(f"{name}: batching gives {batched['requests_per_s'] / single['requests_per_s']:.2f}x "
              "the throughput of one request per model call")
    if a.out:
        Path(a.out).write_text(json.dumps({"torch": torch.__version__, "threads": 1,
                                           "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
