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

import sys

import itertools
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, Label, Span
from gtdsl.ops.calls import DT_TORCH
from gtdsl.lower.torch.codegen import PREFIX, size_py
from gtdsl.runtime.casts import LISTS, TUPLES
from gtdsl.types import (
    DT, ScalarKind, Size, TDyn, TList, TOther, TScalar, TStruct, TTensor, TTuple, Type,
)
from gtdsl.types.subst import size_vars_of
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
                   parts: tuple[KeyPart, ...], size_kw: tuple[str, ...] = (),
                   structs: Any = None) -> tuple[str, dict[str, Any]]:
    """Source of ``__gt_entry(params..., *, sizes...)`` and the constants it needs (install
    it with ``named_as``, as a ``staticmethod``: it takes no ``self``). Its namespace must
    also hold ``__gt_plain``: the classes of struct values known not to be mappings.

    ``size_kw`` are size variables a caller may give by keyword (``H=12``): those no argument
    binds on its own are taken from there, the others are compared with it. ``structs``
    looks a struct's declaration up by name (struct parameters are checked field by field).
    """
    return _generate(params, defaults, sizes, rows, parts, size_kw, structs)


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
    if sys.version_info >= (3, 11):  # code objects have a qualified name since 3.11
        fn.__code__ = fn.__code__.replace(co_name=short, co_qualname=name)
    else:
        fn.__code__ = fn.__code__.replace(co_name=short)
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


class _Nope(Exception):
    """A size expression of the entry divided by a size that is not positive."""


def _nope() -> int:
    raise _Nope


