"""The checker's fast type walks against their definitions: ``conforms`` (the cast's
precision test, labels ignored) against ``leq`` of the label-free types, on random types and
on pairs where one is a weakening of the other (so that both answers occur often);
``substitute`` against the version that rebuilt every node; the call graph's walk against
a walk of every field of every node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from gtdsl._records import is_record, record_fields
from gtdsl.check.callgraph import _TYPES, _calls_of
from gtdsl.check.env import ALLOWED_PYTHON, Session
from gtdsl.diagnostics import SourceFile
from gtdsl.syntax import ast, parse_file
from gtdsl.types import (
    DOTS, DT, DYN, Dev, Row, ScalarKind, Size, TDim, TDyn, TList, TScalar, TShape, TStruct,
    TTensor,
    TTuple,
    Type,
)
from gtdsl.types.core import leq
from gtdsl.types.subst import (
    KEEP, Instance, SizeEnv, conforms, strip_labels, subst_size, substitute,
)
from tests.properties.test_lattice_laws import ALL_SIZES, tensors, weaken

ROOT = Path(__file__).resolve().parents[3]
CORPUS = sorted((ROOT / "gtdsl" / "models").glob("*.gt")) + sorted(
    (ROOT / "docs" / "examples").rglob("*.gt"))

ROWS = (None, Row("b"), Row("c"))


@st.composite
def with_rows(draw: st.DrawFn, t: TTensor) -> TTensor:
    """``t``, its row sometimes a row variable (which only itself is below)."""
    if draw(st.booleans()):
        return t
    return TTensor(t.dtype, TShape(draw(st.sampled_from(ROWS)), t.shape.dims), t.device)


TENSORS = tensors(ALL_SIZES).flatmap(with_rows)
TYPES = st.recursive(st.one_of(TENSORS, st.just(DYN)), lambda inner: st.one_of(
    st.builds(TList, inner), st.lists(inner, max_size=3).map(lambda es: TTuple(tuple(es)))),
    max_leaves=4)


def _oracle(a: object, b: object) -> bool:
    return leq(strip_labels(a), strip_labels(b))  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(TYPES, TYPES)
def test_conforms_is_leq_without_labels(a: object, b: object) -> None:
    assert conforms(a, b) == _oracle(a, b)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(tensors(ALL_SIZES).flatmap(lambda t: st.tuples(st.just(t), weaken(t))))
def test_conforms_weakenings(pair: tuple[TTensor, TTensor]) -> None:
    a, b = pair
    assert conforms(a, b) == _oracle(a, b)
    assert conforms(b, a) == _oracle(b, a)
    assert conforms(TList(a), TTuple((b,))) == _oracle(TList(a), TTuple((b,)))


# ------------------------------------------------------------------ substitute


def _substitute_reference(t: Type, env: SizeEnv, rows: dict) -> Type:
    """``substitute`` as first written: a new type built for every node."""
    if isinstance(t, TTensor):
        dims = tuple(TDim(d.label, subst_size(d.size, env)) for d in t.shape.dims)
        row = t.shape.row
        if row is not None and row.name is not None and row.name in rows:
            prefix = rows[row.name]
            if prefix is None:
                return TTensor(t.dtype, TShape(DOTS, dims), t.device)
            return TTensor(t.dtype, TShape(prefix.row, prefix.dims + dims), t.device)
        return TTensor(t.dtype, TShape(row, dims), t.device)
    if isinstance(t, TScalar):
        return TScalar(t.kind, subst_size(t.value, env))
    if isinstance(t, TStruct):
        return TStruct(t.name, tuple(subst_size(a, env) for a in t.args))
    if isinstance(t, TList):
        return TList(_substitute_reference(t.elem, env, rows))
    if isinstance(t, TTuple):
        return TTuple(tuple(_substitute_reference(e, env, rows) for e in t.elems))
    return t


SIZES_WITH_VARS = ALL_SIZES + (Size.of("al") * Size.of("be"), Size.of("be") + 2)
ENV_VALUES = st.sampled_from([KEEP, None, Size.of(3), Size.of("ga"), Size.of("al") + 1])
ROW_VALUES = st.sampled_from([None, TShape(None, ()), TShape(DOTS, (TDim("x", Size.of(2)),)),
                              TShape(Row("r"), (TDim(None, Size.of("ga")),))])
SUBST_TYPES = st.recursive(st.one_of(
    tensors(SIZES_WITH_VARS).flatmap(with_rows), st.just(DYN),
    st.builds(TScalar, st.sampled_from(list(ScalarKind)), st.sampled_from(SIZES_WITH_VARS)),
    st.builds(TStruct, st.just("P"), st.lists(st.sampled_from(SIZES_WITH_VARS), max_size=2)
              .map(tuple))),
    lambda inner: st.one_of(st.builds(TList, inner),
                            st.lists(inner, max_size=3).map(lambda es: TTuple(tuple(es)))),
    max_leaves=4)


@settings(max_examples=400, deadline=None)
@given(SUBST_TYPES, st.dictionaries(st.sampled_from(["al", "be"]), ENV_VALUES),
       st.dictionaries(st.sampled_from(["b", "c"]), ROW_VALUES))
def test_substitute_as_first_written(t: Type, sizes: dict, rows: dict) -> None:
    def env(v: str) -> object:
        return sizes.get(v, KEEP)

    got = substitute(t, env, rows)
    assert got == _substitute_reference(t, env, rows)
    if got != t:
        return
    assert got is t or rows  # nothing changed: the same object (rows are always rebuilt)


# ------------------------------------------------------------------ the call graph's walk


def _generic_calls(fn: Any) -> tuple[list[tuple[str, int]], int]:
    """Every call of a gtdsl function by name and the deepest block, walking every field of
    every AST node (annotations excepted), recursively."""
    best: dict[str, int] = {}
    deepest = 0

    def walk(node: Any, blocks: int) -> None:
        nonlocal deepest
        deepest = max(deepest, blocks)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                fn.module.function(node.func.id) is not None:
            best[node.func.id] = max(best.get(node.func.id, -1), blocks)
        for f in record_fields(node):
            if f.name == "span":
                continue
            value = getattr(node, f.name)
            inner = blocks + (f.name in ("body", "orelse") and isinstance(
                node, (ast.If, ast.For, ast.IfExp)))
            for v in value if isinstance(value, tuple) else (value,):
                if is_record(v) and not isinstance(v, _TYPES):
                    walk(v, inner)

    for st_ in fn.decl.body:
        walk(st_, 0)
    return sorted(best.items()), deepest


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_call_graph_walk_sees_every_call(path: Path) -> None:
    tree = parse_file(path)
    session = Session(ALLOWED_PYTHON)
    session.load_main(SourceFile(str(path), path.read_text()), tree, path)
    for mod in session.modules.values():
        for fn in mod.functions.values():
            calls, deepest = _calls_of(fn)
            assert (sorted((c.name, b) for c, _, b in calls), deepest) == _generic_calls(fn)


# ------------------------------------------------------------------ a call's accepted arguments


@settings(max_examples=600, deadline=None)
@given(st.one_of(tensors(ALL_SIZES).flatmap(with_rows), st.just(DYN)),
       st.one_of(SUBST_TYPES, tensors(SIZES_WITH_VARS).flatmap(with_rows)),
       st.dictionaries(st.sampled_from(["al", "be"]), st.sampled_from(
           [Size.of(3), Size.of("ga"), Size.of("al") + 1, Size.of(0)])),
       st.sets(st.sampled_from(["al", "be"])))
def test_accepts_is_conforms_to_the_instance(arg: Type, param: Type, sizes: dict,
                                              flexible: set) -> None:
    """``Instance.accepts`` never accepts what the resolved parameter would cast, and
    decides every tensor without a row variable exactly."""
    inst = Instance(frozenset(flexible), frozenset({"b"}))
    inst.sizes.update(sizes)
    expected = conforms(arg, inst.resolve(param))
    got = inst.accepts(arg, param)
    assert not got or expected
    decided = isinstance(param, TDyn) or isinstance(arg, TTensor) and isinstance(
        param, TTensor) and (param.shape.row is None or param.shape.row.name is None)
    if decided:
        assert got == expected


@st.composite
def _arg_and_param(draw: st.DrawFn) -> tuple[TTensor, TTensor]:
    """A tensor argument and a parameter close to it: its dims the same sizes, unknown, or
    the callee's variables, so that the argument often conforms."""
    arg = draw(tensors(ALL_SIZES, min_dims=1))
    dims = tuple(TDim(draw(st.sampled_from([None, "x"])), draw(st.sampled_from(
        [d.size, None, Size.of("al"), Size.of("be"), Size.of("al") + 1])))
        for d in arg.shape.dims)
    row = arg.shape.row if draw(st.booleans()) else draw(st.sampled_from(ROWS))
    return arg, TTensor(draw(st.sampled_from([arg.dtype, DT.ANY, DT.F32])), TShape(row, dims),
                        draw(st.sampled_from([arg.device, Dev()])))


@settings(max_examples=600, deadline=None)
@given(_arg_and_param(), st.dictionaries(st.sampled_from(["al", "be"]), st.sampled_from(
    [Size.of(0), Size.of(1), Size.of(2), Size.of(3), Size.of("al")])),
    st.sets(st.sampled_from(["al", "be"])))
def test_accepts_near_parameters(pair: tuple[TTensor, TTensor], sizes: dict,
                                 flexible: set) -> None:
    arg, param = pair
    inst = Instance(frozenset(flexible), frozenset({"b"}))
    inst.sizes.update(sizes)
    expected = conforms(arg, inst.resolve(param))
    got = inst.accepts(arg, param)
    assert not got or expected
    if param.shape.row is None or param.shape.row.name is None:
        assert got == expected
