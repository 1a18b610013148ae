"""GPT-2 in gtdsl against transformers on small random configs: logits within 1e-5, greedy
generation and beam search with the KV cache giving the same tokens as ``generate`` (end
tokens, padding, length penalties and early stopping included), left-padded batches with an
attention mask (and the mask transformers infers from the pad token without one), the config's
activation and attention-scale flags, the cache agreeing with recomputing from scratch, and a
wrong-shaped Conv1D weight as a located diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.models.gpt2 import ACTIVATIONS, GPT2, HERE, ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import check_beam_grid, check_masked_generation, padded, save_folder


def _folder(tmp_path: Path, seed: int, prefix: bool = True, eos: int | None = 0,
            vocab: int = 61, **config):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=40, n_embd=24, n_layer=2, n_head=3,
                     initializer_range=0.3, bos_token_id=eos, eos_token_id=eos, **config)
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


# ------------------------------------------------------------------------- attention masks
def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids as transformers' generate computes them from the mask."""
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_left_padded_logits_equal_transformers(tmp_path: Path, seed: int) -> None:
    folder, hf = _folder(tmp_path, seed)
    ours = GPT2(folder)
    ids, mask = padded([7, 4, 1, 6], 7, 61, 0, seed, left=True)
    real = mask.bool()
    with torch.no_grad():
        want = hf(ids, attention_mask=mask, position_ids=_positions(mask)).logits
        as_called = hf(ids, attention_mask=mask).logits  # positions 0 .. s-1
    got = ours.logits(ids, attention_mask=mask)
    torch.testing.assert_close(got[real], want[real], rtol=1e-5, atol=1e-5)
    for same in (mask.bool(), mask.int(), mask.to(torch.uint8)):  # the dtypes tokenizers give
        assert torch.equal(ours.logits(ids, attention_mask=same), got)
    assert (ours.logits(ids)[real] - want[real]).abs().max() > 0.1  # the mask matters
    # each row's real positions give the logits of the row without its padding
    for row, n in enumerate(mask.sum(1).tolist()):
        alone = ours.logits(ids[row:row + 1, 7 - n:])
        torch.testing.assert_close(got[row:row + 1, 7 - n:], alone, rtol=1e-5, atol=1e-5)
    # positions given explicitly: transformers' model called with the mask alone
    arange = torch.arange(7).expand(4, 7)
    torch.testing.assert_close(ours.logits(ids, mask, position_ids=arange)[real],
                               as_called[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 2])
def test_left_padded_generation_equals_generate(tmp_path: Path, seed: int) -> None:
    folder, hf = _folder(tmp_path, seed, eos=None)
    ids, mask = padded([6, 3, 1, 5], 6, 61, 0, seed + 10, left=True)
    check_masked_generation(GPT2(folder), hf, ids, mask, start=6)


def test_the_kv_cache_follows_the_mask(tmp_path: Path) -> None:
    """Decoding step by step with the mask grown by ones equals one pass over the whole
    sequence (the cache, the key mask and the positions agree)."""
    folder, _ = _folder(tmp_path, 3)
    ours = GPT2(folder)
    ids, mask = padded([5, 2, 8], 8, 61, 0, 3, left=True)
    full = ours.logits(ids, mask)
    first, cache = ours.step(ids[:, :6], ours.empty_cache(3), mask[:, :6])
    rest, cache = ours.step(ids[:, 6:], cache, mask)
    real = mask.bool()
    torch.testing.assert_close(torch.cat([first, rest], 1)[real], full[real],
                               rtol=1e-5, atol=1e-5)


