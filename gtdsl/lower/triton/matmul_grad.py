"""The backward of a matrix product with a fused epilogue: the two gradient products, with the
epilogue's derivative computed inside them.

The forward computes ``Z = X @ B (+ bias)`` ([M, N], where ``B`` is ``w.T`` for ``linear`` and
``x @ w.T``, ``w`` for ``x @ w``) and then its epilogue, outputs ``O_j = f_j(Z, E...)`` of
other inputs ``E`` (a residual, a gate, a bias vector) and numbers. Given the gradients ``G_j``
of the outputs, ``dZ = sum_j G_j * df_j/dZ`` is pointwise in ``(G, Z, E)``: the epilogue's
derivative, a pointwise group from ``autodiff.derivative``. Rather than writing ``dZ`` to
memory and reading it back twice, each gradient product computes the tiles of its operand A
from ``G``, ``Z`` and ``E`` as it goes (the ``#@operand_a`` statements of the matmul
template), rounding ``dZ`` to the product's dtype as an unfused backward would:

- ``<kernel>_dx``: ``dX = dZ @ B.T`` ([M, K]; A is ``dZ``, read along N);
- ``<kernel>_dw``: ``dZ.T @ X`` ([N, K]; A is ``dZ.T``, read along M), stored as ``w``'s
  gradient in place (transposed into ``w``'s [K, N] for ``x @ w``). With a bias that needs its
  gradient, the programs of the first column of output tiles also sum the rows of their A
  tiles (``<kernel>_dw_db``): the bias's gradient, ``dZ.sum(0)``, without another pass.

The forward saves ``Z`` (a matrix product is not cheap to recompute). The gradients of the
epilogue's other inputs come from the epilogue's derivative run as a pointwise kernel,
launched only when one of them needs a gradient. The gradient products run on the generic
template on every target (a computed operand is not a tensor-memory copy); their tile
configurations are tuned under their own key (``matmul_grad``). A bias needing its gradient
without the weight (BitFit), or offsets past 32 bits, take the unfused path: ``dZ`` by the
pointwise kernel, the products by ``matmul.mm`` (which hands what it does not take to torch).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.ir.core import Var
from gtdsl.lower.triton.autodiff import Derivative, NotDifferentiable, derivative
from gtdsl.lower.triton.base import Group, KernelSpec, _Body
from gtdsl.lower.triton.fusion import tensor_of
from gtdsl.lower.triton.matmul import MatmulKernel, MatmulLauncher, aligned, offsets_fit
from gtdsl.lower.triton.rows import GroupLauncher
from gtdsl.types import DT, TTensor

_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Operand:
    """A tensor the tiles of dZ are computed from: ``Z`` (``role`` "z"), an epilogue input
    ("input", ``var``) or an output's gradient ("grad", ``index`` among the outputs)."""

    role: str
    var: Var | None
    index: int
    vector: bool  # one dim, along N (a bias): its stride along M is 0


