"""Generation with transformers' names and semantics: sampling (temperature, top-k, top-p),
the repetition penalty, the n-gram ban, minimum lengths, several answers per prompt, a
``generator`` for reproducible draws, and streaming.

Oracles: each processor against transformers' own processor on the same ids and scores;
end to end, transformers' ``generate`` on the same weights with the same global seed (the
draws are the same ``torch.multinomial`` calls, so the tokens are equal); a statistical test
of the first token's distribution against softmax(logits / T); the nucleus computed from the
logits for top-p."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from gtdsl.models import processors as P
from gtdsl.models.gpt2 import GPT2
from gtdsl.models.t5 import T5
from tests.unit.models.hf import padded, save_folder

# gtdsl's generate follows transformers 5.21 and newer (seen: 5.25): the repetition penalty
# skips each row's left padding (a per-row prompt_ignore_length), and beam search with
# sampling draws as those releases draw. transformers 5.20, the newest for Python 3.10,
# predates both; there those comparisons have no oracle (the 3.11-3.13 cells run them).
_HF = tuple(int(p) for p in __import__("transformers").__version__.split(".")[:2])
_OLD_HF = f"transformers {'.'.join(map(str, _HF))} predates the generate gtdsl follows (5.21+)"
NEWER_HF = pytest.mark.skipif(_HF < (5, 21), reason=_OLD_HF)


# ------------------------------------------------------------------ processors, one by one
def _ids_scores(seed: int, rows: int = 4, length: int = 9, vocab: int = 23
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids drawn from a small range (so they repeat) and scores with ties and signs mixed."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 7 if seed % 2 else vocab, (rows, length), generator=g)
    scores = torch.randn(rows, vocab, generator=g) * 3
    scores[:, :4] = scores[:, :1]  # ties
    return ids, scores


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("penalty", [1.7, 0.6])
def test_repetition_penalty_equals_transformers(seed: int, penalty: float) -> None:
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    ids, scores = _ids_scores(seed)
    want = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores.clone())
    assert torch.equal(P.repetition_penalty(ids, scores, penalty), want)
    if _HF < (5, 21):
        pytest.skip(_OLD_HF)
    ignore = torch.tensor([0, 3, 9, 1])  # left padding skipped, as generate passes it
    want = RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=ignore)(
        ids, scores.clone())
    assert torch.equal(P.repetition_penalty(ids, scores, penalty, ignore), want)
    assert not torch.equal(want, scores)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 2, 3, 4, 9, 10, 11])
def test_no_repeat_ngram_equals_transformers(seed: int, n: int) -> None:
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    ids, scores = _ids_scores(seed)
    for length in (0, 1, n - 1, n, ids.shape[1]):
        part = ids[:, :max(length, 0)]
        want = NoRepeatNGramLogitsProcessor(n)(part, scores.clone())
        assert torch.equal(P.no_repeat_ngram(part, scores, n), want), (n, length)


def test_no_repeat_ngram_bans_something() -> None:
    ids = torch.tensor([[5, 6, 7, 5, 6]])
    out = P.no_repeat_ngram(ids, torch.zeros(1, 9), 3)
    assert out[0].isinf().nonzero().flatten().tolist() == [7]  # 5 6 7 would repeat


@pytest.mark.parametrize("seed", range(4))
def test_minimum_lengths_equal_transformers(seed: int) -> None:
    from transformers.generation.logits_process import (MinLengthLogitsProcessor,
                                                        MinNewTokensLengthLogitsProcessor)

    ids, scores = _ids_scores(seed)
    eos = torch.tensor([2, 5])
    for length in range(ids.shape[1] + 1):
        part = ids[:, :length]
        want = MinLengthLogitsProcessor(6, eos)(part, scores.clone())
        s = P.Processors({"min_length": 6}, eos, 0)
        assert torch.equal(s(part, scores), want)
        want = MinNewTokensLengthLogitsProcessor(3, 4, eos)(part, scores.clone())
        s = P.Processors({"min_new_tokens": 4}, eos, 3)
        assert torch.equal(s(part, scores), want)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("keep", [1, 3])
def test_warpers_equal_transformers(seed: int, keep: int) -> None:
    from transformers.generation.logits_process import (TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    ids, scores = _ids_scores(seed)
    for t in (0.3, 1.0, 2.5):
        assert torch.equal(P.temperature(scores, t), TemperatureLogitsWarper(t)(ids, scores))
    for k in (1, 2, 4, 5, 23, 40):
        want = TopKLogitsWarper(k, min_tokens_to_keep=keep)(ids, scores.clone())
        assert torch.equal(P.top_k(scores, k, keep), want), k
    for p in (0.0, 0.1, 0.5, 0.9, 0.999, 1.0):
        want = TopPLogitsWarper(p, min_tokens_to_keep=keep)(ids, scores.clone())
        assert torch.equal(P.top_p(scores, p, keep), want), p


def test_processors_apply_in_transformers_order() -> None:
    """The list transformers builds for the same settings, applied to the same ids and
    scores, gives the same scores (greedy: processors only; sampling: then the warpers)."""
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=23, n_positions=32, n_embd=8, n_layer=1,
                                       n_head=2))
    ids, scores = _ids_scores(3)
    settings = dict(repetition_penalty=1.4, no_repeat_ngram_size=2, min_new_tokens=9,
                    temperature=0.7, top_k=8, top_p=0.8)
    for sample in (False, True):
        config = GenerationConfig(do_sample=sample, eos_token_id=[3, 4], **settings)
        config._eos_token_tensor = torch.tensor([3, 4])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = model._get_logits_processor(config, input_ids_seq_length=4,
                                             encoder_input_ids=ids, device="cpu")
        ours = P.Processors(settings, torch.tensor([3, 4]), 4, sample=sample)
        assert torch.equal(ours(ids, scores), hf(ids, scores.clone()))


# ------------------------------------------------------------------ the models, end to end
@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    base = tmp_path_factory.mktemp("gen")
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=61, n_positions=64, n_embd=32, n_layer=2,
                                      n_head=2, bos_token_id=0, eos_token_id=3,
                                      pad_token_id=0)).eval()
    torch.manual_seed(1)
    t5 = T5ForConditionalGeneration(T5Config(
        vocab_size=53, d_model=24, d_kv=6, d_ff=40, num_layers=2, num_heads=3,
        relative_attention_num_buckets=8, relative_attention_max_distance=20,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        initializer_factor=1.0)).eval()
    return {"GPT2": (GPT2(save_folder(gpt2, base / "gpt2")), gpt2),
            "T5": (T5(save_folder(t5, base / "t5")), t5)}


GRID: list[dict[str, Any]] = [
    dict(do_sample=True),
    dict(do_sample=True, temperature=0.7, top_k=10),
    dict(do_sample=True, top_p=0.8),
    dict(do_sample=True, temperature=1.6, top_k=0, top_p=0.95),
    dict(repetition_penalty=1.8),
    dict(no_repeat_ngram_size=2),
    dict(no_repeat_ngram_size=1, repetition_penalty=0.7),
    dict(min_new_tokens=6),
    dict(min_length=7),
    dict(do_sample=True, num_return_sequences=3, top_p=0.9, repetition_penalty=1.3),
    dict(num_beams=3, num_return_sequences=2, repetition_penalty=2.0, no_repeat_ngram_size=2),
    dict(num_beams=3, num_return_sequences=3, length_penalty=0.5),
    dict(num_beams=3, do_sample=True, temperature=1.5, num_return_sequences=3),
    dict(num_beams=2, min_new_tokens=5, do_sample=True, top_k=5),
    dict(num_beams=3, do_sample=True, top_k=4),  # fewer tokens than candidates at first
    dict(num_beams=3, do_sample=True, top_p=0.9, temperature=1.5, eos_token_id=[3, 8, 20]),
]


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("settings", [pytest.param(
    g, id=",".join(f"{k}={v}" for k, v in g.items()),
    marks=NEWER_HF if g.get("num_beams", 1) > 1 and g.get("do_sample") else ()) for g in GRID])
def test_generate_equals_transformers_seed_for_seed(models: dict[str, Any], kind: str,
                                                    settings: dict[str, Any]) -> None:
    """With the same global seed, transformers' ``generate`` and gtdsl's draw the same
    tokens: the same processors, and the same ``torch.multinomial`` calls on the same
    probabilities."""
    ours, hf = models[kind]
    ids = torch.randint(4, 50, (2, 5), generator=torch.Generator().manual_seed(7))
    outputs = set()
    for seed in range(3):
        torch.manual_seed(seed)
        want = hf.generate(ids, max_new_tokens=8, attention_mask=torch.ones_like(ids),
                           **settings)
        torch.manual_seed(seed)
        got = ours.generate(ids, 8, **settings)
        assert torch.equal(got, want), (seed, got.tolist(), want.tolist())
        outputs.add(str(got.tolist()))
    if settings.get("do_sample"):
        assert len(outputs) > 1  # the seed matters: these are draws


@pytest.mark.parametrize("settings", [dict(do_sample=True, repetition_penalty=1.5),
                                      pytest.param(dict(num_beams=2, repetition_penalty=3.0,
                                                        no_repeat_ngram_size=2),
                                                   marks=NEWER_HF)])
def test_padded_prompts_equal_transformers(models: dict[str, Any],
                                           settings: dict[str, Any]) -> None:
    """Left padding (GPT-2): the repetition penalty skips it, as transformers' generate."""
    ours, hf = models["GPT2"]
    ids, mask = padded([6, 2, 4], 6, 61, 0, 5, left=True)
    for seed in range(3):
        torch.manual_seed(seed)
        want = hf.generate(ids, attention_mask=mask, max_new_tokens=7, **settings)
        torch.manual_seed(seed)
        assert torch.equal(ours.generate(ids, 7, attention_mask=mask, **settings), want)


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
def test_top_k_1_is_greedy(models: dict[str, Any], kind: str) -> None:
    ours = models[kind][0]
    ids = torch.randint(4, 50, (3, 4), generator=torch.Generator().manual_seed(2))
    greedy = ours.generate(ids, 10)
    for seed in range(3):
        got = ours.generate(ids, 10, do_sample=True, top_k=1, temperature=3.0,
                            generator=torch.Generator().manual_seed(seed))
        assert torch.equal(got, greedy)


