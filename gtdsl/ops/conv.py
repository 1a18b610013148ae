"""Convolutions and pooling: ``conv1d conv2d conv_transpose2d``, ``max_pool1d max_pool2d
avg_pool1d avg_pool2d``, ``adaptive_avg_pool1d adaptive_avg_pool2d adaptive_max_pool1d
adaptive_max_pool2d``.

Inputs are batched (``[N, C, *spatial]``) or not (``[C, *spatial]``). Each output size is a
size expression of the input's, the kernel's, stride, padding and dilation:
``(L + 2*p - d*(k - 1) - 1) // s + 1`` for a convolution or a pooling window,
``(L - 1)*s - 2*p + d*(k - 1) + output_padding + 1`` for a transposed convolution, the
requested size for an adaptive pooling. An output size below 1 is an error when it is
known, a runtime check when it is not. Which dtypes have kernels depends on the device: the
CPU's table is used on the CPU, the floating and complex dtypes on CUDA, the union when the
device is unknown.
"""

from __future__ import annotations

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, Size, TDim, TDyn, TOther, TScalar, TShape, TTensor, TTuple, as_size,
    same_device, seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import ScalarKind, Type

_FLOATS = frozenset((DT.F16, DT.BF16, DT.F32, DT.F64))
_COMPLEX = frozenset((DT.C64, DT.C128))
_INTS = frozenset((DT.I8, DT.I16, DT.I32, DT.I64, DT.U8))
# the dtypes with CPU kernels, by op (CUDA: the floating and complex dtypes)
_CPU = {
    "conv": _FLOATS | _INTS | _COMPLEX, "conv_dilated": _FLOATS | _COMPLEX | {DT.I64},
    "conv_transpose": _FLOATS | _COMPLEX | {DT.I64},
    "max_pool2d": _FLOATS | _INTS, "max_pool1d": _FLOATS,
    "avg_pool": _FLOATS | {DT.I64},
    "adaptive_avg_pool": _FLOATS | _COMPLEX, "adaptive_max_pool": _FLOATS,
}
_CUDA = {"conv": _FLOATS | _COMPLEX, "conv_dilated": _FLOATS | _COMPLEX,
         "conv_transpose": _FLOATS | _COMPLEX,
         "max_pool2d": _FLOATS, "max_pool1d": _FLOATS, "avg_pool": _FLOATS,
         "adaptive_avg_pool": _FLOATS | _COMPLEX, "adaptive_max_pool": _FLOATS}


def _kernels(x: TTensor, table: str, op: str) -> None:
    dt = x.dtype
    if not dt.is_concrete:
        return
    kind = x.device.kind
    allowed = _CPU[table] if kind == "cpu" else _CUDA[table] if kind == "cuda" else \
        _CPU[table] | _CUDA[table]
    if dt not in allowed:
        where = f" on {kind}" if kind else ""
        raise OpError("GT2002", f"`{op}` has no kernel for {dt}{where}", "input",
                      "convert first: x.to(f32)")


def _layout(x: TTensor, spatial: int, op: str) -> tuple[bool | None, list[TDim]]:
    """(batched, the spatial dims); rank spatial+1 or spatial+2."""
    if x.shape.row is not None:
        return None, [TDim() for _ in range(spatial)]
    r = len(x.shape.dims)
    if r not in (spatial + 1, spatial + 2):
        raise OpError("GT2005", f"`{op}` takes an input of {spatial + 1} dims (unbatched) or "
                      f"{spatial + 2} (batched), got `{x.shape}`", "input",
                      f"shape it [N, C, {', '.join('L' * spatial)}] or [C, ...]")
    return r == spatial + 2, list(x.shape.dims[-spatial:])


def _tuple(arg: Arg, n: int, name: str, op: str, default: int | None = None
           ) -> list[int | Size | None]:
    """An int or a tuple of ``n`` ints (one for each spatial dim)."""
    if arg.value is None and isinstance(arg.type, TOther) and default is not None:
        return [default] * n
    elems = seq_elems(arg)
    if elems is None:
        if isinstance(arg.type, TDyn):
            return [None] * n
        if not (isinstance(arg.type, TScalar) and arg.type.kind is ScalarKind.INT):
            raise OpError("GT2016", f"`{op}` {name} must be an int or a tuple of {n} ints",
                          name)
        return [static_int(arg, name)] * n
    if len(elems) == 0 and default is not None:
        return [default] * n
    if len(elems) == 1:
        return [static_int(elems[0], name)] * n
    if len(elems) != n:
        raise OpError("GT2016", f"`{op}` {name} takes {n} values (one per spatial dim), "
                      f"got {len(elems)}", name)
    return [static_int(e, name) for e in elems]


