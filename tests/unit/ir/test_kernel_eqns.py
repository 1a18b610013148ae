"""Fusion is an IR pass: ``fuse`` rewrites a function so that each group of fused ops is one
``KERNEL`` eqn (inputs, outputs, a ``kernel`` record and a block ending in ``YIELD``), which
the verifier and the printer see and the torch lowering emits generically (launch, or run
the block). Backends are one registry; only the Triton backend's pass adds kernels."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from gtdsl.check import check_module
from gtdsl.diagnostics import SourceFile
from gtdsl.driver import check_file
from gtdsl.ir.core import Block, Function, Op, count, walk
from gtdsl.ir.printer import print_function
from gtdsl.ir.verify import VerifyError, verify_function
from gtdsl.lower.records import Launch
from gtdsl.lower.torch.codegen import lower_function
from gtdsl.lower.triton.fusion import Kernel, describe, fuse
from gtdsl.lower.triton.kernels import launcher_for
from gtdsl.runtime.backends import REGISTRY
from gtdsl.syntax.parse import parse_file_text
from tests.conftest import REPO
from tests.ir_passes import verify_passes

CHAIN = "def f(x: f32[m, n], c: f32[n], y: f32[m, n]):\n    return gelu(x + c) * sigmoid(y) + x\n"
SOFTMAX = ("def f(x: f32[m, n]):\n"
           "    return x - x.amax(-1, keepdim=True) + x.amin(-1, keepdim=True)\n")


def _fn(src: str, name: str = "f") -> Function:
    file = SourceFile("k.gt", src)
    result = check_module(file, parse_file_text(file))
    assert result.ok, result.diagnostics
    return result.program.function(name)


def _kernel(fn: Function):
    (k,) = [e for e in fn.body.eqns if e.op is Op.KERNEL]
    return k


def test_a_group_becomes_one_kernel_eqn_in_place_of_its_last_eqn() -> None:
    fn = _fn(CHAIN)
    fused = fuse(fn)
    verify_function(fused)
    verify_function(fused)
    k = _kernel(fused)
    ret = fused.body.eqns[-1]
    assert ret.op is Op.RETURN and fused.body.eqns[-2] is k
    # the outputs keep their vars outside; the rest of the function is unchanged
    assert k.outs == ret.ins and fn.body.eqns[-1] == ret
    assert [e.op for e in fused.body.eqns].count(Op.KERNEL) == 1
    assert not any(e.op in (Op.ADD, Op.GELU, Op.SIGMOID, Op.MUL) for e in fused.body.eqns)
    body = k.blocks[0].eqns
    assert [e.op for e in body] == [Op.ADD, Op.GELU, Op.SIGMOID, Op.MUL, Op.ADD, Op.YIELD]
    # values only the kernel uses are defined only inside its block
    top = {o.id for e in fused.body.eqns for o in e.outs}
    inner = {o.id for e in body for o in e.outs}
    assert not top & inner
    assert body[-1].ins == body[-2].outs and body[-2].outs[0].type == k.outs[0].type
    # its inputs are what the block reads from outside, in first-use order
    assert [a.hint for a in k.ins] == ["x", "c", "y"]


def test_the_kernel_record_is_frozen_hashable_and_printable() -> None:
    k = _kernel(fuse(_fn(CHAIN))).param("kernel")
    assert isinstance(k, Kernel) and k.kind == "pointwise" and k.name.startswith("pointwise_")
    assert str(k) == f"{k.name}: pointwise"
    assert hash(k) == hash(Kernel(k.kind, k.name, k.shape))
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.kind = "row"  # type: ignore[misc]


def test_a_function_without_fusible_ops_is_returned_as_it_is() -> None:
    fn = _fn("def f(x: i64[n]):\n    return x + 1\n")
    assert fuse(fn) is fn


def test_checks_stay_in_place_and_run_before_the_kernel() -> None:
    fused = fuse(_fn(SOFTMAX))
    verify_function(fused)
    ops = [e.op for e in fused.body.eqns]
    assert ops.count(Op.CHECK_OP) == 2 and ops.index(Op.KERNEL) > max(
        i for i, op in enumerate(ops) if op is Op.CHECK_OP)
    # a check whose op is nowhere after it is still refused
    no_kernel = replace(fused, body=Block(tuple(e for e in fused.body.eqns
                                                if e.op is not Op.KERNEL)))
    with pytest.raises(VerifyError, match="CHECK_OP for amax"):
        verify_function(no_kernel)


def test_a_kernel_reading_a_value_it_is_not_given_is_refused() -> None:
    fused = fuse(_fn(CHAIN))
    k = _kernel(fused)
    bad = replace(fused, body=Block(tuple(replace(e, ins=e.ins[:-1]) if e is k else e
                                          for e in fused.body.eqns)))
    with pytest.raises(VerifyError, match="not one of its inputs"):
        verify_function(bad)  # defined outside the kernel, but not given to it


def test_the_printer_shows_the_kernel_and_its_block() -> None:
    text = print_function(fuse(_fn(CHAIN)))
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if "= kernel[pointwise_" in line)
    assert ": pointwise](" in lines[head]
    assert lines[head + 1].strip() == "kernel:"
    assert any(line.strip().startswith("yield(") for line in lines[head + 2:])
    assert "kernel" not in print_function(_fn(CHAIN))


def test_the_torch_lowering_emits_a_kernel_generically() -> None:
    fn = _fn(CHAIN)
    fused = fuse(fn)
    gen = lower_function(fused, ("m", "n"), ())
    (launch,) = [c for c in gen.constants if isinstance(c, Launch)]
    assert launch.kernel is _kernel(fused)
    assert ".ok(" in gen.source and "else:" in gen.source
    # the fallback: the block as torch code, its YIELD assigning the kernel's output
    out = _kernel(fused).outs[0]
    assert gen.source.count(f"v{out.id}_") >= 3  # launch, fallback, return
    plain = lower_function(fn, ("m", "n"), ())
    assert ".ok(" not in plain.source and not any(isinstance(c, Launch) for c in plain.constants)
    # with emit off, the constants come out in the same order
    assert [type(c) for c in lower_function(fused, ("m", "n"), (), emit=False).constants] == \
        [type(c) for c in gen.constants]


def test_the_launcher_is_built_from_the_kernel_eqn() -> None:
    fused = fuse(_fn(CHAIN))
    k = _kernel(fused)
    launcher = launcher_for(k)
    assert launcher.group.kind == "pointwise" and launcher.group.inputs == k.ins
    assert launcher.group.outputs == k.blocks[0].eqns[-1].ins
    assert "def gtdsl_pointwise_" in launcher.source(2)
    with pytest.raises(ValueError, match="KERNEL"):
        launcher_for(fused.body.eqns[0])


def test_only_the_triton_backend_adds_kernels() -> None:
    fn = _fn(CHAIN)
    assert REGISTRY["torch"].prepare(fn) is fn and REGISTRY["interpret"].prepare(fn) is fn
    assert count(REGISTRY["triton"].prepare(fn), Op.KERNEL) == 1
    assert describe(fuse(fn)).startswith("kernel pointwise_")


GT_FILES = sorted([*(REPO / "docs" / "examples").rglob("*.gt"),
                   *(REPO / "gtdsl" / "models").glob("*.gt"),
                   *(REPO / "tests" / "golden" / "triton").glob("*.gt")])


@pytest.mark.parametrize("path", GT_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_example_and_model_verifies_after_each_pass(path: Path) -> None:
    checked = check_file(path, is_path=True)
    assert checked.result is not None and checked.errors == 0
    verify_passes(checked.result.program)


def test_models_fuse_their_blocks() -> None:
    checked = check_file(REPO / "gtdsl" / "models" / "blocks.gt", is_path=True)
    kernels = sum(count(fuse(f), Op.KERNEL) for f in checked.result.program.functions)
    assert kernels > 0
    for f in checked.result.program.functions:
        for e in walk(fuse(f).body):
            if e.op is Op.KERNEL:
                assert e.blocks[0].eqns[-1].op is Op.YIELD
