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
