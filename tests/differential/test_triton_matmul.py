"""The matmul template and its launcher, in Triton's interpreter on the CPU.

- fused products with their epilogues and ``mm`` (any strides, f16/bf16/f32) against torch
  and the reference interpreter;
- every candidate configuration of every list, in both template variants (the Hopper one
  with tensor descriptors too), computes the product at sizes that are not multiples of the
  tile;
- the tuning cache with an injected timer (the interpreter times nothing by itself): tuned
  once per (GPU, dtype, layout, size bucket), read back by a fresh tuner, corrupt, planted or
  foreign files ignored and reported once, concurrent writers leave a valid file;
- ``specs`` lists the kernels a launch compiles, per named target;
- the 32-bit offset bound is exact;
- the largest tiles compile ahead of time for sm_80 and sm_90 without spilling registers.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from gtdsl.driver import load_source
from gtdsl.ir.core import Op
from gtdsl.lower.triton.kernels import launcher_for
from gtdsl.lower.triton.matmul import (
    INTERPRETER_CONFIG, MATMUL_CONFIGS, SHARED_MEMORY, SMALL_TILE, TMA_CONFIGS,
    UNALIGNED_CONFIGS, MatmulKernel, MatmulLauncher, candidates, mm, mm_specs,
)
from gtdsl.lower.triton.tuning import MAX_FILE, Tuner, TuningKey, bucket, default_tuner
from tests.conftest import REPO

DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
# the product of the operands as stored, in f32, rounded once (what the kernels compute)
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3),
       torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(*shape: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=_g(seed)).to(dtype)


def _launcher(src: str) -> MatmulLauncher:
    """The matmul launcher of the one-kernel function ``f`` in ``src``."""
    fused = load_source(src, "mm.gt", backend="triton").f.fused()
    (eqn,) = [e for e in fused.body.eqns if e.op is Op.KERNEL]
    launcher = launcher_for(eqn)
    assert isinstance(launcher, MatmulLauncher)
    return launcher


def _inputs(launcher: MatmulLauncher, named: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(named[v.hint] for v in launcher.group.inputs)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every matmul kernel launch: the kernel's name and its configuration."""
    seen: list[tuple[str, Any]] = []
    real = MatmulKernel.run

    def run(self: MatmulKernel, plan: Any, launch: Any) -> None:
        seen.append((self.name, launch.config))
        real(self, plan, launch)

    monkeypatch.setattr(MatmulKernel, "run", run)
    return seen


# ====================================================================== products


EPILOGUES = {
    "gelu(x @ w.T + c) + r": lambda x, w, c, r: F.gelu(x @ w.T + c) + r,
    "relu(linear(x, w, c)) * 2.0": lambda x, w, c, r: torch.relu(F.linear(x, w, c)) * 2.0,
    "sigmoid(x @ w.T) - r": lambda x, w, c, r: torch.sigmoid(x @ w.T) - r,
}


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("expr", list(EPILOGUES))
def test_fused_products_match_torch(dtype: str, expr: str,
                                    launches: list[tuple[str, Any]]) -> None:
    src = (f"def f(x: {dtype}[b, s, k], w: {dtype}[n, k], c: {dtype}[n], r: {dtype}[b, s, n]):\n"
           f"    return {expr}\n")
    f = load_source(src, "mm.gt", backend="triton").f
    t = DT[dtype]
    x, w, c, r = (_rand(2, 19, 21, dtype=t, seed=1), _rand(23, 21, dtype=t, seed=2),
                  _rand(23, dtype=t, seed=3), _rand(2, 19, 23, dtype=t, seed=4))
    out = f(x, w, c, r)
    ref = EPILOGUES[expr](x.float(), w.float(), c.float(), r.float()).to(t)
    torch.testing.assert_close(out, ref, **TOL[t])
    assert len(launches) == 1 and launches[0][1] == INTERPRETER_CONFIG


