"""Triton kernels for ``KERNEL`` eqns: source generation and the launchers that run them.

``launcher_for(eqn)`` builds the launcher of a ``KERNEL`` eqn (``gtdsl.lower.triton.fusion``)
from its ``kernel`` parameter, its inputs and its block. A launcher is called by the
generated host code with the eqn's inputs (tensors and numbers) and returns its outputs. It
reads sizes and strides at run time and passes them to the kernel as arguments, so one
compiled kernel serves every size; the kernel source depends only on the kernel, the rank,
and (for rows) the power-of-two block holding a row. Triton adds its own specializations (an
integer argument equal to 1 or divisible by 16, aligned pointers) on top, as it does for any
kernel.

What a kernel assumes is guaranteed before it runs: dtypes and ranks by the function's
types and the specialization key, equal sizes by the entry casts (the checker proved every
size relation inside the function), one device by the call-device rule. Broadcasting is
done with zero strides computed from the real shapes, never assumed.
"""

from __future__ import annotations

import linecache
import os
import threading
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl._resources import data_path
from gtdsl.ir.core import Atom, Eqn, Function, Lit, Op, Var
from gtdsl.lower.triton.exprs import TL_DTYPE, elementwise, literal
from gtdsl.lower.triton.fusion import Kernel, _args, op_name, tensor_of
from gtdsl.types import DT, TScalar, TShape, TTensor

_LOCK = threading.Lock()
MAX_ROW = 1 << 15  # longer rows run as torch ops (a row lives in registers)
INT32 = (1 << 31) - 1  # kernels index with 32-bit offsets: larger tensors run as torch ops


def fits_int32(values: Any) -> bool:
    """Every element offset of every tensor argument fits the kernels' 32-bit arithmetic."""
    for t in values:
        if isinstance(t, torch.Tensor) and t.numel():
            extent = sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride())) + 1
            if extent > INT32 or t.numel() > INT32:
                return False
    return True


def triton_modules() -> tuple[Any, Any]:
    """``triton`` and ``triton.language``; the interpreter is switched on first when this
    machine has no CUDA device (it must be chosen before triton is imported)."""
    import sys

    if "triton" not in sys.modules and not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import triton
    import triton.language as tl

    return triton, tl


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _compile(name: str, source: str) -> Any:
    """``source`` defines ``name``, decorated with ``@triton.jit``: register it where
    ``inspect`` finds it (Triton reads a kernel's source) and execute it."""
    triton, tl = triton_modules()
    filename = f"<gtdsl-triton {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"triton": triton, "tl": tl}
    exec(compile(source, filename, "exec"), ns)  # noqa: S102 - generated from the IR
    return ns[name]


# ====================================================================== group bodies


@dataclass(frozen=True, slots=True)
class Group:
    """A ``KERNEL`` eqn as its launcher reads it: the kernel's kind, name and iteration shape,
    the eqns of its block (its ``YIELD`` left out), its inputs and the block's values it
    stores (the ``YIELD``'s)."""

    kind: str
    name: str
    shape: TShape
    eqns: tuple[Eqn, ...]
    inputs: tuple[Var, ...]
    outputs: tuple[Var, ...]

    @classmethod
    def of(cls, eqn: Eqn) -> Group:
        if eqn.op is not Op.KERNEL:
            raise ValueError(f"a launcher runs a KERNEL eqn, not {eqn.op.name}")
        k: Kernel = eqn.param("kernel")
        *body, last = eqn.blocks[0].eqns
        return cls(k.kind, k.name, k.shape, tuple(body), _vars(eqn.ins), _vars(last.ins))


def _var(a: Atom) -> Var:
    """``a``, where the fusion pass guarantees a var: a ``KERNEL`` eqn's inputs and its block's
    yielded values (a kernel takes and hands out values, never literals), a matrix product's
    tensor operands."""
    if not isinstance(a, Var):
        raise ValueError(f"a kernel operand is a var, not the literal {a}")
    return a


def _vars(atoms: tuple[Atom, ...]) -> tuple[Var, ...]:
    return tuple(_var(a) for a in atoms)


