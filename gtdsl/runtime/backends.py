"""The backends, one registry, and the one rule that picks a backend for a call.

- ``interpret``: the reference interpreter runs the IR, every check executed (the oracle);
- ``torch``: the IR lowered to straight-line Python over torch ops (``gtdsl.lower.torch``);
- ``triton``: the fusion pass (``gtdsl.lower.triton.fusion.fuse``) first rewrites the IR,
  each group of fused ops becoming one ``KERNEL`` eqn, then the torch lowering launches
  them, each kernel a ``torch.autograd.Function`` with a backward generated from its IR
  (``gtdsl.lower.triton.autograd``); a call inside forward-mode AD or a ``torch.func``
  transform runs the torch code for its key (``gtdsl.runtime.grad``).

A backend's ``prepare`` is the IR pass that runs before it: ``Function`` in, ``Function`` out,
verified by ``gtdsl.ir.verify`` like any pass. Only the triton backend's output holds
``KERNEL`` eqns.

A function's requested backend is one of ``REQUESTS``: a backend's name, or ``auto``, which
``choose`` resolves per specialization key.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from gtdsl.ir.core import Function


def _no_pass(fn: Function) -> Function:
    return fn


def _fusion(fn: Function) -> Function:
    from gtdsl.lower.triton.fusion import fuse

    return fuse(fn)


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    compiled: bool  # False: the interpreter runs the IR itself
    prepare: Callable[[Function], Function]  # the IR pass that runs before lowering
    # calls under forward-mode AD or torch.func transforms run the torch code instead
    guards_transforms: bool = False


REGISTRY: dict[str, Backend] = {
    "torch": Backend("torch", True, _no_pass),
    "triton": Backend("triton", True, _fusion, guards_transforms=True),
    "interpret": Backend("interpret", False, _no_pass),
}
REQUESTS = ("auto", *REGISTRY)


def choose(requested: str, cuda: bool) -> Backend:
    """The backend that runs a call: the one requested; for ``auto``, Triton for a call on
    CUDA tensors where Triton can be imported, else torch."""
    if requested != "auto":
        return REGISTRY[requested]
    return REGISTRY["triton" if cuda and triton_available() else "torch"]


def triton_available() -> bool:
    try:
        import torch

        return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()
    except (ImportError, ValueError):
        return False


__all__ = ["REGISTRY", "REQUESTS", "Backend", "choose", "triton_available"]
