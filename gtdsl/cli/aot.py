"""``gtdsl compile FILE --fn NAME --emit cubin --arch sm_90``: every Triton kernel a call of
the function launches, compiled ahead of time for a GPU target without a GPU, with the
registers, spills and shared memory each uses.

The kernels are found the way a call finds them: the function's Triton-fused IR
(``JitFunction.fused()``) holds one ``KERNEL`` eqn per kernel; each eqn's launcher
(``launcher_for``) is asked which kernels a launch compiles (``launcher.specs(*ins)``; with
``--backward`` also those a training step adds, ``differentiable(launcher).backward_specs``) for META tensors (``device="meta"``: shapes and
dtypes, no data) built from the eqn inputs' types with the sizes substituted. Calls of other
gtdsl functions are followed with the sizes their arguments bind. The sizes are those of
``gtdsl run``: ``--size NAME=N``, else the defaults it draws with (4 for a size, 2 for an
``int`` size, one leading dim of 2 for a row ``*b``); a size known only at run time (a
value's size no parameter fixes) must be given. A kernel whose launcher does not take the
inputs (a row longer than one block holds, offsets over 32 bits) runs as torch ops there,
and is listed as such.

Compiling needs Triton out of its interpreter (``gtdsl.lower.triton.aot``): where
``TRITON_INTERPRET`` is set in this process (the test suite sets it before Triton is
imported, and then Triton's ``jit`` and the launchers' plans are the interpreter's), the
command runs again in a child process without it and relays its output and exit status.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, Label, Severity, render_text
from gtdsl.ir.core import Eqn, Op, walk
from gtdsl.ops.calls import DT_TORCH
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.runtime.inputs import DEFAULT_SIZE, InputError, Sampler
from gtdsl.types import DT, ScalarKind, Size, TDyn, TList, TScalar, TStruct, TTensor, TTuple, Type
from gtdsl.types.subst import size_vars_of

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
CHILD = "GTDSL_AOT_CHILD"  # set in the child process the command runs itself in


class AotInputError(Exception):
    """The command cannot build the kernels' inputs: a size or shape is unknown."""

    def __init__(self, message: str, help: str | None = None, span: Any = None) -> None:
        super().__init__(message)
        self.help = help
        self.span = span  # the kernel or call that needs the size


@dataclass
class Kernel:
    """One kernel a call launches: the gtdsl function and ``KERNEL`` eqn it comes from, its
    kind (pointwise, row, matmul, attention), forward or backward, and the spec compiled."""

    function: str
    group: str
    kind: str
    phase: str
    spec: Any  # KernelSpec; None where the launcher could not plan the launch
    eqn: Eqn
    error: str | None = None  # why the launcher could not plan it (a bug in gtdsl)


@dataclass
class Unlaunched:
    """A ``KERNEL`` eqn whose launcher does not take these inputs: it runs as torch ops."""

    function: str
    group: str
    kind: str
    shapes: list[tuple[int, ...]]


# ====================================================================== sizes


def parse_sizes(sizes: list[str]) -> dict[str, int]:
    """``--size NAME=N`` options, checked as ``gtdsl run`` checks them."""
    out: dict[str, int] = {}
    for sz in sizes:
        name, eq, text = sz.partition("=")
        name = name.strip()
        try:
            n = int(text)
        except ValueError:
            n = -1
        if not eq or not name.isidentifier() or n < 0 or n > 2 ** 63 - 1:
            raise AotInputError(f"`--size {sz[:40]}` is not NAME=N with N a non-negative "
                                "integer of at most 2**63 - 1")
        if name in out:
            raise AotInputError(f"`--size {name}` is given twice")
        out[name] = n
    return out


def _dtype(dt: DT) -> torch.dtype:
    """The torch dtype of a tensor of dtype ``dt``; a category (``float``, ``?``: only in
    values passed to calls, kernels take concrete dtypes) as ``gtdsl run`` draws it."""
    if dt.is_concrete:
        return DT_TORCH[dt]
    return DT_TORCH[{DT.INT: DT.I64, DT.UINT: DT.U8, DT.COMPLEX: DT.C64}.get(dt, DT.F32)]


class _MetaSampler(Sampler):
    """``gtdsl run``'s sampler, drawing META tensors (shapes, no data) of any size."""

    def __init__(self, sizes: dict[str, int], rows: dict[str, tuple[int, ...]],
                 module: Any) -> None:
        super().__init__(sizes, rows, None, module.program.struct, module.structs)

    def tensor(self, t: TTensor, name: str = "") -> torch.Tensor:
        return torch.empty(self.shape(t), dtype=_dtype(t.dtype), device="meta")