class _Gen:
    """The checks of one entry, emitted as straight-line code: what is bound where is known
    while generating, so each size is bound, compared or solved by a fixed statement."""

    def __init__(self, slow: str, consts: dict[str, Any], structs: Any,
                 entry: bool = True) -> None:
        self.slow, self.consts, self.structs = slow, consts, structs
        # an entry check: tensors whose type names no device share the call's device (a
        # cast inside a body does not compare devices, as the reference cast does not)
        self.entry = entry
        self.body: list[str] = []
        self.pad = ""
        self.bound: set[str] = set()
        self.rows: set[str] = set()
        self.deferred: list[tuple[Size, str]] = []  # `expr == size`, once its variables are bound
        self.seen_device = False
        self.fast = True
        self.in_loop = False
        self.n = 0

    def emit(self, line: str) -> None:
        self.body.append(self.pad + line)

    def tmp(self, stem: str) -> str:
        self.n += 1
        return f"{PREFIX}{stem}{self.n}"

    # ------------------------------------------------------------------ sizes
    def py(self, s: Size) -> str:
        """``s`` over the bound size locals; ``//`` and ``%`` by a size that is not positive
        raise ``_Nope`` (the reference evaluates them to no size)."""
        return size_py(s, lambda num, op, den: f"({num} {op} {den} if {den} > 0 else "
                                               f"{PREFIX}nope())")

    def compare(self, s: Size, expr: str) -> None:
        if s.has_opaque():
            ok = self.tmp("ok")
            self.emit("try:")
            self.emit(f"    {ok} = {expr} == {self.py(s)}")
            self.emit(f"except {PREFIX}Nope: {ok} = False")
            self.emit(f"if not {ok}: {self.slow}")
        else:
            self.emit(f"if {expr} != {self.py(s)}: {self.slow}")

    def size(self, s: Size, expr: str) -> None:
        """``expr`` (an int) must equal ``s``: bind its one new variable, or compare it now,
        or leave the equation for when more variables are bound."""
        c = s.constant()
        if c is not None:
            self.emit(f"if {expr} != {c}: {self.slow}")
            return
        free = s.variables() - self.bound
        if not free:
            self.compare(s, expr)
            return
        v = s.single_variable()
        if v is not None:
            self.emit(f"{PREFIX}s_{v} = {expr}")
            self.bound.add(v)
            return
        if self.in_loop:  # its locals change with each element: the reference does these
            self.fast = False
            return
        self.deferred.append((s, expr))

    def solve(self) -> None:
        """The deferred equations, as the reference solves them: compare those whose
        variables are bound, solve those linear in their one unbound variable, repeat."""
        progress = True
        while self.deferred and progress:
            progress = False
            for item in list(self.deferred):
                s, expr = item
                free = s.variables() - self.bound
                if not free:
                    self.deferred.remove(item)
                    self.compare(s, expr)
                    progress = True
                elif len(free) == 1:
                    v = next(iter(free))
                    split = _linear(s, v)
                    if split is None:
                        continue
                    coef, rest = split
                    c, r = self.tmp("c"), self.tmp("r")
                    self.emit("try:")
                    self.emit(f"    {c} = {self.py(coef)}")
                    self.emit(f"    {r} = {expr} - {self.py(rest)}")
                    self.emit(f"except {PREFIX}Nope: {self.slow}")
                    self.emit(f"if {c} == 0 or {r} % {c} or {r} // {c} < 0: {self.slow}")
                    self.emit(f"{PREFIX}s_{v} = {r} // {c}")
                    self.bound.add(v)
                    self.deferred.remove(item)
                    progress = True

    # ------------------------------------------------------------------ values
    def value(self, e: str, t: Type) -> None:
        if isinstance(t, TDyn):
            return
        if isinstance(t, TTensor):
            self.tensor(e, t)
        elif isinstance(t, TScalar):
            self.scalar(e, t)
        elif isinstance(t, TStruct):
            self.struct(e, t)
        elif isinstance(t, TList):
            self.list(e, t)
        elif isinstance(t, TTuple):
            self.tuple(e, t)
        elif isinstance(t, TOther):
            self.other(e, t)
        else:
            self.fast = False

    def tensor(self, n: str, t: TTensor) -> None:
        slow = self.slow
        # a plain tensor: one comparison; a subclass: one more check, for nested tensors
        self.emit(f"if {n}.__class__ is not {PREFIX}T and (not isinstance({n}, {PREFIX}T)"
                  f" or {n}.is_nested): {slow}")
        if t.dtype.is_concrete:
            self.consts[f"{PREFIX}dt_{t.dtype.value}"] = DT_TORCH[t.dtype]
            self.emit(f"if {n}.dtype is not {PREFIX}dt_{t.dtype.value}: {slow}")
        elif t.dtype is not DT.ANY:
            cname = f"{PREFIX}dts_{t.dtype.value}"
            self.consts[cname] = frozenset(DT_TORCH[d] for d in dt_members(t.dtype)
                                           if d in DT_TORCH) | _wider_unsigned(t.dtype)
            self.emit(f"if {n}.dtype not in {cname}: {slow}")
        dev = t.device
        if dev.kind == "cuda":
            self.emit(f"if not {n}.is_cuda: {slow}")
            if dev.index is not None:
                self.emit(f"if {n}.get_device() != {int(dev.index)}: {slow}")
        elif dev.kind == "cpu":
            self.emit(f"if not {n}.is_cpu: {slow}")
        elif dev.kind is not None:
            self.emit(f"if {n}.device.type != {dev.kind!r}: {slow}")
        elif not self.entry:
            pass
        elif not self.seen_device:  # the call's device: CPU or one CUDA device
            self.seen_device = True
            self.emit(f"{PREFIX}cpu = {n}.is_cpu")
            self.emit(f"if not {PREFIX}cpu and not {n}.is_cuda: {slow}")
            self.emit(f"{PREFIX}dev = -1 if {PREFIX}cpu else {n}.get_device()")
        else:
            self.emit(f"if {PREFIX}cpu:")
            self.emit(f"    if not {n}.is_cpu: {slow}")
            self.emit(f"elif {n}.get_device() != {PREFIX}dev: {slow}")
        k = len(t.shape.dims)
        sh = self.tmp("sh")
        row = t.shape.row
        if row is None:
            # unpacking checks the rank and names every size in one step
            targets = []
            for j, d in enumerate(t.shape.dims):
                var = d.size.single_variable() if d.size is not None else None
                if var is not None and var not in self.bound:
                    targets.append(f"{PREFIX}s_{var}")
                    self.bound.add(var)
                else:
                    targets.append(f"{sh}_{j}")
            unpack = ", ".join(targets) + ("," if k == 1 else "")
            # ValueError: another rank; RuntimeError: no shape (a nested tensor)
            self.emit("try:")
            self.emit(f"    {unpack} = {n}.shape" if k else f"    () = {n}.shape")
            self.emit(f"except (ValueError, RuntimeError): {slow}")
            for j, d in enumerate(t.shape.dims):
                if d.size is not None and targets[j] == f"{sh}_{j}":
                    self.size(d.size, targets[j])
            return
        self.emit("try:")
        self.emit(f"    {sh} = {n}.shape")
        self.emit(f"except RuntimeError: {slow}")
        self.emit(f"if len({sh}) < {k}: {slow}")
        if row.name is not None:
            lead = f"{sh}[:-{k}]" if k else sh
            if row.name in self.rows:
                self.emit(f"if {lead} != {PREFIX}r_{row.name}: {slow}")
            elif self.in_loop:
                self.fast = False
            else:
                self.emit(f"{PREFIX}r_{row.name} = {lead}")
                self.rows.add(row.name)
        for j, d in enumerate(t.shape.dims):
            if d.size is not None:
                self.size(d.size, f"{sh}[{j - k}]")

    def scalar(self, n: str, t: TScalar) -> None:
        cls = {ScalarKind.INT: f"{n}.__class__ is not int",
               ScalarKind.BOOL: f"{n}.__class__ is not bool",
               ScalarKind.FLOAT: f"({n}.__class__ is not float and {n}.__class__ is not "
                                 "int)"}[t.kind]
        self.emit(f"if {cls}: {self.slow}")
        if t.value is not None and t.kind is ScalarKind.INT:
            self.size(t.value, n)

    def struct(self, e: str, t: TStruct) -> None:
        from gtdsl.types.subst import KEEP, substitute

        if self.structs is None:  # no declarations to check against: the reference does
            self.fast = False
            return
        info = self.structs(t.name)
        if info is None:
            return  # as the reference: a struct it cannot look up is not checked
        env: dict[str, Size] = {}
        for p, a in zip(info.params, t.args):
            # an unknown struct argument is a fresh variable, bound by the first field using it
            env[p] = a if a is not None else Size.of(self.tmp("fresh"))
        fields = info.field_types()
        m = self.tmp("m")
        self.emit(f"{m} = {e}.__class__ is dict or ({e}.__class__ not in {PREFIX}plain and "
                  f"isinstance({e}, {PREFIX}Mapping))")
        names = []
        self.emit("try:")
        for name in fields:
            f = self.tmp("f")
            names.append(f)
            attr = (f"{e}.{name}" if name.isidentifier() and not keyword.iskeyword(name)
                    and not name.startswith("__") else f"getattr({e}, {name!r})")
            self.emit(f"    {f} = {e}[{name!r}] if {m} else {attr}")
        self.emit(f"except Exception: {self.slow}")
        for f, ft in zip(names, fields.values()):
            self.value(f, substitute(ft, lambda v: env.get(v, KEEP), rows={}))

    def list(self, e: str, t: TList) -> None:
        self.emit(f"if {e}.__class__ is not list and not isinstance({e}, {PREFIX}LISTS): "
                  f"{self.slow}")
        if isinstance(t.elem, TDyn):
            return
        names: list[str] = []
        rows: list[str] = []
        size_vars_of(t.elem, names, rows)
        if set(names) - self.bound or set(rows) - self.rows or (
                self.entry and not self.seen_device and _holds_tensors(t.elem)):
            # the first element binds them (and the call's device), the others are compared
            first = self.tmp("e")
            self.emit(f"if not {e}: {self.slow}")
            self.emit(f"{first} = {e}[0]")
            self.value(first, t.elem)
            # the first element's equations (``G*F`` of a field bound by a later field) are
            # solved now, so that the other elements compare against known sizes
            self.solve()
            rest = f"{e}[1:]"
        else:
            rest = e
        el = self.tmp("e")
        self.emit(f"for {el} in {rest}:")
        pad, loop, self.pad, self.in_loop = self.pad, self.in_loop, self.pad + "    ", True
        start = len(self.body)
        self.value(el, t.elem)
        if len(self.body) == start:
            self.emit("pass")
        self.pad, self.in_loop = pad, loop

    def tuple(self, e: str, t: TTuple) -> None:
        self.emit(f"if not isinstance({e}, {PREFIX}TUPLES) or len({e}) != {len(t.elems)}: "
                  f"{self.slow}")
        for i, et in enumerate(t.elems):
            if isinstance(et, TDyn):
                continue
            el = self.tmp("e")
            self.emit(f"{el} = {e}[{i}]")
            self.value(el, et)

    def other(self, e: str, t: TOther) -> None:
        test = {"none": f"{e} is not None",
                "str": f"not isinstance({e}, str)",
                "dtype": f"not isinstance({e}, {PREFIX}torch.dtype)",
                "device": f"not isinstance({e}, ({PREFIX}torch.device, str))"}.get(t.what)
        if test is not None:
            self.emit(f"if {test}: {self.slow}")


