"""The reference interpreter: the IR run eagerly on torch, every check executed.

It is the fully dynamic semantics of gtdsl and the oracle every backend is tested against.
Each cast runs the reference cast (``gtdsl.runtime.casts``); each op first re-runs its type
relation on the concrete metadata of its arguments (a failure is a ``CastError`` blaming the
op's line, never a raw torch error), then calls torch, then checks that torch's result
belongs to the type the relation computed (a difference is a bug in gtdsl, reported as an
``InternalError``). Slow by design; the torch backend is the fast path.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from gtdsl.diagnostics import InternalError
from gtdsl.ir import core as ir
from gtdsl.ir.core import Block, Blame, BlameKind, Eqn, Function, Lit, Op, Var
from gtdsl.ops import OPS, OpError, Rel
from gtdsl.ops.calls import call_op
from gtdsl.ops.operators import BY_NAME as OPERATORS, checked_range
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.runtime.errors import (
    assert_error, bind_params, cast_error, op_error, unchecked_error, value_error,
)
from gtdsl.runtime.values import arg_of, describe_value, get_field, literal, type_of_value
from gtdsl.types import TDyn


class Program:
    """An IR program made runnable: its functions by qualified name, its structs, the
    Python names it may use."""

    def __init__(self, program: ir.Program, allowed: Any) -> None:
        self.program = program
        self.allowed = allowed
        self.ir: dict[str, Function] = {f.name: f for f in program.functions}
        self.structs: dict[str, ir.StructDecl] = {s.name: s for s in program.structs}
        self.defaults: dict[str, dict[str, Any]] = {
            f.name: dict(f.defaults) for f in program.functions}

    def struct(self, name: str) -> ir.StructDecl | None:
        return self.structs.get(name)

    def param_names(self, qualname: str) -> tuple[str, ...]:
        return self.ir[qualname].param_names()


def bind_arguments(prog: Program, qualname: str, args: tuple, kwargs: Mapping[str, Any]
                   ) -> list[Any]:
    """Python's call rules for a gtdsl function: positions, keywords, defaults."""
    names = prog.param_names(qualname)
    if len(args) > len(names):
        raise TypeError(f"{qualname}() takes {len(names)} arguments but {len(args)} were given")
    values = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names:
            raise TypeError(f"{qualname}() got an unexpected keyword argument '{k}'")
        if k in values:
            raise TypeError(f"{qualname}() got multiple values for argument '{k}'")
        values[k] = v
    defaults = prog.defaults.get(qualname, {})
    out = []
    for n in names:
        if n in values:
            out.append(values[n])
        elif n in defaults:
            out.append(defaults[n])
        else:
            raise TypeError(f"{qualname}() missing required argument: '{n}'")
    return out


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Frame:
    def __init__(self, fn: Function) -> None:
        self.fn = fn
        self.env: dict[int, Any] = {}
        self.bindings = Bindings()


def interpret(prog: Program, qualname: str, args: tuple, kwargs: Mapping[str, Any],
              sizes: Mapping[str, Any] | None = None) -> Any:
    """Call function ``qualname`` of ``prog`` with Python arguments, every check executed;
    ``sizes`` gives size variables by name (those no argument determines)."""
    values = bind_arguments(prog, qualname, args, kwargs)
    return run_function(prog, prog.ir[qualname], values, sizes)


def run_function(prog: Program, fn: Function, values: list[Any],
                 sizes: Mapping[str, Any] | None = None) -> Any:
    fr = Frame(fn)
    for k, n in (sizes or {}).items():
        if n is not None:
            fr.bindings.sizes[k] = n
            fr.bindings.where[k] = "the caller"
    for p, v in zip(fn.params, values):
        fr.env[p.id] = v
    # the entry casts bind sizes as the compiled entry does: a parameter whose sizes stay open
    # (`H*K` with neither bound) is checked after the others; the casts then re-check in order
    params = {p.id for p in fn.params}
    entry = [(e, x) for e in fn.body.eqns if e.op is Op.CHECK_CAST and
             e.param("blame").kind is BlameKind.ARG and isinstance(x := e.ins[0], Var) and
             x.id in params]
    if entry:
        owners = [(e.param("blame").param or "", e.param("target")) for e, _ in entry]
        bind_params(owners, [fr.env[x.id] for _, x in entry],
                    [e.param("blame") for e, _ in entry], fr.bindings, prog.struct)
    try:
        _run_block(prog, fr, fn.body)
    except _Return as r:
        return r.value
    return None


