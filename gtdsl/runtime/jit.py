"""The JIT: ``@gtdsl.jit``, ``gtdsl.load`` and the compiled functions they return.

A ``JitFunction`` is called through its generated entry check (``gtdsl.runtime.entry``),
which checks the arguments, binds the sizes and builds the specialization key in one pass,
then calls the body compiled for that key. Keys hold dtype, device kind and rank where the
types leave them open, never sizes: one compile serves every size.

Compiled bodies live in memory per function and on disk under ``GTDSL_CACHE_DIR/jit``: a
file per (gtdsl version, backend, module sources, function, key) holding the generated
source and a checksum. A file that is missing, corrupt, stale or unreadable is regenerated,
never trusted; writes go to a temporary file renamed into place. Compiles are serialized per
function, so concurrent first calls compile once.

Failures: an argument that fails its entry check is re-checked by the reference cast,
which raises the ``CastError``. Any other exception from a compiled body re-runs the call
in the reference interpreter, which raises the ``CastError`` that explains it (a body never
lets a raw torch error through for a failure gtdsl can name).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from gtdsl._version import __version__
from gtdsl._config import load_config
from gtdsl.check import CheckResult, check_module
from gtdsl.check.env import ALLOWED_PYTHON, size_vars_of
from gtdsl.diagnostics import Diagnostic, GtdslError, InternalError, SourceFile
from gtdsl.diagnostics.diagnostic import ParseError
from gtdsl.ir.core import BlameKind, Op
from gtdsl.lower.torch.calls import resolve
from gtdsl.lower.torch.codegen import PREFIX, lower_function
from gtdsl.runtime import interp
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.runtime.entry import describe_key, generate_entry, key_of, key_parts
from gtdsl.runtime.errors import (
    CastError, TypeCheckError, assert_error, bind_params, cast_error,
)
from gtdsl.runtime.values import describe_value
from gtdsl.types import TTensor

log = logging.getLogger("gtdsl")
BACKENDS = ("auto", "torch", "triton", "interpret")
_CACHE_FORMAT = "gtdsl-jit-cache 1"


def _generator_hash() -> str:
    """A digest of the code generators: a cached body made by other generator code is stale."""
    from gtdsl.lower.torch import calls, codegen

    h = hashlib.sha256()
    for mod in (calls, codegen):
        try:
            h.update(Path(mod.__file__).read_bytes())
        except OSError:
            h.update(__version__.encode())
    return h.hexdigest()[:16]


_GENERATOR = _generator_hash()


@dataclass(frozen=True, slots=True)
class CacheInfo:
    hits: int
    misses: int
    compiles: int
    keys: int
    disk_hits: int = 0


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
        self._lock = threading.Lock()
        self._entry = self._make_entry()
        if self.backend != "interpret":
            # the generated entry is this object's __call__: no Python-level forwarding
            self.__class__ = type("JitFunction", (JitFunction,), {"__call__": self._entry})

    # ------------------------------------------------------------------ public
    @property
    def signature(self) -> str:
        return self.module.result.signature(self.name) if self.name in dict(
            self.module.result.signatures) else self.qualname

    def cache_info(self) -> CacheInfo:
        calls = self._stats[0]
        return CacheInfo(calls - self._misses, self._misses, self._compiles, len(self._table),
                         self._disk_hits)

    def cache_clear(self) -> None:
        with self._lock:
            self._table.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The reference interpreter's call (the compiled backends install their entry)."""
        sizes = {k: kwargs.pop(k) for k in list(kwargs) if k in self._size_kw}
        return interp.interpret(self.module.program, self.qualname, args, kwargs, sizes)

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
        return ns[f"{PREFIX}entry"]

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
        triton = self.uses_triton(key)
        plan = self.plan(key) if triton else None
        backend = "triton" if triton else "torch"
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


def _read_cache(path: Path) -> str | None:
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    head, _, source = data.partition("\n")
    parts = head.split(" ")
    if len(parts) != 4 or " ".join(parts[1:3]) != _CACHE_FORMAT or \
            parts[3] != hashlib.sha256(source.encode()).hexdigest():
        return None
    return source


def _write_cache(path: Path, source: str) -> None:
    """Atomic: a temporary file in the same directory, renamed into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest = hashlib.sha256(source.encode()).hexdigest()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"# {_CACHE_FORMAT} {digest}\n{source}")
            os.replace(tmp, path)
        except BaseException:
            with _suppress():
                os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only or full disk: the cache is an optimization


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return True


# ====================================================================== modules


class CompiledModule:
    """A checked ``.gt`` module (or one ``@jit`` function): its functions and structs."""

    def __init__(self, result: CheckResult, allowed: tuple[str, ...], backend: str = "auto",
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
        h = hashlib.sha256(repr((self._hash, _GENERATOR, backend, qualname, key)).encode()
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
    diagnostics). ``allow_python`` adds Python modules the file may import, beyond torch,
    torch.nn.functional and math. Loading runs nothing from the file.
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


def _compile_file(file: SourceFile, p: Path | None, backend: str,
                  allow_python: tuple[str, ...]) -> CompiledModule:
    from gtdsl.syntax.parse import parse_file_text

    if backend not in BACKENDS:
        raise _usage_error(f"unknown backend {backend!r}", "use one of: " + ", ".join(BACKENDS))
    tree = parse_file_text(file)
    allowed = ALLOWED_PYTHON + tuple(allow_python)
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
    allowed = ALLOWED_PYTHON + tuple(allow_python)
    result = check_module(source, module, None, allowed)
    _check_errors(result)
    compiled = CompiledModule(result, allowed, backend, (source.text,))
    out = compiled.functions[fns[0].name]
    out.__wrapped__ = fn  # type: ignore[attr-defined]
    out.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
    return out


__all__ = ["CacheInfo", "CastError", "CompiledModule", "JitFunction", "jit", "load"]