def _generate(params: list[tuple[str, Type]], defaults: dict[str, Any],
              sizes: tuple[str, ...], rows: tuple[str, ...], parts: tuple[KeyPart, ...],
              size_kw: tuple[str, ...], structs: Any
              ) -> tuple[str, dict[str, Any]]:
    names = [n for n, _ in params]
    consts: dict[str, Any] = {f"{PREFIX}T": torch.Tensor, f"{PREFIX}Nope": _Nope,
                              f"{PREFIX}nope": _nope, f"{PREFIX}Mapping": Mapping,
                              f"{PREFIX}LISTS": LISTS, f"{PREFIX}TUPLES": TUPLES,
                              f"{PREFIX}torch": torch}
    sig = _signature(names, defaults, size_kw, consts)
    call_args = ", ".join(names)
    kw = "{" + ", ".join(f"{v!r}: {v}" for v in size_kw) + "}"
    slow = f"return {PREFIX}slow(({call_args}{',' if len(names) == 1 else ''}), {kw})"

    def checks(given: frozenset[str]) -> tuple[_Gen, set[str]]:
        g = _Gen(slow, consts, structs)
        for v in sorted(given):
            # a size given by keyword: a non-negative int (the reference says why not)
            g.emit(f"if {v}.__class__ is not int or {v} < 0: {slow}")
            g.emit(f"{PREFIX}s_{v} = {v}")
        g.bound |= given
        for n, t in params:
            g.value(n, t)
            # as the reference: each parameter's equations are solved once it is checked (a
            # size it solves to a negative number is refused there, even if a later
            # argument would bind that size to it); those it cannot solve wait
            g.solve()
        missing = (set(sizes) - g.bound) | {f"*{r}" for r in set(rows) - g.rows}
        return g, missing

    # the size keywords no argument determines on its own: the entry has one variant of its
    # checks per subset given (at most 3 such keywords; beyond that, all must be given)
    _, open_ = checks(frozenset())
    optional = sorted(v for v in size_kw if v in open_)
    subsets: list[frozenset[str]] = (
        [frozenset(c) for k in range(len(optional) + 1)
         for c in itertools.combinations(optional, k)]
        if len(optional) <= 3 else [frozenset(optional)])
    variants = {}
    for given in subsets:
        g, missing = checks(given)
        variants[given] = _dispatch(g, missing, given, size_kw, names, sizes, rows, parts,
                                    params, call_args, kw, slow)
    body = _branch(optional if len(optional) <= 3 else [], variants, frozenset(),
                   frozenset(optional) if len(optional) > 3 else frozenset(), slow)
    # installed as a staticmethod `__call__` of the function object: no `self`
    lines = [f"def {PREFIX}entry({', '.join(sig)}):"] + ["    " + b for b in body]
    return "\n".join(lines) + "\n", consts


