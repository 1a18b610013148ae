"""``gtdsl._records.record`` against its oracle, the dataclass it stands for: the same
constructor, equality, hash, repr, frozenness, defaults, docstring and ``dataclasses``
helpers; and every record class of gtdsl has the signature and fields its dataclass would."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import math
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest

import gtdsl._record_templates as shipped
from gtdsl import _records
from gtdsl._records import field, field_names, is_record, record, record_fields, replace


def _frozen_slots(dec: Callable[..., Any], fld: Callable[..., Any]) -> type:
    @dec
    class Node:
        a: int
        b: "str | None"
        c: tuple = ()
        items: list = fld(default_factory=list, compare=False)
        span: object = fld(default=None, compare=False, repr=False)

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    return Node


def _mutable(dec: Callable[..., Any], fld: Callable[..., Any]) -> type:
    @dec
    class Info:
        name: str
        sizes: dict = fld(default_factory=dict)
        state: str = "pending"
        parent: Any = None

    return Info


def _frozen_dict(dec: Callable[..., Any], fld: Callable[..., Any]) -> type:
    @dec
    class Checked:
        """Documented."""

        diagnostics: tuple
        result: Any = None
        unreadable: bool = fld(default=False, repr=False)

    return Checked


PAIRS = [
    (_frozen_slots, dataclasses.dataclass(frozen=True, slots=True), record),
    (_mutable, dataclasses.dataclass, record(frozen=False, slots=False)),
    (_frozen_dict, dataclasses.dataclass(frozen=True), record(slots=False)),
]


def _both(make: Callable[..., type], dec: Any, rec: Any) -> tuple[type, type]:
    return make(dec, dataclasses.field), make(rec, field)


def _outcome(f: Callable[[], Any]) -> Any:
    """What calling ``f`` gives: its value, or its exception's type and message."""
    try:
        return ("value", f())
    except Exception as e:  # noqa: BLE001 - compared, not handled
        return ("raised", type(e), str(e))


@pytest.mark.parametrize(("make", "dec", "rec"), PAIRS, ids=["frozen-slots", "mutable",
                                                              "frozen-dict"])
def test_the_class_is_its_dataclass(make: Any, dec: Any, rec: Any) -> None:
    oracle, mine = _both(make, dec, rec)
    assert is_record(mine) and not is_record(oracle)
    assert str(inspect.signature(mine)) == str(inspect.signature(oracle))
    assert mine.__doc__ == oracle.__doc__
    assert mine.__match_args__ == oracle.__match_args__
    assert ("__slots__" in vars(mine)) == ("__slots__" in vars(oracle))
    assert getattr(mine, "__slots__", None) == getattr(oracle, "__slots__", None)
    assert (mine.__hash__ is None) == (oracle.__hash__ is None)  # type: ignore[comparison-overlap]
    assert dataclasses.is_dataclass(mine)
    assert [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare,
             f.kw_only) for f in dataclasses.fields(mine)] == [
        (f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.hash, f.compare,
         f.kw_only) for f in dataclasses.fields(oracle)]
    assert mine.__dataclass_params__.frozen == oracle.__dataclass_params__.frozen
    assert [f.name for f in record_fields(mine)] == list(field_names(mine)) == [
        f.name for f in dataclasses.fields(oracle)]
    for attr in ("__init__", "__eq__", "__repr__"):
        assert getattr(mine, attr).__qualname__ == getattr(oracle, attr).__qualname__


