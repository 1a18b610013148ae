"""What every Triton launcher shares: the group a ``KERNEL`` eqn describes, its block as Triton
statements, compiling generated sources, and ``KernelSpec``, one kernel as a launch compiles
it (what the ahead-of-time lane compiles for a GPU target without a GPU).

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
from gtdsl.ir.core import Atom, Eqn, Lit, Op, Var
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


_PTR = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16",
        torch.float64: "*fp64", torch.int64: "*i64", torch.int32: "*i32", torch.bool: "*i1",
        torch.int8: "*i8", torch.uint8: "*u8"}


def arg_type(v: Any) -> str:
    """The Triton signature type of a kernel argument: a tensor's pointer type, an integer's
    width, a float."""
    if isinstance(v, torch.Tensor):
        return _PTR[v.dtype]
    if isinstance(v, bool):
        return "i1"
    if isinstance(v, int):
        return "i32" if -2**31 <= v < 2**31 else "i64"
    if isinstance(v, float):
        return "fp32"
    raise TypeError(f"unexpected kernel argument {type(v).__name__}")


@dataclass(frozen=True)
class KernelSpec:
    """One kernel exactly as a launch compiles it: the generated source defining ``name``, the
    type of each runtime argument, the compile-time constants and the launch options. A GPU
    compiles the same (``triton.compile(ASTSource(fn, signature, constexprs), ...)``)."""

    name: str
    source: str
    signature: dict[str, str]  # parameter -> "*fp32" | "i32" | "fp32" | ... | "constexpr"
    constexprs: dict[str, Any]
    num_warps: int
    num_stages: int


def params_of(source: str) -> list[str]:
    """The parameter names of the kernel ``source`` defines (annotations dropped)."""
    head = source.split("def ", 1)[1].split("(", 1)[1].split("):", 1)[0]
    return [p.split(":")[0].strip() for p in head.replace("\n", " ").split(",") if p.strip()]


def spec(name: str, source: str, args: list[Any] | tuple[Any, ...], constexprs: dict[str, Any],
         num_warps: int, num_stages: int) -> KernelSpec:
    """The ``KernelSpec`` of launching ``source`` with ``args`` then ``constexprs``."""
    params = params_of(source)
    sig = {p: arg_type(a) for p, a in zip(params, args)}
    sig.update({p: "constexpr" for p in params if p in constexprs})
    missing = [p for p in params if p not in sig]
    if missing:
        raise ValueError(f"kernel {name}: no argument for {', '.join(missing)}")
    return KernelSpec(name, source, sig, dict(constexprs), num_warps, num_stages)


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


def _torch_dtype(v: Var) -> torch.dtype:
    from gtdsl.ops.calls import DT_TORCH

    return DT_TORCH[tensor_of(v).dtype]


def template(name: str) -> str:
    path = data_path("kernels", name)
    if path is None:
        raise FileNotFoundError(f"the kernel template kernels/{name} is missing from this "
                                "installation")
    return path.read_text()


def matmul_template() -> str:
    return template("matmul.py")
