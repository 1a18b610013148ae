"""The JIT: ``@gtdsl.jit``, ``gtdsl.load`` and the compiled functions they return.

A ``JitFunction`` is called through its generated entry check (``gtdsl.runtime.entry``),
which checks the arguments, binds the sizes and builds the specialization key in one pass,
then calls the body compiled for that key. Keys hold dtype, device kind and rank where the
types leave them open, never sizes: one compile serves every size.

Compiled bodies live in memory per function and on disk under ``GTDSL_CACHE_DIR/jit``: a
file per (digest of the whole installed gtdsl, Python and torch versions, backend, module
sources, function, key) holding the generated source and its checksum. An entry is executed
only if it passes the private-file rules (``gtdsl._resources``: it and its directories owned
by this user and writable by no one else, a regular file reached without a link, within
``CACHE_LIMIT``) and its checksum; anything else is a miss, regenerated and rewritten
atomically (a new 0600 file renamed into place), never executed. Compiles are serialized per
function, so concurrent first calls compile once.

Gradients: Triton kernels have no backward. On the Triton backend each body sits behind a
check (``_grad_guard``): a call that needs gradients runs the torch code for its key instead.

Failures: an argument that fails its entry check is re-checked by the reference cast,
which raises the ``CastError``. Any other exception from a compiled body re-runs the call
in the reference interpreter, which raises the ``CastError`` that explains it (a body never
lets a raw torch error through for a failure gtdsl can name).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any

import torch

from gtdsl._version import __version__
from gtdsl._config import load_config
from gtdsl._resources import package_digest, read_private_file, write_private_file
from gtdsl.check import CheckResult, check_module
from gtdsl.check.env import ALLOWED_PYTHON
from gtdsl.types.subst import size_vars_of
from gtdsl.ops.pyallow import Allowlist, bad_extra_name
from gtdsl.diagnostics import Diagnostic, GtdslError, InternalError, SourceFile
from gtdsl.diagnostics.diagnostic import ParseError
from gtdsl.ir.core import BlameKind, Op
from gtdsl.lower.torch.calls import checked_mul, checked_pow, checked_range, resolve
from gtdsl.lower.torch.codegen import PREFIX, lower_function
from gtdsl.runtime import interp
from gtdsl.runtime.casts import Bindings
from gtdsl.runtime.entry import (
    describe_key, generate_binder, generate_entry, key_of, key_parts, named_as, refuse_nested,
)
from gtdsl.runtime.errors import (
    CastError, TypeCheckError, assert_error, bind_params,
)
from gtdsl.runtime.values import describe_value
from gtdsl.types import TList, TOther, TScalar, TStruct, TTensor, TTuple

log = logging.getLogger("gtdsl")
BACKENDS = ("auto", "torch", "triton", "interpret")
_CACHE_FORMAT = "gtdsl-jit-cache 2"
CACHE_LIMIT = 8 << 20  # bytes: a larger cache entry is never read (generated bodies are KBs)


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """What every cached body is a function of besides its module and key: all of gtdsl's
    code and data (``package_digest``), and the Python and torch it generates code for."""
    return hashlib.sha256("\0".join((__version__, package_digest(), sys.version,
                                      torch.__version__)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheInfo:
    hits: int
    misses: int
    compiles: int
    keys: int
    disk_hits: int = 0
    # calls on the Triton backend that needed gradients and so ran the torch code
    torch_for_grad: int = 0


_PASS = (GtdslError, InternalError)  # what a compiled body's caller lets through untouched


class JitFunction:
    """A checked gtdsl function, compiled per specialization key on first use."""

    def __init__(self, module: CompiledModule, qualname: str, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise _usage_error(f"unknown backend {backend!r}", "use one of: " +
                               ", ".join(BACKENDS))
        self.module = module
        self.qualname = qualname
        self.name = qualname.rsplit(".", 1)[-1]
        self.backend = backend
        self.__name__ = self.name
        self.__qualname__ = qualname
        prog = module.program
        self._fn = prog.ir[qualname]
        info = prog.info[qualname]
        self.__doc__ = _docstring(info)
        self._params = _entry_targets(self._fn, [n for n, _, _ in info.params])
        self._spans = [getattr(p, "span", None) for _, _, p in info.params]
        names: list[str] = []
        rows: list[str] = []
        for _, t in self._params:
            size_vars_of(t, names, rows)
        self._sizes, self._rows = tuple(sorted(set(names))), tuple(sorted(set(rows)))
        pnames = {n for n, _ in self._params}
        # size variables a caller may give by keyword: `attention(p, x, H=12, K=64)`
        self._size_kw = tuple(v for v in info.size_vars if v not in pnames and
                              v.isidentifier() and not v.startswith(PREFIX))
        self._parts = key_parts(self._params)
        by_input = {e.ins[0].id: e.param("blame") for e in self._fn.body.eqns
                    if e.op is Op.CHECK_CAST and e.param("blame").kind is BlameKind.ARG}
        self._blames = [by_input.get(p.id) for p in self._fn.params]
        self._table: dict[tuple, Any] = {}
        self._stats = [0]  # fast-path calls (hits and misses)
        self._misses = 0
        self._compiles = 0
        self._disk_hits = 0
        self._grad_table: dict[tuple, Any] = {}  # torch code for Triton calls needing grads
        self._grad_calls = [0]
        self._lock = threading.Lock()
        self._entry = self._make_entry()
        if self.backend != "interpret":
            # the generated entry is this object's __call__: no Python-level forwarding (a
            # staticmethod: the entry has the user's parameters only, so a wrong call gets
            # Python's own message for the user's function)
            self.__class__ = type("JitFunction", (JitFunction,),
                                  {"__call__": staticmethod(self._entry)})

    # ------------------------------------------------------------------ public
    @property
    def signature(self) -> str:
        return self.module.result.signature(self.name) if self.name in dict(
            self.module.result.signatures) else self.qualname

    def cache_info(self) -> CacheInfo:
        calls = self._stats[0]
        return CacheInfo(calls - self._misses, self._misses, self._compiles, len(self._table),
                         self._disk_hits, self._grad_calls[0])

    def cache_clear(self) -> None:
        with self._lock:
            self._table.clear()
            self._grad_table.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The reference interpreter's call (the compiled backends install their entry)."""
        values, sizes = self._bind(*args, **kwargs)  # Python's own errors for a wrong call
        refuse_nested(self.qualname, self._params, self._spans, values)
        return interp.interpret(self.module.program, self.qualname, values, {}, sizes)

    def __repr__(self) -> str:
        return f"<gtdsl function {self.signature}>"

    def source(self) -> str:
        """The generated Python: the entry check, then the body (the same for every key)."""
        gen = lower_function(self._fn, self._sizes, self._rows)
        return self._entry_source + "\n\n" + gen.source

    # ------------------------------------------------------------------ entry
    def _make_entry(self) -> Any:
        defaults = self.module.program.defaults.get(self.qualname, {})
        src, consts = generate_entry(self._params, defaults, self._sizes, self._rows,
                                     self._parts, self._size_kw)
        self._entry_source = src
        ns: dict[str, Any] = dict(consts)
        ns.update({f"{PREFIX}slow": self._slow, f"{PREFIX}table": self._table,
                   f"{PREFIX}compile": self._compile, f"{PREFIX}stats": self._stats,
                   f"{PREFIX}diagnose": self._diagnose, f"{PREFIX}Passthrough": _PASS})
        code = compile(src, f"<gtdsl entry {self.qualname}>", "exec")
        exec(code, ns)  # noqa: S102 - generated from types, no user text
        src, consts = generate_binder(self._params, defaults, self._size_kw)
        exec(compile(src, f"<gtdsl entry {self.qualname}>", "exec"), consts)  # noqa: S102
        self._bind = named_as(consts[f"{PREFIX}bind"], self.name)
        return named_as(ns[f"{PREFIX}entry"], self.name)

    def _slow(self, args: tuple, given: dict[str, Any] | None = None) -> Any:
        """The reference entry: explains any failure, and serves what the fast path does not
        (structs, lists, sizes only an equation binds)."""
        b = Bindings()
        for v, n in (given or {}).items():
            if n is not None:
                if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                    raise TypeError(f"{self.qualname}(): size `{v}` must be a non-negative "
                                    f"int, got {n!r}")
                b.sizes[v] = n
                b.where[v] = "the caller"
        refuse_nested(self.qualname, self._params, self._spans, args)
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

    def uses_triton(self, key: tuple) -> bool:
        """``triton``: always (Triton's interpreter for CPU tensors); ``auto``: for CUDA calls
        when Triton can be imported; ``torch``: never."""
        if self.backend == "triton":
            return True
        if self.backend != "auto":
            return False
        cuda = next((v for p, v in zip(self._parts, key) if p.what == "cuda"), None)
        if cuda is None:
            cuda = any(isinstance(t, TTensor) and t.device.kind == "cuda" for _, t in self._params)
        return bool(cuda) and _triton_available()

    def plan(self, key: tuple | None = None) -> Any:
        from gtdsl.lower.triton.fusion import plan_function

        return plan_function(self._fn)

    def _build(self, key: tuple) -> Any:
        if not self.uses_triton(key):
            return self._build_backend(key, "torch")
        return self._grad_guard(key, self._build_backend(key, "triton"))

    def _grad_guard(self, key: tuple, kernels: Any) -> Any:
        """The Triton body behind a check for gradients.

        Results of Triton kernels carry no autograd graph. A call made with grad mode on and
        any tensor argument that requires grad (also inside a struct, list or tuple), or made
        inside forward-mode AD (``torch.autograd.forward_ad``) or a ``torch.func`` transform,
        runs the torch code for the same key instead, which is differentiable: it is compiled
        on the first such call. Other calls (``torch.no_grad()``, inference, inputs that need
        no gradient) run the kernels. The check costs three flag tests per call, and one
        attribute read per tensor argument while grad mode is on.
        """
        structs = self.module.program.struct
        names = [f"{PREFIX}a{i}" for i in range(len(self._params))]
        args = ", ".join(names + [f"{PREFIX}e{i}" for i in range(
            len(self._sizes) + len(self._rows))])
        ns: dict[str, Any] = {f"{PREFIX}grad_on": torch.is_grad_enabled,
                              f"{PREFIX}kernels": kernels, f"{PREFIX}calls": self._grad_calls}
        tests = []
        for i, (n, (_, t)) in enumerate(zip(names, self._params)):
            if isinstance(t, TTensor):
                tests.append(f"{n}.requires_grad")
                continue
            test = _grad_test(t, structs)
            if test is not None:
                ns[f"{PREFIX}g{i}"] = test
                tests.append(f"{PREFIX}g{i}({n})")
        if not tests:
            return kernels  # no argument can carry a gradient
        cond = f"({PREFIX}grad_on() and ({' or '.join(tests)}))"
        for name, flag, test in _AD_FLAGS:
            ns[f"{PREFIX}{name}"] = flag
            cond += f" or {test.format(PREFIX + name)}"

        def differentiable(*values: Any) -> Any:
            body = self._torch_body(key)
            ns[f"{PREFIX}torch"] = body
            return body(*values)

        ns[f"{PREFIX}torch"] = differentiable
        src = (f"def {PREFIX}body({args}):\n"
               f"    if {cond}:\n"
               f"        {PREFIX}calls[0] += 1\n"
               f"        return {PREFIX}torch({args})\n"
               f"    return {PREFIX}kernels({args})\n")
        exec(compile(src, f"<gtdsl grad check {self.qualname}>", "exec"), ns)  # noqa: S102
        return ns[f"{PREFIX}body"]

    def _torch_body(self, key: tuple) -> Any:
        """The torch code for ``key``, for calls that need gradients on a Triton function."""
        with self._lock:
            fn = self._grad_table.get(key)
            if fn is None:
                fn = self._grad_table[key] = self._build_backend(key, "torch")
            return fn

    def _build_backend(self, key: tuple, backend: str) -> Any:
        plan = self.plan(key) if backend == "triton" else None
        cache = self.module.disk_path(self.qualname, backend, key)
        source = _read_cache(cache) if cache is not None else None
        gen = lower_function(self._fn, self._sizes, self._rows, emit=source is None, plan=plan)
        if source is not None:
            self._disk_hits += 1
        else:
            source = gen.source
            if cache is not None:
                _write_cache(cache, source)
        ns = self.module.namespace(gen.constants)
        try:
            code = compile(source, f"<gtdsl {self.qualname}>", "exec")
            exec(code, ns)  # noqa: S102 - generated code, user text escaped
        except Exception as e:  # a stale or damaged cache entry that still checksummed
            if cache is None or source == gen.source:
                raise InternalError(f"generated code for `{self.qualname}` does not "
                                    f"compile: {e}") from e
            source = lower_function(self._fn, self._sizes, self._rows, plan=plan).source
            _write_cache(cache, source)
            ns = self.module.namespace(gen.constants)
            exec(compile(source, f"<gtdsl {self.qualname}>", "exec"), ns)  # noqa: S102
        return ns[f"{PREFIX}body"]

    def triton_source(self) -> str:
        """The launch plan, the kernels (for the ranks the types fix; others are generated
        per rank when called) and the host code that launches them."""
        from gtdsl.lower.triton.kernels import launcher_for

        plan = self.plan()
        parts = [f"# launch plan of `{self.qualname}`", *("# " + line for line in
                                                          plan.describe().splitlines()), ""]
        for g in plan.groups:
            launcher = launcher_for(g)
            if g.kind in ("matmul", "attention"):
                parts.append(launcher.source)
                continue
            rank = g.shape.rank
            if rank is None:
                parts.append(f"# {g.name}: its rank is known per call; shown for rank "
                             f"{len(g.shape.dims) + 1}")
                rank = len(g.shape.dims) + 1
            parts.append(launcher.source(max(rank, 1), 128 if g.kind == "row" else None))
        gen = lower_function(self._fn, self._sizes, self._rows, plan=plan)
        return "\n".join(parts) + "\n" + gen.source


