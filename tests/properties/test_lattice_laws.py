"""Precision, consistency, meet and join (docs/types.md, "What is checked, and when" and
"Dtypes and devices") against a brute-force γ oracle.

γσ(T) is computed by enumerating runtime metadata ``(device, dtype, sizes)`` over a small
universe — devices cpu, cuda:0, cuda:1; every concrete dtype (and a witness for torch's
wider unsigned dtypes, see GAMMA_DT); size tuples of rank ≤ 4 with
each size in 0..4 — and keeping what T admits under the assignment σ of its size variables
(al, be in 0..3). A tensor type is a product of its parts (docs/types.md, "What is checked,
and when"), so γ is stored as the product of its device, dtype and size-tuple sets; each set
is found by testing every element against a direct reading of the documented meanings
(docs/types.md, "Dtypes and devices"; docs/language.md, "The forms at a glance"), never
through the relations under test.

Labels are erased at runtime and do not affect γ. They form a static flat lattice, checked
positionwise: for a rank r, ``labels_at(shape, r)`` is the label each of the r runtime dims
gets from the type (None for dims under ``...``), and precision, meet and consistency must
agree with the flat lattice at every rank the types admit.

On var-free types the relations must *be* inclusion, intersection and non-empty
intersection. With size variables they must be sound for every σ: ⊑ implies inclusion, and
a meet with residual equations is exact wherever σ satisfies them and the two types share
nothing wherever it does not.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import pytest
import torch
from hypothesis import given, settings, strategies as st

from gtdsl.types.core import (
    DOTS, DYN, SizeEq, TDim, TShape, TTensor, consistent, join, label_leq, label_meet, leq, meet,
)
from gtdsl.types.lattice import (
    CONCRETE_DTYPES, DT, Dev, dev_join, dev_leq, dev_meet, dt_join, dt_leq, dt_meet, dt_members,
)
from gtdsl.types.sizes import Size

# ============================================================================ the oracle

# γ of every dtype node, written out from the tree of docs/language.md, "Dtypes" (plus
# torch's complex32 and, from torch 2.14, bcomplex32, leaves).
# The runtime dtypes are gtdsl's concrete dtypes plus one witness, U_OTHER, standing for
# torch's uint16/uint32/uint64, which gtdsl has no node for: without it γ(uint) = γ(u8) and
# the tree order could not be inclusion (see test_uint_category_has_one_member).
U_OTHER = "u16|u32|u64"
_FLOAT = {DT.F16, DT.BF16, DT.F32, DT.F64}
_INT = {DT.I8, DT.I16, DT.I32, DT.I64}
_COMPLEX = {DT.C32, DT.BC32, DT.C64, DT.C128}
# the members a node has under the installed torch (dt_members): bc32 only from torch 2.14
_ABSENT = frozenset() if hasattr(torch, "bcomplex32") else frozenset({DT.BC32})
_LEAVES = _FLOAT | _INT | _COMPLEX | {DT.U8, DT.BOOL}
_UINT = {DT.U8, U_OTHER}
GAMMA_DT: dict[DT, frozenset] = {
    DT.ANY: frozenset(_LEAVES | _UINT), DT.FLOAT: frozenset(_FLOAT), DT.INT: frozenset(_INT),
    DT.UINT: frozenset(_UINT), DT.COMPLEX: frozenset(_COMPLEX),
    **{d: frozenset({d}) for d in _LEAVES},
}
RUNTIME_DEVICES = (("cpu", None), ("cuda", 0), ("cuda", 1))
DEVICES = (Dev(), Dev("cpu"), Dev("cuda"), Dev("cuda", 0), Dev("cuda", 1))
MAX_RANK, MAX_SIZE = 4, 4
SIZE_TUPLES = tuple(t for r in range(MAX_RANK + 1)
                    for t in itertools.product(range(MAX_SIZE + 1), repeat=r))


def gamma_dev(dev: Dev) -> frozenset[tuple[str, int | None]]:
    """``?`` admits every device, ``cuda`` every cuda:k, a leaf itself."""
    return frozenset(
        (kind, index) for kind, index in RUNTIME_DEVICES
        if dev.kind is None or (dev.kind == kind and dev.index in (None, index)))


def _dim_admits(size: int | None, n: int) -> bool:
    return size is None or size == n


def _shape_admits(fixed: bool, sizes: tuple[int | None, ...], t: tuple[int, ...]) -> bool:
    """A fixed shape wants exactly its rank; ``[..., d1..dk]`` at least k, right-aligned
    (docs/language.md, "The forms at a glance")."""
    k = len(sizes)
    if len(t) < k or fixed and len(t) != k:
        return False
    return all(_dim_admits(s, n) for s, n in zip(sizes, t[len(t) - k:]))


@lru_cache(maxsize=None)
def _gamma_shape(fixed: bool, sizes: tuple[Size | None, ...],
                 sigma: tuple[tuple[str, int], ...]) -> frozenset[tuple[int, ...]]:
    env = dict(sigma)
    values = tuple(None if s is None else s.evaluate(env) for s in sizes)
    return frozenset(t for t in SIZE_TUPLES if _shape_admits(fixed, values, t))


def gamma_shape(shape: TShape, sigma: dict[str, int]) -> frozenset[tuple[int, ...]]:
    assert shape.row in (None, DOTS), "no row variables in this universe"
    sizes = tuple(d.size for d in shape.dims)
    used = set().union(*(s.variables() for s in sizes if s is not None))
    return _gamma_shape(shape.row is None, sizes, tuple(sorted((v, sigma[v]) for v in used)))


@dataclass(frozen=True)
class Gamma:
    """A product set of runtime metadata, with every empty product normalised to EMPTY."""

    devs: frozenset
    dts: frozenset
    shapes: frozenset

    @staticmethod
    def of(devs: frozenset, dts: frozenset, shapes: frozenset) -> Gamma:
        if not (devs and dts and shapes):
            return EMPTY
        return Gamma(devs, dts, shapes)

    def __bool__(self) -> bool:
        return bool(self.shapes)

    def __le__(self, other: Gamma) -> bool:
        return not self or (self.devs <= other.devs and self.dts <= other.dts
                            and self.shapes <= other.shapes)

    def __and__(self, other: Gamma) -> Gamma:
        return Gamma.of(self.devs & other.devs, self.dts & other.dts, self.shapes & other.shapes)

    @property
    def ranks(self) -> frozenset[int]:
        return frozenset(len(t) for t in self.shapes)

    def metadata(self) -> frozenset:
        return frozenset(itertools.product(self.devs, self.dts, self.shapes))


EMPTY = Gamma(frozenset(), frozenset(), frozenset())


def gamma(t: TTensor, sigma: dict[str, int] | None = None) -> Gamma:
    return Gamma.of(gamma_dev(t.device), GAMMA_DT[t.dtype], gamma_shape(t.shape, sigma or {}))


def holds(eqs: list[SizeEq], sigma: dict[str, int]) -> bool:
    return all(e.left.evaluate(sigma) == e.right.evaluate(sigma) for e in eqs)


def gamma_meet(m: TTensor | None, eqs: list[SizeEq], sigma: dict[str, int]) -> Gamma:
    """What a meet result denotes under σ: nothing when it is None or σ breaks an equation."""
    if m is None or not holds(eqs, sigma):
        return EMPTY
    return gamma(m, sigma)


# ---------------------------------------------------------------- labels (a flat lattice)

CLASH = "<clash>"


def labels_at(shape: TShape, rank: int) -> tuple[str | None, ...]:
    """The label each of ``rank`` runtime dims gets from ``shape`` (a rank it admits)."""
    labels = tuple(d.label for d in shape.dims)
    assert rank == len(labels) or shape.row is not None and rank >= len(labels)
    return (None,) * (rank - len(labels)) + labels


def flat_leq(x: str | None, y: str | None) -> bool:
    return y is None or x == y


def flat_meet(x: str | None, y: str | None) -> str | None:
    if x is None or y is None or x == y:
        return y if x is None else x
    return CLASH


def labels_ordered(a: TShape, b: TShape, ranks: frozenset[int]) -> bool:
    return all(all(map(flat_leq, labels_at(a, r), labels_at(b, r))) for r in ranks)


def labels_met(a: TShape, b: TShape, r: int) -> tuple[str | None, ...]:
    return tuple(map(flat_meet, labels_at(a, r), labels_at(b, r)))


def labels_clash(a: TShape, b: TShape, ranks: frozenset[int]) -> bool:
    return any(CLASH in labels_met(a, b, r) for r in ranks)


# ---------------------------------------------------------------- assignments

AL, BE = Size.of("al"), Size.of("be")
SIGMA_RANGE = range(4)


def variables(*types: TTensor | None) -> list[str]:
    found: set[str] = set()
    for t in types:
        if t is not None:
            for d in t.shape.dims:
                if d.size is not None:
                    found |= d.size.variables()
    return sorted(found)


def assignments(*types: TTensor | None) -> list[dict[str, int]]:
    """Every σ over the variables the types mention (one empty σ when there are none)."""
    names = variables(*types)
    return [dict(zip(names, vs)) for vs in itertools.product(SIGMA_RANGE, repeat=len(names))]


# ============================================================================ strategies

LABELS = (None, "a", "b")
STATIC_SIZES = (None, *(Size.of(n) for n in range(4)))
ALL_SIZES = (*STATIC_SIZES, AL, BE, AL + 1, 2 * AL)
VAR_HEAVY = ALL_SIZES + ALL_SIZES[len(STATIC_SIZES):]  # variables drawn more often


@lru_cache(maxsize=None)
def dims(sizes: tuple) -> st.SearchStrategy[TDim]:
    return st.builds(TDim, st.sampled_from(LABELS), st.sampled_from(sizes))


@lru_cache(maxsize=None)
def shapes(sizes: tuple, min_dims: int = 0) -> st.SearchStrategy[TShape]:
    return st.one_of(
        st.lists(dims(sizes), min_size=min_dims, max_size=3).map(
            lambda ds: TShape(None, tuple(ds))),
        st.lists(dims(sizes), min_size=min_dims, max_size=2).map(
            lambda ds: TShape(DOTS, tuple(ds))),
    )


@lru_cache(maxsize=None)
def tensors(sizes: tuple, min_dims: int = 0) -> st.SearchStrategy[TTensor]:
    return st.builds(TTensor, st.sampled_from(list(DT)), shapes(sizes, min_dims),
                     st.sampled_from(DEVICES))


# Strategies are built once and cached: building them per draw dominated the run time.
@lru_cache(maxsize=None)
def _sample(*options: object) -> st.SearchStrategy:
    return st.sampled_from(options)


@lru_cache(maxsize=None)
def _dim_lists(sizes: tuple, max_size: int) -> st.SearchStrategy[list[TDim]]:
    return st.lists(dims(sizes), max_size=max_size)


def _dt_above(d: DT) -> st.SearchStrategy[DT]:
    return _sample(*(x for x in DT if GAMMA_DT[d] <= GAMMA_DT[x]))


def _dt_below(d: DT) -> st.SearchStrategy[DT]:
    return _sample(*(x for x in DT if GAMMA_DT[x] <= GAMMA_DT[d]))


def _dev_above(d: Dev) -> st.SearchStrategy[Dev]:
    return _sample(*(x for x in DEVICES if gamma_dev(d) <= gamma_dev(x)))


def _dev_below(d: Dev) -> st.SearchStrategy[Dev]:
    return _sample(*(x for x in DEVICES if gamma_dev(x) <= gamma_dev(d)))


@st.composite
def weaken(draw: st.DrawFn, t: TTensor) -> TTensor:
    """A less or equally precise type: nodes up the trees, dims to ``?``, prefixes to ``...``."""
    ds = tuple(TDim(None if draw(st.booleans()) else d.label,
                    None if draw(st.booleans()) else d.size) for d in t.shape.dims)
    if draw(st.booleans()):
        shape = TShape(t.shape.row, ds)
    else:
        keep = draw(_sample(*range(min(len(ds), 2) + 1)))
        shape = TShape(DOTS, ds[len(ds) - keep:])
    return TTensor(draw(_dt_above(t.dtype)), shape, draw(_dev_above(t.device)))


@st.composite
def strengthen(draw: st.DrawFn, t: TTensor, sizes: tuple) -> TTensor:
    """A more or equally precise type: nodes down the trees, ``?`` filled in, ``...`` cut."""
    ds = tuple(TDim(draw(_sample(*LABELS)) if d.label is None else d.label,
                    draw(_sample(*sizes)) if d.size is None else d.size)
               for d in t.shape.dims)
    if t.shape.row is not None and draw(st.booleans()):
        extra = draw(_dim_lists(sizes, 3 - len(ds)))
        fixed = draw(st.booleans())
        if not fixed:
            extra = extra[:2 - len(ds)]
        shape = TShape(None if fixed else DOTS, tuple(extra) + ds)
    else:
        shape = TShape(t.shape.row, ds)
    return TTensor(draw(_dt_below(t.dtype)), shape, draw(_dev_below(t.device)))


@st.composite
def redrawn(draw: st.DrawFn, sizes: tuple) -> tuple[TTensor, TTensor]:
    """The same outline with some labels and sizes drawn afresh: size equations, clashes."""
    a = draw(tensors(sizes, min_dims=1))
    w = draw(weaken(a))
    ds = tuple(TDim(draw(_sample(*LABELS)) if draw(st.booleans()) else d.label,
                    draw(_sample(*sizes)) if draw(st.booleans()) else d.size)
               for d in a.shape.dims)
    return a, TTensor(w.dtype, TShape(a.shape.row, ds), w.device)


@st.composite
def pairs(draw: st.DrawFn, sizes: tuple) -> tuple[TTensor, TTensor]:
    """Two types, often related, so that ⊑, ~ and ≁ all occur often."""
    kind = draw(_sample("independent", "weakened", "siblings", "cousins", "redrawn"))
    if kind == "independent":
        a, b = draw(tensors(sizes)), draw(tensors(sizes))
    elif kind == "redrawn":
        a, b = draw(redrawn(sizes))
    elif kind == "weakened":
        a = draw(tensors(sizes))
        b = draw(weaken(a))
    elif kind == "siblings":  # a common lower bound: consistent, often incomparable
        c = draw(tensors(sizes))
        a, b = draw(weaken(c)), draw(weaken(c))
    else:  # a common upper bound: often inconsistent in one place
        c = draw(tensors(sizes))
        a, b = draw(strengthen(c, sizes)), draw(strengthen(c, sizes))
    return (b, a) if draw(st.booleans()) else (a, b)


any_tensors = tensors(ALL_SIZES)

# ============================================================================ trees (exhaustive)


def test_oracle_universe() -> None:
    assert set(CONCRETE_DTYPES) == _LEAVES
    assert set(GAMMA_DT) == set(DT)
    assert gamma(TTensor()).metadata() == frozenset(itertools.product(
        RUNTIME_DEVICES, _LEAVES | _UINT, SIZE_TUPLES))


def test_uint_stands_for_every_unsigned_dtype() -> None:
    """`uint` denotes every unsigned dtype torch has (u8 and the wider ones gtdsl cannot
    name yet), so it is strictly above u8: the oracle's witness U_OTHER is in γ(uint) only."""
    assert dt_leq(DT.U8, DT.UINT) and not dt_leq(DT.UINT, DT.U8)
    assert U_OTHER in GAMMA_DT[DT.UINT] and U_OTHER not in GAMMA_DT[DT.U8]
    assert set(dt_members(DT.UINT)) == GAMMA_DT[DT.UINT] - {U_OTHER} - _ABSENT


