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
    AssertSite, Callee, CastSite, DirectCallee, FastCast, Launch, OpCheck, PythonName,
    TorchFunction, TrustedCallee,
)
from gtdsl.lower.torch.codegen import PREFIX, CalleeInfo
from gtdsl.ops.calls import resolve
from gtdsl.ops.operators import checked_mul, checked_pow, checked_range
from gtdsl.ops.pyallow import Allowlist
from gtdsl.runtime import interp
from gtdsl.runtime.casts import Bindings
from gtdsl.runtime.errors import assert_error
from gtdsl.runtime.entry import generate_cast
from gtdsl.runtime.jit import JitFunction
from gtdsl.runtime.values import describe_value, get_field


class CompiledModule:
    """A checked ``.gt`` module (or one ``@jit`` function): its functions and structs."""

    def __init__(self, program: ir.Program, allowed: Allowlist, backend: str = "auto",
                 ) -> None:
        self.config = load_config()
        self.program = interp.Program(program, allowed)
        self.backend = backend
        self.structs = {s.name: _struct_class(s) for s in program.structs}
        # classes whose values the entry checks read fields of by attribute, without asking
        # whether they are mappings
        self.plain_classes = frozenset(self.structs.values())
        self.functions: dict[str, JitFunction] = {}
        for q in self.program.ir:
            self.functions[q] = JitFunction(self, q, backend)
        # names imported from other .gt modules are attributes too, as in Python
        self._imported = {local: q for local, q in program.exports
                          if q in self.functions and local not in self.functions}
        # plain instance attributes where no method has the name: `m.f` is then a dict
        # lookup, not a failed lookup and a `__getattr__` call
        names = {**{q: f for q, f in self.functions.items()},
                 **{local: self.functions[q] for local, q in self._imported.items()}}
        for name, obj in [*names.items(), *self.structs.items()]:
            if name.isidentifier() and not hasattr(type(self), name) and \
                    name not in self.__dict__:
                self.__dict__[name] = obj

    def namespace(self, constants: list[Any]) -> dict[str, Any]:
        prog = self.program
        return {
            **{f"{PREFIX}k{i}": self._constant(c) for i, c in enumerate(constants)},
            f"{PREFIX}cast": lambda k, v, b: _cast(prog, k, v, b),
            f"{PREFIX}field": get_field,
            f"{PREFIX}plain": self.plain_classes,
            f"{PREFIX}pow": checked_pow,
            f"{PREFIX}mul": checked_mul,
            f"{PREFIX}range": checked_range,
            f"{PREFIX}assert_failed": _assert_failed,
        }

    def callee_info(self, qualname: str) -> CalleeInfo | None:
        """A function's parameters and sizes, for callers that call its trusted entry."""
        f = self.functions.get(qualname)
        if f is None or f.backend != "auto" and f.backend not in ("torch", "triton"):
            return None
        return f.callee_info

    def _constant(self, c: Any) -> Any:
        """A record resolved to what the body calls; data records and values as they are."""
        if isinstance(c, Launch):
            from gtdsl.lower.triton.autograd import differentiable
            from gtdsl.lower.triton.kernels import launcher_for

            return differentiable(launcher_for(c.kernel))
        if isinstance(c, Callee):
            return self.functions[c.qualname]
        if isinstance(c, OpCheck):
            return _op_checker(c)
        if isinstance(c, FastCast):
            return self._fast_cast(c)
        if isinstance(c, TrustedCallee):
            return self.functions[c.qualname].trusted
        if isinstance(c, DirectCallee):
            return self.functions[c.qualname].body_for(c.key)
        if isinstance(c, TorchFunction):
            return resolve(c.path)
        if isinstance(c, PythonName):
            return interp.resolve_extern(c.path, self.program.allowed)
        return c

    def _fast_cast(self, c: FastCast) -> Any:
        """The generated checks of a cast inside a body (``entry.generate_cast``)."""
        prog, site = self.program, c.site

        def reference(value: Any, sizes: dict[str, int], rows: dict[str, Any]) -> tuple:
            b = _cast(prog, site, value, (sizes, rows))
            return tuple(b.sizes[v] for v in c.new) + tuple(b.rows[r] for r in c.new_rows)

        src, consts = generate_cast(site.target, c.sizes, c.rows, c.new, c.new_rows,
                                    prog.struct)
        ns: dict[str, Any] = {**consts, f"{PREFIX}ref": reference,
                              f"{PREFIX}plain": self.plain_classes}
        exec(compile(src, "<gtdsl cast>", "exec"), ns)  # noqa: S102 - generated from types
        return ns[f"{PREFIX}cast"]

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


