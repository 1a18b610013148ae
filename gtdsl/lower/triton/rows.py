"""Pointwise and row kernels: the launcher of a ``pointwise`` or ``row`` ``KERNEL`` eqn, its
kernel sources generated from the eqn's block (``gtdsl.lower.triton.base``).

A launch reads sizes and strides and picks a kernel *variant*, generated and compiled once:

- how each tensor input is addressed: ``c`` contiguous with the kernel's full shape (offset
  ``offs``, or ``row * n_cols + col``: no index arithmetic, vector loads), ``v`` a
  contiguous vector along the last dim (``offs % n_last``, or ``col``), ``r`` a contiguous
  row statistic (``row``), ``s`` anything else: strided or broadcast, addressed with the
  sizes and (zero for broadcast dims) strides of the rank at hand. Which of ``c``/``v``/``r``
  an input can be is fixed by its type; the launch only asks whether it is contiguous;
- for a row kernel, whether the row is held whole in registers (*persistent*: rows up to
  ``RowSettings.persistent_max`` wide, several narrow rows per program) or *looped* over in
  chunks of ``RowSettings.loop_block``, in as many passes as the block's statistics depend
  on each other (``looped_body``).

Block sizes, warps and stages follow the Triton tutorials and Inductor: pointwise blocks of
1024 with 4 warps; a row program of ``ROWS x BLOCK_N`` elements gets one warp per 256 of
them (per 128 when looped), 8 to 32 (``row_warps``); one stage (nothing to pipeline
without ``tl.dot``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.lower.triton.base import (
    _LOCK, INT32, Group, KernelSpec, Node, _Body, _compile, _compute_type, _load, _torch_dtype,
    launch_spec, reduced, rendered,
)
from gtdsl.lower.triton.fusion import _same_shape, _stat_shape, tensor_of
from gtdsl.types import TScalar, TShape, TTensor
from gtdsl.types.core import DOTS


@dataclass(frozen=True)
class RowSettings:
    """How row kernels cut a row: ``persistent_max`` is the widest row a program holds whole
    (wider rows are looped over in chunks of ``loop_block``); a program covers about ``tile``
    elements, so rows narrower than that are packed several to a program. Every value is a
    power of two. A launcher reads ``ROW_SETTINGS`` when it is built (tests make rows loop
    at small widths by replacing it)."""

    persistent_max: int = 8192
    loop_block: int = 2048
    tile: int = 1024


ROW_SETTINGS = RowSettings()
POINTWISE_BLOCK = 1024
POINTWISE_WARPS = 4
NUM_STAGES = 1


def row_warps(elements: int, looped: bool) -> int:
    """Warps for a row program of ``elements`` (ROWS x BLOCK_N): one per 256 elements of a
    row held whole, one per 128 of a looped chunk (which also holds an accumulator per
    lane and reduction); 8 to 32. Compiled for sm_80 and sm_90, fewer warps made ptxas
    spill a few bytes for some groups (a 1024-wide row at 4 warps, 8192 at 16, a looped
    chunk of 2048 at 8), these none."""
    return min(32, max(8, elements // (128 if looped else 256)))


def _bstrides(t: torch.Tensor, rank: int) -> list[int]:
    """``t``'s strides broadcast to ``rank`` dims: 0 where it has no dim or a dim of 1."""
    st = [s if n != 1 else 0 for n, s in zip(t.shape, t.stride())]
    return [0] * (rank - len(st)) + st


def _broadcast(shapes: list[torch.Size]) -> torch.Size:
    first = shapes[0]
    for s in shapes:
        if s != first:
            return torch.broadcast_shapes(*shapes)
    return first