def test_dtype_tree() -> None:
    for a, b in itertools.product(DT, DT):
        ga, gb = GAMMA_DT[a], GAMMA_DT[b]
        assert dt_leq(a, b) == (ga <= gb), (a, b)
        m = dt_meet(a, b)
        if ga & gb:
            assert m is not None and GAMMA_DT[m] == ga & gb, (a, b, m)
        else:
            assert m is None, (a, b, m)
        j = dt_join(a, b)
        uppers = [c for c in DT if ga | gb <= GAMMA_DT[c]]
        assert j in uppers and all(GAMMA_DT[j] <= GAMMA_DT[c] for c in uppers), (a, b, j)
    for a in DT:
        assert set(dt_members(a)) == GAMMA_DT[a] - {U_OTHER} - _ABSENT


def test_device_tree() -> None:
    for a, b in itertools.product(DEVICES, DEVICES):
        ga, gb = gamma_dev(a), gamma_dev(b)
        assert dev_leq(a, b) == (ga <= gb), (a, b)
        m = dev_meet(a, b)
        if ga & gb:
            assert m is not None and gamma_dev(m) == ga & gb, (a, b, m)
        else:
            assert m is None, (a, b, m)
        j = dev_join(a, b)
        uppers = [c for c in DEVICES if ga | gb <= gamma_dev(c)]
        assert j in uppers and all(gamma_dev(j) <= gamma_dev(c) for c in uppers), (a, b, j)