def _val(fr: Frame, a: Any) -> Any:
    if isinstance(a, Var):
        return fr.env[a.id]
    assert isinstance(a, Lit)
    return literal(a.value, fr.bindings.sizes)


def _run_block(prog: Program, fr: Frame, block: Block) -> list[Any] | None:
    for e in block.eqns:
        if e.op is Op.YIELD:
            return [_val(fr, a) for a in e.ins]
        if e.op is Op.RETURN:
            raise _Return(_val(fr, e.ins[0]))
        _run_eqn(prog, fr, e)
    return None


def _run_eqn(prog: Program, fr: Frame, e: Eqn) -> None:
    op = e.op
    ins = [_val(fr, a) for a in e.ins]
    if op is Op.CHECK_CAST:
        target, blame = e.param("target"), e.param("blame")
        cast(prog, fr.bindings, ins[0], target, blame)
        fr.env[e.outs[0].id] = ins[0]
    elif op is Op.CHECK_OP:
        check_op(e.param("op"), e.param("names"), e.param("blame"), ins, fr.bindings)
    elif op is Op.IF:
        out = _run_block(prog, fr, e.blocks[0] if ins[0] else e.blocks[1])
        for o, v in zip(e.outs, out or ()):
            fr.env[o.id] = v
    elif op is Op.FOR:
        binders = e.param("binders")
        carried = ins[1:]
        for item in ins[0]:
            fr.env[binders[0].id] = item
            for b, v in zip(binders[1:], carried):
                fr.env[b.id] = v
            carried = _run_block(prog, fr, e.blocks[0]) or []
        for o, v in zip(e.outs, carried):
            fr.env[o.id] = v
    elif op is Op.ASSERT:
        if not ins[0]:
            raise assert_error(fr.fn.name, e.span, e.param("message"))
    elif op is Op.CALL:
        callee = e.param("callee")
        values = bind_arguments(prog, callee, (), dict(zip(e.param("args"), ins)))
        given = {k: literal(v, fr.bindings.sizes) for k, v in e.param("sizes", ())}
        fr.env[e.outs[0].id] = run_function(prog, prog.ir[callee], values, given)
    else:
        fr.env[e.outs[0].id] = _value(prog, fr, e, ins)


def _value(prog: Program, fr: Frame, e: Eqn, ins: list[Any]) -> Any:
    op = e.op
    if op is Op.TUPLE:
        return tuple(ins)
    if op is Op.LIST:
        return list(ins)
    if op is Op.LIST_CAT:
        return [*ins[0], *ins[1]]
    if op is Op.NOT:
        return not ins[0]
    if op is Op.UNARY:
        try:
            return OPERATORS[e.param("op")].fn(ins[0])
        except Exception as exc:  # an unchecked value without `-`
            raise unchecked_error(fr.fn.name, e.span, exc) from None
    if op is Op.CONST:
        return literal(e.param("value"), fr.bindings.sizes)
    if op is Op.GET_FIELD:
        return get_field(ins[0], e.param("field"))
    if op is Op.GET_ITEM:
        return ins[0][ins[1] if len(ins) > 1 else e.param("index")]
    if op is Op.ATTR:
        attr = e.param("attr")
        x = ins[0]
        return {"shape": lambda: tuple(x.shape), "ndim": x.dim, "numel": x.numel,
                "dtype": lambda: x.dtype, "device": lambda: x.device}[attr]()
    if op is Op.COMPARE or op is Op.BOOL_OP:
        fn = OPERATORS[e.param("op")].fn
        try:
            return fn(*ins) if op is Op.COMPARE else functools.reduce(fn, ins)
        except Exception as exc:  # unchecked values Python cannot compare
            raise unchecked_error(fr.fn.name, e.span, exc) from None
    if op is Op.RANGE:
        try:
            return checked_range(*ins)
        except (OverflowError, TypeError, ValueError) as exc:  # too long, a step of 0, or
            raise value_error(fr.fn.name, "range", e.span, exc) from None  # not ints (`?`)
    if op is Op.SLICE:
        return slice(*ins)
    if op is Op.GETATTR:
        attr = e.param("attr")
        if attr.startswith("_"):
            raise InternalError(f"private attribute `{attr}` in the IR")
        try:
            return getattr(ins[0], attr)
        except Exception as exc:
            raise unchecked_error(fr.fn.name, e.span, exc) from None
    if op is Op.EXTERN:
        return _extern(prog, fr, e, ins)
    return run_op(fr.fn.name, e, ins, fr.bindings)


