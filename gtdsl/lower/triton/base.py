"""What every Triton launcher shares: the group a ``KERNEL`` eqn describes, its block as Triton
statements, compiling generated sources, and ``KernelSpec``, one kernel as a launch compiles
it (what the ahead-of-time lane compiles for a GPU target without a GPU).

``launcher_for(eqn)`` builds the launcher of a ``KERNEL`` eqn (``gtdsl.lower.triton.fusion``)
from its ``kernel`` parameter, its inputs and its block. A launcher is called by the
generated host code with the eqn's inputs (tensors and numbers) and returns its outputs. It
reads sizes and strides at run time and passes them to the kernel as arguments, so one
compiled kernel serves every size; the kernel source depends only on the kernel and on what
the launch decides once per variant (which inputs are contiguous, the rank where an input is
strided or broadcast, whether a row is held whole or looped over). Triton adds its own
specializations (an integer argument equal to 1 or divisible by 16, aligned pointers) on
top, as it does for any kernel.

What a kernel assumes is guaranteed before it runs: dtypes and ranks by the function's
types and the specialization key, equal sizes by the entry casts (the checker proved every
size relation inside the function), one device by the call-device rule. Broadcasting is
done with zero strides computed from the real shapes, never assumed.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl._resources import data_path
from gtdsl.ir.core import Atom, Eqn, Lit, Op, Var
from gtdsl.lower.triton.exprs import TL_DTYPE, elementwise, literal
from gtdsl.lower.triton.fusion import Kernel, _args, _same_shape, _stat_shape, op_name, tensor_of
from gtdsl.types import DT, TScalar, TShape, TTensor
from gtdsl.types.core import DOTS

_LOCK = threading.Lock()
INT32 = (1 << 31) - 1  # kernels index with 32-bit offsets: larger tensors run as torch ops


def extent(t: torch.Tensor) -> int:
    """One more than the largest element offset of ``t`` (its numel when contiguous)."""
    if t.is_contiguous():
        return t.numel()
    return sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride())) + 1 if t.numel() else 0


def fits_int32(values: Any) -> bool:
    """Every element offset of every tensor argument fits the kernels' 32-bit arithmetic."""
    for t in values:
        if isinstance(t, torch.Tensor) and (t.numel() > INT32 or extent(t) > INT32):
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


_SELF_CHECK = """@triton.jit
def gtdsl_interpreter_check(src, dst, n, k, BLOCK: tl.constexpr):
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(dst + offs, tl.load(src + offs, mask=mask) * k, mask=mask)
"""
_checked: list[str] = []  # the interpreter passed its check in this process ("ok")


def check_interpreter() -> None:
    """Under ``TRITON_INTERPRET=1``, run one tiny kernel once per process and compare: Triton
    3.0's interpreter with NumPy 2 stores nothing (its outputs keep whatever memory held),
    which would make every Triton-backed call on the CPU return garbage without an error;
    Triton 3.6's fails on a loop bound with NumPy 2.4 (a one-element array's ``int()``).
    Raises ``GtdslError`` GT4004 naming the installed versions."""
    if _checked or not interpreting():
        return
    triton, _ = triton_modules()
    kernel = _compile("gtdsl_interpreter_check", _SELF_CHECK, check=False)
    src = torch.arange(1.0, 6.0)
    dst = torch.full((5,), float("nan"))
    try:
        kernel[(1,)](src, dst, 5, 2.0, BLOCK=8)
        good = torch.equal(dst, src * 2.0)
    except Exception as e:  # the interpreter itself fails
        good, why = False, f"{type(e).__name__}: {e}"
    else:
        why = f"a kernel computing x * 2 of {src.tolist()} stored {dst.tolist()}"
    if not good:
        import numpy

        from gtdsl.diagnostics.diagnostic import Diagnostic, GtdslError

        raise GtdslError([Diagnostic(
            "GT4004", f"Triton's CPU interpreter (Triton {triton.__version__}, NumPy "
            f"{numpy.__version__}) computes wrong results: {why}",
            notes=("the Triton backend on a machine without CUDA runs kernels in this "
                   "interpreter, so every call would return wrong numbers",),
            help="install a NumPy the Triton release supports (Triton 3.0: `pip install "
                 "'numpy<2'`; Triton 3.6: 'numpy<2.4'), or a newer torch with its Triton; or "
                 "use `backend=\"torch\"`",
            path=getattr(sys.modules.get("triton.runtime.interpreter"), "__file__", "triton"))])
    _checked.append("ok")


def _compile(name: str, source: str, check: bool = True) -> Any:
    """``source`` defines ``name``, decorated with ``@triton.jit``: register it where
    ``inspect`` finds it (Triton reads a kernel's source) and execute it."""
    if check:
        check_interpreter()
    triton, tl = triton_modules()
    filename = f"<gtdsl-triton {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # a module name: Triton reads the ``__module__`` of jit functions a kernel calls
    ns: dict[str, Any] = {"triton": triton, "tl": tl, "__name__": f"gtdsl_triton.{name}"}
    # dont_inherit: not this module's ``from __future__ import annotations``, which would make
    # ``BLOCK: tl.constexpr`` a string (Triton 3.0's interpreter then takes it for a tensor)
    exec(compile(source, filename, "exec", dont_inherit=True), ns)  # noqa: S102 - from the IR
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
    # the parameters a launch specializes as divisible by 16 (integers; pointers: 16-byte
    # aligned), as Triton does at a launch (``ASTSource`` attrs ``tt.divisibility`` 16)
    divisible: tuple[str, ...] = ()
    # the registers per thread ptxas may use (``.maxnreg``; None: its own heuristic)
    maxnreg: int | None = None


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