def _ad_flags() -> tuple[tuple[str, Any, str], ...]:
    """Cheap tests, at call time, of autodiff that sees no ``requires_grad``: a forward-mode
    dual level, and an active ``torch.func`` transform (``grad``, ``jvp``, ``vmap``). Where
    this torch lacks the private flag a test reads, that test is left out."""
    out = []
    try:
        import torch.autograd.forward_ad as fwd

        if isinstance(getattr(fwd, "_current_level", None), int):
            out.append(("fwd", fwd, "{}._current_level >= 0"))
    except ImportError:
        pass
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if callable(active):
        out.append(("functorch", active, "{}()"))
    return tuple(out)


_AD_FLAGS = _ad_flags()


def _grad_test(t: Any, structs: Any, depth: int = 0) -> Any:
    """A test of whether a value of type ``t`` holds a tensor that requires grad, or None
    when no value of the type can hold a tensor. Follows the type through structs, lists and
    tuples; a ``?`` (or a struct whose fields are unknown) is searched whole."""
    if isinstance(t, TTensor):
        return _requires_grad
    if isinstance(t, (TScalar, TOther)):
        return None
    if depth > 16:
        return _holds_grad
    if isinstance(t, TList):
        inner = _grad_test(t.elem, structs, depth + 1)
        return None if inner is None else (lambda v: any(map(inner, v)))
    if isinstance(t, TTuple):
        tests = [(i, f) for i, et in enumerate(t.elems)
                 if (f := _grad_test(et, structs, depth + 1)) is not None]
        return None if not tests else (lambda v: any(f(v[i]) for i, f in tests))
    if isinstance(t, TStruct):
        info = structs(t.name) if structs is not None else None
        if info is None:
            return _holds_grad
        fields = [(name, f) for name, (ft, _) in info.fields.items()
                  if (f := _grad_test(ft, structs, depth + 1)) is not None]
        return None if not fields else (
            lambda v: any(f(interp.get_field(v, name)) for name, f in fields))
    return _holds_grad