def cast(prog: Program, b: Bindings, value: Any, target: Any, blame: Blame) -> None:
    owner = blame.param or "" if blame.kind is BlameKind.ARG else ""
    if blame.kind is not BlameKind.ARG:
        b.where.clear()  # inside a body only the values of sizes are reported (as compiled)
    try:
        check_value(value, target, b, "", prog.struct, owner=owner,
                    entry=blame.kind is BlameKind.ARG)
    except CastFailed as f:
        raise cast_error(blame, target, describe_value(value), f.mismatch, b) from None


def _received(v: Any, depth: int = 0) -> str:
    """An op's argument as it arrived: a tensor's type, a number's value (``-1``), a tuple
    of them as Python writes it (``(3, -1)``)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, tuple) and depth < 4:
        inner = ", ".join(_received(x, depth + 1) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return str(type_of_value(v))


def _bound_args(names: tuple[str, ...], ins: list[Any]) -> dict[str, Any]:
    return {n: arg_of(v, n) for n, v in zip(names, ins)}


def check_op(name: str, names: tuple[str, ...], blame: Blame, ins: list[Any],
             b: Bindings) -> Any:
    """Re-run op ``name``'s relation on the arguments' concrete metadata."""
    try:
        return OPS[name].relation(Rel(), _bound_args(names, ins))
    except OpError as err:
        got = ", ".join(f"{n}: {_received(v)}" for n, v in zip(names, ins))
        raise op_error(name, blame, err.message, err.help, got, b) from None


def run_op(function: str, e: Eqn, ins: list[Any], b: Bindings) -> Any:
    name = e.op.value
    names = e.param("names")
    blame = Blame(BlameKind.OP_ARG, function, e.span, f"the arguments of `{name}`")
    expected = check_op(name, names, blame, ins, b)
    try:
        out = call_op(name, dict(zip(names, ins)))
    except Exception as exc:  # metadata was fine: torch refused the values
        raise value_error(function, name, e.span, exc) from None
    if not isinstance(expected, TDyn):
        try:  # the relation's sizes, evaluated under this call's bindings, are torch's
            check_value(out, expected, b.copy())
        except CastFailed as f:
            raise InternalError(f"`{name}` returned {type_of_value(out)}, outside its "
                                f"relation's type {expected}: {f.mismatch}") from None
    return out


def resolve_extern(path: str, allowed: Any) -> Any:
    """An allowlisted Python name by its full dotted path (the checker allowed it; checked
    again here, so IR that names anything else never runs)."""
    try:
        return allowed.resolve(path)
    except LookupError as err:
        raise InternalError(str(err)) from None


def _extern(prog: Program, fr: Frame, e: Eqn, ins: list[Any]) -> Any:
    path = e.param("path")
    try:
        obj = resolve_extern(path, prog.allowed)
        if e.param("call", True) is False:
            return obj
        keywords = e.param("keywords", ()) or ()
        n = len(ins) - len(keywords)
        return obj(*ins[:n], **dict(zip(keywords, ins[n:])))
    except InternalError:
        raise
    except Exception as exc:
        raise unchecked_error(fr.fn.name, e.span, exc) from None


__all__ = ["Program", "bind_arguments", "interpret", "run_function"]
