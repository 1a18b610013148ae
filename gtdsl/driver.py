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

import builtins
import gc
import os
from _thread import allocate_lock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gtdsl._records import is_record, record, record_fields
from gtdsl.check import CheckResult, check_module
from gtdsl.check.builder import target_names
from gtdsl.check.env import ALLOWED_PYTHON, JitScope, JitSource
from gtdsl.check.typed import print_typed
from gtdsl.diagnostics import Diagnostic, ParseError, SourceFile
from gtdsl.ir.core import Function, Program
from gtdsl.ir.printer import print_function
from gtdsl.ops import OPS
from gtdsl.ops.pyallow import Allowlist, bad_extra_name
from gtdsl.syntax import ast
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
    allowed = _allowlist(allow_python)
    memo: dict[int, _JitRead] = {}
    src = _jit_source(fn, allowed, memo)
    if src.instance:  # a method whose class declares no fields: typed at the first call
        return JitMethod(fn, backend, allowed)
    if any(read.pending for read in memo.values()):
        # a call of a name the module does not define yet: checked at the first call
        return DeferredJit(fn, backend, allowed)
    return _compile_jit(fn, backend, allowed, src, memo)


def _compile_jit(fn: Any, backend: str, allowed: Allowlist, src: _JitRead,
                 memo: dict[int, _JitRead]) -> Any:
    from gtdsl.runtime.entry import named_as
    from gtdsl.runtime.module import CompiledModule

    for read in memo.values():  # each jitted function's own allow_python holds in its body
        allowed = _merged(allowed, read.extra)
    with _collector_paused():
        result = check_module(src.source.file, src.source.tree, None, allowed,
                              jit=src.source)
    _check_errors(result)
    compiled = CompiledModule(result.program, allowed, backend)
    out = compiled.functions[src.name]
    out.__wrapped__ = fn  # type: ignore[attr-defined]
    out.__gtdsl_jit__ = (fn, allowed.extra)  # type: ignore[attr-defined]
    for generated in (out._entry, out._bind):  # wrong calls name it as Python would
        named_as(generated, getattr(fn, "__qualname__", out.name))
    out.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
    return out


class DeferredJit:
    """A jitted function whose body calls a name its module does not define yet (a
    function defined further down): parsed and checked at its first call, when the module
    is complete, and compiled then. Errors found then raise at that call."""

    def __init__(self, fn: Any, backend: str, allowed: Allowlist) -> None:
        self.__wrapped__ = fn
        self.__gtdsl_jit__ = (fn, allowed.extra)
        self.__name__ = getattr(fn, "__name__", "function")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
        self.__doc__ = getattr(fn, "__doc__", None)
        self._backend, self._allowed = backend, allowed
        self._compiled: Any = None
        self._lock = allocate_lock()

    def compiled(self) -> Any:
        """The compiled function (checking and compiling it on first use)."""
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    fn = self.__wrapped__
                    memo: dict[int, _JitRead] = {}
                    src = _jit_source(fn, self._allowed, memo)
                    self._compiled = _compile_jit(fn, self._backend, self._allowed, src, memo)
        return self._compiled

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.compiled()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # what a compiled function has (``signature``, ``cache_info``, ...): compiled first
        if name.startswith("__") or name in ("_compiled", "_lock", "_backend", "_allowed"):
            raise AttributeError(name)
        return getattr(self.compiled(), name)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:  # a method, as a Python function is (see JitFunction.__get__)
            return self
        from types import MethodType

        return MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<gtdsl.jit {self.__qualname__} (checked at its first call)>"


