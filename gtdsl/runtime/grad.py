"""Gradients on the Triton backend: Triton kernels have no backward, so each Triton body sits
behind a check, and a call that needs gradients runs the torch code for its key instead.

``guard`` builds that check from the parameter types: a call made with grad mode on and any
tensor argument that requires grad (also inside a struct, list or tuple), or made inside
forward-mode AD (``torch.autograd.forward_ad``) or a ``torch.func`` transform, runs the torch
code, which is differentiable. Other calls (``torch.no_grad()``, inference, inputs that need no
gradient) run the kernels. The check costs three flag tests per call, and one attribute read
per tensor argument while grad mode is on.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import torch

from gtdsl.runtime.values import get_field
from gtdsl.types import TList, TOther, TScalar, TStruct, TTensor, TTuple, Type

PREFIX = "__gt_"


def guard(name: str, params: list[tuple[str, Type]], extra: int, structs: Any,
          kernels: Callable[..., Any], torch_body: Callable[[], Callable[..., Any]],
          calls: list[int]) -> Callable[..., Any]:
    """``kernels`` behind the gradient check; ``torch_body()`` gives the torch code (built on
    the first call that needs it); ``calls[0]`` counts the calls that ran it. ``extra``: how
    many size arguments follow the parameters."""
    names = [f"{PREFIX}a{i}" for i in range(len(params))]
    args = ", ".join(names + [f"{PREFIX}e{i}" for i in range(extra)])
    ns: dict[str, Any] = {f"{PREFIX}grad_on": torch.is_grad_enabled,
                          f"{PREFIX}kernels": kernels, f"{PREFIX}calls": calls}
    tests = []
    for i, (n, (_, t)) in enumerate(zip(names, params)):
        if isinstance(t, TTensor):
            tests.append(f"{n}.requires_grad")
            continue
        test = grad_test(t, structs)
        if test is not None:
            ns[f"{PREFIX}g{i}"] = test
            tests.append(f"{PREFIX}g{i}({n})")
    if not tests:
        return kernels  # no argument can carry a gradient
    cond = f"({PREFIX}grad_on() and ({' or '.join(tests)}))"
    for flag_name, flag, test in _AD_FLAGS:
        ns[f"{PREFIX}{flag_name}"] = flag
        cond += f" or {test.format(PREFIX + flag_name)}"

    def differentiable(*values: Any) -> Any:
        body = torch_body()
        ns[f"{PREFIX}torch"] = body
        return body(*values)

    ns[f"{PREFIX}torch"] = differentiable
    src = (f"def {PREFIX}body({args}):\n"
           f"    if {cond}:\n"
           f"        {PREFIX}calls[0] += 1\n"
           f"        return {PREFIX}torch({args})\n"
           f"    return {PREFIX}kernels({args})\n")
    exec(compile(src, f"<gtdsl grad check {name}>", "exec"), ns)  # noqa: S102 - from types
    return ns[f"{PREFIX}body"]


def _ad_flags() -> tuple[tuple[str, Any, str], ...]:
    """Cheap tests, at call time, of autodiff that sees no ``requires_grad``: a forward-mode
    dual level, and an active ``torch.func`` transform (``grad``, ``jvp``, ``vmap``). Where
    this torch lacks the private flag a test reads, that test is left out."""
    out = []
    try:
        import torch.autograd.forward_ad as fwd

        if isinstance(getattr(fwd, "_current_level", None), int):
            out.append(("fwd", fwd, "{}._current_level >= 0"))
    except ImportError:
        pass
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if callable(active):
        out.append(("functorch", active, "{}()"))
    return tuple(out)


_AD_FLAGS = _ad_flags()


def grad_test(t: Any, structs: Any, depth: int = 0) -> Any:
    """A test of whether a value of type ``t`` holds a tensor that requires grad, or None
    when no value of the type can hold a tensor. Follows the type through structs, lists and
    tuples; a ``?`` (or a struct whose fields are unknown) is searched whole."""
    if isinstance(t, TTensor):
        return _requires_grad
    if isinstance(t, (TScalar, TOther)):
        return None
    if depth > 16:
        return _holds_grad
    if isinstance(t, TList):
        inner = grad_test(t.elem, structs, depth + 1)
        return None if inner is None else (lambda v: any(map(inner, v)))
    if isinstance(t, TTuple):
        tests = [(i, f) for i, et in enumerate(t.elems)
                 if (f := grad_test(et, structs, depth + 1)) is not None]
        return None if not tests else (lambda v: any(f(v[i]) for i, f in tests))
    if isinstance(t, TStruct):
        info = structs(t.name) if structs is not None else None
        if info is None:
            return _holds_grad
        fields = [(name, f) for name, ft in info.field_types().items()
                  if (f := grad_test(ft, structs, depth + 1)) is not None]
        return None if not fields else (
            lambda v: any(f(get_field(v, name)) for name, f in fields))
    return _holds_grad


def _requires_grad(value: Any) -> bool:
    return value.requires_grad


def _holds_grad(value: Any, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether a value of unknown type holds a tensor that requires grad: containers, maps
    and objects' attributes are searched, each object once (modules, classes and functions
    are not searched); a value nested too deeply to search counts as one."""
    if isinstance(value, torch.Tensor):
        return value.requires_grad
    if value is None or isinstance(value, _LEAVES):
        return False
    if depth > 16:
        return True  # the torch code is right either way; only the kernels could be wrong
    seen = set() if seen is None else seen
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        items: Any = value
    elif isinstance(value, Mapping):
        items = value.values()
    elif isinstance(getattr(value, "__dict__", None), dict):
        items = vars(value).values()
    else:
        items = [getattr(value, n, None) for c in type(value).__mro__
                 for n in getattr(c, "__slots__", ())]
    return any(_holds_grad(v, depth + 1, seen) for v in items)


_LEAVES = (bool, int, float, complex, str, bytes, torch.dtype, torch.device, type,
           types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


__all__ = ["grad_test", "guard"]
