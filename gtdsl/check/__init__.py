"""The checker: name resolution, bidirectional checking and inference, cast insertion.

``check_module`` takes a parsed module and returns a ``CheckResult``: every diagnostic, each
function's checked signature (inferred parts filled in), and the typed IR ``Program`` with
its casts. Functions are checked callee first, so a caller sees the callee's inferred return
type; a call on a cycle of calls is an error (GT2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gtdsl.check.checker import FunctionChecker, call_order
from gtdsl.check.env import ALLOWED_PYTHON, FnInfo, ModuleEnv, Session
from gtdsl.ops.pyallow import Allowlist
from gtdsl.diagnostics import Diagnostic, SourceFile
from gtdsl.ir.core import Program
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
    program = Program(tuple(f.ir for f in order if f.ir is not None))
    sigs = tuple((f.name, signature(f)) for f in env.functions.values())
    functions = {f.qualname: f for m in session.modules.values() for f in m.functions.values()}
    structs = dict(session.structs)
    for m in session.modules.values():
        structs.update({k: v for k, v in m.structs.items() if k not in structs})
    return CheckResult(env, program, sigs, tuple(session.diagnostics), functions, structs)


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