class JitMethod:
    """A jitted method whose class declares no field types: ``self``'s fields (parameters,
    buffers, submodules, number attributes) are read from the instance at the first call,
    with their dtypes and ranks, and the method is checked and compiled for them; an
    instance with other fields compiles it again. The instance is checked against them at
    every call."""

    def __init__(self, fn: Any, backend: str, allowed: Allowlist) -> None:
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "method")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
        self.__doc__ = getattr(fn, "__doc__", None)
        self._backend, self._allowed = backend, allowed
        self._compiled: dict[tuple, Any] = {}
        self._lock = allocate_lock()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        from types import MethodType

        return MethodType(self, obj)

    def __call__(self, instance: Any, *args: Any, **kwargs: Any) -> Any:
        return self.compiled_for(instance)(instance, *args, **kwargs)

    def compiled_for(self, instance: Any) -> Any:
        """The method compiled for ``instance``'s fields (checking it on first use)."""
        from gtdsl.instances import instance_key

        key = instance_key(instance)
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                found = self._compiled.get(key)
                if found is None:
                    found = self._compiled[key] = self._compile(instance)
        return found

    def _compile(self, instance: Any) -> Any:
        from gtdsl.instances import struct_names

        fn = self.__wrapped__
        memo: dict[int, _JitRead] = {}
        structs, names = struct_names(instance)
        done: dict[tuple[int, str], JitSource] = {}
        src = _method_source(fn, instance, self._allowed, memo, names, done)
        main = src.source
        main.tree = ast.Module(tuple(structs) + main.tree.body, main.tree.docstring,
                               main.tree.span)
        return _compile_jit(fn, self._backend, self._allowed, src, memo)

    @property
    def signature(self) -> str:
        """The signature for the instances it was called with so far, one a line."""
        return "\n".join(str(f.signature) for f in self._compiled.values())

    def __repr__(self) -> str:
        return f"<gtdsl.jit method {self.__qualname__} (typed by its instance at each call)>"


def _method_source(fn: Any, instance: Any, allowed: Allowlist, memo: dict[int, _JitRead],
                   names: dict[tuple, str], done: dict[tuple[int, str], JitSource]
                   ) -> _JitRead:
    """A jitted method read for ``instance``: ``self`` typed as the instance's struct
    (declared by the caller, in ``names``), its calls of submodules made explicit
    (``gtdsl.instances.rewrite_calls``), the jitted forwards they call read the same way for
    their submodules (each (function, structure) once)."""
    from gtdsl.check.methods import loosen_return, typed_self
    from gtdsl.instances import instance_key, rewrite_calls

    sub: dict[int, _JitRead] = {}
    read = _jit_source(fn, allowed, sub)
    for k, r in sub.items():  # their allow_python hold in the compiled program
        memo.setdefault(k, r)
    struct = names[instance_key(instance)]
    base = read.source
    scope = JitScope(dict(base.scope.modules), dict(base.scope.names),
                     dict(base.scope.constants), dict(base.scope.functions),
                     dict(base.scope.refused))
    # made before its callees are read: a method calling itself finds it in `done`
    src = JitSource(hash((id(fn), struct)), f"{base.module_name}_{struct}", base.file,
                    base.tree, scope)
    done[(id(fn), struct)] = src
    shadowed = _bound_names(read.decl) | set(scope.functions) | set(scope.names) | \
        set(scope.constants) | set(scope.refused) | set(scope.modules)
    taken = shadowed | {n for n, _ in _free_names(read.decl)}
    decl, callees, refused = rewrite_calls(read.decl, instance, taken, shadowed)
    scope.refused.update(refused)
    for local, (child_fn, child) in callees.items():
        child_struct = names.get(instance_key(child))
        if child_struct is None:  # (not a field: a module of a list of several structures)
            scope.refused[local] = "a submodule in a list of modules of several structures"
            continue
        found = done.get((id(child_fn), child_struct))
        if found is None:
            found = _method_source(child_fn, child, allowed, memo, names, done).source
        scope.functions[local] = found
    self_type = ast.StructType(struct, (), decl.params[0].span)
    src.tree = ast.Module((typed_self(loosen_return(decl), self_type),), base.tree.docstring,
                          base.tree.span)
    read.source = src
    return read


def _bound_names(decl: Any) -> set[str]:
    """The names ``decl`` binds: its parameters and the targets of its assignments."""
    from gtdsl.check.callgraph import child_fields

    bound = {p.name for p in decl.params}
    stack: list[Any] = list(decl.body)
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls in (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For):
            bound |= {n.id for n in target_names(node.target)}
        for name, _ in child_fields(cls):
            value = getattr(node, name)
            if isinstance(value, tuple):
                stack.extend(v for v in value if is_record(v))
            elif is_record(value):
                stack.append(value)
    return bound


