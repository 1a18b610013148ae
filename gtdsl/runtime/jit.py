"""Compiled functions: the generated entry check, the table of compiled bodies, dispatch.

A ``JitFunction`` is called through its generated entry check (``gtdsl.runtime.entry``),
which checks the arguments, binds the sizes and builds the specialization key in one pass,
then calls the body compiled for that key. Keys hold dtype, device kind and rank where the
types leave them open, never sizes: one compile serves every size. The backend for a key is
chosen by ``gtdsl.runtime.backends.choose``; bodies are kept in memory per function (never on
disk: regenerating a body takes about a millisecond, less than reading a cache entry back
safely). Compiles are serialized per function, so concurrent first calls compile once.

Failures: an argument that fails its entry check is re-checked by the reference cast,
which raises the ``CastError``. Any other exception from a compiled body re-runs the call
in the reference interpreter, which raises the ``CastError`` that explains it (a body never
lets a raw torch error through for a failure gtdsl can name).
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from dataclasses import dataclass
from types import MethodType
from typing import TYPE_CHECKING, Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, InternalError
from gtdsl.ir.core import Blame, BlameKind, Eqn, Function, Op, Var
from gtdsl.lower.torch.codegen import PREFIX, CalleeInfo, lower_function
from gtdsl.runtime import interp
from gtdsl.runtime.backends import REGISTRY, REQUESTS, Backend, choose
from gtdsl.runtime.casts import Bindings, scalar_args
from gtdsl.runtime.entry import (
    describe_key, generate_binder, generate_entry, generate_trusted, key_of, key_parts, named_as, refuse_nested,
)
from gtdsl.runtime.errors import bind_params
from gtdsl.runtime.grad import guard
from gtdsl.types import DYN, TTensor, Type
from gtdsl.types.subst import size_vars_of

if TYPE_CHECKING:
    from gtdsl.runtime.module import CompiledModule

log = logging.getLogger("gtdsl")


@dataclass(frozen=True, slots=True)
class CacheInfo:
    hits: int
    misses: int
    compiles: int
    keys: int
    # calls on the Triton backend made inside forward-mode AD or a torch.func transform, which
    # ran the torch code
    torch_for_transforms: int = 0
    # calls whose arguments the generated entry could not check, so the reference check did
    # (a failing call, or a parameter type the entry has no code for)
    slow_entries: int = 0


_PASS = (GtdslError, InternalError)  # what a compiled body's caller lets through untouched

# every gtdsl function alive: `gtdsl.export` of a model's method records which of them the
# method calls, and with what
LIVE: weakref.WeakSet[JitFunction] = weakref.WeakSet()


class JitFunction:
    """A checked gtdsl function, compiled per specialization key on first use."""

    def __init__(self, module: CompiledModule, qualname: str, backend: str = "auto") -> None:
        if backend not in REQUESTS:
            raise usage_error(f"unknown backend {backend!r}", "use one of: " +
                              ", ".join(REQUESTS))
        self.module = module
        self.qualname = qualname
        self.name = qualname.rsplit(".", 1)[-1]
        self.backend = backend
        self.__name__ = self.name
        self.__qualname__ = qualname
        prog = module.program
        self._fn = fn = prog.ir[qualname]
        self.__doc__ = fn.doc
        self._params = _entry_targets(fn)
        self._spans = list(fn.param_spans) or [None] * len(fn.params)
        names: list[str] = []
        rows: list[str] = []
        for _, t in self._params:
            size_vars_of(t, names, rows)
        self._sizes, self._rows = tuple(sorted(set(names))), tuple(sorted(set(rows)))
        pnames = {n for n, _ in self._params}
        # size variables a caller may give by keyword: `attention(p, x, H=12, K=64)`
        self._size_kw = tuple(v for v in fn.size_vars if v not in pnames and
                              v.isidentifier() and not v.startswith(PREFIX))
        self._parts = key_parts(self._params)
        by_input = {i: e.param("blame") for i, e in _entry_casts(self._fn).items()}
        self._blames = [by_input.get(p.id) for p in self._fn.params]
        self._table: dict[tuple, Any] = {}
        self._stats = [0]  # fast-path calls (hits and misses)
        self._misses = 0
        self._compiles = 0
        self._slow_calls = 0
        self._grad_table: dict[tuple, Any] = {}  # torch code for Triton calls under transforms
        self._grad_calls = [0]
        self._lock = threading.Lock()
        self._entry = self._make_entry()
        LIVE.add(self)
        if REGISTRY[backend if backend in REGISTRY else "torch"].compiled:
            # the generated entry is this object's __call__: no Python-level forwarding (a
            # staticmethod: the entry has the user's parameters only, so a wrong call gets
            # Python's own message for the user's function)
            self.__class__ = type("JitFunction", (JitFunction,),
                                  {"__call__": staticmethod(self._entry)})

    # ------------------------------------------------------------------ public
    @property
    def signature(self) -> str:
        return self._fn.signature or self.qualname

    def cache_info(self) -> CacheInfo:
        calls = self._stats[0]
        return CacheInfo(calls - self._misses, self._misses, self._compiles, len(self._table),
                         self._grad_calls[0], self._slow_calls)

    def cache_clear(self) -> None:
        with self._lock:
            self._table.clear()
            self._grad_table.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The reference interpreter's call (the compiled backends install their entry)."""
        values, sizes = self._bind(*args, **kwargs)  # Python's own errors for a wrong call
        self._check_size_keywords(sizes)
        refuse_nested(self.qualname, self._params, self._spans, values)
        values = scalar_args(self._params, values)
        return interp.interpret(self.module.program, self.qualname, values, {}, sizes)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """A jitted function defined in a class is a method, as a Python function is:
        ``instance.forward`` is bound to the instance (its first argument)."""
        if obj is None:
            return self
        return MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<gtdsl function {self.signature}>"

    def source(self) -> str:
        """The generated Python: the entry check, then the body (the same for every key)."""
        gen = lower_function(self._fn, self._sizes, self._rows, callees=self.module.callee_info)
        return self._entry_source + "\n\n" + gen.source

    # ------------------------------------------------------------------ entry
    def _make_entry(self) -> Any:
        defaults = self.module.program.defaults.get(self.qualname, {})
        src, consts = generate_entry(self._params, defaults, self._sizes, self._rows,
                                     self._parts, self._size_kw, self.module.program.struct)
        self._entry_source = src
        ns: dict[str, Any] = dict(consts)
        ns.update({f"{PREFIX}slow": self._slow, f"{PREFIX}table": self._table,
                   f"{PREFIX}compile": self._compile, f"{PREFIX}stats": self._stats,
                   f"{PREFIX}diagnose": self._diagnose, f"{PREFIX}Passthrough": _PASS,
                   f"{PREFIX}plain": self.module.plain_classes})
        code = compile(src, f"<gtdsl entry {self.qualname}>", "exec")
        exec(code, ns)  # noqa: S102 - generated from types, no user text
        # the entry for calls from other gtdsl bodies that proved the arguments' types
        tns: dict[str, Any] = {f"{PREFIX}table": self._table, f"{PREFIX}compile": self._compile,
                               f"{PREFIX}stats": self._stats, f"{PREFIX}T": torch.Tensor}
        tsrc = generate_trusted(self._params, self._sizes, self._rows, self._parts)
        exec(compile(tsrc, f"<gtdsl entry {self.qualname}>", "exec"), tns)  # noqa: S102
        self.trusted = named_as(tns[f"{PREFIX}trusted"], self.name)
        self.callee_info = CalleeInfo(self._params, defaults, self._sizes, self._rows,
                                      tuple((p.index, p.what) for p in self._parts))
        src, consts = generate_binder(self._params, defaults, self._size_kw)
        exec(compile(src, f"<gtdsl entry {self.qualname}>", "exec"), consts)  # noqa: S102
        self._bind = named_as(consts[f"{PREFIX}bind"], self.name)
        return named_as(ns[f"{PREFIX}entry"], self.name)

    def _slow(self, args: tuple, given: dict[str, Any] | None = None) -> Any:
        """The reference entry: explains a failure, and serves the calls the generated entry
        has no code for (a size variable no argument and no keyword determines, a list or
        an equation inside a list's elements that a later element binds)."""
        self._slow_calls += 1
        b = Bindings()
        self._check_size_keywords(given or {})
        for v, n in (given or {}).items():
            if n is not None:
                b.sizes[v] = n
                b.where[v] = "the caller"
        refuse_nested(self.qualname, self._params, self._spans, args)
        args = scalar_args(self._params, args)
        bind_params(self._params, args, self._blames, b, self.module.program.struct)
        key = key_of(self._parts, list(args))
        self._stats[0] += 1
        fn = self._table.get(key) or self._compile(key)
        extra = [b.sizes.get(s) for s in self._sizes] + [
            torch.Size(b.rows[r]) if r in b.rows else None for r in self._rows]
        try:
            return fn(*args, *extra)
        except _PASS:
            raise
        except Exception as e:
            return self._diagnose(e, args, given)


    def _check_size_keywords(self, given: dict[str, Any]) -> None:
        """A size given by keyword (``H=12``) is a non-negative int: GT3001 otherwise (a
        ``CastError``, so also the ``TypeError`` Python raises for a bad argument)."""
        for v, n in given.items():
            if n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
                continue
            from gtdsl.runtime.errors import CALLER, CastError, caller_location
            from gtdsl.runtime.values import describe_value

            where = CALLER.get() or caller_location()
            raise CastError(Diagnostic(
                "GT3001", f"size `{v}` of `{self.qualname}` must be a non-negative int, got "
                f"{n!r}", None, (),
                (f"called from {where} (the caller is blamed)" if where else
                 "the caller is blamed", f"got: {describe_value(n)}"),
                f"give `{v}` as a non-negative int (`{v}=12`), or leave it out where an "
                "argument determines it", path=self.qualname),
                Blame(BlameKind.ARG, self.qualname, None, f"size `{v}`")) from None

    def _diagnose(self, exc: BaseException, args: tuple, given: dict | None = None) -> Any:
        """A compiled body raised: the reference interpreter says why, as a CastError."""
        refuse_nested(self.qualname, self._params, self._spans, args)  # unannotated ones
        try:
            interp.run_function(self.module.program, self._fn, list(args), given)
        except (GtdslError, InternalError):
            raise
        except Exception as ref_exc:  # the interpreter reports user failures as gtdsl errors
            raise InternalError(f"the reference interpreter failed on `{self.qualname}`: "
                                f"{type(ref_exc).__name__}: {ref_exc}") from ref_exc
        raise InternalError(f"the compiled `{self.qualname}` raised {type(exc).__name__}: "
                            f"{exc}, where the reference interpreter did not") from exc

    # ------------------------------------------------------------------ compile
    def body_for(self, key: tuple) -> Any:
        """The compiled body for ``key`` (compiled now if it is not yet): what a caller
        whose types fix this function's key calls directly."""
        fn = self._table.get(key)
        if fn is None:
            self._stats[0] += 1  # counted as a call that missed, as the entry counts one
            fn = self._compile(key)
        return fn

    def _compile(self, key: tuple) -> Any:
        with self._lock:
            fn = self._table.get(key)
            if fn is not None:
                return fn
            self._misses += 1
            if self._table and "recompiles" in self.module.config.log:
                _log_recompile(self, key)
            fn = self._build(key)
            self._compiles += 1
            self._table[key] = fn
            return fn

    def backend_for(self, key: tuple) -> Backend:
        """The backend that runs calls with ``key`` (``backends.choose``: ``auto`` takes
        Triton for CUDA calls when Triton can be imported). An interpreted function's
        compiled bodies (the CLI's ``--explain`` asks for them) are torch code."""
        if self.backend == "interpret":
            return REGISTRY["torch"]
        cuda = next((v for p, v in zip(self._parts, key) if p.what == "cuda"), None)
        if cuda is None:
            cuda = any(isinstance(t, TTensor) and t.device.kind == "cuda" for _, t in self._params)
        return choose(self.backend, bool(cuda))

    def _cuda_of(self, key: tuple) -> bool | None:
        """Whether calls with ``key`` run on CUDA, where the key or the types say."""
        cuda = next((v for p, v in zip(self._parts, key) if p.what == "cuda"), None)
        if cuda is None:
            kinds = {t.device.kind for _, t in self._params if isinstance(t, TTensor)}
            if kinds == {"cuda"}:
                return True
            if kinds == {"cpu"}:
                return False
        return cuda

    def uses_triton(self, key: tuple) -> bool:
        return self.backend_for(key).name == "triton"

    def fused(self) -> Function:
        """The function's IR after the Triton backend's pass: fused ops as ``KERNEL`` eqns."""
        return REGISTRY["triton"].prepare(self._fn)

    def plan(self) -> str:
        """The Triton launch plan: one line per step, each kernel with its ops and outputs."""
        from gtdsl.lower.triton.fusion import describe

        return describe(self.fused())

    def _build(self, key: tuple) -> Any:
        backend = self.backend_for(key)
        body = self._build_backend(key, backend)
        if not backend.guards_transforms:
            return body
        return guard(self.qualname, len(self._params) + len(self._sizes) + len(self._rows),
                     body, lambda: self._torch_body(key), self._grad_calls)

    def _torch_body(self, key: tuple) -> Any:
        """The torch code for ``key``, for Triton calls under forward-mode AD or torch.func."""
        with self._lock:
            fn = self._grad_table.get(key)
            if fn is None:
                fn = self._grad_table[key] = self._build_backend(key, REGISTRY["torch"])
            return fn

    def _build_backend(self, key: tuple, backend: Backend) -> Any:
        """Lower and compile the body for ``key`` on ``backend``. Generated code lives in
        memory only: gtdsl never executes code it reads from disk."""
        gen = lower_function(backend.prepare(self._fn), self._sizes, self._rows,
                             callees=self.module.callee_info, cuda=self._cuda_of(key))
        ns = self.module.namespace(gen.constants)
        try:
            code = compile(gen.source, f"<gtdsl {self.qualname}>", "exec")
        except SyntaxError as e:
            raise InternalError(f"generated code for `{self.qualname}` does not compile: "
                                f"{e}") from e
        exec(code, ns)  # noqa: S102 - generated from the IR, user text escaped
        return ns[f"{PREFIX}body"]

    def triton_source(self) -> str:
        """The launch plan, the kernels (for the ranks the types fix; others are generated
        per rank when called) and the host code that launches them."""
        from gtdsl.lower.triton.fusion import describe
        from gtdsl.lower.triton.kernels import kernel_sources

        fn = self.fused()
        parts = [f"# launch plan of `{self.qualname}`",
                 *("# " + line for line in describe(fn).splitlines()), "", *kernel_sources(fn)]
        gen = lower_function(fn, self._sizes, self._rows, callees=self.module.callee_info)
        return "\n".join(parts) + "\n" + gen.source