class _Body:
    """The group's eqns as Triton statements over named values."""

    def __init__(self, group: Group, compute: str) -> None:
        self.group = group
        self.compute = compute
        self.names: dict[int, str] = {}  # var id -> kernel value name
        self.kinds: dict[int, str] = {}  # var id -> "full" | "stat"
        self.tensor_inputs = [a for a in group.inputs if isinstance(a.type, TTensor)]
        # numbers become kernel arguments; other inputs (a normalized_shape tuple) only
        # describe what the types already fixed
        self.scalar_inputs = [a for a in group.inputs if isinstance(a.type, TScalar)]
        for i, a in enumerate(self.tensor_inputs):
            self.names[a.id] = f"x{i}"
            self.kinds[a.id] = "full"
        for i, a in enumerate(self.scalar_inputs):
            self.names[a.id] = f"s{i}"
            self.kinds[a.id] = "stat"

    def atom(self, a: Atom) -> str:
        if isinstance(a, Var):
            return self.names[a.id]
        return literal(a.value)

    def statements(self, n_cols: str | None = None) -> list[str]:
        out: list[str] = []
        for e in self.group.eqns:
            name = op_name(e)
            if name is None:
                raise ValueError(f"a kernel's block holds catalogue ops, not {e.op.name}")
            if name in ("T", "matmul", "linear"):
                continue
            args = _args(e)
            o = e.outs[0]
            v = f"v{o.id}"
            exprs = {k: self.atom(a) for k, a in args.items()
                     if isinstance(a, Var) and a.id in self.names or isinstance(a, Lit) and
                     isinstance(a.value, (int, float)) and not isinstance(a.value, bool)
                     and k not in ("dim", "keepdim")}
            lits = {k: a.value for k, a in args.items() if isinstance(a, Lit)}
            kind = "full"
            if name in ("sum", "mean", "amax", "amin"):
                x = exprs["input"]
                fill = {"amax": "float('-inf')", "amin": "float('inf')"}.get(name, "0.0")
                red = {"sum": "tl.sum", "mean": "tl.sum", "amax": "tl.max", "amin": "tl.min"}
                out.append(f"{v} = {red[name]}(tl.where(mask, {x}, {fill}), axis=0)")
                if name == "mean":
                    out.append(f"{v} = {v} / {n_cols}")
                kind = "stat"
            elif name in ("softmax", "log_softmax"):
                x = exprs["input"]
                out += [f"{v}_m = tl.max(tl.where(mask, {x}, float('-inf')), axis=0)",
                        f"{v}_e = tl.where(mask, tl.exp({x} - {v}_m), 0.0)",
                        f"{v}_s = tl.sum({v}_e, axis=0)"]
                out.append(f"{v} = {v}_e / {v}_s" if name == "softmax" else
                           f"{v} = {x} - {v}_m - tl.log({v}_s)")
            elif name in ("layer_norm", "rms_norm"):
                x = exprs["input"]
                eps = exprs.get("eps", "eps_default")
                if name == "layer_norm":
                    out += [f"{v}_mu = tl.sum(tl.where(mask, {x}, 0.0), axis=0) / {n_cols}",
                            f"{v}_d = tl.where(mask, {x} - {v}_mu, 0.0)",
                            f"{v}_var = tl.sum({v}_d * {v}_d, axis=0) / {n_cols}",
                            f"{v} = {v}_d * tl.rsqrt({v}_var + {eps})"]
                else:
                    out += [f"{v}_ms = tl.sum(tl.where(mask, {x} * {x}, 0.0), axis=0) / "
                            f"{n_cols}", f"{v} = {x} * tl.rsqrt({v}_ms + {eps})"]
                if "weight" in exprs:
                    out.append(f"{v} = {v} * {exprs['weight']}")
                if "bias" in exprs:
                    out.append(f"{v} = {v} + {exprs['bias']}")
            else:
                expr = elementwise(name, exprs, lits)
                assert expr is not None, name
                if name == "to":
                    expr = f"{expr}.to({TL_DTYPE[tensor_of(o).dtype]}).to({self.compute})"
                out.append(f"{v} = {expr}")
                kind = "stat" if all(self.kinds.get(a.id) == "stat" for a in e.ins
                                     if isinstance(a, Var)) else "full"
            self.names[o.id] = v
            self.kinds[o.id] = kind
        return out


def _compute_type(group: Group) -> str:
    f64 = any(isinstance(v.type, TTensor) and v.type.dtype is DT.F64
              for e in group.eqns for v in [*e.ins, *e.outs] if isinstance(v, Var))
    return "tl.float64" if f64 else "tl.float32"