def _nonempty(x: TTensor, batched: bool | None, spatial: int, op: str,
              channels: bool) -> None:
    """torch takes an empty batch (and convolutions an empty channel dim), never an empty
    spatial dim (nor, for pooling, an empty channel dim)."""
    if batched is None:
        return
    dims = x.shape.dims[-spatial - 1:] if channels else x.shape.dims[-spatial:]
    for d in dims:
        if d.size is not None and d.size.constant() == 0:
            what = "spatial dims" + (" and channels" if channels else "")
            raise OpError("GT2004", f"`{op}` needs non-empty {what}, got `{x.shape}`",
                          "input", "only the batch dim may be empty")


def _is(v: int | Size | None, n: int) -> bool:
    """``v`` is known to be ``n``."""
    s = as_size(v)
    return s is not None and s.constant() == n


def _at_least(values: list[int | Size | None], low: int, name: str, op: str) -> None:
    for v in values:
        s = as_size(v)
        c = s.constant() if s is not None else None
        if c is not None and c < low:
            raise OpError("GT2027", f"`{op}` {name} must be at least {low}, got {c}", name)


def _positive(rel: Rel, size: Size | None, op: str, i: int, low: int = 1) -> None:
    if size is None:
        rel.check(f"`{op}`: output size of spatial dim {i} is at least {low}")
        return
    c = size.constant()
    if c is not None and c < low:
        raise OpError("GT2004", f"`{op}`: spatial dim {i} would have output size {c}: the "
                      "window (dilated kernel) is larger than the padded input", "input",
                      "pad the input, or use a smaller kernel, stride or dilation")
    if c is None:
        rel.check(f"`{op}`: output size of spatial dim {i} is at least {low}",
                  ("ge", size, Size.of(low)))


def _window(length: Size | None, k: int | Size | None, s: int | Size | None,
            p: int | Size | None, d: int | Size | None) -> Size | None:
    """``(L + 2p - d(k-1) - 1) // s + 1``."""
    parts = [as_size(v) for v in (k, s, p, d)]
    if length is None or any(v is None for v in parts):
        return None
    ks, ss, ps, ds = parts
    assert ks is not None and ss is not None and ps is not None and ds is not None
    return (length + ps * 2 - ds * (ks - 1) - 1).floordiv(ss) + 1


# ---------------------------------------------------------------- convolutions


def _make_conv(spatial: int):
    op = f"conv{spatial}d"

    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x, w, b = _conv_tensors(a, "conv", op)
        batched, dims = _layout(x, spatial, op)
        _nonempty(x, batched, spatial, op, channels=False)
        if w.shape.row is None and len(w.shape.dims) != spatial + 2:
            raise OpError("GT2005", f"`{op}` weight must have {spatial + 2} dims [out, in / "
                          f"groups, {', '.join('k' * spatial)}], got `{w.shape}`", "weight")
        wd = list(w.shape.dims) if w.shape.row is None else [TDim()] * (spatial + 2)
        groups = as_size(static_int(a["groups"], "groups"))
        _at_least([groups], 1, "groups", op)
        channels = x.shape.dims[-spatial - 1].size if batched is not None else None
        if wd[1].size is not None and groups is not None:
            rel.equal(channels, wd[1].size * groups, f"`{op}` input channels against "
                      "weight dim 1 times groups", "weight",
                      "the weight is [out, in / groups, *kernel]")
        out_c = wd[0].size
        if out_c is not None and groups is not None and groups.constant() not in (None, 1):
            g = groups.constant()
            c = out_c.constant()
            if g is not None and c is not None and c % g:
                raise OpError("GT2004", f"`{op}`: {c} output channels are not divisible by "
                              f"{g} groups", "groups")
        if b is not None:
            if b.shape.row is None and len(b.shape.dims) != 1:
                raise OpError("GT2005", f"`{op}` bias must have one dim, got `{b.shape}`",
                              "bias")
            if b.shape.row is None:
                rel.equal(b.shape.dims[0].size, out_c, f"`{op}` bias size against the "
                          "output channels (weight dim 0)", "bias")
        stride = _tuple(a["stride"], spatial, "stride", op)
        dilation = _tuple(a["dilation"], spatial, "dilation", op)
        _at_least(stride, 1, "stride", op)
        _at_least(dilation, 1, "dilation", op)
        if not all(_is(d, 1) for d in dilation):
            _kernels(x, "conv_dilated", op)  # (the CPU's dilated kernel has fewer dtypes)
        kernel = [d.size for d in wd[2:]]
        mode = a["padding"].value
        if isinstance(mode, str):
            if mode not in ("same", "valid"):
                raise OpError("GT2027", f"`{op}` padding must be 'same', 'valid' or sizes, "
                              f"got {mode!r}", "padding")
            if mode == "same":
                if not all(_is(st, 1) for st in stride):
                    raise OpError("GT2027", f"`{op}` padding='same' needs stride 1",
                                  "padding", "pad by sizes for a strided convolution")
                out = [d.size for d in dims]  # padded to keep every size
                return TTensor(x.dtype, _keep(x, batched, out_c, dims, out), x.device)
            padding: list[int | Size | None] = [0] * spatial
        else:
            padding = _tuple(a["padding"], spatial, "padding", op)
            _at_least(padding, 0, "padding", op)
        out = []
        for i in range(spatial):
            size = _window(dims[i].size, kernel[i], stride[i], padding[i], dilation[i])
            _positive(rel, size, op, i)
            out.append(size)
        return TTensor(x.dtype, _keep(x, batched, out_c, dims, out), x.device)

    return relation