def test_without_a_mask_the_pad_token_is_inferred_as_transformers_does(tmp_path: Path) -> None:
    """transformers' generate without an attention mask infers it from the pad token when
    that is set, occurs in the prompt and is not an end token; otherwise every token is
    real."""
    folder, hf = _folder(tmp_path, 1, eos=0, pad_token_id=7)
    ours = GPT2(folder)
    ids, mask = padded([6, 2, 4], 6, 61, 7, 5, left=True)
    ids = torch.where(mask.bool() & (ids == 7), 8, ids)  # 7 only as padding
    masked = ours.generate(ids, 8, attention_mask=mask)
    got = ours.generate(ids, 8)
    assert torch.equal(got, hf.generate(ids, max_new_tokens=8, do_sample=False))
    assert torch.equal(got, masked)
    got = ours.beam_search(ids, 8, 3)
    assert torch.equal(got, hf.generate(ids, max_new_tokens=8, num_beams=3, do_sample=False))
    assert torch.equal(got, ours.beam_search(ids, 8, 3, attention_mask=mask))
    # the pad token equal to the end token: nothing is inferred
    got = ours.generate(ids, 8, pad_token_id=0, eos_token_id=7)
    want = hf.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=7)
    assert torch.equal(got, want)
    got = ours.generate(ids, 8, pad_token_id=7, eos_token_id=7)
    want = hf.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=7, eos_token_id=7)
    assert torch.equal(got, want) and not torch.equal(got[:, :7], masked[:, :7])


