"""The driver: the one place that runs the pipeline, parse -> check -> compile.

- ``check`` / ``check_file``: a path or source text to the diagnostics of reading, parsing and
  type checking (never raises on bad user input), and for the compile command the checked
  module: its signatures, its typed program and its IR.
- ``load`` / ``load_source`` / ``jit``: a ``.gt`` file, source text or a Python function to a
  ``CompiledModule`` (``gtdsl.runtime``), which receives the checked IR program and nothing
  else of the front end. Checked programs are kept per process by the digest of their
  sources and the allowlist, so loading the same sources again parses and checks nothing.
"""

from __future__ import annotations

import gc
import os
from _thread import allocate_lock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gtdsl._records import record
from gtdsl.check import CheckResult, check_module
from gtdsl.check.env import ALLOWED_PYTHON
from gtdsl.check.typed import print_typed
from gtdsl.diagnostics import Diagnostic, ParseError, SourceFile
from gtdsl.ir.core import Function, Program
from gtdsl.ir.printer import print_function
from gtdsl.ops.pyallow import Allowlist, bad_extra_name
from gtdsl.syntax.parse import parse_file_text, read_source

if TYPE_CHECKING:
    from gtdsl.runtime.module import CompiledModule

# The runtime (and torch, which it imports) loads on the first ``load``/``jit``, never for
# checking: ``gtdsl check``, ``explain`` and ``compile --emit ast|typed|ir`` run without it.

_SOURCE_SUFFIXES = (".gt",)


def _looks_like_path(arg: str | os.PathLike[str]) -> bool:
    if isinstance(arg, os.PathLike):
        return True
    return "\n" not in arg and arg.strip().endswith(_SOURCE_SUFFIXES)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing and checking build many small objects that live until the check is done, and
    little cyclic garbage (about 1 object in 100): a garbage collection in between frees
    almost nothing and walks every live object again (all of torch's too, where it is
    loaded), which doubled the time a large module took. Paused while the front end runs,
    unless something else paused it already."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@record(slots=False)
class Checked:
    """Everything the front end produced for one file (``result`` None: it did not parse)."""

    diagnostics: tuple[Diagnostic, ...]
    result: CheckResult | None
    unreadable: bool = False

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)


def check_file(path_or_source: str | os.PathLike[str], filename: str | None = None,
               is_path: bool | None = None, ir: bool = True) -> Checked:
    """Read (when a path), parse and check; ``is_path`` None guesses from the argument;
    ``ir=False`` for the diagnostics and signatures alone (no IR program is kept)."""
    with _collector_paused():
        return _check_file(path_or_source, filename, is_path, ir)


def _check_file(path_or_source: str | os.PathLike[str], filename: str | None,
                is_path: bool | None, ir: bool) -> Checked:
    path: Path | None = None
    try:
        if is_path or (is_path is None and _looks_like_path(path_or_source)):
            path = Path(path_or_source)
            file, warnings = read_source(path)
        else:
            file, warnings = SourceFile(filename or "<string>", str(path_or_source)), []
        tree = parse_file_text(file)
    except ParseError as err:
        return Checked(tuple(err.diagnostics), None,
                       any(d.code.startswith("GT09") for d in err.diagnostics))
    result = check_module(file, tree, path, ir=ir)
    return Checked(tuple(warnings) + result.diagnostics, result)


def check(path_or_source: str | os.PathLike[str], filename: str | None = None) -> list[Diagnostic]:
    """Check a ``.gt`` file (a path, or a string ending in ``.gt``) or source text.

    Returns every diagnostic found, errors and warnings: syntax, names, types and shapes.
    An empty list means the program is well typed.
    """
    return list(check_file(path_or_source, filename).diagnostics)


def emit(result: CheckResult, fn_name: str, what: str, backend: str = "torch") -> str | None:
    """``typed`` or ``ir`` text of one function of a checked module; None if no such function.
    The ``ir`` is what ``backend`` lowers: the checked IR after that backend's pass (the
    triton backend's holds its fused kernels as ``KERNEL`` eqns)."""
    fn = result.module.functions.get(fn_name)
    if fn is None or fn.ir is None:
        return None
    if what == "ir":
        return print_function(backend_pass(backend)(fn.ir))
    return print_typed(fn, result.signature(fn_name), getattr(fn, "lets", {}))


def backend_pass(backend: str) -> Callable[[Function], Function]:
    """The IR pass ``backend`` runs before lowering (``gtdsl.runtime.backends``), found
    without importing the runtime: torch and the interpreter run the checked IR as it is,
    triton runs the fusion pass; any other name asks the registry."""
    if backend in ("torch", "interpret"):
        return _same_ir
    if backend == "triton":
        from gtdsl.lower.triton.fusion import fuse

        return fuse
    from gtdsl.runtime.backends import REGISTRY

    return REGISTRY[backend].prepare


def _same_ir(fn: Function) -> Function:
    return fn


def _check_errors(result: CheckResult) -> None:
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        from gtdsl.runtime.errors import TypeCheckError

        raise TypeCheckError(errors)