@record(frozen=False, slots=False)
class _JitRead:
    """A jitted function read for checking: its source and scope, its name, and whether its
    body calls a name its module does not define (yet)."""

    source: JitSource
    name: str
    extra: tuple[str, ...] = ()  # its allow_python
    pending: bool = False
    instance: bool = False  # a method whose ``self`` is read from the instance
    decl: Any = None  # its FunctionDef, as parsed


def _jit_source(fn: Any, allowed: Allowlist, memo: dict[int, _JitRead]) -> _JitRead:
    """``fn`` parsed, with the names its body uses looked up in its Python module (closure,
    globals, builtins) and sorted into what the checker can use (``JitScope``); the jitted
    functions it calls read the same way (``memo``: each once, so calls may go both ways)."""
    found = memo.get(id(fn))
    if found is not None:
        return found
    from gtdsl.syntax.pyfront import _base_indent, function_source

    source = function_source(fn)
    with _collector_paused():
        module = parse_file_text(source, base_indent=_base_indent(source))
    fns = module.functions()
    if len(fns) != 1 or len(module.body) != 1:
        raise ParseError([Diagnostic("GT0905", f"could not isolate the source of "
                                     f"`{fn.__qualname__}`", path=fn.__code__.co_filename,
                                     help="define the function on its own with `def`")])
    decl = fns[0]
    modname = "".join(c if c.isalnum() else "_" for c in
                      f"{getattr(fn, '__module__', None) or 'jit'}_{fn.__qualname__}")
    read = memo[id(fn)] = _JitRead(JitSource(id(fn), f"jit_{len(memo)}_{modname}", source,
                                             module), decl.name, allowed.extra, decl=decl)
    from gtdsl.check.methods import is_method  # (Python's ast: not for checking .gt files)

    if is_method(fn.__qualname__, decl):
        structs = _declared_fields(source)
        if structs is None:
            read.instance = True
        elif structs:
            structs = _imported_structs(structs, _scope_values(fn))
            by_name = {st.name: st for st in structs}
            method = _declared_method(fn, read, by_name, structs[0].name, allowed, memo)
            read.source.tree = ast.Module(tuple(structs) + (method,), module.docstring,
                                          module.span)
    scope = read.source.scope
    values = _scope_values(fn)
    for name, called in _free_names(decl):
        if name not in values:
            if called and name not in OPS:
                read.pending = True  # defined further down the module, maybe
            continue
        value = values[name]
        if value is _BUILTIN:
            continue  # the language's own meaning (`range`, `max`, `float("inf")`)
        _sort_value(scope, name, value, allowed, memo)
    return read


_BUILTIN: Any = object()


def _declared_method(fn: Any, read: _JitRead, structs: dict[str, Any], struct: str,
                     allowed: Allowlist, memo: dict[int, _JitRead],
                     active: frozenset[str] | set[str] = frozenset()) -> Any:
    """A method of a class that declares its fields: ``self`` typed as the class's struct
    ``struct``, and its calls of fields whose class's forward is jitted made calls of that
    forward (read the same way, without declaring the structs again: the caller does)."""
    from gtdsl.check.methods import rewrite_struct_calls, self_struct_type, typed_self

    decl = read.decl
    forwards: dict[str, Any] = {}
    values = _scope_values(fn)

    def callable_struct(name: str) -> bool:
        if name in active or name == struct:  # a struct holding itself: not unrolled
            return False
        fwd = _jitted_forward(values.get(name))
        if fwd is not None:
            forwards[name] = fwd
        return fwd is not None

    scope = read.source.scope
    taken = _bound_names(decl) | set(scope.functions) | set(scope.names) | \
        set(scope.constants) | set(scope.refused) | set(scope.modules) | \
        {n for n, _ in _free_names(decl)}
    decl, callees = rewrite_struct_calls(decl, struct, structs, callable_struct, taken)
    for local, name in callees.items():
        child_fn = forwards[name]
        sub: dict[int, _JitRead] = {}
        child = _jit_source(child_fn, allowed, sub)
        for k, r in sub.items():
            memo.setdefault(k, r)
        method = _declared_method(child_fn, child, structs, name, allowed, memo,
                                  active | {struct})
        scope.functions[local] = JitSource(hash((id(child_fn), name)),
                                           f"{child.source.module_name}_called",
                                           child.source.file, ast.Module((method,), None, None),
                                           child.source.scope)
    return typed_self(decl, self_struct_type(structs[struct], decl.params[0].span))


