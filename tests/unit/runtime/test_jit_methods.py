"""@gtdsl.jit on methods: bound as Python binds functions; `self` a struct value, typed by the
class's field annotations (checked when decorated) or read from the instance at the first
call; submodule calls; trained for a few steps with the losses and gradients plain PyTorch
computes (the oracle: the same module's parameters run through torch's own layers)."""

from __future__ import annotations

import copy
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gtdsl
from gtdsl.driver import JitMethod
from gtdsl.runtime.errors import CastError, TypeCheckError
from tests.fixtures import jit_modules as jm


def test_a_jitted_method_binds_its_instance() -> None:
    m = jm.MLP(4, 8)
    x = torch.randn(3, 4)
    assert jm.MLP.forward.__get__(None, jm.MLP) is jm.MLP.forward
    torch.testing.assert_close(m(x), jm.mlp_reference(m, x))
    torch.testing.assert_close(m.forward(x), jm.mlp_reference(m, x))
    torch.testing.assert_close(jm.MLP.forward(m, x), jm.mlp_reference(m, x))


def test_declared_fields_make_the_method_checked_at_decoration() -> None:
    assert str(jm.MLP.forward.signature) == \
        "def forward(self: MLP[f, d], x: f32[b, d]) -> f32[b, d]"
    assert str(jm.Linear.forward.signature) == \
        "def forward(self: Linear[o, i], x: f32[*b, i]) -> f32[*b, o]"
    with pytest.raises(TypeCheckError) as err:
        class Wrong(nn.Module):  # noqa: F841
            inner: "f32[f, d]"

            @gtdsl.jit
            def forward(self, x: "f32[b, d]") -> "f32[b, d]":
                return x @ self.inner
    (diag,) = err.value.diagnostics
    assert diag.code == "GT2006" and "inner dims" in diag.message
    assert diag.primary.span.line > 0 and diag.primary.span.file.name == __file__


def test_a_declared_call_of_a_submodule_is_checked_at_decoration() -> None:
    ns: dict = {}
    src = textwrap.dedent('''\
        import gtdsl
        from torch import nn
        from tests.fixtures.jit_modules import Linear


        class Bad(nn.Module):
            up: "Linear[f, d]"

            @gtdsl.jit
            def forward(self, x: "f32[b, d]") -> "f32[b, d]":
                return self.up(x)
        ''')
    import linecache
    import sys
    import types

    name = "<jit-methods-bad>"
    linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    module = types.ModuleType("jit_methods_bad")
    sys.modules["jit_methods_bad"] = module
    try:
        with pytest.raises(TypeCheckError) as err:
            exec(compile(src, name, "exec"), module.__dict__)  # noqa: S102 (the test's own text)
    finally:
        sys.modules.pop("jit_methods_bad", None)
        linecache.cache.pop(name, None)
    (diag,) = err.value.diagnostics
    assert diag.code == "GT2006"
    assert "f32[b, o=f]" in str(err.value) and diag.primary.span.line == 11


def test_a_field_that_breaks_its_declaration_is_named() -> None:
    m = jm.MLP(4, 8)
    m.down.bias = nn.Parameter(torch.zeros(5))
    with pytest.raises(CastError) as err:
        m(torch.randn(2, 4))
    text = str(err.value)
    assert "argument `self` of `forward`" in text
    assert "`self.down.bias`, dim 0 (`o`): expected 4, got 5" in text
    assert "test_jit_methods.py" in text  # the caller blamed is this file, not torch's


def test_a_call_whose_sizes_break_the_fields_names_them() -> None:
    m = jm.MLP(4, 8)
    with pytest.raises(CastError) as err:
        m(torch.randn(2, 5))
    assert "bound by `self.up.weight`, dim 1 (`i`)" in str(err.value) or \
        "`self.up.weight`" in str(err.value)


def test_self_read_from_the_instance_matches_torch() -> None:
    torch.manual_seed(0)
    m = jm.TinyLM(13, 8, 16, 2)
    ids = torch.randint(0, 13, (2, 5))
    assert isinstance(jm.TinyLM.forward, JitMethod)
    torch.testing.assert_close(m(ids), jm.lm_reference(m, ids))
    assert "def forward(self: TinyLM, ids: i64[b, s]) -> f32[b, s, v=?]" in \
        jm.TinyLM.forward.signature


def test_another_structure_compiles_again_and_dtypes_follow_the_instance() -> None:
    torch.manual_seed(1)
    m = jm.TinyLM(13, 8, 16, 1)
    ids = torch.randint(0, 13, (2, 5))
    m(ids)
    n = jm.TinyLM(13, 8, 16, 3)  # another number of blocks: the same structure per block
    torch.testing.assert_close(n(ids), jm.lm_reference(n, ids))
    d = jm.TinyLM(13, 8, 16, 1).double()
    with pytest.raises(TypeCheckError):  # forward declares f32: f64 fields break it
        d(ids)
    b = jm.Block(8, 16).double()
    with pytest.raises(TypeCheckError) as err:  # f64 weights for a declared f32 input
        b(torch.randn(1, 2, 8).double())
    assert "`layer_norm` weight is f64 for an input of f32" in str(err.value)


