"""The shared blocks: each against torch, and each model built from them (attention,
embeddings, norms and the MLP come from blocks.gt in all four)."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

import gtdsl
from gtdsl.models.gpt2 import HERE

BLOCKS = HERE / "blocks.gt"


def test_blocks_check_statically() -> None:
    assert gtdsl.check(BLOCKS) == []


@pytest.mark.parametrize("model,needs", [
    ("bert.gt", {"split_heads", "attend_keys", "lookup", "norm", "activation", "dense"}),
    ("gpt2.gt", {"merge_heads", "embed", "norm", "activation", "conv1d"}),
    ("t5.gt", {"split_heads", "grow", "attend_unscaled", "lookup", "rms", "activation"}),
])
def test_models_use_the_shared_blocks(model: str, needs: set[str]) -> None:
    text = (HERE / model).read_text()
    names = re.search(r"^from blocks import (\([^)]*\)|.*)$", text, re.M).group(1)
    imported = {n.strip() for n in names.strip("()").split(",")}
    assert needs <= imported
    body = text.split("from blocks import", 1)[1]
    loader = (HERE / model.replace(".gt", ".py")).read_text()
    for name in needs:  # called in the model, or by its loader through the module
        assert re.search(rf"\b{name}\(", body) or f"module.{name}(" in loader, name


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_blocks_equal_torch(backend: str) -> None:
    m = gtdsl.load(BLOCKS, backend=backend)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 12, generator=g)
    heads = m.split_heads(x, H=3, K=4)
    assert torch.equal(heads, x.view(2, 5, 3, 4).transpose(1, 2))
    assert torch.equal(m.merge_heads(heads), x)
    past = torch.randn(2, 3, 7, 4, generator=g)
    assert torch.equal(m.grow(past, heads), torch.cat([past, heads], 2))
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    bias = torch.randn(2, 3, 5, 5, generator=g)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(m.attend(q, k, v, bias), want.transpose(1, 2).reshape(2, 5, 12))
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
    torch.testing.assert_close(m.attend_unscaled(q, k, v, bias),
                               want.transpose(1, 2).reshape(2, 5, 12))
    # a mask of the attended keys: as an additive bias of -10000 on the others
    keep = torch.rand(2, 1, 1, 5, generator=g) > 0.4
    keep[:, :, :, 0] = True
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=(~keep).float() * -10000.0)
    torch.testing.assert_close(m.attend_keys(q, k, v, keep),
                               want.transpose(1, 2).reshape(2, 5, 12))
    dense = m.Dense(weight=torch.randn(7, 12, generator=g), bias=torch.randn(7, generator=g))
    torch.testing.assert_close(m.dense(dense, x), x @ dense.weight.T + dense.bias)
    conv = m.Conv1D(weight=torch.randn(12, 7, generator=g), bias=torch.randn(7, generator=g))
    torch.testing.assert_close(m.conv1d(conv, x), x @ conv.weight + conv.bias)
    w = torch.rand(12, generator=g)
    norm = m.RMSNorm(weight=w)
    torch.testing.assert_close(m.rms(norm, x, 1e-6),
                               x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w)
    table, ids = torch.randn(9, 12, generator=g), torch.randint(0, 9, (2, 5), generator=g)
    assert torch.equal(m.lookup(table, ids), F.embedding(ids, table))
    up, down = torch.randn(20, 12, generator=g), torch.randn(12, 20, generator=g)
    torch.testing.assert_close(m.relu_mlp(up, down, x), torch.relu(x @ up.T) @ down.T)