def test_a_product_with_two_outputs_and_a_row_major_weight_matches_the_interpreter(
        launches: list[tuple[str, Any]]) -> None:
    src = ("def f(x: f32[m, k], v: f32[k, n], r: f32[m, n]):\n"
           "    y = x @ v\n"
           "    return y, tanh(y) * r\n")
    x, v, r = _rand(37, 21, seed=5), _rand(21, 45, seed=6), _rand(37, 45, seed=7)
    got = load_source(src, "mm.gt", backend="triton").f(x, v, r)
    want = load_source(src, "mm.gt", backend="interpret").f(x, v, r)
    assert len(launches) == 1
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def _operand(layout: str, rows: int, cols: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """A [rows, cols] operand stored row-major (r), column-major (c) or strided (s)."""
    if layout == "r":
        return _rand(rows, cols, dtype=dtype, seed=seed)
    if layout == "c":
        return _rand(cols, rows, dtype=dtype, seed=seed).T
    return _rand(rows, 2 * cols, dtype=dtype, seed=seed)[:, ::2]


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("layout", ["rr", "rc", "cr", "cc", "sr", "cs"])
@pytest.mark.parametrize("m,k,n", [(21, 70, 18), (20, 32, 17)])
def test_mm_matches_torch_matmul(dtype: str, layout: str, m: int, k: int, n: int,
                                 launches: list[tuple[str, Any]]) -> None:
    t = DT[dtype]
    a = _operand(layout[0], m, k, t, 8)
    b = _operand(layout[1], k, n, t, 9)
    out = mm(a, b)
    assert out.shape == (m, n) and out.dtype == t and out.is_contiguous()
    if t is torch.float32:
        torch.testing.assert_close(out, torch.matmul(a, b), rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(out, (a.float() @ b.float()).to(t), **TOL[t])
    assert [name for name, _ in launches] == ["gtdsl_mm"]


def test_mm_of_empty_operands_and_what_it_leaves_to_torch(
        launches: list[tuple[str, Any]]) -> None:
    a, b = _rand(5, 0), _rand(0, 7)
    assert torch.equal(mm(a, b), torch.zeros(5, 7))  # K = 0: the kernel writes zeros
    assert mm(_rand(0, 3), _rand(3, 4)).shape == (0, 4)
    assert len(launches) == 1
    launches.clear()
    for x, y in [(_rand(4, 3).double(), _rand(3, 5).double()),  # f64
                 (_rand(2, 4, 3), _rand(3, 5)),  # not 2-D
                 (_rand(4, 3), _rand(3, 5).half())]:  # mixed dtypes
        try:
            want = torch.matmul(x, y)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                mm(x, y)
        else:
            assert torch.equal(mm(x, y), want)
        assert mm_specs(x, y, target=(8, 0)) == []
    assert launches == []


# ====================================================================== every configuration


def _epilogue_case(dtype: torch.dtype, n: int = 48,
                   k: int = 48) -> tuple[MatmulLauncher, tuple[Any, ...], torch.Tensor]:
    name = {v: k for k, v in DT.items()}[dtype]
    launcher = _launcher(f"def f(x: {name}[m, k], w: {name}[n, k], c: {name}[n], "
                         f"r: {name}[m, n]):\n    return gelu(x @ w.T + c) + r\n")
    x, w, c, r = (_rand(45, k, dtype=dtype, seed=10), _rand(n, k, dtype=dtype, seed=11),
                  _rand(n, dtype=dtype, seed=12), _rand(45, n, dtype=dtype, seed=13))
    ref = (F.gelu(x.float() @ w.float().T + c.float()) + r.float()).to(dtype)
    return launcher, _inputs(launcher, dict(x=x, w=w, c=c, r=r)), ref


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_every_configuration_computes_the_product(dtype: str) -> None:
    """Each candidate of the dtype's lists (and of the Hopper variant's) on problems whose
    sizes are no multiple of the tile: edges wrap, K is masked or even."""
    t = DT[dtype]
    for n, k, layout, variants in [
            (48, 48, "rc", [("generic", MATMUL_CONFIGS[dtype])] + (
                [] if t is torch.float32 else [("tma", TMA_CONFIGS)])),
            (40, 40, "rcu", [("generic", UNALIGNED_CONFIGS[dtype])])]:
        launcher, ins, ref = _epilogue_case(t, n, k)
        plan, _ = launcher._plan(ins)
        assert plan.layout == layout
        for variant, configs in variants:
            for cfg in configs:
                plan.outs[0].fill_(float("nan"))
                launcher.kernel.run(plan, launcher.kernel.prepared(plan, variant, cfg))
                torch.testing.assert_close(plan.outs[0], ref, **TOL[t],
                                           msg=f"{variant} {cfg}")


def test_the_lists_fit_every_target_and_small_problems_get_small_tiles() -> None:
    for lists, is_aligned in [(MATMUL_CONFIGS, True), (UNALIGNED_CONFIGS, False)]:
        for name, configs in lists.items():
            assert all(c[0] * c[1] // (32 * c[3]) <= 64 for c in configs)  # acc/thread
            for target in SHARED_MEMORY:  # the whole list where the problem is large
                assert candidates(DT[name], "generic", (4096,) * 3, target,
                                  is_aligned) == list(configs)
            small = candidates(DT[name], "generic", (16, 16, 16), (8, 0), is_aligned)
            assert small and all(max(c[:3]) <= SMALL_TILE for c in small)
            assert candidates(DT[name], "generic", (16, 4096, 4096), (8, 0), is_aligned) == [
                c for c in configs if c[0] <= SMALL_TILE]
    # warp-specialized: two consumer warpgroups of num_warps share the tile
    assert all(c[0] * c[1] // (32 * c[3] * (2 if c[5] else 1)) <= 64 and c[0] % 64 == 0
               for c in TMA_CONFIGS)
    assert candidates(torch.bfloat16, "tma", (4096,) * 3, (9, 0)) == list(TMA_CONFIGS)
    # a target with less shared memory drops the deep pipelines of large tiles
    sm86 = candidates(torch.float16, "tma", (4096,) * 3, (8, 6))
    assert sm86 and all(c[4] * (c[0] + c[1]) * c[2] * 2 <= SHARED_MEMORY[(8, 6)] for c in sm86)
    assert len(sm86) < len(TMA_CONFIGS)


# ====================================================================== tuning


class FakeTimer:
    """Deterministic times: the configuration ``best`` is fastest; every call is recorded."""

    def __init__(self, best: tuple[int, ...], run: bool = False) -> None:
        self.best, self.run, self.calls = best, run, []

    def __call__(self, cfg: tuple[int, ...], launch: Any) -> float:
        self.calls.append(cfg)
        if self.run:
            launch()
        return 0.5 if cfg == self.best else 1.0 + sum(cfg) / 1000


def _tuned_kernel(cache: Path | None, timer: FakeTimer) -> MatmulKernel:
    kernel = MatmulKernel("gtdsl_mm_tuned")
    kernel.target = (8, 0)  # the interpreter runs (and tunes) an sm_80's candidates
    kernel.tuner = Tuner(cache, timer)
    return kernel


def _mm_with(kernel: MatmulKernel, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    kernel.launch(kernel.plan(a, b, (out,), ()))
    return out


def test_tuned_once_per_bucket_and_read_back_by_a_fresh_tuner(
        tmp_path: Path, launches: list[tuple[str, Any]]) -> None:
    best = (32, 64, 32, 4, 3)
    timer = FakeTimer(best, run=True)
    kernel = _tuned_kernel(tmp_path, timer)
    a, b = _rand(40, 32, seed=14), _rand(32, 48, seed=15)
    torch.testing.assert_close(_mm_with(kernel, a, b), a @ b, rtol=1e-5, atol=1e-5)
    cands = candidates(torch.float32, "generic", bucket(40, 48, 32), (8, 0))
    assert timer.calls == cands and best in cands
    assert launches[-1][1] == best and kernel.tuner.tunings == 1  # type: ignore[union-attr]
    # another M, N and K in the same bucket: no tuning
    for m, k, n in [(60, 32, 64), (33, 32, 48), (64, 17, 33)]:
        a, b = _rand(m, k, seed=m), _rand(k, n, seed=n)
        torch.testing.assert_close(_mm_with(kernel, a, b), a @ b, rtol=1e-5, atol=1e-5)
        if n % 16 == 0:
            assert launches[-1][1] == best
    # the last is another problem class: not a multiple of 16 along N and K (no vectors)
    assert kernel.tuner.tunings == 2  # type: ignore[union-attr]
    assert len(timer.calls) == len(cands) + len(candidates(
        torch.float32, "generic", bucket(64, 33, 17), (8, 0), False))
    # another bucket, layout or dtype is another problem class
    _mm_with(kernel, _rand(70, 32), _rand(32, 48))
    _mm_with(kernel, _rand(32, 48).T, _rand(32, 48))
    _mm_with(kernel, _rand(40, 32).half(), _rand(32, 48).half())
    assert kernel.tuner.tunings == 5  # type: ignore[union-attr]
    files = sorted((tmp_path / "tuning").iterdir())
    assert len(files) == 5
    entry = json.loads(files[0].read_text())
    assert set(entry) == {"format", "key", "config"} and entry["key"]["family"] == "matmul"
    # a fresh process: a new tuner and kernel over the same directory time nothing
    again = FakeTimer((32, 32, 16, 4, 3))
    fresh = _tuned_kernel(tmp_path, again)
    a, b = _rand(50, 32, seed=16), _rand(32, 64, seed=17)
    torch.testing.assert_close(_mm_with(fresh, a, b), a @ b, rtol=1e-5, atol=1e-5)
    assert again.calls == [] and launches[-1][1] == best
    assert fresh.tuner.tunings == 0  # type: ignore[union-attr]


def test_the_interpreter_times_nothing_by_itself(launches: list[tuple[str, Any]]) -> None:
    tuner = default_tuner()
    before = tuner.tunings
    a, b = _rand(40, 24), _rand(24, 36)
    torch.testing.assert_close(mm(a, b), a @ b, rtol=1e-5, atol=1e-5)
    assert tuner.tunings == before and launches == [("gtdsl_mm", INTERPRETER_CONFIG)]


def test_the_default_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path / "mine"))
    assert default_tuner().directory == tmp_path / "mine" / "tuning"
    monkeypatch.delenv("GTDSL_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_tuner().directory == tmp_path / ".cache" / "gtdsl" / "tuning"


KEY = TuningKey("matmul", "NVIDIA H100 80GB HBM3", "bf16", "rc/tma", (1024, 1024, 512))
CANDS = [(64, 64, 32, 4, 4), (128, 128, 32, 8, 3), (32, 32, 32, 4, 3)]


def _entry(**change: Any) -> bytes:
    entry = {"format": 1, "key": KEY.as_json(), "config": [128, 128, 32, 8, 3], **change}
    return json.dumps(entry).encode()


BAD_FILES = {
    "not JSON": b"{'config': (128, 128, 32, 8, 3)}",
    "truncated": _entry()[:-7],
    "not UTF-8": b"\xff\xfe" + _entry(),
    "deeply nested": b"[" * 30_000 + b"]" * 30_000,
    "not a candidate": _entry(config=[256, 256, 256, 8, 3]),
    "booleans": _entry(config=[128, 128, 32, 8, True]),
    "floats": _entry(config=[128.0, 128, 32, 8, 3]),
    "code": _entry(config="__import__('os').system('touch /tmp/gtdsl-pwned')"),
    "another GPU": _entry(key={**KEY.as_json(), "device": "NVIDIA A100-SXM4-80GB"}),
    "another format": _entry(format=2),
    "extra fields": _entry(times={"x": 1}),
    "too large": _entry() + b" " * MAX_FILE,
}


@pytest.mark.parametrize("what", list(BAD_FILES) + ["group-writable", "symlink", "fifo",
                                                     "directory"])
def test_a_bad_tuning_file_is_ignored_reported_once_and_replaced(
        what: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "tuning"
    folder.mkdir(mode=0o700)
    path = folder / KEY.filename()
    if what in BAD_FILES:
        path.write_bytes(BAD_FILES[what])
    elif what == "group-writable":
        path.write_bytes(_entry())
        path.chmod(0o664)
    elif what == "symlink":
        (tmp_path / "elsewhere.json").write_bytes(_entry())
        path.symlink_to(tmp_path / "elsewhere.json")
    elif what == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    timer = FakeTimer((32, 32, 32, 4, 3))
    tuner = Tuner(tmp_path, timer)
    with caplog.at_level(logging.WARNING, logger="gtdsl"):
        assert tuner.load(KEY, CANDS) is None
        assert tuner.load(KEY, CANDS) is None
        assert tuner.choose(KEY, CANDS, lambda cfg: lambda: None) == (32, 32, 32, 4, 3)
    assert timer.calls == CANDS  # tuned again
    reports = [r for r in caplog.records if r.name == "gtdsl"]
    assert len(reports) == 1 if what != "directory" else len(reports) == 2, reports
    assert KEY.filename() in reports[0].getMessage()
    assert not Path("/tmp/gtdsl-pwned").exists()
    if what != "directory":  # replaced by a valid entry a fresh tuner reads
        assert Tuner(tmp_path, FakeTimer(CANDS[0])).load(KEY, CANDS) == (32, 32, 32, 4, 3)


def _writer(cache: str, seed: int, rounds: int) -> None:
    """Store a candidate for KEY (and a key of its own) ``rounds`` times."""
    tuner = Tuner(Path(cache))
    own = TuningKey("matmul", f"GPU {seed}", "f16", "rr/generic", (64, 64, 64))
    for i in range(rounds):
        assert tuner._store(KEY, CANDS[(seed + i) % len(CANDS)])
        assert tuner._store(own, CANDS[i % len(CANDS)])


def test_concurrent_writers_leave_valid_files(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 150)) for s in range(4)]
    for p in procs:
        p.start()
    reader = Tuner(tmp_path)
    seen = set()
    with caplog.at_level(logging.WARNING, logger="gtdsl"):
        while any(p.is_alive() for p in procs):
            got = reader.load(KEY, CANDS)
            if got is not None:
                seen.add(got)
        for p in procs:
            p.join()
            assert p.exitcode == 0
    assert not [r for r in caplog.records if r.name == "gtdsl"]
    assert seen <= set(CANDS)
    assert reader.load(KEY, CANDS) in CANDS
    names = sorted(p.name for p in (tmp_path / "tuning").iterdir())
    assert len(names) == 5 and not [n for n in names if n.startswith(".tmp")]


# ====================================================================== specs


def test_specs_are_the_kernels_a_launch_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher, ins, ref = _epilogue_case(torch.float16)
    (sp,) = launcher.specs(*ins)  # the interpreter's one kernel
    ran: list[dict[str, Any]] = []
    real = MatmulKernel.run
    monkeypatch.setattr(MatmulKernel, "run", lambda self, plan, launch: (
        ran.append(launch.consts[plan.k % launch.config[2] == 0]), real(self, plan, launch)))
    torch.testing.assert_close(launcher(*ins), ref, **TOL[torch.float16])
    (consts,) = ran
    assert sp.source == launcher.kernel.sources["generic"] == launcher.source
    assert {k: v for k, v in sp.constexprs.items() if sp.signature[k] == "constexpr" and
            k.isupper()} == {k: v for k, v in consts.items() if k.isupper()}
    assert (sp.num_warps, sp.num_stages) == (consts["num_warps"], consts["num_stages"])


def test_specs_for_a_named_target() -> None:
    launcher, ins, _ = _epilogue_case(torch.float16)
    big = _inputs(launcher, dict(x=_rand(250, 128).half(), w=_rand(192, 128).half(),
                                 c=_rand(192).half(), r=_rand(250, 192).half()))
    meta = tuple(t.to("meta") for t in big)
    for target, variant, configs in [((8, 0), "generic", MATMUL_CONFIGS["f16"]),
                                     ((9, 0), "tma", TMA_CONFIGS)]:
        specs = launcher.specs(*big, target=target)
        assert specs == launcher.specs(*meta, target=target)
        assert [(s.constexprs["BLOCK_M"], s.constexprs["BLOCK_N"], s.constexprs["BLOCK_K"],
                 s.num_warps, s.num_stages) for s in specs] == [c[:5] for c in configs]
        assert all(s.source == launcher.kernel.sources[variant] for s in specs)
        assert all(s.constexprs["DOT_F32"] is False for s in specs)
        for s in specs:
            # as a launch specializes: unit strides are constants, aligned pointers and
            # multiples of 16 are divisible
            assert s.signature["stride_bk"] == "constexpr" and s.constexprs["stride_bk"] == 1
            assert {"a_ptr", "b_ptr", "c_ptr", "N", "K", "stride_am"} <= set(s.divisible)
            assert "M" not in s.divisible and s.signature["M"] == "i32"
    tma = launcher.specs(*big, target=(9, 0))
    assert "tl.make_tensor_descriptor" in tma[0].source
    assert [s.constexprs["WARP_SPECIALIZE"] for s in tma] == [bool(c[5]) for c in TMA_CONFIGS]
    # the generic template where tensor descriptors do not apply: K not a multiple of 16
    # (the unaligned list), small problems, f32
    odd = _inputs(launcher, dict(x=_rand(256, 19).half(), w=_rand(192, 19).half(),
                                 c=_rand(192).half(), r=_rand(256, 192).half()))
    specs = launcher.specs(*odd, target=(9, 0))
    assert "make_tensor_descriptor" not in specs[0].source
    assert [(s.constexprs["BLOCK_M"], s.constexprs["BLOCK_N"], s.constexprs["BLOCK_K"])
            for s in specs] == [c[:3] for c in candidates(torch.float16, "generic",
                                                          (256, 256, 32), (9, 0), False)]
    small = launcher.specs(*ins, target=(9, 0))  # M = 45: one bucket of 64 rows
    assert "make_tensor_descriptor" in small[0].source
    tiny = _inputs(launcher, dict(x=_rand(8, 48).half(), w=_rand(80, 48).half(),
                                  c=_rand(80).half(), r=_rand(8, 80).half()))
    specs = launcher.specs(*tiny, target=(9, 0))
    assert "make_tensor_descriptor" not in specs[0].source
    assert all(s.constexprs["BLOCK_M"] <= SMALL_TILE for s in specs)
    f32 = mm_specs(_rand(256, 128), _rand(128, 192), target=(9, 0))
    assert [(s.constexprs["BLOCK_M"], s.constexprs["BLOCK_N"], s.constexprs["BLOCK_K"])
            for s in f32] == [c[:3] for c in MATMUL_CONFIGS["f32"]]
    assert all(s.constexprs["DOT_F32"] is True and "make_tensor" not in s.source for s in f32)


# ====================================================================== 32-bit offsets


def test_the_offset_bound_is_exact() -> None:
    launcher = _launcher("def f(x: f16[m, k], w: f16[n, k], r: f16[m, n]):\n"
                         "    return x @ w.T + r\n")

    def ok(m: int, k: int, n: int, r_strides: tuple[int, int] | None = None) -> bool:
        x = torch.empty(m, k, dtype=torch.float16, device="meta")
        w = torch.empty(n, k, dtype=torch.float16, device="meta")
        r = torch.empty(m, n, dtype=torch.float16, device="meta")
        if r_strides is not None:
            r = r.as_strided((m, n), r_strides)
        return launcher.ok(*_inputs(launcher, dict(x=x, w=w, r=r)))

    top = 2**31 - 1
    assert ok(2, 2**30, 1) and not ok(2, 2**30 + 1, 1)  # A's last offset: M*K - 1
    assert ok(1, 2**30, 2) and not ok(1, 2**30 + 1, 2)  # B (w.T in place): N*K - 1
    assert ok(2**16, 1, 2**15) and not ok(2**16 + 1, 1, 2**15)  # the M x N output: M*N - 1
    s = (top - 3) // 3  # the residual read at (3, 3): 3 * s + 3
    assert ok(4, 4, 4, (s, 1)) and not ok(4, 4, 4, (s + 1, 1))

    def meta(*shape: int) -> torch.Tensor:
        return torch.empty(*shape, dtype=torch.float16, device="meta")

    assert mm_specs(meta(2, 2**30), meta(2**30, 1))
    assert mm_specs(meta(2, 2**30 + 1), meta(2**30 + 1, 1)) == []


# ====================================================================== ahead of time

AOT = textwrap.dedent('''
    import json, sys, io, re, contextlib, tempfile
    import torch, triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from gtdsl.driver import load_source
    from gtdsl.ir.core import Op
    from gtdsl.lower.triton.base import _compile, params_of
    from gtdsl.lower.triton.kernels import launcher_for

    def launcher(src):
        fused = load_source(src, "mm.gt", backend="triton").f.fused()
        return launcher_for(next(e for e in fused.body.eqns if e.op is Op.KERNEL))

    def compile(spec, cap):
        params = params_of(spec.source)
        attrs = {(params.index(p),): [["tt.divisibility", 16]] for p in spec.divisible}
        log = io.StringIO()
        with triton.knobs.cache.scope(), triton.knobs.nvidia.scope(), \\
                contextlib.redirect_stdout(log), tempfile.TemporaryDirectory() as tmp:
            triton.knobs.cache.dir = tmp
            triton.knobs.nvidia.dump_ptxas_log = True
            k = triton.compile(ASTSource(_compile(spec.name, spec.source), spec.signature,
                                         spec.constexprs, attrs),
                               target=GPUTarget("cuda", cap, 32),
                               options={"num_warps": spec.num_warps,
                                        "num_stages": spec.num_stages})
        spill = re.search(r"(\\d+) bytes spill stores", log.getvalue())
        regs = re.search(r"Used (\\d+) registers", log.getvalue())
        return {"target": cap, "consts": {k: v for k, v in spec.constexprs.items()
                                          if k.isupper()}, "warps": spec.num_warps,
                "spill": int(spill.group(1)), "registers": int(regs.group(1)),
                "shared": k.metadata.shared}

    def largest(specs, n):
        return sorted(specs, key=lambda s: -s.constexprs["BLOCK_M"] * s.constexprs["BLOCK_N"]
                      // s.num_warps)[:n]

    rows = []
    for dt, t, k in [("f16", torch.float16, 1024), ("f32", torch.float32, 1024),
                     ("f16", torch.float16, 1000)]:
        l = launcher(f"def f(x: {dt}[m, k], w: {dt}[n, k], c: {dt}[n], r: {dt}[m, n]):\\n"
                     "    return gelu(x @ w.T + c) + r\\n")
        named = dict(x=torch.empty(1000, k, dtype=t), w=torch.empty(1024, k, dtype=t),
                     c=torch.empty(1024, dtype=t), r=torch.empty(1000, 1024, dtype=t))
        ins = [named[v.hint] for v in l.group.inputs]
        if dt == "f16" and k == 1024:
            rows += [compile(s, 80) for s in largest(l.specs(*ins, target=(8, 0)), 1)]
            tma = l.specs(*ins, target=(9, 0))
            rows += [compile(s, 90) for s in tma if s.constexprs["WARP_SPECIALIZE"]][:1]
        else:  # f32, and f16 with K not a multiple of 16 (the unaligned list)
            cap = 90 if dt == "f32" else 80
            rows += [compile(s, cap) for s in largest(l.specs(*ins, target=divmod(cap, 10)), 1)]
    print(json.dumps(rows))
''')


def test_the_largest_tiles_compile_for_sm80_and_sm90_without_spills(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-c", AOT], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(rows) == 4
    assert any(r["target"] == 90 and "A_ROWS" in r["consts"] and r["consts"]["WARP_SPECIALIZE"]
               for r in rows)
    for r in rows:
        assert r["spill"] == 0 and 0 < r["registers"] <= 255, r
        assert r["shared"] <= SHARED_MEMORY[divmod(r["target"], 10)], r