class _Products:
    """The gradient product kernels for one set of outputs with gradients: ``dx``, ``dw``, and
    ``dw_db``, the weight's product that also sums the tiles ``sums`` names (``a``: dZ, for
    ``linear``'s bias; others: the adjoints of the epilogue's vectors along N) over its
    depth, the rows of the product, into one vector each."""

    def __init__(self, name: str, operands: list[_Operand], scalars: list[Var],
                 statements: list[str], dz: str, sums: tuple[str, ...],
                 sum_targets: tuple[int, ...]) -> None:
        self.operands = operands
        # whose gradient each sum is: -1 linear's bias, else the epilogue's input at that place
        self.sum_targets = sum_targets
        self.scalars = scalars
        params = "".join(f"p{i}_ptr, p{i}_sr, p{i}_sc, " for i in range(len(operands)))
        params += "".join(f"s{i}, " for i in range(len(scalars)))
        loads = [self._load(i, o, masked) for masked in (False, True)
                 for i, o in enumerate(operands)]
        n = len(operands)
        tile = ["kk = k * BLOCK_K + offs_k", "if EVEN_K:", *("    " + s for s in loads[:n]),
                "else:", *("    " + s for s in loads[n:]), *statements, f"a = {dz}",
                "if not EVEN_K:", "    a = tl.where(kk[None, :] < K, a, 0.0)",
                "a = a.to(b_ptr.dtype.element_ty)"]
        self.dx = MatmulKernel(f"{name}_dx", params, (), tuple(tile), tuning="matmul_grad")
        self.dw = MatmulKernel(f"{name}_dw", params, (), tuple(tile), tuning="matmul_grad")
        self.dw_db: MatmulKernel | None = None
        if sums:
            add = ["if pid_n == 0:"]
            for j, v in enumerate(sums):
                if v == "a":  # zero past the depth already
                    add.append(f"    rs{j} += tl.sum(a.to(tl.float32), 1)")
                else:
                    add += ["    if EVEN_K:", f"        rs{j} += tl.sum({v}, 1)", "    else:",
                            f"        rs{j} += tl.sum(tl.where(kk[None, :] < K, {v}, 0.0), 1)"]
            store = ["if pid_n == 0:"] + [
                f"    tl.store(r{j}_ptr + offs_m * r{j}_s, rs{j}.to(r{j}_ptr.dtype.element_ty), "
                "mask=offs_m < M)" for j in range(len(sums))]
            self.dw_db = MatmulKernel(
                f"{name}_dw_db", params + "".join(f"r{j}_ptr, r{j}_s, " for j in range(len(sums))),
                tuple(store), (*tile, *add),
                tuple(f"rs{j} = tl.zeros((BLOCK_M,), dtype=tl.float32)" for j in range(len(sums))),
                tuning="matmul_grad")

    @staticmethod
    def _load(i: int, o: _Operand, masked: bool) -> str:
        v = o.var
        cast = "" if v is not None and tensor_of(v).dtype is DT.BOOL else ".to(tl.float32)"
        mask = ", mask=kk[None, :] < K, other=0" if masked else ""
        return (f"p{i} = tl.load(p{i}_ptr + (rows[:, None] * p{i}_sr + kk[None, :] * p{i}_sc)"
                f"{mask}){cast}")