def _conv_tensors(a: dict[str, Arg], table: str, op: str
                  ) -> tuple[TTensor, TTensor, TTensor | None]:
    """A convolution's input, weight and bias (None when not given): on one device, of one
    dtype (torch converts a bias of another dtype on some of its kernel paths and refuses it
    on others; gtdsl asks for the input's, which every path takes), with kernels for it."""
    x = tensor_of(a["input"], "input")
    w = tensor_of(a["weight"], "weight")
    _kernels(x, table, op)
    tensors = [("input", x), ("weight", w)]
    b = tensor_of(a["bias"], "bias") if not isinstance(a["bias"].type, TOther) else None
    if b is not None:
        tensors.append(("bias", b))
    same_device(tensors, f"`{op}`")
    for name, t in tensors[1:]:
        if x.dtype.is_concrete and t.dtype.is_concrete and t.dtype is not x.dtype:
            raise OpError("GT2002", f"`{op}` {name} is {t.dtype} for an input of {x.dtype}",
                          name, f"the {name} has the input's dtype")
    return x, w, b


def _keep(x: TTensor, batched: bool | None, channels: Size | None, dims: list[TDim],
          out: list[Size | None]) -> TShape:
    """The output shape; a spatial dim that keeps its size keeps its label."""
    new = [TDim(d.label if s is not None and d.size is not None and s == d.size else None, s)
           for d, s in zip(dims, out)]
    if batched is None:
        from gtdsl.ops.base import DOTS

        return TShape(DOTS, (TDim(None, channels), *new))
    lead = [x.shape.dims[0]] if batched else []
    return TShape(None, (*lead, TDim(None, channels), *new))


for _n in (1, 2):
    define(f"conv{_n}d", "input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1",
           f"torch.nn.functional.conv{_n}d", "convolution", method=False)(_make_conv(_n))


@define("conv_transpose2d", "input, weight, bias=None, stride=1, padding=0, output_padding=0, "
        "groups=1, dilation=1", "torch.nn.functional.conv_transpose2d", "convolution",
        method=False)
