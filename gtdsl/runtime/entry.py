"""Generated entry checks: one straight-line Python function per compiled signature.

In one pass over the arguments it checks what the parameter types say (tensor, device,
dtype, rank, sizes), binds the size variables, builds the specialization key, finds the
compiled body for the key, and calls it. It never explains a failure: on the first check
that fails it hands the call to the slow path, the reference cast (``casts.check_value``),
which raises the ``CastError`` with the full message, so the fast path and the reference
cannot disagree about what is accepted, only about speed.

The key holds only what the types leave open: a parameter declared ``f32[n, d]`` contributes
nothing, one declared ``float[*b, d]`` its dtype and rank, one declared ``?`` its dtype,
device kind and rank (or its Python class when it is not a tensor). Sizes are never in it.

The entry has the user's function's parameters and is installed under its name, so a call
with a wrong number of arguments or an unknown keyword gets Python's own message for that
function (``softmax() missing 1 required positional argument: 'x'``) at no cost to a good
call. A tensor the checks cannot read (a nested tensor: a plain ``torch.Tensor`` whose shape
raises, or a ``torch.Tensor`` subclass that says ``is_nested``) also goes to the slow path,
which refuses it (GT3001); tensor subclasses pay one attribute read for that, plain tensors
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, Label, Span
from gtdsl.ops.calls import DT_TORCH
from gtdsl.lower.torch.codegen import PREFIX, size_py
from gtdsl.types import DT, ScalarKind, Size, TDyn, TScalar, TTensor, Type
from gtdsl.types.lattice import dt_members


@dataclass(frozen=True, slots=True)
class KeyPart:
    param: str
    index: int
    what: str  # "dtype" | "cuda" | "rank" | "dyn"


def key_parts(params: list[tuple[str, Type]]) -> tuple[KeyPart, ...]:
    out: list[KeyPart] = []
    for i, (name, t) in enumerate(params):
        if isinstance(t, TTensor):
            if not t.dtype.is_concrete:
                out.append(KeyPart(name, i, "dtype"))
            if t.device.kind is None and not any(p.what == "cuda" for p in out):
                # the call's device: the first tensor whose device the types leave open
                out.append(KeyPart(name, i, "cuda"))
            if t.shape.row is not None:
                out.append(KeyPart(name, i, "rank"))
        elif isinstance(t, TDyn):
            out.append(KeyPart(name, i, "dyn"))
    return tuple(out)


def key_of(parts: tuple[KeyPart, ...], values: list[Any]) -> tuple:
    """The key, computed the slow way (the generated entry computes the same tuple)."""
    out = []
    for p in parts:
        v = values[p.index]
        if p.what == "dtype":
            out.append(v.dtype)
        elif p.what == "cuda":
            out.append(v.is_cuda)
        elif p.what == "rank":
            out.append(v.dim())
        else:
            out.append((v.dtype, v.is_cuda, v.dim()) if isinstance(v, torch.Tensor)
                       else v.__class__)
    return tuple(out)


def describe_key(parts: tuple[KeyPart, ...], key: tuple) -> dict[str, str]:
    return {f"argument `{p.param}` {p.what if p.what != 'cuda' else 'device'}":
            (str(v) if p.what != "cuda" else ("cuda" if v else "not cuda"))
            for p, v in zip(parts, key)}


def _key_code(p: KeyPart, name: str) -> str:
    return {"dtype": f"{name}.dtype", "cuda": f"{name}.is_cuda", "rank": f"{name}.dim()",
            "dyn": f"(({name}.dtype, {name}.is_cuda, {name}.dim()) if isinstance({name}, "
                   f"{PREFIX}T) else {name}.__class__)"}[p.what]


def generate_entry(params: list[tuple[str, Type]], defaults: dict[str, Any],
                   sizes: tuple[str, ...], rows: tuple[str, ...],
                   parts: tuple[KeyPart, ...], size_kw: tuple[str, ...] = ()
                   ) -> tuple[str, dict[str, Any]]:
    """Source of ``__gt_entry(params..., *, sizes...)`` and the constants it needs (install
    it with ``named_as``, as a ``staticmethod``: it takes no ``self``).

    ``size_kw`` are size variables a caller may give by keyword (``H=12``): those no argument
    binds on its own are taken from there, the others are compared with it.
    """
    first, _ = _generate(params, defaults, sizes, rows, parts, size_kw, frozenset(), True)
    src, consts = _generate(params, defaults, sizes, rows, parts, size_kw,
                            frozenset(v for v in size_kw if v in first), False)
    return str(src), consts


def _signature(names: list[str], defaults: dict[str, Any], size_kw: tuple[str, ...],
               consts: dict[str, Any]) -> list[str]:
    """The user's function's parameters, then its size variables by keyword only."""
    sig = []
    for n in names:
        if n in defaults:
            consts[f"{PREFIX}d_{n}"] = defaults[n]
            sig.append(f"{n}={PREFIX}d_{n}")
        else:
            sig.append(n)
    if size_kw:
        sig += ["*"] + [f"{v}=None" for v in size_kw]
    return sig


def generate_binder(params: list[tuple[str, Type]], defaults: dict[str, Any],
                    size_kw: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """Source of ``__gt_bind(params..., *, sizes...)``, returning ``(arguments, sizes)``: the
    entry's signature alone, for callers that check the arguments another way (the reference
    interpreter), so their wrong calls read as the compiled ones' do."""
    names = [n for n, _ in params]
    consts: dict[str, Any] = {}
    sig = _signature(names, defaults, size_kw, consts)
    kw = "{" + ", ".join(f"{v!r}: {v}" for v in size_kw) + "}"
    args = f"({', '.join(names)}{',' if len(names) == 1 else ''})"
    return f"def {PREFIX}bind({', '.join(sig)}):\n    return {args}, {kw}\n", consts


