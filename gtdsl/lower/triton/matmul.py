"""Matrix products with a fused epilogue: the launcher of a ``matmul`` ``KERNEL`` eqn, from the
``kernels/matmul.py`` template."""

from __future__ import annotations

from typing import Any

import torch

from gtdsl.lower.triton.base import (
    _LOCK, INT32, Group, KernelSpec, _Body, _compile, _torch_dtype, _var, fits_int32,
    interpreting, matmul_template, spec, triton_modules,
)
from gtdsl.lower.triton.fusion import _args, op_name
from gtdsl.ir.core import Var

# Tile shapes tried on a GPU (autotuned per M, N, K bucket); the interpreter uses one small
# tile, since it runs every program on the CPU.
MATMUL_CONFIGS = [(128, 128, 32, 4, 3), (128, 64, 32, 4, 4), (64, 128, 32, 4, 4),
                  (64, 64, 32, 4, 4), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3)]


def _autotuned(kernel: Any, configs: list[tuple[int, int, int, int, int]],
               key: list[str]) -> Any:
    triton, _ = triton_modules()
    return triton.autotune(
        configs=[triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w,
                               num_stages=st) for m, n, k, w, st in configs], key=key)(kernel)


class MatmulLauncher:
    """A matrix product with its epilogue, from the ``kernels/matmul.py`` template."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.mm = next(e for e in group.eqns if op_name(e) in ("matmul", "linear"))
        self.t = next((e for e in group.eqns if op_name(e) == "T"), None)
        args = _args(self.mm)
        self.is_linear = op_name(self.mm) == "linear"
        # the operands are vars: a kernel's inputs, or the output of the T folded into it
        self.lhs = _var(args["input"])
        self.rhs = _var(args["weight"] if self.is_linear else args["other"])
        self.t_input = _var(self.t.ins[0]) if self.t is not None else None
        bias = args.get("bias")
        self.bias = bias if self.is_linear and isinstance(bias, Var) else None
        self.compute = "tl.float32"
        body = _Body(group, self.compute)
        used = {a.id for e in group.eqns if e is not self.mm and e is not self.t
                for a in e.ins if isinstance(a, Var)}
        if self.bias is not None:
            used.add(self.bias.id)
        self.extra = [a for a in body.tensor_inputs if a.id in used]
        self.scalars = body.scalar_inputs
        self._kernel: Any = None  # the compiled (and, on a GPU, autotuned) Triton kernel
        self.launches = 0
        self.name = f"gtdsl_{group.name}"
        self.source = self._source()

    def _source(self) -> str:
        g = self.group
        body = _Body(g, self.compute)
        body.names = {}
        for i, a in enumerate(self.extra):
            body.names[a.id] = f"e{i}"
        for i, a in enumerate(self.scalars):
            body.names[a.id] = f"s{i}"
        mm_out = self.mm.outs[0]
        lines = []
        for i, a in enumerate(self.extra):
            lines.append(f"e{i} = tl.load(e{i}_ptr + offs_m[:, None] * e{i}_sm + "
                         f"offs_n[None, :] * e{i}_sn, mask=mask, other=0.0).to(tl.float32)")
        pre = f"v{mm_out.id}"
        lines.append(f"{pre} = acc")
        if self.bias is not None:
            lines.append(f"{pre} = {pre} + {body.names[self.bias.id]}")
        body.names[mm_out.id] = pre
        lines += body.statements()
        outs = g.outputs
        for j, o in enumerate(outs[:-1]):
            lines.append(f"tl.store(o{j}_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * "
                         f"stride_cn, {body.names[o.id]}.to(o{j}_ptr.dtype.element_ty), "
                         "mask=mask)")
        lines.append(f"v = {body.names[outs[-1].id]}")
        params = "".join(f"e{i}_ptr, e{i}_sm, e{i}_sn, " for i in range(len(self.extra)))
        params += "".join(f"s{i}, " for i in range(len(self.scalars)))
        params += "".join(f"o{j}_ptr, " for j in range(len(outs) - 1))
        src = matmul_template().replace("KERNEL_NAME", self.name)
        src = src.replace("#@params", params)
        src = src.replace("    #@epilogue", "\n".join("    " + s for s in lines))
        return src

    def ok(self, *values: Any) -> bool:
        vals = dict(zip((a.id for a in self.group.inputs), values))
        x = vals[self.lhs.id]
        n = vals[(self.t_input if self.t_input is not None else self.rhs).id].shape
        return fits_int32(values) and x.numel() // max(x.shape[-1], 1) * max(n) <= INT32

    def _plan(self, values: tuple[Any, ...]) -> tuple[tuple[int, int], list[Any], list[Any],
                                                        tuple[int, ...]]:
        """How ``values`` launch: (M, N), the arguments, the outputs, the leading shape."""
        g = self.group
        vals = dict(zip((a.id for a in g.inputs), values))
        x = vals[self.lhs.id]
        if self.t_input is not None:
            w = vals[self.t_input.id]  # (x @ w.T): w is [N, K]
            b_mat = w.t()
        elif self.is_linear:
            b_mat = vals[self.rhs.id].t()
        else:
            b_mat = vals[self.rhs.id]
        k_dim, n = b_mat.shape
        lead = tuple(x.shape[:-1])
        a = x.reshape(-1, k_dim) if x.dim() != 2 else x
        m = a.shape[0]
        outs = [torch.empty((m, n), dtype=_torch_dtype(o), device=x.device) for o in g.outputs]
        extra: list[Any] = []
        for e in self.extra:
            t = vals[e.id]
            if t.dim() == 1:
                extra += [t, 0, t.stride(0)]
            else:
                t2 = t.expand(lead + (n,)).reshape(m, n)
                extra += [t2, t2.stride(0), t2.stride(1)]
        scalars = [vals[s.id] for s in self.scalars]
        c = outs[-1]
        args = [a, b_mat, c, m, n, k_dim, a.stride(0), a.stride(1), b_mat.stride(0),
                b_mat.stride(1), c.stride(0), c.stride(1), *extra, *scalars, *outs[:-1]]
        return (m, n), args, outs, lead

    def configs(self, dtype: torch.dtype) -> list[tuple[int, int, int, int, int]]:
        """The tile configurations (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) a GPU launch may
        pick for operands of ``dtype``."""
        return list(MATMUL_CONFIGS)

    def specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) may compile: one per
        tile configuration the autotuner tries."""
        _, args, _, _ = self._plan(values)
        ieee = args[0].dtype == torch.float32
        return [spec(self.name, self.source, args, {"BLOCK_M": bm, "BLOCK_N": bn,
                                                    "BLOCK_K": bk, "GROUP_M": 8, "IEEE": ieee},
                     w, st) for bm, bn, bk, w, st in self.configs(args[0].dtype)]

    def __call__(self, *values: Any) -> Any:
        triton, _ = triton_modules()
        (m, n), args, outs, lead = self._plan(values)
        if self._kernel is None:
            with _LOCK:
                if self._kernel is None:
                    k = _compile(self.name, self.source)
                    self._kernel = k if interpreting() else _autotuned(
                        k, self.configs(args[0].dtype), ["M", "N", "K"])
        self.launches += 1
        if m and n:
            ieee = args[0].dtype == torch.float32
            if interpreting():
                grid = (triton.cdiv(m, 16) * triton.cdiv(n, 16),)
                self._kernel[grid](*args, BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, GROUP_M=8,
                                   IEEE=True)
            else:
                self._kernel[lambda meta: (triton.cdiv(m, meta["BLOCK_M"]) *
                                           triton.cdiv(n, meta["BLOCK_N"]),)](
                    *args, GROUP_M=8, IEEE=ieee)
        shaped = [o.view(*lead, n) for o in outs]
        return shaped[0] if len(shaped) == 1 else tuple(shaped)


__all__ = ["MATMUL_CONFIGS", "MatmulLauncher"]
