"""The static gradual guarantee (docs/types.md, "What is checked, and when"): weaken
annotations of a well-typed program and it still checks, every inferred type equally or less
precise.

Weakenings: a size to ``?``, ``cuda:0 → cuda → ?``, ``f16 → float → ?``, a leading dims prefix
to ``...``, a whole shape to ``[...]``. Labels that by-name ops use are binders and are kept,
and a size variable is weakened in a parameter only where another parameter still binds it.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from gtdsl.types.subst import strip_labels
from gtdsl.driver import check_file
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_file, parse_source
from gtdsl.syntax.unparse import unparse
from gtdsl.types import leq
from tests.conftest import REPO
from tests.properties.strategies import programs, weaken

PROGRAMS = [REPO / "docs" / "examples" / "language" / n for n in
            ("mlp.gt", "rms_norm.gt", "softmax.gt", "layers.gt", "gated.gt")] + [
    REPO / "docs" / "examples" / "bert" / "bert.gt"]


def test_weakenings_happen() -> None:
    """The weakening generator does weaken: every program has annotations it changes."""
    for prog in PROGRAMS:
        module = parse_file(prog)
        changed = 0
        for slot in range(8):
            for choice in range(25):
                body = tuple(weaken(d, [(slot, choice)]) if isinstance(d, ast.FunctionDef)
                             else d for d in module.body)
                changed += body != module.body
        assert changed > 0, prog.name


def _signatures(text: str, path) -> dict[str, object]:
    """Each function's return type and, in checking order, the type of every let."""
    c = check_file(text, str(path))
    assert [d for d in c.diagnostics if d.is_error] == [], [str(d.message) for d in
                                                            c.diagnostics]
    out: dict[str, object] = {}
    for f in c.result.module.functions.values():
        out[f.name] = f.returns
        for i, t in enumerate(f.lets.values()):
            out[f"{f.name}/let{i}"] = t
    return out


def _assert_less_precise(precise: dict, weak: dict, text: str) -> None:
    assert precise.keys() == weak.keys(), text
    for name, t in precise.items():
        assert leq(strip_labels(t), strip_labels(weak[name])), (name, str(t), str(weak[name]),
                                                                text)


@settings(max_examples=60, deadline=None)
@given(prog=st.sampled_from(PROGRAMS),
       picks=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200)), min_size=1,
                      max_size=4))
def test_weakening_annotations_keeps_programs_well_typed(prog, picks) -> None:
    module = parse_file(prog)
    precise = _signatures(prog.read_text(), prog)
    body = tuple(weaken(d, picks) if isinstance(d, ast.FunctionDef) else d for d in module.body)
    weak_text = unparse(dataclasses.replace(module, body=body))
    weak = _signatures(weak_text, prog.with_name("weak_" + prog.name))
    _assert_less_precise(precise, weak, weak_text)


@settings(max_examples=60, deadline=None)
@given(text=programs(), picks=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200)),
                                       min_size=1, max_size=4))
def test_generated_programs_stay_well_typed_when_weakened(text, picks) -> None:
    precise = _signatures(text, "generated.gt")
    module = parse_source(text, "generated.gt")
    body = tuple(weaken(d, picks) if isinstance(d, ast.FunctionDef) else d for d in module.body)
    weak_text = unparse(dataclasses.replace(module, body=body))
    _assert_less_precise(precise, _signatures(weak_text, "generated.gt"), weak_text)
