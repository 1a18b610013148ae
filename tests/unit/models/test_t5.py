"""T5 in gtdsl against transformers on small random configs: logits within 1e-5, greedy
and beam-search tokens equal to ``generate`` (end tokens, padding, length penalties and early
stopping included), right-padded inputs with an attention mask, untied output heads and
``scale_decoder_outputs``, the feed-forward's activation, relative position buckets equal to
transformers', and a wrong-shaped weight as a located diagnostic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.models.t5 import HERE, T5
from gtdsl.models.weights import ModelLoadError
from gtdsl.runtime.tensorfile import read_safetensors, write_safetensors
from tests.unit.models.hf import check_beam_grid, check_masked_generation, padded, save_folder


def _folder(tmp_path: Path, seed: int, factor: float = 1.0, dec_layers: int = 2,
            eos: int | None = 1, vocab: int = 53, layers: int = 2, **config):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab, d_model=24, d_kv=6, d_ff=40, num_layers=layers,
                   num_decoder_layers=dec_layers, num_heads=3, relative_attention_num_buckets=8,
                   relative_attention_max_distance=20, decoder_start_token_id=0, pad_token_id=0,
                   eos_token_id=eos, feed_forward_proj="relu", initializer_factor=factor,
                   **config)
    hf = T5ForConditionalGeneration(cfg).eval()
    return save_folder(hf, tmp_path), hf


def test_model_file_checks_statically() -> None:
    assert gtdsl.check(HERE / "t5.gt") == []


@pytest.mark.parametrize("buckets,distance", [(32, 128), (8, 20), (16, 32), (6, 7), (64, 300)])
def test_buckets_equal_transformers(buckets: int, distance: int) -> None:
    """t5.gt's ``relative_buckets`` (the position bias's buckets, computed in gtdsl) equals
    transformers' on every relative position up to 400 either way."""
    from transformers.models.t5.modeling_t5 import T5Attention

    module = gtdsl.load(HERE / "t5.gt")
    rel = torch.arange(400)[None, :] - torch.arange(400)[:, None]
    for bidirectional in (True, False):
        want = T5Attention._relative_position_bucket(rel, bidirectional, buckets, distance)
        got = module.relative_buckets(rel, bidirectional, buckets, distance)
        assert torch.equal(got, want)
        assert len(got.unique()) > buckets // 4  # the buckets are exercised


def test_a_deep_decoder_generates_as_transformers(tmp_path: Path) -> None:
    """Four decoder layers: the cache of each layer (a list built by t5.gt's ``step``) goes
    back to its own layer at the next step."""
    folder, hf = _folder(tmp_path, 9, 4.0, dec_layers=4, layers=4)
    ours = T5(folder)
    ids = torch.randint(2, 53, (2, 7), generator=torch.Generator().manual_seed(9))
    for beams in (1, 3):
        want = hf.generate(ids, max_new_tokens=9, num_beams=beams, do_sample=False)
        got = ours.generate(ids, 9) if beams == 1 else ours.beam_search(ids, 9, beams)
        assert torch.equal(got, want)
        assert len(set(got[:, 1:].flatten().tolist())) > 3


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


