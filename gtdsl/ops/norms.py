"""Normalisation over channels and instances: ``group_norm instance_norm batch_norm`` (eval
and training), and resampling: ``interpolate`` (nearest, linear, bilinear, bicubic,
trilinear, area). Inputs are ``[N, C, *spatial]``; the affine weight and bias and the running
statistics are ``[C]`` of the input's dtype; the output has the input's type (for
``interpolate``, the requested spatial sizes, or each size times its scale, rounded down)."""

from __future__ import annotations

import math

from gtdsl.ops.base import (
    DT, Arg, OpError, Rel, Size, TDim, TOther, TShape, TTensor, as_size, choice, require_float,
    same_device, seq_elems, static_int, tensor_of,
)
from gtdsl.ops.table import define
from gtdsl.types import Type
from gtdsl.types.torchrules import probe


def _channels(x: TTensor, op: str, min_rank: int = 2) -> Size | None:
    if x.shape.row is not None:
        return None
    if len(x.shape.dims) < min_rank:
        raise OpError("GT2005", f"`{op}` takes an input of at least {min_rank} dims "
                      f"[N, C, ...], got `{x.shape}`", "input")
    return x.shape.dims[1].size


def _per_channel(rel: Rel, a: dict[str, Arg], names: tuple[str, ...], x: TTensor,
                 c: Size | None, op: str, any_dtype: tuple[str, ...] = (),
                 one_dtype: bool = True) -> None:
    tensors = [("input", x)]
    for name in names:
        if isinstance(a[name].type, TOther):
            continue
        t = tensor_of(a[name], name)
        tensors.append((name, t))
        if t.shape.row is None:
            if len(t.shape.dims) != 1:
                raise OpError("GT2005", f"`{op}` {name} must be [C], got `{t.shape}`", name)
            rel.equal(t.shape.dims[0].size, c, f"`{op}` {name} against the input's channels "
                      "(dim 1)", name)
        # the input's dtype, or f32 for a half-precision input (torch's mixed dtypes)
        mixed = t.dtype is DT.F32 and x.dtype in (DT.F16, DT.BF16)
        if x.dtype.is_concrete and t.dtype.is_concrete and t.dtype is not x.dtype and \
                not mixed and name not in any_dtype:
            raise OpError("GT2002", f"`{op}` {name} is {t.dtype} for an input of {x.dtype}",
                          name, f"the {name} has the input's dtype" + (
                              " (or f32)" if x.dtype in (DT.F16, DT.BF16) else ""))
    params = [(n, t) for n, t in tensors[1:] if t.dtype.is_concrete and n not in any_dtype]
    for n, t in params[1:] if one_dtype else ():
        if t.dtype is not params[0][1].dtype:
            raise OpError("GT2002", f"`{op}` {n} is {t.dtype} and {params[0][0]} "
                          f"{params[0][1].dtype}", n, "give the parameters one dtype")
    same_device(tensors, f"`{op}`")


@define("group_norm", "input, num_groups, weight=None, bias=None, eps=1e-05",
        "torch.nn.functional.group_norm", "normalisation", method=False)