def _entry_casts(fn: Function) -> dict[int, Eqn]:
    """The entry casts of ``fn`` (the ``CHECK_CAST`` eqns blaming an argument) by the id of
    the parameter each checks."""
    return {a.id: e for e in fn.body.eqns
            if e.op is Op.CHECK_CAST and e.param("blame").kind is BlameKind.ARG
            for a in e.ins if isinstance(a, Var)}


def _entry_targets(fn: Function) -> list[tuple[str, Type]]:
    """Each parameter's entry cast target (``?`` for unannotated ones)."""
    targets = {i: e.param("target") for i, e in _entry_casts(fn).items()}
    return [(n, targets.get(p.id, DYN)) for n, p in zip(fn.param_names(), fn.params)]


def _log_recompile(f: JitFunction, key: tuple) -> None:
    new = describe_key(f._parts, key)
    best = None
    for old_key in f._table:
        old = describe_key(f._parts, old_key)
        diff = [f"{k}: {old[k]} -> {v}" for k, v in new.items() if old.get(k) != v]
        if best is None or len(diff) < len(best):
            best = diff
    if not log.handlers and not logging.getLogger().handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
    log.info("recompiling `%s` (compile %d): %s", f.qualname, f._compiles + 1,
             "; ".join(best or ["new key"]))


def usage_error(message: str, help: str) -> GtdslError:
    return GtdslError([Diagnostic("GT5001", message, help=help, path="gtdsl.jit")])


__all__ = ["CacheInfo", "JitFunction", "usage_error"]
