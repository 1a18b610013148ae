"""Runtime failures as gtdsl errors: ``CastError`` (also a ``TypeError``) rendered as in
docs/runtime.md, "What is checked when", with the blamed party, what was received, what
differs and the bindings."""

from __future__ import annotations

import contextvars
import os
import re
import sys
from types import FrameType
from typing import Any, Sequence

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, Label
from gtdsl.ir.core import Blame, BlameKind
from gtdsl.runtime.casts import Bindings, CastFailed, Mismatch, check_value, owned
from gtdsl.runtime.values import describe_value
from gtdsl.types import Size, TScalar

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# torch's own frames (nn.Module.__call__ calling a jitted forward) are not the caller
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


class TypeCheckError(GtdslError):
    """A program given to ``load`` or ``@jit`` has static errors."""


class CastError(GtdslError, TypeError):
    """A runtime check failed: a value does not match its declared type, or an op's
    arguments fail a fact the checker left to run time. ``blame`` says who is at fault."""

    def __init__(self, diagnostic: Diagnostic, blame: Blame | None = None,
                 mismatch: Mismatch | None = None) -> None:
        super().__init__([diagnostic])
        self.blame = blame
        self.mismatch = mismatch

    @property
    def code(self) -> str:
        return self.diagnostics[0].code


CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("gtdsl_caller",
                                                                   default=None)


def caller_location() -> str | None:
    """The innermost frame outside gtdsl and the generated code: the user's call site (or
    what the command line set, for `gtdsl run`)."""
    if CALLER.get() is not None:
        return CALLER.get()
    f: FrameType | None = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not name.startswith(_PACKAGE_DIR) and not name.startswith("<gtdsl") and \
                not name.startswith(_TORCH_DIR) and \
                "threading.py" not in name and "concurrent/futures" not in name:
            return f"{name}:{f.f_lineno}"
        f = f.f_back
    return None


_SUBJECT = {
    BlameKind.ARG: "does not match its declared type",
    BlameKind.RET: "does not match the declared return type",
    BlameKind.OP_ARG: "does not match the type the call needs",
    BlameKind.ANNOT: "does not match its annotation",
    BlameKind.EXTERN: "does not match the type its use needs (it came from unchecked code)",
}


def cast_error(blame: Blame, target: Any, value_desc: str, mismatch: Mismatch,
               bindings: Bindings) -> CastError:
    """The CastError for a failed CHECK_CAST or entry check."""
    function = blame.function
    what = blame.what
    if blame.kind in (BlameKind.ARG, BlameKind.RET):
        message = f"{what} of `{function}` {_SUBJECT[blame.kind]}"
    else:  # the value is named by its place in the body: `argument `v` of `double``
        message = f"in `{function}`: {what} {_SUBJECT[blame.kind]}"
    notes = []
    if blame.kind is BlameKind.ARG:
        where = caller_location()
        notes.append(f"called from {where} (the caller is blamed)" if where else
                     "the caller is blamed")
    elif blame.kind is BlameKind.EXTERN:
        notes.append("the unchecked code that produced the value is blamed")
    notes.append(f"got: {value_desc}")
    notes.append(f"mismatch: {mismatch}")
    # where each size came from is known at a function's entry; inside a body, just values
    b = bindings.describe(where=blame.kind is BlameKind.ARG)
    if b:
        notes.append(f"bindings: {b}")
    if isinstance(target, TScalar) and target.value is not None and blame.param and \
            target.value == Size.of(blame.param):
        target = TScalar(target.kind)  # `k: int`, whose value the body names as the size k
    label = {BlameKind.ARG: f"declared here: {target}",
             BlameKind.ANNOT: f"declared here: {target}",
             BlameKind.RET: f"returned here; the declared return type is {target}"}.get(
        blame.kind, f"needs {target} here")
    primary = Label(blame.span, label) if blame.span is not None else None
    secondary: tuple[Label, ...] = ()
    if blame.origin is not None and blame.origin != blame.span:
        secondary = (Label(blame.origin, "the value's type is unknown from here"),)
    help = {
        BlameKind.ARG: "pass a value of the declared type, or loosen the annotation",
        BlameKind.RET: "the function's body returns a value its declared type excludes",
        BlameKind.EXTERN: "check what the unchecked call returns, or annotate less precisely",
    }.get(blame.kind, "make the value match, or loosen the annotation")
    d = Diagnostic("GT3001", message, primary, secondary, tuple(notes), help,
                   path=None if primary else function)
    return CastError(d, blame, mismatch)


