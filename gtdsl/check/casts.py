"""Cast insertion: where a value meets a more precise type (an argument, a return, an annotated
assignment, a loop invariant, an operand given a type by its context). A value whose type is
already as precise passes as is; one that is consistent with the target passes through a
``CHECK_CAST`` carrying its blame label; one that contradicts it is a static error naming the
conflicting component (docs/types.md, "What is checked, and when").
"""

from __future__ import annotations

from collections.abc import Callable

from gtdsl.check.builder import Builder, V
from gtdsl.check.messages import kind_of
from gtdsl.diagnostics import Span
from gtdsl.ir.core import Blame, Op
from gtdsl.types import DynReason, SizeEq, TDim, TDyn, TShape, TStruct, TTensor, Type, meet
from gtdsl.types.subst import conforms, strip_labels


class CastChecker(Builder):
    def coerce(self, v: V, target: Type, blame: Callable[[], Blame], decl: Span | None,
               what: str, span: Span | None, code_on_fail: str | None = None) -> V:
        """``v`` as a value of ``target``: as is when ⊑, through a cast when consistent
        (``blame`` makes the cast's blame label, only where there is a cast)."""
        if isinstance(v.type, TDyn) and v.type.reason is DynReason.ERROR:
            return v.but(type=target)
        if conforms(v.type, target):
            return v
        s, t = strip_labels(v.type), strip_labels(target)
        eqs: list[SizeEq] = []
        m = meet(t, s, eqs)  # target first: an undecided size keeps the declared one
        if m is None:
            code, detail = explain(s, t)
            self.error(code_on_fail or code, f"{what} does not match its declared type: "
                       f"{detail}", span, f"this has type {v.type}",
                       ((decl, f"declared as {target}"),),
                       help=help_for(code, target, v.type), notes=(f"expected: {target}",
                                                           f"found:    {v.type}"))
            return self.dyn_error(span)
        for eq in eqs:
            if not eq.left.has_opaque() and not eq.right.has_opaque() and (
                    eq.left.variables() | eq.right.variables()) <= self.rigid:
                self.error("GT2006", f"{what}: size {eq.right} is not {eq.left} for every "
                           "value of the size variables", span, f"this has type {v.type}",
                           ((decl, f"declared as {target}"),),
                           help="a function's size variables are rigid inside its body: it "
                           "must work for every value of them; use one variable where sizes "
                           "must be equal")
                return self.dyn_error(span)
        m = relabel(m, target)
        out = self.var("cast", m)
        if self.ir:
            self.emit(Op.CHECK_CAST, (v.atom,), (out,), (("target", m), ("blame", blame())),
                      span=span)
        return v.but(type=m, atom=out)


def relabel(m: Type, target: Type) -> Type:
    """The meet, with the labels the declared type gives (annotations name dims)."""
    if isinstance(m, TTensor) and isinstance(target, TTensor):
        tdims = target.shape.dims
        dims = list(m.shape.dims)
        for i in range(1, min(len(dims), len(tdims)) + 1):
            if tdims[-i].label is not None:
                dims[-i] = TDim(tdims[-i].label, dims[-i].size)
        return TTensor(m.dtype, TShape(m.shape.row, tuple(dims)), m.device)
    return m


def explain(s: Type, t: Type) -> tuple[str, str]:
    """Which component of ``s`` conflicts with ``t``: a code and a sentence."""
    from gtdsl.types.core import shape_meet
    from gtdsl.types.lattice import dev_meet, dt_meet

    if isinstance(s, TTensor) and isinstance(t, TTensor):
        if dt_meet(s.dtype, t.dtype) is None:
            return "GT2002", f"dtype {s.dtype} is not {t.dtype}"
        if dev_meet(s.device, t.device) is None:
            return "GT2003", f"device {s.device} is not {t.device}"
        if shape_meet(s.shape, t.shape, []) is None:
            rs, rt = s.shape.rank, t.shape.rank
            if rs is not None and rt is not None and rs != rt or (
                    rs is not None and t.shape.row is not None and rs < len(t.shape.dims)):
                expected = rt if rt is not None else f"at least {len(t.shape.dims)}"
                return "GT2005", f"rank {rs} is not {expected}"
            k = min(len(s.shape.dims), len(t.shape.dims))
            for i in range(1, k + 1):
                a, b = s.shape.dims[-i], t.shape.dims[-i]
                if a.size is not None and b.size is not None and meet(
                        TTensor(shape=TShape(None, (a,))), TTensor(shape=TShape(None, (b,)))) \
                        is None:
                    n = len(t.shape.dims) - i if t.shape.row is None else -i
                    return "GT2004", f"dim {n} has size {a.size}, expected {b.size}"
            return "GT2004", f"shape {s.shape} is not {t.shape}"
    if isinstance(s, TStruct) and isinstance(t, TStruct) and s.name == t.name:
        return "GT2004", f"{s} is not {t}"
    return "GT2001", f"{kind_of(s)} is not {kind_of(t)}"


def help_for(code: str, target: Type, found: Type | None = None) -> str:
    """How to make a value meet its declared type, for the conflict ``code`` names."""
    if code == "GT2005" and isinstance(target, TTensor) and isinstance(found, TTensor) and \
            found.shape.rank is not None:
        return (f"reshape the value to rank {len(target.shape.dims)}, or declare the type "
                f"`{found}`")
    return {
        "GT2002": "convert with .to(...) or change the declared dtype",
        "GT2003": "move the value with .to(device=...) or change the declared device",
        "GT2005": f"reshape the value or change the declared type `{target}`",
        "GT2004": "make the sizes agree, or loosen the declared size to `?`",
    }.get(code, "change the value or its declared type")
