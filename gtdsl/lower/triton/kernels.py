"""Triton kernels for ``KERNEL`` eqns: ``launcher_for(eqn)`` builds the launcher that runs one.

- pointwise and row groups: ``gtdsl.lower.triton.rows`` (sources generated from the block);
- matrix products with an epilogue: ``gtdsl.lower.triton.matmul`` (the ``kernels/matmul.py``
  template);
- attention: ``gtdsl.lower.triton.attention`` (the ``kernels/attention.py`` template).

A launcher is called by the generated host code with the eqn's inputs (tensors and numbers)
and returns its outputs; ``launcher.ok(*ins)`` says whether the kernel takes those inputs,
``launcher.specs(*ins)`` lists the kernels (``KernelSpec``) a launch with them compiles, for
real or meta tensors. Shared pieces are in ``gtdsl.lower.triton.base``.
"""

from __future__ import annotations

from gtdsl.ir.core import Eqn, Function, Op
from gtdsl.lower.triton.attention import AttentionLauncher
from gtdsl.lower.triton.base import Group, KernelSpec, triton_modules
from gtdsl.lower.triton.matmul import MATMUL_CONFIGS, MatmulLauncher
from gtdsl.lower.triton.rows import GroupLauncher


def launcher_for(eqn: Eqn) -> GroupLauncher | MatmulLauncher | AttentionLauncher:
    """The launcher of a ``KERNEL`` eqn: ``launcher.ok(*ins)`` says whether the kernel takes
    these inputs, ``launcher(*ins)`` runs it and returns the eqn's outputs."""
    group = Group.of(eqn)
    if group.kind == "matmul":
        return MatmulLauncher(group)
    if group.kind == "attention":
        return AttentionLauncher(group)
    return GroupLauncher(group)


def kernel_sources(fn: Function) -> list[str]:
    """The source of each kernel of a fused function, in run order: pointwise and row
    kernels for the rank the types fix (other ranks are generated per call; a row kernel is
    shown for a 128-wide block), matmul and attention as generated from their templates."""
    parts = []
    for e in fn.body.eqns:
        if e.op is not Op.KERNEL:
            continue
        launcher = launcher_for(e)
        if not isinstance(launcher, GroupLauncher):  # matmul and attention
            parts.append(launcher.source)
            continue
        g = launcher.group
        rank = g.shape.rank
        if rank is None:
            parts.append(f"# {g.name}: its rank is known per call; shown for rank "
                         f"{len(g.shape.dims) + 1}")
            rank = len(g.shape.dims) + 1
        parts.append(launcher.source(max(rank, 1), 128 if g.kind == "row" else None))
    return parts


__all__ = ["MATMUL_CONFIGS", "AttentionLauncher", "Group", "GroupLauncher", "KernelSpec",
           "MatmulLauncher", "kernel_sources", "launcher_for", "triton_modules"]
