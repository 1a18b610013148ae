"""Name resolution for a checking session: modules, imports, structs, function signatures.

A ``Session`` loads a ``.gt`` module and, recursively, the ``.gt`` modules it imports (found
next to the importing file). Python names come only from the explicit allowlist of
``gtdsl.ops.pyallow``, each by its full dotted name; they are externs of type ``?``. Struct
declarations are registered session-wide so that a struct reached through another struct's
field resolves even when its name was not imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from gtdsl._records import field, record
from gtdsl.ops.pyallow import DEFAULT, Allowlist
from gtdsl.types.subst import KEEP, size_vars_of, substitute
from gtdsl.diagnostics import Diagnostic, Label, ParseError, SourceFile, Span
from gtdsl.ir.core import Function
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_file_text, read_source
from gtdsl.types import DYN, Size, TDyn, Type, type_of
from gtdsl.types.core import DynReason, ScalarKind, TDim, TShape

#: How deep a chain of ``.gt`` imports may go (module a imports b imports c ...).
MAX_IMPORT_DEPTH = 64

#: The allowlist of a check that adds no names of its own.
ALLOWED_PYTHON = DEFAULT


@record(frozen=False, slots=False)
class StructInfo:
    name: str
    decl: ast.StructDef
    module: ModuleEnv
    params: tuple[str, ...]
    fields: dict[str, tuple[Type, ast.Field]] = field(default_factory=dict)
    # (field, size arguments) -> the field's type with them (``struct_field_type``)
    instances: dict[tuple[str, tuple[Size | None, ...]], Type] = field(
        default_factory=dict, compare=False, repr=False)


@record(frozen=False, slots=False)
class FnInfo:
    name: str
    decl: ast.FunctionDef
    module: ModuleEnv
    size_vars: tuple[str, ...] = ()
    row_vars: tuple[str, ...] = ()
    params: list[tuple[str, Type, ast.Param]] = field(default_factory=list)
    declared_return: Type | None = None
    inferred_return: Type | None = None
    state: str = "pending"  # pending | checking | done
    ir: Function | None = None
    lets: dict = field(default_factory=dict)  # target span -> bound type, for the typed view

    @property
    def returns(self) -> Type:
        if self.declared_return is not None:
            return self.declared_return
        return self.inferred_return if self.inferred_return is not None else TDyn(
            DynReason.INFERRED)

    @property
    def qualname(self) -> str:
        return self.name if self.module.is_main else f"{self.module.name}.{self.name}"


@record(frozen=False, slots=False)
class ModuleEnv:
    name: str
    file: SourceFile
    tree: ast.Module
    path: Path | None
    is_main: bool = False
    functions: dict[str, FnInfo] = field(default_factory=dict)
    structs: dict[str, StructInfo] = field(default_factory=dict)
    externs: dict[str, str] = field(default_factory=dict)  # local name -> python path
    py_modules: dict[str, str] = field(default_factory=dict)  # local name -> module path
    imported_fns: dict[str, FnInfo] = field(default_factory=dict)
    imported_structs: dict[str, StructInfo] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)  # names whose import failed (reported)
    # a jitted function's Python globals (``JitScope``): numbers, and what cannot be used
    constants: dict[str, int | float | bool] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # local name -> what it is
    # names whose calls give `?` (checked for diagnostics only, never compiled): what a
    # method's instance-read `self` calls, read from a file without an instance
    unknown_calls: frozenset[str] = frozenset()

    def function(self, name: str) -> FnInfo | None:
        return self.functions.get(name) or self.imported_fns.get(name)

    def struct(self, name: str) -> StructInfo | None:
        return self.structs.get(name) or self.imported_structs.get(name)


@record(frozen=False, slots=False)
class JitScope:
    """What the names a jitted function's body uses are in its Python module (its globals
    and closure, read when it is decorated): allowlisted namespaces (``F`` is
    ``torch.nn.functional``), allowlisted functions and values, numbers, other jitted
    functions, and what none of those is (an error where the body uses it)."""

    modules: dict[str, str] = field(default_factory=dict)  # local -> namespace path
    names: dict[str, str] = field(default_factory=dict)  # local -> function or value path
    constants: dict[str, int | float | bool] = field(default_factory=dict)
    functions: dict[str, JitSource] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # local -> what it is, for the error
    unknown_calls: frozenset[str] = frozenset()  # see ModuleEnv.unknown_calls


@record(frozen=False, slots=False)
class JitSource:
    """One jitted Python function as the checker reads it: its source parsed, its scope,
    and a module name for its qualified name (unique in one check)."""

    key: int  # identity of the Python function: each is loaded once per check
    module_name: str
    file: SourceFile
    tree: ast.Module
    scope: JitScope = field(default_factory=JitScope)


# top-level names that always mean Python, never a .gt module next to the file
_PYTHON_TOPS = frozenset(("torch", "math", "numpy", "os", "sys", "builtins", "subprocess",
                          "importlib", "pathlib", "shutil", "socket", "io", "pickle"))


def diag(code: str, message: str, span: Span | None, label: str = "",
         secondary: tuple[tuple[Span | None, str], ...] = (), help: str | None = None,
         notes: tuple[str, ...] = ()) -> Diagnostic:
    return Diagnostic(
        code, message, Label(span, label) if span is not None else None,
        tuple(Label(s, m) for s, m in secondary if s is not None), notes, help)


class Session:
    """Every module loaded for one check, the struct registry, and the diagnostics."""

    def __init__(self, allowed_python: Allowlist = ALLOWED_PYTHON, ir: bool = True) -> None:
        self.ir = ir  # whether function bodies are elaborated to IR (not for diagnostics alone)
        self.modules: dict[Path | str, ModuleEnv] = {}
        self.structs: dict[str, StructInfo] = {}
        self.diagnostics: list[Diagnostic] = []
        self.allowed = allowed_python
        self._loading: list[Path] = []
        self.root: Path | None = None  # imports resolve from the main module's directory
        self.cyclic: set[int] = set()  # ids of the functions on a cycle of calls (GT2020)
        # id of a checked function -> its parameter and return types with its size and row
        # variables renamed apart for a call (``CallChecker.user_call``)
        self.renamed: dict[int, Any] = {}  # id(callee) -> its CallPlan

    def error(self, d: Diagnostic) -> None:
        self.diagnostics.append(d)

    # ---------------------------------------------------------------- loading
    def load_main(self, file: SourceFile, tree: ast.Module, path: Path | None) -> ModuleEnv:
        env = ModuleEnv(path.stem if path else "<main>", file, tree, path, is_main=True)
        self.root = path.parent if path is not None else None
        self.modules[path.resolve() if path else "<main>"] = env
        if path is not None:
            self._loading.append(path.resolve())
        self._collect(env)
        if path is not None:
            self._loading.pop()
        return env

    def load_jit(self, src: JitSource, main: bool = True) -> ModuleEnv:
        """A jitted function's module: its one function, with the names of its scope bound
        as a ``.gt`` file's imports would bind them; the jitted functions it calls are
        loaded as modules of their own (each once, so calls may go both ways)."""
        key = f"<jit {src.key}>"
        found = self.modules.get(key)
        if found is not None:
            return found
        env = ModuleEnv(src.module_name, src.file, src.tree, None, is_main=main)
        self.modules[key] = env
        # a jitted method called from another sees the structs its caller declared (the
        # instance's submodules are declared once, with the instance's own struct)
        env.imported_structs.update(self.structs)
        scope = src.scope
        env.py_modules.update(scope.modules)
        env.externs.update(scope.names)
        env.constants.update(scope.constants)
        env.refused.update(scope.refused)
        env.unknown_calls = scope.unknown_calls
        self._collect(env)
        for local, callee in scope.functions.items():
            other = self.load_jit(callee, main=False)
            fns = list(other.functions.values())
            if fns:
                env.imported_fns[local] = fns[0]
        return env

    def _load_gt(self, name: str, importer: ModuleEnv, span: Span | None) -> ModuleEnv | None:
        base = self.root if self.root is not None else Path.cwd()
        path = (base / Path(*name.split("."))).with_suffix(".gt")
        key = path.resolve()
        if key in self._loading:
            chain = " -> ".join(p.stem for p in self._loading[self._loading.index(key):])
            self.error(diag("GT1009", f"import cycle: {chain} -> {name}", span, "imported here",
                            help="move the shared definitions into a module both import"))
            return None
        if key in self.modules:
            return self.modules[key]
        if len(self._loading) >= MAX_IMPORT_DEPTH:
            self.error(diag("GT0015", f"imports nested more than {MAX_IMPORT_DEPTH} deep",
                            span, "imported here", help="import the modules you use directly "
                            "from one module instead of through a long chain"))
            return None
        if not path.exists() or path.is_dir():  # a FIFO or device: read_source says so
            self.error(diag("GT1005", f"no module `{name}`: there is no "
                            f"{'/'.join(name.split('.'))}.gt", span, "imported here",
                            help="Python names may be imported only from the allowlist "
                            "(torch, torch.nn.functional, torch.linalg, torch.special, math: "
                            "see `gtdsl explain GT1004`); .gt modules are looked up from the "
                            "directory of the file being checked (a.b is a/b.gt)"))
            return None
        try:
            file, _ = read_source(path)
            tree = parse_file_text(file)
        except ParseError as err:
            self.diagnostics.extend(err.diagnostics)
            return None
        env = ModuleEnv(name, file, tree, path)
        self.modules[key] = env
        self._loading.append(key)
        self._collect(env)
        self._loading.pop()
        return env

    def _collect(self, env: ModuleEnv) -> None:
        seen: dict[str, Span | None] = {}

        def claim(name: str, span: Span | None) -> bool:
            if name in seen:
                self.error(diag("GT1003", f"`{name}` is defined more than once", span,
                                "defined again here", ((seen[name], "first defined here"),),
                                help="rename one of the definitions"))
                return False
            seen[name] = span
            return True

        for decl in env.tree.body:
            if isinstance(decl, ast.ImportFrom):
                self._import_from(env, decl, claim)
            elif isinstance(decl, ast.Import):
                for alias in decl.names:
                    if self.allowed.is_namespace(alias.name):
                        local = alias.asname or alias.name.split(".")[0]
                        if claim(local, alias.span):
                            env.py_modules[local] = alias.name if alias.asname else \
                                alias.name.split(".")[0]
                    else:
                        self._bad_python(alias.name, alias.span)
            elif isinstance(decl, ast.StructDef):
                if claim(decl.name, decl.span):
                    info = StructInfo(decl.name, decl, env, tuple(p.name for p in
                                                                   decl.size_params))
                    env.structs[decl.name] = info
                    first = self.structs.setdefault(decl.name, info)
                    if first is not info:  # struct types compare by name: one per program
                        self.error(diag(
                            "GT1003", f"struct `{decl.name}` is also declared in module "
                            f"`{first.module.name}`", decl.span, "declared again here",
                            ((first.decl.span, "first declared here"),),
                            help="rename one of them: struct names must be unique across the "
                            "modules one program loads"))
            elif isinstance(decl, ast.FunctionDef):
                if claim(decl.name, decl.span):
                    env.functions[decl.name] = FnInfo(decl.name, decl, env)
        for info in env.structs.values():
            self._struct_fields(info)
        for fn in env.functions.values():
            self._signature(fn)

    def _bad_python(self, name: str, span: Span | None, what: str = "module") -> None:
        self.error(diag("GT1004", f"importing `{name}` is not allowed", span,
                        f"not an allowlisted {what}",
                        help="a .gt file may use only allowlisted Python names: pure tensor "
                        "and math functions and values of torch, torch.nn.functional, "
                        "torch.linalg, torch.special and math (see `gtdsl explain GT1004`)",
                        notes=("a .gt file is data: it reaches Python only through "
                               "allowlisted functions, never files, processes or the network",)))

    def _import_from(self, env: ModuleEnv, decl: ast.ImportFrom,
                     claim: Callable[[str, Span | None], bool]) -> None:
        if self.allowed.is_namespace(decl.module):
            for alias in decl.names:
                local = alias.asname or alias.name
                path = f"{decl.module}.{alias.name}"
                if self.allowed.is_name(path):
                    if claim(local, alias.span):
                        env.externs[local] = path
                elif self.allowed.is_namespace(path):
                    if claim(local, alias.span):
                        env.py_modules[local] = path
                else:
                    self._bad_python(path, alias.span, "Python name")
                    env.failed.add(local)
            return
        top = decl.module.split(".")[0]
        if top in _PYTHON_TOPS or any(n.split(".")[0] == top for n in self.allowed.namespaces):
            self._bad_python(decl.module, decl.span)
            env.failed |= {alias.asname or alias.name for alias in decl.names}
            return
        other = self._load_gt(decl.module, env, decl.span)
        if other is None:
            env.failed |= {alias.asname or alias.name for alias in decl.names}
            return
        for alias in decl.names:
            local = alias.asname or alias.name
            fn, st = other.functions.get(alias.name), other.structs.get(alias.name)
            if fn is None and st is None:
                self.error(diag("GT1006", f"module `{decl.module}` has no `{alias.name}`",
                                alias.span, "not defined there", help="defined there: " + (
                                    ", ".join(sorted([*other.functions, *other.structs]))
                                    or "nothing")))
                continue
            if claim(local, alias.span):
                if fn is not None:
                    env.imported_fns[local] = fn
                elif st is not None:  # one of the two, as checked above
                    env.imported_structs[local] = st

    # ---------------------------------------------------------------- types
    def resolve_type(self, env: ModuleEnv, t: ast.TypeExpr | None, bound: set[str] | None,
                     what: str, bound_rows: set[str] | frozenset[str] = frozenset()) -> Type:
        """An annotation's type, with struct names and their arity checked; with ``bound``,
        every size variable must be in ``bound`` and every row variable (``*b``) in
        ``bound_rows``: a size `b` does not bind a row `*b`, nor a row a size."""
        if t is None:
            return TDyn(DynReason.UNANNOTATED)
        out = type_of(t)
        self._check_structs(env, t, out)
        if bound is not None:
            names: list[str] = []
            rows: list[str] = []
            size_vars_of(out, names, rows)
            for n, ok, shown in [(n, n in bound, n) for n in names] + [
                    (r, r in bound_rows, f"*{r}") for r in rows]:
                if ok:
                    continue
                if shown == n and n in bound_rows:
                    note: tuple[str, ...] = (f"`*{n}` is bound, but as a row variable: it "
                                             f"stands for several dims, not the size `{n}`",)
                elif shown != n and n in bound:
                    note = (f"`{n}` is bound, but as a size variable: a row variable `*{n}` "
                            "stands for several dims and needs its own binding",)
                else:
                    note = ()
                self.error(diag(
                    "GT1008", f"{'row' if shown != n else 'size'} variable `{shown}` is "
                    f"not bound in {what}", t.span, "used here",
                    help=(f"declare it as a size parameter ([{n}, ...]) or bind it through "
                          "a parameter's type" if shown == n else
                          f"bind it through a parameter's type, e.g. `x: f32[*{n}, d]`"),
                    notes=note))
                return DYN
        return out

    def _check_structs(self, env: ModuleEnv, t: ast.TypeExpr, out: Type) -> None:
        if isinstance(t, ast.StructType):
            info = env.struct(t.name) or (self.structs.get(t.name) if not env.is_main else None)
            if info is None:
                self.error(diag("GT1002", f"unknown type `{t.name}`", t.span, "not a dtype, "
                                "scalar or struct", help="declare `struct " + t.name +
                                "` or import it: from MODULE import " + t.name))
            elif len(t.args) != len(info.params):
                self.error(diag("GT2012", f"`{t.name}` takes {len(info.params)} size "
                                f"arguments, got {len(t.args)}", t.span, "here",
                                ((info.decl.span, "declared here"),),
                                help=f"write {t.name}[{', '.join(info.params)}]"))
        elif isinstance(t, ast.ListType):
            self._check_structs(env, t.elem, out)
        elif isinstance(t, ast.TupleType):
            for e in t.elems:
                self._check_structs(env, e, out)

    def _struct_fields(self, info: StructInfo) -> None:
        bound = set(info.params)
        for f in info.decl.fields:
            t = self.resolve_type(info.module, f.annotation, bound, f"struct `{info.name}`")
            if f.name in info.fields:
                self.error(diag("GT1003", f"field `{f.name}` of struct `{info.name}` is "
                                "declared more than once", f.span, "declared again here",
                                ((info.fields[f.name][1].span, "first declared here"),),
                                help="rename or remove one of the fields"))
                continue
            info.fields[f.name] = (t, f)

    def _signature(self, fn: FnInfo) -> None:
        decl = fn.decl
        names = [p.name for p in decl.size_params]
        rows: list[str] = []
        params = []
        for p in decl.params:
            t = self.resolve_type(fn.module, p.annotation, None, "")
            size_vars_of(t, names, rows)
            params.append((p.name, t, p))
        fn.params = params
        fn.size_vars, fn.row_vars = tuple(names), tuple(rows)
        if decl.returns is not None:
            # sizes come from size parameters, parameters' dims and `n: int` parameters;
            # row variables only from parameters' shapes
            fn.declared_return = self.resolve_type(
                fn.module, decl.returns, set(names) | {
                    p.name for p in decl.params if isinstance(p.annotation, ast.ScalarType)
                    and p.annotation.kind is ast.ScalarKind.INT and p.annotation.size is None},
                f"the return type of `{fn.name}`", set(rows))


def struct_field_type(info: StructInfo, name: str, args: tuple[Size | None, ...]) -> Type | None:
    """The type of field ``name`` of ``info[args]``: the struct's parameters substituted."""
    key = (name, args)
    found = info.instances.get(key)
    if found is None:
        if name not in info.fields:
            return None
        t, _ = info.fields[name]
        env = dict(zip(info.params, args))
        found = info.instances[key] = substitute(t, lambda v: env.get(v, KEEP), rows={})
    return found

__all__ = ["ALLOWED_PYTHON", "FnInfo", "JitScope", "JitSource", "ModuleEnv", "Session",
           "StructInfo", "TDim", "TShape", "ScalarKind", "diag", "struct_field_type"]
