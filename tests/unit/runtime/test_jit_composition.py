"""``@gtdsl.jit`` functions resolve the names their bodies use through their Python module, as
Python does (closure, globals, builtins), when they are decorated: other jitted functions
(calls checked against their signatures; a function defined further down is checked at the
first call), the allowlisted torch, ``torch.nn.functional`` and ``math`` names (the op of
the same name where there is one: ``F.gelu`` is ``gelu``, typed), numbers, ``float("-inf")``;
anything else is a located error. Results and gradients against torch itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gtdsl
from gtdsl.driver import DeferredJit
from gtdsl.runtime.errors import TypeCheckError

EPS = 1e-5
SCALE = 2
CAUSAL = True
NAME = "not a number"


def plain_python(x):  # not jitted: a jitted body cannot call it
    return x


@gtdsl.jit
def rms(x: "f32[b, d]") -> "f32[b, d]":
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + EPS)


@gtdsl.jit
def mlp(x: "f32[b, d]", w: "f32[d, e]") -> "f32[b, e]":
    return F.gelu(rms(x) @ w) * SCALE


@gtdsl.jit
def uses_later(x: "f32[b, e]") -> "f32[b, e]":
    return defined_later(x).masked_fill(x < 0, float("-inf"))


@gtdsl.jit
def defined_later(x: "f32[b, e]") -> "f32[b, e]":
    return F.softmax(x, -1) if CAUSAL else x


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + EPS)


def _errors(excinfo: pytest.ExceptionInfo) -> list:
    return [d for d in excinfo.value.diagnostics if d.is_error]


def test_a_jitted_function_calls_another_with_its_globals() -> None:
    x, w = torch.randn(3, 4), torch.randn(4, 5)
    torch.testing.assert_close(mlp(x, w), F.gelu(_rms(x) @ w) * SCALE)


def test_gradients_flow_through_the_composed_call() -> None:
    x, w = torch.randn(3, 4, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    mlp(x, w).sum().backward()
    gx, gw = x.grad, w.grad
    x2, w2 = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    (F.gelu(_rms(x2) @ w2) * SCALE).sum().backward()
    torch.testing.assert_close(gx, x2.grad)
    torch.testing.assert_close(gw, w2.grad)


def test_a_function_defined_further_down_is_checked_at_the_first_call() -> None:
    assert isinstance(uses_later, DeferredJit)
    x = torch.randn(2, 6)
    expected = F.softmax(x, -1).masked_fill(x < 0, float("-inf"))
    torch.testing.assert_close(uses_later(x), expected)
    assert uses_later.compiled() is uses_later.compiled()  # compiled once
    assert uses_later.signature == uses_later.compiled().signature
    assert uses_later.cache_info().compiles >= 1


def test_a_call_checks_the_callees_signature_at_decoration() -> None:
    with pytest.raises(TypeCheckError) as excinfo:
        @gtdsl.jit
        def wrong_rank(x: "f32[n]") -> "f32[n]":
            return rms(x)
    (d,) = _errors(excinfo)
    assert d.code == "GT2005" and "in a call to `rms`" in d.message
    assert d.primary.span.file.name == __file__  # located in this file


def test_torch_functions_are_ops_with_their_types() -> None:
    with pytest.raises(TypeCheckError) as excinfo:
        @gtdsl.jit
        def wrong_return(x: "f32[n, d]") -> "f32[n]":
            return F.gelu(x)
    (d,) = _errors(excinfo)
    assert d.code == "GT2005" and "f32[n, d]" in str(d)


def test_numbers_and_special_floats() -> None:
    @gtdsl.jit
    def consts(x: "f32[n]") -> "f32[n]":
        return (x + EPS).clamp(min=-math.inf, max=math.pi) * SCALE + float("inf") * 0.0

    x = torch.randn(5)
    torch.testing.assert_close(consts(x), (x + EPS).clamp(min=-math.inf, max=math.pi) * SCALE
                               + float("inf") * 0.0, equal_nan=True)


def test_a_closure_constant_is_read() -> None:
    def make(k: float):
        @gtdsl.jit
        def scaled(x: "f32[n]") -> "f32[n]":
            return x * k
        return scaled

    x = torch.randn(4)
    torch.testing.assert_close(make(3.0)(x), x * 3.0)


@pytest.mark.parametrize("which", ["function", "module", "string"])
def test_anything_else_is_a_located_error(which: str) -> None:
    with pytest.raises(TypeCheckError) as excinfo:
        if which == "function":
            @gtdsl.jit
            def f1(x: "f32[n]") -> "f32[n]":
                return plain_python(x)
        elif which == "module":
            @gtdsl.jit
            def f2(x: "f32[n]") -> "f32[n]":
                return x * np.pi
        else:
            @gtdsl.jit
            def f3(x: "f32[n]") -> "f32[n]":
                return x.sum(dim=NAME)
    (d,) = _errors(excinfo)
    shown = {"function": "plain_python", "module": "np", "string": "NAME"}[which]
    assert d.code == "GT1012" and f"`{shown}`" in d.message
    assert d.primary.span.file.name == __file__
    assert "@gtdsl.jit" in (d.help or "")


def test_a_cycle_of_jitted_calls_is_reported_not_looped() -> None:
    with pytest.raises(TypeCheckError) as excinfo:
        ping(torch.randn(3))
    assert any(d.code == "GT2020" for d in _errors(excinfo))


@gtdsl.jit
def ping(x: "f32[n]") -> "f32[n]":
    return pong(x)


@gtdsl.jit
def pong(x: "f32[n]") -> "f32[n]":
    return ping(x)


def test_an_undefined_function_is_an_error_at_the_first_call() -> None:
    @gtdsl.jit
    def calls_nothing(x: "f32[n]") -> "f32[n]":
        return never_defined(x)  # noqa: F821

    assert isinstance(calls_nothing, DeferredJit)
    with pytest.raises(TypeCheckError) as excinfo:
        calls_nothing(torch.randn(2))
    assert [d.code for d in _errors(excinfo)] == ["GT1001"]


def test_f_softmax_binds_positional_arguments_by_its_python_parameters() -> None:
    @gtdsl.jit
    def sm(x: "f32[a, b]") -> "f32[a, b]":
        return F.softmax(x, 0) + F.relu(x) + F.log_softmax(x, dim=1)

    x = torch.randn(3, 4)
    torch.testing.assert_close(sm(x), F.softmax(x, 0) + F.relu(x) + F.log_softmax(x, dim=1))


def test_the_documented_example_runs(tmp_path) -> None:
    import importlib.util
    import re

    from tests.conftest import REPO

    from tests.conftest import docs_python_example

    module = docs_python_example("runtime.md", "### What a jitted function's body can name",
                                 tmp_path, "jit_example")
    assert module.y.shape == (3, 5)
    assert isinstance(module.block, DeferredJit)  # it calls `masked`, defined below it


def test_allow_python_names_reach_the_body_through_the_module() -> None:
    import operator

    @gtdsl.jit(allow_python=("operator.neg",))
    def negated(x: "f32[n]") -> "f32[n]":
        return x * 0.0 + operator.neg(x)

    x = torch.randn(3)
    torch.testing.assert_close(negated(x), -x)
    with pytest.raises(TypeCheckError) as excinfo:
        @gtdsl.jit
        def not_allowed(x: "f32[n]") -> "f32[n]":
            return operator.neg(x)
    assert [d.code for d in _errors(excinfo)] == ["GT1012"]


d = 64  # a module global named like a size variable
helper_value = "a string"


def test_names_the_body_binds_are_not_looked_up_in_the_module() -> None:
    @gtdsl.jit
    def shadows(x: "f32[n, d]", helper_value: "f32[n, d]") -> "f32[n, d]":
        plain_python = x * 2.0  # a local: the module's function of that name is not used
        for NAME in range(2):
            plain_python = plain_python + helper_value
        return plain_python * d  # `d` is the size bound by `x`, not the module's 64

    x, y = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(shadows(x, y), (x * 2.0 + y + y) * 3)