# ------------------------------------------------------------------------- attention masks
def _batch(seed: int, vocab: int = 53):
    """Right-padded inputs as T5's tokenizer gives them: tokens, the end token 1, padding 0."""
    return padded([7, 4, 2, 6], 7, vocab, 0, seed, left=False, end=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_padded_logits_equal_transformers(tmp_path: Path, seed: int) -> None:
    folder, hf = _folder(tmp_path, seed, 4.0)
    ours = T5(folder)
    ids, mask = _batch(seed)
    dec = torch.randint(2, 53, (4, 5), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        enc = hf.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    got = ours.logits(ids, dec, attention_mask=mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.logits(ids, dec, attention_mask=mask.bool()), got)
    real = mask.bool()
    torch.testing.assert_close(ours.encode(ids, mask)[real], enc[real], rtol=1e-5, atol=1e-5)
    assert (ours.logits(ids, dec) - want).abs().max() > 0.1  # the mask matters
    # each row gives the logits of the row without its padding (the sums run over other
    # lengths: float rounding differs by up to about 4e-5 on logits of size 40)
    for row, n in enumerate(mask.sum(1).tolist()):
        torch.testing.assert_close(ours.logits(ids[row:row + 1, :n], dec[row:row + 1]),
                                   want[row:row + 1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed,factor", [(3, 4.0), (4, 8.0)])
def test_padded_generation_equals_generate(tmp_path: Path, seed: int, factor: float) -> None:
    folder, hf = _folder(tmp_path, seed, factor)
    ids, mask = _batch(seed + 20)
    check_masked_generation(T5(folder), hf, ids, mask, start=1)


def test_without_a_mask_every_input_token_is_real(tmp_path: Path) -> None:
    """transformers infers no mask for an encoder-decoder model: the pad tokens of the input
    are attended to."""
    folder, hf = _folder(tmp_path, 4, 8.0)
    ours = T5(folder)
    ids, mask = _batch(24)
    got = ours.generate(ids, 8)
    assert torch.equal(got, hf.generate(ids, max_new_tokens=8, do_sample=False))
    got = ours.beam_search(ids, 8, 2)
    assert torch.equal(got, hf.generate(ids, max_new_tokens=8, num_beams=2, do_sample=False))
    assert not torch.equal(got, ours.beam_search(ids, 8, 2, attention_mask=mask))


# ---------------------------------------------------------------- output head and flags
def _untied(tmp_path: Path, seed: int, config: dict, head: bool):
    """A T5 saved by transformers' save_pretrained with ``config`` in its config.json, and an
    output head of its own when ``head``; the oracle is the folder loaded back by
    transformers."""
    import json

    from transformers import T5ForConditionalGeneration

    _, hf = _folder(tmp_path / "src", seed, 4.0, vocab=13)
    if head:
        torch.manual_seed(seed + 1)
        hf.lm_head.weight = torch.nn.Parameter(torch.randn(13, 24) * 2.0)
    folder = tmp_path / "model"
    hf.save_pretrained(folder)
    path = folder / "config.json"
    c = {k: v for k, v in json.loads(path.read_text()).items()
         if k not in ("scale_decoder_outputs", "tie_word_embeddings")}
    path.write_text(json.dumps({**c, **config}))
    return folder, T5ForConditionalGeneration.from_pretrained(folder).eval()


# the configs transformers writes (5.x: both keys; older: tie_word_embeddings only)
HEADS = [({"tie_word_embeddings": True, "scale_decoder_outputs": False}, True),
         ({"tie_word_embeddings": True, "scale_decoder_outputs": False}, False),
         ({"tie_word_embeddings": False}, True),
         ({"scale_decoder_outputs": True}, True),
         ({"tie_word_embeddings": True}, False)]


@pytest.mark.parametrize("config,head", HEADS)
def test_output_head_and_scale_equal_transformers(tmp_path: Path, config: dict,
                                                  head: bool) -> None:
    folder, hf = _untied(tmp_path, 2, config, head)
    ours = T5(folder)
    assert ours.untied_head == head and (ours.output_scale == 1.0) == \
        (hf.config.scale_decoder_outputs is False)
    ids, mask = padded([6, 3], 6, 13, 0, 2, left=False, end=1)
    dec = torch.randint(2, 13, (2, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    torch.testing.assert_close(ours.logits(ids, dec, mask), want, rtol=1e-5, atol=1e-5)
    for beams in (1, 3):
        got = (ours.generate(ids, 8, attention_mask=mask) if beams == 1 else
               ours.beam_search(ids, 8, beams, attention_mask=mask))
        assert torch.equal(got, hf.generate(ids, attention_mask=mask, max_new_tokens=8,
                                            num_beams=beams, do_sample=False))
    # saved by gtdsl, loaded by transformers: the same head and scale
    from transformers import T5ForConditionalGeneration

    back = T5ForConditionalGeneration.from_pretrained(ours.save(tmp_path / "out")).eval()
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, attention_mask=mask,
                                        decoder_input_ids=dec).logits, want)


def test_scale_decoder_outputs_matters(tmp_path: Path) -> None:
    """The oracle is not vacuous: the scale changes the logits a lot and the beams."""
    scaled, _ = _untied(tmp_path / "a", 2, {"scale_decoder_outputs": True}, True)
    plain, _ = _untied(tmp_path / "b", 2, {"scale_decoder_outputs": False}, True)
    ids, mask = padded([6, 3], 6, 13, 0, 2, left=False, end=1)
    dec = torch.randint(2, 13, (2, 5), generator=torch.Generator().manual_seed(2))
    a, b = T5(scaled), T5(plain)
    assert (a.logits(ids, dec, mask) - b.logits(ids, dec, mask)).abs().max() > 1.0
    assert any(not torch.equal(a.beam_search(ids, 8, k, attention_mask=mask),
                               b.beam_search(ids, 8, k, attention_mask=mask)) for k in (2, 3))


@pytest.mark.parametrize("act", ["gelu_new", "silu", "gelu"])
@pytest.mark.parametrize("how", ["feed_forward_proj", "both"])
def test_feed_forward_activation_equals_transformers(tmp_path: Path, act: str,
                                                     how: str) -> None:
    """transformers' T5 runs the activation ``dense_act_fn`` (from ``feed_forward_proj`` or
    given with it); a folder saying either loads with that activation."""
    import json

    from transformers import T5ForConditionalGeneration

    folder, relu = _folder(tmp_path, 5, 4.0)
    c = json.loads((folder / "config.json").read_text())
    c["feed_forward_proj"] = act
    if how == "both":
        c["dense_act_fn"], c["is_gated_act"] = act, False
    else:
        c.pop("dense_act_fn", None)
        c.pop("is_gated_act", None)
    (folder / "config.json").write_text(json.dumps(c))
    hf = T5ForConditionalGeneration.from_pretrained(folder).eval()
    assert hf.config.dense_act_fn == act and not hf.config.is_gated_act
    ours = T5(folder)
    g = torch.Generator().manual_seed(5)
    ids, dec = torch.randint(2, 53, (2, 7), generator=g), torch.randint(2, 53, (2, 5), generator=g)
    with torch.no_grad():
        want = hf(input_ids=ids, decoder_input_ids=dec).logits
        before = relu(input_ids=ids, decoder_input_ids=dec).logits
    torch.testing.assert_close(ours.logits(ids, dec), want, rtol=1e-5, atol=1e-5)
    assert (want - before).abs().max() > 1e-3  # the activation matters
    assert torch.equal(ours.generate(ids, 4), hf.generate(ids, max_new_tokens=4,
                                                          do_sample=False))


# --------------------------------------------------------------- T5 v1.1, flan-T5, mT5
def _modern(tmp_path: Path, kind: str, proj: str, head: bool, seed: int = 7):
    """A T5 v1.1 / flan-T5 (``t5``) or mT5 (``mt5``) folder as transformers saves it
    (``tie_word_embeddings`` false, a gated feed-forward), with an output head of its own
    in the file when ``head``; the oracle is the folder loaded back by transformers."""
    import json

    from safetensors.torch import load_file, save_file
    from transformers import (MT5Config, MT5ForConditionalGeneration, T5Config,
                              T5ForConditionalGeneration)

    config_cls, model_cls = ((MT5Config, MT5ForConditionalGeneration) if kind == "mt5" else
                             (T5Config, T5ForConditionalGeneration))
    torch.manual_seed(seed)
    cfg = config_cls(vocab_size=53, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=3,
                     relative_attention_num_buckets=8, relative_attention_max_distance=20,
                     decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                     feed_forward_proj=proj, tie_word_embeddings=False, initializer_factor=4.0)
    folder = tmp_path / f"{kind}-{proj}"
    model_cls(cfg).save_pretrained(folder)
    if head:  # the head of a real checkpoint: its own tensor, unlike the shared table
        tensors = load_file(folder / "model.safetensors")
        tensors["lm_head.weight"] = torch.randn(53, 24) * 2.0
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        c = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**c, "tie_word_embeddings": False}))
    return folder, model_cls.from_pretrained(folder).eval()


MODERN = [("t5", "gated-gelu", True), ("t5", "gated-silu", False), ("t5", "gated-relu", True),
          ("mt5", "gated-gelu", True), ("mt5", "gated-gelu", False)]


@pytest.mark.parametrize("kind,proj,head", MODERN)
def test_modern_t5_equals_transformers(tmp_path: Path, kind: str, proj: str, head: bool) -> None:
    """T5 v1.1 / flan-T5 (gated GELU or SiLU, the untied head, no output scaling) and mT5:
    logits within 1e-5, greedy and beam tokens equal to transformers' ``generate``."""
    folder, hf = _modern(tmp_path, kind, proj, head)
    ours = T5(folder)
    assert ours.gated and ours.untied_head == head
    ids, mask = padded([7, 4], 7, 53, 0, 3, left=False, end=1)
    dec = torch.randint(2, 53, (2, 5), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    torch.testing.assert_close(ours.logits(ids, dec, mask), want, rtol=1e-5, atol=1e-5)
    for beams in (1, 3):
        got = (ours.generate(ids, 7, attention_mask=mask) if beams == 1 else
               ours.beam_search(ids, 7, beams, attention_mask=mask))
        assert torch.equal(got, hf.generate(ids, attention_mask=mask, max_new_tokens=7,
                                            num_beams=beams, do_sample=False))


def test_gated_weights_are_stacked_and_saved_back(tmp_path: Path) -> None:
    """``wi_0`` and ``wi_1`` run as one product and are written back as two tensors that
    transformers loads; a ``wi_1`` of another shape is a GT0909 naming it."""
    from safetensors.torch import load_file, save_file
    from transformers import T5ForConditionalGeneration

    folder, hf = _modern(tmp_path, "t5", "gated-gelu", True)
    ours = T5(folder)
    p = "encoder.block.1.layer.1.DenseReluDense."
    assert torch.equal(ours.encoder[1].ff.wi, torch.cat([hf.state_dict()[p + "wi_0.weight"],
                                                         hf.state_dict()[p + "wi_1.weight"]]))
    out = ours.save(tmp_path / "out")
    saved = load_file(out / "model.safetensors")
    assert torch.equal(saved[p + "wi_1.weight"], hf.state_dict()[p + "wi_1.weight"])
    back = T5ForConditionalGeneration.from_pretrained(out).eval()
    ids = torch.randint(2, 53, (1, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, decoder_input_ids=ids).logits,
                                   hf(input_ids=ids, decoder_input_ids=ids).logits)
    tensors = load_file(folder / "model.safetensors")
    tensors[p + "wi_1.weight"] = tensors[p + "wi_1.weight"][:30]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="wi_1") as err:
        T5(folder)
    assert err.value.diagnostics[0].code == "GT0909"
    del tensors[p + "wi_1.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="has no tensor .*wi_1"):
        T5(folder)


def test_mt5_scaling_the_outputs_is_refused(tmp_path: Path) -> None:
    import json

    folder, _ = _modern(tmp_path, "mt5", "gated-gelu", True)
    c = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**c, "scale_decoder_outputs": True}))
    with pytest.raises(ModelLoadError, match="scale_decoder_outputs") as err:
        T5(folder)
    assert err.value.diagnostics[0].code == "GT0909"