def _branch(optional: list[str], variants: dict[frozenset[str], list[str]],
            given: frozenset[str], required: frozenset[str], slow: str) -> list[str]:
    """``if H is not None: <variant with H given> else: <variant without>``, nested."""
    if required:
        return [f"if {v} is None: {slow}" for v in sorted(required)] + variants[required]
    if not optional:
        return variants[given]
    v, rest = optional[0], optional[1:]
    return ([f"if {v} is not None:"] +
            ["    " + b for b in _branch(rest, variants, given | {v}, required, slow)] +
            ["else:"] + ["    " + b for b in _branch(rest, variants, given, required, slow)])


def _dispatch(g: _Gen, missing: set[str], given: frozenset[str], size_kw: tuple[str, ...],
              names: list[str], sizes: tuple[str, ...], rows: tuple[str, ...],
              parts: tuple[KeyPart, ...], params: list[tuple[str, Type]], call_args: str,
              kw: str, slow: str) -> list[str]:
    if not g.fast or missing or g.deferred:
        return [slow]
    body = list(g.body)
    body += [f"if {v} is not None and {v} != {PREFIX}s_{v}: {slow}"
             for v in size_kw if v not in given]
    first_dev = next((n for n, t in params if isinstance(t, TTensor) and
                      t.device.kind is None), None)
    # the call's device was read once already: CPU or CUDA, so is_cuda == not is_cpu
    key = ", ".join(f"not {PREFIX}cpu" if p.what == "cuda" and names[p.index] == first_dev
                    else _key_code(p, names[p.index]) for p in parts)
    key = f"({key},)" if len(parts) == 1 else f"({key})"
    extra = [f"{PREFIX}s_{s}" for s in sizes] + [f"{PREFIX}r_{r}" for r in rows]
    return body + [
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


def generate_trusted(params: list[tuple[str, Type]], sizes: tuple[str, ...],
                     rows: tuple[str, ...], parts: tuple[KeyPart, ...]) -> str:
    """Source of ``__gt_trusted(params..., sizes..., rows...)``: the entry for a call from
    another gtdsl body whose checker proved every argument's type, with the callee's sizes
    computed by the caller. It checks nothing: it builds the key and calls the body."""
    names = [n for n, _ in params]
    extra = [f"{PREFIX}s_{s}" for s in sizes] + [f"{PREFIX}r_{r}" for r in rows]
    key = ", ".join(_key_code(p, names[p.index]) for p in parts)
    key = f"({key},)" if len(parts) == 1 else f"({key})"
    args = ", ".join(names + extra)
    return (f"def {PREFIX}trusted({args}):\n"
            f"    {PREFIX}stats[0] += 1\n"
            f"    {PREFIX}f = {PREFIX}table.get({key})\n"
            f"    if {PREFIX}f is None: {PREFIX}f = {PREFIX}compile({key})\n"
            f"    return {PREFIX}f({args})\n")


def _holds_tensors(t: Type) -> bool:
    """Whether a value of type ``t`` may hold tensors whose type names no device (a
    struct's fields are not looked at: it may)."""
    if isinstance(t, TTensor):
        return t.device.kind is None
    if isinstance(t, TList):
        return _holds_tensors(t.elem)
    if isinstance(t, TTuple):
        return any(_holds_tensors(e) for e in t.elems)
    return isinstance(t, TStruct)


def generate_cast(target: Type, sizes: tuple[str, ...], rows: tuple[str, ...],
                  new: tuple[str, ...], new_rows: tuple[str, ...], structs: Any
                  ) -> tuple[str, dict[str, Any]]:
    """Source of ``__gt_cast(value, sizes..., rows...)`` for a cast inside a body: the
    straight-line check of ``value`` against ``target``, given the body's bound ``sizes``
    and ``rows`` that ``target`` mentions; it returns the values of the ``new`` sizes and
    ``new_rows`` it binds, in that order (an empty tuple when none). When a check fails it
    returns ``__gt_ref(value, {sizes}, {rows})``, the reference cast, which raises the
    ``CastError`` (or returns what it binds, for a value the generated checks do not
    cover)."""
    consts: dict[str, Any] = {f"{PREFIX}T": torch.Tensor, f"{PREFIX}Nope": _Nope,
                              f"{PREFIX}nope": _nope, f"{PREFIX}Mapping": Mapping,
                              f"{PREFIX}LISTS": LISTS, f"{PREFIX}TUPLES": TUPLES,
                              f"{PREFIX}torch": torch}
    known = ("{" + ", ".join(f"{v!r}: {PREFIX}s_{v}" for v in sizes) + "}, {" +
             ", ".join(f"{r!r}: {PREFIX}r_{r}" for r in rows) + "}")
    slow = f"return {PREFIX}ref({PREFIX}v, {known})"
    g = _Gen(slow, consts, structs, entry=False)
    g.bound, g.rows = set(sizes), set(rows)
    g.value(f"{PREFIX}v", target)
    g.solve()
    outs = [f"{PREFIX}s_{v}" for v in new] + [f"{PREFIX}r_{r}" for r in new_rows]
    ok = g.fast and not g.deferred and set(new) <= g.bound and set(new_rows) <= g.rows
    body = g.body + [f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})"] \
        if ok else [slow]
    params = [f"{PREFIX}v"] + [f"{PREFIX}s_{v}" for v in sizes] + \
        [f"{PREFIX}r_{r}" for r in rows]
    lines = [f"def {PREFIX}cast({', '.join(params)}):"] + ["    " + b for b in body]
    return "\n".join(lines) + "\n", consts


def _linear(s: Size, v: str) -> tuple[Size, Size] | None:
    """``(coef, rest)`` with ``s == coef*v + rest``, ``v`` in neither (to the first power,
    outside every ``//`` and ``%``), or None."""
    if not s.is_linear_in(v):
        return None
    coef, rest = Size.of(0), Size.of(0)
    for mono, c in s.terms:
        powers = dict(mono)
        term = Size.of(c)
        for atom, p in mono:
            if atom != v:
                a = Size.of(atom) if isinstance(atom, str) else Size.atom(atom)
                for _ in range(p):
                    term = term * a
        if v in powers:
            coef = coef + term
        else:
            rest = rest + term
    if v in coef.variables() | rest.variables():
        return None
    return coef, rest


def _wider_unsigned(dt: DT) -> frozenset:
    if dt not in (DT.UINT, DT.ANY):
        return frozenset()
    return frozenset(getattr(torch, n) for n in ("uint16", "uint32", "uint64")
                     if hasattr(torch, n))


__all__ = ["KeyPart", "describe_key", "generate_binder", "generate_cast", "generate_entry",
           "generate_trusted", "key_of",
           "key_parts", "named_as", "refuse_nested"]