def _conv_transpose2d(rel: Rel, a: dict[str, Arg]) -> Type:
    op, spatial = "conv_transpose2d", 2
    x, w, b = _conv_tensors(a, "conv_transpose", op)
    batched, dims = _layout(x, spatial, op)
    _nonempty(x, batched, spatial, op, channels=False)
    if w.shape.row is None and len(w.shape.dims) != spatial + 2:
        raise OpError("GT2005", f"`{op}` weight must have 4 dims [in, out / groups, kH, kW], "
                      f"got `{w.shape}`", "weight")
    wd = list(w.shape.dims) if w.shape.row is None else [TDim()] * (spatial + 2)
    groups = as_size(static_int(a["groups"], "groups"))
    _at_least([groups], 1, "groups", op)
    channels = x.shape.dims[-spatial - 1].size if batched is not None else None
    rel.equal(channels, wd[0].size, f"`{op}` input channels against weight dim 0", "weight",
              "the weight is [in, out / groups, *kernel]")
    out_c = wd[1].size * groups if wd[1].size is not None and groups is not None else None
    g = groups.constant() if groups is not None else None
    c_in = wd[0].size.constant() if wd[0].size is not None else None
    if g is not None and g > 0 and c_in is not None and c_in % g:
        raise OpError("GT2004", f"`{op}`: weight dim 0 ({c_in} input channels) is not "
                      f"divisible by {g} groups", "groups")
    if b is not None and b.shape.row is None:
        if len(b.shape.dims) != 1:
            raise OpError("GT2005", f"`{op}` bias must have one dim, got `{b.shape}`", "bias")
        rel.equal(b.shape.dims[0].size, out_c, f"`{op}` bias size against the output "
                  "channels", "bias")
    stride = _tuple(a["stride"], spatial, "stride", op)
    padding = _tuple(a["padding"], spatial, "padding", op)
    extra = _tuple(a["output_padding"], spatial, "output_padding", op)
    dilation = _tuple(a["dilation"], spatial, "dilation", op)
    _at_least(stride, 1, "stride", op)
    _at_least(dilation, 1, "dilation", op)
    _at_least(padding, 0, "padding", op)
    _at_least(extra, 0, "output_padding", op)
    out = []
    for i in range(spatial):
        s, d, e = as_size(stride[i]), as_size(dilation[i]), as_size(extra[i])
        if s is not None and d is not None and e is not None:
            ec, sc, dc = e.constant(), s.constant(), d.constant()
            if ec is not None and sc is not None and dc is not None and ec >= max(sc, dc):
                raise OpError("GT2027", f"`{op}` output_padding must be smaller than stride or "
                              f"dilation, got {ec}", "output_padding")
        parts = [dims[i].size, s, as_size(padding[i]), d, wd[2 + i].size, e]
        if any(v is None for v in parts):
            size = None
        else:
            length, sz, p, dz, k, ez = parts
            assert length is not None and sz is not None and p is not None
            assert dz is not None and k is not None and ez is not None
            size = (length - 1) * sz - p * 2 + dz * (k - 1) + ez + 1
        _positive(rel, size, op, i)
        out.append(size)
    return TTensor(x.dtype, _keep(x, batched, out_c, dims, out), x.device)


# ---------------------------------------------------------------- pooling