def _samples(name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    nan = math.nan
    if name == "Node":
        return [((1, "s"), {}), ((1, "s"), {"span": 3, "items": [1]}), ((2, None, (1, 2)), {}),
                ((nan, "s"), {}), ((1, "t"), {}), ((-1, "s"), {}), ((1,), {}),
                ((1, "s", (), [], None, 6), {}), ((1, "s"), {"d": 1})]
    if name == "Info":
        return [(("f",), {}), (("f",), {"sizes": {"n": 1}}), (("g", {}, "done"), {}),
                ((), {}), (("f",), {"parent": 1})]
    return [(((),), {}), (((1,),), {"unreadable": True}), (((), 2), {}), ((), {})]


@pytest.mark.parametrize(("make", "dec", "rec"), PAIRS, ids=["frozen-slots", "mutable",
                                                              "frozen-dict"])
def test_instances_behave_as_the_dataclass_s(make: Any, dec: Any, rec: Any) -> None:
    oracle, mine = _both(make, dec, rec)
    samples = _samples(oracle.__name__)
    made = []
    for args, kwargs in samples:
        expected = _outcome(lambda: oracle(*args, **kwargs))
        got = _outcome(lambda: mine(*args, **kwargs))
        assert got[:1] == expected[:1] and (got[0] == "value" or got == expected), (args, got)
        if got[0] == "value":
            made.append((expected[1], got[1]))
    for o, m in made:
        assert repr(m) == repr(o)
        assert type(m).__eq__(m, o) is NotImplemented and m != o
        if oracle.__hash__ is not None:
            assert hash(m) == hash(o)  # the same tuple is hashed
        for o2, m2 in made:
            assert (m == m2) == (o == o2) and (m != m2) == (o != o2)
        assert repr(copy.copy(m)) == repr(copy.copy(o))
        first = field_names(m)[0]
        mc, oc = copy.copy(m), copy.copy(o)
        for name in field_names(m):
            assert _outcome(lambda: setattr(mc, name, 1)) == _outcome(
                lambda: setattr(oc, name, 1))
        assert _outcome(lambda: delattr(mc, first)) == _outcome(lambda: delattr(oc, first))
        assert repr(copy.deepcopy(m)) == repr(copy.deepcopy(o))
        assert dataclasses.asdict(m) == dataclasses.asdict(o)
        assert dataclasses.astuple(m) == dataclasses.astuple(o)
        assert repr(replace(m, **{first: 5})) == repr(dataclasses.replace(o, **{first: 5}))
        assert repr(dataclasses.replace(m, **{first: 5})) == repr(
            dataclasses.replace(o, **{first: 5}))


def test_default_factories_make_a_value_per_instance() -> None:
    Info = _mutable(record(frozen=False, slots=False), field)
    a, b = Info("a"), Info("b")
    assert a.sizes == {} and a.sizes is not b.sizes
    a.state = "done"
    assert a.state == "done" and b.state == "pending"


def test_a_cycle_repr_is_cut_as_in_dataclasses() -> None:
    oracle, mine = _both(_mutable, dataclasses.dataclass, record(frozen=False, slots=False))
    o, m = oracle("x"), mine("x")
    o.parent, m.parent = o, m
    assert repr(m) == repr(o) == "_mutable.<locals>.Info(name='x', sizes={}, " \
        "state='pending', parent=...)"


def test_match_uses_the_positional_fields() -> None:
    Node = _frozen_slots(record, field)
    match Node(1, "s"):
        case Node(a, b):
            assert (a, b) == (1, "s")
        case _:
            pytest.fail("no match")


def test_class_definitions_refused_as_dataclasses_refuses_them() -> None:
    def mutable_default(dec: Any) -> Any:
        class Bad:
            items: list = []  # noqa: RUF012 - the mistake under test
        return dec(Bad)

    def order(dec: Any, fld: Any) -> Any:
        class Bad:
            a: int = 1
            b: int
        return dec(Bad)

    assert _outcome(lambda: mutable_default(record)) == _outcome(
        lambda: mutable_default(dataclasses.dataclass(frozen=True, slots=True)))
    assert _outcome(lambda: order(record, field)) == _outcome(
        lambda: order(dataclasses.dataclass(frozen=True, slots=True), dataclasses.field))
    with pytest.raises(ValueError, match="both default and default_factory"):
        field(default=1, default_factory=list)


def test_dataclasses_field_is_accepted_and_class_variables_skipped() -> None:
    from typing import ClassVar

    @record
    class Point:
        LIMIT: ClassVar[int] = 3
        x: int
        y: int = dataclasses.field(default=0, compare=False)

    assert field_names(Point) == ("x", "y") and Point.LIMIT == 3
    assert Point(1, 2) == Point(1, 5) and repr(Point(1)) == \
        "test_dataclasses_field_is_accepted_and_class_variables_skipped.<locals>.Point(x=1, y=0)"


def test_many_fields_and_factories_compile_their_own_template() -> None:
    n = _records.SHIPPED_FIELDS + 3
    space: dict[str, Any] = {"__annotations__": {f"f{i}": "int" for i in range(n)}}
    space["f3"] = field(default_factory=lambda: 7)
    for i in range(4, n):
        space[f"f{i}"] = i
    Wide = record(type("Wide", (), space))
    oracle_space = dict(space, f3=dataclasses.field(default_factory=lambda: 7))
    Oracle = dataclasses.dataclass(frozen=True, slots=True)(type("Wide", (), oracle_space))
    assert repr(Wide(0, 1, 2)) == repr(Oracle(0, 1, 2))
    assert Wide(0, 1, 2) == Wide(0, 1, 2, 7) and hash(Wide(0, 1, 2)) == hash(Oracle(0, 1, 2))
    assert str(inspect.signature(Wide)) == str(inspect.signature(Oracle))


@record
class Pickled:
    name: str
    sizes: tuple = (1, 2)
    span: Any = field(default=None, compare=False, repr=False)


def test_a_record_pickles() -> None:
    value = Pickled("p", (3,), span="here")
    back = pickle.loads(pickle.dumps(value))
    assert back == value and back.span == "here" and type(back) is Pickled


def test_the_shipped_templates_are_current() -> None:
    """After a change to a template: ``gtdsl._records.write_shipped_templates()``."""
    text = Path(shipped.__file__).read_text(encoding="utf-8")
    assert text == _records.shipped_templates()


RECORD_MODULES = ["gtdsl.syntax.ast", "gtdsl.types.core", "gtdsl.types.sizes",
                  "gtdsl.types.lattice", "gtdsl.types.subst", "gtdsl.ir.core",
                  "gtdsl.diagnostics.source", "gtdsl.diagnostics.diagnostic",
                  "gtdsl.diagnostics.codes", "gtdsl.ops.base", "gtdsl.ops.table",
                  "gtdsl.ops.operators", "gtdsl.check.env", "gtdsl.check.builder",
                  "gtdsl.driver", "gtdsl._config"]


def _records_of(module: str) -> list[type]:
    found = vars(importlib.import_module(module)).values()
    return [c for c in found if isinstance(c, type) and "__record_fields__" in vars(c)
            and c.__module__ == module]


@pytest.mark.parametrize("module", RECORD_MODULES)
def test_every_record_is_the_dataclass_it_was(module: str) -> None:
    """Each record class, rebuilt as a dataclass from its own fields, has the same
    constructor signature, fields, match arguments, docstring and hashability."""
    classes = _records_of(module)
    assert classes
    for cls in classes:
        frozen, _eq = cls.__record_params__  # type: ignore[attr-defined]
        slots = "__slots__" in vars(cls)
        space: dict[str, Any] = {"__annotations__": {}, "__module__": module,
                                 "__qualname__": cls.__qualname__}
        for f in record_fields(cls):
            space["__annotations__"][f.name] = f.type
            space[f.name] = dataclasses.field(
                default=dataclasses.MISSING if f.default is _records.MISSING else f.default,
                default_factory=dataclasses.MISSING if f.default_factory is _records.MISSING
                else f.default_factory, repr=f.repr, hash=f.hash, compare=f.compare)
        oracle = dataclasses.dataclass(frozen=frozen, slots=slots)(
            type(cls.__name__, (), space))
        assert str(inspect.signature(cls)) == str(inspect.signature(oracle)), cls
        assert cls.__match_args__ == oracle.__match_args__  # type: ignore[attr-defined]
        assert (cls.__hash__ is None) == (oracle.__hash__ is None), cls
        if "__doc__" not in vars(cls) or not isinstance(vars(cls)["__doc__"], str):
            assert cls.__doc__ == oracle.__doc__, cls
        assert [(f.name, f.compare, f.repr, f.hash) for f in dataclasses.fields(cls)] == [
            (f.name, f.compare, f.repr, f.hash) for f in dataclasses.fields(oracle)], cls


def test_the_span_slots_stay_settable_through_their_descriptors() -> None:
    """The direct parser makes spans by setting Span's slots through their descriptors."""
    from gtdsl.diagnostics import SourceFile, Span

    file = SourceFile("f.gt", "abc")
    span = Span.__new__(Span)
    for name, value in (("file", file), ("start", 0), ("end", 2)):
        vars(Span)[name].__set__(span, value)
    assert span == Span(file, 0, 2) and Span.__slots__ == ("file", "start", "end")


def test_what_dataclasses_refuse_or_records_cannot_honour_is_refused() -> None:
    """Frozen and mutable records do not mix in a hierarchy (as dataclasses refuse); a field
    named `self`, a KW_ONLY marker and a field() without an annotation would otherwise be
    mishandled silently."""
    @record
    class Frozen:
        x: int

    @record(frozen=False, slots=False)
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="cannot inherit non-frozen record"):
        record(frozen=False, slots=False)(type("Sub", (Frozen,), {"__annotations__": {}}))
    with pytest.raises(TypeError, match="cannot inherit frozen record"):
        record(type("Sub", (Mutable,), {"__annotations__": {}}))
    with pytest.raises(TypeError, match="'self'"):
        record(type("S", (), {"__annotations__": {"self": "int"}}))
    with pytest.raises(TypeError, match="KW_ONLY"):
        record(type("K", (), {"__annotations__": {"_": dataclasses.KW_ONLY, "a": "int"}}))
    with pytest.raises(TypeError, match="without a type annotation"):
        record(type("Z", (), {"__annotations__": {}, "z": field(default=1)}))
    # the equivalent dataclasses: the first two are refused there too
    with pytest.raises(TypeError):
        dataclasses.dataclass(type("Sub", (dataclasses.dataclass(frozen=True)(
            type("F", (), {"__annotations__": {"x": "int"}})),), {"__annotations__": {}}))
