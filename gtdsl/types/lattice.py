"""Dtype and device trees (docs/types.md, "Dtypes and devices") and dtype promotion.

Both are tree lattices: ``a ⊑ b`` iff ``b`` is an ancestor-or-self of ``a``; consistent iff
comparable; meet is the lower one; join the lowest common ancestor. Promotion is an op rule,
not a lattice rule: on concrete dtypes it is torch's ``result_type`` algorithm over the
installed torch's tables (``gtdsl.types.torchrules``), and on categories it is the join of
the promotions of every member (so ``promote(?, x) = ?``).
"""

from __future__ import annotations

import enum
import itertools

from gtdsl._records import record


class DT(enum.Enum):
    ANY = "?"
    FLOAT = "float"
    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"
    INT = "int"
    I8 = "i8"
    I16 = "i16"
    I32 = "i32"
    I64 = "i64"
    UINT = "uint"
    U8 = "u8"
    BOOL = "bool"
    COMPLEX = "complex"
    C32 = "c32"  # torch's complex32 (ComplexHalf): only ever a promotion result
    BC32 = "bc32"  # torch 2.14's bcomplex32 (complex of bf16): likewise, where torch has it
    C64 = "c64"
    C128 = "c128"

    # Members are singletons compared by identity, so the identity hash agrees with ``==``;
    # Enum's own ``__hash__`` is a Python function (a hash of the name), and dtypes key the
    # dicts of every op rule (promotion, categories, lattice tables).
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self._value_

    @property
    def parent(self) -> DT | None:
        return _DT_PARENT.get(self)

    @property
    def is_concrete(self) -> bool:
        return self in _DT_LEAVES

    @property
    def category(self) -> DT:
        """The top-level node below ``?`` this dtype belongs to (itself for bool)."""
        return _CATEGORY[self]


_DT_PARENT: dict[DT, DT] = {
    DT.FLOAT: DT.ANY, DT.INT: DT.ANY, DT.UINT: DT.ANY, DT.BOOL: DT.ANY, DT.COMPLEX: DT.ANY,
    DT.F16: DT.FLOAT, DT.BF16: DT.FLOAT, DT.F32: DT.FLOAT, DT.F64: DT.FLOAT,
    DT.I8: DT.INT, DT.I16: DT.INT, DT.I32: DT.INT, DT.I64: DT.INT,
    DT.U8: DT.UINT, DT.C32: DT.COMPLEX, DT.BC32: DT.COMPLEX, DT.C64: DT.COMPLEX,
    DT.C128: DT.COMPLEX,
}
_DT_LEAVES = frozenset(d for d in DT if d not in set(_DT_PARENT.values()))


def _category(d: DT) -> DT:
    node = d
    while (parent := _DT_PARENT.get(node)) is not None and parent is not DT.ANY:
        node = parent
    return node


_CATEGORY: dict[DT, DT] = {d: _category(d) for d in DT}
CONCRETE_DTYPES: tuple[DT, ...] = tuple(d for d in DT if d in _DT_LEAVES)


def _ancestors(node: DT) -> list[DT]:
    out = [node]
    while (parent := out[-1].parent) is not None:
        out.append(parent)
    return out


_ABOVE: dict[DT, frozenset[DT]] = {d: frozenset(_ancestors(d)) for d in DT}


def dt_leq(a: DT, b: DT) -> bool:
    return b in _ABOVE[a]


def dt_meet(a: DT, b: DT) -> DT | None:
    if a is b or b in _ABOVE[a]:
        return a
    if a in _ABOVE[b]:
        return b
    return None


def dt_join(a: DT, b: DT) -> DT:
    if a is b:
        return a
    found = _JOINS.get((a, b))
    if found is None:  # at most one entry per pair of the 18 dtypes
        up = _ancestors(b)
        found = _JOINS[a, b] = next(x for x in _ancestors(a) if x in up)
    return found


_JOINS: dict[tuple[DT, DT], DT] = {}


def dt_members(a: DT) -> tuple[DT, ...]:
    """γ(a): the concrete dtypes below ``a`` that the installed torch has (bc32 only from
    torch 2.14)."""
    if not _MEMBERS:
        from gtdsl.types.torchrules import rules

        have = {DT(n) for n in rules().dtypes}
        _MEMBERS.update({b: tuple(d for d in CONCRETE_DTYPES if dt_leq(d, b) and d in have)
                         for b in DT})
    return _MEMBERS[a]


_MEMBERS: dict[DT, tuple[DT, ...]] = {}


def torch_dtypes() -> tuple[DT, ...]:
    """The concrete dtypes the installed torch has."""
    return dt_members(DT.ANY)


# ============================================================================ promotion

_FLOATS = (DT.F16, DT.BF16, DT.F32, DT.F64)
_INTS = (DT.U8, DT.I8, DT.I16, DT.I32, DT.I64)