def named_as(fn: Any, name: str) -> Any:
    """``fn`` (generated) renamed to the user's function: Python's call errors and tracebacks
    then name ``name``, not the generated function."""
    short = name.rsplit(".", 1)[-1]
    fn.__name__, fn.__qualname__ = short, name
    fn.__code__ = fn.__code__.replace(co_name=short, co_qualname=name)
    return fn


def refuse_nested(function: str, params: Sequence[tuple[str, Type]],
                  spans: Sequence[Span | None], args: Sequence[Any]) -> None:
    """GT3001 for a nested tensor (``torch.nested``) passed to any parameter, annotated or
    not: its ragged dimensions have no size a gtdsl type (or gtdsl's checks of unchecked
    code) can describe, and reading its shape fails inside torch. The reference paths call
    this: the slow entry, the interpreter backend, and the diagnosis of a failed compiled
    body (so an unannotated parameter, which the fast entry does not look at, is refused as
    soon as the body fails on it)."""
    for (name, t), span, v in zip(params, spans, args):
        if isinstance(v, torch.Tensor) and v.is_nested:
            from gtdsl.runtime.errors import CALLER, CastError, caller_location

            where = CALLER.get() or caller_location()
            notes = (f"called from {where} (the caller is blamed)" if where else
                     "the caller is blamed",
                     f"got: a nested tensor (torch.nested, {str(v.layout).removeprefix('torch.')}"
                     f" layout) of {v.dim()} dimensions, dtype {v.dtype}",
                     f"mismatch: expected {'a dense tensor' if isinstance(t, TDyn) else t}, "
                     "got a nested tensor (its ragged dimensions have no size)")
            label = Label(span, f"declared here: {t}" if not isinstance(t, TDyn) else
                          "this parameter") if span is not None else None
            raise CastError(Diagnostic(
                "GT3001", f"argument `{name}` of `{function}` is a nested tensor, which gtdsl "
                "does not take", label, (), notes,
                "pass a dense tensor: pad the sequences to one length (e.g. "
                "`t.to_padded_tensor(0.0)`), or call once per sequence",
                path=None if label else function)) from None


