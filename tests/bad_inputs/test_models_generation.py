"""Bad inputs to GPT-2 and T5 decoding: attention masks, ids and counts of the wrong type or
value, keyword arguments the methods do not implement (sampling among them), config keys that
change the computation with values gtdsl does not run, and generation settings (as
transformers saves them in ``generation_config.json``, or in ``config.json``) that transformers
would apply and gtdsl does not implement. Each row ends in a gtdsl diagnostic with its code and
where (the caller's line, or the file at fault), never a Python traceback and never a silently
different answer.

Oracle for the settings: transformers' own ``GenerationConfig`` writes the files (where it
agrees to save them), and every row's setting changes transformers' tokens (checked for a
sample of them below), so ignoring it would be a wrong answer."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from gtdsl.cli.main import main
from gtdsl.diagnostics import GtdslError
from gtdsl.models.gpt2 import GPT2
from gtdsl.models.t5 import T5
from tests.unit.models.hf import save_folder

HERE = os.path.abspath(__file__)
IDS = torch.tensor([[5, 6, 7], [8, 9, 10]])
ONES = torch.ones(2, 3, dtype=torch.int64)


def _gpt2(folder: Path, **config: Any) -> tuple[Path, Any]:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = {"bos_token_id": 0, "eos_token_id": 0, **config}
    cfg = GPT2Config(vocab_size=31, n_positions=16, n_embd=12, n_layer=1, n_head=2,
                     initializer_range=0.3, **config)
    hf = GPT2LMHeadModel(cfg).eval()
    return save_folder(hf, folder), hf


def _t5(folder: Path, **config: Any) -> tuple[Path, Any]:
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=31, d_model=12, d_kv=4, d_ff=16, num_layers=1, num_heads=3,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                   feed_forward_proj="relu", initializer_factor=4.0, **config)
    hf = T5ForConditionalGeneration(cfg).eval()
    return save_folder(hf, folder), hf


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("models")
    return {"GPT2": GPT2(_gpt2(base / "gpt2")[0]), "T5": T5(_t5(base / "t5")[0])}


def _check(err: GtdslError, code: str, fragment: str, where: str | None = None) -> None:
    text = str(err)
    d = err.diagnostic
    assert d.code == code, text
    assert fragment in text, text
    assert d.location, text  # a file and line, or the path at fault
    if where is not None:
        assert d.location.startswith(where), text
    assert "Traceback" not in text


# ============================================================ arguments of the methods
Call = Callable[[Any], Any]
MASK_ROWS: list[tuple[str, Any, str]] = [
    ("float", torch.ones(2, 3), "integer or bool tensor"),
    ("complex", torch.ones(2, 3, dtype=torch.complex64), "integer or bool tensor"),
    ("a list", [[1, 1, 1], [1, 1, 1]], "integer or bool tensor"),
    ("wider", torch.ones(2, 4, dtype=torch.int64), "the shape of `ids`, (2, 3)"),
    ("one row", torch.ones(1, 3, dtype=torch.int64), "the shape of `ids`, (2, 3)"),
    ("1-D", torch.ones(3, dtype=torch.int64), "the shape of `ids`, (2, 3)"),
    ("a 2", torch.tensor([[1, 1, 2], [1, 1, 1]]), "0 (padding) or 1"),
    ("a -1", torch.tensor([[1, 1, 1], [-1, 1, 1]]), "0 (padding) or 1"),
    ("all padding", torch.tensor([[0, 1, 1], [0, 0, 0]]), "row 1 is all padding"),
    ("bool all padding", torch.tensor([[False] * 3, [True] * 3]), "row 0 is all padding"),
]


def _methods(kind: str) -> list[tuple[str, Callable[..., Any]]]:
    if kind == "GPT2":
        return [("generate", lambda m, **kw: m.generate(IDS, 3, **kw)),
                ("beam_search", lambda m, **kw: m.beam_search(IDS, 3, 2, **kw)),
                ("logits", lambda m, **kw: m.logits(IDS, **kw))]
    dec = torch.tensor([[0, 4], [0, 5]])
    return [("generate", lambda m, **kw: m.generate(IDS, 3, **kw)),
            ("beam_search", lambda m, **kw: m.beam_search(IDS, 3, 2, **kw)),
            ("logits", lambda m, **kw: m.logits(IDS, dec, **kw))]


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("row", MASK_ROWS, ids=[r[0] for r in MASK_ROWS])
def test_bad_attention_masks_are_gt3001(models: dict[str, Any], kind: str,
                                        row: tuple[str, Any, str]) -> None:
    _, mask, fragment = row
    for method, call in _methods(kind):
        with pytest.raises(GtdslError) as info:
            call(models[kind], attention_mask=mask)
        _check(info.value, "GT3001", fragment, HERE)
        assert f"`attention_mask` of `{kind}.{method}`" in str(info.value)


# (id, the call, code, fragment); `m` is the model
CALL_ROWS: list[tuple[str, Call, str, str]] = [
    ("ids float", lambda m: m.generate(IDS.float(), 3), "GT3001", "an integer tensor"),
    ("ids bool", lambda m: m.beam_search(IDS > 6, 3, 2), "GT3001", "an integer tensor"),
    ("ids a list", lambda m: m.generate([[1, 2]], 3), "GT3001", "a Python list"),
    ("ids 1-D", lambda m: m.generate(IDS[0], 3), "GT3001", "a 2-D tensor"),
    ("ids empty", lambda m: m.generate(IDS[:, :0], 3), "GT3001", "at least one row"),
    ("ids past the vocabulary", lambda m: m.generate(IDS + 40, 3), "GT3001", "[0, 31)"),
    ("ids negative", lambda m: m.beam_search(IDS - 9, 3, 2), "GT3001", "[0, 31)"),
    ("no new tokens", lambda m: m.generate(IDS, 0), "GT3001", "`max_new_tokens`"),
    ("negative new tokens", lambda m: m.beam_search(IDS, -2, 2), "GT3001",
     "`max_new_tokens`"),
    ("float new tokens", lambda m: m.generate(IDS, 2.5), "GT3001", "`max_new_tokens`"),
    ("bool new tokens", lambda m: m.generate(IDS, True), "GT3001", "`max_new_tokens`"),
    ("no beams", lambda m: m.beam_search(IDS, 3, 0), "GT3001", "`beams`"),
    ("beams a string", lambda m: m.beam_search(IDS, 3, "2"), "GT3001", "`beams`"),
    ("end token a string", lambda m: m.generate(IDS, 3, eos_token_id="1"), "GT3001",
     "`eos_token_id`"),
    ("pad token a float", lambda m: m.beam_search(IDS, 3, 2, pad_token_id=1.5), "GT3001",
     "`pad_token_id`"),
    ("length penalty a string", lambda m: m.beam_search(IDS, 3, 2, length_penalty="x"),
     "GT3001", "`length_penalty`"),
    ("early stopping sometimes",
     lambda m: m.beam_search(IDS, 3, 2, early_stopping="sometimes"), "GT3001",
     "`early_stopping`"),
    ("sampling a string", lambda m: m.generate(IDS, 3, do_sample="yes"), "GT3001",
     "`do_sample`"),
    ("temperature zero", lambda m: m.generate(IDS, 3, do_sample=True, temperature=0.0),
     "GT3001", "`temperature`"),
    ("temperature negative", lambda m: m.generate(IDS, 3, temperature=-1), "GT3001",
     "a number > 0"),
    ("temperature nan", lambda m: m.generate(IDS, 3, temperature=float("nan")), "GT3001",
     "`temperature`"),
    ("top_k negative", lambda m: m.beam_search(IDS, 3, 2, top_k=-5), "GT3001", "`top_k`"),
    ("top_k a float", lambda m: m.generate(IDS, 3, do_sample=True, top_k=2.5), "GT3001",
     "`top_k`"),
    ("top_p above 1", lambda m: m.generate(IDS, 3, top_p=1.5), "GT3001", "`top_p`"),
    ("repetition penalty zero", lambda m: m.beam_search(IDS, 3, 2, repetition_penalty=0),
     "GT3001", "`repetition_penalty`"),
    ("no repeat ngram negative", lambda m: m.generate(IDS, 3, no_repeat_ngram_size=-2),
     "GT3001", "`no_repeat_ngram_size`"),
    ("min new tokens a string", lambda m: m.generate(IDS, 3, min_new_tokens="2"), "GT3001",
     "`min_new_tokens`"),
    ("several greedy answers", lambda m: m.generate(IDS, 3, num_return_sequences=2),
     "GT3001", "greedy decoding"),
    ("more answers than beams", lambda m: m.beam_search(IDS, 3, 2, num_return_sequences=3),
     "GT3001", "exceeds `num_beams=2`"),
    ("no beams to generate", lambda m: m.generate(IDS, 3, num_beams=0), "GT3001",
     "`num_beams`"),
    ("beams twice", lambda m: m.beam_search(IDS, 3, 2, num_beams=4), "GT2013", "`beams`"),
    ("a seed for a generator", lambda m: m.generate(IDS, 3, do_sample=True, generator=0),
     "GT3001", "torch.Generator"),
    ("a string to stream to", lambda m: m.generate(IDS, 3, streamer="stdout"), "GT3001",
     "`streamer`"),
    ("streaming beams", lambda m: m.beam_search(IDS, 3, 2, streamer=print), "GT2013",
     "cannot stream beam search"),
    ("length penalty nan", lambda m: m.beam_search(IDS, 3, 2, length_penalty=float("nan")),
     "GT3001", "a finite number"),
    ("length penalty past a float", lambda m: m.beam_search(IDS, 3, 2, length_penalty=10**400),
     "GT3001", "a finite number"),
    ("end token past int64", lambda m: m.generate(IDS, 3, eos_token_id=10**30), "GT3001",
     "[0, 31)"),
    ("end token past the vocabulary", lambda m: m.generate(IDS, 3, eos_token_id=[2, 99]),
     "GT3001", "[0, 31)"),
    ("pad token negative", lambda m: m.generate(IDS, 3, pad_token_id=-1), "GT3001",
     "`pad_token_id`"),
    ("a generator that is not one", lambda m: m.generate(IDS, 3, do_sample=True,
                                                         generator="cpu"), "GT3001",
     "CPU torch.Generator"),
    ("every token an end before the minimum, beams",
     lambda m: m.beam_search(IDS, 3, 2, min_new_tokens=5, eos_token_id=list(range(31))),
     "GT3001", "fewer than 2 candidate tokens"),
    ("a typical_p filter", lambda m: m.generate(IDS, 3, do_sample=True, typical_p=0.5),
     "GT2013", "`typical_p=0.5`"),
    ("beam groups", lambda m: m.beam_search(IDS, 3, 2, num_beam_groups=2,
                                            diversity_penalty=0.5), "GT2013",
     "`num_beam_groups=2`"),
    ("max_length", lambda m: m.generate(IDS, 3, max_length=10), "GT2013", "`max_length`"),
    ("unknown keyword", lambda m: m.beam_search(IDS, 3, 2, foo=1), "GT2013", "`foo`"),
    ("a typo", lambda m: m.generate(IDS, 3, attention_masks=ONES), "GT2013",
     "`attention_masks`"),
]


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("row", CALL_ROWS, ids=[r[0] for r in CALL_ROWS])
def test_bad_call_arguments_are_diagnostics(models: dict[str, Any], kind: str,
                                            row: tuple[str, Call, str, str]) -> None:
    _, call, code, fragment = row
    with pytest.raises(GtdslError) as info:
        call(models[kind])
    _check(info.value, code, fragment, HERE)
    assert isinstance(info.value, TypeError)  # what Python raises for a wrong call


LOGITS_ROWS: list[tuple[str, str, Call, str]] = [
    ("position ids wider", "GPT2",
     lambda m: m.logits(IDS, ONES, position_ids=torch.zeros(2, 4, dtype=torch.int64)),
     "shaped like `ids`"),
    ("position ids past the table", "GPT2",
     lambda m: m.logits(IDS, position_ids=torch.full((2, 3), 16)), "[0, 16)"),
    ("more tokens than positions", "GPT2", lambda m: m.logits(torch.zeros(1, 17,
                                                                          dtype=torch.int64)),
     "more than the model's 16 positions"),
    ("prompt and new tokens past the positions", "GPT2",
     lambda m: m.generate(torch.zeros(1, 10, dtype=torch.int64), 8), "16 positions"),
    ("decoder rows", "T5", lambda m: m.logits(IDS, torch.tensor([[0, 4]])), "rows"),
    ("decoder ids float", "T5", lambda m: m.logits(IDS, torch.zeros(2, 2)), "`dec_ids`"),
]


@pytest.mark.parametrize("row", LOGITS_ROWS, ids=[r[0] for r in LOGITS_ROWS])
def test_bad_logits_arguments_are_gt3001(models: dict[str, Any],
                                         row: tuple[str, str, Call, str]) -> None:
    _, kind, call, fragment = row
    with pytest.raises(GtdslError) as info:
        call(models[kind])
    _check(info.value, "GT3001", fragment, HERE)


def test_a_mask_inferred_from_the_pad_token_is_checked_too(tmp_path: Path) -> None:
    """Without a mask, GPT-2 infers it from the pad token (as transformers' generate does);
    a row that is all padding is refused, naming the inferred mask."""
    folder, _ = _gpt2(tmp_path, pad_token_id=3)
    with pytest.raises(GtdslError) as info:
        GPT2(folder).generate(torch.tensor([[3, 3], [4, 5]]), 2)
    _check(info.value, "GT3001", "inferred from the pad token", HERE)


# ============================================================ config keys of the models
FOLDER_ROWS: list[tuple[str, str, dict[str, Any], str]] = [
    ("prelu", "GPT2", {"activation_function": "prelu"}, "activation_function"),
    ("xielu", "GPT2", {"activation_function": "xielu"}, "activation_function"),
    ("unknown activation", "GPT2", {"activation_function": "swishy"}, "activation_function"),
    ("activation a number", "GPT2", {"activation_function": 3}, "activation_function"),
    ("scale flag a string", "GPT2", {"scale_attn_weights": "yes"}, "scale_attn_weights"),
    ("layer scale flag null", "GPT2", {"scale_attn_by_inverse_layer_idx": None},
     "scale_attn_by_inverse_layer_idx"),
    ("gated prelu", "T5", {"feed_forward_proj": "gated-prelu"}, "feed_forward_proj"),
    ("gated three parts", "T5", {"feed_forward_proj": "gated-gelu-new"}, "feed_forward_proj"),
    ("gated flag", "T5", {"is_gated_act": True}, "is_gated_act"),
    ("activation override", "T5", {"dense_act_fn": "silu"}, "dense_act_fn"),
    ("output scale a string", "T5", {"scale_decoder_outputs": "no"}, "scale_decoder_outputs"),
    ("tie flag a number", "T5", {"tie_word_embeddings": 0}, "tie_word_embeddings"),
]


@pytest.mark.parametrize("row", FOLDER_ROWS, ids=[r[0] for r in FOLDER_ROWS])
def test_computation_keys_gtdsl_does_not_run_are_gt0909(tmp_path: Path,
                                                        row: tuple[str, str, dict, str]) -> None:
    _, kind, change, key = row
    folder, _ = (_gpt2 if kind == "GPT2" else _t5)(tmp_path)
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(GtdslError) as info:
        (GPT2 if kind == "GPT2" else T5)(folder)
    _check(info.value, "GT0909", f"`{key}`", str(folder))


# ============================================================ generation settings
def _saved(**settings: Any) -> Callable[[Path], None]:
    """``generation_config.json`` as transformers' GenerationConfig saves it."""
    def write(folder: Path) -> None:
        from transformers import GenerationConfig

        GenerationConfig(**settings).save_pretrained(folder)
    return write


def _written(**settings: Any) -> Callable[[Path], None]:
    """``generation_config.json`` written as JSON (transformers 5 refuses to save sampling
    settings without ``do_sample``; older versions and hand-edited files hold them)."""
    def write(folder: Path) -> None:
        (folder / "generation_config.json").write_text(json.dumps(settings))
    return write


def _in_config(**settings: Any) -> Callable[[Path], None]:
    """The settings in ``config.json`` (older checkpoints keep them there)."""
    def write(folder: Path) -> None:
        path = folder / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))
    return write


