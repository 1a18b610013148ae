"""``gtdsl.export`` of the models' entry points: ``bert.hidden_states``, ``gpt2.logits`` and
``t5.logits`` as torch.export programs whose batch and sequence dims are dynamic (named after
the gtdsl types' variables), equal to the models at three other sizes, with the models' input
checks kept in the program (token ids in the vocabulary, a mask of 0s and 1s, at most the
position table's tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.exporting import describe, dynamic_shapes
from tests.unit.models.hf import save_folder


def _names(spec: dict) -> dict:
    return {i: d.__name__ for i, d in spec.items()}


def _ids(b: int, s: int, vocab: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, vocab, (b, s), generator=g)


def test_bert_hidden_states(tmp_path: Path) -> None:
    from gtdsl.models.bert import Bert

    bert = Bert("all-MiniLM-L6-v2")
    g = torch.Generator().manual_seed(0)
    ids = _ids(2, 7, 1000, g)
    shapes = dynamic_shapes(bert.hidden_states, (ids,))
    assert _names(shapes[0]) == {0: "b", 1: "s"}  # encode(..., ids: i64[b, s], ...)
    ep = gtdsl.export(bert.hidden_states, ids)
    assert any(line.startswith("input ids: i64[b, s]") for line in describe(ep, ["ids"]))
    for b, s in ((3, 11), (1, 5), (4, 33)):
        x = _ids(b, s, 1000, g)
        torch.testing.assert_close(ep.module()(x), bert.hidden_states(x), rtol=0, atol=1e-5)
    # types and a padding mask too: the mask reaches no gtdsl parameter as it is (the method
    # turns it into `keep`), so torch relates its dims to the ids' itself
    mask = torch.ones(2, 7)
    ep = gtdsl.export(bert.hidden_states, ids, torch.zeros_like(ids), mask)
    x = _ids(3, 9, 1000, g)
    m = (torch.arange(9) < torch.tensor([[9], [4], [6]])).float()
    torch.testing.assert_close(ep.module()(x, torch.zeros_like(x), m),
                               bert.hidden_states(x, None, m), rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="Guard failed"):  # types shaped unlike the ids
        ep.module()(x, torch.zeros(3, 8, dtype=torch.int64), m)


def _gpt2(tmp_path: Path) -> object:
    from transformers import GPT2Config, GPT2LMHeadModel

    from gtdsl.models.gpt2 import GPT2

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_positions=24, n_embd=16, n_layer=2, n_head=2,
                     bos_token_id=0, eos_token_id=0)
    return GPT2(save_folder(GPT2LMHeadModel(cfg).eval(), tmp_path / "gpt2"))


def test_gpt2_logits_keep_the_models_checks(tmp_path: Path) -> None:
    gpt2 = _gpt2(tmp_path)
    g = torch.Generator().manual_seed(1)
    ids = _ids(2, 6, 50, g)
    ep = gtdsl.export(gpt2.logits, ids)
    lines = describe(ep, ["ids"])
    assert "input ids: i64[b, s]" in lines
    assert [line for line in lines if line.startswith("s:")][0].endswith(".. 24")  # positions
    for b, s in ((3, 9), (1, 4), (2, 24)):
        x = _ids(b, s, 50, g)
        torch.testing.assert_close(ep.module()(x), gpt2.logits(x), rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="Guard failed"):  # more tokens than positions
        ep.module()(_ids(2, 25, 50, g))
    with pytest.raises(RuntimeError, match="values must lie in"):  # a token id past 50
        ep.module()(torch.tensor([[1, 2, 50]]))
    # with a padding mask: positions count the real tokens, as the model does
    mask = torch.ones(2, 6, dtype=torch.int64)
    ep = gtdsl.export(gpt2.logits, ids, mask)
    x = _ids(3, 7, 50, g)
    m = (torch.arange(7) >= torch.tensor([[0], [3], [5]])).long()  # left padding
    torch.testing.assert_close(ep.module()(x, m), gpt2.logits(x, m), rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match="0 \\(padding\\) or 1"):
        ep.module()(x, m * 2)


def test_t5_logits(tmp_path: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    from gtdsl.models.t5 import T5

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=40, d_model=16, d_kv=4, num_heads=4, d_ff=32, num_layers=2,
                   decoder_start_token_id=0)
    t5 = T5(save_folder(T5ForConditionalGeneration(cfg).eval(), tmp_path / "t5"))
    g = torch.Generator().manual_seed(2)
    ids, dec = _ids(2, 7, 40, g), _ids(2, 3, 40, g)
    shapes = dynamic_shapes(t5.logits, (ids, dec))
    assert [_names(s) for s in shapes] == [{0: "b", 1: "s"}, {0: "b", 1: "t"}]
    ep = gtdsl.export(t5.logits, ids, dec)
    for b, s, t in ((3, 11, 4), (1, 5, 9), (4, 30, 2)):
        x, y = _ids(b, s, 40, g), _ids(b, t, 40, g)
        torch.testing.assert_close(ep.module()(x, y), t5.logits(x, y), rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="Guard failed"):  # one decoder row per input row
        ep.module()(_ids(3, 5, 40, g), _ids(2, 4, 40, g))