def _jitted_forward(cls: Any) -> Any:
    """The Python function of ``cls.forward`` when it is a gtdsl jit; None otherwise."""
    if not isinstance(cls, type):
        return None
    fwd = cls.__dict__.get("forward") or getattr(cls, "forward", None)
    if isinstance(fwd, (DeferredJit, JitMethod)) or hasattr(fwd, "__gtdsl_jit__"):
        return getattr(fwd, "__wrapped__", None)
    return None


def _declared_fields(source: SourceFile) -> list[Any] | None:
    """The structs a method's class declares with its field annotations (the class's
    first); None when it declares none (``self`` is read from the instance); [] when the
    class is not found in the file (the function is no method)."""
    import ast as pyast
    import linecache

    from gtdsl.check.methods import class_of, declared_structs, field_annotations

    text = "".join(linecache.getlines(source.name))
    try:
        tree = pyast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    cls = class_of(tree, source.line_offset + 1)
    if cls is None:
        return []
    if not field_annotations(cls):
        return None
    return declared_structs(SourceFile(source.name, text), tree, cls)


def _imported_structs(structs: list[Any], values: dict[str, Any]) -> list[Any]:
    """``structs`` with those of the classes their fields name that are defined in other
    files (``from layers import Linear``), read from those files, until none is missing."""
    import ast as pyast
    import inspect
    import linecache

    from gtdsl.check.methods import declared_structs, field_annotations, struct_names_of

    out = list(structs)
    have = {st.name for st in out}
    i = 0
    while i < len(out):
        for f in out[i].fields:
            for name in struct_names_of(f.annotation):
                cls = values.get(name)
                if name in have or not isinstance(cls, type):
                    continue
                try:
                    filename = inspect.getsourcefile(cls)
                    line = inspect.getsourcelines(cls)[1]
                except (OSError, TypeError):
                    continue
                if filename is None:
                    continue
                text = "".join(linecache.getlines(filename))
                try:
                    tree = pyast.parse(text)
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    continue
                found = next((n for n in pyast.walk(tree) if isinstance(n, pyast.ClassDef)
                              and n.name == cls.__name__ and n.lineno >= line), None)
                if found is None or not field_annotations(found):
                    continue
                for st in declared_structs(SourceFile(filename, text), tree, found):
                    if st.name not in have:
                        have.add(st.name)
                        out.append(st)
        i += 1
    return out


def _scope_values(fn: Any) -> dict[str, Any]:
    """The names ``fn``'s body can see, as Python resolves them: its closure's cells, its
    module's globals, then the builtins (marked ``_BUILTIN``)."""
    values: dict[str, Any] = {name: _BUILTIN for name in dir(builtins)}
    values.update(getattr(fn, "__globals__", {}))
    code = getattr(fn, "__code__", None)
    for name, cell in zip(code.co_freevars if code else (), getattr(fn, "__closure__", None)
                          or ()):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # a cell not filled yet (a name assigned later in the outer body)
            values.pop(name, None)
    return values