def op_error(op: str, blame: Blame, message: str, help: str | None, got: str,
             bindings: Bindings) -> CastError:
    """The CastError for a failed CHECK_OP: an op's arguments fail at run time."""
    notes = [f"got: {got}"]
    b = bindings.describe(where=False)
    if b:
        notes.append(f"bindings: {b}")
    from gtdsl.ops.calls import BINARY

    shown = f"`{BINARY[op]}`" if op in BINARY else "indexing" if op == "getitem" else \
        f"call to `{op}`"
    primary = Label(blame.span, f"in this {shown}") if blame.span is not None else None
    d = Diagnostic("GT3002", f"in `{blame.function}`: {message}", primary, (), tuple(notes),
                   help or "make the arguments agree, or check the types that left this "
                   "open", path=None if primary else blame.function)
    return CastError(d, blame)


def assert_error(function: str, span: Any, message: str | None) -> CastError:
    text = f"assertion failed in `{function}`" + (f": {message}" if message else "")
    d = Diagnostic("GT3003", text, Label(span, "this assertion") if span else None,
                   help="the asserted condition was false for these inputs",
                   path=None if span else function)
    return CastError(d)


def unchecked_error(function: str, span: Any, exc: BaseException) -> CastError:
    """Unchecked code (an unannotated function or an allowlisted Python call) raised."""
    d = Diagnostic("GT3004", f"unchecked code in `{function}` failed: "
                   f"{type(exc).__name__}: {exc}", Label(span, "here") if span else None,
                   help="the unchecked call rejected these values (gtdsl checks types only)",
                   path=None if span else function)
    return CastError(d)


def value_error(function: str, op: str, span: Any, exc: BaseException) -> CastError:
    """torch refused the values of an op whose types were right (an index out of range)."""
    shown = "indexing" if op == "getitem" else f"`{op}`"
    d = Diagnostic("GT3005", f"{shown} failed in `{function}`: {_first_line(exc)}",
                   Label(span, f"this {shown}" if op != "getitem" else "this indexing")
                   if span else None,
                   help="the arguments have the right types but values the op rejects",
                   path=None if span else function)
    return CastError(d)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


_BOUND_HERE = re.compile(r"bound by ((?:field `[^`]*`, )*(?:field `[^`]*`|dim \d+|dims \d+\.\.\d+))")


def _owned_mismatch(name: str, m: Mismatch) -> Mismatch:
    """A parameter's mismatch with the parameter named where the check left it implicit: in
    its path when it is a field (```self.weight`, dim 0``), and in sizes bound earlier in the
    same argument (``bound by x dim 0``)."""
    path = owned(name, m.path) if m.path.startswith("field `") else m.path
    reason = _BOUND_HERE.sub(lambda g: "bound by " + owned(name, g.group(1)), m.reason)
    if (path, reason) == (m.path, m.reason):
        return m
    return Mismatch(path, m.expected, m.got, reason)


def bind_params(params: Sequence[tuple[str, Any]], args: Sequence[Any], blames: Sequence[Any],
                b: Bindings, structs: Any) -> None:
    """Check the arguments against their parameter types, binding sizes in ``b``. A parameter
    whose sizes stay open (``H*K`` with neither bound) is checked again after the others, which
    may bind one of them; the first failure that remains is raised as a ``CastError``."""
    waiting = list(zip(params, args, blames))
    while waiting:
        retry, first = [], None
        for (name, t), v, blame in waiting:
            trial = b.copy()
            try:
                check_value(v, t, trial, "", structs, owner=name, entry=True)
            except CastFailed as f:
                mismatch = _owned_mismatch(name, f.mismatch)
                if not mismatch.reason.startswith("no argument determines"):
                    raise cast_error(blame, t, describe_value(v), mismatch, trial) from None
                retry.append(((name, t), v, blame))
                first = first or (blame, t, v, mismatch, trial)
                continue
            b.sizes, b.rows, b.where, b.device = trial.sizes, trial.rows, trial.where, \
                trial.device
        if len(retry) == len(waiting):
            assert first is not None
            blame, t, v, mismatch, trial = first
            raise cast_error(blame, t, describe_value(v), mismatch, trial) from None
        waiting = retry


