"""The decoding loops against brute-force enumeration: with enough beams to hold every live
prefix and ``early_stopping="never"`` (whose bound is exact), beam search must return the best
of all complete sequences, each scored by log-probability / length ** penalty. The model is a
table of random logits indexed by the whole prefix, kept by ``advance`` through its row
reordering, so a wrong reorder changes the answer."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gtdsl.models import search

V = 3  # tokens 0, 1, 2; the end token is 2


class TableModel:
    """Next-token logits as a fixed random function of the whole prefix."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def logits(self, prefix: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(hash((self.seed, prefix)) % (2 ** 31))
        return torch.randn(V, generator=g) * 2.0

    def decoder(self, prompt: torch.Tensor, beams: int):
        rows = [tuple(p) for p in prompt.tolist() for _ in range(beams)]
        state = [rows]

        def advance(order: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
            prev = state[0] if order is None else [state[0][i] for i in order.tolist()]
            state[0] = [p + (t,) for p, t in zip(prev, tokens[:, 0].tolist())]
            return torch.stack([self.logits(p) for p in state[0]])

        first = torch.stack([self.logits(tuple(p)) for p in prompt.tolist()])
        return first, advance


def brute_force(model: TableModel, prompt: tuple[int, ...], n: int, eos: int,
                penalty: float) -> tuple[int, ...]:
    best, best_score = None, -math.inf
    for length in range(1, n + 1):
        for seq in itertools.product(range(V), repeat=length):
            if eos in seq[:-1] or (length < n and seq[-1] != eos):
                continue  # complete: ends with the end token, or reaches the limit
            score, prefix = 0.0, prompt
            for t in seq:
                score += torch.log_softmax(model.logits(prefix).float(), -1)[t].item()
                prefix = prefix + (t,)
            score /= length ** penalty
            if score > best_score:
                best, best_score = seq, score
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("penalty", [1.0, 0.0, 2.0, -0.5])
def test_enough_beams_find_the_best_sequence(seed: int, penalty: float) -> None:
    n, beams = 4, 24  # (V - 1) ** 3 * V = 24 candidates at the last step: none is dropped
    model = TableModel(seed)
    prompt = torch.tensor([[0, 1], [1, 1]])
    first, advance = model.decoder(prompt, beams)
    got = search.beam_search(first, prompt, advance, beams, n, eos_token_id=2, pad_token_id=0,
                             length_penalty=penalty, early_stopping="never")
    for row, p in zip(got.tolist(), prompt.tolist()):
        want = brute_force(model, tuple(p), n, 2, penalty)
        gen = row[2:]
        # the shorter answer of the batch is filled after its end token
        assert tuple(gen[:len(want)]) == want and all(t == 2 for t in gen[len(want):]), \
            (row, want)


def test_the_searches_differ_with_penalty() -> None:
    """The oracle is not vacuous: the length penalty changes the best sequence somewhere."""
    answers = {penalty: tuple(brute_force(TableModel(s), (0, 1), 4, 2, penalty)
                              for s in range(6)) for penalty in (0.0, 2.0)}
    assert answers[0.0] != answers[2.0]


def test_greedy_stops_at_the_end_token_and_pads() -> None:
    model = TableModel(0)
    prompt = torch.tensor([[0], [1], [2]])
    first, advance = model.decoder(prompt, 1)
    got = search.greedy(first, prompt, advance, 6, eos_token_id=[2], pad_token_id=0).tolist()
    for row in got:
        prefix, done = (row[0],), False
        for t in row[1:]:
            if done:
                assert t == 0
                continue
            assert t == int(model.logits(prefix).argmax())
            prefix, done = prefix + (t,), t == 2


def test_bad_settings_are_refused() -> None:
    first, advance = TableModel(0).decoder(torch.tensor([[0]]), 2)
    with pytest.raises(ValueError, match="early_stopping"):
        search.beam_search(first, torch.tensor([[0]]), advance, 2, 3, 2, 0,
                           early_stopping="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        search.beam_search(first, torch.tensor([[0]]), advance, 0, 3, 2, 0)


def test_transformers_defaults_are_no_ops() -> None:
    """Every refused setting is one transformers knows, and its default (as transformers'
    GenerationConfig fills it in, or unset) loads."""
    from transformers import GenerationConfig

    known = set(GenerationConfig().to_dict())
    defaults = GenerationConfig._get_default_generation_params()
    for key in search.NO_OP:
        assert key in known, key
        assert search.is_no_op(key, defaults.get(key)), key
        assert search.is_no_op(key, None), key
    # the settings gtdsl implements default to transformers' defaults, and none is refused
    for key, (ok, _, default) in search.SETTINGS.items():
        assert key in known and key not in search.NO_OP, key
        # (min_new_tokens has no default there: unset, which 0 equals)
        assert default == defaults.get(key, 0) and ok(default), key


@pytest.mark.parametrize("key,value,ok", [
    ("typical_p", 1, True), ("typical_p", 1.0, True), ("typical_p", 0.7, False),
    ("typical_p", True, False), ("num_beam_groups", 1, True), ("num_beam_groups", 2, False),
    ("num_beam_groups", True, False), ("token_healing", False, True),
    ("token_healing", 0, False), ("suppress_tokens", [], True), ("suppress_tokens", [3], False),
    ("forced_eos_token_id", 2, False), ("epsilon_cutoff", 0, True),
    ("epsilon_cutoff", 3e-4, False),
])
def test_no_op_values(key: str, value: object, ok: bool) -> None:
    assert search.is_no_op(key, value) is ok


def test_cached_state_follows_the_rows() -> None:
    """``cached`` repeats every tensor of a nested state for the beams and reorders each by
    the rows it is given (a cache, a padding bias and positions alike)."""
    seen = []

    def run(tokens: torch.Tensor, state):
        seen.append(state)
        (kv,), bias, pos = state
        return torch.zeros(tokens.shape[0], 1, 3), ((kv,), bias, pos + 1)

    kv = (torch.tensor([[10.0], [20.0]]), torch.tensor([[1.0], [2.0]]))
    advance = search.cached(run, ((kv,), torch.tensor([[0.0], [5.0]]), torch.tensor([[3], [4]])),
                            beams=2)
    advance(None, torch.zeros(4, 1, dtype=torch.int64))
    (kv1,), bias1, pos1 = seen[-1]
    assert kv1[0].flatten().tolist() == [10.0, 10.0, 20.0, 20.0]
    assert bias1.flatten().tolist() == [0.0, 0.0, 5.0, 5.0]
    assert pos1.flatten().tolist() == [3, 3, 4, 4]
    advance(torch.tensor([1, 1, 3, 2]), torch.zeros(4, 1, dtype=torch.int64))
    (kv2,), _, pos2 = seen[-1]
    assert kv2[1].flatten().tolist() == [1.0, 1.0, 2.0, 2.0]
    assert pos2.flatten().tolist() == [4, 4, 5, 5]


def _beam_search_merging_every_step(first_logits, prompt, advance, beams, max_new_tokens,
                                    eos_token_id, pad_token_id, length_penalty=1.0,
                                    early_stopping=False):
    """The beam search loop as transformers writes it: the finished hypotheses merged and the
    improvability tested at every step (``search.beam_search`` skips both while they cannot
    change anything)."""
    batch, start = prompt.shape
    vocab = first_logits.shape[-1]
    max_len = start + max_new_tokens
    eos = search.end_tokens(eos_token_id)
    keep = max(2, 1 + (len(eos) if eos is not None else 0)) * beams
    fill = (pad_token_id if pad_token_id else int(eos[0])) if eos is not None else \
        (pad_token_id if pad_token_id is not None else 0)
    neg = -1.0e9
    first_k = torch.arange(keep) < beams
    run_seq = torch.full((batch, beams, max_len), fill, dtype=torch.int64)
    run_seq[:, :, :start] = prompt[:, None, :]
    run_score = torch.full((batch, beams), neg)
    run_score[:, 0] = 0.0
    fin_seq, fin_score = run_seq.clone(), torch.full((batch, beams), neg)
    fin_len = torch.zeros((batch, beams), dtype=torch.int64)
    fin_done = torch.zeros((batch, beams), dtype=torch.bool)
    improvable = torch.ones((batch, 1), dtype=torch.bool)
    offsets = torch.arange(batch)[:, None] * beams
    logits, cur = first_logits.float().repeat_interleave(beams, 0), start
    while True:
        logp = torch.log_softmax(logits.float(), -1).reshape(batch, beams, vocab)
        total = (logp + run_score[:, :, None]).reshape(batch, beams * vocab)
        top_score, top_idx = total.topk(keep, -1)
        src, token = top_idx // vocab, top_idx % vocab
        cand = torch.take_along_dim(run_seq, src[:, :, None], 1)
        cand[:, :, cur] = token
        ends = torch.full_like(token, cur + 1 >= max_len, dtype=torch.bool)
        if eos is not None:
            ends |= torch.isin(token, eos)
        going = top_score + ends.float() * neg
        pick = going.topk(beams, -1).indices
        run_seq = torch.take_along_dim(cand, pick[:, :, None], 1)
        run_score = torch.take_along_dim(going, pick, 1)
        rows = (torch.take_along_dim(src, pick, 1) + offsets).reshape(-1)
        finished_now = ends & first_k[None, :]
        norm = top_score / float(cur + 1 - start) ** length_penalty
        full = fin_done.all(-1, keepdim=True) & (early_stopping is True)
        norm = norm + full.float() * neg + (~improvable).float() * neg
        norm = norm + (~finished_now).float() * neg
        merged = torch.cat([fin_score, norm], 1)
        best = merged.topk(beams, -1).indices
        fin_seq = torch.take_along_dim(torch.cat([fin_seq, cand], 1), best[:, :, None], 1)
        fin_score = torch.take_along_dim(merged, best, 1)
        new_len = torch.full_like(token, cur + 1 - start)
        fin_len = torch.take_along_dim(torch.cat([fin_len, new_len], 1), best, 1)
        fin_done = torch.take_along_dim(torch.cat([fin_done, finished_now], 1), best, 1)
        cur += 1
        length = max_len - start if early_stopping == "never" and length_penalty > 0.0 \
            else cur - start
        best_running = run_score[:, :1] / float(length) ** length_penalty
        worst = torch.where(fin_done, fin_score.min(1, keepdim=True).values,
                            torch.full_like(fin_score, neg))
        improvable = improvable & (best_running > worst).any(-1, keepdim=True)
        if not bool(improvable.any()) or (early_stopping is True and bool(fin_done.all())) \
                or bool(ends.all()):
            break
        logits = advance(rows, run_seq[:, :, cur - 1].reshape(-1, 1))
    return fin_seq[:, 0, :start + int(fin_len[:, 0].max())]


class WideTableModel(TableModel):
    """``TableModel`` over ``vocab`` tokens."""

    def __init__(self, seed: int, vocab: int) -> None:
        super().__init__(seed)
        self.vocab = vocab

    def logits(self, prefix: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(hash((self.seed, prefix)) % (2 ** 31))
        return torch.randn(self.vocab, generator=g) * 2.0


@pytest.mark.parametrize("seed", range(100))
def test_beam_search_equals_merging_every_step(seed: int) -> None:
    """Skipping the merge of finished hypotheses on steps where none finishes (and the
    improvability test until one has) changes no answer: random prompts, vocabularies, end
    tokens (none, one, two), beams, lengths, penalties and early-stopping modes against the
    loop that does both at every step."""
    import random

    rng = random.Random(seed)
    vocab = rng.choice([4, 6, 9])
    eos = rng.choice([None, rng.randrange(vocab), [rng.randrange(vocab), rng.randrange(vocab)]])
    beams, n = rng.randint(1, 4), rng.randint(1, 10)
    penalty = rng.choice([1.0, 0.0, 2.0, -0.5])
    stop = rng.choice([False, True, "never"])
    pad = rng.choice([None, 0, 1])
    prompt = torch.randint(0, vocab, (rng.randint(1, 3), rng.randint(1, 3)),
                           generator=torch.Generator().manual_seed(seed))
    model = WideTableModel(seed, vocab)
    first, advance = model.decoder(prompt, beams)
    got = search.beam_search(first, prompt, advance, beams, n, eos, pad, penalty, stop)
    first, advance = model.decoder(prompt, beams)
    want = _beam_search_merging_every_step(first, prompt, advance, beams, n, eos, pad, penalty,
                                           stop)
    assert torch.equal(got, want), (got.tolist(), want.tolist())
