"""Pointwise and row kernels: the launcher of a ``pointwise`` or ``row`` ``KERNEL`` eqn, its
kernel sources generated from the eqn's block (``gtdsl.lower.triton.base``)."""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.lower.triton.base import (
    _LOCK, INT32, MAX_ROW, Group, KernelSpec, _Body, _compile, _compute_type, _load, _torch_dtype,
    fits_int32, interpreting, spec, triton_modules,
)
from gtdsl.lower.triton.fusion import tensor_of
from gtdsl.types import TScalar, TTensor

class GroupLauncher:
    """Runs one pointwise or row group: ``launcher(*inputs) -> outputs``."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.compute = _compute_type(group)
        self._kernels: dict[tuple[int, int | None], Any] = {}  # (rank, block) -> kernel
        self.sources: dict[tuple[int, int | None], str] = {}
        self.launches = 0
        body = _Body(group, self.compute)
        body.statements("n_cols")
        self.kinds = [body.kinds[o.id] for o in group.outputs]
        self.row_positions = [i for i, a in enumerate(group.inputs)
                              if isinstance(a.type, TTensor)]

    def ok(self, *values: Any) -> bool:
        """Whether the kernel takes these inputs (32-bit offsets; a row fits one block)."""
        if not fits_int32(values):
            return False
        if self.group.kind != "row":
            shape = torch.broadcast_shapes(*(values[i].shape for i in self.row_positions))
            return shape.numel() <= INT32
        n = max(values[i].shape[-1] if values[i].dim() else 1 for i in self.row_positions)
        return 0 < n <= MAX_ROW

    def source(self, rank: int, block: int | None = None) -> str:
        g = self.group
        body = _Body(g, self.compute)
        name = f"gtdsl_{g.name}_r{rank}" + (f"_b{block}" if block else "")
        tin, sin = body.tensor_inputs, body.scalar_inputs
        outs = g.outputs
        if g.kind == "pointwise":
            params = [f"p{i}" for i in range(len(tin))] + [f"s{i}" for i in range(len(sin))] + \
                [f"o{j}" for j in range(len(outs))] + [f"size{d}" for d in range(rank)] + \
                [f"st{i}_{d}" for i in range(len(tin)) for d in range(rank)] + \
                ["numel", "BLOCK: tl.constexpr"]
            lines = [f"def {name}({', '.join(params)}):",
                     "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
                     "    mask = offs < numel", "    rem = offs"]
            for d in reversed(range(rank)):
                lines.append(f"    i{d} = rem % size{d}" if d else f"    i{d} = rem")
                if d:
                    lines.append(f"    rem = rem // size{d}")
            for i, a in enumerate(tin):
                off = " + ".join(f"i{d} * st{i}_{d}" for d in range(rank)) or "0"
                lines.append(_load(i, a, f"({off})", "mask", self.compute))
            lines += ["    " + s for s in body.statements()]
            for j, o in enumerate(outs):
                lines.append(f"    tl.store(o{j} + offs, {body.names[o.id]}"
                             f".to(o{j}.dtype.element_ty), mask=mask)")
        else:
            lead = rank - 1
            params = [f"p{i}" for i in range(len(tin))] + [f"s{i}" for i in range(len(sin))] + \
                [f"o{j}" for j in range(len(outs))] + [f"lsize{d}" for d in range(lead)] + \
                [f"st{i}_{d}" for i in range(len(tin)) for d in range(lead)] + \
                [f"cst{i}" for i in range(len(tin))] + ["n_cols", "eps_default",
                                                        "BLOCK_N: tl.constexpr"]
            lines = [f"def {name}({', '.join(params)}):",
                     "    row = tl.program_id(0)",
                     "    cols = tl.arange(0, BLOCK_N)", "    mask = cols < n_cols",
                     "    rem = row"]
            for d in reversed(range(lead)):
                lines.append(f"    i{d} = rem % lsize{d}" if d else f"    i{d} = rem")
                if d:
                    lines.append(f"    rem = rem // lsize{d}")
            for i, a in enumerate(tin):
                off = " + ".join([f"i{d} * st{i}_{d}" for d in range(lead)] +
                                 [f"cols * cst{i}"])
                lines.append(_load(i, a, f"({off})", "mask", self.compute))
            lines += ["    " + s for s in body.statements("n_cols")]
            for j, o in enumerate(outs):
                val = body.names[o.id]
                if body.kinds[o.id] == "stat":
                    lines.append(f"    tl.store(o{j} + row, {val}.to(o{j}.dtype.element_ty))")
                else:
                    lines.append(f"    tl.store(o{j} + row * n_cols + cols, {val}"
                                 f".to(o{j}.dtype.element_ty), mask=mask)")
        return "@triton.jit\n" + "\n".join(lines) + "\n"

    def _kernel(self, rank: int, block: int | None) -> Any:
        key = (rank, block)
        k = self._kernels.get(key)
        if k is None:
            with _LOCK:
                k = self._kernels.get(key)
                if k is None:
                    src = self.source(rank, block)
                    name = src.split("def ", 1)[1].split("(", 1)[0]
                    self.sources[key] = src
                    k = self._kernels[key] = _compile(name, src)
        return k

    def _plan(self, values: tuple[Any, ...]) -> tuple[tuple[int, int | None], tuple[int, ...],
                                                        list[Any], dict[str, Any], list[Any]]:
        """How ``values`` launch: the kernel key (rank, block), the grid, the arguments, the
        constants, and the outputs (allocated on the inputs' device)."""
        g = self.group
        triton, _ = triton_modules()
        vals = dict(zip((a.id for a in g.inputs), values))
        tensors = [vals[a.id] for a in g.inputs if isinstance(a.type, TTensor)]
        scalars = [vals[a.id] for a in g.inputs if isinstance(a.type, TScalar)]
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        device = tensors[0].device
        if g.kind == "pointwise":
            rank = max(len(shape), 1)
            shape1 = tuple(shape) or (1,)
            outs = [torch.empty(shape, dtype=_torch_dtype(o), device=device) for o in g.outputs]
            strides = [s for t in tensors for s in t.expand(shape).reshape(shape1).stride()] \
                if shape else [0] * len(tensors)
            numel = outs[0].numel() if outs else 0
            block = 1024 if not interpreting() else min(1024, triton.next_power_of_2(max(numel, 1)))
            grid = (triton.cdiv(numel, block),)
            return ((rank, None), grid, [*tensors, *scalars, *outs, *shape1, *strides, numel],
                    {"BLOCK": block}, outs)
        n = shape[-1]
        lead = tuple(shape[:-1])
        m = 1
        for s in lead:
            m *= s
        outs = []
        for o, kind in zip(g.outputs, self.kinds):
            oshape = shape if kind == "full" else (
                lead + (1,) if len(tensor_of(o).shape.dims) == len(g.shape.dims) else lead)
            outs.append(torch.empty(oshape, dtype=_torch_dtype(o), device=device))
        lstrides, cstrides = [], []
        for t in tensors:
            e = t.expand(lead + (t.shape[-1],))
            lstrides += list(e.stride()[:-1])
            cstrides.append(e.stride(-1) if t.shape[-1] != 1 else 0)
        block = triton.next_power_of_2(n)
        eps = torch.finfo(tensors[0].dtype).eps
        return ((len(shape), block), (m,), [*tensors, *scalars, *outs, *lead, *lstrides,
                                            *cstrides, n, eps], {"BLOCK_N": block}, outs)

    def specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) compiles."""
        key, _, args, consts, _ = self._plan(values)
        src = self.source(*key)
        name = src.split("def ", 1)[1].split("(", 1)[0]
        return [spec(name, src, args, consts, NUM_WARPS, NUM_STAGES)]

    def __call__(self, *values: Any) -> Any:
        key, grid, args, consts, outs = self._plan(values)
        self.launches += 1
        if grid[0]:  # an empty result: nothing to compute, nothing to launch
            self._kernel(*key)[grid](*args, **consts, num_warps=NUM_WARPS, num_stages=NUM_STAGES)
        return outs[0] if len(outs) == 1 else tuple(outs)


NUM_WARPS = 4
NUM_STAGES = 3

__all__ = ["GroupLauncher"]