def _requires_grad(value: Any) -> bool:
    return value.requires_grad


def _holds_grad(value: Any, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether a value of unknown type holds a tensor that requires grad: containers, maps
    and objects' attributes are searched, each object once (modules, classes and functions
    are not searched); a value nested too deeply to search counts as one."""
    if isinstance(value, torch.Tensor):
        return value.requires_grad
    if value is None or isinstance(value, _LEAVES):
        return False
    if depth > 16:
        return True  # the torch code is right either way; only the kernels could be wrong
    seen = set() if seen is None else seen
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        items: Any = value
    elif isinstance(value, Mapping):
        items = value.values()
    elif isinstance(getattr(value, "__dict__", None), dict):
        items = vars(value).values()
    else:
        items = [getattr(value, n, None) for c in type(value).__mro__
                 for n in getattr(c, "__slots__", ())]
    return any(_holds_grad(v, depth + 1, seen) for v in items)


_LEAVES = (bool, int, float, complex, str, bytes, torch.dtype, torch.device, type,
           types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _triton_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()
    except (ImportError, ValueError):
        return False


def _docstring(info: Any) -> str | None:
    return info.decl.docstring


def _entry_targets(fn: Any, names: list[str]) -> list[tuple[str, Any]]:
    """Each parameter's entry cast target (``?`` for unannotated ones)."""
    from gtdsl.types import DYN

    targets = {e.ins[0].id: e.param("target") for e in fn.body.eqns
               if e.op is Op.CHECK_CAST and e.param("blame").kind is BlameKind.ARG}
    return [(n, targets.get(p.id, DYN)) for n, p in zip(names, fn.params)]


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


