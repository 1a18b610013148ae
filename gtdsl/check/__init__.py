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

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gtdsl.check.callgraph import call_order
from gtdsl.check.env import ALLOWED_PYTHON, FnInfo, ModuleEnv, Session
from gtdsl.check.function import NOT_LITERAL, FunctionChecker, default_value
from gtdsl.ops.pyallow import Allowlist
from gtdsl.diagnostics import Diagnostic, SourceFile
from gtdsl.ir.core import Field, Function, Program, StructDecl
from gtdsl.syntax import ast
from gtdsl.syntax.unparse import unparse_expr
from gtdsl.types import TDyn


@dataclass(frozen=True)
class CheckResult:
    module: ModuleEnv
    program: Program
    signatures: tuple[tuple[str, str], ...]  # (function name, checked signature)
    diagnostics: tuple[Diagnostic, ...]
    functions: dict | None = None  # qualified name -> FnInfo, imported modules' included
    structs: dict | None = None  # struct name -> StructInfo, every module's

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def signature(self, name: str) -> str:
        return dict(self.signatures)[name]


def check_module(file: SourceFile, tree: ast.Module, path: Path | None = None,
                 allowed_python: Allowlist = ALLOWED_PYTHON) -> CheckResult:
    session = Session(allowed_python)
    env = session.load_main(file, tree, path)
    order: list = []

    def ensure(fn: FnInfo) -> None:
        if fn.state != "pending":
            return
        fn.state = "checking"
        checker = FunctionChecker(session, fn, ensure)
        fn.ir = checker.run()
        fn.lets = checker.lets
        fn.state = "done"
        order.append(fn)

    for fn in call_order(session):  # callees first; cycles and deep chains reported
        ensure(fn)
    signatures = {id(f): signature(f) for f in order}  # each function's, made once
    sigs = tuple((f.name, signatures.get(id(f)) or signature(f)) for f in env.functions.values())
    functions = {f.qualname: f for m in session.modules.values() for f in m.functions.values()}
    structs = dict(session.structs)
    for m in session.modules.values():
        structs.update({k: v for k, v in m.structs.items() if k not in structs})
    exports = tuple((name, f.qualname) for name, f in env.functions.items()) + tuple(
        (local, f.qualname) for local, f in env.imported_fns.items())
    program = Program(tuple(_function(f, signatures[id(f)]) for f in order if f.ir is not None),
                      tuple(_struct(info) for info in structs.values()), exports)
    return CheckResult(env, program, sigs, tuple(session.diagnostics), functions, structs)


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