# ---------------------------------------------------------------------- config flags
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_activation_functions_equal_transformers(tmp_path: Path, act: str) -> None:
    folder, hf = _folder(tmp_path, 5, activation_function=act)
    ids = torch.randint(0, 61, (2, 6), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(GPT2(folder).logits(ids), hf(ids).logits,
                                   rtol=1e-5, atol=1e-5)


def test_the_activation_matters(tmp_path: Path) -> None:
    """The oracle is not vacuous: each activation code gives other logits than gelu_new."""
    ids = torch.randint(0, 61, (2, 6), generator=torch.Generator().manual_seed(5))
    folder, _ = _folder(tmp_path, 5)
    base = GPT2(folder).logits(ids)
    for act in ("gelu", "gelu_10", "quick_gelu", "relu", "relu2", "relu6", "silu", "sigmoid",
                "tanh", "linear", "mish", "leaky_relu", "hardswish", "laplace",
                "sqrtsoftplus"):
        _folder(tmp_path, 5, activation_function=act)
        assert (GPT2(folder).logits(ids) - base).abs().max() > 1e-4, act  # tolerance: 1e-5


@pytest.mark.parametrize("flags", [{"scale_attn_weights": False},
                                   {"scale_attn_by_inverse_layer_idx": True},
                                   {"scale_attn_weights": False,
                                    "scale_attn_by_inverse_layer_idx": True}])
def test_attention_scale_flags_equal_transformers(tmp_path: Path, flags: dict) -> None:
    folder, hf = _folder(tmp_path, 6, **flags)
    ours = GPT2(folder)
    ids, mask = padded([6, 3], 6, 61, 0, 6, left=True)
    real = mask.bool()
    with torch.no_grad():
        want = hf(ids, attention_mask=mask, position_ids=_positions(mask)).logits
    torch.testing.assert_close(ours.logits(ids, mask)[real], want[real], rtol=1e-5, atol=1e-5)
    default, _ = _folder(tmp_path / "default", 6)
    assert (GPT2(default).logits(ids, mask)[real] - want[real]).abs().max() > 1e-3
    got = ours.beam_search(ids, 6, 2, attention_mask=mask)
    assert torch.equal(got, hf.generate(ids, attention_mask=mask, max_new_tokens=6,
                                        num_beams=2, do_sample=False))


def test_generation_configs_transformers_saves_load_and_apply(tmp_path: Path) -> None:
    """The files transformers writes (its defaults spelled out included) load, and their
    beam settings apply: transformers, reading the same folder, gives the same tokens."""
    from transformers import GenerationConfig, GPT2LMHeadModel

    _, hf = _folder(tmp_path / "src", 2, eos=3, vocab=13)
    folder = tmp_path / "model"
    hf.save_pretrained(folder)
    assert (folder / "generation_config.json").is_file()
    ours = GPT2(folder)
    ids = torch.randint(0, 13, (2, 4), generator=torch.Generator().manual_seed(2))
    back = GPT2LMHeadModel.from_pretrained(folder).eval()
    assert torch.equal(ours.generate(ids, 9), back.generate(ids, max_new_tokens=9))
    GenerationConfig(bos_token_id=3, eos_token_id=11, do_sample=False, temperature=1.0,
                     top_k=50, top_p=1.0, typical_p=1.0, repetition_penalty=1.0,
                     no_repeat_ngram_size=0, num_return_sequences=1, num_beam_groups=1,
                     diversity_penalty=0.0, min_length=0, num_beams=3, length_penalty=2.0,
                     early_stopping=True).save_pretrained(folder)
    back = GPT2LMHeadModel.from_pretrained(folder).eval()
    want = back.generate(ids, max_new_tokens=9)  # beam search: its generation config says so
    assert torch.equal(ours.beam_search(ids, 9, 3), want)
    assert not torch.equal(ours.beam_search(ids, 9, 3, eos_token_id=11, length_penalty=1.0,
                                            early_stopping=False), want)


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_activation_codes_equal_transformers_act2fn(backend: str) -> None:
    """``activation`` in blocks.gt, each code against transformers' ACT2FN of every name
    mapped to it, on values from -12 to 12 (the clipped and bounded ones included)."""
    from transformers.activations import ACT2FN

    m = gtdsl.load(HERE / "blocks.gt", backend=backend)
    x = torch.linspace(-12.0, 12.0, 4001).reshape(1, -1)
    for name, code in ACTIVATIONS.items():
        want = ACT2FN[name](x)
        torch.testing.assert_close(m.activation(x, code), want, rtol=1e-6, atol=2e-6,
                                   msg=lambda text, name=name: f"{name}: {text}")


# ------------------------------------------------------------------ the forward pass in gtdsl
def test_the_forward_pass_and_cache_are_gpt2_gt(tmp_path: Path) -> None:
    """Every step of decoding is one call of gpt2.gt's ``run``: the prompt once, then one
    token per step, each growing every block's cache (a list of keys and one of values) by
    the new tokens. The tokens are transformers', up to the model's last position, for a
    left-padded batch, greedy and by beam search."""
    folder, hf = _folder(tmp_path, 7, eos=None)
    ours = GPT2(folder)
    ids, mask = padded([9, 4, 6], 9, 61, 0, 7, left=True)
    calls: list[tuple[int, int, int]] = []
    run = ours.module.run

    def counting(*args, **kw):
        x, ks, vs = run(*args, **kw)
        assert len(ks) == len(vs) == 2  # one per block
        calls.append((args[1].shape[1], ks[0].shape[0], ks[0].shape[2]))
        return x, ks, vs

    n = 40 - 9  # up to the last of the 40 positions
    ours.module.run = counting
    try:
        got = ours.generate(ids, n, attention_mask=mask)
        assert calls == [(9, 3, 9)] + [(1, 3, 9 + i) for i in range(1, n)]
        calls.clear()
        beams = ours.beam_search(ids, 12, 3, attention_mask=mask)
        assert calls[0] == (9, 3, 9) and calls[1:] == [(1, 9, 9 + i) for i in range(1, 12)]
    finally:
        del ours.module.run
    want = hf.generate(ids, attention_mask=mask, max_new_tokens=n, do_sample=False)
    assert torch.equal(got, want), (got.tolist(), want.tolist())
    want = hf.generate(ids, attention_mask=mask, max_new_tokens=12, num_beams=3,
                       do_sample=False)
    assert torch.equal(beams, want), (beams.tolist(), want.tolist())
    assert gtdsl.check(HERE / "gpt2.gt") == []