# ====================================================================== the disk cache


def _entry_location(path: Path) -> tuple[Path, tuple[str, ...], str]:
    """``cache_dir/jit/ab/cdef.py`` as the cache directory, the private subdirectories
    (checked for owner and mode on every read and write) and the file name."""
    return path.parents[2], (path.parent.parent.name, path.parent.name), path.name


def _read_cache(path: Path) -> str | None:
    """The source of a cache entry, or None for anything not to be trusted.

    An entry is read only under gtdsl's private-file rules (``gtdsl._resources``): the file
    and the directories holding it owned by this user and writable by no one else, opened
    without following links, a regular file of at most ``CACHE_LIMIT`` bytes. Its header
    must name this cache format and the checksum of the text. Anything else (a planted,
    linked, shared, oversized, damaged or stale entry, a FIFO or a device) is a miss: the
    body is generated again and the entry rewritten, never executed.
    """
    raw = read_private_file(*_entry_location(path), CACHE_LIMIT)
    if raw is None:
        return None
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head, _, source = data.partition("\n")
    parts = head.split(" ")
    if len(parts) != 4 or parts[0] != "#" or " ".join(parts[1:3]) != _CACHE_FORMAT or \
            parts[3] != hashlib.sha256(source.encode()).hexdigest():
        return None
    return source