def _first_logits(kind: str, hf: Any, ids: torch.Tensor) -> torch.Tensor:
    """transformers' next-token logits after ``ids`` (a T5: the decoder's first token's)."""
    with torch.no_grad():
        out = hf(ids) if kind == "GPT2" else hf(
            input_ids=ids, decoder_input_ids=torch.zeros(1, 1, dtype=torch.int64))
    return out.logits[0, -1]


def _chi_square_p(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """The p-value of Pearson's chi-square test of ``counts`` against ``probs`` (cells with
    an expected count under 5 pooled into one)."""
    n = float(counts.sum())
    expected = probs.double() * n
    small = expected < 5
    obs = torch.cat([counts[~small].double(), counts[small].double().sum()[None]])
    exp = torch.cat([expected[~small], expected[small].sum()[None]])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    stat = float(((obs - exp) ** 2 / exp).sum())
    dof = len(obs) - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("t", [0.6, 1.0, 1.8])
def test_first_token_distribution_is_softmax_over_temperature(models: dict[str, Any],
                                                             kind: str, t: float) -> None:
    """6,000 first tokens drawn with temperature T (no top-k or top-p) follow
    softmax(logits / T): a chi-square test, and the same test rejects softmax(logits)."""
    ours, hf = models[kind]
    ids = torch.tensor([[7, 9, 11, 13]])
    logits = _first_logits(kind, hf, ids)
    logits = logits * 4  # a peaked distribution, so that the temperature shows
    ours_scaled = _Scaled(ours, 4.0)
    draws = ours_scaled.first_tokens(ids, t, 6000, seed=11)
    counts = torch.bincount(draws, minlength=logits.shape[-1])
    assert _chi_square_p(counts, torch.softmax(logits / t, -1)) > 1e-3
    if t != 1.0:
        assert _chi_square_p(counts, torch.softmax(logits, -1)) < 1e-6


class _Scaled:
    """A model whose logits are scaled by ``factor`` before decoding (a sharper
    distribution), by wrapping its ``_decoder``."""

    def __init__(self, model: Any, factor: float) -> None:
        self.model, self.factor = model, factor

    def first_tokens(self, ids: torch.Tensor, t: float, n: int, seed: int) -> torch.Tensor:
        m = self.model
        original = m._decoder

        def scaled(*args: Any) -> Any:
            prompt, first, advance = original(*args)
            return prompt, first * self.factor, advance
        m._decoder = scaled
        try:
            out = m.generate(ids, 1, do_sample=True, temperature=t, top_k=0,
                             num_return_sequences=n, eos_token_id=[],
                             generator=torch.Generator().manual_seed(seed))
        finally:
            del m._decoder
        return out[:, -1]


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
@pytest.mark.parametrize("p", [0.3, 0.6, 0.9])
def test_top_p_never_leaves_the_nucleus(models: dict[str, Any], kind: str, p: float) -> None:
    """Every token drawn with top_p lies in the nucleus: the most likely tokens whose
    probabilities first add up to p (computed here from the logits, in float64)."""
    ours, hf = models[kind]
    ids = torch.tensor([[7, 9, 11, 13]])
    logits = _first_logits(kind, hf, ids)
    probs = torch.softmax(logits.double(), -1)
    order = probs.argsort(descending=True)
    mass = probs[order].cumsum(0)
    size = int((mass < p).sum()) + 1  # the smallest prefix holding p
    nucleus = set(order[:size].tolist())
    out = ours.generate(ids, 1, do_sample=True, top_p=p, top_k=0, num_return_sequences=3000,
                        eos_token_id=[], generator=torch.Generator().manual_seed(3))
    drawn = set(out[:, -1].tolist())
    assert drawn <= nucleus, (drawn - nucleus, size)
    assert len(drawn) == len(nucleus) or len(drawn) > 1  # not vacuous: several tokens drawn


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
def test_a_generator_makes_sampling_reproducible(models: dict[str, Any], kind: str) -> None:
    ours = models[kind][0]
    ids = torch.randint(4, 50, (2, 4), generator=torch.Generator().manual_seed(4))

    def draw(seed: int) -> torch.Tensor:
        return ours.generate(ids, 12, do_sample=True, temperature=1.3,
                             generator=torch.Generator().manual_seed(seed))
    state = torch.get_rng_state()
    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------ settings from the folder
def test_generation_config_settings_apply_as_in_transformers(tmp_path: Path) -> None:
    """``generation_config.json`` (when the folder has one; else config.json) gives the
    defaults: transformers, reading the same folder with the same seed, draws the same."""
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=61, n_positions=64, n_embd=32, n_layer=2,
                                    n_head=2, bos_token_id=0, eos_token_id=3)).eval()
    folder = tmp_path / "model"
    hf.save_pretrained(folder)
    GenerationConfig(do_sample=True, temperature=0.8, top_k=12, top_p=0.9,
                     repetition_penalty=1.3, no_repeat_ngram_size=3, min_new_tokens=4,
                     eos_token_id=3, bos_token_id=0).save_pretrained(folder)
    back = GPT2LMHeadModel.from_pretrained(folder).eval()
    ours = GPT2(folder)
    ids = torch.randint(4, 50, (2, 5), generator=torch.Generator().manual_seed(1))
    for seed in range(3):
        torch.manual_seed(seed)
        want = back.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=9)
        torch.manual_seed(seed)
        assert torch.equal(ours.generate(ids, 9), want)
    # a keyword argument overrides the folder, as in transformers
    torch.manual_seed(0)
    want = back.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=9,
                         do_sample=False)
    assert torch.equal(ours.generate(ids, 9, do_sample=False), want)
    # config.json's settings apply only without a generation_config.json, as in transformers
    (folder / "generation_config.json").unlink()
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "repetition_penalty": 5.0,
                                                    "no_repeat_ngram_size": 1}))
    back = GPT2LMHeadModel.from_pretrained(folder).eval()
    want = back.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=9)
    assert torch.equal(GPT2(folder).generate(ids, 9), want)
    assert not torch.equal(want, hf.generate(ids, attention_mask=torch.ones_like(ids),
                                             max_new_tokens=9, do_sample=False))