def test_labels_flat_lattice() -> None:
    """Labels: ``?`` above every label, distinct labels inconsistent (witnesses a, b, c)."""
    witnesses = {None: {"a", "b", "c"}, "a": {"a"}, "b": {"b"}}
    for x, y in itertools.product(LABELS, LABELS):
        assert label_leq(x, y) == (witnesses[x] <= witnesses[y])
        ok, m = label_meet(x, y)
        assert ok == bool(witnesses[x] & witnesses[y])
        if ok:
            assert witnesses[m] == witnesses[x] & witnesses[y]
        # on dims and whole types, labels alone decide
        dx, dy = TTensor(shape=TShape(None, (TDim(x, Size.of(2)),))), \
            TTensor(shape=TShape(None, (TDim(y, Size.of(2)),)))
        assert leq(dx, dy) == label_leq(x, y)
        assert consistent(dx, dy) == ok


# ============================================================================ (a) exact, var-free


@settings(max_examples=1000)
@given(pairs(STATIC_SIZES))
def test_static_relations_are_the_gamma_relations(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    ga, gb = gamma(a), gamma(b)
    assert ga and gb  # every var-free type of this universe admits something
    inter = ga & gb

    ordered = ga <= gb and labels_ordered(a.shape, b.shape, ga.ranks)
    assert leq(a, b) == ordered, f"{a} ⊑ {b}: γ {ga <= gb}"

    expect_meet = bool(inter) and not labels_clash(a.shape, b.shape, inter.ranks)
    assert consistent(a, b) == expect_meet, f"{a} ~ {b}: γ∩ {bool(inter)}"

    eqs: list[SizeEq] = []
    m = meet(a, b, eqs)
    assert eqs == []
    assert (m is not None) == expect_meet
    if m is not None:
        assert gamma(m) == inter, f"γ({a} ⊓ {b} = {m}) is not the intersection"
        for r in inter.ranks:
            assert labels_at(m.shape, r) == labels_met(a.shape, b.shape, r), (a, b, m, r)


# ======================================================================= (b) sound, with vars


@settings(max_examples=500)
@given(st.one_of(pairs(VAR_HEAVY), redrawn(VAR_HEAVY)))
def test_relations_with_variables_are_sound(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    eqs: list[SizeEq] = []
    m = meet(a, b, eqs)
    is_leq = leq(a, b)
    for sigma in assignments(a, b):
        ga, gb = gamma(a, sigma), gamma(b, sigma)
        inter = ga & gb
        if is_leq:
            assert ga <= gb, f"{a} ⊑ {b} but not under {sigma}"
            assert labels_ordered(a.shape, b.shape, ga.ranks)
        if m is None:
            assert not inter or labels_clash(a.shape, b.shape, inter.ranks), \
                f"{a} ⊓ {b} is None, but they share metadata under {sigma}"
            continue
        gm = gamma_meet(m, eqs, sigma)
        assert gm == inter, (
            f"{a} ⊓ {b} = {m} with {[str(e) for e in eqs]}: not the intersection under {sigma}")
        if holds(eqs, sigma):
            for r in gm.ranks:
                assert labels_at(m.shape, r) == labels_met(a.shape, b.shape, r), (a, b, m, sigma)


# ============================================================================ (c) algebraic laws


@settings(max_examples=150)
@given(any_tensors)
def test_precision_reflexive_and_top(t: TTensor) -> None:
    assert leq(t, t)
    assert leq(t, TTensor())
    assert leq(t, DYN)
    assert not leq(DYN, t)
    assert leq(TTensor(), t) == (t == TTensor())


@settings(max_examples=200)
@given(st.data())
def test_precision_transitive(data: st.DataObject) -> None:
    a = data.draw(any_tensors)
    b = data.draw(st.one_of(weaken(a), any_tensors))
    c = data.draw(st.one_of(weaken(b), any_tensors))
    if leq(a, b) and leq(b, c):
        assert leq(a, c), (a, b, c)


@settings(max_examples=200)
@given(pairs(ALL_SIZES))
def test_precision_antisymmetric(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    if leq(a, b) and leq(b, a):
        assert a == b


@settings(max_examples=150)
@given(any_tensors, st.data())
def test_weakening_is_less_precise(t: TTensor, data: st.DataObject) -> None:
    w = data.draw(weaken(t))
    s = data.draw(strengthen(t, ALL_SIZES))
    assert leq(t, w) and leq(s, t) and leq(s, w)


@settings(max_examples=200)
@given(pairs(ALL_SIZES))
def test_meet_commutative(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    e1: list[SizeEq] = []
    e2: list[SizeEq] = []
    m1, m2 = meet(a, b, e1), meet(b, a, e2)
    assert (m1 is None) == (m2 is None)
    if not e1 and not e2:
        assert m1 == m2
    for sigma in assignments(a, b):
        g1, g2 = gamma_meet(m1, e1, sigma), gamma_meet(m2, e2, sigma)
        assert g1 == g2, (a, b, m1, m2, sigma)
        if g1:
            assert m1 is not None and m2 is not None
            for r in g1.ranks:
                assert labels_at(m1.shape, r) == labels_at(m2.shape, r)


@settings(max_examples=150)
@given(any_tensors)
def test_meet_idempotent(t: TTensor) -> None:
    eqs: list[SizeEq] = []
    assert meet(t, t, eqs) == t
    assert eqs == []
    assert meet(t, TTensor()) == t == meet(TTensor(), t)
    assert meet(t, DYN) == t == meet(DYN, t)


@settings(max_examples=200)
@given(st.data())
def test_meet_associative(data: st.DataObject) -> None:
    c0 = data.draw(any_tensors)
    a, b, c = (data.draw(st.one_of(weaken(c0), strengthen(c0, ALL_SIZES), any_tensors))
               for _ in range(3))
    e1: list[SizeEq] = []
    e2: list[SizeEq] = []
    ab = meet(a, b, e1)
    left = None if ab is None else meet(ab, c, e1)
    bc = meet(b, c, e2)
    right = None if bc is None else meet(a, bc, e2)
    if not e1 and not e2:
        assert left == right, (a, b, c)
    for sigma in assignments(a, b, c):
        gl, gr = gamma_meet(left, e1, sigma), gamma_meet(right, e2, sigma)
        assert gl == gr, (a, b, c, left, right, sigma)
        if gl:
            assert left is not None and right is not None
            for r in gl.ranks:
                assert labels_at(left.shape, r) == labels_at(right.shape, r)


@settings(max_examples=200)
@given(st.data())
def test_meet_greatest_lower_bound(data: st.DataObject) -> None:
    c = data.draw(any_tensors)
    a, b = data.draw(weaken(c)), data.draw(weaken(c))
    eqs: list[SizeEq] = []
    m = meet(a, b, eqs)
    assert m is not None and eqs == []
    assert leq(m, a) and leq(m, b)
    assert leq(c, m), f"{c} is below {a} and {b} but not below their meet {m}"


@settings(max_examples=200)
@given(pairs(ALL_SIZES))
def test_meet_is_a_lower_bound(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    eqs: list[SizeEq] = []
    m = meet(a, b, eqs)
    if m is not None and not eqs:
        assert leq(m, a) and leq(m, b)


@settings(max_examples=150)
@given(pairs(ALL_SIZES))
def test_consistency_reflexive_symmetric(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    assert consistent(a, a) and consistent(b, b)
    assert consistent(a, b) == consistent(b, a)


def test_consistency_not_transitive() -> None:
    f32_3 = TTensor(DT.F32, TShape(None, (TDim(None, Size.of(3)),)))
    f32_4 = TTensor(DT.F32, TShape(None, (TDim(None, Size.of(4)),)))
    assert consistent(f32_3, TTensor()) and consistent(TTensor(), f32_4)
    assert not consistent(f32_3, f32_4)
    assert consistent(f32_3, DYN) and consistent(DYN, f32_4)
    # labels alone: [a=3] ~ [3] ~ [b=3], but a and b clash
    la = TTensor(shape=TShape(None, (TDim("a", Size.of(3)),)))
    lb = TTensor(shape=TShape(None, (TDim("b", Size.of(3)),)))
    mid = TTensor(shape=TShape(None, (TDim(None, Size.of(3)),)))
    assert consistent(la, mid) and consistent(mid, lb) and not consistent(la, lb)


@settings(max_examples=200)
@given(pairs(ALL_SIZES))
def test_join_upper_bound(ab: tuple[TTensor, TTensor]) -> None:
    a, b = ab
    j = join(a, b)
    assert isinstance(j, TTensor)
    assert leq(a, j) and leq(b, j), f"{a} ⊔ {b} = {j}"
    assert join(b, a) == j
    assert join(a, a) == a


@settings(max_examples=200)
@given(st.data())
def test_join_least_upper_bound(data: st.DataObject) -> None:
    c = data.draw(any_tensors)
    a, b = data.draw(strengthen(c, ALL_SIZES)), data.draw(strengthen(c, ALL_SIZES))
    assert leq(a, c) and leq(b, c)
    assert leq(join(a, b), c), f"{c} is above {a} and {b} but not above their join"
