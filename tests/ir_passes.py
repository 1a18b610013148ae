"""The IR verifier after every pass, for the tests that produce IR and run it.

``verify_passes(program)`` verifies the checked program, then each function after the
Triton backend's fusion pass, and that every ``KERNEL`` eqn's block reads only the kernel's
inputs and its own values (the launch is handed its inputs and nothing else).
``verify_each_pass`` is an autouse fixture (``tests/golden`` and ``tests/differential`` take it
in their ``conftest.py``): every module built while a test runs has its program verified, and
every function the Triton backend prepares is verified before and after the pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from gtdsl.ir.core import Function, Program
from gtdsl.ir.verify import verify_function, verify_program
from gtdsl.lower.triton.fusion import fuse
from gtdsl.runtime.backends import REGISTRY
from gtdsl.runtime.module import CompiledModule


def verify_fused(fn: Function) -> Function:
    verify_function(fn)  # a KERNEL's block reads only its inputs: the verifier checks it
    return fn


def verify_passes(program: Program) -> None:
    """The checked program, then each of its functions after the fusion pass."""
    verify_program(program)
    for fn in program.functions:
        verify_fused(fuse(fn))


@pytest.fixture(autouse=True, scope="module")
def verify_each_pass() -> Iterator[None]:
    real_init = CompiledModule.__init__
    triton = REGISTRY["triton"]

    def init(self: CompiledModule, program: Program, *args: object, **kwargs: object) -> None:
        verify_passes(program)
        real_init(self, program, *args, **kwargs)

    def prepare(fn: Function) -> Function:
        verify_function(fn)
        return verify_fused(triton.prepare(fn))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CompiledModule, "__init__", init)
        mp.setitem(REGISTRY, "triton", replace(triton, prepare=prepare))
        yield