def _load(i: int, a: Var, offset: str, mask: str, compute: str) -> str:
    cast = "" if tensor_of(a).dtype is DT.BOOL else f".to({compute})"
    return f"    x{i} = tl.load(p{i} + {offset}, mask={mask}, other=0){cast}"


# ====================================================================== pointwise and rows


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

    def __call__(self, *values: Any) -> Any:
        g = self.group
        triton, _ = triton_modules()
        vals = dict(zip((a.id for a in g.inputs), values))
        tensors = [vals[a.id] for a in g.inputs if isinstance(a.type, TTensor)]
        scalars = [vals[a.id] for a in g.inputs if isinstance(a.type, TScalar)]
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
        device = tensors[0].device
        self.launches += 1
        if g.kind == "pointwise":
            rank = max(len(shape), 1)
            shape1 = tuple(shape) or (1,)
            outs = [torch.empty(shape, dtype=_torch_dtype(o), device=device) for o in g.outputs]
            strides = [s for t in tensors for s in t.expand(shape).reshape(shape1).stride()] \
                if shape else [0] * len(tensors)
            numel = outs[0].numel() if outs else 0
            if numel:  # an empty result: nothing to compute, nothing to launch
                block = 1024 if not interpreting() else min(1024, triton.next_power_of_2(numel))
                kernel = self._kernel(rank, None)
                grid = (triton.cdiv(numel, block),)
                kernel[grid](*tensors, *scalars, *outs, *shape1, *strides, numel, BLOCK=block)
        else:
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
            kernel = self._kernel(len(shape), block)
            eps = torch.finfo(tensors[0].dtype).eps
            if m:
                kernel[(m,)](*tensors, *scalars, *outs, *lead, *lstrides, *cstrides, n, eps,
                             BLOCK_N=block)
        return outs[0] if len(outs) == 1 else tuple(outs)


def _torch_dtype(v: Var) -> torch.dtype:
    from gtdsl.ops.calls import DT_TORCH

    return DT_TORCH[tensor_of(v).dtype]


# ====================================================================== matmul template


def template(name: str) -> str:
    path = data_path("kernels", name)
    if path is None:
        raise FileNotFoundError(f"the kernel template kernels/{name} is missing from this "
                                "installation")
    return path.read_text()


def matmul_template() -> str:
    return template("matmul.py")


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

    def __call__(self, *values: Any) -> Any:
        triton, _ = triton_modules()
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
        extra = []
        for e in self.extra:
            t = vals[e.id]
            if t.dim() == 1:
                extra += [t, 0, t.stride(0)]
            else:
                t2 = t.expand(lead + (n,)).reshape(m, n)
                extra += [t2, t2.stride(0), t2.stride(1)]
        scalars = [vals[s.id] for s in self.scalars]
        if self._kernel is None:
            with _LOCK:
                if self._kernel is None:
                    k = _compile(self.name, self.source)
                    self._kernel = k if interpreting() else _autotuned(
                        k, MATMUL_CONFIGS, ["M", "N", "K"])
        c = outs[-1]
        self.launches += 1
        if m and n:
            args = (a, b_mat, c, m, n, k_dim, a.stride(0), a.stride(1), b_mat.stride(0),
                    b_mat.stride(1), c.stride(0), c.stride(1), *extra, *scalars, *outs[:-1])
            ieee = x.dtype == torch.float32
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

    def __call__(self, *values: Any) -> Any:
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
        if self._kernel is None:
            with _LOCK:
                if self._kernel is None:
                    self._kernel = _compile(self.name, self.source)
        self.launches += 1
        block_d = max(16, triton.next_power_of_2(d))
        bm, bn = (16, 16) if interpreting() else (64, 64)
        if out.numel():
            self._kernel[(triton.cdiv(n_q, bm), b * h)](
                q, k, v, out, float(scale), h, n_q, n_k, d, *q.stride(), *k.stride(),
                *v.stride(), *out.stride(), BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=block_d,
                CAUSAL=causal, IEEE=q.dtype == torch.float32 or interpreting())
        return out


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


__all__ = ["AttentionLauncher", "Group", "GroupLauncher", "MatmulLauncher", "kernel_sources",
           "launcher_for", "triton_modules"]
