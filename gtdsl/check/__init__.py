"""The checker: name resolution, bidirectional checking and inference, cast insertion.

``check_module`` takes a parsed module and returns a ``CheckResult``: every diagnostic, each
function's checked signature (inferred parts filled in), and the typed IR ``Program`` with
its casts: every function with its parameter names, literal defaults and size variables,
every struct declaration, the names the module exports. Execution reads only the program.
Functions are checked callee first, so a caller sees the callee's inferred return type; a call
on a cycle of calls is an error (GT2020).

The modules: ``env`` resolves names (modules, imports, structs, signatures); ``callgraph``
orders the functions; ``function`` checks one body, through the layers ``builder`` (IR and
diagnostics), ``casts``, ``calls``, ``expressions`` and ``statements``; ``messages`` holds
shared wording; ``typed`` prints the typed view of a function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gtdsl._records import replace
from gtdsl.check.callgraph import call_order
from gtdsl.check.env import ALLOWED_PYTHON, FnInfo, JitSource, ModuleEnv, Session
from gtdsl.check.function import NOT_LITERAL, FunctionChecker, default_value
from gtdsl.ops.pyallow import Allowlist
from gtdsl.diagnostics import Diagnostic, SourceFile
from gtdsl.ir.core import Field, Function, Program, StructDecl
from gtdsl.syntax import ast
from gtdsl.syntax.unparse import unparse_expr
from gtdsl.types import TDyn


class CheckResult:
    """What checking a module found: its diagnostics and names, each function's checked
    signature and the typed IR ``program``. The signatures and the program are made on first
    use (``gtdsl check`` needs neither), from the checked functions, which do not change. A
    module checked with ``ir=False`` has no program (its functions' ``ir`` is None)."""

    def __init__(self, module: ModuleEnv, diagnostics: tuple[Diagnostic, ...],
                 functions: dict, structs: dict, checked: list[FnInfo],
                 ir: bool = True) -> None:
        self.module = module
        self.diagnostics = diagnostics
        self.functions = functions  # qualified name -> FnInfo, imported modules' included
        self.structs = structs  # struct name -> StructInfo, every module's
        self._checked = checked  # callees first
        self._signatures: dict[int, str] | None = None
        self._program: Program | None = None
        self.has_ir = ir

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def _signature_of(self, fn: FnInfo) -> str:
        if self._signatures is None:
            self._signatures = {id(f): signature(f) for f in self._checked}
        found = self._signatures.get(id(fn))
        return found if found is not None else signature(fn)

    @property
    def signatures(self) -> tuple[tuple[str, str], ...]:
        """(function name, checked signature) for each function of the module."""
        return tuple((f.name, self._signature_of(f)) for f in self.module.functions.values())

    def signature(self, name: str) -> str:
        return dict(self.signatures)[name]

    @property
    def program(self) -> Program:
        if not self.has_ir:
            raise ValueError("this module was checked for its diagnostics alone "
                             "(check_module(..., ir=False)): it has no IR program")
        if self._program is None:
            env = self.module
            exports = tuple((name, f.qualname) for name, f in env.functions.items()) + tuple(
                (local, f.qualname) for local, f in env.imported_fns.items())
            self._program = Program(
                tuple(_function(f, self._signature_of(f)) for f in self._checked
                      if f.ir is not None),
                tuple(_struct(info) for info in self.structs.values()), exports)
        return self._program


def check_module(file: SourceFile, tree: ast.Module, path: Path | None = None,
                 allowed_python: Allowlist = ALLOWED_PYTHON, ir: bool = True,
                 jit: JitSource | None = None) -> CheckResult:
    """Check a parsed module. ``ir=False`` finds the same diagnostics and signatures without
    keeping the functions' IR (what ``gtdsl check`` needs). ``jit``: the module is one
    jitted Python function (``file`` and ``tree`` are its), whose names resolve through
    its Python module's scope."""
    session = Session(allowed_python, ir)
    env = session.load_jit(jit) if jit is not None else session.load_main(file, tree, path)
    order: list = []

    def ensure(fn: FnInfo) -> None:
        if fn.state != "pending":
            return
        fn.state = "checking"
        checker = FunctionChecker(session, fn, ensure)
        body = checker.run()
        fn.ir = body if ir else None
        fn.lets = checker.lets
        fn.state = "done"
        order.append(fn)

    for fn in call_order(session):  # callees first; cycles and deep chains reported
        ensure(fn)
    functions = {f.qualname: f for m in session.modules.values() for f in m.functions.values()}
    structs = dict(session.structs)
    for m in session.modules.values():
        structs.update({k: v for k, v in m.structs.items() if k not in structs})
    return CheckResult(env, tuple(session.diagnostics), functions, structs, order, ir)


def _function(fn: FnInfo, sig: str) -> Function:
    """The IR function with everything a call needs from the declaration (``sig``: its
    ``signature``)."""
    assert fn.ir is not None
    defaults = []
    for name, _, p in fn.params:
        if p.default is not None:
            value = default_value(p.default)
            if value is not NOT_LITERAL:  # otherwise GT2028 was reported
                defaults.append((name, value))
    return replace(fn.ir, names=tuple(name for name, _, _ in fn.params),
                   defaults=tuple(defaults),
                   param_spans=tuple(p.span for _, _, p in fn.params),
                   size_vars=tuple(fn.size_vars), doc=fn.decl.docstring,
                   signature=sig)


def _struct(info: Any) -> StructDecl:
    return StructDecl(info.name, tuple(info.params),
                      tuple(Field(name, t, decl.span) for name, (t, decl) in info.fields.items()),
                      info.decl.span)


def signature(fn: FnInfo) -> str:
    """``def name[S..](p: T, ...) -> R`` in surface syntax, the return type filled in."""
    decl = fn.decl
    parts = []
    for (name, t, p) in fn.params:
        text = name if isinstance(t, TDyn) and p.annotation is None else f"{name}: {t}"
        if p.default is not None:
            text += f" = {unparse_expr(p.default)}"
        parts.append(text)
    sp = f"[{', '.join(s.name for s in decl.size_params)}]" if decl.size_params else ""
    return f"def {fn.name}{sp}({', '.join(parts)}) -> {fn.returns}"


__all__ = ["CheckResult", "check_module", "signature"]
