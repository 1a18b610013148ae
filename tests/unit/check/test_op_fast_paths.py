"""The op rules' fast paths give what their general rules give.

``bind``, ``promote``, ``same_device``, ``broadcast_dim`` and the dtype lattice each have a
shortcut for their common case (positional arguments; operands of known priority; one device
object; equal dims; table lookups). Each is compared here with the general algorithm it
replaces, written out plainly, over small exhaustive domains.
"""

from __future__ import annotations

import itertools

import pytest

from gtdsl.ops import OPS, Arg, OpError, Rel, bind
from gtdsl.ops.base import broadcast_dim, broadcast_shapes, promote, same_device
from gtdsl.ops.table import REQUIRED, default_arg, positional_names
from gtdsl.types import (
    DT, Dev, Priority, ScalarKind, Size, TDim, TDyn, TList, TScalar, TShape, TTensor, TTuple,
    result_type,
)
from gtdsl.types.core import DOTS
from gtdsl.types.lattice import SCALAR_DTYPE, dt_join, dt_leq, dt_meet, dev_meet


# ---------------------------------------------------------------- bind


def _bind_reference(op, args, kwargs):
    """``bind`` as first written: one loop, no plan."""
    bound = {}
    positional = list(args)
    for p in op.params:
        if p.variadic:
            rest = tuple(positional)
            positional = []
            if len(rest) == 1 and (isinstance(rest[0].value, tuple) or isinstance(
                    rest[0].type, (TTuple, TList, TDyn))):
                bound[p.name] = rest[0]
            else:
                bound[p.name] = Arg(TTuple(tuple(a.type for a in rest)), rest)
            continue
        if positional and not p.keyword_only:
            bound[p.name] = positional.pop(0)
    if positional:
        raise OpError("GT2013", f"`{op.name}` takes at most {len(bound)} positional "
                      f"arguments, got {len(args)}", None, f"the signature is {op.signature()}")
    for name, arg in kwargs.items():
        param = next((p for p in op.params if p.name == name and not p.variadic), None)
        if param is None:
            raise OpError("GT2013", f"`{op.name}` has no parameter `{name}`", name,
                          f"the signature is {op.signature()}")
        if name in bound:
            raise OpError("GT2013", f"`{op.name}` got `{name}` twice", name)
        bound[name] = arg
    for p in op.params:
        if p.name in bound:
            continue
        if p.default is REQUIRED:
            raise OpError("GT2013", f"`{op.name}` is missing its argument `{p.name}`", None,
                          f"the signature is {op.signature()}")
        bound[p.name] = default_arg(p.default)
    return bound


def _outcome(f):
    try:
        out = f()
    except OpError as err:
        return ("error", err.code, err.message, err.arg, err.help)
    return ("ok", list(out.items()))  # the order of the names matters (the IR keeps it)


@pytest.mark.parametrize("name", sorted(OPS))
def test_bind_agrees_with_the_reference(name: str) -> None:
    op = OPS[name]
    pool = [Arg(TTensor(DT.F32)), Arg(TScalar(ScalarKind.INT, Size.of(1)), 1),
            Arg(TTuple((TScalar(ScalarKind.INT),)), (Arg(TScalar(ScalarKind.INT)),)),
            Arg(TDyn())]
    names = [p.name for p in op.params] + ["bogus"]
    for n in range(len(op.params) + 2):
        args = [pool[i % len(pool)] for i in range(n)]
        for kw in [(), *((k,) for k in names), tuple(names[-3:-1])]:
            kwargs = {k: pool[0] for k in kw}
            for _ in range(2):  # the second time from the plan made by the first
                assert _outcome(lambda: bind(op, args, kwargs)) == _outcome(
                    lambda: _bind_reference(op, args, kwargs)), (n, kw)


# ---------------------------------------------------------------- promote


def _promote_reference(args):
    options = []
    for t in args:
        if isinstance(t, TScalar):
            options.append([(SCALAR_DTYPE[t.kind.value], Priority.SCALAR)])
        elif isinstance(t, TTensor):
            if t.shape.row is None:
                prios = [Priority.ZERO_DIM] if not t.shape.dims else [Priority.TENSOR]
            else:
                prios = [Priority.TENSOR] if t.shape.dims else [Priority.TENSOR,
                                                                  Priority.ZERO_DIM]
            options.append([(t.dtype, p) for p in prios])
        else:
            options.append([(DT.ANY, Priority.TENSOR), (DT.ANY, Priority.ZERO_DIM)])
    out = None
    for combo in itertools.product(*options):
        r = result_type(list(combo))
        out = r if out is None else dt_join(out, r)
    return out


_SHAPES = [TShape(None, ()), TShape(None, (TDim(None, Size.of(2)),)), TShape(DOTS, ()),
           TShape(DOTS, (TDim(),))]