def launch_spec(name: str, source: str, args: list[Any] | tuple[Any, ...],
                constexprs: dict[str, Any], num_warps: int, num_stages: int) -> KernelSpec:
    """``spec(...)`` as Triton specializes it at the launch: an integer argument equal to 1
    becomes a constant, integers divisible by 16 and 16-byte aligned pointers are marked
    ``divisible`` (what lets a contiguous load become a vector load)."""
    s = spec(name, source, args, constexprs, num_warps, num_stages)
    sig, consts, divisible = dict(s.signature), dict(s.constexprs), []
    for p, a in zip(params_of(source), args):
        if isinstance(a, (bool, float)):
            continue
        if isinstance(a, int):
            if a == 1:
                sig[p], consts[p] = "constexpr", 1
            elif a % 16 == 0:
                divisible.append(p)
        elif isinstance(a, torch.Tensor) and a.data_ptr() % 16 == 0:
            divisible.append(p)
    return KernelSpec(name, source, sig, consts, num_warps, num_stages, tuple(divisible))


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


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a block, as the kernel generators schedule it:

    - ``full``: a value per element, defined by ``lines`` from ``deps``;
    - ``stat``: a value per row (a row statistic, a number), defined by ``lines`` from
      row values only;
    - ``reduce``: ``outs[0]`` is the ``op`` (``sum``, ``max``, ``min``) of the full value
      ``deps[0]`` along the row, divided by the row length when ``mean``;
    - ``online``: a softmax's statistics over the full value ``deps[0]``: its maximum
      ``outs[0]`` and the sum ``outs[1]`` of ``exp(value - maximum)``.

    A row kernel holding the whole row computes every node once, in order; one that loops
    over the row in chunks computes reductions in as many passes as they depend on each
    other and recomputes the full values each pass needs (``gtdsl.lower.triton.rows``)."""

    kind: str
    outs: tuple[str, ...]
    deps: tuple[str, ...]
    lines: tuple[str, ...] = ()
    op: str = ""
    mean: bool = False


_REDUCE = {"sum": "tl.sum", "max": "tl.max", "min": "tl.min"}
_NEUTRAL = {"sum": "0.0", "max": "float('-inf')", "min": "float('inf')"}


def reduced(op: str, value: str, mean: bool, n_cols: str = "n_cols") -> str:
    """``value`` (an expression over a tile's rows, masked) reduced along the row."""
    out = f"{_REDUCE[op]}({value}, axis=1, keep_dims=True)"
    return f"{out} / {n_cols}" if mean else out


def rendered(node: Node, n_cols: str = "n_cols") -> list[str]:
    """The statements computing ``node`` when the whole row is in registers (``mask`` marks
    the tile's elements that are in the tensor)."""
    if node.kind == "reduce":
        src = f"tl.where(mask, {node.deps[0]}, {_NEUTRAL[node.op]})"
        return [f"{node.outs[0]} = {reduced(node.op, src, node.mean, n_cols)}"]
    if node.kind == "online":
        (m, s), x = node.outs, node.deps[0]
        xm = f"tl.where(mask, {x}, float('-inf'))"
        e = f"tl.where(mask, tl.exp({x} - {m}), 0.0)"
        return [f"{m} = {reduced('max', xm, False)}", f"{s} = {reduced('sum', e, False)}"]
    return list(node.lines)


def default_rms_eps(x: Var) -> float:
    """``rms_norm``'s ``eps=None``: the machine epsilon of the dtype torch computes in (f32 for
    f16, bf16 and f32 inputs, f64 for f64)."""
    return float(torch.finfo(torch.float64 if tensor_of(x).dtype is DT.F64
                             else torch.float32).eps)


class _Body:
    """The group's eqns as Triton statements over named values (``nodes``); ``statements``
    renders them for a kernel that holds the whole row (and for pointwise and matmul
    epilogues, which have no reductions)."""

    def __init__(self, group: Group, compute: str) -> None:
        self.group = group
        self.compute = compute
        self.names: dict[int, str] = {}  # var id -> kernel value name
        self.kinds: dict[int, str] = {}  # var id -> "full" | "stat"
        self.tensor_inputs = [a for a in group.inputs if isinstance(a.type, TTensor)]
        # numbers become kernel arguments; other inputs (a normalized_shape tuple) only
        # describe what the types already fixed
        self.scalar_inputs = [a for a in group.inputs if isinstance(a.type, TScalar)]
        stat = _stat_shape(group.shape) if group.kind == "row" and group.shape.dims else None
        for i, a in enumerate(self.tensor_inputs):
            self.names[a.id] = f"x{i}"
            # a row group's input of the statistics' shape ([..., 1]) is a value per row
            self.kinds[a.id] = "stat" if stat is not None and _same_shape(
                tensor_of(a).shape, stat) and stat.row != DOTS else "full"
        for i, a in enumerate(self.scalar_inputs):
            self.names[a.id] = f"s{i}"
            self.kinds[a.id] = "stat"

    def atom(self, a: Atom) -> str:
        if isinstance(a, Var):
            return self.names[a.id]
        return literal(a.value)

    def nodes(self) -> list[Node]:
        """The block as nodes, in order; names and kinds of its values are recorded."""
        out: list[Node] = []
        for e in self.group.eqns:
            name = op_name(e)
            if name is None:
                raise ValueError(f"a kernel's block holds catalogue ops, not {e.op.name}")
            if name in ("T", "matmul", "linear"):
                continue
            out += self._nodes(e, name)
        return out

    def _nodes(self, e: Eqn, name: str) -> list[Node]:
        args = _args(e)
        o = e.outs[0]
        v = f"v{o.id}"
        exprs = {k: self.atom(a) for k, a in args.items()
                 if isinstance(a, Var) and a.id in self.names or isinstance(a, Lit) and
                 isinstance(a.value, (int, float)) and not isinstance(a.value, bool)
                 and k not in ("dim", "keepdim")}
        lits = {k: a.value for k, a in args.items() if isinstance(a, Lit)}
        ids = list(dict.fromkeys(a.id for a in e.ins if isinstance(a, Var) and a.id in self.names))
        deps = tuple(self.names[i] for i in ids)
        self.names[o.id] = v
        self.kinds[o.id] = "full"
        if name in ("sum", "mean", "amax", "amin"):
            self.kinds[o.id] = "stat"
            op = {"sum": "sum", "mean": "sum", "amax": "max", "amin": "min"}[name]
            return [Node("reduce", (v,), (exprs["input"],), op=op, mean=name == "mean")]
        if name in ("softmax", "log_softmax"):
            x = exprs["input"]
            m, s = f"{v}_m", f"{v}_s"
            stats = Node("online", (m, s), (x,))
            if name == "softmax":
                return [stats, Node("full", (v,), (x, m, s), (f"{v} = tl.exp({x} - {m}) / {s}",))]
            return [stats, Node("stat", (f"{v}_ls",), (s,), (f"{v}_ls = tl.log({s})",)),
                    Node("full", (v,), (x, m, f"{v}_ls"), (f"{v} = {x} - {m} - {v}_ls",))]
        if name in ("layer_norm", "rms_norm"):
            return self._norm(name, v, exprs, args)
        expr = elementwise(name, exprs, lits)
        assert expr is not None, name
        if name == "to":
            expr = f"{expr}.to({TL_DTYPE[tensor_of(o).dtype]}).to({self.compute})"
        stat = bool(ids) and all(self.kinds.get(i) == "stat" for i in ids)
        self.kinds[o.id] = "stat" if stat else "full"
        return [Node("stat" if stat else "full", (v,), deps, (f"{v} = {expr}",))]

    def _norm(self, name: str, v: str, exprs: dict[str, str], args: dict[str, Atom]) -> list[Node]:
        x = exprs["input"]
        eps = exprs.get("eps") or literal(default_rms_eps(_var(args["input"])))
        eps_deps = (eps,) if isinstance(args.get("eps"), Var) else ()
        nodes: list[Node] = []
        if name == "layer_norm":
            mu, d, d2, var = f"{v}_mu", f"{v}_d", f"{v}_d2", f"{v}_var"
            nodes += [Node("reduce", (mu,), (x,), op="sum", mean=True),
                      Node("full", (d,), (x, mu), (f"{d} = {x} - {mu}",)),
                      Node("full", (d2,), (d,), (f"{d2} = {d} * {d}",)),
                      Node("reduce", (var,), (d2,), op="sum", mean=True)]
            centred, stat = d, var
        else:
            x2, ms = f"{v}_x2", f"{v}_ms"
            nodes += [Node("full", (x2,), (x,), (f"{x2} = {x} * {x}",)),
                      Node("reduce", (ms,), (x2,), op="sum", mean=True)]
            centred, stat = x, ms
        r = f"{v}_r"
        nodes.append(Node("stat", (r,), (stat, *eps_deps), (f"{r} = tl.rsqrt({stat} + {eps})",)))
        expr, deps = f"{centred} * {r}", [centred, r]
        if "weight" in exprs:
            expr, deps = f"{expr} * {exprs['weight']}", deps + [exprs["weight"]]
        if "bias" in exprs:
            expr, deps = f"{expr} + {exprs['bias']}", deps + [exprs["bias"]]
        nodes.append(Node("full", (v,), tuple(deps), (f"{v} = {expr}",)))
        return nodes

    def statements(self, n_cols: str = "n_cols") -> list[str]:
        """Every node's statements in order: a pointwise block, a matmul epilogue, or a row
        held whole in registers."""
        return [line for node in self.nodes() for line in rendered(node, n_cols)]


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