def test_generation_configs_transformers_saves_load_and_apply(tmp_path: Path) -> None:
    """The files transformers writes (its defaults spelled out included) load, and their
    settings apply: transformers, reading the same folder, gives the same tokens."""
    from transformers import GenerationConfig, T5ForConditionalGeneration

    _, hf = _folder(tmp_path / "src", 2, 2.0, vocab=13)
    folder = tmp_path / "model"
    hf.save_pretrained(folder)
    ours = T5(folder)
    ids, mask = padded([6, 3], 6, 13, 0, 1, left=False, end=1)
    back = T5ForConditionalGeneration.from_pretrained(folder).eval()
    assert torch.equal(ours.generate(ids, 9, attention_mask=mask),
                       back.generate(ids, attention_mask=mask, max_new_tokens=9))
    GenerationConfig(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
                     do_sample=False, temperature=1.0, top_k=50, top_p=1.0,
                     repetition_penalty=1.0, no_repeat_ngram_size=0, num_beams=3,
                     length_penalty=-0.5, early_stopping="never").save_pretrained(folder)
    back = T5ForConditionalGeneration.from_pretrained(folder).eval()
    want = back.generate(ids, attention_mask=mask, max_new_tokens=9)
    assert torch.equal(ours.beam_search(ids, 9, 3, attention_mask=mask), want)
    assert not torch.equal(ours.beam_search(ids, 9, 3, attention_mask=mask, length_penalty=1.0,
                                            early_stopping=False), want)
