"""Ahead-of-time compiles of Triton kernels for a named GPU target, without a GPU.

A launcher's ``specs(*ins)`` lists the kernels a launch compiles (``KernelSpec``: source,
argument types, constants, warps and stages); ``compile_spec`` compiles one of them with
``triton.compile`` for ``sm_80``, ``sm_90``, ... exactly as a GPU would, and reads what the
kernel uses: registers, stack frame and local memory from ``cuobjdump -res-usage`` (shipped
with Triton), spill stores and loads from ``ptxas -v`` (Triton runs it and prints its log
when asked), and shared memory from the compiled kernel's metadata.

The compiling process must not run Triton in its interpreter: ``TRITON_INTERPRET`` must be
unset before ``triton`` is first imported, and launchers plan interpreter launches (small
blocks) while it is set. ``compile_spec`` refuses to run in an interpreting process; the
command line (``gtdsl compile --emit cubin``) runs itself again in a child process without
the variable.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gtdsl.lower.triton.base import KernelSpec, _compile, interpreting, params_of

# The targets compiled for, by name: compute capability, and the most shared memory one
# block may use there (bytes, with the opt-in a launch makes).
ARCHS: dict[str, tuple[int, int]] = {
    "sm_80": (80, 166912), "sm_86": (86, 101376), "sm_89": (89, 101376),
    "sm_90": (90, 232448),
}

_RES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


class AotUnavailable(Exception):
    """This process cannot compile ahead of time (no Triton, or Triton interpreting)."""


@dataclass
class Compiled:
    """One kernel compiled for one target: what it uses, or why it did not compile."""

    name: str
    arch: str
    num_warps: int
    num_stages: int
    constexprs: dict[str, Any]
    maxnreg: int | None = None  # the register cap it was compiled with (None: ptxas's own)
    registers: int | None = None
    spill_bytes: int | None = None  # ptxas: bytes spill stores
    spill_load_bytes: int | None = None  # ptxas: bytes spill loads
    stack_bytes: int | None = None  # cuobjdump: the stack frame (spills live there)
    local_bytes: int | None = None
    shared_bytes: int | None = None  # the shared memory a launch allocates (Triton's count)
    static_shared_bytes: int | None = None  # cuobjdump: static shared (the system's reserve)
    compile_s: float = 0.0
    error: str | None = None
    problems: list[str] = field(default_factory=list)  # spills, shared memory over the limit

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_of(arch: str) -> tuple[int, int]:
    """``(major, minor)`` of ``sm_XY`` (what a launcher's ``specs(target=...)`` takes)."""
    cap = ARCHS[arch][0]
    return cap // 10, cap % 10


def cuobjdump() -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump")


def resource_usage(cubin: bytes, folder: Path) -> dict[str, int]:
    """Registers, stack frame, static shared and local memory of the one kernel in ``cubin``,
    as ``cuobjdump -res-usage`` reports them."""
    path = folder / "kernel.cubin"
    path.write_bytes(cubin)
    run = subprocess.run([cuobjdump(), "-res-usage", str(path)], capture_output=True,
                         text=True, timeout=120)
    m = _RES.search(run.stdout)
    if m is None:
        raise RuntimeError("cuobjdump printed no resource usage: "
                           + (run.stdout + run.stderr).strip()[:200])
    reg, stack, shared, local = map(int, m.groups())
    return {"registers": reg, "stack_bytes": stack, "static_shared_bytes": shared,
            "local_bytes": local}


def compile_spec(spec: KernelSpec, arch: str) -> Compiled:
    """Compile ``spec`` for ``arch`` (``sm_80``, ``sm_90``, ...) and read its resource usage.
    A kernel that fails to compile is a result (``error``), not an exception; so is one that
    spills registers or needs more shared memory than the target has (``problems``)."""
    if interpreting():
        raise AotUnavailable("Triton is running in its interpreter in this process "
                             "(TRITON_INTERPRET is set): compile in a process without it")
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as e:
        raise AotUnavailable(f"Triton cannot be imported: {e}") from e
    cap, shared_limit = ARCHS[arch]
    out = Compiled(spec.name, arch, spec.num_warps, spec.num_stages, dict(spec.constexprs),
                   spec.maxnreg)
    knobs = getattr(triton, "knobs", None)  # Triton before 3.4 has none: no ptxas log
    options: dict[str, Any] = {"num_warps": spec.num_warps, "num_stages": spec.num_stages}
    if spec.maxnreg is not None:
        options["maxnreg"] = spec.maxnreg
    log = io.StringIO()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gtdsl-aot-") as tmp, _fresh_cache(knobs, tmp):
        if knobs is not None:
            knobs.nvidia.dump_ptxas_log = True
            # what a launch resolves when it asks for nothing (said here: no warning)
            # (the force knob is newer than the knobs: Triton 3.7 has none)
            options["enable_fp_fusion"] = knobs.language.default_fp_fusion and \
                not getattr(knobs.language, "force_disable_fp_fusion", False)
        try:
            fn = _compile(spec.name, spec.source)
            # what a launch knows of its arguments: divisible by 16, 16-byte aligned
            attrs = {(i,): [["tt.divisibility", 16]]
                     for i, p in enumerate(params_of(spec.source)) if p in spec.divisible}
            with contextlib.redirect_stdout(log):
                k = triton.compile(ASTSource(fn, dict(spec.signature), dict(spec.constexprs),
                                             attrs),
                                   target=GPUTarget("cuda", cap, 32), options=options)
            res = resource_usage(k.asm["cubin"], Path(tmp))
        except Exception as e:  # a compile failure is the result to report
            out.compile_s = round(time.perf_counter() - t0, 3)
            out.error = f"{type(e).__name__}: {_message(e)}"
            return out
    out.compile_s = round(time.perf_counter() - t0, 3)
    out.registers = res["registers"]
    out.stack_bytes = res["stack_bytes"]
    out.local_bytes = res["local_bytes"]
    out.shared_bytes = int(getattr(k.metadata, "shared", 0) or 0)
    out.static_shared_bytes = res["static_shared_bytes"]
    m = _SPILLS.search(log.getvalue())
    if m is not None:
        out.spill_bytes, out.spill_load_bytes = int(m.group(1)), int(m.group(2))
    else:  # no ptxas log: the stack frame is where spills go (gtdsl kernels keep no arrays)
        out.spill_bytes = out.stack_bytes + out.local_bytes
    if out.spill_bytes or out.local_bytes:
        out.problems.append(f"spills registers: {out.spill_bytes} bytes of spill stores, "
                            f"{out.stack_bytes} bytes of stack frame at {out.registers} "
                            "registers")
    if out.shared_bytes > shared_limit:
        out.problems.append(f"needs {out.shared_bytes} bytes of shared memory, more than "
                            f"the {shared_limit} one block may use on {arch}")
    return out


def _message(e: Exception) -> str:
    """A compile error in one line: where (Triton's ``at LINE:COL:``) and what (its last
    line; the lines between quote the source)."""
    lines = [ln.strip() for ln in str(e).splitlines()
             if ln.strip() and not ln.startswith("Repro command")]  # ptxas's own line
    if not lines:
        return ""
    text = lines[0] if len(lines) == 1 or lines[-1] == lines[0] else \
        f"{lines[0]} {lines[-1]}"
    return text[:300]


@contextlib.contextmanager
def _fresh_cache(knobs: Any, folder: str) -> Iterator[None]:
    """Triton's cache pointed at ``folder`` (every compile runs ptxas, whose log holds the
    spill counts; nothing is written to the user's cache), its settings restored after."""
    if knobs is None:
        old = os.environ.get("TRITON_CACHE_DIR")
        os.environ["TRITON_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("TRITON_CACHE_DIR", None)
            else:
                os.environ["TRITON_CACHE_DIR"] = old
        return
    with knobs.cache.scope(), knobs.nvidia.scope():
        knobs.cache.dir = folder
        yield


def compile_specs(specs: list[KernelSpec], arch: str) -> list[Compiled]:
    return [compile_spec(s, arch) for s in specs]


__all__ = ["ARCHS", "AotUnavailable", "Compiled", "compile_spec", "compile_specs",
           "cuobjdump", "resource_usage", "target_of"]
