"""The ops added for everyday PyTorch code run on every backend with torch's values (their
type relations are tested against torch in tests/properties/test_ops_vs_torch.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gtdsl

X = torch.tensor([[1.5, -2.25, float("nan")], [float("inf"), 0.5, -0.75]])
Y = torch.tensor([[3.0, 1.0, 2.0], [-1.0, 5.0, 4.0]])
I = torch.tensor([2, 0, 1])
W = torch.tensor([0.25])

def _run_cases(cases: list, params: str, args: tuple, backend: str) -> None:
    """Each (gtdsl body, torch reference) as a function of ``params``, called with
    ``args`` on ``backend``: the same dtype and values (NaN where torch has NaN)."""
    src = "".join(f"def case{k}({params}):\n    return {body}\n\n"
                  for k, (body, _) in enumerate(cases))
    m = gtdsl.load_source(src, backend=backend)
    for k, (body, ref) in enumerate(cases):
        got = getattr(m, f"case{k}")(*args)
        want = ref()
        assert got.dtype == want.dtype, body
        torch.testing.assert_close(got, want, equal_nan=True, msg=body)


# (gtdsl body over x: f32[2, 3], y: f32[2, 3], i: i64[3], w: f32[1]; the same in torch)
CASES = [
    ("floor(y * 0.5)", lambda: torch.floor(Y * 0.5)),
    ("ceil(y * 0.5)", lambda: torch.ceil(Y * 0.5)),
    ("round(y * 0.37, decimals=1)", lambda: torch.round(Y * 0.37, decimals=1)),
    ("trunc(y * -0.5)", lambda: torch.trunc(Y * -0.5)),
    ("frac(y * 0.3)", lambda: torch.frac(Y * 0.3)),
    ("nan_to_num(x, nan=0.0, posinf=9.0)", lambda: torch.nan_to_num(X, 0.0, 9.0)),
    ("isinf(x)", lambda: torch.isinf(X)),
    ("isfinite(x)", lambda: torch.isfinite(X)),
    ("leaky_relu(y, 0.1)", lambda: F.leaky_relu(Y, 0.1)),
    ("elu(y, alpha=0.5)", lambda: F.elu(Y, alpha=0.5)),
    ("selu(y)", lambda: F.selu(Y)),
    ("celu(y)", lambda: F.celu(Y)),
    ("mish(y)", lambda: F.mish(Y)),
    ("hardswish(y)", lambda: F.hardswish(Y)),
    ("hardsigmoid(y)", lambda: F.hardsigmoid(Y)),
    ("logsigmoid(y)", lambda: F.logsigmoid(Y)),
    ("softsign(y)", lambda: F.softsign(Y)),
    ("prelu(y, w)", lambda: F.prelu(Y, W)),
    ("y.cumsum(1)", lambda: Y.cumsum(1)),
    ("i.cumsum(0)", lambda: I.cumsum(0)),
    ("y.cumprod(0)", lambda: Y.cumprod(0)),
    ("logcumsumexp(y, 1)", lambda: torch.logcumsumexp(Y, 1)),
    ("y.cummax(1)[0]", lambda: Y.cummax(1)[0]),
    ("y.cummin(0)[1]", lambda: Y.cummin(0)[1]),
    ("y.sort(descending=True)[0]", lambda: Y.sort(descending=True)[0]),
    ("y.sort(dim=0)[1]", lambda: Y.sort(dim=0)[1]),
    ("y.argsort(dim=1)", lambda: Y.argsort(dim=1)),
    ("y.topk(2)[0]", lambda: Y.topk(2)[0]),
    ("y.topk(1, dim=0, largest=False)[1]", lambda: Y.topk(1, dim=0, largest=False)[1]),
    ("y.kthvalue(2, dim=1)[0]", lambda: Y.kthvalue(2, dim=1)[0]),
    ("y.flip((0, 1))", lambda: Y.flip((0, 1))),
    ("y.flip(0)", lambda: Y.flip(0)),
    ("y.flip(1, 0)", lambda: Y.flip(1, 0)),
    ("y.roll(1, 1)", lambda: Y.roll(1, 1)),
    ("y.roll((1, -1), (0, 1))", lambda: Y.roll((1, -1), (0, 1))),
    ("y.roll(2)", lambda: Y.roll(2)),
    ("y.repeat(2, 1)", lambda: Y.repeat(2, 1)),
    ("y.repeat((1, 2, 3))", lambda: Y.repeat((1, 2, 3))),
    ("y.tile((2,))", lambda: Y.tile((2,))),
    ("y.repeat_interleave(2, dim=0)", lambda: Y.repeat_interleave(2, dim=0)),
    ("y.repeat_interleave(2)", lambda: Y.repeat_interleave(2)),
    ("y.repeat_interleave(i, dim=1)", lambda: Y.repeat_interleave(I, dim=1)),
    ("one_hot(i, 4)", lambda: F.one_hot(I, 4)),
    ("one_hot(i)", lambda: F.one_hot(I)),
]


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_each_op_runs_with_torch_values(backend: str) -> None:
    _run_cases(CASES, "x: f32[2, 3], y: f32[2, 3], i: i64[3], w: f32[1]", (X, Y, I, W),
               backend)


def test_through_torch_namespaces_in_a_jitted_function() -> None:
    from tests.fixtures.jit_functions import everyday_ops

    x = torch.randn(4, 6)
    labels = torch.tensor([1, 0, 3, 2])
    values, idx = everyday_ops(x, labels)
    ref = torch.topk(F.leaky_relu(x, 0.2).cumsum(-1) + F.one_hot(labels, 6).float(), 2)
    torch.testing.assert_close(values, ref.values)
    assert torch.equal(idx, ref.indices)


IMG = torch.randn(2, 3, 7, 6)
KER = torch.randn(4, 3, 3, 2)
BIAS = torch.randn(4)
SEQ = torch.randn(2, 3, 9)
KER1 = torch.randn(6, 1, 3)
TKER = torch.randn(3, 2, 3, 3)

CONV_CASES = [
    ("conv2d(img, ker, bias, stride=2, padding=1)",
     lambda: F.conv2d(IMG, KER, BIAS, stride=2, padding=1)),
    ("conv2d(img, ker, padding='same', dilation=(2, 1))",
     lambda: F.conv2d(IMG, KER, padding="same", dilation=(2, 1))),
    ("conv1d(seq, ker1, groups=3, stride=2)", lambda: F.conv1d(SEQ, KER1, groups=3, stride=2)),
    ("conv_transpose2d(img, tker, stride=2, padding=1, output_padding=1)",
     lambda: F.conv_transpose2d(IMG, TKER, stride=2, padding=1, output_padding=1)),
    ("max_pool2d(img, 2)", lambda: F.max_pool2d(IMG, 2)),
    ("max_pool2d(img, 3, stride=2, padding=1, ceil_mode=True)",
     lambda: F.max_pool2d(IMG, 3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool1d(seq, 2, dilation=2)", lambda: F.max_pool1d(SEQ, 2, dilation=2)),
    ("avg_pool2d(img, (2, 3), count_include_pad=False, padding=1)",
     lambda: F.avg_pool2d(IMG, (2, 3), count_include_pad=False, padding=1)),
    ("avg_pool1d(seq, 4)", lambda: F.avg_pool1d(SEQ, 4)),
    ("adaptive_avg_pool2d(img, (2, None))", lambda: F.adaptive_avg_pool2d(IMG, (2, None))),
    ("adaptive_avg_pool1d(seq, 4)", lambda: F.adaptive_avg_pool1d(SEQ, 4)),
    ("adaptive_max_pool2d(img, 3)", lambda: F.adaptive_max_pool2d(IMG, 3)),
    ("adaptive_max_pool1d(seq, 2, return_indices=True)[1]",
     lambda: F.adaptive_max_pool1d(SEQ, 2, return_indices=True)[1]),
]


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_convolution_and_pooling_run_with_torch_values(backend: str) -> None:
    _run_cases(CONV_CASES, "img: f32[2, 3, 7, 6], ker: f32[4, 3, 3, 2], bias: f32[4], "
               "seq: f32[2, 3, 9], ker1: f32[6, 1, 3], tker: f32[3, 2, 3, 3]",
               (IMG, KER, BIAS, SEQ, KER1, TKER), backend)


def test_output_sizes_are_expressions_of_the_input_sizes() -> None:
    from gtdsl.driver import check_file

    src = ("def f(x: f32[n, c, h, w], k: f32[o, c, 3, 3]):\n"
           "    return conv2d(x, k, stride=2, padding=1)\n")
    (sig,) = [s for _, s in check_file(src, ir=False).result.signatures]
    assert sig.endswith("-> f32[n, o, (h - 1) // 2 + 1, (w - 1) // 2 + 1]"), sig
    bad = ("def f(x: f32[n, c, h, w], k: f32[o, d, 3, 3]):\n"
           "    return conv2d(x, k)\n")
    (d,) = gtdsl.check(bad)
    assert d.code == "GT2006" and "channels" in d.message


GAMMA, BETA = torch.randn(3), torch.randn(3)
MEAN, VAR = torch.randn(3), torch.rand(3) + 0.5

NORM_CASES = [
    ("group_norm(img, 3, gamma, beta)", lambda: F.group_norm(IMG, 3, GAMMA, BETA)),
    ("group_norm(seq, 1)", lambda: F.group_norm(SEQ, 1)),
    ("batch_norm(img, mean, var, gamma, beta)", lambda: F.batch_norm(IMG, MEAN, VAR, GAMMA,
                                                                     BETA)),
    ("batch_norm(seq, None, None, training=True)",
     lambda: F.batch_norm(SEQ, None, None, training=True)),
    ("instance_norm(img, weight=gamma, bias=beta)",
     lambda: F.instance_norm(IMG, weight=GAMMA, bias=BETA)),
    ("interpolate(img, scale_factor=2)", lambda: F.interpolate(IMG, scale_factor=2)),
    ("interpolate(img, size=(5, 4), mode='bilinear', align_corners=True)",
     lambda: F.interpolate(IMG, size=(5, 4), mode="bilinear", align_corners=True)),
    ("interpolate(seq, scale_factor=1.5, mode='linear')",
     lambda: F.interpolate(SEQ, scale_factor=1.5, mode="linear")),
    ("interpolate(img, size=3, mode='area')", lambda: F.interpolate(IMG, size=3, mode="area")),
]


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_norms_and_interpolation_run_with_torch_values(backend: str) -> None:
    _run_cases(NORM_CASES, "img: f32[2, 3, 7, 6], seq: f32[2, 3, 9], gamma: f32[3], "
               "beta: f32[3], mean: f32[3], var: f32[3]", (IMG, SEQ, GAMMA, BETA, MEAN, VAR),
               backend)


BASE = torch.zeros(3, 4)
IDX = torch.tensor([[0, 1, 2, 0], [2, 0, 1, 1]])
SRC = torch.arange(8.0).reshape(2, 4)
ROWS = torch.tensor([2, 0])

SCATTER_CASES = [
    ("scatter(base, 0, idx, src)", lambda: torch.scatter(BASE, 0, IDX, SRC)),
    ("base.scatter(0, idx, 1.5)", lambda: BASE.scatter(0, IDX, 1.5)),
    ("scatter_add(base, 0, idx, src)", lambda: torch.scatter_add(BASE, 0, IDX, SRC)),
    ("scatter_reduce(base, 0, idx, src, 'amax', include_self=False)",
     lambda: torch.scatter_reduce(BASE, 0, IDX, SRC, "amax", include_self=False)),
    ("index_add(base, 0, rows, src, alpha=2)", lambda: torch.index_add(BASE, 0, ROWS, SRC,
                                                                       alpha=2)),
    ("index_copy(base, 0, rows, src)", lambda: torch.index_copy(BASE, 0, ROWS, SRC)),
    ("index_put(base, (rows, rows), src[0, :2], accumulate=True)",
     lambda: torch.index_put(BASE, (ROWS, ROWS), SRC[0, :2], accumulate=True)),
    ("pad(src, (1, 2))", lambda: F.pad(SRC, (1, 2))),
    ("pad(src, (1, -1, 0, 1), value=3.0)", lambda: F.pad(SRC, (1, -1, 0, 1), value=3.0)),
    ("pad(src.unsqueeze(0), (2, 1), mode='reflect')",
     lambda: F.pad(SRC.unsqueeze(0), (2, 1), mode="reflect")),
    ("pad(src.unsqueeze(0), (1, 1), mode='replicate')",
     lambda: F.pad(SRC.unsqueeze(0), (1, 1), mode="replicate")),
    ("pad(src.unsqueeze(0), (3, 1), mode='circular')",
     lambda: F.pad(SRC.unsqueeze(0), (3, 1), mode="circular")),
]


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_scatters_and_pads_run_with_torch_values(backend: str) -> None:
    _run_cases(SCATTER_CASES, "base: f32[3, 4], idx: i64[2, 4], src: f32[2, 4], rows: i64[2]",
               (BASE, IDX, SRC, ROWS), backend)