def test_config_json_is_not_read_beside_a_generation_config(tmp_path: Path) -> None:
    """With a ``generation_config.json``, transformers reads no generation setting from
    config.json (not its end token, length penalty, early stopping, nor a setting gtdsl
    would refuse): neither does gtdsl, and the tokens are transformers'."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=61, n_positions=64, n_embd=32, n_layer=2,
                                    n_head=2, bos_token_id=0, eos_token_id=3)).eval()
    folder = tmp_path / "model"
    hf.save_pretrained(folder)
    ids = torch.tensor([[5, 7, 9, 11]])
    greedy = GPT2(folder).generate(ids, 6, num_beams=3)
    config = json.loads((folder / "config.json").read_text())
    word = int(greedy[0, 5])  # a token the beams emit: as an end token it would stop them
    (folder / "config.json").write_text(json.dumps({
        **config, "eos_token_id": word, "length_penalty": -5.0, "early_stopping": True,
        "bad_words_ids": [[word]]}))
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 0}))
    back = GPT2LMHeadModel.from_pretrained(folder).eval()
    want = back.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                         num_beams=3)
    got = GPT2(folder).generate(ids, 6, num_beams=3)
    assert torch.equal(got, want) and word in got[0, 4:].tolist()


def test_warpers_without_sampling_warn_and_do_nothing(models: dict[str, Any]) -> None:
    ours = models["GPT2"][0]
    ids = torch.tensor([[5, 6, 7]])
    with pytest.warns(UserWarning, match="only apply when sampling"):
        got = ours.generate(ids, 6, temperature=0.3, top_k=2)
    assert torch.equal(got, ours.generate(ids, 6))


# ------------------------------------------------------------------ streaming
@pytest.mark.parametrize("kind", ["GPT2", "T5"])
def test_streaming_gives_the_tokens_as_they_come(models: dict[str, Any], kind: str) -> None:
    ours = models[kind][0]
    ids = torch.randint(4, 50, (1, 4), generator=torch.Generator().manual_seed(8))
    full = ours.generate(ids, 10, do_sample=True, generator=torch.Generator().manual_seed(1))
    start = ids.shape[1] if kind == "GPT2" else 1
    got: list[int] = []
    out = ours.generate(ids, 10, do_sample=True, generator=torch.Generator().manual_seed(1),
                        streamer=lambda tokens: got.extend(tokens.tolist()))
    assert torch.equal(out, full) and got == full[0, start:].tolist()
    steps = list(ours.stream(ids, 10, do_sample=True,
                             generator=torch.Generator().manual_seed(1)))
    assert [int(t[0]) for t in steps] == full[0, start:].tolist()

    class Streamer:  # transformers' streamer protocol: the prompt, each token, the end
        def __init__(self) -> None:
            self.calls: list[Any] = []

        def put(self, value: torch.Tensor) -> None:
            self.calls.append(value.tolist())

        def end(self) -> None:
            self.calls.append("end")
    s = Streamer()
    ours.generate(ids, 10, do_sample=True, generator=torch.Generator().manual_seed(1),
                  streamer=s)
    prompt = ids if kind == "GPT2" else torch.zeros(1, 1, dtype=torch.int64)
    assert s.calls == [prompt.tolist(), *([t] for t in full[0, start:].tolist()), "end"]


def test_transformers_text_streamer_prints_what_generate_decodes(
        models: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """transformers' own ``TextStreamer`` is a streamer gtdsl feeds: it prints the text that
    decoding the output gives (with transformers' reference output as the oracle)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast, TextStreamer

    ours, hf = models["GPT2"]
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(61)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    ids = torch.tensor([[5, 9, 14]])
    torch.manual_seed(3)
    want = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8,
                       do_sample=True, streamer=TextStreamer(fast, skip_prompt=True))
    printed_hf = capsys.readouterr().out
    torch.manual_seed(3)
    got = ours.generate(ids, 8, do_sample=True, streamer=TextStreamer(fast, skip_prompt=True))
    assert torch.equal(got, want) and capsys.readouterr().out == printed_hf
    assert printed_hf.split() == [f"w{i}" for i in want[0, 3:].tolist()]


