"""The size solver (docs/types.md, "Sizes and size variables") never answers VALID or UNSAT
wrongly.

Random polynomials over the variables a, b, c and the constants 0..5, built with
``+ - * // %``, are compared by brute force over every assignment of the variables in 0..4
(an assignment where a ``//`` or ``%`` divides by zero is skipped: the expression has no value
there). ``solve_for`` is checked the same way: substituting its solution makes the equation
hold for every assignment of the remaining variables.
"""

from __future__ import annotations

import itertools
from typing import Union

from hypothesis import given, settings, strategies as st

from gtdsl.types.sizes import Size, Solution, Verdict, decide, solve_for

VARS = ("a", "b", "c")
OPS = ("+", "-", "*", "//", "%")
ASSIGNMENTS = [dict(zip(VARS, values)) for values in itertools.product(range(5), repeat=3)]

# An expression tree: a variable name, a constant, or (op, left, right).
Tree = Union[str, int, tuple]

trees: st.SearchStrategy[Tree] = st.recursive(
    st.one_of(st.sampled_from(VARS), st.integers(0, 5)),
    lambda inner: st.tuples(st.sampled_from(OPS), inner, inner),
    max_leaves=6,
)
# Opaque atoms whose numerator may be negative (a difference), added to another term: the
# cases where a solver that assumed every atom non-negative would decide a sign wrongly.
opaque_sums: st.SearchStrategy[Tree] = st.tuples(
    st.sampled_from(["+", "-"]),
    st.tuples(st.sampled_from(["//", "%"]), st.tuples(st.just("-"), trees, trees), trees),
    trees,
)