SETTING_ROWS: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("do_sample a number", _written(do_sample=1), "do_sample", "generation_config.json"),
    ("temperature zero", _written(do_sample=True, temperature=0), "temperature",
     "generation_config.json"),
    ("top_k negative", _written(top_k=-1), "top_k", "generation_config.json"),
    ("top_p above 1", _written(top_p=1.5), "top_p", "generation_config.json"),
    ("typical_p", _written(typical_p=0.5), "typical_p", "generation_config.json"),
    ("min_p", _written(min_p=0.1), "min_p", "generation_config.json"),
    ("epsilon_cutoff", _written(epsilon_cutoff=3e-4), "epsilon_cutoff",
     "generation_config.json"),
    ("eta_cutoff", _written(eta_cutoff=1e-3), "eta_cutoff", "generation_config.json"),
    ("contrastive search", _written(penalty_alpha=0.6, top_k=4), "penalty_alpha",
     "generation_config.json"),
    ("repetition_penalty zero", _written(repetition_penalty=0.0), "repetition_penalty",
     "generation_config.json"),
    ("encoder_repetition_penalty", _saved(encoder_repetition_penalty=1.2),
     "encoder_repetition_penalty", "generation_config.json"),
    ("no_repeat_ngram_size a float", _written(no_repeat_ngram_size=2.0),
     "no_repeat_ngram_size", "generation_config.json"),
    ("encoder_no_repeat_ngram_size", _saved(encoder_no_repeat_ngram_size=2),
     "encoder_no_repeat_ngram_size", "generation_config.json"),
    ("bad_words_ids", _saved(bad_words_ids=[[4]]), "bad_words_ids", "generation_config.json"),
    ("force_words_ids", _saved(force_words_ids=[[4]]), "force_words_ids",
     "generation_config.json"),
    ("sequence_bias", _saved(sequence_bias={(4,): -1.0}), "sequence_bias",
     "generation_config.json"),
    ("suppress_tokens", _saved(suppress_tokens=[4]), "suppress_tokens",
     "generation_config.json"),
    ("begin_suppress_tokens", _saved(begin_suppress_tokens=[4]), "begin_suppress_tokens",
     "generation_config.json"),
    ("forced_bos_token_id", _saved(forced_bos_token_id=4), "forced_bos_token_id",
     "generation_config.json"),
    ("forced_eos_token_id", _saved(forced_eos_token_id=4), "forced_eos_token_id",
     "generation_config.json"),
    ("exponential_decay_length_penalty", _saved(exponential_decay_length_penalty=(2, 1.5)),
     "exponential_decay_length_penalty", "generation_config.json"),
    ("min_length negative", _written(min_length=-5), "min_length", "generation_config.json"),
    ("min_new_tokens a string", _written(min_new_tokens="3"), "min_new_tokens",
     "generation_config.json"),
    ("num_return_sequences zero", _written(num_return_sequences=0), "num_return_sequences",
     "generation_config.json"),
    ("num_beams zero", _written(num_beams=0), "num_beams", "generation_config.json"),
    ("diverse beams", _saved(num_beam_groups=2, num_beams=4, diversity_penalty=0.5),
     "num_beam_groups", "generation_config.json"),
    ("guidance_scale", _saved(guidance_scale=1.5), "guidance_scale",
     "generation_config.json"),
    ("dola_layers", _saved(dola_layers="low"), "dola_layers", "generation_config.json"),
    ("max_time", _saved(max_time=1.0), "max_time", "generation_config.json"),
    ("stop_strings", _saved(stop_strings=["x"]), "stop_strings", "generation_config.json"),
    ("token_healing", _saved(token_healing=True), "token_healing", "generation_config.json"),
    ("do_sample a string", _written(do_sample="true"), "do_sample", "generation_config.json"),
    ("top_k a bool", _written(top_k=True), "top_k", "generation_config.json"),
    ("do_sample a string in config.json", _in_config(do_sample="yes"), "do_sample",
     "config.json"),
    ("typical_p in config.json", _in_config(typical_p=0.2), "typical_p", "config.json"),
    ("a list", lambda f: (f / "generation_config.json").write_text("[1]"), "JSON object",
     "generation_config.json"),
    ("duplicate keys",
     lambda f: (f / "generation_config.json").write_text('{"do_sample": false, '
                                                         '"do_sample": true}'),
     "more than once", "generation_config.json"),
    ("a folder", lambda f: (f / "generation_config.json").mkdir(), "not a regular file",
     "generation_config.json"),
    ("a FIFO", lambda f: os.mkfifo(f / "generation_config.json"), "not a regular file",
     "generation_config.json"),
]


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("row", SETTING_ROWS, ids=[r[0] for r in SETTING_ROWS])
def test_generation_settings_gtdsl_does_not_implement_are_gt0909(
        tmp_path: Path, kind: str, row: tuple[str, Callable[[Path], None], str, str]) -> None:
    _, write, key, file = row
    folder, _ = (_gpt2 if kind == "GPT2" else _t5)(tmp_path)
    write(folder)
    model = (GPT2 if kind == "GPT2" else T5)(folder)  # loading (logits) does not decode
    for call in (lambda: model.generate(IDS, 3), lambda: model.beam_search(IDS, 3, 2)):
        with pytest.raises(GtdslError) as info:
            call()
        _check(info.value, "GT0909", f"`{key}`" if key.isidentifier() else key,
               str(folder / file))
        assert f"`{file}`" in str(info.value)
    assert model.logits(IDS, *([] if kind == "GPT2" else [IDS])).shape[-1] == 31