class MatmulBackward:
    """The backward of one ``MatmulLauncher``'s kernel (see the module's docstring)."""

    def __init__(self, launcher: MatmulLauncher) -> None:
        self.launcher = L = launcher
        g = L.group
        self.z = L.mm.outs[0]
        epi = tuple(e for e in g.eqns if e is not L.mm and e is not L.t)
        self.epilogue: Group | None = None  # the epilogue alone: inputs Z, then the others
        if epi:
            defined = {o.id for e in epi for o in e.outs}
            found: list[Var] = [self.z]
            for e in epi:
                for a in e.ins:
                    if isinstance(a, Var) and a.id not in defined and a not in found:
                        found.append(a)
            self.epilogue = Group("pointwise", f"{g.name}_epilogue", g.shape, epi,
                                  tuple(found), g.outputs)
        self._products: dict[tuple[Any, ...], _Products | None] = {}
        self._derivatives: dict[tuple, tuple[Derivative, GroupLauncher]] = {}
        # whether any gradient reads Z (not for an epilogue linear in Z: a bias or a residual
        # added), so that the forward stores it
        self.reads_z = False
        if self.epilogue is not None:
            sub = self.epilogue
            try:
                d = derivative(sub, tuple(True for _ in sub.outputs), tuple(
                    isinstance(a.type, TTensor) for a in sub.inputs))
            except NotDifferentiable:  # said by the backward, if one runs
                self.reads_z = True
            else:
                self.reads_z = self.z.id in _live(d.group, d.group.outputs)
        self._saving: MatmulLauncher | None = None
        # which of the epilogue's inputs are vectors along N (Z, first, is not)
        self.vectors: tuple[bool, ...] = () if self.epilogue is None else tuple(
            i > 0 and isinstance(a.type, TTensor) and len(a.type.shape.dims) == 1 and
            a.type.shape.row is None for i, a in enumerate(self.epilogue.inputs))

    def saving(self) -> MatmulLauncher | None:
        """The launcher of the same kernel that also stores Z (the forward of a training
        step); None when no gradient reads Z, or Z is an output already."""
        L = self.launcher
        if not self.reads_z or self.z in L.group.outputs:
            return None
        if self._saving is None:
            with _LOCK:
                if self._saving is None:
                    g = L.group
                    self._saving = MatmulLauncher(Group(
                        g.kind, f"{g.name}_saving", g.shape, g.eqns, g.inputs,
                        (self.z, *g.outputs)))
        return self._saving

    # ------------------------------------------------------------------ kernels
    def products(self, with_grad: tuple[bool, ...], bias: bool,
                 summed: tuple[bool, ...]) -> _Products | None:
        """The gradient products when the outputs ``with_grad`` marks have gradients, the
        weight's also summing the gradients of ``linear``'s bias (``bias``) and of the
        epilogue's vectors ``summed`` marks; None when no gradient reaches Z."""
        key = (with_grad, bias, summed)
        if key not in self._products:
            with _LOCK:
                if key not in self._products:
                    self._products[key] = self._make(with_grad, bias, summed)
        return self._products[key]

    def _make(self, with_grad: tuple[bool, ...], bias: bool,
              summed: tuple[bool, ...]) -> _Products | None:
        name = self.launcher.name + "_grad" + "".join("1" if w else "0" for w in with_grad)
        if bias or any(summed):
            name += "_" + "".join("1" if w else "0" for w in (bias, *summed[1:]))
        if self.epilogue is None:  # the product is the output: dZ is its gradient
            if not with_grad[0]:
                return None
            return _Products(name, [_Operand("grad", None, 0, False)], [], [], "p0",
                             ("a",) if bias else (), (-1,) if bias else ())
        sub = self.epilogue
        d = derivative(sub, with_grad, (True, *summed[1:]))
        if d.grads_for[0] is None:
            return None
        # the values dZ and the summed gradients depend on, and the operands they read
        used = [d.group.outputs[j] for j, w in zip(d.grads_for, (True, *summed[1:]))
                if w and j is not None]
        live = _live(d.group, used)
        pruned = Group("pointwise", d.group.name, d.group.shape,
                       tuple(e for e in d.group.eqns if any(o.id in live for o in e.outs)),
                       tuple(a for a in d.group.inputs if a.id in live), tuple(used))
        body = _Body(pruned, "tl.float32")
        body.names = {}
        operands: list[_Operand] = []
        outs_with_grad = [i for i, w in enumerate(with_grad) if w]
        vectors = self.vectors
        for i, a in enumerate(body.tensor_inputs):
            body.names[a.id] = f"p{i}"
            pos = next((j for j, v in enumerate(sub.inputs) if v.id == a.id), None)
            if pos == 0:
                operands.append(_Operand("z", a, 0, False))
            elif pos is not None:
                operands.append(_Operand("input", a, pos, vectors[pos]))
            else:  # the gradients follow the forward inputs, one per output with one
                k = next(j for j, v in enumerate(d.group.inputs) if v.id == a.id)
                operands.append(_Operand("grad", a, outs_with_grad[k - len(sub.inputs)],
                                         False))
        for i, s in enumerate(body.scalar_inputs):
            body.names[s.id] = f"s{i}"
        lines = body.statements()
        dz = body.names[d.group.outputs[d.grads_for[0]].id]
        targets = [(-1, "a")] if bias else []
        targets += [(i, body.names[d.group.outputs[j].id])
                    for i, (j, w) in enumerate(zip(d.grads_for, summed)) if w and j is not None]
        return _Products(name, operands, list(body.scalar_inputs), lines, dz,
                         tuple(v for _, v in targets), tuple(i for i, _ in targets))

    def epilogue_derivative(self, with_grad: tuple[bool, ...],
                            needs: tuple[bool, ...]) -> tuple[Derivative, GroupLauncher]:
        """The epilogue's derivative as a pointwise kernel: the gradients of the epilogue's
        inputs ``needs`` marks (Z first)."""
        key = (with_grad, needs)
        found = self._derivatives.get(key)
        if found is None:
            assert self.epilogue is not None
            d = derivative(self.epilogue, with_grad, needs)
            found = self._derivatives[key] = (d, GroupLauncher(d.group))
        return found

    # ------------------------------------------------------------------ plans
    def _matrices(self, vals: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """X, B's [K, N] matrix, and whether the weight is stored transposed ([N, K])."""
        L = self.launcher
        x = vals[L.lhs.id]
        if L.t_input is not None:
            return x, vals[L.t_input.id].t(), True
        w = vals[L.rhs.id]
        return x, (w.t() if L.is_linear else w), L.is_linear

    def _operand_tensors(self, p: _Products, vals: dict[int, Any], z: Any,
                         grads: tuple[Any, ...], lead: tuple[int, ...],
                         n: int) -> list[torch.Tensor]:
        """The tensors dZ's tiles are computed from: [M, N] matrices (views where the
        strides allow), and vectors along N."""
        out = []
        for o in p.operands:
            if o.role == "z":
                t = z
            elif o.role == "grad":
                t = grads[o.index]
            else:
                assert o.var is not None
                t = vals[o.var.id]
            out.append(t if o.vector else _matrix(t, lead, n))
        return out

    @staticmethod
    def _operand_args(p: _Products, tensors: list[torch.Tensor], vals: dict[int, Any],
                      rows: int, cols: int, transpose: bool
                      ) -> tuple[list[Any], list[tuple[int, int, int, int]]]:
        """The prologue's runtime arguments for a product whose A is dZ [M, N] (``transpose``:
        dZ.T), with each operand's extent (``rows`` x ``cols`` of A, and its strides along
        them) for ``offsets_fit``."""
        args: list[Any] = []
        tiles: list[tuple[int, int, int, int]] = []
        for o, t in zip(p.operands, tensors):
            if o.vector:
                s = (t.stride(0), 0) if transpose else (0, t.stride(0))
            else:
                s = (t.stride(1), t.stride(0)) if transpose else (t.stride(0), t.stride(1))
            args += [t, *s]
            tiles.append((rows, cols, *s))
        args += [vals[s.id] for s in p.scalars]
        return args, tiles

    def _plans(self, vals: dict[int, Any], z: Any, grads: tuple[Any, ...],
               need: dict[int, bool]) -> tuple[list[tuple[Var, Any, Any, Any]],
                                                tuple[bool, ...]] | None:
        """The gradient product launches for the inputs ``need`` marks (by var id), as (the
        input, kernel or None, plan, its gradient), and which of the epilogue's inputs
        (vectors along N) the weight's product sums the gradients of. None where the
        kernels do not take the values (offsets past 32 bits, a bias's gradient without the
        weight's, no gradient reaching Z)."""
        L = self.launcher
        weight = L.t_input if L.t_input is not None else L.rhs
        bias = L.bias is not None and bool(need.get(L.bias.id))
        with_weight = bool(need.get(weight.id))
        if bias and not with_weight:
            return None
        summed = tuple(v and with_weight and bool(need.get(a.id))
                       for v, a in zip(self.vectors, self.epilogue.inputs)
                       ) if self.epilogue is not None else ()
        p = self.products(tuple(gr is not None for gr in grads), bias, summed)
        if p is None:
            return None
        x, b_mat, transposed = self._matrices(vals)
        k, n = b_mat.shape
        lead = tuple(x.shape[:-1])
        m = math.prod(lead)
        tensors = self._operand_tensors(p, vals, z, grads, lead, n)
        # A's own pointer is not read (the prologue computes A): dZ's first [M, N] operand
        g2 = next(t for t, o in zip(tensors, p.operands) if not o.vector)
        vec = all(aligned(t) for t in tensors)
        out: list[tuple[Var, Any, Any, Any]] = []
        if need.get(L.lhs.id):
            args, tiles = self._operand_args(p, tensors, vals, m, n, False)
            if not offsets_fit(m, k, n, g2.stride(), b_mat.t().stride(), tiles):
                return None
            dx = torch.empty((m, k), dtype=x.dtype, device=x.device)
            out.append((L.lhs, p.dx, p.dx.plan(g2, b_mat.t(), (dx,), tuple(args), vec),
                        dx.view(x.shape)))
        if with_weight:
            a2 = x.reshape(m, k)
            args, tiles = self._operand_args(p, tensors, vals, n, m, True)
            if not offsets_fit(n, k, m, g2.t().stride(), a2.stride(), tiles):
                return None
            w = vals[weight.id]
            dw = torch.empty(w.shape, dtype=w.dtype, device=w.device)
            c = dw if transposed else dw.t()
            sums: list[tuple[Var, Any, Any, Any]] = []
            for pos in p.sum_targets:
                v = L.bias if pos < 0 else self.epilogue.inputs[pos]  # type: ignore[union-attr]
                assert v is not None
                t = torch.empty((n,), dtype=vals[v.id].dtype, device=x.device)
                args += [t, 1]
                sums.append((v, None, None, t))
            kernel = p.dw_db if sums else p.dw
            assert kernel is not None
            out.append((weight, kernel, kernel.plan(g2.t(), a2, (c,), tuple(args), vec), dw))
            out += sums  # after the kernel that computes them
        return out, summed

    # ------------------------------------------------------------------ running
    def __call__(self, values: tuple[Any, ...], saved: tuple[Any, ...],
                 grads: tuple[Any, ...], needs: tuple[bool, ...]) -> tuple[Any, ...]:
        L = self.launcher
        g = L.group
        vals = dict(zip(L._ids, values))
        need = {a.id: n for a, n in zip(g.inputs, needs)}
        acc: dict[int, Any] = {}

        def add(v: Var, grad: Any) -> None:
            if grad is None or not need.get(v.id):
                return
            grad = grad.sum_to_size(vals[v.id].shape) if grad.shape != vals[v.id].shape \
                else grad
            acc[v.id] = grad if v.id not in acc else acc[v.id] + grad

        if any(gr is not None for gr in grads):
            z = saved[0] if saved else None
            plans = self._plans(vals, z, grads, need)
            if self.epilogue is not None:  # the gradients of the epilogue's other inputs
                summed = plans[1] if plans is not None else ()
                wanted = tuple(i > 0 and bool(need.get(a.id)) and not (
                    summed and summed[i]) for i, a in enumerate(self.epilogue.inputs))
                if any(wanted):
                    for a, gr in zip(self.epilogue.inputs,
                                     self._epilogue_grads(z, vals, grads, wanted)):
                        add(a, gr)
            if plans is None:
                self._unfused(vals, z, grads, need, add)
            else:
                for v, kernel, plan, t in plans[0]:
                    if kernel is not None:
                        kernel.launch(plan)
                    add(v, t)
        return tuple(acc.get(a.id) if isinstance(a.type, TTensor) else None for a in g.inputs)

    def _epilogue_grads(self, z: Any, vals: dict[int, Any], grads: tuple[Any, ...],
                        wanted: tuple[bool, ...]) -> list[Any]:
        """The gradients of the epilogue's inputs ``wanted`` marks (Z first), from the
        epilogue's derivative kernel, each of the shape of the product (the caller reduces
        those of broadcast inputs)."""
        assert self.epilogue is not None
        with_grad = tuple(gr is not None for gr in grads)
        d, launch = self.epilogue_derivative(with_grad, wanted)
        # Z not stored (no gradient reads it): an upstream gradient, of its shape, holds
        # its place
        zval = z if z is not None else next(gr for gr in grads if gr is not None)
        ins = tuple(zval if i == 0 else vals[a.id] for i, a in enumerate(self.epilogue.inputs))
        args = (*ins, *(gr for gr in grads if gr is not None))
        if not d.group.outputs:
            return [None] * len(ins)
        full = zval.shape
        if launch.ok(*args):
            outs = launch(*args)
            outs = outs if isinstance(outs, tuple) else (outs,)
        else:  # past the kernel's 32-bit offsets: torch's autograd over the epilogue
            from gtdsl.lower.triton.autograd import torch_group_backward

            return list(torch_group_backward(self.epilogue, ins, grads, wanted))
        res: list[Any] = []
        for j in d.grads_for:
            if j is None:
                res.append(None)
                continue
            t = outs[j]
            res.append(t.expand(full) if t.shape != full else t)
        return res

    def _unfused(self, vals: dict[int, Any], z: Any, grads: tuple[Any, ...],
                 need: dict[int, bool], add: Any) -> None:
        """dZ by the epilogue's derivative kernel, then the products by ``matmul.mm``."""
        L = self.launcher
        if self.epilogue is None:
            dz = grads[0]
        else:
            wanted = (True,) + (False,) * (len(self.epilogue.inputs) - 1)
            dz = self._epilogue_grads(z, vals, grads, wanted)[0]
        if dz is None:
            return
        x, b_mat, transposed = self._matrices(vals)
        k, n = b_mat.shape
        a2 = x.reshape(-1, k)
        dz2 = dz.reshape(-1, n)
        if need.get(L.lhs.id):
            add(L.lhs, _mm(dz2, b_mat.t()).reshape(x.shape))
        weight = L.t_input if L.t_input is not None else L.rhs
        if need.get(weight.id):
            add(weight, _mm(dz2.t(), a2) if transposed else _mm(a2.t(), dz2))
        if L.bias is not None and need.get(L.bias.id):
            add(L.bias, dz2.sum(0))

    # ------------------------------------------------------------------ ahead of time
    def specs(self, *values: Any, target: tuple[int, int] | None = None) -> list[KernelSpec]:
        """The kernels a training step with ``values`` (real or meta tensors) compiles when
        every output has a gradient and every float input needs one: the forward that also
        stores Z, the gradient products, and the epilogue's derivative for its other
        inputs."""
        L = self.launcher
        g = L.group
        vals = dict(zip(L._ids, values))
        x, b_mat, _ = self._matrices(vals)
        lead = tuple(x.shape[:-1])
        n = b_mat.shape[1]
        z = torch.empty((*lead, n), dtype=_dtype(self.z), device=x.device)
        grads = tuple(torch.empty((*lead, n), dtype=_dtype(o), device=x.device)
                      if _dtype(o).is_floating_point else None for o in g.outputs)
        need = {a.id: isinstance(a.type, TTensor) and _dtype(a).is_floating_point
                for a in g.inputs}
        out: list[KernelSpec] = []
        saving = self.saving()
        if saving is not None:
            out += saving.specs(*values, target=target)
        plans = self._plans(vals, z, grads, need)
        for _, kernel, plan, _ in plans[0] if plans is not None else []:
            if kernel is not None:
                out += kernel.specs(plan, target)
        if self.epilogue is not None:
            summed = plans[1] if plans is not None else ()
            wanted = tuple(i > 0 and bool(need.get(a.id)) and not (summed and summed[i])
                           for i, a in enumerate(self.epilogue.inputs))
            if any(wanted):
                d, launch = self.epilogue_derivative(
                    tuple(gr is not None for gr in grads), wanted)
                if d.group.outputs:
                    ins = tuple(z if i == 0 else vals[a.id]
                                for i, a in enumerate(self.epilogue.inputs))
                    out += launch.specs(*ins, *(gr for gr in grads if gr is not None))
        return out


def _live(group: Group, outputs: tuple[Var, ...] | list[Var]) -> set[int]:
    """The ids of the values (inputs included) that ``outputs`` of ``group`` depend on."""
    live = {o.id for o in outputs}
    for e in reversed(group.eqns):
        if any(o.id in live for o in e.outs):
            live.update(a.id for a in e.ins if isinstance(a, Var))
    return live


def _dtype(v: Var) -> torch.dtype:
    from gtdsl.ops.calls import DT_TORCH

    return DT_TORCH[tensor_of(v).dtype]


def _matrix(t: torch.Tensor, lead: tuple[int, ...], n: int) -> torch.Tensor:
    """A value of the product's shape ([*lead, N], or broadcast to it) as [M, N], a view
    where its strides allow."""
    if tuple(t.shape) != (*lead, n):
        t = t.expand(*lead, n)
    if t.dim() == 2:
        return t
    return t.reshape(-1, n)


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A gradient's plain product: ``matmul.mm`` (looked up at the call)."""
    from gtdsl.lower.triton import matmul

    return matmul.mm(a, b)


__all__ = ["MatmulBackward"]
