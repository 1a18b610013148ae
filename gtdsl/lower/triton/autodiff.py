"""Reverse-mode derivatives of pointwise and row groups, as IR: the backward of a fused group is
another group of the same kind, run by the same kernel generator.

``derivative(group, with_grad, needs)`` returns a ``Derivative``: a ``Group`` whose block first
recomputes the forward block from the forward inputs (every forward value of a pointwise or
row group is cheap to recompute inside the kernel, so the forward saves nothing beyond its
inputs), then computes the adjoint of every value in reverse order, and yields the gradient of
each input that needs one. Its inputs are the forward inputs, then the gradient of each
forward output that has one, then (row groups) the row length as a number.

Shapes: every value of a pointwise group has the group's full shape; a row group's values
are full rows or row statistics (``[..., 1]``). An adjoint contribution to a row statistic
from a full row is summed along the row (the reverse of broadcasting a statistic); a
gradient for an input that was broadcast into the group is reduced to the input's shape by
the caller (``Tensor.sum_to_size``), so the block yields full-shaped gradients.

The rules are those of torch's derivatives (``tools/autograd/derivatives.yaml``): ties of
``maximum``/``minimum`` split the gradient in halves, ``amax``/``amin`` share it evenly
between the maxima, ``relu`` passes it where the input is positive, ``clamp`` where the input
lies within the bounds, comparisons and logical ops have none.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gtdsl.ir.core import Atom, Eqn, Lit, Op, Var
from gtdsl.lower.triton.base import Group
from gtdsl.lower.triton.fusion import _args, _same_shape, _stat_shape, op_name
from gtdsl.types import DT, ScalarKind, TScalar, TTensor

# ops whose output carries no gradient (bool results, or integer-valued steps)
NO_GRAD = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not"}


class NotDifferentiable(Exception):
    """A group holds an op the derivative rules do not cover."""


@dataclass(frozen=True)
class Derivative:
    """The backward group of a forward group; ``grads_for[i]``: the index among the backward
    group's outputs of forward input ``i``'s gradient, or None (no gradient flows to it)."""

    group: Group
    grads_for: tuple[int | None, ...]
    n_grads: int  # how many forward-output gradients the backward group takes
    takes_row_length: bool  # a row length argument follows the gradients


def derivative(group: Group, with_grad: tuple[bool, ...], needs: tuple[bool, ...]) -> Derivative:
    """The backward of ``group`` (pointwise or row) for the forward outputs ``with_grad`` marks
    as having a gradient and the forward inputs ``needs`` marks as needing one."""
    if group.kind not in ("pointwise", "row"):
        raise ValueError(f"derivative() takes pointwise and row groups, not {group.kind}")
    return _Reverse(group).run(with_grad, needs)


class _Reverse:
    def __init__(self, group: Group) -> None:
        self.g = group
        self.row = group.kind == "row"
        self.stat = _stat_shape(group.shape) if self.row and group.shape.dims else group.shape
        first = max([v.id for v in group.inputs] +
                    [o.id for e in group.eqns for o in e.outs], default=0) + 1
        self.ids: Iterator[int] = itertools.count(first)
        self.eqns: list[Eqn] = []
        self.full: dict[int, bool] = {v.id: True for v in group.inputs}
        for e in group.eqns:
            for o in e.outs:
                self.full[o.id] = not self.row or _same_shape(
                    o.type.shape if isinstance(o.type, TTensor) else None, group.shape)
        f64 = any(isinstance(v.type, TTensor) and v.type.dtype is DT.F64
                  for v in [*group.inputs, *(o for e in group.eqns for o in e.outs)])
        self.dtype = DT.F64 if f64 else DT.F32
        self.n: Var | None = None  # the row length, when a rule needs it

    # ------------------------------------------------------------------ building eqns
    def is_full(self, a: Atom) -> bool:
        return isinstance(a, Var) and self.full.get(a.id, True)

    def emit(self, name: str, args: list[tuple[str, Atom]], dtype: DT | None = None,
             full: bool | None = None) -> Var:
        if full is None:
            full = any(self.is_full(a) for _, a in args
                       if isinstance(a, Var) and isinstance(a.type, TTensor))
        out = Var(next(self.ids), name, TTensor(dtype or self.dtype,
                                                 self.g.shape if full else self.stat))
        self.full[out.id] = full
        self.eqns.append(Eqn(Op(name), tuple(a for _, a in args), (out,),
                             (("names", tuple(k for k, _ in args)),)))
        return out

    def lit(self, v: float) -> Lit:
        return Lit(float(v), TScalar(ScalarKind.FLOAT))

    def bin(self, name: str, a: Atom, b: Atom) -> Var:
        return self.emit(name, [("input", a), ("other", b)])

    def mul(self, a: Atom, b: Atom) -> Var:
        return self.bin("mul", a, b)

    def scale(self, a: Atom, c: float) -> Var:
        return self.bin("mul", a, self.lit(c))

    def un(self, name: str, a: Atom) -> Var:
        return self.emit(name, [("input", a)])

    def where(self, c: Atom, a: Atom, b: Atom) -> Var:
        return self.emit("where", [("condition", c), ("input", a), ("other", b)])

    def cmp(self, name: str, a: Atom, b: Atom) -> Var:
        return self.emit(name, [("input", a), ("other", b)], DT.BOOL)

    def row_sum(self, a: Atom) -> Var:
        return self.emit("sum", [("input", a), ("dim", Lit(-1, TScalar(ScalarKind.INT))),
                                 ("keepdim", Lit(True, TScalar(ScalarKind.BOOL)))], full=False)

    def row_mean(self, a: Atom) -> Var:
        return self.bin("div", self.row_sum(a), self.length())

    def length(self) -> Var:
        if self.n is None:
            self.n = Var(next(self.ids), "row_length", TScalar(ScalarKind.INT))
            self.full[self.n.id] = False
        return self.n

    def cast(self, v: Var, dtype: DT) -> Var:
        t = v.type
        if isinstance(t, TTensor) and t.dtype is dtype:
            return v
        return self.emit("to", [("input", v), ("dtype", Lit(dtype, TScalar(ScalarKind.INT))),
                                ("device", Lit(None, TScalar(ScalarKind.INT)))], dtype,
                         full=self.is_full(v))

    # ------------------------------------------------------------------ the pass
    def run(self, with_grad: tuple[bool, ...], needs: tuple[bool, ...]) -> Derivative:
        g = self.g
        adj: dict[int, list[Var]] = {}
        grad_ins: list[Var] = []
        for o, has in zip(g.outputs, with_grad):
            if has:
                gv = Var(next(self.ids), f"grad_{o.hint}", o.type)
                self.full[gv.id] = self.is_full(o)
                grad_ins.append(gv)
                adj.setdefault(o.id, []).append(gv)
        for e in reversed(g.eqns):
            o = e.outs[0]
            if o.id not in adj:
                continue
            gy = self.total(o, adj.pop(o.id))
            for a, c in self.rule(e, gy):
                if isinstance(a, Var) and isinstance(a.type, TTensor) and \
                        a.type.dtype is not DT.BOOL:
                    if not self.is_full(a) and self.is_full(c):
                        c = self.row_sum(c)  # a statistic broadcast along the row
                    elif self.is_full(a) and not self.is_full(c):
                        # a full row's adjoint, constant along the row: typed full, so a
                        # statistic it reaches sums it along the row
                        c = self.emit("add", [("input", c), ("other", self.lit(0.0))],
                                      full=True)
                    adj.setdefault(a.id, []).append(c)
        outs: list[Var] = []
        grads_for: list[int | None] = []
        for v, need in zip(g.inputs, needs):
            if need and v.id in adj and isinstance(v.type, TTensor):
                total = self.total(v, adj[v.id])
                grads_for.append(len(outs))
                outs.append(self.cast(total, v.type.dtype))
            else:
                grads_for.append(None)
        extra = [self.n] if self.n is not None else []
        back = Group(g.kind, f"{g.name}_bwd", g.shape, (*g.eqns, *self.eqns),
                     (*g.inputs, *grad_ins, *extra), tuple(outs))
        return Derivative(back, tuple(grads_for), len(grad_ins), self.n is not None)

    def total(self, v: Var, parts: list[Var]) -> Var:
        out = parts[0]
        for p in parts[1:]:
            out = self.bin("add", out, p)
        return out

    def rule(self, e: Eqn, gy: Var) -> list[tuple[Atom, Var]]:
        """Each input of ``e`` with its adjoint contribution, given the adjoint ``gy`` of its
        output."""
        name = op_name(e)
        if name is None:
            raise NotDifferentiable(f"{e.op.name} has no derivative rule")
        if name in NO_GRAD:
            return []
        a = _args(e)
        y = e.outs[0]
        x = a.get("input")
        if x is None:
            raise NotDifferentiable(f"{name} without an input")
        if name in ("add", "sub"):
            other = a["other"]
            return [(x, gy), (other, gy if name == "add" else self.un("neg", gy))]
        if name == "mul":
            return [(x, self.mul(gy, a["other"])), (a["other"], self.mul(gy, x))]
        if name == "div":
            b = a["other"]
            gx = self.bin("div", gy, b)
            return [(x, gx), (b, self.un("neg", self.mul(gx, y)))]
        if name in ("maximum", "minimum"):
            b = a["other"]
            wins = self.cmp("gt" if name == "maximum" else "lt", x, b)
            tie = self.cmp("eq", x, b)
            half = self.scale(gy, 0.5)
            zero = self.lit(0.0)
            ga = self.where(wins, gy, self.where(tie, half, zero))
            gb = self.where(wins, zero, self.where(tie, half, gy))
            return [(x, ga), (b, gb)]
        if name == "where":
            zero = self.lit(0.0)
            c = a["condition"]
            return [(x, self.where(c, gy, zero)), (a["other"], self.where(c, zero, gy))]
        if name == "to" or name == "pow" and isinstance(a["other"], Lit) and \
                a["other"].value == 1:
            return [(x, gy)]
        if name == "neg":
            return [(x, self.un("neg", gy))]
        if name == "clamp":
            keep: Var | None = None
            for k, test in (("min", "ge"), ("max", "le")):
                bound = a.get(k)
                if bound is not None and not (isinstance(bound, Lit) and bound.value is None):
                    t = self.cmp(test, x, bound)
                    keep = t if keep is None else self.emit(
                        "logical_and", [("input", keep), ("other", t)], DT.BOOL)
            return [(x, gy if keep is None else self.where(keep, gy, self.lit(0.0)))]
        if name == "pow":
            p = a["other"].value if isinstance(a["other"], Lit) else None
            if not isinstance(p, (int, float)):
                raise NotDifferentiable("pow with a tensor exponent")
            return [(x, self.mul(gy, self.dpow(x, float(p))))]
        if name in ("sum", "mean", "amax", "amin"):
            return [(x, self.reduce_rule(name, x, y, gy))]
        if name == "softmax":
            s = self.row_sum(self.mul(gy, y))
            return [(x, self.mul(y, self.bin("sub", gy, s)))]
        if name == "log_softmax":
            s = self.row_sum(gy)
            return [(x, self.bin("sub", gy, self.mul(self.un("exp", y), s)))]
        if name in ("layer_norm", "rms_norm"):
            return self.norm_rule(name, a, gy)
        if name == "gelu":
            return [(x, self.mul(gy, self.dgelu(x, a.get("approximate"))))]
        return [(x, self.mul(gy, self.dunary(name, x, y)))]

    def dunary(self, name: str, x: Atom, y: Var) -> Var:
        """d y / d x of a unary op ``y = name(x)``."""
        if name == "exp":
            return y
        if name == "exp2":
            return self.scale(y, math.log(2.0))
        if name == "log":
            return self.bin("div", self.lit(1.0), x)
        if name == "log2":
            return self.bin("div", self.lit(1.0 / math.log(2.0)), x)
        if name == "sqrt":
            return self.bin("div", self.lit(0.5), y)
        if name == "rsqrt":
            return self.scale(self.mul(self.mul(y, y), y), -0.5)
        if name == "abs":
            zero = self.lit(0.0)
            return self.where(self.cmp("gt", x, zero), self.lit(1.0),
                              self.where(self.cmp("lt", x, zero), self.lit(-1.0), zero))
        if name == "sin":
            return self.un("cos", x)
        if name == "cos":
            return self.un("neg", self.un("sin", x))
        if name == "erf":
            return self.scale(self.un("exp", self.un("neg", self.mul(x, x))),
                              2.0 / math.sqrt(math.pi))
        if name == "tanh":
            return self.bin("sub", self.lit(1.0), self.mul(y, y))
        if name == "sigmoid":
            return self.mul(y, self.bin("sub", self.lit(1.0), y))
        if name == "relu":
            return self.where(self.cmp("gt", y, self.lit(0.0)), self.lit(1.0), self.lit(0.0))
        if name == "silu":
            s = self.un("sigmoid", x)
            one_minus = self.bin("sub", self.lit(1.0), s)
            return self.mul(s, self.bin("add", self.lit(1.0), self.mul(x, one_minus)))
        raise NotDifferentiable(f"{name} has no derivative rule")

    def dpow(self, x: Atom, p: float) -> Var:
        if p == 2.0:
            return self.scale(x, 2.0)
        if p == 3.0:
            return self.scale(self.mul(x, x), 3.0)
        if p == 0.5:
            return self.scale(self.un("rsqrt", x), 0.5)
        if p == -1.0:
            return self.un("neg", self.bin("div", self.lit(1.0), self.mul(x, x)))
        if p == -0.5:
            r = self.un("rsqrt", x)
            return self.scale(self.bin("div", r, x), -0.5)
        raise NotDifferentiable(f"pow with exponent {p}")

    def dgelu(self, x: Atom, approximate: Atom | None) -> Var:
        if isinstance(approximate, Lit) and approximate.value == "tanh":
            k = math.sqrt(2.0 / math.pi)
            c = 0.044715
            x2 = self.mul(x, x)
            inner = self.scale(self.bin("add", x, self.scale(self.mul(x2, x), c)), k)
            t = self.un("tanh", inner)
            left = self.scale(self.bin("add", self.lit(1.0), t), 0.5)
            dt = self.bin("sub", self.lit(1.0), self.mul(t, t))
            dinner = self.scale(self.bin("add", self.lit(1.0), self.scale(x2, 3.0 * c)), k)
            right = self.scale(self.mul(self.mul(x, dt), dinner), 0.5)
            return self.bin("add", left, right)
        cdf = self.scale(self.bin("add", self.lit(1.0),
                                  self.un("erf", self.scale(x, 1.0 / math.sqrt(2.0)))), 0.5)
        pdf = self.scale(self.un("exp", self.scale(self.mul(x, x), -0.5)),
                         1.0 / math.sqrt(2.0 * math.pi))
        return self.bin("add", cdf, self.mul(x, pdf))

    def reduce_rule(self, name: str, x: Atom, y: Var, gy: Var) -> Var:
        """The adjoint of a row reduction's input (the gradient broadcast along the row)."""
        if name == "sum":
            return gy
        if name == "mean":
            return self.bin("div", gy, self.length())
        hit = self.cmp("eq", x, y)
        count = self.row_sum(self.where(hit, self.lit(1.0), self.lit(0.0)))
        return self.where(hit, self.bin("div", gy, count), self.lit(0.0))

    def norm_rule(self, name: str, a: dict[str, Atom], gy: Var) -> list[tuple[Atom, Var]]:
        """layer_norm and rms_norm, their statistics recomputed from the input."""
        x = a["input"]
        eps = a.get("eps")
        if eps is None or isinstance(eps, Lit) and eps.value is None:
            dt = x.type.dtype if isinstance(x.type, TTensor) else DT.F32
            from gtdsl.ops.calls import DT_TORCH

            eps = self.lit(torch.finfo(DT_TORCH[dt]).eps)
        if name == "layer_norm":
            d = self.bin("sub", x, self.row_mean(x))
            rstd = self.un("rsqrt", self.bin("add", self.row_mean(self.mul(d, d)), eps))
            xhat = self.mul(d, rstd)
        else:
            rstd = self.un("rsqrt", self.bin("add", self.row_mean(self.mul(x, x)), eps))
            xhat = self.mul(x, rstd)
        w = a.get("weight")
        dxhat = self.mul(gy, w) if isinstance(w, Var) else gy
        proj = self.row_mean(self.mul(dxhat, xhat))
        if name == "layer_norm":
            inner = self.bin("sub", self.bin("sub", dxhat, self.row_mean(dxhat)),
                             self.mul(xhat, proj))
        else:
            inner = self.bin("sub", dxhat, self.mul(xhat, proj))
        out: list[tuple[Atom, Var]] = [(x, self.mul(inner, rstd))]
        if isinstance(w, Var):
            out.append((w, self.mul(gy, xhat)))
        b = a.get("bias")
        if isinstance(b, Var):
            out.append((b, gy))
        return out


__all__ = ["Derivative", "NotDifferentiable", "derivative"]