def entry_sizes(module: Any, fn: Any, given: dict[str, int]
                ) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The sizes and rows a call binds at entry: the given ones, then ``gtdsl run``'s
    defaults, drawn parameter by parameter in the same order. A row variable given a size
    (``--size b=8`` for ``*b``) is one leading dim of that size."""
    rows: dict[str, tuple[int, ...]] = {r: (given[r],) for r in fn._rows if r in given}
    sizes = {k: v for k, v in given.items() if k not in rows}
    sampler = _MetaSampler(sizes, rows, module)
    defaults = module.program.defaults.get(fn.qualname, {})
    for name, t in fn._params:
        if name in defaults or isinstance(t, TDyn):
            continue  # a default is a literal; an unannotated value fixes no size
        try:
            sampler.value(t, name)
        except InputError as e:
            raise AotInputError(str(e), e.help) from None
    for v in fn._size_kw:  # sizes only a keyword gives (`attention[H, K]`)
        sampler.sizes.setdefault(v, DEFAULT_SIZE)
    return sampler.sizes, sampler.rows


def bound_sizes(module: Any, fn: Any, values: list[Any]
                ) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The sizes and rows a call with ``values`` (real or META tensors, numbers) binds at
    entry, as its entry check binds them."""
    b = Bindings()
    try:
        for v, (_, t) in zip(values, fn._params):
            check_value(v, t, b, "", module.program.struct)
    except CastFailed as err:
        raise AotInputError(f"these values do not fit `{fn.name}`: {err}") from None
    return b.sizes, b.rows


def size_names(module: Any, qualname: str) -> set[str]:
    """Every size and row variable the function or a function it calls names (what
    ``--size`` may give)."""
    names: list[str] = []
    rows: list[str] = []
    seen: set[str] = set()
    todo = [qualname]
    while todo:
        q = todo.pop()
        if q in seen or q not in module.functions:
            continue
        seen.add(q)
        f = module.functions[q]
        names += list(f._sizes) + list(f._fn.size_vars)
        rows += list(f._rows)
        for e in walk(f._fn.body):
            for a in (*e.ins, *e.outs):
                size_vars_of(a.type, names, rows)
            if e.op is Op.CALL:
                todo.append(e.param("callee"))
    return set(names) | set(rows)


# ====================================================================== the kernels


def _need(t: Type, sizes: dict[str, int], rows: dict[str, tuple[int, ...]], what: str) -> None:
    """Every size of ``t`` is known with these bindings; else say which to give."""
    if isinstance(t, TDyn):
        raise AotInputError(f"{what} has a type known only at run time",
                            "annotate the value's type in the function")
    if isinstance(t, TTensor):
        row = t.shape.row
        if row is not None and (row.name is None or row.name not in rows):
            name = f"*{row.name}" if row.name else "..."
            raise AotInputError(f"{what} has a leading shape `{name}` known only at run time",
                                f"give it with --size {row.name}=N" if row.name else
                                "write the value's type with a fixed rank")
        for d in t.shape.dims:
            if d.size is None:
                raise AotInputError(f"{what} ({t}) has a dim whose size is known only at run "
                                    "time", "annotate the value's type with a size variable "
                                    "and give it with --size NAME=N")
            missing = sorted(d.size.variables() - sizes.keys())
            if missing:
                raise AotInputError(f"{what} ({t}) needs the size `{missing[0]}`, known only "
                                    "at run time", f"give it with --size {missing[0]}=N")
    elif isinstance(t, TScalar) and t.value is not None:
        missing = sorted(t.value.variables() - sizes.keys())
        if missing:
            raise AotInputError(f"{what} needs the size `{missing[0]}`, known only at run "
                                "time", f"give it with --size {missing[0]}=N")
    elif isinstance(t, TStruct):
        for a in t.args:
            if a is None or a.variables() - sizes.keys():
                raise AotInputError(f"{what} ({t}) has a size argument known only at run "
                                    "time", "annotate it with size variables and give "
                                    "them with --size NAME=N")
    elif isinstance(t, TList):
        _need(t.elem, sizes, rows, what)
    elif isinstance(t, TTuple):
        for e in t.elems:
            _need(e, sizes, rows, what)


