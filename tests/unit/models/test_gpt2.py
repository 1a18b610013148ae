"""GPT-2 in gtdsl against transformers on small random configs: logits within 1e-5, greedy
generation and beam search with the KV cache giving the same tokens as ``generate`` (end
tokens, padding, length penalties and early stopping included), the cache agreeing with
recomputing from scratch, and a wrong-shaped Conv1D weight as a located diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.models.gpt2 import GPT2, HERE, ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import check_beam_grid, save_folder


def _folder(tmp_path: Path, seed: int, prefix: bool = True, eos: int | None = 0,
            vocab: int = 61):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=40, n_embd=24, n_layer=2, n_head=3,
                     initializer_range=0.3, bos_token_id=eos, eos_token_id=eos)
    hf = GPT2LMHeadModel(cfg).eval()
    return save_folder(hf, tmp_path, prefix), hf


def test_model_file_checks_statically() -> None:
    assert gtdsl.check(HERE / "gpt2.gt") == []


@pytest.mark.parametrize("seed,prefix", [(0, True), (1, False)])
def test_logits_equal_transformers(tmp_path: Path, seed: int, prefix: bool) -> None:
    folder, hf = _folder(tmp_path, seed, prefix)
    ours = GPT2(folder)
    ids = torch.randint(0, 61, (2, 9), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(ours.logits(ids), hf(ids).logits, rtol=1e-5, atol=1e-5)


def test_greedy_generation_equals_generate(tmp_path: Path) -> None:
    folder, hf = _folder(tmp_path, 2)
    ours = GPT2(folder)
    ids = torch.randint(1, 61, (2, 5), generator=torch.Generator().manual_seed(2))
    got = ours.generate(ids, 12)
    want = hf.generate(ids, max_new_tokens=12, do_sample=False,
                       attention_mask=torch.ones_like(ids), pad_token_id=0)
    assert torch.equal(got, want), (got.tolist(), want.tolist())
    assert len(set(got[:, 5:].flatten().tolist())) > 2  # the tokens do vary


def test_kv_cache_equals_recomputing(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path, 3)
    ours = GPT2(folder)
    ids = torch.randint(0, 61, (1, 8), generator=torch.Generator().manual_seed(3))
    full = ours.logits(ids)
    first, cache = ours.step(ids[:, :5], ours.empty_cache(1))
    rest, cache = ours.step(ids[:, 5:], cache)
    assert cache[0][0].shape == (1, 3, 8, 8)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, rtol=1e-5, atol=1e-5)


def test_wrong_shaped_conv1d_weight_is_a_located_diagnostic(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path, 0)
    t = read_safetensors(folder / "model.safetensors")
    t["transformer.h.1.mlp.c_fc.weight"] = torch.zeros(96, 24)  # [out, in]: transposed
    write_safetensors(folder / "model.safetensors", t)
    with pytest.raises(ModelLoadError) as err:
        GPT2(folder)
    text = str(err.value)
    assert "`h.1.mlp.c_fc.weight`" in text and "blocks[1].fc.weight" in text
    assert "blocks.gt" in text and "got: (96, 24)" in text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_equals_generate(tmp_path: Path, seed: int) -> None:
    _, hf = _folder(tmp_path, seed, eos=None)
    ids = torch.randint(1, 61, (2, 5), generator=torch.Generator().manual_seed(seed))
    got = GPT2(tmp_path).beam_search(ids, 8, 3)
    want = hf.generate(ids, max_new_tokens=8, num_beams=3, do_sample=False,
                       attention_mask=torch.ones_like(ids), pad_token_id=0)
    assert torch.equal(got, want), (got.tolist(), want.tolist())


def _small(tmp_path: Path, seed: int):
    """A 13-token model: small enough that a chosen end token is often among the best
    continuations, so beams and rows end early."""
    folder, hf = _folder(tmp_path, seed, eos=3, vocab=13)
    return GPT2(folder), hf, torch.randint(0, 13, (2, 4), generator=torch.Generator()
                                            .manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 2])
def test_beam_search_with_end_token_equals_generate(tmp_path: Path, seed: int) -> None:
    ours, hf, ids = _small(tmp_path, seed)
    check_beam_grid(ours, hf, ids, start=4)


def test_beam_search_pads_with_the_pad_token(tmp_path: Path) -> None:
    ours, hf, ids = _small(tmp_path, 2)
    eos = 5  # row 0 ends after 5 new tokens, row 1 runs to the limit
    got = ours.beam_search(ids, 9, 3, eos_token_id=eos, pad_token_id=7)
    want = hf.generate(ids, max_new_tokens=9, num_beams=3, do_sample=False, eos_token_id=eos,
                       attention_mask=torch.ones_like(ids), pad_token_id=7)
    assert torch.equal(got, want), (got.tolist(), want.tolist())
    assert got[0, 8:].tolist() == [5, 7, 7, 7, 7] and 7 not in got[1].tolist()


def test_greedy_stops_at_the_end_token(tmp_path: Path) -> None:
    ours, hf, ids = _small(tmp_path, 1)
    ended = 0
    for eos in range(13):
        got = ours.generate(ids, 9, eos_token_id=eos)
        want = hf.generate(ids, max_new_tokens=9, do_sample=False, eos_token_id=eos,
                           attention_mask=torch.ones_like(ids), pad_token_id=eos)
        assert torch.equal(got, want), (eos, got.tolist(), want.tolist())
        ended += got.shape[1] < 4 + 9
    assert ended > 0


def test_generation_settings_come_from_the_folder(tmp_path: Path) -> None:
    ours, hf, ids = _small(tmp_path, 2)
    (tmp_path / "generation_config.json").write_text(
        '{"eos_token_id": 1, "length_penalty": 2.0, "early_stopping": true}')
    want = hf.generate(ids, max_new_tokens=9, num_beams=3, do_sample=False, eos_token_id=1,
                       attention_mask=torch.ones_like(ids), pad_token_id=1,
                       length_penalty=2.0, early_stopping=True)
    assert torch.equal(ours.beam_search(ids, 9, 3), want)
    (tmp_path / "generation_config.json").write_text('{"early_stopping": "sometimes"}')
    with pytest.raises(ModelLoadError, match="early_stopping"):
        ours.beam_search(ids, 9, 3)
    (tmp_path / "generation_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="generation_config.json") as err:
        ours.generate(ids, 3)
    assert "GT0909" in str(err.value)


def test_generate_command(tmp_path: Path) -> None:
    import io

    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from gtdsl.cli.main import main

    folder, hf = _folder(tmp_path, 2)
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(61)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(folder), "w5 w9 w13", "--max-new-tokens", "6"], out, err) == 0, \
        err.getvalue()
    ids = torch.tensor([[5, 9, 13]])
    want = hf.generate(ids, max_new_tokens=6, do_sample=False,
                       attention_mask=torch.ones_like(ids), pad_token_id=0)
    assert out.getvalue().split() == [f"w{i}" for i in want[0].tolist()]
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(tmp_path / "nope"), "w1"], out, err) == 2
    assert "GT0909" in err.getvalue()


def test_save_writes_the_same_layout_back(tmp_path: Path) -> None:
    from transformers import GPT2LMHeadModel

    folder, hf = _folder(tmp_path / "in", 4)
    ours = GPT2(folder)
    out = ours.save(tmp_path / "out")
    want = {k: v for k, v in hf.state_dict().items()
            if k != "lm_head.weight" and not k.endswith((".attn.bias", ".attn.masked_bias"))}
    got = read_safetensors(out / "model.safetensors")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    ids = torch.randint(0, 61, (2, 7), generator=torch.Generator().manual_seed(4))
    back = GPT2LMHeadModel.from_pretrained(out).eval()
    with torch.no_grad():
        assert torch.equal(back(ids).logits, hf(ids).logits)
    assert torch.equal(GPT2(out).logits(ids), ours.logits(ids))