@pytest.mark.parametrize("settings,eos", [
    ({"bad_words_ids": [[21]]}, None),
    ({"forced_eos_token_id": 3}, None),
    ({"suppress_tokens": [17]}, None),
    ({"do_sample": True, "typical_p": 0.2}, None),
])
def test_refused_settings_change_transformers_tokens(tmp_path: Path, settings: dict[str, Any],
                                                     eos: int | None) -> None:
    """Ignoring a refused setting would be a wrong answer: transformers' tokens change (the
    greedy continuation here is 21 17 24 24 24 24; with the end token 24 it stops there)."""
    from transformers import GenerationConfig

    folder, hf = _gpt2(tmp_path, eos_token_id=None)
    ids = torch.tensor([[5, 6, 7, 5, 6, 7]])
    plain = hf.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=eos,
                        pad_token_id=0)
    assert plain[0, 6:].tolist() == [21, 17, 24, 24, 24, 24][:3 if eos else 6]
    ours = GPT2(folder).generate(ids, 6, eos_token_id=[] if eos is None else eos)
    assert torch.equal(ours, plain)
    torch.manual_seed(0)
    changed = hf.generate(ids, max_new_tokens=6, eos_token_id=eos, pad_token_id=0,
                          generation_config=GenerationConfig(**settings))
    assert not torch.equal(changed, plain)