def _kind(d: DT) -> int:
    """bool < integral < floating < complex, the order torch promotes categories in."""
    if d is DT.BOOL:
        return 0
    if d in _INTS:
        return 1
    if d in _FLOATS:
        return 2
    return 3


def _promote_pair(a: DT, b: DT) -> DT:
    """torch.promote_types on concrete dtypes: the installed torch's table."""
    if a is b:
        return a
    found = _PAIRS.get((a, b))
    if found is None:
        from gtdsl.types.torchrules import rules

        found = _PAIRS[a, b] = _from_table(rules().promote.get((a.value, b.value)),
                                           f"promote_types({a}, {b})")
    return found


def _to_complex(d: DT) -> DT:
    """The complex dtype of floating dtype ``d`` (torch's toComplexType)."""
    found = _COMPLEX_OF.get(d)
    if found is None:
        from gtdsl.types.torchrules import rules

        found = _COMPLEX_OF[d] = _from_table(rules().complex_of.get(d.value),
                                             f"the complex dtype of {d}")
    return found


class NoGtdslDtype(ValueError):
    """The installed torch promotes to a dtype gtdsl has no node for (a torch release newer
    than gtdsl knows, as torch 2.14's ``bcomplex32`` once was); ``what`` names the rule."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the installed torch gives no dtype gtdsl types for {what}")
        self.what = what


def _from_table(name: str | None, what: str) -> DT:
    if name is None:  # torch answers with a dtype gtdsl does not type
        raise NoGtdslDtype(what)
    return DT(name)


_PAIRS: dict[tuple[DT, DT], DT] = {}
_COMPLEX_OF: dict[DT, DT] = {}


def _combine(higher: DT | None, lower: DT | None) -> DT | None:
    """torch's combine_categories: a higher-priority group wins unless its category is lower."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if _kind(higher) == 3:
        return higher
    if _kind(lower) == 3:
        return _to_complex(higher) if _kind(higher) == 2 else lower
    if _kind(higher) == 2:
        return higher
    if higher is DT.BOOL or _kind(lower) == 2:
        return _promote_pair(higher, lower)
    return higher


class Priority(enum.IntEnum):
    """Operand groups of torch's result_type, highest first."""

    TENSOR = 0  # a tensor with at least one dim
    ZERO_DIM = 1  # a 0-dim tensor
    SCALAR = 2  # a Python number (wrapped)


SCALAR_DTYPE = {"int": DT.I64, "float": DT.F32, "bool": DT.BOOL}  # default dtypes of Python numbers


def result_type_concrete(operands: list[tuple[DT, Priority]]) -> DT:
    groups: list[DT | None] = [None, None, None]
    for dt, prio in operands:
        cur = groups[prio]
        groups[prio] = dt if cur is None else _promote_pair(cur, dt)
    out = _combine(groups[0], _combine(groups[1], groups[2]))
    assert out is not None
    return out


def result_type(operands: list[tuple[DT, Priority]]) -> DT:
    """Promotion over possibly abstract dtypes: the join over every concretisation."""
    key = tuple(operands)
    found = _RESULT_TYPES.get(key)
    if found is None:
        found = _result_type(operands)
        if len(_RESULT_TYPES) < 4096:  # a finite domain, but bounded all the same
            _RESULT_TYPES[key] = found
    return found


_RESULT_TYPES: dict[tuple[tuple[DT, Priority], ...], DT] = {}


def _result_type(operands: list[tuple[DT, Priority]]) -> DT:
    choices = [[(d, prio) for d in dt_members(dt)] for dt, prio in operands]
    if all(len(c) == 1 for c in choices):
        return result_type_concrete([c[0] for c in choices])
    out: DT | None = None
    for combo in itertools.product(*choices):
        try:
            r = result_type_concrete(list(combo))
        except NoGtdslDtype:  # one concretisation has no gtdsl dtype: the join is unknown
            return DT.ANY
        out = r if out is None else dt_join(out, r)
        if out is DT.ANY:
            break
    assert out is not None
    return out


# ============================================================================ devices


@record
class Dev:
    """A device node: ``?`` (kind None), ``cpu``, ``cuda`` or ``cuda:k``."""

    kind: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.kind is None:
            return "?"
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


ANY_DEVICE = Dev()
CPU = Dev("cpu")


def dev_leq(a: Dev, b: Dev) -> bool:
    if b.kind is None:
        return True
    return a.kind == b.kind and (b.index is None or a.index == b.index)


def dev_meet(a: Dev, b: Dev) -> Dev | None:
    if dev_leq(a, b):
        return a
    if dev_leq(b, a):
        return b
    return None


def dev_join(a: Dev, b: Dev) -> Dev:
    if dev_leq(a, b):
        return b
    if dev_leq(b, a):
        return a
    if a.kind == b.kind:
        return Dev(a.kind)
    return ANY_DEVICE