def test_promote_agrees_with_the_reference() -> None:
    operands = [TScalar(k) for k in ScalarKind] + [TDyn()] + [
        TTensor(dt, s) for dt in (DT.BOOL, DT.U8, DT.I32, DT.INT, DT.F16, DT.BF16, DT.FLOAT,
                                  DT.C64, DT.ANY) for s in _SHAPES]
    for n in (1, 2):
        for args in itertools.product(operands, repeat=n):
            assert promote(list(args)) is _promote_reference(args), args


# ---------------------------------------------------------------- same_device


def _same_device_reference(tensors, what):
    cpu = Dev("cpu")
    out, first, skipped = Dev(), None, False
    for name, t in tensors:
        if t.shape.row is None and not t.shape.dims and t.device == cpu and len(tensors) > 1:
            skipped = True
            continue
        m = dev_meet(out, t.device)
        if m is None:
            raise OpError("GT2003", f"{what}: `{first}` is on {out} but `{name}` is on "
                          f"{t.device}", name)
        if t.device.kind is not None and first is None:
            first = name
        out = m
    if skipped and out == Dev() and all(t.shape.row is None and not t.shape.dims
                                         and t.device == cpu for _, t in tensors):
        return cpu
    return out


def test_same_device_agrees_with_the_reference() -> None:
    cuda0 = Dev("cuda", 0)
    devices = [Dev(), Dev("cpu"), Dev("cuda"), cuda0, cuda0, Dev("cuda", 1)]  # cuda0 shared
    shapes = [TShape(None, ()), TShape(None, (TDim(),))]
    tensors = [TTensor(DT.F32, s, d) for d in devices for s in shapes]
    for n in range(4):
        for combo in itertools.product(tensors, repeat=n):
            named = [(f"t{i}", t) for i, t in enumerate(combo)]
            want = _outcome(lambda: {"d": _same_device_reference(named, "w")})
            got = _outcome(lambda: {"d": same_device(named, "w")})
            assert got[:4] == want[:4], combo  # code, message (or device) and blame


# ---------------------------------------------------------------- broadcasting


def test_equal_dims_broadcast_to_themselves_without_residuals() -> None:
    n = Size.of("n")
    dims = [TDim(None, Size.of(3)), TDim("n", n), TDim("n", Size.of("n") * 2), TDim(None, n)]
    for d in dims:
        assert d.size is not None
        for other in (d, TDim(d.label, d.size), TDim(d.label, Size(d.size.terms))):
            rel = Rel()  # the same dim, the same size, an equal size
            assert broadcast_dim(rel, d, other, "w") == d
            assert not rel.residuals and not rel.preds
    rel = Rel()  # an unknown size still leaves its runtime check
    assert broadcast_dim(rel, TDim("n"), TDim("n"), "w") == TDim("n")
    assert rel.residuals == ["w: sizes broadcast"]


def test_broadcast_checks_dims_from_the_right() -> None:
    a = TShape(None, (TDim(None, Size.of(2)), TDim(None, Size.of(3))))
    b = TShape(None, (TDim(None, Size.of(4)), TDim(None, Size.of(5))))
    with pytest.raises(OpError, match="sizes 3 and 5"):
        broadcast_shapes(Rel(), [a, b], "w")
    rel = Rel()
    out = broadcast_shapes(rel, [TShape(DOTS, (TDim(None, Size.of("a")),)),
                                 TShape(None, (TDim(), TDim(None, Size.of("b"))))], "w")
    assert out == TShape(DOTS, (TDim(), TDim()))
    assert rel.residuals == ["w: a and b broadcast", "w: sizes broadcast"]


# ---------------------------------------------------------------- dtypes


def _ancestors(d):
    out = [d]
    while out[-1].parent is not None:
        out.append(out[-1].parent)
    return out


def test_dtype_lattice_tables() -> None:
    for a in DT:
        assert hash(a) == hash(DT(a.value)) and str(a) == a.value
        top = _ancestors(a)
        assert a.category is (top[-2] if len(top) > 1 else a)
        for b in DT:
            up = _ancestors(b)
            assert dt_join(a, b) is next(x for x in top if x in up)
            assert dt_leq(a, b) == (b in top)
            want = a if b in top else b if a in up else None
            assert dt_meet(a, b) is want


@pytest.mark.parametrize("name", sorted(OPS))
def test_positional_names_are_what_positional_arguments_bind(name: str) -> None:
    """``positional_names`` (the checker's sources of an op's arguments) against walking the
    parameters as ``bind`` does: each positional argument goes to the next parameter that is
    not keyword-only; a variadic parameter takes the rest (then: ())."""
    op = OPS[name]
    walked: list[str] = []
    for p in op.params:
        if p.variadic:
            walked = []
            break
        if not p.keyword_only:
            walked.append(p.name)
    else:
        assert positional_names(op) == tuple(walked)
        return
    assert positional_names(op) == ()
