"""Logits processors and sampling warpers with transformers' names and semantics.

Each function takes the token ids so far, ``ids`` ``[rows, L]`` (the prompt and the tokens
generated so far for a decoder-only model; the decoder's tokens, start token first, for an
encoder-decoder), and next-token scores ``[rows, V]``, and returns new scores; a token a
processor forbids scores ``-inf``. ``Processors`` applies them in the order transformers'
``generate`` does: the repetition penalty, the n-gram ban and the minimum lengths on every
decoding (greedy, sampling, beams), then, when sampling, temperature, top-k and top-p.
Beam search applies them to log-probabilities, greedy decoding and sampling to the logits,
as transformers does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

INF = math.inf


def repetition_penalty(ids: torch.Tensor, scores: torch.Tensor, penalty: float,
                       ignore: torch.Tensor | None = None) -> torch.Tensor:
    """Every token that occurs in its row of ``ids`` (from position ``ignore[row]`` on: the
    left padding is not text) has its score divided by ``penalty`` when positive, multiplied
    by it when negative (CTRL's penalty, transformers' ``RepetitionPenaltyLogitsProcessor``)."""
    vocab = scores.shape[-1]
    if ignore is not None:
        ids = ids.masked_fill(torch.arange(ids.shape[1])[None, :] < ignore[:, None], vocab)
    seen = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool)
    seen.scatter_(1, ids.clamp(max=vocab), True)
    penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen[:, :vocab], penalized, scores)


def no_repeat_ngram(ids: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """A token that would complete an n-gram already in its row of ``ids`` scores -inf
    (transformers' ``NoRepeatNGramLogitsProcessor``; nothing is banned before the row holds
    an n-gram)."""
    length = ids.shape[1]
    if length < n:
        return scores
    windows = ids.unfold(1, n, 1)  # [rows, L - n + 1, n]: every n-gram of each row
    prefix = ids[:, length - (n - 1):]  # the last n - 1 tokens
    match = (windows[:, :, :n - 1] == prefix[:, None, :]).all(-1)  # [rows, L - n + 1]
    banned = torch.zeros_like(scores, dtype=torch.bool)
    rows = torch.arange(ids.shape[0])[:, None].expand_as(match)
    banned[rows[match], windows[:, :, -1][match]] = True
    return scores.masked_fill(banned, -INF)


def forbid_end(scores: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """The end tokens score -inf (the minimum lengths' processors, while too short)."""
    ends = torch.isin(torch.arange(scores.shape[-1]), eos)
    return torch.where(ends, -INF, scores)


def temperature(scores: torch.Tensor, t: float) -> torch.Tensor:
    """Scores divided by the temperature (transformers' ``TemperatureLogitsWarper``)."""
    return scores / t


def top_k(scores: torch.Tensor, k: int, keep: int = 1) -> torch.Tensor:
    """Only the ``max(k, keep)`` best tokens of each row (ties with the last of them
    included) keep their scores, the rest score -inf (``TopKLogitsWarper``)."""
    k = min(max(k, keep), scores.shape[-1])
    kth = torch.topk(scores, k).values[..., -1:]
    return scores.masked_fill(scores < kth, -INF)


def top_p(scores: torch.Tensor, p: float, keep: int = 1) -> torch.Tensor:
    """Nucleus filtering (``TopPLogitsWarper``): the least likely tokens whose probabilities
    add up to at most ``1 - p`` score -inf, so the tokens left carry at least ``p`` of the
    probability; at least ``keep`` tokens always stay."""
    ascending, order = torch.sort(scores, descending=False)
    mass = ascending.softmax(-1).cumsum(-1)
    drop = mass <= (1 - p)
    drop[..., -keep:] = False
    return scores.masked_fill(drop.scatter(1, order, drop), -INF)


@dataclass(frozen=True)
class Processors:
    """The processors and warpers a decoding applies, from its settings (None or a no-op value:
    not applied). ``eos``: the end tokens (the minimum lengths need them); ``prompt``: the
    length of ``ids`` when decoding starts (``min_new_tokens`` counts from it); ``ignore``:
    per row, the left padding the repetition penalty skips; ``keep``: the fewest tokens a
    warper leaves (beam search keeps one more than there are end tokens)."""

    settings: dict[str, Any]
    eos: torch.Tensor | None
    prompt: int
    ignore: torch.Tensor | None = None
    sample: bool = False
    keep: int = 1

    @property
    def active(self) -> bool:
        s = self.settings
        return bool(s.get("repetition_penalty", 1.0) != 1.0 or s.get("no_repeat_ngram_size")
                    or (self.eos is not None and (s.get("min_length") or
                                                  s.get("min_new_tokens")))
                    or (self.sample and (s.get("temperature", 1.0) != 1.0 or s.get("top_k")
                                         or s.get("top_p", 1.0) < 1.0)))

    def __call__(self, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        s = self.settings
        penalty = s.get("repetition_penalty")
        if penalty is not None and penalty != 1.0:
            ignore = self.ignore
            if ignore is not None and ignore.shape[0] != ids.shape[0]:  # beams: per row
                ignore = ignore.repeat_interleave(ids.shape[0] // ignore.shape[0])
            scores = repetition_penalty(ids, scores, float(penalty), ignore)
        if s.get("no_repeat_ngram_size"):
            scores = no_repeat_ngram(ids, scores, int(s["no_repeat_ngram_size"]))
        if self.eos is not None:
            if s.get("min_length") and ids.shape[1] < s["min_length"]:
                scores = forbid_end(scores, self.eos)
            if s.get("min_new_tokens") and ids.shape[1] - self.prompt < s["min_new_tokens"]:
                scores = forbid_end(scores, self.eos)
        if self.sample:
            t = s.get("temperature")
            if t is not None and t != 1.0:
                scores = temperature(scores, float(t))
            if s.get("top_k"):
                scores = top_k(scores, int(s["top_k"]), self.keep)
            p = s.get("top_p")
            if p is not None and p < 1.0:
                scores = top_p(scores, float(p), self.keep)
        return scores


__all__ = ["Processors", "forbid_end", "no_repeat_ngram", "repetition_penalty", "temperature",
           "top_k", "top_p"]