def _write_cache(path: Path, source: str) -> None:
    """Atomic: a new private file (0600) in a private directory (0700), renamed into place.
    Nothing is written where it could not be read back (a shared directory, an entry over
    the size limit); a read-only or full disk is not an error (the cache is an optimization).
    """
    digest = hashlib.sha256(source.encode()).hexdigest()
    data = f"# {_CACHE_FORMAT} {digest}\n{source}".encode()
    if len(data) <= CACHE_LIMIT:
        write_private_file(*_entry_location(path), data)


# ====================================================================== modules


class CompiledModule:
    """A checked ``.gt`` module (or one ``@jit`` function): its functions and structs."""

    def __init__(self, result: CheckResult, allowed: Allowlist, backend: str = "auto",
                 sources: tuple[str, ...] = ()) -> None:
        self.result = result
        self.config = load_config()
        self.program = interp.Program(result, allowed)
        self.backend = backend
        self._hash = hashlib.sha256("\0".join((__version__, *sources)).encode()
                                    ).hexdigest()[:32]
        self.functions: dict[str, JitFunction] = {}
        for q in self.program.ir:
            self.functions[q] = JitFunction(self, q, backend)
        # names imported from other .gt modules are attributes too, as in Python
        self._imported = {local: fn.qualname for local, fn in result.module.imported_fns.items()
                          if fn.qualname in self.functions}
        self.structs = {name: _struct_class(info) for name, info in
                        (result.structs or {}).items()}

    def disk_path(self, qualname: str, backend: str, key: tuple) -> Path | None:
        if not self.config.disk_cache:
            return None
        h = hashlib.sha256(repr((self._hash, _code_digest(), backend, qualname, key)).encode()
                           ).hexdigest()
        return self.config.cache_dir / "jit" / h[:2] / f"{h[2:34]}.py"

    def namespace(self, constants: list[Any]) -> dict[str, Any]:
        prog = self.program
        resolved: list[Any] = []
        for c in constants:
            resolved.append(self._constant(c))
        return {
            **{f"{PREFIX}k{i}": c for i, c in enumerate(resolved)},
            f"{PREFIX}cast": lambda k, v, b: _cast(prog, k, v, b),
            f"{PREFIX}check_op": lambda k, b, *ins: _check_op(k, b, ins),
            f"{PREFIX}field": interp.get_field,
            f"{PREFIX}pow": checked_pow,
            f"{PREFIX}mul": checked_mul,
            f"{PREFIX}range": checked_range,
            f"{PREFIX}assert_failed": lambda k: (_ for _ in ()).throw(assert_error(*k)),
        }

    def _constant(self, c: Any) -> Any:
        if isinstance(c, tuple) and c and c[0] == "launch":
            from gtdsl.lower.triton.kernels import launcher_for

            return launcher_for(c[1])
        if isinstance(c, tuple) and c and c[0] == "call":
            return self.functions[c[1]]
        if isinstance(c, tuple) and c and c[0] == "op":
            return resolve(c[1])
        if isinstance(c, tuple) and c and c[0] == "extern":
            return interp.resolve_extern(c[1], self.program.allowed)
        return c

    def __getattr__(self, name: str) -> Any:
        fns = self.__dict__.get("functions", {})
        if name in fns:
            return fns[name]
        imported = self.__dict__.get("_imported", {})
        if name in imported:
            return fns[imported[name]]
        structs = self.__dict__.get("structs", {})
        if name in structs:
            return structs[name]
        raise AttributeError(f"module has no function or struct `{name}`")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.functions) | set(self._imported) |
                      set(self.structs))