def _value(t: Type, sizes: dict[str, int], rows: dict[str, tuple[int, ...]], module: Any,
           what: str, span: Any) -> Any:
    """A META value of type ``t`` with every size bound (contiguous tensors)."""
    try:
        _need(t, sizes, rows, what)
        if isinstance(t, TScalar) and t.kind is ScalarKind.INT and t.value is None:
            return 2
        return _MetaSampler(dict(sizes), dict(rows), module).value(t, what)
    except InputError as e:
        raise AotInputError(f"{what}: {e}", e.help, span) from None
    except AotInputError as e:
        raise AotInputError(str(e), e.help, span) from None


def _first_line(ex: Exception) -> str:
    text = str(ex).strip().splitlines()
    return f"{type(ex).__name__}: {text[0] if text else ''}"


def _size(s: Size, sizes: dict[str, int]) -> int | None:
    return s.evaluate(sizes) if s.variables() <= sizes.keys() else None


def kernels_of(module: Any, qualname: str, sizes: dict[str, int],
               rows: dict[str, tuple[int, ...]], target: tuple[int, int] | None = None,
               _seen: set[tuple] | None = None, backward: bool = False
               ) -> tuple[list[Kernel], list[Unlaunched]]:
    """The kernels a call of ``qualname`` with these bindings launches, callees included,
    each spec once (``backward``: also those a training step adds); and the ``KERNEL`` eqns
    that run as torch ops at these sizes."""
    from gtdsl.lower.triton.autograd import differentiable
    from gtdsl.lower.triton.kernels import launcher_for

    seen = _seen if _seen is not None else set()
    key = (qualname, tuple(sorted(sizes.items())), tuple(sorted(rows.items())))
    if key in seen:
        return [], []
    seen.add(key)
    jf = module.functions[qualname]
    fused = jf.fused()
    kernels: list[Kernel] = []
    unlaunched: list[Unlaunched] = []
    for e in walk(fused.body):
        if e.op is Op.KERNEL:
            k = e.param("kernel")
            ins = [_value(a.type, sizes, rows, module,
                          f"input {i + 1} of kernel {k.name} in `{qualname}`", e.span)
                   for i, a in enumerate(e.ins)]
            try:
                launcher = launcher_for(e)
                takes = launcher.ok(*ins)
            except Exception as ex:  # a launcher's bug: reported, the others compiled
                kernels.append(Kernel(qualname, k.name, k.kind, "forward", None, e,
                                      _first_line(ex)))
                continue
            if not takes:
                unlaunched.append(Unlaunched(qualname, k.name, k.kind,
                                             [tuple(v.shape) for v in ins
                                              if isinstance(v, torch.Tensor)]))
                continue
            phases = [("forward", launcher.specs)]
            if backward:
                phases.append(("backward", differentiable(launcher).backward_specs))
            for phase, get in phases:
                kw = {"target": target} if target is not None and \
                    "target" in inspect.signature(get).parameters else {}
                try:
                    specs = get(*ins, **kw)
                except Exception as ex:
                    kernels.append(Kernel(qualname, k.name, k.kind, phase, None, e,
                                          _first_line(ex)))
                    continue
                for sp in specs:
                    kernels.append(Kernel(qualname, k.name, k.kind, phase, sp, e))
        elif e.op is Op.CALL:
            callee = e.param("callee")
            target_fn = module.functions[callee]
            args = [_value(a.type, sizes, rows, module,
                           f"argument {i + 1} of the call of `{callee}` in `{qualname}`",
                           e.span) for i, a in enumerate(e.ins)]
            b = Bindings()
            for v, s in e.param("sizes") or ():
                n = _size(s, sizes) if isinstance(s, Size) else None
                if n is not None:
                    b.sizes[v] = n
            try:
                for v, (_, t) in zip(args, target_fn._params):
                    check_value(v, t, b, "", module.program.struct)
            except CastFailed as err:
                raise AotInputError(f"the call of `{callee}` in `{qualname}` does not bind "
                                    f"its sizes from these shapes: {err}") from None
            for v in target_fn._size_kw:
                if v not in b.sizes and v in sizes:
                    b.sizes[v] = sizes[v]
            more, skipped = kernels_of(module, callee, b.sizes, b.rows, target, seen, backward)
            kernels += more
            unlaunched += skipped
    if _seen is None:  # the outermost call: each spec once
        unique: dict[tuple, Kernel] = {}
        for kern in kernels:
            sp = kern.spec
            unique.setdefault((kern.function, kern.group, kern.phase, kern.error)
                              if sp is None else
                              (sp.source, tuple(sorted(sp.signature.items())),
                               repr(sorted(sp.constexprs.items())), sp.num_warps,
                               sp.num_stages, sp.maxnreg), kern)
        kernels = list(unique.values())
    return kernels, unlaunched


