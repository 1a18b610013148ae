"""Writing a transformers model as a Hugging Face-layout folder, for the model tests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch

from gtdsl.runtime.tensorfile import write_safetensors


def save_folder(model: Any, folder: Path, prefix: bool = True) -> Path:
    """``config.json`` and ``model.safetensors`` (tied output heads left out, as checkpoints
    usually do; ``prefix`` False drops GPT-2's ``transformer.``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.config.to_json_string())
    write_safetensors(folder / "model.safetensors", {
        k if prefix else k.removeprefix("transformer."): v.contiguous()
        for k, v in model.state_dict().items() if k != "lm_head.weight"})
    return folder


def check_beam_grid(ours: Any, hf: Any, ids: torch.Tensor, start: int, n: int = 9) -> None:
    """``ours.beam_search`` equals ``hf.generate`` over end tokens, beam counts, length
    penalties and every ``early_stopping`` mode; ``start`` is where the decoder's new tokens
    begin. The end tokens tried are the first two the model's greedy continuation uses, and
    the grid must have rows that end early and answers the end token changed."""
    greedy = ours.generate(ids, n, eos_token_id=[])[:, start:].flatten().tolist()
    likely = list(dict.fromkeys(greedy))[:2]
    ended = changed = 0
    for eos, beams, penalty, stop in itertools.product(
            likely, [2, 4], [1.0, 0.0, 2.0, -0.5], [False, True, "never"]):
        got = ours.beam_search(ids, n, beams, eos_token_id=eos, length_penalty=penalty,
                               early_stopping=stop)
        want = hf.generate(ids, max_new_tokens=n, num_beams=beams, do_sample=False,
                           attention_mask=torch.ones_like(ids), eos_token_id=eos,
                           length_penalty=penalty, early_stopping=stop)
        assert torch.equal(got, want), (eos, beams, penalty, stop, got.tolist(), want.tolist())
        ended += any(eos in row[start:-1] for row in got.tolist())
        no_end = ours.beam_search(ids, n, beams, eos_token_id=[], length_penalty=penalty)
        changed += not torch.equal(got, no_end[:, :got.shape[1]])
    assert ended > 0 and changed > 0  # the end-token rules were exercised


def padded(lengths: list[int], width: int, vocab: int, pad: int, seed: int, left: bool,
           end: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random prompts of the given lengths padded to ``width`` with ``pad``, and
    its attention mask (1 real, 0 padding), as a tokenizer gives them: ``left`` padding for a
    decoder, right padding for an encoder; ``end`` is appended to each prompt (T5's
    tokenizer adds its end token)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), width), pad, dtype=torch.int64)
    mask = torch.zeros(len(lengths), width, dtype=torch.int64)
    for row, n in enumerate(lengths):
        tokens = torch.randint(0, vocab, (n,), generator=g)
        if end is not None:
            tokens[-1] = end
        span = slice(width - n, width) if left else slice(0, n)
        ids[row, span], mask[row, span] = tokens, 1
    return ids, mask


def check_masked_generation(ours: Any, hf: Any, ids: torch.Tensor, mask: torch.Tensor,
                            start: int, n: int = 8) -> None:
    """``ours.generate`` and ``ours.beam_search`` (2 and 3 beams) with ``attention_mask``
    equal ``hf.generate(..., attention_mask=mask)``: without an end token, and with each of
    the first two tokens of the greedy continuation as the end token. ``start`` is where
    the new tokens begin. The grid must have rows that end early, tokens that vary, and
    answers that the mask changes (against an all-ones mask)."""
    plain = ours.generate(ids, n, attention_mask=mask, eos_token_id=[])
    new = plain[:, start:].flatten().tolist()
    assert len(set(new)) > 3, plain.tolist()  # the tokens do vary
    likely = list(dict.fromkeys(new))[:2]
    gen = hf.generation_config
    saved = gen.eos_token_id, gen.pad_token_id
    ended = changed = 0
    try:
        for eos in [None, *likely]:
            gen.eos_token_id, gen.pad_token_id = (None, None) if eos is None else saved
            for beams in (1, 2, 3):
                kw: dict[str, Any] = {"eos_token_id": [] if eos is None else eos}
                got = (ours.generate(ids, n, attention_mask=mask, **kw) if beams == 1 else
                       ours.beam_search(ids, n, beams, attention_mask=mask, **kw))
                hkw = {} if eos is None else {"eos_token_id": eos}
                want = hf.generate(ids, attention_mask=mask, max_new_tokens=n,
                                   num_beams=beams, do_sample=False, **hkw)
                assert torch.equal(got, want), (eos, beams, got.tolist(), want.tolist())
                ended += eos is not None and any(eos in row[start:-1]
                                                 for row in got.tolist())
                ones = torch.ones_like(mask)
                unmasked = (ours.generate(ids, n, attention_mask=ones, **kw) if beams == 1
                            else ours.beam_search(ids, n, beams, attention_mask=ones, **kw))
                changed += not torch.equal(got, unmasked)
    finally:
        gen.eos_token_id, gen.pad_token_id = saved
    assert ended > 0 and changed > 0