def _cast(prog: interp.Program, k: tuple, value: Any, b: tuple) -> Bindings:
    target, blame = k
    bindings = Bindings(dict(b[0]), dict(b[1]))
    interp.cast(prog, bindings, value, target, blame)
    return bindings


def _check_op(k: tuple, b: tuple, ins: tuple) -> None:
    name, names, blame = k
    interp.check_op(name, names, blame, list(ins), Bindings(dict(b[0]), dict(b[1])))


def _struct_class(info: Any) -> type:
    """A plain class for a struct's values: keyword construction, one attribute per field."""
    cls = make_dataclass(info.name, [(f, Any) for f in info.fields], kw_only=True,
                         repr=False)
    cls.__repr__ = lambda self: f"{info.name}(" + ", ".join(  # type: ignore[assignment]
        f"{f}={_short(getattr(self, f))}" for f in info.fields) + ")"
    return cls


def _short(v: Any) -> str:
    import torch

    if isinstance(v, torch.Tensor):
        return describe_value(v)
    if isinstance(v, list):
        return f"[{len(v)} items]"
    return repr(v)


def _usage_error(message: str, help: str) -> GtdslError:
    return GtdslError([Diagnostic("GT5001", message, help=help, path="gtdsl.jit")])


def _check_errors(result: CheckResult) -> None:
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        raise TypeCheckError(errors)