def _free_names(decl: Any) -> list[tuple[str, bool]]:
    """The names ``decl``'s body reads that it does not bind itself (parameters, assigned
    names, loop variables, size variables, the names in its parameters' annotations), in
    order of first use, each with whether the body calls it. Annotations in the body are
    not walked (their names are sizes and labels, never reads)."""
    from gtdsl.check.callgraph import child_fields

    bound = {p.name for p in decl.params} | {p.name for p in decl.size_params}
    for t in [p.annotation for p in decl.params] + [decl.returns]:
        bound |= _type_names(t)
    found: dict[str, bool] = {}
    stack: list[Any] = list(reversed(decl.body))
    while stack:
        node = stack.pop()
        cls = type(node)
        if cls is ast.Name:
            found.setdefault(node.id, False)
        elif cls is ast.Call and type(node.func) is ast.Name:
            found[node.func.id] = True
        elif cls in (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For):
            bound |= {n.id for n in target_names(node.target)}
        for name, _ in child_fields(cls):  # last field first: popped in source order
            value = getattr(node, name)
            if isinstance(value, tuple):
                stack.extend(v for v in reversed(value) if is_record(v))
            elif is_record(value):
                stack.append(value)
    return [(n, c) for n, c in found.items() if n not in bound and n != decl.name]


def _type_names(t: Any) -> set[str]:
    """Every name an annotation holds (sizes, labels, rows, struct names)."""
    if isinstance(t, tuple):
        return set().union(*map(_type_names, t)) if t else set()
    if not is_record(t):
        return set()
    out: set[str] = set()
    for f in record_fields(type(t)):
        value = getattr(t, f.name)
        if isinstance(value, str):
            if f.name in ("name", "label"):
                out.add(value)
        elif f.name != "span":
            out |= _type_names(value)
    return out


def _sort_value(scope: JitScope, name: str, value: Any, allowed: Allowlist,
                memo: dict[int, _JitRead]) -> None:
    """What ``value``, bound to ``name`` in a jitted function's module, is to the checker."""
    import types

    marked = getattr(value, "__gtdsl_jit__", None)
    if isinstance(marked, tuple) and len(marked) == 2:  # another jitted function
        callee, extra = marked
        scope.functions[name] = _jit_source(callee, _merged(allowed, extra), memo).source
        return
    if isinstance(value, types.ModuleType):
        if allowed.is_namespace(value.__name__):
            scope.modules[name] = value.__name__
        else:
            scope.refused[name] = f"the module `{value.__name__}` (not an allowlisted namespace)"
        return
    if type(value) in (int, float, bool):
        scope.constants[name] = value
        return
    path = _allowlisted_path(value, allowed)
    if path is not None:
        scope.names[name] = path
        return
    scope.refused[name] = _describe(value)


def _merged(allowed: Allowlist, extra: tuple[str, ...]) -> Allowlist:
    missing = tuple(n for n in extra if n not in allowed.extra)
    return Allowlist(allowed.extra + missing) if missing else allowed


_PATHS: dict[tuple[str, ...], dict[int, str]] = {}


def _allowlisted_path(value: Any, allowed: Allowlist) -> str | None:
    """The allowlisted dotted name ``value`` is (``F.gelu`` -> torch.nn.functional.gelu),
    by identity with the objects the allowlist names; None when it is none of them."""
    if isinstance(value, (str, bytes, int, float, complex, tuple, list, dict, set)):
        return None
    guess = f"{getattr(value, '__module__', None)}.{getattr(value, '__qualname__', None)}"
    if allowed.is_name(guess):
        try:
            if allowed.resolve(guess) is value:
                return guess
        except LookupError:
            pass
    by_id = _PATHS.get(allowed.extra)
    if by_id is None:
        by_id = {}
        for path in sorted(allowed.names):
            try:
                obj = allowed.resolve(path)
            except LookupError:
                continue
            if not isinstance(obj, (int, float, bool, str)):
                by_id.setdefault(id(obj), path)
        _PATHS[allowed.extra] = by_id
    return by_id.get(id(value))


def _describe(value: Any) -> str:
    """A value of a jitted function's module, as an error names it."""
    import inspect

    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return (f"the Python function `{getattr(value, '__qualname__', '?')}` (not an "
                "@gtdsl.jit function, nor an allowlisted name)")
    if inspect.isclass(value):
        return f"the class `{value.__qualname__}`"
    return f"a value of type `{type(value).__qualname__}`"


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


__all__ = ["Checked", "JitMethod", "check", "check_file", "emit", "jit", "load",
           "load_source"]