def _op_checker(k: OpCheck) -> Any:
    """A CHECK_OP's run-time check: the op's relation on the arguments' metadata, run once
    per metadata (the relation is a function of the values' types: a tensor's dtype, shape
    and device, a number's or a string's value), so metadata it accepted once is accepted
    again without running it. Failures are never remembered: each one raises from the
    relation itself."""
    accepted: set[tuple] = set()

    def check(sizes: tuple, rows: tuple, *ins: Any) -> None:
        key = _metadata(ins)
        if key is not None:
            try:
                if key in accepted:
                    return
            except TypeError:  # symbolic sizes: torch.export traces
                key = None
                ins = _example_values(ins)
        else:
            ins = _example_values(ins)
        interp.check_op(k.op, k.names, k.blame, list(ins),
                        Bindings(dict(zip(k.sizes, sizes)), dict(zip(k.rows, rows))))
        if key is not None:
            if len(accepted) >= _ACCEPTED_PER_SITE:
                accepted.clear()
            accepted.add(key)

    return check


def _example_values(values: Any) -> Any:
    """``values`` with each symbolic size (torch.export traces the function) replaced by the
    example's size, without a guard: an op's relation then checks the example's metadata,
    and the traced op checks its own arguments at every size the program runs at (a guard
    per size the relation read would specialize the program's dynamic dims)."""
    import torch

    def size(n: Any) -> Any:
        if isinstance(n, torch.SymInt):
            hint = n.node.hint
            return int(hint) if hint is not None else n
        return n

    def value(v: Any) -> Any:
        if isinstance(v, torch.SymInt):
            return size(v)
        if isinstance(v, torch.Tensor) and any(isinstance(n, torch.SymInt) for n in v.shape):
            return torch.zeros((), dtype=v.dtype, device=v.device).expand(
                [size(n) for n in v.shape])
        if v.__class__ in (tuple, list):
            return v.__class__(value(x) for x in v)
        return v

    return [value(v) for v in values]


_ACCEPTED_PER_SITE = 4096
_PLAIN_VALUES = frozenset((bool, int, float, str, type(None)))
_TORCH: list[Any] = []  # torch's Tensor, dtype and device classes, once imported


def _metadata(values: Any) -> tuple | None:
    """What an op's relation sees of ``values``, as a hashable key; None for a value whose
    type the key does not cover (the relation then runs every time)."""
    if not _TORCH:
        import torch

        _TORCH.extend((torch.Tensor, (torch.dtype, torch.device)))
    tensor, other = _TORCH
    out: list[Any] = []
    for v in values:
        c = v.__class__
        if c in _PLAIN_VALUES:
            out.append((c, v))
        elif c is tensor or isinstance(v, tensor):
            if v.is_nested:  # no shape: the relation says what it makes of it
                return None
            out.append((v.dtype, v.shape, v.device))
        elif c is tuple or c is list:
            inner = _metadata(v)
            if inner is None:
                return None
            out.append((c, inner))
        elif c is slice:
            inner = _metadata((v.start, v.stop, v.step))
            if inner is None:
                return None
            out.append((c, inner))
        elif isinstance(v, other):
            out.append((c, v))
        else:
            return None
    return tuple(out)


def _assert_failed(k: AssertSite) -> None:
    raise assert_error(k.function, k.span, k.message)


def _struct_class(info: ir.StructDecl) -> type:
    """A plain class for a struct's values: keyword construction, one attribute per field."""
    names = [f.name for f in info.fields]

    def __repr__(self: object) -> str:
        return f"{info.name}(" + ", ".join(f"{f}={_short(getattr(self, f))}" for f in names) + ")"

    return make_dataclass(info.name, [(f, Any) for f in names], kw_only=True, repr=False,
                          namespace={"__repr__": __repr__, "__gtdsl_struct__": True})


def _short(v: Any) -> str:
    import torch

    if isinstance(v, torch.Tensor):
        return describe_value(v)
    if isinstance(v, list):
        return f"[{len(v)} items]"
    return repr(v)


__all__ = ["CompiledModule"]