def _generate(params: list[tuple[str, Type]], defaults: dict[str, Any],
              sizes: tuple[str, ...], rows: tuple[str, ...], parts: tuple[KeyPart, ...],
              size_kw: tuple[str, ...], given: frozenset[str], first_pass: bool
              ) -> tuple[str | set[str], dict[str, Any]]:
    names = [n for n, _ in params]
    consts: dict[str, Any] = {f"{PREFIX}T": torch.Tensor}
    sig = _signature(names, defaults, size_kw, consts)
    call_args = ", ".join(names)
    kw = "{" + ", ".join(f"{v!r}: {v}" for v in size_kw) + "}"
    slow = f"return {PREFIX}slow(({call_args}{',' if len(names) == 1 else ''}), {kw})"
    body: list[str] = []
    for v in sorted(given):
        body += [f"if {v} is None: {slow}", f"{PREFIX}s_{v} = {v}"]
    bound: set[str] = set(given)
    seen_device = False
    bound_rows: set[str] = set()
    deferred: list[str] = []
    fast = True
    for n, t in params:
        if isinstance(t, TDyn):
            continue
        if isinstance(t, TTensor):
            # a plain tensor: one comparison; a subclass: one more check, for nested tensors
            body.append(f"if {n}.__class__ is not {PREFIX}T and (not isinstance({n}, {PREFIX}T)"
                        f" or {n}.is_nested): {slow}")
            if t.dtype.is_concrete:
                consts[f"{PREFIX}dt_{t.dtype.value}"] = DT_TORCH[t.dtype]
                body.append(f"if {n}.dtype is not {PREFIX}dt_{t.dtype.value}: {slow}")
            elif t.dtype is not DT.ANY:
                cname = f"{PREFIX}dts_{t.dtype.value}"
                consts[cname] = frozenset(DT_TORCH[d] for d in dt_members(t.dtype)
                                          if d in DT_TORCH) | _wider_unsigned(t.dtype)
                body.append(f"if {n}.dtype not in {cname}: {slow}")
            dev = t.device
            if dev.kind == "cuda":
                body.append(f"if not {n}.is_cuda: {slow}")
                if dev.index is not None:
                    body.append(f"if {n}.get_device() != {int(dev.index)}: {slow}")
            elif dev.kind == "cpu":
                body.append(f"if not {n}.is_cpu: {slow}")
            elif dev.kind is not None:
                body.append(f"if {n}.device.type != {dev.kind!r}: {slow}")
            elif not seen_device:  # the call's device: CPU or one CUDA device
                seen_device = True
                body += [f"{PREFIX}cpu = {n}.is_cpu",
                         f"if not {PREFIX}cpu and not {n}.is_cuda: {slow}",
                         f"{PREFIX}dev = -1 if {PREFIX}cpu else {n}.get_device()"]
            else:
                body += [f"if {PREFIX}cpu:", f"    if not {n}.is_cpu: {slow}",
                         f"elif {n}.get_device() != {PREFIX}dev: {slow}"]
            k = len(t.shape.dims)
            sh = f"{PREFIX}sh_{n}"
            row = t.shape.row
            if row is None:
                # unpacking checks the rank and names every size in one step
                targets = []
                for j, d in enumerate(t.shape.dims):
                    var = _simple_var(d.size)
                    if var is not None and var not in bound:
                        targets.append(f"{PREFIX}s_{var}")
                        bound.add(var)
                    else:
                        targets.append(f"{sh}_{j}")
                unpack = ", ".join(targets) + ("," if k == 1 else "")
                # ValueError: another rank; RuntimeError: no shape (a nested tensor)
                body += ["try:", f"    {unpack} = {n}.shape" if k else
                         f"    () = {n}.shape", f"except (ValueError, RuntimeError): {slow}"]
                for j, d in enumerate(t.shape.dims):
                    if d.size is not None and targets[j] == f"{sh}_{j}":
                        fast &= _size_check(d.size, targets[j], bound, body, deferred, slow)
                continue
            body += ["try:", f"    {sh} = {n}.shape", f"except RuntimeError: {slow}",
                     f"if len({sh}) < {k}: {slow}"]
            if row.name is not None:
                lead = f"{sh}[:-{k}]" if k else sh
                if row.name in bound_rows:
                    body.append(f"if {lead} != {PREFIX}r_{row.name}: {slow}")
                else:
                    body.append(f"{PREFIX}r_{row.name} = {lead}")
                    bound_rows.add(row.name)
            for j, d in enumerate(t.shape.dims):
                if d.size is None:
                    continue
                fast &= _size_check(d.size, f"{sh}[{j - k}]", bound, body, deferred, slow)
        elif isinstance(t, TScalar):
            cls = {ScalarKind.INT: f"{n}.__class__ is not int",
                   ScalarKind.BOOL: f"{n}.__class__ is not bool",
                   ScalarKind.FLOAT: f"({n}.__class__ is not float and {n}.__class__ is not "
                                     "int)"}[t.kind]
            body.append(f"if {cls}: {slow}")
            if t.value is not None:
                fast &= _size_check(t.value, n, bound, body, deferred, slow)
        else:
            fast = False  # structs, lists, tuples: the reference check does them
    missing = (set(sizes) - bound) | (set(rows) - bound_rows)
    if first_pass:
        return missing, consts  # what no argument binds: the caller must give it
    if not fast or missing:
        body = [slow]
    else:
        body += deferred
        body += [f"if {v} is not None and {v} != {PREFIX}s_{v}: {slow}"
                 for v in size_kw if v not in given]
        first_dev = next((n for n, t in params if isinstance(t, TTensor) and
                          t.device.kind is None), None)
        # the call's device was read once already: CPU or CUDA, so is_cuda == not is_cpu
        key = ", ".join(f"not {PREFIX}cpu" if p.what == "cuda" and names[p.index] == first_dev
                        else _key_code(p, names[p.index]) for p in parts)
        key = f"({key},)" if len(parts) == 1 else f"({key})"
        extra = [f"{PREFIX}s_{s}" for s in sizes] + [f"{PREFIX}r_{r}" for r in rows]
        body += [
            f"{PREFIX}stats[0] += 1",
            f"{PREFIX}key = {key}",
            f"{PREFIX}f = {PREFIX}table.get({PREFIX}key)",
            f"if {PREFIX}f is None: {PREFIX}f = {PREFIX}compile({PREFIX}key)",
            "try:",
            f"    return {PREFIX}f({', '.join(names + extra)})",
            f"except {PREFIX}Passthrough: raise",
            f"except Exception as {PREFIX}e: return {PREFIX}diagnose({PREFIX}e, ({call_args}"
            f"{',' if len(names) == 1 else ''}), {kw})",
        ]
    # installed as a staticmethod `__call__` of the function object: no `self`
    lines = [f"def {PREFIX}entry({', '.join(sig)}):"] + ["    " + b for b in body]
    return "\n".join(lines) + "\n", consts