def _group_norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", "group_norm")
    c = _channels(x, "group_norm")
    g = as_size(static_int(a["num_groups"], "num_groups"))
    gc = g.constant() if g is not None else None
    if gc is not None and gc < 1:
        raise OpError("GT2027", f"`group_norm` num_groups must be at least 1, got {gc}",
                      "num_groups")
    cc = c.constant() if c is not None else None
    if gc is not None and cc is not None and cc % gc:
        raise OpError("GT2004", f"`group_norm`: {cc} channels are not divisible by {gc} "
                      "groups", "num_groups")
    if g is not None and c is not None and (gc is None or cc is None):
        rel.check("`group_norm`: the channels are divisible by the groups")
    _per_channel(rel, a, ("weight", "bias"), x, c, "group_norm")
    if gc is not None and cc is not None and gc > 0 and x.shape.row is None:
        # torch's check: the batch times the channels per group times the spatial sizes
        n = x.shape.dims[0].size
        total = n * (cc // gc) if n is not None else None
        for d in x.shape.dims[2:]:
            total = total * d.size if total is not None and d.size is not None else None
        if total is not None and total.constant() == 1:
            raise OpError("GT2004", "`group_norm` needs more than one value per group, got 1",
                          "input", "use fewer groups, or a larger batch")
    return x


def _values_per_channel(rel: Rel, x: TTensor, op: str, instance: bool) -> None:
    """Training statistics need more than one value per channel (per instance and channel
    for instance_norm): torch refuses a batch statistic of one value."""
    if x.shape.row is not None:
        return
    dims = x.shape.dims[2:] if instance else (x.shape.dims[0], *x.shape.dims[2:])
    n = Size.of(1)
    for d in dims:
        if d.size is None:
            rel.check(f"`{op}`: more than one value per channel")
            return
        n = n * d.size
    c = n.constant()
    if c is not None and c == 1:
        raise OpError("GT2004", f"`{op}` needs more than one value per channel to compute "
                      "batch statistics, got 1", "input",
                      "use a larger batch, or the running statistics (training=False)")
    if c is None:
        rel.check(f"`{op}`: more than one value per channel", ("ge", n, Size.of(2)))


@define("batch_norm", "input, running_mean, running_var, weight=None, bias=None, "
        "training=False, momentum=0.1, eps=1e-05", "torch.nn.functional.batch_norm",
        "normalisation", method=False)
def _batch_norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", "batch_norm")
    c = _channels(x, "batch_norm")
    training = a["training"].value
    if isinstance(a["running_mean"].type, TOther) != isinstance(
            a["running_var"].type, TOther) and probe("batch_norm_stats_together"):
        raise OpError("GT2013", "`batch_norm` takes running_mean and running_var together",
                      "running_mean", "pass both, or neither (training=True)")
    if training is False and (isinstance(a["running_mean"].type, TOther)
                              or isinstance(a["running_var"].type, TOther)):
        raise OpError("GT2013", "`batch_norm` in eval mode needs running_mean and "
                      "running_var", "running_mean", "pass them, or training=True")
    _per_channel(rel, a, ("running_mean", "running_var", "weight", "bias"), x, c,
                 "batch_norm")
    if training is True:
        _values_per_channel(rel, x, "batch_norm", instance=False)
    return x


@define("instance_norm", "input, running_mean=None, running_var=None, weight=None, "
        "bias=None, use_input_stats=True, momentum=0.1, eps=1e-05",
        "torch.nn.functional.instance_norm", "normalisation", method=False)
def _instance_norm(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    require_float(x.dtype, "input", "instance_norm")
    c = _channels(x, "instance_norm", min_rank=3)
    if x.shape.row is None and x.shape.dims[0].size is not None and \
            x.shape.dims[0].size.constant() == 0:
        raise OpError("GT2004", "`instance_norm` of an empty batch", "input",
                      "torch cannot normalise no instances")
    # (instance_norm applies its weight and bias apart from the statistics: their dtypes
    # need not agree with each other, only each with the input)
    _per_channel(rel, a, ("running_mean", "running_var", "weight", "bias"), x, c,
                 "instance_norm", one_dtype=False)
    if a["use_input_stats"].value is False and (isinstance(a["running_mean"].type, TOther)
                                                or isinstance(a["running_var"].type, TOther)):
        raise OpError("GT2013", "`instance_norm` with use_input_stats=False needs "
                      "running_mean and running_var", "use_input_stats")
    if a["use_input_stats"].value is not False:
        _values_per_channel(rel, x, "instance_norm", instance=True)
    return x


# ---------------------------------------------------------------- interpolate

_MODES = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2,
          "bicubic": 2, "trilinear": 3}


@define("interpolate", "input, size=None, scale_factor=None, mode='nearest', "
        "align_corners=None, recompute_scale_factor=None, antialias=False",
        "torch.nn.functional.interpolate", "normalisation", method=False)
def _interpolate(rel: Rel, a: dict[str, Arg]) -> Type:
    x = tensor_of(a["input"], "input")
    mode = choice(a["mode"], "mode", "interpolate", tuple(_MODES))
    if x.shape.row is not None:
        return TTensor(x.dtype, TShape(x.shape.row, tuple(TDim() for _ in x.shape.dims)),
                       x.device)
    rank = len(x.shape.dims)
    if rank not in (3, 4, 5):
        raise OpError("GT2005", f"`interpolate` takes [N, C, *spatial] with 1 to 3 spatial "
                      f"dims, got `{x.shape}`", "input")
    spatial = rank - 2
    if isinstance(mode, str):
        want = _MODES[mode]
        if want is not None and want != spatial:
            raise OpError("GT2005", f"`interpolate` mode {mode!r} takes {want} spatial dims "
                          f"({want + 2}-dim input), got `{x.shape}`", "input")
        if a["align_corners"].value is not None and want is None:
            raise OpError("GT2027", f"`interpolate` align_corners is for the linear and "
                          f"cubic modes, not {mode!r}", "align_corners")
        # the dtypes with kernels: floating, and u8 for nearest, bilinear and bicubic
        if not (x.dtype is DT.U8 and mode in ("nearest", "nearest-exact", "bilinear",
                                              "bicubic")):
            require_float(x.dtype, "input", f"interpolate ({mode})")
    size, scale = a["size"], a["scale_factor"]
    given_size = not isinstance(size.type, TOther)
    given_scale = not isinstance(scale.type, TOther)
    if given_size == given_scale:
        raise OpError("GT2013", "`interpolate` takes either size or scale_factor", "size",
                      "pass exactly one of them")
    dims = list(x.shape.dims)
    out: list[Size | None] = []
    if given_size:
        elems = seq_elems(size)
        values = [static_int(e, "size") for e in elems] if elems is not None else \
            [static_int(size, "size")] * spatial
        if len(values) != spatial:
            raise OpError("GT2016", f"`interpolate` size takes {spatial} values, got "
                          f"{len(values)}", "size")
        out = [as_size(v) for v in values]
        low = 0 if mode == "area" else 1  # (area is an adaptive pooling: to nothing, too)
        for s in out:
            c = s.constant() if s is not None else None
            if c is not None and c < low:
                raise OpError("GT2027", f"`interpolate` sizes must be positive, got {c}",
                              "size")
    else:
        elems = seq_elems(scale)
        factors = [e.value for e in elems] if elems is not None else [scale.value] * spatial
        if len(factors) != spatial:
            raise OpError("GT2016", f"`interpolate` scale_factor takes {spatial} values, got "
                          f"{len(factors)}", "scale_factor")
        for d, f in zip(dims[2:], factors):
            if not isinstance(f, (int, float)) or isinstance(f, bool):
                out.append(None)
                continue
            if f <= 0:
                raise OpError("GT2027", f"`interpolate` scale factors must be positive, got "
                              f"{f}", "scale_factor")
            c = d.size.constant() if d.size is not None else None
            if c is not None:
                out.append(Size.of(math.floor(c * float(f))))
            elif float(f).is_integer() and d.size is not None:
                out.append(d.size * int(f))
            else:
                out.append(None)
        for s in out:
            c = s.constant() if s is not None else None
            if c is not None and c < (0 if mode == "area" else 1) and not any(
                    d.size is not None and d.size.constant() == 0 for d in dims[2:]):
                raise OpError("GT2004", "`interpolate` would give an output size of "
                              f"{c}", "scale_factor", "use a larger scale factor")
    new = [TDim(d.label if s is not None and d.size is not None and s == d.size else None,
                s) for d, s in zip(dims[2:], out)]
    return TTensor(x.dtype, TShape(None, (dims[0], dims[1], *new)), x.device)