def build(tree: Tree) -> Size:
    """The tree as a ``Size``, through the public constructors."""
    if isinstance(tree, (str, int)):
        return Size.of(tree)
    op, left, right = tree
    a, b = build(left), build(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a.floordiv(b) if op == "//" else a.mod(b)


def reference(tree: Tree, env: dict[str, int]) -> int | None:
    """The tree's value with Python integer arithmetic; None where a divisor is not positive."""
    if isinstance(tree, str):
        return env[tree]
    if isinstance(tree, int):
        return tree
    op, left, right = tree
    a, b = reference(left, env), reference(right, env)
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b <= 0:
        return None
    return a // b if op == "//" else a % b


def commuted(tree: Tree) -> Tree:
    """The same function written differently: swap the operands of every ``+`` and ``*``."""
    if isinstance(tree, (str, int)):
        return tree
    op, left, right = tree
    left, right = commuted(left), commuted(right)
    return (op, right, left) if op in ("+", "*") else (op, left, right)


_lhs = st.one_of(trees, opaque_sums)
_kinds = st.sampled_from(
    ["independent", "shifted", "commuted", "scaled", "constant", "witnessed", "witnessed"])
_plus_minus = st.sampled_from(["+", "-"])
_small, _consts, _assignments = st.integers(0, 3), st.integers(0, 5), st.sampled_from(ASSIGNMENTS)


@st.composite
def equations(draw: st.DrawFn) -> tuple[Tree, Tree]:
    """``p = q`` with ``q`` often related to ``p``, so that VALID and UNSAT both occur."""
    p = draw(_lhs)
    kind = draw(_kinds)
    if kind == "independent":
        q = draw(trees)
    elif kind == "shifted":
        q = (draw(_plus_minus), p, draw(_small))
    elif kind == "commuted":
        q = commuted(p)
    elif kind == "scaled":
        q = ("*", draw(_small), p)
    elif kind == "constant":
        q = draw(_consts)
    else:  # the value p takes somewhere, so p = q is satisfiable and must not be UNSAT
        value = reference(p, draw(_assignments))
        q = value if value is not None else draw(_consts)
    return (q, p) if draw(st.booleans()) else (p, q)


def values(size: Size) -> list[tuple[dict[str, int], int]]:
    return [(env, v) for env in ASSIGNMENTS if (v := size.evaluate(env)) is not None]


# ---------------------------------------------------------------------------- construction


@settings(max_examples=300)
@given(trees)
def test_construction_agrees_with_python_arithmetic(tree: Tree) -> None:
    """Where the expression has a value, the normalised polynomial has that same value."""
    size = build(tree)
    for env in ASSIGNMENTS:
        expected = reference(tree, env)
        if expected is None:
            continue
        got = size.evaluate(env)
        assert got is None or got == expected, (tree, size, env, got, expected)


# ---------------------------------------------------------------------------- decide


@settings(max_examples=400)
@given(equations())
def test_decide_is_sound(pq: tuple[Tree, Tree]) -> None:
    p, q = build(pq[0]), build(pq[1])
    verdict = decide(p, q)
    assert decide(q, p) is verdict
    if verdict is Verdict.UNKNOWN:
        return
    for env in ASSIGNMENTS:
        vp, vq = p.evaluate(env), q.evaluate(env)
        if vp is None or vq is None:
            continue
        if verdict is Verdict.VALID:
            assert vp == vq, f"VALID but {p} = {vp} and {q} = {vq} at {env}"
        else:
            assert vp != vq, f"UNSAT but {p} = {q} = {vp} at {env}"


@settings(max_examples=100)
@given(trees)
def test_decide_reflexive(tree: Tree) -> None:
    p = build(tree)
    assert decide(p, p) is Verdict.VALID


# ---------------------------------------------------------------------------- solve_for


@settings(max_examples=400)
@given(equations(), st.sets(st.sampled_from(VARS), min_size=1))
def test_solve_for_is_exact(pq: tuple[Tree, Tree], flexible: set[str]) -> None:
    p, q = build(pq[0]), build(pq[1])
    sol = solve_for(p, q, flexible)
    if sol is None:
        return
    assert sol.var in flexible
    assert sol.var not in sol.value.variables()

    def env(v: str) -> Size | None:
        return sol.value if v == sol.var else None

    diff = (p - q).substitute(env)
    assert sol.var not in diff.variables()
    for assignment, value in values(diff):
        assert value == 0, f"{sol.var} := {sol.value} leaves {p} - {q} = {value} at {assignment}"
    ps, qs = p.substitute(env), q.substitute(env)
    for assignment in ASSIGNMENTS:
        vp, vq = ps.evaluate(assignment), qs.evaluate(assignment)
        if vp is not None and vq is not None:
            assert vp == vq, (sol, assignment, vp, vq)


# ---------------------------------------------------------------------------- unit examples

n, m = Size.of("n"), Size.of("m")


def test_examples() -> None:
    assert decide(n + 1, n) is Verdict.UNSAT
    assert decide(2 * n, Size.of(3)) is Verdict.UNSAT
    assert decide(n, Size.of(3)) is Verdict.UNKNOWN
    assert decide(n * m, m * n) is Verdict.VALID
    assert decide((2 * n).floordiv(2), n) is Verdict.VALID
    assert decide(n + m + 1, Size.of(0)) is Verdict.UNSAT  # sign forced by sizes >= 0
    assert decide(n - m, Size.of(0)) is Verdict.UNKNOWN
    assert decide(n.mod(3), Size.of(3)) is Verdict.UNKNOWN  # not decided, though never true


def test_floordiv_of_a_possibly_negative_numerator_has_no_sign() -> None:
    # (n - 5) // 2 is -3 at n = 0, so (n - 5) // 2 + 3 = 0 holds there: not UNSAT.
    p = (n - 5).floordiv(2) + 3
    assert p.evaluate({"n": 0}) == 0
    assert decide(p, Size.of(0)) is not Verdict.UNSAT
    # A numerator that cannot be negative still gives a non-negative atom.
    assert decide((n + 5).floordiv(m) + 3, Size.of(0)) is Verdict.UNSAT
    assert decide((n - 5).mod(m) + 3, Size.of(0)) is Verdict.UNSAT  # % is never negative


def test_solve_for_examples() -> None:
    assert solve_for(2 * n, Size.of(6), {"n"}) == Solution("n", Size.of(3))
    assert solve_for(2 * n, Size.of(3), {"n"}) is None
    assert solve_for(n + m, Size.of(5), {"n"}) == Solution("n", 5 - m)
    assert solve_for(n + m, Size.of(5), set()) is None
    assert solve_for(n * m, Size.of(5), {"n", "m"}) is None  # not linear