def test_the_generate_command_refuses_settings_it_does_not_implement(tmp_path: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder, _ = _gpt2(tmp_path)
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(31)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    _saved(do_sample=True, top_p=0.9, typical_p=0.5)(folder)
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(folder), "w5 w9", "--max-new-tokens", "3"], out, err) == 2
    text = err.getvalue()
    assert "GT0909" in text and "`typical_p`" in text
    assert str(folder / "generation_config.json") in text and "Traceback" not in text
    assert out.getvalue() == ""


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("beams,n", [(10 ** 8, 2), (1, 10 ** 10)])
def test_decoding_that_cannot_fit_in_memory_is_refused_before_it_runs(
        models: dict[str, Any], kind: str, beams: int, n: int) -> None:
    m = models[kind]
    ids = torch.tensor([[3, 4, 5]])
    for call in ((lambda: m.beam_search(ids, n, beams)),) + (
            ((lambda: m.generate(ids, n)),) if beams == 1 else ()):
        with pytest.raises(GtdslError) as err:
            call()
        _check(err.value, "GT3001", "more than half of this machine's memory")


@pytest.mark.parametrize("flags", [["--beams", "100000000"], ["--max-new-tokens", "10000000"]])
def test_the_generate_command_caps_its_counts(tmp_path: Path, flags: list[str]) -> None:
    folder, _ = _gpt2(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(folder), "w5 w9", *flags], out, err) == 2
    assert "GT0906" in err.getvalue() and "at most" in err.getvalue()
    assert out.getvalue() == ""


