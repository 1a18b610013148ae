"""Attention: the launcher of an ``attention`` ``KERNEL`` eqn, from the ``kernels/attention.py``
template."""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.ir.core import Var
from gtdsl.lower.triton.base import (
    _LOCK, Group, KernelSpec, _compile, fits_int32, interpreting, spec, template, triton_modules,
)
from gtdsl.lower.triton.fusion import _args

class AttentionLauncher:
    """``scaled_dot_product_attention`` from the ``kernels/attention.py`` template."""

    def __init__(self, group: Group) -> None:
        self.group = group
        e = group.eqns[0]
        self.args = _args(e)
        self.name = f"gtdsl_{group.name}"
        self.source = template("attention.py").replace("KERNEL_NAME", self.name)
        self._kernel: Any = None  # the compiled Triton kernel
        self.launches = 0

    def ok(self, *values: Any) -> bool:
        return fits_int32(values)

    def _plan(self, values: tuple[Any, ...]) -> tuple[tuple[int, ...], list[Any],
                                                        dict[str, Any], Any]:
        """How ``values`` launch: the grid, the arguments, the constants and the output."""
        triton, _ = triton_modules()
        vals = dict(zip((a.id for a in self.group.inputs), values))

        def get(k: str) -> Any:
            a = self.args[k]
            return vals[a.id] if isinstance(a, Var) else a.value

        q, k, v = get("query"), get("key"), get("value")
        causal, scale = bool(get("is_causal")), get("scale")
        b, h, n_q, d = q.shape
        n_k = k.shape[2]
        if scale is None:
            scale = 1.0 / (d ** 0.5)
        out = torch.empty((b, h, n_q, d), dtype=q.dtype, device=q.device)
        block_d = max(16, triton.next_power_of_2(d))
        bm, bn = (16, 16) if interpreting() else (64, 64)
        grid = (triton.cdiv(n_q, bm), b * h) if out.numel() else (0, 0)
        args = [q, k, v, out, float(scale), h, n_q, n_k, d, *q.stride(), *k.stride(),
                *v.stride(), *out.stride()]
        consts = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=block_d, CAUSAL=causal,
                      IEEE=q.dtype == torch.float32 or interpreting())
        return grid, args, consts, out

    def specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) compiles."""
        _, args, consts, _ = self._plan(values)
        return [spec(self.name, self.source, args, consts, 4, 3)]

    def __call__(self, *values: Any) -> Any:
        grid, args, consts, out = self._plan(values)
        if self._kernel is None:
            with _LOCK:
                if self._kernel is None:
                    self._kernel = _compile(self.name, self.source)
        self.launches += 1
        if grid[0]:
            self._kernel[grid](*args, **consts)
        return out


__all__ = ["AttentionLauncher"]