def _size_check(s: Size, expr: str, bound: set[str], body: list[str], deferred: list[str],
                slow: str) -> bool:
    c = s.constant()
    if c is not None:
        body.append(f"if {expr} != {c}: {slow}")
        return True
    vs = s.variables()
    if len(vs) == 1 and s == Size.of(next(iter(vs))):
        v = next(iter(vs))
        if v in bound:
            body.append(f"if {expr} != {PREFIX}s_{v}: {slow}")
        else:
            body.append(f"{PREFIX}s_{v} = {expr}")
            bound.add(v)
        return True
    if s.has_opaque():
        # `d // h` and `d % h` divide: only compare once the divisor is known to be positive
        deferred += ["try:", f"    {PREFIX}ok = {expr} == {size_py(s)}",
                     f"except ZeroDivisionError: {PREFIX}ok = False",
                     f"if not {PREFIX}ok: {slow}"]
        return True
    deferred.append(f"if {expr} != {size_py(s)}: {slow}")
    return True


def _simple_var(s: Size | None) -> str | None:
    if s is None or s.constant() is not None:
        return None
    vs = s.variables()
    v = next(iter(vs))
    return v if len(vs) == 1 and s == Size.of(v) else None


def _wider_unsigned(dt: DT) -> frozenset:
    if dt not in (DT.UINT, DT.ANY):
        return frozenset()
    return frozenset(getattr(torch, n) for n in ("uint16", "uint32", "uint64")
                     if hasattr(torch, n))


__all__ = ["KeyPart", "describe_key", "generate_binder", "generate_entry", "key_of",
           "key_parts", "named_as", "refuse_nested"]