def _twin_step(model: nn.Module, twin: nn.Module, run, ref, batch, steps: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt_ref = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        opt_ref.zero_grad()
        loss = run(model, *batch)
        loss_ref = ref(twin, *batch)
        loss.backward()
        loss_ref.backward()
        torch.testing.assert_close(loss, loss_ref)
        for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
            assert p.grad is not None, name
            torch.testing.assert_close(p.grad, q.grad, msg=name)
        opt.step()
        opt_ref.step()


def test_training_the_instance_read_model_matches_torch() -> None:
    torch.manual_seed(2)
    m = jm.TinyLM(13, 8, 16, 2)
    twin = copy.deepcopy(m)
    ids = torch.randint(0, 13, (3, 6))
    targets = torch.randint(0, 13, (3, 6))

    def ref(model, ids, targets):
        logits = jm.lm_reference(model, ids)
        return F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1))

    _twin_step(m, twin, lambda model, i, t: model.loss(i, t), ref, (ids, targets), 3)


def test_training_the_declared_model_matches_torch() -> None:
    torch.manual_seed(3)
    m = jm.MLP(4, 8)
    twin = copy.deepcopy(m)
    x, y = torch.randn(5, 4), torch.randn(5, 4)
    _twin_step(m, twin, lambda model, x, y: F.mse_loss(model(x), y),
               lambda model, x, y: F.mse_loss(jm.mlp_reference(model, x), y), (x, y), 3)


def test_a_layer_gtdsl_cannot_call_is_a_located_error() -> None:
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        @gtdsl.jit
        def forward(self, x: "f32[b, c, h, w]"):
            return self.conv(x)

    with pytest.raises(TypeCheckError) as err:
        Conv()(torch.randn(1, 3, 5, 5))
    (diag,) = err.value.diagnostics
    assert diag.code == "GT1011" and "`conv` is a field of the `Conv` struct" in diag.message
    assert "F.conv2d(x, self.conv.weight, self.conv.bias)" in diag.help


def test_the_docs_example_runs(tmp_path) -> None:
    from tests.conftest import docs_python_example

    module = docs_python_example("runtime.md", "### Methods and `nn.Module`", tmp_path,
                                 "methods_example")
    assert module.mlp.up.weight.grad is not None
    assert str(module.MLP.forward.signature) == \
        "def forward(self: MLP[f, d], x: f32[b, d]) -> f32[b, d]"


def test_gradients_reach_the_fields_through_triton_kernels(monkeypatch) -> None:
    from gtdsl.lower.triton import kernels

    launched: list[str] = []
    real = kernels.GroupLauncher.__call__

    def counted(self, *values):
        launched.append(self.group.kind)
        return real(self, *values)

    monkeypatch.setattr(kernels.GroupLauncher, "__call__", counted)

    class Scale(nn.Module):
        gain: "f32[o]"
        shift: "f32[o]"

        def __init__(self, o: int) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.randn(o))
            self.shift = nn.Parameter(torch.randn(o))

        @gtdsl.jit(backend="triton")
        def forward(self, x: "f32[b, o]") -> "f32[b, o]":
            return (x * self.gain + self.shift).sigmoid() * 2.0

    m = Scale(4)
    twin = copy.deepcopy(m)
    x = torch.randn(3, 4)
    y = m(x)
    y.pow(2).sum().backward()
    ref = (x * twin.gain + twin.shift).sigmoid() * 2.0
    ref.pow(2).sum().backward()
    assert launched  # the fused kernel ran, forward and backward
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(m.gain.grad, twin.gain.grad)
    torch.testing.assert_close(m.shift.grad, twin.shift.grad)


class _Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    @gtdsl.jit
    def forward(self, x: "f32[b, d]") -> "f32[b, d]":
        return self.lin(x)


@pytest.mark.parametrize("change", ["hook", "pre_hook", "instance_forward", "weight_norm"])
def test_a_submodule_with_code_a_compiled_call_would_skip_is_refused(change: str) -> None:
    """Hooks and per-instance forwards run in plain PyTorch; a compiled call would skip
    them and give other numbers, so the call is refused (also after a first call)."""
    m = _Wrapped()
    x = torch.randn(2, 3)
    m(x)
    if change == "hook":
        m.lin.register_forward_hook(lambda mod, i, o: o * 100)
    elif change == "pre_hook":
        m.lin.register_forward_pre_hook(lambda mod, i: (i[0] * 2,))
    elif change == "instance_forward":
        m.lin.forward = lambda t: t * 0
    else:
        m.lin = torch.nn.utils.weight_norm(m.lin)
    with pytest.raises(TypeCheckError) as err:
        m(x)
    (diag,) = err.value.diagnostics
    assert diag.code == "GT1012" and "`self.lin`" in diag.message


def test_a_loop_over_modules_of_several_structures_is_refused() -> None:
    class Blk(nn.Module):
        def __init__(self, act: nn.Module) -> None:
            super().__init__()
            self.act = act

        @gtdsl.jit
        def forward(self, x: "f32[b, d]") -> "f32[b, d]":
            return self.act(x)

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([Blk(nn.ReLU()), Blk(nn.Tanh())])

        @gtdsl.jit
        def forward(self, x: "f32[b, d]") -> "f32[b, d]":
            for block in self.blocks:
                x = block(x)
            return x

    with pytest.raises(TypeCheckError) as err:
        Stack()(torch.randn(2, 3))
    # `blocks` is a tuple of two structs: a loop cannot call its elements as one
    assert err.value.diagnostics[0].code == "GT2025"


def test_sequential_and_indexed_module_lists_run_as_torch() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4))
            self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Tanh()])

        @gtdsl.jit
        def forward(self, x: "f32[b, d]") -> "f32[b, d]":
            return self.layers[1](self.layers[0](self.mlp(x))) + x

    net = Net()
    twin = copy.deepcopy(net)
    x = torch.randn(3, 4)
    _twin_step(net, twin, lambda m, x: m(x).pow(2).mean(),
               lambda m, x: (m.layers[1](m.layers[0](m.mlp(x))) + x).pow(2).mean(), (x,), 2)