def test_sampling_with_nothing_left_to_draw_is_a_diagnostic(models: dict[str, Any]) -> None:
    """A vocabulary the n-gram ban empties (every token already follows the prefix) cannot be
    sampled from: a located diagnostic, not a torch error."""
    from gtdsl.diagnostics import GtdslError

    ours = models["GPT2"][0]
    ids = torch.arange(61)[None].repeat(1, 2)[:, :64 - 3]  # every token seen once
    with pytest.raises(GtdslError) as err:
        ours.generate(ids, 2, do_sample=True, no_repeat_ngram_size=1)
    assert err.value.diagnostic.code == "GT3001" and "sample" in str(err.value)


# ------------------------------------------------------------------ text and the command line
class _Recorder:
    """A text output that records each write (a stream writes piece by piece)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def write(self, text: str) -> int:
        self.pieces.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.pieces)


def _with_tokenizer(folder: Path, vocab: int) -> Any:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w0"))
    tok.pre_tokenizer = Whitespace()
    tok.save(str(folder / "tokenizer.json"))
    return tok


@pytest.mark.parametrize("kind", ["GPT2", "T5"])
def test_the_generate_command_samples_streams_and_answers_several_times(
        models: dict[str, Any], kind: str) -> None:
    """``gtdsl generate`` with sampling flags prints what ``generate`` gives for the same
    settings and seed; ``--stream`` prints the same text piece by piece as the tokens come."""
    import io

    from gtdsl.cli.main import main

    ours, hf = models[kind]
    tok = _with_tokenizer(ours.dir, 61 if kind == "GPT2" else 53)
    prompt = "w5 w9 w13"
    ids = torch.tensor([tok.encode(prompt).ids])
    flags = ["--max-new-tokens", "9", "--do-sample", "--temperature", "1.4", "--top-k", "20",
             "--top-p", "0.95", "--repetition-penalty", "1.2", "--seed", "4"]
    want = ours.generate(ids, 9, do_sample=True, temperature=1.4, top_k=20, top_p=0.95,
                         repetition_penalty=1.2, generator=torch.Generator().manual_seed(4))
    text = tok.decode(want[0].tolist())
    assert len(text.split()) > (5 if kind == "GPT2" else 2)
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(ours.dir), prompt, *flags], out, err) == 0, err.getvalue()
    assert out.getvalue() == text + "\n"
    streamed = _Recorder()
    assert main(["generate", str(ours.dir), prompt, *flags, "--stream"], streamed, err) == 0
    assert streamed.getvalue() == text + "\n" and len(streamed.pieces) > 3
    out = io.StringIO()
    assert main(["generate", str(ours.dir), prompt, "--max-new-tokens", "6", "--beams", "3",
                 "--num-return-sequences", "2", "--no-repeat-ngram-size", "2"], out, err) == 0
    torch.manual_seed(0)
    want = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                       num_beams=3, num_return_sequences=2, no_repeat_ngram_size=2)
    assert out.getvalue() == "".join(tok.decode(r.tolist()) + "\n" for r in want)


@pytest.mark.parametrize("flags,fragment", [
    (["--temperature", "0"], "--temperature must be a number > 0"),
    (["--top-p", "1.5"], "--top-p must be a number from 0 to 1"),
    (["--top-k", "-1"], "--top-k must be an integer >= 0"),
    (["--repetition-penalty", "-2"], "--repetition-penalty must be a number > 0"),
    (["--num-return-sequences", "0"], "--num-return-sequences must be an integer >= 1"),
    (["--stream", "--beams", "2"], "--stream shows one answer"),
    (["--stream", "--do-sample", "--num-return-sequences", "2"], "--stream shows one answer"),
    (["--seed", "-1"], "--seed must be"),
    (["--temperature", "warm"], "--temperature"),
    (["--num-return-sequences", "2"], "greedy decoding"),
])
def test_the_generate_command_refuses_bad_flags(models: dict[str, Any], flags: list[str],
                                                fragment: str) -> None:
    import io

    from gtdsl.cli.main import main

    ours = models["GPT2"][0]
    _with_tokenizer(ours.dir, 61)
    out, err = io.StringIO(), io.StringIO()
    assert main(["generate", str(ours.dir), "w5", *flags], out, err) in (1, 2)
    assert fragment in err.getvalue() and "error[GT" in err.getvalue()
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""


def test_a_text_stream_adds_up_to_the_decoded_text() -> None:
    """Pieces are written only once final: a word in pieces (WordPiece's ``##``) or a
    character in bytes waits for the rest, and the pieces add up to the decoded text."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import WordPiece

    from gtdsl.models.search import TextStream

    vocab = {"[UNK]": 0, "play": 1, "##ing": 2, "the": 3, "game": 4, "##s": 5, "now": 6}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.decoder = decoders.WordPiece()
    pieces: list[str] = []
    s = TextStream(lambda ids: tok.decode(ids), pieces.append)
    s.put(torch.tensor([[3]]))
    for t in (1, 2, 3, 4, 5, 6):
        s.put(torch.tensor([t]))
        assert not any(p.endswith("play") or p.endswith("game") for p in pieces)
    s.end()
    assert "".join(pieces) == tok.decode([3, 1, 2, 3, 4, 5, 6]) == "the playing the games now"
    assert len(pieces) >= 3