class _Variant:
    """One generated kernel: its name and source, compiled on first launch."""

    __slots__ = ("kernel", "name", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.kernel: Any = None


class GroupLauncher:
    """Runs one pointwise or row group: ``launcher(*inputs) -> outputs``."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.row = group.kind == "row"
        self.compute = _compute_type(group)
        self.settings = ROW_SETTINGS
        self.launches = 0
        body = _Body(group, self.compute)
        body.nodes()
        self.kinds = [body.kinds[o.id] for o in group.outputs]
        self.tensor_pos = tuple(i for i, a in enumerate(group.inputs)
                                if isinstance(a.type, TTensor))
        self.scalar_pos = tuple(i for i, a in enumerate(group.inputs)
                                if isinstance(a.type, TScalar))
        self.type_modes = tuple(self._type_mode(group.inputs[i]) for i in self.tensor_pos)
        self.input_kinds = tuple(body.kinds[group.inputs[i].id] for i in self.tensor_pos)
        # an input whose type is the kernel's full shape has the launch's shape
        self.full_at = next((i for i, m in enumerate(self.type_modes) if m == "c"), -1)
        self.unknown = "?" in self.type_modes
        self.out_dtypes = tuple(_torch_dtype(o) for o in group.outputs)
        # how each output is shaped: the full shape, or a row statistic with or without keepdim
        self.out_shapes = tuple(
            "full" if k == "full" else
            "keep" if len(tensor_of(o).shape.dims) == len(group.shape.dims) else "drop"
            for o, k in zip(group.outputs, self.kinds))
        # the widest row whose column offsets (a chunk past the row's end included) fit
        self.max_cols = INT32 + 1 - max(self.settings.persistent_max, self.settings.loop_block)
        self._variants: dict[tuple[tuple[str, ...], int, bool], _Variant] = {}
        self._row_configs: dict[int, tuple[bool, dict[str, int], int, int]] = {}
        self._pointwise_consts = {"BLOCK": POINTWISE_BLOCK}

    def _type_mode(self, a: Any) -> str:
        """How input ``a`` is addressed when contiguous, as far as its type tells: ``c`` (the
        full shape), ``v`` (a vector along the last dim), ``r`` (a row statistic), ``?``
        (the launch compares shapes)."""
        t, shape = tensor_of(a).shape, self.group.shape
        if shape.row == DOTS or t.row == DOTS:
            return "?"
        if _same_shape(t, shape):
            return "c"
        if shape.dims and t.row is None and len(t.dims) == 1 and _same_shape(
                t, TShape(None, shape.dims[-1:])):
            return "v"
        if self.row and shape.dims and _same_shape(t, _stat_shape(shape)):
            return "r"
        return "?"

    # ------------------------------------------------------------------ per launch
    def _inspect(self, values: tuple[Any, ...]) -> tuple[list[Any], torch.Size, tuple[str, ...]]:
        """The tensor inputs, the launch's full shape and each input's addressing mode."""
        tensors = [values[i] for i in self.tensor_pos]
        if self.full_at >= 0:
            shape = tensors[self.full_at].shape
        else:
            shape = _broadcast([t.shape for t in tensors])
        if self.unknown:
            modes = tuple([("c" if t.shape == shape else "s") if m == "?" else m
                           for m, t in zip(self.type_modes, tensors)])
            modes = tuple([m if t.is_contiguous() else "s" for m, t in zip(modes, tensors)])
        else:
            modes = tuple([m if t.is_contiguous() else "s"
                           for m, t in zip(self.type_modes, tensors)])
        return tensors, shape, modes

    def ok(self, *values: Any) -> bool:
        """Whether the kernel takes these inputs: every offset it computes fits 32 bits, and
        a row group's rows are not empty (torch decides what a reduction over nothing is).

        The outputs and the inputs read as ``c``, ``v`` or ``r`` are contiguous with at most
        the launch's elements, so their offsets are below its numel; a strided input's
        largest offset is the sum of (size - 1) * stride. Program offsets cannot overflow
        either: ``pid * BLOCK`` stays below numel rounded up to a power of two."""
        tensors, shape, modes = self._inspect(values)
        if shape.numel() > INT32:
            return False
        if self.row and not 0 < shape[-1] <= self.max_cols:
            return False
        if "s" in modes:
            for t, m in zip(tensors, modes):
                if m == "s" and t.numel() and sum(
                        (n - 1) * s for n, s in zip(t.shape, t.stride())) > INT32:
                    return False
        return True

    def _row_config(self, n: int) -> tuple[bool, dict[str, int], int, int]:
        """For rows of ``n``: looped or not, the constants, warps, rows per program."""
        b = (n - 1).bit_length() if n > 1 else 0
        cfg = self._row_configs.get(b)
        if cfg is None:
            st = self.settings
            block = 1 << b
            looped = block > st.persistent_max
            if looped:
                block = st.loop_block
            rows = max(1, st.tile // block)
            cfg = self._row_configs[b] = (looped, {"ROWS": rows, "BLOCK_N": block},
                                          row_warps(rows * block, looped), rows)
        return cfg

    def _plan(self, values: tuple[Any, ...]) -> tuple[_Variant, tuple[int], list[Any],
                                                        dict[str, int], int, list[Any]]:
        """How ``values`` launch: the kernel variant, the grid, the arguments, the constants,
        the warps, and the outputs (allocated on the inputs' device)."""
        tensors, shape, modes = self._inspect(values)
        args: list[Any] = tensors + [values[i] for i in self.scalar_pos]
        # full outputs are contiguous: like a contiguous input of the full shape, when there
        # is one (cheaper to allocate than from a shape, dtype and device)
        like = tensors[self.full_at] if self.full_at >= 0 and modes[self.full_at] == "c" \
            else None
        if not self.row:
            outs = [torch.empty(shape, dtype=d, device=tensors[0].device) for d in
                    self.out_dtypes] if like is None else [
                torch.empty_like(like, dtype=d) for d in self.out_dtypes]
            numel = shape.numel()
            args += outs
            if "v" in modes:
                args.append(shape[-1])
            rank = 0
            if "s" in modes:
                rank = max(len(shape), 1)
                args += shape or (1,)
                for t, m in zip(tensors, modes):
                    if m == "s":
                        args += _bstrides(t, rank)
            args.append(numel)
            return (self._variant(modes, rank, False), (-(-numel // POINTWISE_BLOCK),), args,
                    self._pointwise_consts, POINTWISE_WARPS, outs)
        n = shape[-1]
        lead = shape[:-1]
        n_rows = shape.numel() // n if n else lead.numel()
        looped, consts, warps, rows = self._row_config(n)
        device = tensors[0].device
        outs = [torch.empty_like(like, dtype=d) if k == "full" and like is not None else
                torch.empty(shape if k == "full" else lead + (1,) if k == "keep" else lead,
                            dtype=d, device=device)
                for k, d in zip(self.out_shapes, self.out_dtypes)]
        args += outs
        rank = 0
        if "s" in modes:
            rank = len(shape)
            args += lead
            for t, md, kind in zip(tensors, modes, self.input_kinds):
                if md == "s":
                    st = _bstrides(t, rank)
                    args += st[:-1] if kind == "stat" else st
        args += (n_rows, n)
        return (self._variant(modes, rank, looped), (-(-n_rows // rows),), args, consts, warps,
                outs)

    def specs(self, *values: Any) -> list[KernelSpec]:
        """The kernels a launch with ``values`` (real or meta tensors) compiles, specialized as
        Triton specializes them at the launch."""
        variant, _, args, consts, warps, _ = self._plan(values)
        return [launch_spec(variant.name, variant.source, args, consts, warps, NUM_STAGES)]

    def __call__(self, *values: Any) -> Any:
        variant, grid, args, consts, warps, outs = self._plan(values)
        self.launches += 1
        if grid[0]:  # an empty result: nothing to compute, nothing to launch
            kernel = variant.kernel
            if kernel is None:
                kernel = self._compiled(variant)
            kernel[grid](*args, **consts, num_warps=warps, num_stages=NUM_STAGES)
        return outs[0] if len(outs) == 1 else tuple(outs)

    # ------------------------------------------------------------------ variants
    def _variant(self, modes: tuple[str, ...], rank: int, looped: bool) -> _Variant:
        key = (modes, rank, looped)
        v = self._variants.get(key)
        if v is None:
            with _LOCK:
                v = self._variants.get(key)
                if v is None:
                    name = f"gtdsl_{self.group.name}_{''.join(modes)}" + (
                        f"_r{rank}" if rank else "") + ("_loop" if looped else "")
                    src = (self._row_source(name, modes, rank, looped) if self.row else
                           self._pointwise_source(name, modes, rank))
                    v = self._variants[key] = _Variant(name, src)
        return v

    def _compiled(self, v: _Variant) -> Any:
        with _LOCK:
            if v.kernel is None:
                v.kernel = _compile(v.name, v.source)
        return v.kernel

    def source(self, rank: int, block: int | None = None) -> str:
        """The kernel a launch with contiguous inputs of ``rank`` dims (rows ``block`` wide)
        runs; an input whose type fixes no contiguous layout is read as strided."""
        modes = tuple("s" if m == "?" else m for m in self.type_modes)
        looped = self.row and block is not None and block > self.settings.persistent_max
        return self._variant(modes, rank if "s" in modes else 0, looped).source

    @property
    def sources(self) -> dict[tuple[tuple[str, ...], int, bool], str]:
        """The source of every variant generated so far, by (modes, rank, looped)."""
        return {k: v.source for k, v in self._variants.items()}

    # ------------------------------------------------------------------ sources
    def _params(self) -> list[str]:
        """The pointers and numbers every variant takes: inputs, numbers, outputs."""
        return [f"p{i}" for i in range(len(self.tensor_pos))] + \
            [f"s{i}" for i in range(len(self.scalar_pos))] + \
            [f"o{j}" for j in range(len(self.group.outputs))]

    def _pointwise_source(self, name: str, modes: tuple[str, ...], rank: int) -> str:
        body = _Body(self.group, self.compute)
        tin = body.tensor_inputs
        params = self._params()
        if "v" in modes:
            params.append("n_last")
        if rank:
            params += [f"size{d}" for d in range(rank)]
            params += [f"st{i}_{d}" for i, m in enumerate(modes) if m == "s"
                       for d in range(rank)]
        params += ["numel", "BLOCK: tl.constexpr"]
        lines = [f"def {name}({', '.join(params)}):",
                 "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)",
                 "    mask = offs < numel"]
        if rank:
            lines.append("    rem = offs")
            for d in reversed(range(rank)):
                lines.append(f"    i{d} = rem % size{d}" if d else f"    i{d} = rem")
                if d:
                    lines.append(f"    rem = rem // size{d}")
        for i, (a, m) in enumerate(zip(tin, modes)):
            off = "offs" if m == "c" else "offs % n_last" if m == "v" else \
                "(" + " + ".join(f"i{d} * st{i}_{d}" for d in range(rank)) + ")"
            lines.append(_load(i, a, off, "mask", self.compute))
        lines += ["    " + s for s in body.statements()]
        for j, o in enumerate(self.group.outputs):
            lines.append(f"    tl.store(o{j} + offs, {body.names[o.id]}"
                         f".to(o{j}.dtype.element_ty), mask=mask)")
        return "@triton.jit\n" + "\n".join(lines) + "\n"

    def _row_source(self, name: str, modes: tuple[str, ...], rank: int, looped: bool) -> str:
        body = _Body(self.group, self.compute)
        nodes = body.nodes()
        tin = body.tensor_inputs
        lead = rank - 1
        params = self._params()
        if rank:
            params += [f"lsize{d}" for d in range(lead)]
            for i, (m, kind) in enumerate(zip(modes, self.input_kinds)):
                if m == "s":
                    params += [f"st{i}_{d}" for d in range(lead)]
                    params += [f"cst{i}"] if kind == "full" else []
        params += ["n_rows", "n_cols", "ROWS: tl.constexpr", "BLOCK_N: tl.constexpr"]
        head = [f"def {name}({', '.join(params)}):",
                "rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)[:, None]",
                "rmask = rows < n_rows"]
        if rank and lead:
            head.append("rem = rows")
            for d in reversed(range(lead)):
                head.append(f"i{d} = rem % lsize{d}" if d else f"i{d} = rem")
                if d:
                    head.append(f"rem = rem // lsize{d}")

        def load(i: int) -> str:
            m, kind = modes[i], self.input_kinds[i]
            if m == "c":
                off, mask = "rows * n_cols + cols", "mask"
            elif m == "v":
                off, mask = "cols", "cmask"
            elif m == "r":
                off, mask = "rows", "rmask"
            else:
                terms = [f"i{d} * st{i}_{d}" for d in range(lead)]
                if kind == "full":
                    off, mask = "(" + " + ".join([*terms, f"cols * cst{i}"]) + ")", "mask"
                else:
                    off, mask = "(" + " + ".join(terms or ["rows * 0"]) + ")", "rmask"
            return _load(i, tin[i], off, mask, self.compute).strip()

        stores: list[tuple[str, str, str]] = []  # (kind, value, statement)
        for j, (o, k) in enumerate(zip(self.group.outputs, self.kinds)):
            val = f"{body.names[o.id]}.to(o{j}.dtype.element_ty)"
            stores.append((k, body.names[o.id],
                           f"tl.store(o{j} + rows * n_cols + cols, {val}, mask=mask)"
                           if k == "full" else f"tl.store(o{j} + rows, {val}, mask=rmask)"))
        if looped:
            lines = looped_body(nodes, [load(i) for i in range(len(tin))],
                                [body.names[a.id] for a in tin], list(self.input_kinds),
                                stores, self.compute)
        else:
            lines = ["cols = tl.arange(0, BLOCK_N)[None, :]", "cmask = cols < n_cols",
                     "mask = rmask & cmask", *(load(i) for i in range(len(tin))),
                     *(line for nd in nodes for line in rendered(nd)),
                     *(s for k, _, s in stores if k != "full"),
                     *(s for k, _, s in stores if k == "full")]
        return "@triton.jit\n" + head[0] + "\n" + "\n".join(
            "    " + x for x in head[1:] + lines) + "\n"


def looped_body(nodes: list[Node], loads: list[str], load_names: list[str],
                load_kinds: list[str], stores: list[tuple[str, str, str]],
                compute: str) -> list[str]:
    """A row kernel's statements for rows looped over in chunks of ``BLOCK_N``.

    Each value gets a level: inputs 0, a reduction one more than its operand, anything else
    the largest of its operands'. Pass ``p`` runs over the row once and accumulates every
    reduction of level ``p`` per lane (the values it needs are recomputed from the inputs in
    the chunk), then reduces the lanes and computes the row values that follow. A softmax's
    maximum and sum are accumulated together (the running sum is rescaled when the running
    maximum grows). The last pass computes and stores the full outputs."""
    by_name: dict[str, Node] = {o: nd for nd in nodes for o in nd.outs}
    level: dict[str, int] = {n: 0 for n in load_names}
    for nd in nodes:
        base = max((level.get(d, 0) for d in nd.deps), default=0)
        for o in nd.outs:
            level[o] = base + 1 if nd.kind in ("reduce", "online") else base
    full_loads = [(i, n) for i, n in enumerate(load_names) if load_kinds[i] == "full"]

    def chunk(targets: list[str]) -> list[str]:
        """The loop head and the statements computing ``targets`` in a chunk."""
        seen: set[str] = set()
        todo = list(targets)
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                nd = by_name.get(n)
                if nd is not None and nd.kind == "full":
                    todo += nd.deps
        out = ["for start in range(0, n_cols, BLOCK_N):", "    cols = start + cols0",
               "    cmask = cols < n_cols", "    mask = rmask & cmask"]
        out += ["    " + loads[i] for i, n in full_loads if n in seen]
        out += ["    " + x for nd in nodes if nd.kind == "full" and nd.outs[0] in seen
                for x in nd.lines]
        return out

    tile = "[ROWS, BLOCK_N]"
    lines = ["cols0 = tl.arange(0, BLOCK_N)[None, :]"]
    lines += [loads[i] for i, k in enumerate(load_kinds) if k == "stat"]
    lines += [x for nd in nodes if nd.kind == "stat" and level[nd.outs[0]] == 0
              for x in nd.lines]
    passes = max((level[nd.outs[0]] for nd in nodes if nd.kind in ("reduce", "online")),
                 default=0)
    for p in range(1, passes + 1):
        reds = [nd for nd in nodes if nd.kind in ("reduce", "online") and
                level[nd.outs[0]] == p]
        init, update, final = [], [], []
        for nd in reds:
            x = nd.deps[0]
            if nd.kind == "online":
                m, s = nd.outs
                init += [f"{m}_acc = tl.full({tile}, float('-inf'), {compute})",
                         f"{s}_acc = tl.zeros({tile}, dtype={compute})"]
                update += [f"    {m}_x = tl.where(mask, {x}, float('-inf'))",
                           f"    {m}_new = tl.maximum({m}_acc, {m}_x)",
                           f"    {s}_acc = {s}_acc * tl.where({m}_acc == {m}_new, 1.0, "
                           f"tl.exp({m}_acc - {m}_new)) + tl.where(mask, tl.exp({m}_x - "
                           f"{m}_new), 0.0)",
                           f"    {m}_acc = {m}_new"]
                final += [f"{m} = {reduced('max', f'{m}_acc', False)}",
                          f"{s} = " + reduced("sum", f"tl.where({m}_acc == {m}, {s}_acc, "
                                              f"{s}_acc * tl.exp({m}_acc - {m}))", False)]
                continue
            (r,) = nd.outs
            neutral = {"sum": "0.0", "max": "float('-inf')", "min": "float('inf')"}[nd.op]
            init.append(f"{r}_acc = tl.full({tile}, {neutral}, {compute})")
            masked = f"tl.where(mask, {x}, {neutral})"
            update.append(f"    {r}_acc = {r}_acc + {masked}" if nd.op == "sum" else
                          f"    {r}_acc = tl.{'maximum' if nd.op == 'max' else 'minimum'}"
                          f"({r}_acc, {masked})")
            final.append(f"{r} = {reduced(nd.op, f'{r}_acc', nd.mean)}")
        lines += init + chunk([nd.deps[0] for nd in reds]) + update + final
        lines += [x for nd in nodes if nd.kind == "stat" and level[nd.outs[0]] == p
                  for x in nd.lines]
    lines += [s for k, _, s in stores if k != "full"]
    full = [(v, s) for k, v, s in stores if k == "full"]
    if full:
        lines += chunk([v for v, _ in full]) + ["    " + s for _, s in full]
    return lines


__all__ = ["NUM_STAGES", "POINTWISE_BLOCK", "POINTWISE_WARPS", "ROW_SETTINGS", "GroupLauncher",
           "RowSettings", "looped_body", "row_warps"]
