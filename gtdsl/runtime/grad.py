"""Autodiff transforms on the Triton backend: kernels are ``torch.autograd.Function``s
(``gtdsl.lower.triton.autograd``), which reverse-mode autograd differentiates, but which have
no forward-mode rule and no ``torch.func`` batching rule. A call made inside forward-mode AD
(``torch.autograd.forward_ad``) or a ``torch.func`` transform (``grad``, ``jvp``, ``vmap``)
therefore runs the torch code for its key, which every transform supports. The test costs two
flag reads per call; where this torch lacks the private flag a test reads, that test is left
out (and the transform meets the kernels' autograd.Function, which says what it lacks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

PREFIX = "__gt_"


def guard(name: str, params: int, kernels: Callable[..., Any],
          torch_body: Callable[[], Callable[..., Any]], calls: list[int]) -> Callable[..., Any]:
    """``kernels`` behind the transform check; ``torch_body()`` gives the torch code (built on
    the first call that needs it); ``calls[0]`` counts the calls that ran it. ``params``: how
    many arguments the body takes (the parameters and the size arguments)."""
    if not _AD_FLAGS:
        return kernels
    args = ", ".join(f"{PREFIX}a{i}" for i in range(params))
    ns: dict[str, Any] = {f"{PREFIX}kernels": kernels, f"{PREFIX}calls": calls}
    tests = []
    for flag_name, flag, test in _AD_FLAGS:
        ns[f"{PREFIX}{flag_name}"] = flag
        tests.append(test.format(PREFIX + flag_name))

    def transformed(*values: Any) -> Any:
        body = torch_body()
        ns[f"{PREFIX}torch"] = body
        return body(*values)

    ns[f"{PREFIX}torch"] = transformed
    src = (f"def {PREFIX}body({args}):\n"
           f"    if {' or '.join(tests)}:\n"
           f"        {PREFIX}calls[0] += 1\n"
           f"        return {PREFIX}torch({args})\n"
           f"    return {PREFIX}kernels({args})\n")
    exec(compile(src, f"<gtdsl transform check {name}>", "exec"), ns)  # noqa: S102
    return ns[f"{PREFIX}body"]


def _ad_flags() -> tuple[tuple[str, Any, str], ...]:
    """Cheap tests, at call time, of the transforms kernels do not support: a forward-mode dual
    level, and an active ``torch.func`` transform."""
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


__all__ = ["guard"]