# ====================================================================== the command


def _diag(code: str, message: str, help: str | None = None, path: str | None = None,
          eqn: Eqn | None = None, warning: bool = False) -> str:
    primary = Label(eqn.span, "this kernel") if eqn is not None and eqn.span is not None \
        else None
    return render_text(Diagnostic(code, message, primary, help=help, path=path,
                                  severity=Severity.WARNING if warning else Severity.ERROR)
                       ) + "\n"


def _in_child(argv: list[str], out: TextIO, err: TextIO) -> int:
    """Run ``gtdsl compile`` again in a child process without ``TRITON_INTERPRET``: this
    process runs Triton in its interpreter (the variable must be unset before Triton is
    imported, and the launchers plan interpreter launches while it is set)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env[CHILD] = "1"
    root = str(Path(__file__).resolve().parents[2])  # where this gtdsl is imported from
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    child = subprocess.run([sys.executable, "-m", "gtdsl.cli", "compile", *argv],
                           capture_output=True, text=True, env=env)
    out.write(child.stdout)
    err.write(child.stderr)
    return child.returncode


def run_cubin(path: str, fn_name: str, arch: str | None, sizes: list[str], fmt: str,
              allow_spills: bool, out: TextIO, err: TextIO, backward: bool = False) -> int:
    from gtdsl.lower.triton.aot import ARCHS

    arch = arch or "sm_90"
    if arch not in ARCHS:
        close = difflib.get_close_matches(arch, list(ARCHS), n=1)
        err.write(_diag("GT0911", f"`--arch {arch}` is not a target gtdsl compiles for",
                        (f"did you mean {close[0]}? " if close else "") +
                        f"the targets are: {', '.join(ARCHS)}", path))
        return EXIT_USAGE
    if importlib.util.find_spec("triton") is None:
        err.write(_diag("GT4003", "compiling kernels ahead of time needs Triton, which is "
                        "not installed", "pip install triton (or gtdsl[triton])", path))
        return EXIT_USAGE
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        if os.environ.get(CHILD):
            err.write(_diag("GT4003", "Triton is still in its interpreter in the compiling "
                            "process", "unset TRITON_INTERPRET and run the command again",
                            path))
            return EXIT_USAGE
        argv = [path, "--fn", fn_name, "--emit", "cubin", "--arch", arch, "--format", fmt,
                *(f"--size={s}" for s in sizes),
                *(["--allow-spills"] if allow_spills else []),
                *(["--backward"] if backward else [])]
        return _in_child(argv, out, err)
    try:  # before any launcher plans a launch: imported outside the interpreter
        importlib.import_module("triton")
    except Exception as e:
        err.write(_diag("GT4003", f"Triton cannot be imported: {type(e).__name__}: {e}",
                        "reinstall it: pip install triton", path))
        return EXIT_USAGE

    from gtdsl.driver import load
    from gtdsl.lower.triton.aot import Compiled, compile_spec, target_of

    try:
        module = load(path, backend="triton")
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if all(d.code.startswith("GT09") for d in e.diagnostics) else \
            EXIT_ERRORS
    names = [q for q in module.functions if "." not in q]
    if fn_name not in names:
        close = difflib.get_close_matches(fn_name, names, n=1)
        err.write(_diag("GT0906", f"`{path}` has no function `{fn_name}`",
                        f"did you mean `{close[0]}`?" if close else
                        f"its functions are: {', '.join(names) or 'none'}"))
        return EXIT_USAGE
    fn = module.functions[fn_name]
    try:
        given = parse_sizes(sizes)
        known = size_names(module, fn_name)
        for name in given:
            if name not in known:
                raise AotInputError(f"`{fn_name}` has no size variable `{name}`",
                                    f"its size variables are: {', '.join(sorted(known))}"
                                    if known else "it has no size variables")
        env, rows = entry_sizes(module, fn, given)
        kernels, unlaunched = kernels_of(module, fn_name, env, rows, target_of(arch),
                                         backward=backward)
    except AotInputError as e:
        err.write(render_text(Diagnostic(
            "GT0911", str(e), Label(e.span, "here") if e.span is not None else None,
            help=e.help or "see `gtdsl compile --help`", path=path)) + "\n")
        return EXIT_USAGE
    t0 = time.perf_counter()
    results = [(k, compile_spec(k.spec, arch) if k.spec is not None else
                Compiled(f"gtdsl_{k.group}", arch, 0, 0, {},
                         error=f"its launcher could not plan the launch: {k.error}"))
               for k in kernels]
    total_s = time.perf_counter() - t0
    failed = [(k, r) for k, r in results if r.error]
    spilled = [(k, r) for k, r in results if r.error is None and r.problems]
    bound = ", ".join([f"{k}={v}" for k, v in sorted(env.items()) if not k.startswith("#")
                       and "." not in k] +
                      [f"*{k}=({', '.join(map(str, v))})" for k, v in sorted(rows.items())])
    if fmt == "json":
        out.write(json.dumps([{"function": k.function, "kernel": k.group, "kind": k.kind,
                               "phase": k.phase, **r.as_dict()} for k, r in results],
                             indent=1, default=str) + "\n")
    else:
        out.write(f"# `{fn_name}` for {arch} with {bound or 'no sizes'}: {len(results)} "
                  f"kernel{'s' * (len(results) != 1)}\n")
        out.write(table(results) + "\n")
    for u in unlaunched:
        shapes = ", ".join("[" + ", ".join(map(str, s)) + "]" for s in u.shapes)
        err.write(f"note: kernel {u.group} ({u.kind}) of `{u.function}` runs as torch ops "
                  f"for inputs {shapes}: its launcher does not take them\n")
    for k, r in failed:
        err.write(_diag("GT4001", f"kernel {r.name} ({k.kind}, {k.phase}) of `{k.function}` "
                        f"does not compile for {arch}: {r.error}",
                        "this is a bug in gtdsl's kernel generation: please report it with "
                        "the command", path, k.eqn))
    by_kernel: dict[tuple[str, str, str], list[tuple[Kernel, Any]]] = {}
    for k, r in spilled:
        by_kernel.setdefault((k.function, k.group, k.phase), []).append((k, r))
    for (function, _, phase), group in by_kernel.items():
        k, r = group[0]
        every = sum(1 for kk, _ in results if (kk.function, kk.group, kk.phase) ==
                    (function, k.group, phase))
        notes = tuple(f"{_consts(r.constexprs)}, {r.num_warps} warps, {r.num_stages} stages: "
                      f"{'; '.join(r.problems)}" for _, r in group)
        err.write(render_text(Diagnostic(
            "GT4002", f"kernel {r.name} ({k.kind}, {phase}) of `{function}` exceeds {arch}'s "
            f"registers or shared memory in {len(group)} of its {every} "
            f"configuration{'s' * (every != 1)}",
            Label(k.eqn.span, "this kernel") if k.eqn.span is not None else None,
            notes=notes, help="smaller blocks or more warps keep a kernel in registers; "
            "--allow-spills accepts it", path=path,
            severity=Severity.WARNING if allow_spills else Severity.ERROR)) + "\n")
    if fmt != "json":
        out.write(f"{len(results)} compiled for {arch} in {total_s:.1f} s: "
                  f"{len(spilled)} over the target's resources, {len(failed)} failed"
                  + (f"; {len(unlaunched)} kernel{'s' * (len(unlaunched) != 1)} run as "
                     "torch ops at these sizes" if unlaunched else "") + "\n")
    if failed or (spilled and not allow_spills):
        return EXIT_ERRORS
    return EXIT_OK


def _consts(c: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in c.items()) or "no constants"


def table(results: list[tuple[Kernel, Any]]) -> str:
    """One line per compiled kernel: name, kind, launch settings, resources, compile time."""
    head = (f"{'kernel':<26} {'kind':<9} {'phase':<8} {'warps':>5} {'stages':>6} {'regs':>4} "
            f"{'spill':>6} {'shared':>7} {'time':>6}  constants")
    lines = [head]
    for k, r in results:
        if r.error:
            lines.append(f"{r.name:<26} {k.kind:<9} {k.phase:<8} {r.num_warps:>5} "
                         f"{r.num_stages:>6}  FAILED: {r.error[:80]}")
            continue
        flag = "  SPILLS" if r.spill_bytes or r.local_bytes else ""
        flag += "  SHARED" if any("shared" in p for p in r.problems) else ""
        lines.append(f"{r.name:<26} {k.kind:<9} {k.phase:<8} {r.num_warps:>5} "
                     f"{r.num_stages:>6} {r.registers:>4} {r.spill_bytes:>6} "
                     f"{r.shared_bytes:>7} {r.compile_s:>5.2f}s  {_consts(r.constexprs)}"
                     + flag)
    return "\n".join(lines)