def _ceil_window(length: Size | None, k: int | Size | None, s: int | Size | None,
                 p: int | Size | None, d: int | Size | None) -> Size | None:
    """The ceil-mode window count, as torch computes it: known for known sizes only."""
    vals = [as_size(v) for v in (length, k, s, p, d)]
    if any(v is None or v.constant() is None for v in vals):
        return None
    n, kc, sc, pc, dc = (v.constant() for v in vals)  # type: ignore[union-attr]
    assert None not in (n, kc, sc, pc, dc)
    span = n + 2 * pc - dc * (kc - 1) - 1  # type: ignore[operator]
    out = -(-span // sc) + 1  # type: ignore[operator]
    if (out - 1) * sc >= n + pc:  # type: ignore[operator]
        out -= 1
    return Size.of(out)


def _pooled(x: TTensor, batched: bool | None, spatial: int, dims: list[TDim],
            out: list[Size | None], indices: bool) -> Type:
    """A pooling's result: the input's batch and channels (label kept), the pooled sizes;
    with its indices (i64) when asked for."""
    channels = x.shape.dims[-spatial - 1].size if batched is not None else None
    shape = _keep(x, batched, channels, dims, out)
    if batched is not None:
        shape = TShape(shape.row, (*shape.dims[:-spatial - 1], x.shape.dims[-spatial - 1],
                                   *shape.dims[-spatial:]))
    values = TTensor(x.dtype, shape, x.device)
    return TTuple((values, TTensor(DT.I64, shape, x.device))) if indices else values


def _make_pool(kind: str, spatial: int):
    op = f"{kind}_pool{spatial}d"

    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        # (max_pool1d's kernel with indices is max_pool2d's, which has integer kernels)
        indices = kind == "max" and a["return_indices"].value is True
        _kernels(x, "max_pool2d" if kind == "max" and (spatial == 2 or indices) else
                 "max_pool1d" if kind == "max" else "avg_pool", op)
        batched, dims = _layout(x, spatial, op)
        kernel = _tuple(a["kernel_size"], spatial, "kernel_size", op)
        given = a["stride"]
        if given.value is None or given.value == ():  # no stride: the kernel's
            stride = list(kernel)
        else:
            stride = _tuple(given, spatial, "stride", op)
        _nonempty(x, batched, spatial, op, channels=True)
        padding = _tuple(a["padding"], spatial, "padding", op)
        dilation: list[int | Size | None] = _tuple(a["dilation"], spatial, "dilation", op) \
            if kind == "max" else [1] * spatial
        _at_least(kernel, 1, "kernel_size", op)
        _at_least(stride, 1, "stride", op)
        _at_least(padding, 0, "padding", op)
        _at_least(dilation, 1, "dilation", op)
        for k, p in zip(kernel, padding):
            ks, ps = as_size(k), as_size(p)
            if ks is None or ps is None:
                continue
            kc, pc = ks.constant(), ps.constant()
            if kc is not None and pc is not None and pc > kc // 2:
                raise OpError("GT2027", f"`{op}` padding {pc} is more than half the kernel "
                              f"size ({kc})", "padding", "pad by at most kernel_size // 2")
        ceil = a["ceil_mode"].value
        out = []
        for i in range(spatial):
            if ceil is False:
                size = _window(dims[i].size, kernel[i], stride[i], padding[i], dilation[i])
            else:
                size = _ceil_window(dims[i].size, kernel[i], stride[i], padding[i],
                                    dilation[i])
            _positive(rel, size, op, i)
            out.append(size)
        return _pooled(x, batched, spatial, dims, out,
                       kind == "max" and a["return_indices"].value is True)

    return relation


for _n in (1, 2):
    define(f"max_pool{_n}d", "input, kernel_size, stride=None, padding=0, dilation=1, "
           "ceil_mode=False, return_indices=False", f"torch.nn.functional.max_pool{_n}d",
           "convolution", method=False)(_make_pool("max", _n))
define("avg_pool1d", "input, kernel_size, stride=None, padding=0, ceil_mode=False, "
       "count_include_pad=True", "torch.nn.functional.avg_pool1d", "convolution",
       method=False)(_make_pool("avg", 1))
define("avg_pool2d", "input, kernel_size, stride=None, padding=0, ceil_mode=False, "
       "count_include_pad=True, divisor_override=None", "torch.nn.functional.avg_pool2d",
       "convolution", method=False)(_make_pool("avg", 2))


def _make_adaptive(kind: str, spatial: int):
    op = f"adaptive_{kind}_pool{spatial}d"

    def relation(rel: Rel, a: dict[str, Arg]) -> Type:
        x = tensor_of(a["input"], "input")
        _kernels(x, f"adaptive_{kind}_pool", op)
        batched, dims = _layout(x, spatial, op)
        arg = a["output_size"]
        elems = seq_elems(arg)
        if elems is None:
            sizes = [static_int(arg, "output_size")] * spatial
        else:
            if len(elems) != spatial:
                raise OpError("GT2016", f"`{op}` output_size takes {spatial} values, got "
                              f"{len(elems)}", "output_size")
            if spatial == 1 and any(e.value is None and isinstance(e.type, TOther)
                                    for e in elems):
                raise OpError("GT2016", f"`{op}` output_size must be an int", "output_size")
            sizes = [None if e.value is None and isinstance(e.type, TOther) else
                     static_int(e, "output_size") for e in elems]
            sizes = [d.size if e.value is None and isinstance(e.type, TOther) else s
                     for s, e, d in zip(sizes, elems, dims)]
        _at_least(sizes, 0, "output_size", op)
        if kind == "avg" and x.dtype in _COMPLEX and not all(_is(v, 1) for v in sizes):
            # (an output of one value per dim is a mean, which complex tensors have)
            raise OpError("GT2002", f"`{op}` has no kernel for {x.dtype} (but for an "
                          "output_size of 1)", "input", "pool the real and imaginary parts")
        for i, d in enumerate(dims):  # each pooled dim must hold values to pool
            c = d.size.constant() if d.size is not None else None
            if c == 0:
                raise OpError("GT2004", f"`{op}`: spatial dim {i} is empty", "input",
                              "adaptive pooling needs values in every spatial dim")
        out = [as_size(s) for s in sizes]
        return _pooled(x, batched, spatial, dims, out,
                       kind == "max" and a["return_indices"].value is True)

    return relation


for _n in (1, 2):
    define(f"adaptive_avg_pool{_n}d", "input, output_size",
           f"torch.nn.functional.adaptive_avg_pool{_n}d", "convolution",
           method=False)(_make_adaptive("avg", _n))
    define(f"adaptive_max_pool{_n}d", "input, output_size, return_indices=False",
           f"torch.nn.functional.adaptive_max_pool{_n}d", "convolution",
           method=False)(_make_adaptive("max", _n))
