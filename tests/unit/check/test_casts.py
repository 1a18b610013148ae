"""Cast insertion: where CHECK_CAST and CHECK_OP appear, counted (a fully typed body casts only
at its entry: docs/types.md, "Tightening types step by step")."""

from __future__ import annotations

import pytest

from gtdsl.driver import check_file
from gtdsl.ir.core import BlameKind, Op, count, walk
from gtdsl.ir.verify import verify_program
from gtdsl.types import TDyn
from tests.conftest import REPO

EXAMPLES = REPO / "docs" / "examples"


def _checked(path):
    c = check_file(path, is_path=True)
    assert c.diagnostics == (), c.diagnostics
    verify_program(c.result.program)
    return c.result


def _casts(fn):
    return [e for e in walk(fn.body) if e.op is Op.CHECK_CAST]


def test_bert_is_fully_static_casts_only_at_entries() -> None:
    result = _checked(EXAMPLES / "bert" / "bert.gt")
    for fn in result.program.functions:
        casts = _casts(fn)
        assert all(e.param("blame").kind is BlameKind.ARG for e in casts), fn.name
        assert len(casts) == len(fn.params)  # one per annotated parameter, nothing else
    assert count(result.program, Op.CHECK_OP) == 0


@pytest.mark.parametrize(("name", "entry", "inner", "checks"), [
    ("mlp", 3, 0, 0), ("rms_norm", 3, 0, 0), ("layers", 2, 0, 0),
    ("softmax", 1, 0, 1)])  # amax over an empty dim is an error in torch: checked at run time
def test_static_examples_cast_only_at_entries(name: str, entry: int, inner: int,
                                              checks: int) -> None:
    result = _checked(EXAMPLES / "language" / f"{name}.gt")
    main = result.program.functions[-1] if name != "softmax" else result.program.function(
        "softmax")
    kinds = [e.param("blame").kind for e in _casts(main)]
    assert kinds.count(BlameKind.ARG) == entry
    assert len(kinds) - entry == inner
    assert count(main, Op.CHECK_OP) == checks


def test_extern_result_is_cast_where_used_and_blames_the_extern() -> None:
    result = _checked(EXAMPLES / "language" / "gated.gt")
    casts = _casts(result.program.function("gated"))
    kinds = [e.param("blame").kind for e in casts]
    assert kinds == [BlameKind.ARG, BlameKind.ARG, BlameKind.EXTERN]
    assert str(casts[-1].param("target")) == "f32[n, d]"


def test_unannotated_function_has_no_casts() -> None:
    result = _checked(EXAMPLES / "language" / "softmax.gt")
    scale = result.program.function("scale")
    assert _casts(scale) == []
    assert all(isinstance(p.type, TDyn) for p in scale.params)


def test_opaque_sizes_get_a_runtime_check() -> None:
    # encoder.gt splits heads with an int argument: D // heads is checked when it runs.
    result = _checked(EXAMPLES / "language" / "encoder.gt")
    fn = result.program.function("self_attention")
    facts = [f for e in walk(fn.body) if e.op is Op.CHECK_OP for f in e.param("facts")]
    assert facts and all("divisible" in f for f in facts)
    op_arg = [e for e in _casts(fn) if e.param("blame").kind is BlameKind.OP_ARG]
    assert len(op_arg) == 1 and "heads" in str(op_arg[0].ins[0].type)


def test_let_annotation_casts_only_when_less_precise() -> None:
    src = ("def f(x: f32[b, d], w: Tensor) -> f32[b, d]:\n"
           "    h: f32[b, d] = x * 2.0\n"
           "    g: f32[b, d] = x @ w\n"
           "    return h + g\n")
    c = check_file(src, "let.gt")
    assert c.diagnostics == ()
    fn = c.result.program.function("f")
    annots = [e for e in _casts(fn) if e.param("blame").kind is BlameKind.ANNOT]
    assert len(annots) == 1 and annots[0].span.line == 3
