"""Gradients through Triton kernels: every ``KERNEL`` eqn is a ``torch.autograd.Function``.

``differentiable(launcher)`` wraps a launcher for the generated host code. A launch whose
tensor inputs need no gradient (or made with grad mode off) runs the kernel directly; one
that needs gradients runs it through ``KernelFunction``, whose backward is generated from the
kernel's IR:

- pointwise and row groups: ``gtdsl.lower.triton.autodiff`` derives a backward group of the
  same kind, launched as its own kernel; the forward saves nothing but its inputs (the
  backward kernel recomputes the forward values, which costs no memory traffic);
- a matrix product with an epilogue: the forward also stores the product before the epilogue
  (only when there is an epilogue); the backward runs the two gradient products with the
  epilogue's derivative computed in their operand tiles, the bias's gradient summed by the
  weight's product (``gtdsl.lower.triton.matmul_grad``);
- attention: the launcher's own flash-style backward kernels (it saves the output and the
  per-row log-sum-exp).

Gradients of inputs broadcast into a kernel are reduced to their shapes
(``Tensor.sum_to_size``). Double backward (``create_graph=True``) differentiates the group's
ops recomputed as torch ops, so it works for every kind, at torch's speed.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

from gtdsl.ir.core import Atom, Eqn, Lit, Var
from gtdsl.lower.triton.autodiff import Derivative, derivative
from gtdsl.lower.triton.base import Group, KernelSpec
from gtdsl.lower.triton.fusion import _args, op_name
from gtdsl.lower.triton.rows import GroupLauncher
from gtdsl.types import DT, Size, TTensor

_LOCK = threading.Lock()


class KernelFunction(torch.autograd.Function):
    """One launch of a kernel, differentiable: ``KernelFunction.apply(op, *inputs)``."""

    @staticmethod
    def forward(ctx: Any, op: Differentiable, *values: Any) -> Any:
        outs, saved = op.forward_saving(values)
        ctx.op = op
        ctx.others = tuple(None if isinstance(v, torch.Tensor) else v for v in values)
        ctx.n_saved = len(saved)
        ctx.save_for_backward(*(v for v in values if isinstance(v, torch.Tensor)), *saved)
        frozen = [o for o in outs if not (o.is_floating_point() or o.is_complex())]
        if frozen:
            ctx.mark_non_differentiable(*frozen)
        return outs[0] if len(outs) == 1 else tuple(outs)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        stored = ctx.saved_tensors
        n_in = len(stored) - ctx.n_saved
        tensors = iter(stored[:n_in])
        values = tuple(next(tensors) if v is None else v for v in ctx.others)
        saved = tuple(stored[n_in:])
        needs = tuple(ctx.needs_input_grad[1:])
        if torch.is_grad_enabled():  # create_graph: a differentiable backward
            res = ctx.op.torch_backward(values, grads, needs)
        else:
            res = ctx.op.backward(values, saved, grads, needs)
        return (None, *res)


class Differentiable:
    """A launcher as the host code calls it: ``ok`` as the launcher's, calls differentiable."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher
        self.group: Group = launcher.group
        self.ok = launcher.ok
        self.tensor_pos = tuple(i for i, a in enumerate(self.group.inputs)
                                if isinstance(a.type, TTensor))
        self._derivatives: dict[tuple, tuple[Derivative, GroupLauncher]] = {}
        self._matmul: Any = None  # matmul: its MatmulBackward

    def __call__(self, *values: Any) -> Any:
        if torch.is_grad_enabled():
            for i in self.tensor_pos:
                if values[i].requires_grad:
                    return KernelFunction.apply(self, *values)
        return self.launcher(*values)

    # ------------------------------------------------------------------ forward
    def forward_saving(self, values: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        kind = self.group.kind
        if kind == "matmul":
            mb = self.matmul_backward()
            saving = mb.saving()
            if saving is not None:
                z, *rest = _tuple(saving(*values))
                return tuple(rest), (z,)
            outs = _tuple(self.launcher(*values))
            at = [i for i, o in enumerate(self.group.outputs) if o.id == mb.z.id]
            # the product is an output: saved for the epilogue's derivative, if it reads it
            return outs, ((outs[at[0]],) if at and mb.reads_z else ())
        if kind == "attention" and hasattr(self.launcher, "forward_saving"):
            outs, saved = self.launcher.forward_saving(*values)
            return tuple(outs), tuple(saved)
        return _tuple(self.launcher(*values)), ()

    # ------------------------------------------------------------------ backward
    def backward(self, values: tuple[Any, ...], saved: tuple[Any, ...],
                 grads: tuple[Any, ...], needs: tuple[bool, ...]) -> tuple[Any, ...]:
        kind = self.group.kind
        if kind in ("pointwise", "row"):
            return self._group_backward(self.group, values, grads, needs)
        if kind == "matmul":
            return self.matmul_backward()(values, saved, grads, needs)
        if hasattr(self.launcher, "backward"):
            return tuple(self.launcher.backward(values, saved, grads, needs))
        return self.torch_backward(values, grads, needs)

    def matmul_backward(self) -> Any:
        """A matmul kernel's ``MatmulBackward`` (made once)."""
        if self._matmul is None:
            from gtdsl.lower.triton.matmul_grad import MatmulBackward

            with _LOCK:
                if self._matmul is None:
                    self._matmul = MatmulBackward(self.launcher)
        return self._matmul

    def backward_specs(self, *values: Any, target: tuple[int, int] | None = None
                       ) -> list[KernelSpec]:
        """The kernels a training step with ``values`` (real or meta tensors) compiles beyond
        the forward's, when every output has a gradient and every float tensor input needs
        one: the backward kernel of a pointwise or row group; a matmul's forward that also
        stores the product, its gradient products and its epilogue's derivative; attention's
        backward kernels. ``target`` as the launchers' ``specs`` take it."""
        kind = self.group.kind
        if kind == "matmul":
            return list(self.matmul_backward().specs(*values, target=target))
        if kind == "attention":
            return list(self.launcher.backward_specs(*values))
        g = self.group
        grads = tuple(v if isinstance(o.type, TTensor) and o.type.dtype.category is DT.FLOAT
                      else None for o, v in zip(g.outputs, self._forward_outputs(values)))
        needs = tuple(isinstance(a.type, TTensor) and a.type.dtype.category is DT.FLOAT
                      for a in g.inputs)
        plan = self._backward_plan(g, values, grads, needs)
        return list(plan[1].specs(*plan[2])) if plan is not None else []

    def _forward_outputs(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Tensors of the forward outputs' shapes and dtypes, on ``values``' device, without
        launching (the gradients of a backward's specs)."""
        tensors = [v for v, a in zip(values, self.group.inputs) if isinstance(a.type, TTensor)]
        device = tensors[0].device if tensors else torch.device("meta")
        with torch.device("meta"):
            outs = torch_group(self.group, tuple(
                v.to("meta") if isinstance(v, torch.Tensor) else v for v in values))
        return tuple(torch.empty(o.shape, dtype=o.dtype, device=device) for o in outs)

    def _backward_plan(self, group: Group, values: tuple[Any, ...], grads: tuple[Any, ...],
                       needs: tuple[bool, ...]
                       ) -> tuple[Derivative, GroupLauncher, tuple[Any, ...], Any] | None:
        """The backward kernel of a pointwise or row ``group`` for these gradients (None for
        an output without one) and ``needs``: its derivative, launcher, arguments and the
        full shape its gradients have; None where no gradient flows."""
        with_grad = tuple(g is not None for g in grads)
        if not any(with_grad) or not any(needs):
            return None
        key = (id(group), with_grad, needs)
        found = self._derivatives.get(key)
        if found is None:
            d = derivative(group, with_grad, needs)
            found = self._derivatives[key] = (d, GroupLauncher(d.group))
        d, launch = found
        if not d.group.outputs:
            return None
        gs = []
        for o, gr in zip(group.outputs, grads):
            if gr is None:
                continue
            t = o.type
            # a row statistic without keepdim: the kernel reads it as [..., 1]
            if group.kind == "row" and isinstance(t, TTensor) and len(t.shape.dims) < len(
                    group.shape.dims):
                gr = gr.unsqueeze(-1)
            gs.append(gr)
        tensors = [v for v, a in zip(values, group.inputs) if isinstance(a.type, TTensor)]
        full = torch.broadcast_shapes(*(t.shape for t in tensors), *(g.shape for g in gs))
        extra = [full[-1] if len(full) else 1] if d.takes_row_length else []
        return d, launch, (*values, *gs, *extra), full

    def _group_backward(self, group: Group, values: tuple[Any, ...], grads: tuple[Any, ...],
                        needs: tuple[bool, ...]) -> tuple[Any, ...]:
        plan = self._backward_plan(group, values, grads, needs)
        if plan is None:
            return (None,) * len(values)
        d, launch, args, full = plan
        if not launch.ok(*args):  # past the kernels' 32-bit offsets: torch's backward
            return torch_group_backward(group, values, grads, needs)
        outs = _tuple(launch(*args))
        res: list[Any] = []
        for v, j in zip(values, d.grads_for):
            if j is None:
                res.append(None)
                continue
            g = outs[j]
            if g.shape != full:
                g = g.expand(full)
            res.append(g.sum_to_size(v.shape) if g.shape != v.shape else g)
        return tuple(res)

    # ------------------------------------------------------------------ create_graph
    def torch_backward(self, values: tuple[Any, ...], grads: tuple[Any, ...],
                       needs: tuple[bool, ...]) -> tuple[Any, ...]:
        """The backward as torch ops over the group's ops recomputed as torch ops: itself
        differentiable (double backward)."""
        return torch_group_backward(self.group, values, grads, needs)


def torch_group_backward(group: Group, values: tuple[Any, ...], grads: tuple[Any, ...],
                         needs: tuple[bool, ...]) -> tuple[Any, ...]:
    """The gradients of ``group``'s inputs ``needs`` marks by torch's autograd over its ops
    recomputed as torch ops (differentiable again when grad mode is on)."""
    create = torch.is_grad_enabled()
    if not create:  # leaves of their own: the recomputation's graph is this call's only
        values = tuple(v.detach().requires_grad_(n) if isinstance(v, torch.Tensor) and
                       v.is_floating_point() else v for v, n in zip(values, needs))
    wanted = [v for v, n in zip(values, needs) if n]
    with torch.enable_grad():
        outs = torch_group(group, values)
        pairs = [(o, gr) for o, gr in zip(outs, grads)
                 if gr is not None and isinstance(o, torch.Tensor) and o.requires_grad]
        if not pairs or not wanted:
            return (None,) * len(values)
        got = torch.autograd.grad([o for o, _ in pairs], wanted, [gr for _, gr in pairs],
                                  create_graph=create, allow_unused=True)
    it = iter(got)
    return tuple(next(it) if n else None for n in needs)


def torch_group(group: Group, values: tuple[Any, ...]) -> list[Any]:
    """The group's ops run as torch ops (differentiable by torch)."""
    env: dict[int, Any] = dict(zip((a.id for a in group.inputs), values))
    for e in group.eqns:
        env[e.outs[0].id] = _torch_op(e, env)
    return [env[o.id] for o in group.outputs]


def _torch_op(e: Eqn, env: dict[int, Any]) -> Any:
    from gtdsl.ops.calls import call_op

    name = op_name(e)
    if name is None:
        raise ValueError(f"a kernel's block holds catalogue ops, not {e.op.name}")
    args = {k: _value(a, env) for k, a in _args(e).items()}
    if name in ("layer_norm", "rms_norm"):  # one normalized dim, the last (fusion's rule)
        args["normalized_shape"] = (args["input"].shape[-1],)
    if name == "scaled_dot_product_attention":
        return _attention_math(args)
    return call_op(name, args)


def _attention_math(a: dict[str, Any]) -> Any:
    """Attention as matrix products and a softmax, differentiable any number of times (torch's
    fused attention kernels have no double backward); a row that sees no key gives 0, as
    torch's attention does."""
    q, k, v = a["query"], a["key"], a["value"]
    scale = a.get("scale")
    scale = 1.0 / q.shape[-1] ** 0.5 if scale is None else scale
    s = (q @ k.transpose(-2, -1)) * scale
    seen = None
    if a.get("is_causal"):
        seen = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    m = a.get("attn_mask")
    if m is not None and m.dtype == torch.bool:
        seen = m if seen is None else seen & m
    elif m is not None:
        s = s + m
    if seen is not None:
        s = s.masked_fill(~seen, float("-inf"))
    empty = torch.isneginf(s).all(-1, keepdim=True)
    p = torch.softmax(s.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)
    return p @ v


def _value(a: Atom, env: dict[int, Any]) -> Any:
    if isinstance(a, Var):
        return env[a.id]
    assert isinstance(a, Lit)
    return _literal(a.value)


def _literal(v: Any) -> Any:
    from gtdsl.ops.calls import DT_TORCH

    if isinstance(v, DT):
        return DT_TORCH[v]
    if isinstance(v, Size):
        c = v.constant()
        if c is None:
            raise ValueError(f"a kernel literal {v} depends on sizes")
        return c
    if isinstance(v, tuple):
        return tuple(_literal(x) for x in v)
    return v


def _tuple(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


def differentiable(launcher: Any) -> Differentiable:
    return Differentiable(launcher)


__all__ = ["Differentiable", "KernelFunction", "differentiable", "torch_group"]
