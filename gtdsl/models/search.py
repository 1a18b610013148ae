"""Decoding loops shared by the generative models: greedy decoding and beam search.

Both follow the rules of transformers' ``generate`` so that a model written in gtdsl gives the
same tokens on the same weights and settings:

* A sequence that emits the end token is finished. In greedy decoding its later positions hold
  the pad token, and decoding stops once every sequence is finished.
* Beam search keeps ``2 * beams`` candidates per step. The ``beams`` best candidates that do not
  end go on. A candidate among the first ``beams`` that ends (by the end token, or by reaching
  the length limit) becomes a finished hypothesis, scored by its summed log-probability divided
  by ``generated_length ** length_penalty``; the ``beams`` best hypotheses are kept.
* ``early_stopping`` is False (stop a prompt once its running beams cannot beat its worst kept
  hypothesis at the current length), True (stop a prompt as soon as ``beams`` hypotheses are
  kept) or ``"never"`` (with a positive length penalty, compare at the maximum length).
* The answer per prompt is its best hypothesis; shorter answers in a batch are filled with the
  pad token, or with the end token when the pad id is 0 or unset, as ``generate`` does.

The model supplies ``advance(rows, tokens)``: reorder its cache so that row ``i`` continues
previous row ``rows[i]`` (``rows`` None: keep the order), run ``tokens`` (``[n, 1]``) through
it and return the next-token logits ``[n, V]``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import torch

from gtdsl.models.weights import load_error, load_tokenizer

EarlyStopping = Union[bool, Literal["never"]]
EndTokens = Union[int, Sequence[int], None]
Advance = Callable[[Optional[torch.Tensor], torch.Tensor], torch.Tensor]

_NEG = -1.0e9  # the score of an impossible candidate, as transformers uses


def end_tokens(eos_token_id: EndTokens) -> torch.Tensor | None:
    """The end token ids as a tensor (None when there are none)."""
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    return torch.tensor(ids, dtype=torch.int64) if ids else None


def settings(folder: Path, config: dict[str, Any], vocab: int) -> dict[str, Any]:
    """Generation settings from a model folder: end and pad tokens from ``config.json``,
    overridden by ``generation_config.json`` where the folder has one (as transformers reads
    them), with length penalty and early stopping. End tokens outside the vocabulary are
    dropped (a config may name one the checkpoint's head cannot emit)."""
    merged = dict(config)
    gen = folder / "generation_config.json"
    if gen.is_file():
        try:
            extra = json.loads(gen.read_text())
            if not isinstance(extra, dict):
                raise ValueError("expected a JSON object")
        except (OSError, ValueError) as e:
            raise load_error(f"cannot read `{gen.name}`: {e}", path=str(gen)) from None
        merged.update(extra)
    eos = merged.get("eos_token_id")
    ids = [eos] if isinstance(eos, int) else list(eos) if isinstance(eos, list) else []
    ids = [int(i) for i in ids if isinstance(i, int) and 0 <= i < vocab]
    pad = merged.get("pad_token_id")
    stop = merged.get("early_stopping", False)
    penalty = merged.get("length_penalty", 1.0)
    if stop not in (True, False, "never") or not isinstance(penalty, (int, float)):
        raise load_error(f"unsupported generation settings: early_stopping {stop!r}, "
                         f"length_penalty {penalty!r}", path=str(folder),
                         help="early_stopping is true, false or \"never\"; length_penalty "
                         "a number")
    return {"eos_token_id": ids or None,
            "pad_token_id": int(pad) if isinstance(pad, int) else None,
            "length_penalty": float(penalty), "early_stopping": stop}


def greedy(first_logits: torch.Tensor, prompt: torch.Tensor, advance: Advance,
           max_new_tokens: int, eos_token_id: EndTokens, pad_token_id: int | None
           ) -> torch.Tensor:
    """Greedy decoding. ``first_logits`` ``[b, V]`` are the next-token logits after
    ``prompt`` ``[b, L]``; returns the prompt followed by the new tokens."""
    eos = end_tokens(eos_token_id)
    pad = pad_token_id if pad_token_id is not None else (int(eos[0]) if eos is not None else 0)
    batch = prompt.shape[0]
    done = torch.zeros(batch, dtype=torch.bool)
    out, logits = prompt, first_logits
    for i in range(max_new_tokens):
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        out = torch.cat([out, nxt[:, None]], 1)
        if eos is not None:
            done |= torch.isin(nxt, eos)
            if bool(done.all()):
                break
        if i + 1 < max_new_tokens:
            logits = advance(None, nxt[:, None])
    return out


def beam_search(first_logits: torch.Tensor, prompt: torch.Tensor, advance: Advance,
                beams: int, max_new_tokens: int, eos_token_id: EndTokens,
                pad_token_id: int | None, length_penalty: float = 1.0,
                early_stopping: EarlyStopping = False) -> torch.Tensor:
    """Beam search. ``first_logits`` ``[b, V]`` are the next-token logits after ``prompt``
    ``[b, L]`` (the model's cache holds ``b * beams`` rows, each prompt repeated ``beams``
    times); returns ``[b, L + n]``, the best hypothesis per prompt, ``n`` the longest of them."""
    if beams < 1 or max_new_tokens < 1:
        raise ValueError("beam search needs at least one beam and one new token")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', not {early_stopping!r}")
    batch, start = prompt.shape
    vocab = first_logits.shape[-1]
    max_len = start + max_new_tokens
    eos = end_tokens(eos_token_id)
    keep = max(2, 1 + (len(eos) if eos is not None else 0)) * beams
    if eos is not None:
        fill = pad_token_id if pad_token_id else int(eos[0])
    else:
        fill = pad_token_id if pad_token_id is not None else 0
    first_k = torch.arange(keep) < beams  # only these candidates may finish

    run_seq = torch.full((batch, beams, max_len), fill, dtype=torch.int64)
    run_seq[:, :, :start] = prompt[:, None, :]
    run_score = torch.full((batch, beams), _NEG)
    run_score[:, 0] = 0.0  # every beam starts as the prompt: expand the first one only
    fin_seq = run_seq.clone()
    fin_score = torch.full((batch, beams), _NEG)
    fin_len = torch.zeros((batch, beams), dtype=torch.int64)
    fin_done = torch.zeros((batch, beams), dtype=torch.bool)
    improvable = torch.ones((batch, 1), dtype=torch.bool)
    offsets = torch.arange(batch)[:, None] * beams

    logits = first_logits.float().repeat_interleave(beams, 0)
    cur = start
    while True:
        logp = torch.log_softmax(logits.float(), -1).reshape(batch, beams, vocab)
        total = (logp + run_score[:, :, None]).reshape(batch, beams * vocab)
        top_score, top_idx = total.topk(keep, -1)  # best first
        src = top_idx // vocab
        token = top_idx % vocab
        cand = torch.take_along_dim(run_seq, src[:, :, None], 1)
        cand[:, :, cur] = token
        ends = torch.full_like(token, cur + 1 >= max_len, dtype=torch.bool)
        if eos is not None:
            ends |= torch.isin(token, eos)

        # the beams that go on: the best candidates that do not end
        going = top_score + ends.float() * _NEG
        pick = going.topk(beams, -1).indices
        run_seq = torch.take_along_dim(cand, pick[:, :, None], 1)
        run_score = torch.take_along_dim(going, pick, 1)
        rows = (torch.take_along_dim(src, pick, 1) + offsets).reshape(-1)

        # the hypotheses kept: merge the newly finished ones among the first `beams`
        finished_now = ends & first_k[None, :]
        norm = top_score / float(cur + 1 - start) ** length_penalty
        full = fin_done.all(-1, keepdim=True) & (early_stopping is True)
        norm = norm + full.float() * _NEG
        norm = norm + (~improvable).float() * _NEG
        norm = norm + (~finished_now).float() * _NEG
        merged_score = torch.cat([fin_score, norm], 1)
        best = merged_score.topk(beams, -1).indices
        fin_seq = torch.take_along_dim(torch.cat([fin_seq, cand], 1), best[:, :, None], 1)
        fin_score = torch.take_along_dim(merged_score, best, 1)
        new_len = torch.full_like(token, cur + 1 - start)
        fin_len = torch.take_along_dim(torch.cat([fin_len, new_len], 1), best, 1)
        fin_done = torch.take_along_dim(torch.cat([fin_done, finished_now], 1), best, 1)

        cur += 1
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_len - start
        else:
            best_length = cur - start
        best_running = run_score[:, :1] / float(best_length) ** length_penalty
        worst_kept = torch.where(fin_done, fin_score.min(1, keepdim=True).values,
                                 torch.full_like(fin_score, _NEG))
        improvable = improvable & (best_running > worst_kept).any(-1, keepdim=True)
        if (not bool(improvable.any())
                or (early_stopping is True and bool(fin_done.all()))
                or bool(ends.all())):
            break
        logits = advance(rows, run_seq[:, :, cur - 1].reshape(-1, 1))

    length = start + int(fin_len[:, 0].max())
    return fin_seq[:, 0, :length]


Cache = list[tuple[torch.Tensor, torch.Tensor]]


def cached(run: Callable[[torch.Tensor, Cache], tuple[torch.Tensor, Cache]], cache: Cache,
           beams: int) -> Advance:
    """The ``advance`` function of a model whose state is one key/value cache per layer:
    the cache (holding one row per prompt) is repeated for the beams, reordered by ``rows``
    each step, and grown by ``run(tokens, cache) -> (logits [n, s, V], cache)``."""
    if beams > 1:
        cache = [(k.repeat_interleave(beams, 0), v.repeat_interleave(beams, 0))
                 for k, v in cache]
    state = [cache]

    def advance(rows: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        kv = state[0] if rows is None else [(k[rows], v[rows]) for k, v in state[0]]
        logits, state[0] = run(tokens, kv)
        return logits[:, -1]
    return advance


class Decoding(ABC):
    """Greedy decoding and beam search for a model class that provides ``dir`` (its folder),
    ``raw_config`` (its config.json), ``_vocab`` and ``_decoder(ids, beams)``: the decoder's
    prompt, its first next-token logits and the ``advance`` function."""

    dir: Path
    raw_config: dict[str, Any]
    _vocab: int

    @abstractmethod
    def _decoder(self, ids: torch.Tensor, beams: int
                 ) -> tuple[torch.Tensor, torch.Tensor, Advance]: ...

    def settings(self, **given: Any) -> dict[str, Any]:
        """Generation settings: the folder's (``config.json``, ``generation_config.json``)
        where ``given`` leaves one None."""
        out = settings(self.dir, self.raw_config, self._vocab)
        out.update({k: v for k, v in given.items() if v is not None})
        return out

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, max_new_tokens: int, *,
                 eos_token_id: EndTokens = None, pad_token_id: int | None = None
                 ) -> torch.Tensor:
        """Greedy decoding with the cache, one token per step. A sequence that emits the end
        token is finished (its later positions hold the pad token), and decoding stops when
        all are, as transformers' ``generate`` does. The end and pad tokens default to the
        folder's config (``eos_token_id=[]``: no end token)."""
        s = self.settings(eos_token_id=eos_token_id, pad_token_id=pad_token_id)
        prompt, first, advance = self._decoder(ids, 1)
        return greedy(first, prompt, advance, max_new_tokens, s["eos_token_id"],
                      s["pad_token_id"])

    @torch.no_grad()
    def beam_search(self, ids: torch.Tensor, max_new_tokens: int, beams: int, *,
                    eos_token_id: EndTokens = None, pad_token_id: int | None = None,
                    length_penalty: float | None = None,
                    early_stopping: EarlyStopping | None = None) -> torch.Tensor:
        """Beam search with the cache reordered to follow the beams, by transformers' rules
        (see :mod:`gtdsl.models.search`); every setting left None comes from the folder's
        config."""
        s = self.settings(eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                          length_penalty=length_penalty, early_stopping=early_stopping)
        prompt, first, advance = self._decoder(ids, beams)
        return beam_search(first, prompt, advance, beams, max_new_tokens, **s)

    def tokenizer(self) -> Any:
        """The folder's ``tokenizer.json``."""
        return load_tokenizer(self.dir)


__all__ = ["Decoding", "beam_search", "cached", "end_tokens", "greedy", "settings"]