def load(path: str | os.PathLike[str], *, backend: str = "auto",
         allow_python: tuple[str, ...] = ()) -> CompiledModule:
    """Parse and check a ``.gt`` file; return a module whose functions are callable.

    Raises ``gtdsl.ParseError`` or ``gtdsl.TypeCheckError`` (``str()`` is the rendered
    diagnostics). ``allow_python`` adds Python functions or values the file may use, each by
    its full dotted name (``("operator.neg",)``), beyond gtdsl's allowlist of pure torch and
    math names; whole modules cannot be added. Loading runs nothing from the file.
    """
    from gtdsl.syntax.parse import read_source

    p = Path(path)
    file, _warnings = read_source(p)
    return _compile_file(file, p, backend, allow_python)


def load_source(text: str, filename: str = "<string>", *, backend: str = "auto",
                allow_python: tuple[str, ...] = ()) -> CompiledModule:
    """``load`` for source text (imports of other ``.gt`` files resolve from the current
    directory)."""
    return _compile_file(SourceFile(filename, text), None, backend, allow_python)


def _allowlist(allow_python: Any) -> Allowlist:
    """``allow_python`` checked: a tuple of full dotted names of functions or values."""
    if isinstance(allow_python, str) or not isinstance(allow_python, (tuple, list)):
        raise _usage_error(f"allow_python must be a tuple of names, got {allow_python!r}",
                           "e.g. allow_python=(\"operator.neg\",)")
    for name in allow_python:
        why = bad_extra_name(name)
        if why is not None:
            raise _usage_error(f"allow_python: {why}", "name each function or value in "
                               "full, e.g. allow_python=(\"operator.neg\",)")
    return Allowlist(tuple(allow_python)) if allow_python else ALLOWED_PYTHON


def _compile_file(file: SourceFile, p: Path | None, backend: str,
                  allow_python: tuple[str, ...]) -> CompiledModule:
    from gtdsl.syntax.parse import parse_file_text

    if backend not in BACKENDS:
        raise _usage_error(f"unknown backend {backend!r}", "use one of: " + ", ".join(BACKENDS))
    allowed = _allowlist(allow_python)
    tree = parse_file_text(file)
    result = check_module(file, tree, p, allowed)
    _check_errors(result)
    sources = tuple(sorted({f.module.file.text for f in (result.functions or {}).values()}))
    return CompiledModule(result, allowed, backend, sources or (file.text,))


def jit(fn: Any = None, *, backend: str = "auto", allow_python: tuple[str, ...] = ()) -> Any:
    """Compile a Python function written in gtdsl (annotations as strings).

    ``@gtdsl.jit`` or ``@gtdsl.jit(backend="torch")``. The function is parsed from its own
    source and checked when decorated: static errors raise ``TypeCheckError`` there, with
    locations in the ``.py`` file.
    """
    if fn is None:
        return lambda f: jit(f, backend=backend, allow_python=allow_python)
    if backend not in BACKENDS:
        raise _usage_error(f"unknown backend {backend!r}", "use one of: " + ", ".join(BACKENDS))
    from gtdsl.syntax.pyfront import _base_indent, function_source
    from gtdsl.syntax.parse import parse_file_text

    source = function_source(fn)
    module = parse_file_text(source, base_indent=_base_indent(source))
    fns = module.functions()
    if len(fns) != 1 or len(module.body) != 1:
        raise ParseError([Diagnostic("GT0905", f"could not isolate the source of "
                                     f"`{fn.__qualname__}`", path=fn.__code__.co_filename,
                                     help="define the function on its own with `def`")])
    allowed = _allowlist(allow_python)
    result = check_module(source, module, None, allowed)
    _check_errors(result)
    compiled = CompiledModule(result, allowed, backend, (source.text,))
    out = compiled.functions[fns[0].name]
    out.__wrapped__ = fn  # type: ignore[attr-defined]
    for generated in (out._entry, out._bind):  # wrong calls name it as Python would
        named_as(generated, getattr(fn, "__qualname__", out.name))
    out.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
    return out


__all__ = ["CacheInfo", "CastError", "CompiledModule", "JitFunction", "jit", "load"]
