"""What a user reads when a call of a jitted function goes wrong: Python's own messages for a
wrong call (never a generated name), every binding with the argument that bound it, rows as
Python tuples, `int` parameters shown as declared; numpy scalars and 0-dim tensors are taken
for `int`/`float`/`bool` parameters as the numbers they hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gtdsl
from gtdsl.runtime.errors import CastError
from tests.fixtures import jit_modules as jm

SRC = '''
def f(x: f32[n], eps: float = 1e-5, k: int = 2) -> f32[n]:
    return x * eps * k

def g(x: f32[*b, d], y: f32[*b, d]) -> f32[*b, d]:
    return x + y

def h(x: f32[n], flag: bool = True, dim: int = -1) -> f32:
    return x.sum(dim=dim) * 2.0 if flag else x.sum(dim=dim)
'''


@pytest.fixture(scope="module")
def m():
    return gtdsl.load_source(SRC, backend="torch")


def _python_error(fn, *args, **kwargs) -> str:
    with pytest.raises(TypeError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def f(x, eps=1e-5, k=2):  # f's parameters: Python's messages for it are the oracle
    return x


class MLP:  # jit_modules.MLP's forward, as Python
    def forward(self, x):
        return x


def test_wrong_calls_read_as_python_reads_them(m) -> None:
    x = torch.zeros(3)
    for args, kwargs in [((), {}), ((x, 1.0, 2, 3), {}), ((x,), {"foo": 1}),
                         ((x, 1.0), {"eps": 2.0})]:
        assert _python_error(m.f, *args, **kwargs) == _python_error(f, *args, **kwargs)


def test_methods_read_as_python_methods() -> None:
    mlp = jm.MLP(4, 8)
    assert _python_error(mlp.forward) == _python_error(MLP().forward)
    assert _python_error(mlp.forward, torch.zeros(2, 4), torch.zeros(1)) == \
        _python_error(MLP().forward, torch.zeros(2, 4), torch.zeros(1))


def test_no_message_names_generated_code(m) -> None:
    cases = [lambda: m.f(), lambda: m.f(torch.zeros(3), "a"), lambda: m.g(torch.zeros(4, 3),
             torch.zeros(5, 3)), lambda: m.h(torch.zeros(3), dim="x"),
             lambda: m.f(torch.zeros(3, 2)), lambda: m.g(x=torch.zeros(2)),
             lambda: jm.MLP(4, 8)(torch.zeros(2, 5)), lambda: jm.MLP(4, 8).forward()]
    for case in cases:
        with pytest.raises(Exception) as err:
            case()
        assert "__gt" not in str(err.value), str(err.value)
        assert "__gt" not in repr(err.value.args)


def test_bindings_name_their_argument_and_rows_are_tuples(m) -> None:
    with pytest.raises(CastError) as err:
        m.g(torch.zeros(4, 3), torch.zeros(5, 3))
    text = str(err.value)
    assert "bindings: d=3 (x dim 1 (`d`)), *b=(4,) (x dims 0..0)" in text
    src = "def two(x: f32[n], y: f32[m, n]) -> f32[m, n]:\n    return x + y\n"
    two = gtdsl.load_source(src, backend="torch").two
    with pytest.raises(CastError) as err:
        two(torch.zeros(3), torch.zeros(2, 4))
    assert "m=2 (y dim 0 (`m`))" in str(err.value)  # bound by the failing argument


def test_an_int_parameter_is_shown_as_declared(m) -> None:
    with pytest.raises(CastError) as err:
        m.h(torch.zeros(3), True, "x")
    assert "declared here: int\n" in str(err.value)
    assert "int[" not in str(err.value)


def test_numpy_scalars_and_0dim_tensors_are_numbers(m) -> None:
    x = torch.arange(3.0)
    for eps, k in [(np.float32(0.5), np.int64(3)), (np.float64(0.5), np.int32(3)),
                   (torch.tensor(0.5), torch.tensor(3)), (np.int16(1), torch.tensor(3)),
                   (torch.tensor(0.5, dtype=torch.float64), np.uint8(3))]:
        out = m.f(x, eps, k)
        torch.testing.assert_close(out, x * float(eps) * int(k))
    torch.testing.assert_close(m.h(x, np.bool_(False)), x.sum())
    torch.testing.assert_close(m.h(x, torch.tensor(True)), x.sum() * 2)


@pytest.mark.parametrize(("eps", "k", "why"), [
    (torch.tensor(0.5, requires_grad=True), 2, "gradient would be lost"),
    (0.5, torch.tensor(2.0), "expected int, got f32[]"),
    (0.5, np.float32(2.0), "expected int"),
    (torch.zeros(2), 2, "expected float"),
    (0.5, torch.tensor(True), "expected int"),
    (np.bool_(True), 2, "expected float"),
])
def test_what_is_no_number_of_the_kind_is_refused(m, eps, k, why) -> None:
    with pytest.raises(CastError) as err:
        m.f(torch.zeros(3), eps, k)
    assert why in str(err.value)
