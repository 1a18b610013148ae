"""A compiled module: an IR program's functions as callables, its structs as classes.

``CompiledModule`` takes the checked IR program (``gtdsl.ir.Program``) and nothing else of the
front end. It makes one ``JitFunction`` per function and resolves the constants a generated
body names (``gtdsl.lower.records``): a callee to its compiled function, a torch function or
an allowlisted Python name to the object, a kernel to its launcher; data records (cast sites,
op checks, assertions) go to the runtime's helpers as they are.
"""

from __future__ import annotations

from dataclasses import make_dataclass
from typing import Any

from gtdsl._config import load_config
from gtdsl.ir import core as ir
from gtdsl.lower.records import (
    AssertSite, Callee, CastSite, Launch, OpCheck, PythonName, TorchFunction,
)
from gtdsl.lower.torch.codegen import PREFIX
from gtdsl.ops.calls import resolve
from gtdsl.ops.operators import checked_mul, checked_pow, checked_range
from gtdsl.ops.pyallow import Allowlist
from gtdsl.runtime import interp
from gtdsl.runtime.casts import Bindings
from gtdsl.runtime.errors import assert_error
from gtdsl.runtime.jit import JitFunction
from gtdsl.runtime.values import describe_value, get_field


class CompiledModule:
    """A checked ``.gt`` module (or one ``@jit`` function): its functions and structs."""

    def __init__(self, program: ir.Program, allowed: Allowlist, backend: str = "auto",
                 ) -> None:
        self.config = load_config()
        self.program = interp.Program(program, allowed)
        self.backend = backend
        self.functions: dict[str, JitFunction] = {}
        for q in self.program.ir:
            self.functions[q] = JitFunction(self, q, backend)
        # names imported from other .gt modules are attributes too, as in Python
        self._imported = {local: q for local, q in program.exports
                          if q in self.functions and local not in self.functions}
        self.structs = {s.name: _struct_class(s) for s in program.structs}

    def namespace(self, constants: list[Any]) -> dict[str, Any]:
        prog = self.program
        return {
            **{f"{PREFIX}k{i}": self._constant(c) for i, c in enumerate(constants)},
            f"{PREFIX}cast": lambda k, v, b: _cast(prog, k, v, b),
            f"{PREFIX}check_op": lambda k, b, *ins: _check_op(k, b, ins),
            f"{PREFIX}field": get_field,
            f"{PREFIX}pow": checked_pow,
            f"{PREFIX}mul": checked_mul,
            f"{PREFIX}range": checked_range,
            f"{PREFIX}assert_failed": _assert_failed,
        }

    def _constant(self, c: Any) -> Any:
        """A record resolved to what the body calls; data records and values as they are."""
        if isinstance(c, Launch):
            from gtdsl.lower.triton.autograd import differentiable
            from gtdsl.lower.triton.kernels import launcher_for

            return differentiable(launcher_for(c.kernel))
        if isinstance(c, Callee):
            return self.functions[c.qualname]
        if isinstance(c, TorchFunction):
            return resolve(c.path)
        if isinstance(c, PythonName):
            return interp.resolve_extern(c.path, self.program.allowed)
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


def _cast(prog: interp.Program, k: CastSite, value: Any, b: tuple) -> Bindings:
    bindings = Bindings(dict(b[0]), dict(b[1]))
    interp.cast(prog, bindings, value, k.target, k.blame)
    return bindings


def _check_op(k: OpCheck, b: tuple, ins: tuple) -> None:
    interp.check_op(k.op, k.names, k.blame, list(ins), Bindings(dict(b[0]), dict(b[1])))


def _assert_failed(k: AssertSite) -> None:
    raise assert_error(k.function, k.span, k.message)


def _struct_class(info: ir.StructDecl) -> type:
    """A plain class for a struct's values: keyword construction, one attribute per field."""
    names = [f.name for f in info.fields]

    def __repr__(self: object) -> str:
        return f"{info.name}(" + ", ".join(f"{f}={_short(getattr(self, f))}" for f in names) + ")"

    return make_dataclass(info.name, [(f, Any) for f in names], kw_only=True, repr=False,
                          namespace={"__repr__": __repr__})


def _short(v: Any) -> str:
    import torch

    if isinstance(v, torch.Tensor):
        return describe_value(v)
    if isinstance(v, list):
        return f"[{len(v)} items]"
    return repr(v)


__all__ = ["CompiledModule"]
