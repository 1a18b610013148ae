"""Each kind of bad operand or argument has its own code: a value of the wrong kind (GT2016), a
name that is no value (GT2024), a call of something not callable (GT2025), an invalid size,
count or step (GT2026), an argument value the op does not take (GT2027), an index out of range
(GT2010), arguments that exclude each other (GT2013)."""

from __future__ import annotations

import pytest

from gtdsl.driver import check_file

SIG = "def f(x: f32[n, d], i: i64[n], k: int) -> Tensor:\n    s = \"a\"\n"

CASES = [
    # GT2016: an operand of the wrong kind
    ("tensor_expected", "    return exp(k)\n", "GT2016"),
    ("int_expected", "    return x.sum(dim=1.5)\n", "GT2016"),
    ("bool_for_int", "    return x.unsqueeze(True)\n", "GT2016"),
    ("one_dim_not_a_tuple", "    return x.argmax(dim=(0, 1))\n", "GT2016"),
    ("prod_one_dim", "    return x.prod(dim=(0, 1))\n", "GT2016"),
    ("normalized_shape_tuple", "    return layer_norm(x, d)\n", "GT2016"),
    ("logical_and_number", "    return logical_and(x > 0.0, 1)\n", "GT2016"),
    ("arith_on_string", "    return x + s\n", "GT2016"),
    ("to_string", "    return x.to(s)\n", "GT2016"),
    ("dtype_string", "    return zeros(3, dtype=s)\n", "GT2016"),
    ("device_int", "    return zeros(3, device=1)\n", "GT2016"),
    ("index_with_string", "    return x[s]\n", "GT2016"),
    ("rename_non_label", "    return x.rename(1, 2)\n", "GT2016"),
    ("unary_on_string", "    y = -s\n    return x\n", "GT2016"),
    ("range_of_float", "    for j in range(1.5):\n        x = x + 1.0\n    return x\n", "GT2016"),
    ("loop_over_tensor", "    y = x[0]\n    for r in x:\n        y = y + r\n    return y\n",
     "GT2016"),
    ("unpack_tensor", "    a, b = x\n    return a\n", "GT2016"),
    # GT2024: not a value
    ("function_as_value", "    return x * sigmoid\n", "GT2024"),
    ("user_function_as_value", "    g = f\n    return x\n", "GT2024"),
    # GT2025: not callable
    ("call_a_tensor", "    return (x + 1.0)(2)\n", "GT2025"),
    ("call_a_number", "    return k(x)\n", "GT2025"),
    # GT2026: an invalid size, count or step
    ("negative_size", "    return zeros((n, -4))\n", "GT2026"),
    ("view_size_below_minus_one", "    return x.view(n, -2)\n", "GT2026"),
    ("expand_size_below_minus_one", "    return x.expand(-3, d)\n", "GT2026"),
    ("unflatten_no_sizes", "    return x.unflatten(1, ())\n", "GT2026"),
    ("negative_split", "    return x.split(-1)\n", "GT2026"),
    ("negative_section", "    return x.split((2, -1), 1)\n", "GT2026"),
    ("zero_chunks", "    return x.chunk(0, dim=1)\n", "GT2026"),
    ("negative_narrow", "    return x.narrow(1, 0, -1)\n", "GT2026"),
    ("arange_zero_step", "    return arange(0, 10, 0)\n", "GT2026"),
    ("arange_backwards", "    return arange(10, 0)\n", "GT2026"),
    ("arange_float_wrong_way", "    return arange(0.0, 1.0, -0.5)\n", "GT2026"),
    ("negative_slice_step", "    return x[::-1]\n", "GT2026"),
    # GT2027: an argument value the op does not take
    ("gelu_approximate", "    return gelu(x, approximate=\"fast\")\n", "GT2027"),
    ("dropout_p", "    return dropout(x, 1.5)\n", "GT2027"),
    ("loss_reduction", "    return mse_loss(x, x, reduction=\"avg\")\n", "GT2027"),
    ("int_negative_power", "    return i ** -2\n", "GT2027"),
    ("einsum_term", "    return einsum(\"i1,jk\", x, x)\n", "GT2027"),
    ("einsum_output", "    return einsum(\"ij->k\", x)\n", "GT2027"),
    ("two_ellipses", "    return x[..., 0, ...]\n", "GT2027"),
    # moved to the codes that already said it
    ("padding_idx_out_of_range", "    return embedding(i, zeros((10, 4)), padding_idx=10)\n",
     "GT2010"),
    ("mask_and_causal", "    return scaled_dot_product_attention(x, x, x, attn_mask=x > 0.0, "
     "is_causal=True)\n", "GT2013"),
]


@pytest.mark.parametrize(("body", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_has_its_own_code(body: str, code: str) -> None:
    diags = check_file(SIG + body, "t.gt").diagnostics
    assert [d.code for d in diags] == [code], [(d.code, d.message) for d in diags]


def test_cases_have_distinct_names() -> None:
    assert len({c[0] for c in CASES}) == len(CASES)
