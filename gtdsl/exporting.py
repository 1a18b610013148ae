"""Shape-polymorphic export: a gtdsl function as a ``torch.export.ExportedProgram`` whose dims
are dynamic exactly where the function's type has size variables.

``export(fn, *example_args)`` reads the declared type of each tensor parameter: a dim whose
size is a variable (``b``, ``s``) becomes a ``torch.export.Dim`` of that name, shared by every
dim the type gives the same variable; a dim that is a linear form of one variable
(``2*d``, ``n + 1``) becomes the derived dim torch states the same relation with; a fixed
size stays static. The function runs under ``torch.export`` through its own entry, so the
checks its type implies (sizes equal across arguments, dtypes) are traced into the program:
at other sizes the exported program gives gtdsl's results, and arguments its type refuses are
refused by the program's guards.

A relation torch cannot state (a dim whose size is a product of two variables, ``H*K``) or a
specialization torch finds while tracing (the function needs a size to be constant) is a
GT0912 diagnostic naming the parameter and the dim, never a torch traceback.
"""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError
from gtdsl.types import Size, TTensor


class ExportError(GtdslError):
    """A function that cannot be exported with the dims its type declares."""


def _error(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> ExportError:
    return ExportError([Diagnostic("GT0912", message, None, (), notes, help,
                                   path="<gtdsl.export>")])


def _runtime_function(fn: Any) -> Any:
    """The compiled function behind ``fn``: a function of a loaded module, or an
    ``@gtdsl.jit`` function (compiled first)."""
    compiled = getattr(fn, "compiled", None)
    if callable(compiled) and hasattr(fn, "__gtdsl_jit__"):
        fn = compiled()
    if not hasattr(fn, "_params") or not hasattr(fn, "qualname"):
        raise _error(f"`gtdsl.export` takes a gtdsl function, not {type(fn).__name__}",
                     help="pass a function of gtdsl.load(...) or an @gtdsl.jit function")
    return fn


def _dim(size: Size | None, dims: dict[str, Any], where: str) -> Any:
    """The export dim of a dim of size ``size``: None (static), a named ``Dim``, or a
    derived one (``2*d + 1``); an unknown size (``?``) is left to torch (``Dim.AUTO``)."""
    from torch.export import Dim

    from gtdsl.runtime.entry import _linear

    if size is None:
        return getattr(Dim, "AUTO", None)
    if size.constant() is not None:
        return None
    variables = sorted(size.variables())
    if len(variables) != 1:
        raise _error(f"{where} has size {size}: torch.export states no relation between "
                     "two size variables", help="give this dim a size variable of its own "
                     "(and relate it in the body), or export at a fixed size",
                     notes=(f"variables: {', '.join(variables)}",))
    v = variables[0]
    form = _linear(size, v)
    a = form[0].constant() if form is not None else None
    b = form[1].constant() if form is not None else None
    if a is None or b is None or a < 1:
        raise _error(f"{where} has size {size}: torch.export derives dims only as "
                     f"a*{v} + b", help="give this dim a size variable of its own")
    base = dims.setdefault(v, Dim(v))
    return base if (a, b) == (1, 0) else base * a + b


def dynamic_shapes(fn: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``dynamic_shapes`` of ``torch.export.export`` for ``fn``'s parameter types: one
    dict per tensor argument (dim index -> Dim), None for the others."""
    target = _runtime_function(fn)
    dims: dict[str, Any] = {}
    out: list[Any] = []
    params = list(target._params)
    if len(args) != len(params):
        raise _error(f"`{target.qualname}` takes {len(params)} arguments; "
                     f"{len(args)} example arguments were given",
                     help="pass one example value per parameter, in order")
    for (name, t), a in zip(params, args):
        if not isinstance(a, torch.Tensor):
            out.append(None)
            continue
        if not isinstance(t, TTensor) or t.shape.row is not None:
            out.append(None)  # an unknown rank or shape: exported at the example's
            continue
        spec = {}
        for i, d in enumerate(t.shape.dims):
            dim = _dim(d.size, dims, f"`{name}` dim {i}")
            if dim is not None:
                spec[i] = dim
        out.append(spec or None)
    return tuple(out)


class _Call(torch.nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*args)


def export(fn: Any, *args: Any) -> Any:
    """``fn`` (a gtdsl function) exported with ``torch.export`` at the example ``args``, its
    dims dynamic where its type has size variables (see the module's docstring)."""
    target = _runtime_function(fn)
    shapes = dynamic_shapes(target, args)
    try:
        # forward(*args): one entry, the shapes of the args tuple
        return torch.export.export(_Call(target), tuple(args), dynamic_shapes=(shapes,),
                                   strict=False)
    except GtdslError:
        raise
    except Exception as e:  # torch.export's own errors: constraint violations, guards
        first = str(e).strip().splitlines()
        raise _error(f"`{target.qualname}` cannot be exported with the dims its type "
                     f"declares: {type(e).__name__}: {first[0] if first else ''}"[:400],
                     help="an example size of 0 or 1 is specialized by torch.export: give "
                     "every dynamic dim an example size of 2 or more",
                     notes=tuple(line.strip() for line in first[1:6] if line.strip())) \
            from None


__all__ = ["ExportError", "dynamic_shapes", "export"]