def load(path: str | os.PathLike[str], *, backend: str = "auto",
         allow_python: tuple[str, ...] = ()) -> CompiledModule:
    """Parse and check a ``.gt`` file; return a module whose functions are callable.

    Raises ``gtdsl.ParseError`` or ``gtdsl.TypeCheckError`` (``str()`` is the rendered
    diagnostics). ``allow_python`` adds Python functions or values the file may use, each by
    its full dotted name (``("operator.neg",)``), beyond gtdsl's allowlist of pure torch and
    math names; whole modules cannot be added. Loading runs nothing from the file.
    """
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
    from gtdsl.runtime.jit import usage_error

    if isinstance(allow_python, str) or not isinstance(allow_python, (tuple, list)):
        raise usage_error(f"allow_python must be a tuple of names, got {allow_python!r}",
                           "e.g. allow_python=(\"operator.neg\",)")
    for name in allow_python:
        why = bad_extra_name(name)
        if why is not None:
            raise usage_error(f"allow_python: {why}", "name each function or value in "
                               "full, e.g. allow_python=(\"operator.neg\",)")
    return Allowlist(tuple(allow_python)) if allow_python else ALLOWED_PYTHON


def _compile_file(file: SourceFile, p: Path | None, backend: str,
                  allow_python: tuple[str, ...]) -> CompiledModule:
    from gtdsl.runtime.module import CompiledModule

    _check_backend(backend)
    allowed = _allowlist(allow_python)
    program = _checked(file, p, allowed)
    return CompiledModule(program, allowed, backend)


def _check_backend(backend: str) -> None:
    from gtdsl.runtime.backends import REQUESTS
    from gtdsl.runtime.jit import usage_error

    if backend not in REQUESTS:
        raise usage_error(f"unknown backend {backend!r}", "use one of: " + ", ".join(REQUESTS))


def jit(fn: Any = None, *, backend: str = "auto", allow_python: tuple[str, ...] = ()) -> Any:
    """Compile a Python function written in gtdsl (annotations as strings).

    ``@gtdsl.jit`` or ``@gtdsl.jit(backend="torch")``. The function is parsed from its own
    source and checked when decorated: static errors raise ``TypeCheckError`` there, with
    locations in the ``.py`` file.
    """
    if fn is None:
        return lambda f: jit(f, backend=backend, allow_python=allow_python)
    _check_backend(backend)
    from gtdsl.runtime.entry import named_as
    from gtdsl.runtime.module import CompiledModule
    from gtdsl.syntax.pyfront import _base_indent, function_source

    source = function_source(fn)
    with _collector_paused():
        module = parse_file_text(source, base_indent=_base_indent(source))
        fns = module.functions()
        if len(fns) != 1 or len(module.body) != 1:
            raise ParseError([Diagnostic("GT0905", f"could not isolate the source of "
                                         f"`{fn.__qualname__}`", path=fn.__code__.co_filename,
                                         help="define the function on its own with `def`")])
        allowed = _allowlist(allow_python)
        result = check_module(source, module, None, allowed)
    _check_errors(result)
    compiled = CompiledModule(result.program, allowed, backend)
    out = compiled.functions[fns[0].name]
    out.__wrapped__ = fn  # type: ignore[attr-defined]
    for generated in (out._entry, out._bind):  # wrong calls name it as Python would
        named_as(generated, getattr(fn, "__qualname__", out.name))
    out.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
    return out


# ---------------------------------------------------------------- checked programs, memoized

_CHECKED: dict[tuple, tuple[Program, tuple[tuple[str, str], ...]]] = {}
_CHECKED_LOCK = allocate_lock()  # threading.Lock, without importing threading
_CHECKED_LIMIT = 64  # programs kept (the oldest is dropped first)


def _checked(file: SourceFile, p: Path | None, allowed: Allowlist) -> Program:
    """Parse and check ``file`` into its IR program; raise on any error.

    A program is reused when the same text at the same place, with the same allowlist, was
    checked before in this process and every module it imported still has the text it had
    (imports are read again to compare, which costs a read, not a parse and a check)."""
    try:  # imports resolve from the file's directory, or the current one for text
        where = str(p.resolve()) if p is not None else os.getcwd()
    except OSError:  # the current directory was removed: nothing to key by, check afresh
        where = None
    import hashlib  # for loading only: `gtdsl check` does not import it

    text = file.text.encode("utf-8", "surrogatepass")  # a lone surrogate is the parser's error
    key = (file.name, where, hashlib.sha256(text).hexdigest(), allowed.names)
    with _CHECKED_LOCK:
        hit = _CHECKED.get(key) if where is not None else None
    if hit is not None and _imports_unchanged(hit[1]):
        return hit[0]
    with _collector_paused():
        tree = parse_file_text(file)
        result = check_module(file, tree, p, allowed)
    _check_errors(result)
    modules = [f.module for f in (result.functions or {}).values()] + [
        s.module for s in (result.structs or {}).values()]
    imported = tuple(sorted({(str(m.path), m.file.text) for m in modules
                             if m.path is not None and m.path != p}))
    if where is not None:
        with _CHECKED_LOCK:
            if len(_CHECKED) >= _CHECKED_LIMIT:
                _CHECKED.pop(next(iter(_CHECKED)))
            _CHECKED[key] = (result.program, imported)
    return result.program


def _imports_unchanged(imported: tuple[tuple[str, str], ...]) -> bool:
    for path, text in imported:
        try:
            now, _ = read_source(Path(path))
        except ParseError:
            return False
        if now.text != text:
            return False
    return True


__all__ = ["Checked", "check", "check_file", "emit", "jit", "load", "load_source"]
