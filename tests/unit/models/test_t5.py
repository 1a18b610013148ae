"""T5 in gtdsl against transformers on small random configs: logits within 1e-5, greedy
and beam-search tokens equal to ``generate`` (end tokens, padding, length penalties and early
stopping included), relative position buckets equal to
transformers', and a wrong-shaped weight as a located diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.models.t5 import HERE, T5, relative_buckets
from gtdsl.models.weights import ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import check_beam_grid, save_folder


def _folder(tmp_path: Path, seed: int, factor: float = 1.0, dec_layers: int = 2,
            eos: int | None = 1, vocab: int = 53):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab, d_model=24, d_kv=6, d_ff=40, num_layers=2,
                   num_decoder_layers=dec_layers, num_heads=3, relative_attention_num_buckets=8,
                   relative_attention_max_distance=20, decoder_start_token_id=0, pad_token_id=0,
                   eos_token_id=eos, feed_forward_proj="relu", initializer_factor=factor)
    hf = T5ForConditionalGeneration(cfg).eval()
    return save_folder(hf, tmp_path), hf


def test_model_file_checks_statically() -> None:
    assert gtdsl.check(HERE / "t5.gt") == []


def test_buckets_equal_transformers() -> None:
    from transformers.models.t5.modeling_t5 import T5Attention

    rel = torch.arange(40)[None, :] - torch.arange(40)[:, None]
    for bidirectional in (True, False):
        want = T5Attention._relative_position_bucket(rel, bidirectional, 32, 128)
        assert torch.equal(relative_buckets(rel, bidirectional, 32, 128), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_logits_equal_transformers(tmp_path: Path, seed: int) -> None:
    folder, hf = _folder(tmp_path, seed, dec_layers=3)  # a decoder deeper than the encoder
    ours = T5(folder)
    g = torch.Generator().manual_seed(seed)
    ids, dec = torch.randint(2, 53, (2, 9), generator=g), torch.randint(2, 53, (2, 6), generator=g)
    with torch.no_grad():
        want = hf(input_ids=ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(ours.logits(ids, dec), want, rtol=1e-5, atol=1e-5)


# seed 6 with factor 16 emits the end token mid-sequence in two rows: padding after it
@pytest.mark.parametrize("seed,factor", [(3, 4.0), (4, 8.0), (6, 16.0)])
def test_greedy_generation_equals_generate(tmp_path: Path, seed: int, factor: float) -> None:
    folder, hf = _folder(tmp_path, seed, factor)
    ids = torch.randint(2, 53, (3, 7), generator=torch.Generator().manual_seed(seed))
    got = T5(folder).generate(ids, 10)
    want = hf.generate(ids, max_new_tokens=10, do_sample=False,
                       attention_mask=torch.ones_like(ids))
    assert torch.equal(got, want), (got.tolist(), want.tolist())


def test_wrong_shaped_weight_is_a_located_diagnostic(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path, 0, dec_layers=3)
    t = read_safetensors(folder / "model.safetensors")
    t["decoder.block.2.layer.1.EncDecAttention.o.weight"] = torch.zeros(24, 17)
    write_safetensors(folder / "model.safetensors", t)
    with pytest.raises(ModelLoadError) as err:
        T5(folder)
    text = str(err.value)
    assert "`decoder.block.2.layer.1.EncDecAttention.o.weight`" in text
    assert "decoder[2].cross_attn.o" in text and "t5.gt" in text and "got: (24, 17)" in text


def test_decoder_cache_equals_recomputing(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path, 3, 4.0)
    ours = T5(folder)
    g = torch.Generator().manual_seed(3)
    ids, dec = torch.randint(2, 53, (2, 7), generator=g), torch.randint(2, 53, (2, 6), generator=g)
    enc = ours.encode(ids)
    full = ours.decode(dec, enc)
    first, cache = ours.step(dec[:, :4], enc, None)
    rest, cache = ours.step(dec[:, 4:], enc, cache)
    assert cache[0][0].shape == (2, 3, 6, 6)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed,factor", [(3, 4.0), (4, 8.0), (7, 6.0)])
def test_beam_search_equals_generate(tmp_path: Path, seed: int, factor: float) -> None:
    _, hf = _folder(tmp_path, seed, factor, eos=None)
    ids = torch.randint(2, 53, (2, 7), generator=torch.Generator().manual_seed(seed))
    got = T5(tmp_path).beam_search(ids, 8, 3)
    want = hf.generate(ids, max_new_tokens=8, num_beams=3, do_sample=False,
                       attention_mask=torch.ones_like(ids))
    assert torch.equal(got, want), (got.tolist(), want.tolist())


@pytest.mark.parametrize("seed", [0, 2])
def test_beam_search_with_end_token_equals_generate(tmp_path: Path, seed: int) -> None:
    _, hf = _folder(tmp_path, seed, 4.0, vocab=13)
    ours = T5(tmp_path)
    ids = torch.randint(2, 13, (2, 6), generator=torch.Generator().manual_seed(seed))
    check_beam_grid(ours, hf, ids, start=1)


def test_generate_command_runs_t5_folders(tmp_path: Path) -> None:
    import io
    import json

    from tokenizers import AddedToken, Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing

    from gtdsl.cli.main import main

    folder, hf = _folder(tmp_path / "t5", 4, 8.0)
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(53)}, unk_token="w2"))
    tok.pre_tokenizer = Whitespace()
    tok.add_special_tokens([AddedToken("w0", special=True), AddedToken("w1", special=True)])
    tok.post_processor = TemplateProcessing(single="$A w1", special_tokens=[("w1", 1)])
    tok.save(str(folder / "tokenizer.json"))
    ids = torch.tensor([tok.encode("w5 w9 w13 w20").ids])
    assert ids[0, -1] == 1  # the end token the tokenizer appends
    for beams in (1, 3):
        out, err = io.StringIO(), io.StringIO()
        assert main(["generate", str(folder), "w5 w9 w13 w20", "--max-new-tokens", "7",
                     "--beams", str(beams)], out, err) == 0, err.getvalue()
        want = hf.generate(ids, max_new_tokens=7, num_beams=beams, do_sample=False,
                           attention_mask=torch.ones_like(ids))
        words = out.getvalue().split()
        assert words == [f"w{i}" for i in want[0].tolist() if i > 1] and len(words) > 2
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, model_type="bert")))
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(folder), "w5"], out, err) == 2
    assert "GT0909" in err.getvalue() and "'bert'" in err.getvalue()


def test_save_writes_the_same_layout_back(tmp_path: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(5)
    cfg = T5Config(vocab_size=53, d_model=24, d_kv=6, d_ff=40, num_layers=2,
                   num_decoder_layers=3, num_heads=3, relative_attention_num_buckets=8,
                   relative_attention_max_distance=20, decoder_start_token_id=0, pad_token_id=0,
                   eos_token_id=1, feed_forward_proj="relu")
    hf = T5ForConditionalGeneration(cfg).eval()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "config.json").write_text(hf.config.to_json_string())
    write_safetensors(folder / "model.safetensors", {
        k: v.contiguous() for k, v in hf.state_dict().items()
        if not k.endswith("embed_tokens.weight") and k != "lm_head.weight"})
    ours = T5(folder)
    out = ours.save(tmp_path / "out")
    assert read_safetensors(out / "model.safetensors").keys() == \
        read_safetensors(folder / "model.safetensors").keys()
    g = torch.Generator().manual_seed(5)
    ids, dec = torch.randint(2, 53, (2, 7), generator=g), torch.randint(2, 53, (2, 5), generator=g)
    with torch.no_grad():
        want = hf(input_ids=ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(ours.logits(ids, dec), want, rtol=1e-5, atol=1e-5)
    assert torch.equal(T5(out).logits(ids, dec), ours.logits(ids, dec))
    # embedding copies that differ from the shared table are refused, not ignored
    t = read_safetensors(out / "model.safetensors")
    t["encoder.embed_tokens.weight"] = t["shared.weight"] + 1.0
    write_safetensors(out / "model.safetensors", t)
    with pytest.raises(ModelLoadError, match="differs from `shared.weight`"):
        T5(out)
    t["encoder.embed_tokens.weight"] = t["shared.weight"]
    write_safetensors(out / "model.safetensors", t)
    back = T5ForConditionalGeneration.from_pretrained(out).eval()
    with torch.no_grad():
        assert torch.equal(back(input_ids=ids, decoder_input_ids=dec).logits, want)