def test_a_prompt_longer_than_the_positions_says_the_limit(tmp_path: Path) -> None:
    """From the Python API (ids or text, generating, streaming or scoring) and from the
    command line: a diagnostic that names the model's 16 positions, never a torch error."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    folder, _ = _gpt2(tmp_path)
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(31)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    model = GPT2(folder)
    long_ids = torch.randint(1, 31, (1, 20), generator=torch.Generator().manual_seed(0))
    long_text = " ".join(f"w{i}" for i in range(1, 21))
    for call in (lambda: model.generate(long_ids, 1),
                 lambda: model.generate(long_ids[:, :12], 8, do_sample=True),
                 lambda: list(model.stream(long_ids, 2)),
                 lambda: model.beam_search(long_ids, 2, 2),
                 lambda: model.logits(long_ids),
                 lambda: model.generate_text(long_text, 2),
                 lambda: model.generate_text(" ".join(f"w{i}" for i in range(1, 11)), 10)):
        with pytest.raises(GtdslError) as info:
            call()
        assert "16 positions" in str(info.value), str(info.value)
        assert info.value.diagnostic.location
    for text, n in ((long_text, 2), ("w5 w6 w7", 20)):
        out, err = io.StringIO(), io.StringIO()
        assert main(["generate", str(folder), text, "--max-new-tokens", str(n)], out, err) == 1
        assert "16 positions" in err.getvalue() and "Traceback" not in err.getvalue()
        assert out.getvalue() == ""
    for call, fragment in ((lambda: model.generate_texts("w5", "3"), "`max_new_tokens`"),
                           (lambda: model.generate_texts("w5", 3, stream=5), "`stream`"),
                           (lambda: model.generate_texts("", 3), "empty"),
                           (lambda: model.generate_text(["w5"], 3), "`prompt`")):
        with pytest.raises(GtdslError) as info:
            call()
        assert info.value.diagnostic.code == "GT3001" and fragment in str(info.value)
