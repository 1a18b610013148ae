"""The workloads of docs/benchmarks.md: each a gtdsl function, the same computation in eager
torch, a size sweep per device kind, and how many bytes and FLOPs one call moves or does (tutorial
conventions: each input read once, each output written once; a matmul is 2·M·N·K)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    source: str  # a .gt module (DT stands for the dtype); the function benchmarked is `fn`
    eager: Callable[..., Any]
    inputs: Callable[[dict[str, int], str, torch.dtype], list[Any]]
    cpu_sizes: tuple[dict[str, int], ...]
    gpu_sizes: tuple[dict[str, int], ...]
    bytes: Callable[[dict[str, int], int], float]  # sizes, element size
    flops: Callable[[dict[str, int]], float] = lambda s: 0.0
    metric: str = "GB/s"  # or "TFLOP/s"
    size_key: str = "n"  # the size the plots put on the x axis

    def gt_source(self, dtype: str) -> str:
        return self.source.replace("DT[", f"{dtype}[")

    def quick_sizes(self, device: str) -> tuple[dict[str, int], ...]:
        sizes = self.cpu_sizes if device == "cpu" else self.gpu_sizes
        return sizes[:2]


def _randn(*shape: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(*shape, device=device, dtype=dtype)


def _p(s: dict[str, int], *names: str) -> int:
    out = 1
    for n in names:
        out *= s[n]
    return out


ELEMENTWISE = Workload(
    "elementwise", "fused elementwise chain gelu(x*a+b)*sigmoid(y)+x",
    "def fn(x: DT[n], y: DT[n], a: float, b: float) -> DT[n]:\n"
    "    return gelu(x * a + b) * sigmoid(y) + x\n",
    lambda x, y, a, b: F.gelu(x * a + b) * torch.sigmoid(y) + x,
    lambda s, d, t: [_randn(s["n"], device=d, dtype=t), _randn(s["n"], device=d, dtype=t),
                     1.5, 0.25],
    tuple({"n": n} for n in (1 << 10, 1 << 14, 781 * 1823, 1 << 22)),
    tuple({"n": 1 << k} for k in range(12, 29, 2)) + ({"n": 781 * 5121},),
    lambda s, e: 3 * s["n"] * e,
)

SOFTMAX = Workload(
    "softmax", "softmax over the last dim",
    "def fn(x: DT[m, n]) -> DT[m, n]:\n    return softmax(x, -1)\n",
    lambda x: torch.softmax(x, -1),
    lambda s, d, t: [_randn(s["m"], s["n"], device=d, dtype=t)],
    tuple({"m": 512, "n": n} for n in (256, 781, 1823, 4096)),
    tuple({"m": 4096, "n": n} for n in (256, 1024, 4096, 5121, 16384)),
    lambda s, e: 2 * _p(s, "m", "n") * e,
)

LAYER_NORM = Workload(
    "layer_norm", "layer_norm forward",
    "def fn(x: DT[m, n], w: DT[n], b: DT[n]) -> DT[m, n]:\n"
    "    return layer_norm(x, (n,), w, b, 1e-5)\n",
    lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, 1e-5),
    lambda s, d, t: [_randn(s["m"], s["n"], device=d, dtype=t),
                     _randn(s["n"], device=d, dtype=t), _randn(s["n"], device=d, dtype=t)],
    tuple({"m": 512, "n": n} for n in (512, 781, 1823, 4096)),
    tuple({"m": 4096, "n": n} for n in (512, 1024, 4096, 5121, 16384)),
    lambda s, e: (2 * _p(s, "m", "n") + 2 * s["n"]) * e,
)

RMS_NORM = Workload(
    "rms_norm", "rms_norm forward (written out in gtdsl)",
    "def fn(x: DT[m, n], w: DT[n]) -> DT[m, n]:\n"
    "    return x * rsqrt(mean(x * x, dim=-1, keepdim=True) + 1e-6) * w\n",
    lambda x, w: x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-6) * w,
    lambda s, d, t: [_randn(s["m"], s["n"], device=d, dtype=t),
                     _randn(s["n"], device=d, dtype=t)],
    tuple({"m": 512, "n": n} for n in (512, 781, 1823, 4096)),
    tuple({"m": m, "n": n} for m in (4096, 8192) for n in (4096, 8192)),
    lambda s, e: (2 * _p(s, "m", "n") + s["n"]) * e,
)

MATMUL = Workload(
    "matmul", "matmul",
    "def fn(a: DT[m, k], b: DT[k, n]) -> DT[m, n]:\n    return a @ b\n",
    lambda a, b: a @ b,
    lambda s, d, t: [_randn(s["m"], s["k"], device=d, dtype=t),
                     _randn(s["k"], s["n"], device=d, dtype=t)],
    tuple({"m": n, "k": n, "n": n} for n in (128, 256, 781, 1024)),
    tuple({"m": n, "k": n, "n": n} for n in (1024, 2048, 4096, 8192)) + tuple(
        {"m": 8192, "k": 4096, "n": n} for n in (4096, 11008, 14336)),
    lambda s, e: (_p(s, "m", "k") + _p(s, "k", "n") + _p(s, "m", "n")) * e,
    lambda s: 2.0 * _p(s, "m", "n", "k"), "TFLOP/s",
)

LINEAR_GELU = Workload(
    "linear_gelu", "matmul + bias + GELU epilogue",
    "def fn(x: DT[m, k], w: DT[n, k], b: DT[n]) -> DT[m, n]:\n"
    "    return gelu(x @ w.T + b)\n",
    lambda x, w, b: F.gelu(x @ w.T + b),
    lambda s, d, t: [_randn(s["m"], s["k"], device=d, dtype=t),
                     _randn(s["n"], s["k"], device=d, dtype=t), _randn(s["n"], device=d, dtype=t)],
    tuple({"m": n, "k": n, "n": n} for n in (128, 256, 781, 1024)),
    tuple({"m": n, "k": n, "n": n} for n in (1024, 2048, 4096, 8192)),
    lambda s, e: (_p(s, "m", "k") + _p(s, "k", "n") + _p(s, "m", "n") + s["n"]) * e,
    lambda s: 2.0 * _p(s, "m", "n", "k"), "TFLOP/s",
)

ATTENTION = Workload(
    "attention", "attention forward",
    "def fn(q: DT[b, h, s, d], k: DT[b, h, s, d], v: DT[b, h, s, d]) -> "
    "DT[b, h, s, d]:\n    return scaled_dot_product_attention(q, k, v, is_causal=True)\n",
    lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    lambda s, d, t: [_randn(s["b"], s["h"], s["s"], s["d"], device=d, dtype=t)
                     for _ in range(3)],
    tuple({"b": 1, "h": 4, "s": n, "d": 64} for n in (128, 256, 512)),
    tuple({"b": 4, "h": 32, "s": n, "d": 128} for n in (1024, 2048, 4096, 8192)),
    lambda s, e: 4 * _p(s, "b", "h", "s", "d") * e,
    lambda s: 2.0 * _p(s, "b", "h", "s", "s", "d"), "TFLOP/s", "s",  # causal: half of 4·B·H·S²·D
)

BLOCK = Workload(
    "block", "transformer block (norm, qkv, attention, out + residual, norm, MLP + residual)",
    "def fn(x: DT[b, s, d], wqkv: DT[e, d], wo: DT[d, d], w1: DT[f, d],\n"
    "       w2: DT[d, f], g1: DT[d], g2: DT[d], heads: int) -> DT[b, s, d]:\n"
    "    h = x * rsqrt(mean(x * x, dim=-1, keepdim=True) + 1e-6) * g1\n"
    "    qkv = (h @ wqkv.T).unflatten(-1, (3, heads, -1))\n"
    "    q = qkv[:, :, 0].transpose(1, 2)\n"
    "    k = qkv[:, :, 1].transpose(1, 2)\n"
    "    v = qkv[:, :, 2].transpose(1, 2)\n"
    "    a = scaled_dot_product_attention(q, k, v, is_causal=True)\n"
    "    x = x + a.transpose(1, 2).flatten(-2) @ wo.T\n"
    "    h = x * rsqrt(mean(x * x, dim=-1, keepdim=True) + 1e-6) * g2\n"
    "    return x + gelu(h @ w1.T) @ w2.T\n",
    lambda x, wqkv, wo, w1, w2, g1, g2, heads: _block_eager(x, wqkv, wo, w1, w2, g1, g2, heads),
    lambda s, d, t: [_randn(s["b"], s["s"], s["d"], device=d, dtype=t),
                     _randn(3 * s["d"], s["d"], device=d, dtype=t) / s["d"] ** 0.5,
                     _randn(s["d"], s["d"], device=d, dtype=t) / s["d"] ** 0.5,
                     _randn(4 * s["d"], s["d"], device=d, dtype=t) / s["d"] ** 0.5,
                     _randn(s["d"], 4 * s["d"], device=d, dtype=t) / (4 * s["d"]) ** 0.5,
                     _randn(s["d"], device=d, dtype=t), _randn(s["d"], device=d, dtype=t),
                     s["h"]],
    tuple({"b": 1, "s": n, "d": 256, "h": 4} for n in (64, 128, 256)),
    tuple({"b": 4, "s": n, "d": 4096, "h": 32} for n in (512, 1024, 2048)),
    lambda s, e: 0.0,
    lambda s: 2.0 * _p(s, "b", "s") * 12 * s["d"] ** 2 + 2.0 * _p(s, "b", "s", "s", "d"),
    "TFLOP/s", "s",
)


def _block_eager(x, wqkv, wo, w1, w2, g1, g2, heads):
    h = x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-6) * g1
    qkv = (h @ wqkv.T).unflatten(-1, (3, heads, -1))
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + a.transpose(1, 2).flatten(-2) @ wo.T
    h = x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + 1e-6) * g2
    return x + F.gelu(h @ w1.T) @ w2.T


WORKLOADS = (ELEMENTWISE, SOFTMAX, LAYER_NORM, RMS_NORM, MATMUL, LINEAR_GELU, ATTENTION, BLOCK)
