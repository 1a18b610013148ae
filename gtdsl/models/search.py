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

Settings that transformers applies and these loops do not implement (sampling, repetition
penalties, forced or suppressed tokens, several answers per prompt, ...) are refused with a
diagnostic wherever they appear (``config.json``, ``generation_config.json``, a keyword
argument) unless they hold their no-op value, so a folder never silently decodes otherwise
than transformers would.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Generator, Literal, Optional, Sequence, Union

import torch

from gtdsl.diagnostics import Diagnostic
from gtdsl.models.config import ModelConfig, read_json_object
from gtdsl.models.processors import Processors
from gtdsl.models.weights import load_error, load_tokenizer
from gtdsl.runtime.errors import CastError, caller_location

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


# transformers' generation settings that change the tokens and that gtdsl does not implement,
# each with the values that leave the tokens unchanged (its default, as transformers'
# GenerationConfig fills it in); null always means unset
NO_OP: dict[str, tuple[Any, ...]] = {
    "min_p": (), "top_h": (), "typical_p": (1.0,), "epsilon_cutoff": (0.0,),
    "eta_cutoff": (0.0,), "penalty_alpha": (0.0,), "encoder_repetition_penalty": (1.0,),
    "encoder_no_repeat_ngram_size": (0,), "bad_words_ids": ([],), "force_words_ids": ([],),
    "constraints": ([],), "sequence_bias": ({},), "suppress_tokens": ([],),
    "begin_suppress_tokens": ([],), "forced_bos_token_id": (), "forced_eos_token_id": (),
    "exponential_decay_length_penalty": (), "num_beam_groups": (1,),
    "diversity_penalty": (0.0,), "guidance_scale": (1.0,), "dola_layers": (),
    "watermarking_config": (), "max_time": (), "stop_strings": ([],), "token_healing": (False,),
    "renormalize_logits": (False,), "remove_invalid_values": (False,),
}
SAMPLING = ("min_p", "top_h", "typical_p", "epsilon_cutoff", "eta_cutoff", "penalty_alpha")


def _int(least: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= least


def _real(test: Callable[[float], bool]) -> Callable[[Any], bool]:
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                      and math.isfinite(v) and test(v))


# the generation settings gtdsl implements, with transformers' names and defaults: the rule a
# value follows, the rule in words, the default
SETTINGS: dict[str, tuple[Callable[[Any], bool], str, Any]] = {
    "do_sample": (lambda v: isinstance(v, bool), "true or false", False),
    "num_beams": (_int(1), "an integer >= 1", 1),
    "num_return_sequences": (_int(1), "an integer >= 1", 1),
    "temperature": (_real(lambda v: v > 0), "a number > 0", 1.0),
    "top_k": (_int(0), "an integer >= 0 (0: no top-k)", 50),
    "top_p": (_real(lambda v: 0 <= v <= 1), "a number from 0 to 1", 1.0),
    "repetition_penalty": (_real(lambda v: v > 0), "a number > 0", 1.0),
    "no_repeat_ngram_size": (_int(0), "an integer >= 0 (0: off)", 0),
    "min_length": (_int(0), "an integer >= 0", 0),
    "min_new_tokens": (_int(0), "an integer >= 0", 0),
}
WARPERS = ("temperature", "top_k", "top_p")  # used only when sampling


def is_no_op(key: str, value: Any) -> bool:
    """Whether a setting of ``NO_OP`` holds a value that leaves the tokens unchanged."""
    if value is None:
        return True
    for allowed in NO_OP[key]:
        if isinstance(allowed, bool) or isinstance(value, bool):
            if value is allowed:
                return True
        elif isinstance(allowed, (int, float)):
            if isinstance(value, (int, float)) and value == allowed:
                return True
        elif value == allowed:
            return True
    return False


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refusal(key: str, value: Any) -> tuple[str, str]:
    shown = _shown(value)
    if key in SAMPLING:
        return (f"sets `{key}` to {shown}, a sampling filter gtdsl does not implement",
                f"remove `{key}` (or set it to its default); gtdsl samples with "
                "temperature, top_k and top_p")
    return (f"sets `{key}` to {shown}, which changes the tokens transformers' generate "
            "produces and which gtdsl does not implement",
            f"remove `{key}` (or set it to its default) to decode without it")


def read_generation_config(folder: Path) -> dict[str, Any]:
    """``generation_config.json`` (an empty dict when the folder has none; GT0909 when it is
    not a regular file holding one JSON object)."""
    gen = folder / "generation_config.json"
    if not os.path.lexists(gen):
        return {}
    return read_json_object(gen)  # a regular file, size-capped, one JSON object


def finite(v: Any) -> bool:
    """Whether ``v`` is a real number (not a bool) that is finite as a float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def settings(folder: Path, config: dict[str, Any], vocab: int) -> dict[str, Any]:
    """Generation settings from a model folder, read as transformers reads them: from
    ``generation_config.json`` when the folder has one (``config.json`` is then not read for
    generation), else from ``config.json``; transformers' defaults for what neither says. End
    tokens outside the vocabulary are dropped (a config may name one the checkpoint's head
    cannot emit). A setting of ``NO_OP`` that holds another value is refused, and a setting
    of ``SETTINGS`` outside its rule (GT0909, naming the file and the key)."""
    path = folder / "generation_config.json"
    name, source = ("generation_config.json", read_generation_config(folder)) \
        if os.path.lexists(path) else ("config.json", config)
    where = str(folder / name)
    bad = [key for key in NO_OP if key in source and not is_no_op(key, source[key])]
    if bad:
        message, help = _refusal(bad[0], source[bad[0]])
        others = tuple(f"also refused: `{k}` {_shown(source[k])}" for k in bad[1:])
        raise load_error(f"`{name}` {message}", path=where, help=help,
                         notes=(f"key: `{bad[0]}`",) + others)

    def refuse(key: str, what: str) -> Exception:
        return load_error(f"`{name}`: `{key}` is {_shown(source[key])}; it must be {what}",
                          path=where, notes=(f"key: `{key}`",),
                          help="fix the value, or remove the key for transformers' default")
    chosen: dict[str, Any] = {}
    for key, (ok, what, default) in SETTINGS.items():
        value = source.get(key)
        if value is not None and not ok(value):
            raise refuse(key, what)
        chosen[key] = default if value is None else value
    eos = source.get("eos_token_id")
    ids = [eos] if isinstance(eos, int) else list(eos) if isinstance(eos, list) else []
    ids = [int(i) for i in ids if isinstance(i, int) and 0 <= i < vocab]
    pad = source.get("pad_token_id")
    stop = source.get("early_stopping")
    penalty = source.get("length_penalty")
    if stop is not None and stop not in (True, False, "never"):
        raise refuse("early_stopping", "true, false or \"never\"")
    if penalty is not None and not finite(penalty):
        raise refuse("length_penalty", "a finite number")
    start = source.get("decoder_start_token_id")
    return {"eos_token_id": ids or None,
            "pad_token_id": int(pad) if isinstance(pad, int) and not isinstance(pad, bool)
            and 0 <= pad < 2 ** 63 else None,
            "length_penalty": 1.0 if penalty is None else float(penalty),
            "early_stopping": False if stop is None else stop,
            "decoder_start_token_id": start if isinstance(start, int)
            and not isinstance(start, bool) else None, **chosen}


def _ends(token: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """Whether each token is an end token."""
    return token == eos[0] if len(eos) == 1 else torch.isin(token, eos)


Streamer = Any  # an object with put(tokens) and end() (transformers' streamers), or a callable


class TextStream:
    """A streamer (``put``/``end``) that hands ``write`` the text of one sequence as it
    becomes final: each time, the whole sequence so far (the prompt first) is decoded and
    the new text up to its last space is written; the rest, which the next token may still
    change (a word in pieces, a character in bytes), waits. At the end the rest is written,
    so the pieces add up to the decoded sequence."""

    def __init__(self, decode: Callable[[list[int]], str], write: Callable[[str], Any]) -> None:
        self.decode, self.write = decode, write
        self.ids: list[int] = []
        self.shown = ""

    def put(self, tokens: torch.Tensor) -> None:
        if tokens.dim() == 2 and tokens.shape[0] != 1 or tokens.dim() == 1 and \
                tokens.shape[0] != 1:
            raise argument_error("GT3001", "a text stream shows one sequence; this decoding "
                                 f"has {tokens.shape[0]}", "stream one prompt and one answer")
        self.ids.extend(int(t) for t in tokens.flatten().tolist())
        text = self.decode(self.ids)
        cut = max(text.rfind(" "), text.rfind("\n")) + 1
        if text.endswith("\ufffd") or not text.startswith(self.shown) or cut <= len(self.shown):
            return
        self.write(text[len(self.shown):cut])
        self.shown = text[:cut]

    def end(self) -> None:
        text = self.decode(self.ids)
        if text.startswith(self.shown) and len(text) > len(self.shown):
            self.write(text[len(self.shown):])
        self.shown = text


def _pick(scores: torch.Tensor, sample: bool, generator: torch.Generator | None,
          n: int = 1) -> torch.Tensor:
    """The next tokens ``[rows, n]``: the best scores, or (``sample``) drawn without
    replacement from ``softmax(scores)`` as transformers draws them (``torch.multinomial``,
    the global generator unless ``generator`` is given; when fewer than n tokens have a
    probability above 0, as in beam-search sampling's first step, torch fills the draw with
    tokens of probability 0, as it does for transformers)."""
    if not sample:
        return scores.topk(n, -1).indices if n > 1 else scores.argmax(-1, keepdim=True)
    probs = torch.softmax(scores, -1)
    bad = ~torch.isfinite(probs).all(-1) | ~(probs > 0).any(-1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise argument_error("GT3001", f"decoding cannot sample: the settings leave row {row} "
                             "no token with a probability above 0",
                             "loosen top_k, top_p, no_repeat_ngram_size or min_new_tokens")
    return torch.multinomial(probs, n, generator=generator)


def _length_norm(length: int, penalty: float) -> float:
    """``length ** penalty``, the divisor of a hypothesis's score (inf where a float
    overflows: a penalty of 1e300 ranks every length alike)."""
    try:
        return float(length) ** penalty
    except OverflowError:
        return math.inf


def _stuck(total: torch.Tensor, beams: int) -> None:
    """Refuse a beam-search step whose settings leave a prompt fewer candidates than beams
    (every token of every beam banned: no n-gram left, no token before the minimum length)."""
    short = torch.isfinite(total).sum(-1) < beams
    if bool(short.any()):
        row = int(short.nonzero()[0, 0])
        raise argument_error("GT3001", f"beam search cannot go on: the settings leave prompt "
                             f"{row} fewer than {beams} candidate tokens",
                             "loosen no_repeat_ngram_size or min_new_tokens, or use fewer "
                             "beams")


@torch.no_grad()
def decode_steps(first_logits: torch.Tensor, prompt: torch.Tensor, advance: Advance,
                 max_new_tokens: int, eos_token_id: EndTokens, pad_token_id: int | None,
                 process: Processors | None = None, sample: bool = False,
                 generator: torch.Generator | None = None
                 ) -> Generator[torch.Tensor, None, torch.Tensor]:
    """Greedy decoding, or sampling, one row per sequence. ``first_logits`` ``[b, V]`` are
    the next-token logits after ``prompt`` ``[b, L]``; each step's logits go through
    ``process`` (the logits processors and, when sampling, warpers) and the next token is their
    argmax or a draw from their softmax. A generator: it yields each step's tokens ``[b]``
    and returns the prompt followed by the new tokens."""
    eos = end_tokens(eos_token_id)
    pad = pad_token_id if pad_token_id is not None else (int(eos[0]) if eos is not None else 0)
    batch, start = prompt.shape
    done = torch.zeros(batch, dtype=torch.bool)
    out = torch.empty(batch, start + max_new_tokens, dtype=prompt.dtype)
    out[:, :start] = prompt
    logits, end = first_logits, start + max_new_tokens
    for i in range(max_new_tokens):
        scores = logits.float()
        if process is not None:
            scores = process(out[:, :start + i], scores)
        nxt = _pick(scores, sample, generator)[:, 0]
        if eos is not None:
            nxt = nxt.masked_fill(done, pad)
        out[:, start + i] = nxt
        yield nxt
        if eos is not None:
            done |= _ends(nxt, eos)
            if bool(done.all()):
                end = start + i + 1
                break
        if i + 1 < max_new_tokens:
            logits = advance(None, out[:, start + i:start + i + 1])
    return out[:, :end]


def run_steps(steps: Generator[torch.Tensor, None, torch.Tensor], prompt: torch.Tensor,
              streamer: Streamer = None) -> torch.Tensor:
    """Run ``decode_steps`` to the end, handing the prompt and then each step's tokens to
    ``streamer`` (``put``/``end``, as transformers' streamers; or a callable, given the new
    tokens only)."""
    put = getattr(streamer, "put", None)
    if put is not None:
        put(prompt)
    while True:
        try:
            tokens = next(steps)
        except StopIteration as stop:
            if put is not None:
                streamer.end()
            out: torch.Tensor = stop.value
            return out
        if put is not None:
            put(tokens)
        elif streamer is not None:
            streamer(tokens)


def greedy(first_logits: torch.Tensor, prompt: torch.Tensor, advance: Advance,
           max_new_tokens: int, eos_token_id: EndTokens, pad_token_id: int | None
           ) -> torch.Tensor:
    """Greedy decoding (``decode_steps`` run to the end): returns the prompt followed by the
    new tokens."""
    return run_steps(decode_steps(first_logits, prompt, advance, max_new_tokens, eos_token_id,
                                  pad_token_id), prompt)


def beam_search(first_logits: torch.Tensor, prompt: torch.Tensor, advance: Advance,
                beams: int, max_new_tokens: int, eos_token_id: EndTokens,
                pad_token_id: int | None, length_penalty: float = 1.0,
                early_stopping: EarlyStopping = False, process: Processors | None = None,
                sample: bool = False, generator: torch.Generator | None = None,
                num_return_sequences: int = 1) -> torch.Tensor:
    """Beam search. ``first_logits`` ``[b, V]`` are the next-token logits after ``prompt``
    ``[b, L]`` (the model's cache holds ``b * beams`` rows, each prompt repeated ``beams``
    times); returns ``[b * r, L + n]``, the ``r`` (``num_return_sequences``) best hypotheses
    per prompt, best first, ``n`` the longest of them.

    Each step's log-probabilities go through ``process`` (the logits processors, and the
    warpers when sampling), as transformers applies them in beam search. With ``sample`` the
    candidates are drawn without replacement from the softmax of the beams' summed scores
    (transformers' beam-search multinomial sampling) instead of taken best first.

    A step where no candidate among the first ``beams`` ends skips the merge of finished
    hypotheses: every candidate would enter it with a score of at most -1e9 and lose to the
    kept ones, and a slot not yet filled (at -1e9) holds nothing the answer reads. Likewise
    the improvability test waits for a first finished hypothesis (until then every running
    beam beats the empty slots' -1e9)."""
    if beams < 1 or max_new_tokens < 1 or not 1 <= num_return_sequences <= beams:
        raise ValueError("beam search needs at least one beam and one new token, and at "
                         "most one answer per beam")
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
    any_done = False  # whether a hypothesis was ever kept
    offsets = torch.arange(batch)[:, None] * beams

    logits = first_logits.float().repeat_interleave(beams, 0)
    cur = start
    while True:
        logp = torch.log_softmax(logits.float(), -1)
        if process is not None:
            logp = process(run_seq[:, :, :cur].reshape(batch * beams, cur), logp)
        total = (logp.view(batch, beams, vocab) + run_score[:, :, None]).view(batch, -1)
        if process is not None:
            _stuck(total, beams)
        if sample:
            drawn = _pick(total, True, generator, keep)
            top_score, order = total.gather(1, drawn).sort(-1, descending=True)
            top_idx = drawn.gather(1, order)
        else:
            top_score, top_idx = total.topk(keep, -1)  # best first
        src = top_idx // vocab
        token = top_idx - src * vocab
        last = cur + 1 >= max_len
        ends: torch.Tensor | None = None  # None: no candidate ends
        if last:
            ends = torch.ones_like(token, dtype=torch.bool)
        elif eos is not None:
            ends = _ends(token, eos)

        # the beams that go on: the best candidates that do not end
        going = top_score if ends is None else top_score + ends.float() * _NEG
        pick = going.topk(beams, -1).indices
        parent = torch.take_along_dim(src, pick, 1)
        run_score = torch.take_along_dim(going, pick, 1)
        rows = (parent + offsets).view(-1)

        finished_now = None if ends is None else ends & first_k[None, :]
        if finished_now is not None and bool(finished_now.any()):
            # the hypotheses kept: merge the newly finished ones among the first `beams`
            cand = torch.take_along_dim(run_seq, src[:, :, None], 1)
            cand[:, :, cur] = token
            run_seq = torch.take_along_dim(cand, pick[:, :, None], 1)
            norm = top_score / _length_norm(cur + 1 - start, length_penalty)
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
            any_done = True
        else:
            run_seq = torch.take_along_dim(run_seq, parent[:, :, None], 1)
            run_seq[:, :, cur] = torch.take_along_dim(token, pick, 1)

        cur += 1
        if any_done:
            if early_stopping == "never" and length_penalty > 0.0:
                best_length = max_len - start
            else:
                best_length = cur - start
            best_running = run_score[:, :1] / _length_norm(best_length, length_penalty)
            worst_kept = torch.where(fin_done, fin_score.min(1, keepdim=True).values,
                                     torch.full_like(fin_score, _NEG))
            improvable = improvable & (best_running > worst_kept).any(-1, keepdim=True)
            if (not bool(improvable.any())
                    or (early_stopping is True and bool(fin_done.all()))):
                break
        if last or (ends is not None and bool(ends.all())):
            break
        logits = advance(rows, run_seq[:, :, cur - 1].reshape(-1, 1))

    r = num_return_sequences
    length = start + int(fin_len[:, :r].max())
    return fin_seq[:, :r, :length].reshape(batch * r, length)


Cache = list[tuple[torch.Tensor, torch.Tensor]]
State = Any  # tensors with one row per sequence, in lists and tuples


def _map_rows(state: State, f: Callable[[torch.Tensor], torch.Tensor]) -> State:
    if isinstance(state, torch.Tensor):
        return f(state)
    if isinstance(state, (list, tuple)):
        return type(state)(_map_rows(x, f) for x in state)
    return state


def cached(run: Callable[[torch.Tensor, State], tuple[torch.Tensor, State]], state: State,
           beams: int) -> Advance:
    """The ``advance`` function of a model whose state is tensors with one row per sequence
    (one key/value cache per layer, and any per-row padding mask or positions): the state
    (holding one row per prompt) is repeated for the beams, reordered by ``rows`` each step,
    and grown by ``run(tokens, state) -> (logits [n, s, V], state)``."""
    if beams > 1:
        state = _map_rows(state, lambda t: t.repeat_interleave(beams, 0))
    box = [state]

    def advance(rows: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        current = box[0] if rows is None else _map_rows(
            box[0], lambda t: t.index_select(0, rows))
        logits, box[0] = run(tokens, current)
        return logits[:, -1]
    return advance


# ---------------------------------------------------------------------- checked arguments
_SKIPPED = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            os.path.dirname(os.path.abspath(torch.__file__)))


def _call_site() -> str | None:
    """``file:line`` of the innermost caller outside gtdsl and torch (the user's call)."""
    f: FrameType | None = sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not name.startswith(_SKIPPED) and not name.startswith("<"):
            return f"{name}:{f.f_lineno}"
        f = f.f_back
    return caller_location()


def argument_error(code: str, message: str, help: str, got: str | None = None) -> CastError:
    """A bad argument of a model's method, located at the caller's line (the caller is
    blamed)."""
    notes = (f"got: {got}",) if got is not None else ()
    return CastError(Diagnostic(code, message, None, (), notes, help,
                                path=_call_site() or "<python call>"))


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)} and dtype {str(v.dtype).replace('torch.', '')}"
    return f"a Python {type(v).__name__} ({v!r})"[:200]


def exporting() -> bool:
    """Whether torch.export (or torch.compile) is tracing: values are symbolic then."""
    compiler = getattr(torch, "compiler", None)
    is_compiling = getattr(compiler, "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())


def holds(cond: torch.Tensor, message: str) -> bool:
    """Whether the boolean tensor ``cond`` is true: read now, or, while torch.export traces
    (the value unknown until the program runs), an assert of the exported program with
    ``message``, which fails when the program runs on a value that breaks it."""
    if exporting():
        torch._assert_async(cond, message)
        return True
    return bool(cond)


def check_ids(function: str, ids: Any, vocab: int, name: str = "ids") -> torch.Tensor:
    """``ids``: a ``[b, s]`` integer tensor of token ids in ``[0, vocab)``, b and s at least 1."""
    bad = None
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype.is_complex \
            or ids.dtype == torch.bool:
        bad = "it must be an integer tensor"
    elif ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        bad = "it must be a 2-D tensor [batch, tokens] with at least one row and one token"
    elif not holds(~((ids < 0) | (ids >= vocab)).any(), f"GT3001: `{name}` of `{function}`: "
                   f"its values must lie in [0, {vocab})"):
        bad = f"its values must lie in [0, {vocab})"
    if bad is not None:
        raise argument_error("GT3001", f"`{name}` of `{function}` does not match its declared "
                             f"type: {bad}", f"pass {name} as the tokenizer gives them: a "
                             "[batch, tokens] int64 tensor", _describe(ids))
    return ids.long()


def check_mask(function: str, mask: Any, ids: torch.Tensor, inferred: bool = False
               ) -> torch.Tensor:
    """``attention_mask`` with transformers' meaning: ``[b, s]`` like ``ids``, 1 for a real
    token and 0 for padding, as integers or booleans; every row has a real token."""
    shown = "the attention mask inferred from the pad token" if inferred else \
        f"`attention_mask` of `{function}`"
    bad = None
    if not isinstance(mask, torch.Tensor) or mask.dtype.is_floating_point \
            or mask.dtype.is_complex:
        bad = "it must be an integer or bool tensor of 0s and 1s"
    elif tuple(mask.shape) != tuple(ids.shape):
        bad = f"it must have the shape of `ids`, {tuple(ids.shape)}"
    elif not holds(((mask == 0) | (mask == 1)).all(), f"GT3001: {shown}: it must hold 0 "
                   "(padding) or 1 (a real token) in every place"):
        bad = "it must hold 0 (padding) or 1 (a real token) in every place"
    elif not holds((mask != 0).any(1).all(), f"GT3001: {shown}: every row needs a real "
                   "token"):
        row = int((mask == 0).all(1).nonzero()[0, 0])
        bad = f"every row needs a real token (row {row} is all padding)"
    if bad is not None:
        raise argument_error("GT3001", f"{shown} does not match its declared type: {bad}",
                             "pass the attention mask the tokenizer gives with the ids (1 for "
                             "a real token, 0 for padding)", _describe(mask))
    return mask.to(device=ids.device, dtype=torch.int64)


def _check_memory(function: str, ids: torch.Tensor, beams: int, n: int, vocab: int) -> None:
    """Refuse, before anything runs, a decoding whose own tensors alone (the candidates'
    scores over the vocabulary, and the sequences) would not fit in half of memory."""
    from gtdsl.runtime.tensorfile import memory_bytes

    rows = ids.shape[0] * beams
    need = rows * (3 * 4 * vocab + 3 * 8 * (ids.shape[-1] + n))
    limit = memory_bytes()
    if limit is not None and need > limit // 2:
        raise argument_error("GT3001", f"`beams` and `max_new_tokens` of `{function}` ask for "
                             f"{rows} rows of {ids.shape[-1] + n} tokens: at least {need} "
                             f"bytes, more than half of this machine's memory ({limit} bytes)",
                             "use fewer beams or new tokens, or a smaller batch",
                             f"beams={beams}, max_new_tokens={n}")


def check_count(function: str, name: str, value: Any, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise argument_error("GT3001", f"`{name}` of `{function}` does not match its declared "
                             f"type: it must be an int of at least {least}",
                             f"pass a whole number >= {least}", _describe(value))
    return value


def _check_tokens(function: str, name: str, value: Any, many: bool, vocab: int) -> None:
    """A token id (or, ``many``, a list of them) in ``[0, vocab)``, or None."""
    def token(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < vocab
    ok = value is None or token(value) or (
        many and isinstance(value, (list, tuple)) and all(token(v) for v in value))
    if not ok:
        raise argument_error("GT3001", f"`{name}` of `{function}` does not match its declared "
                             f"type: it must be a token id in [0, {vocab})"
                             f"{' or a list of them' if many else ''}",
                             "pass token ids as ints", _describe(value))


def check_options(function: str, options: dict[str, Any], accepted: tuple[str, ...]) -> None:
    """Keyword arguments a decoding method does not take: a setting of ``NO_OP`` at its no-op
    value passes (``typical_p=1.0``), anything else is GT2013 naming it."""
    for key, value in options.items():
        if key in NO_OP and is_no_op(key, value):
            continue
        if key in NO_OP:
            message = f"`{function}` does not support `{key}={value!r}`"[:300]
            help = ("gtdsl samples with temperature, top_k and top_p, not this filter"
                    if key in SAMPLING else "gtdsl does not implement this setting") + \
                "; drop the argument (or pass its default)"
        else:
            message = f"`{function}` got an unexpected keyword argument `{key}`"
            help = f"it takes {', '.join(f'`{a}`' for a in accepted)} by keyword"
            if key in ("max_length", "max_new_tokens"):
                help = "give the number of new tokens as `max_new_tokens`"
        raise argument_error("GT2013", message, help)


ACCEPTED = ("attention_mask", "eos_token_id", "pad_token_id", "length_penalty",
            "early_stopping", "generator", "streamer", *SETTINGS)


class Decoding(ABC):
    """Generation for a model class that provides ``dir`` (its folder), ``raw_config`` (its
    config.json), ``_vocab`` and ``_decoder(ids, rows, mask, n, settings)``: the decoder's
    prompt, its first next-token logits (one row per prompt) and the ``advance`` function, the
    model's state repeated ``rows`` times per prompt. ``infers_mask``: without an
    ``attention_mask``, the mask is inferred from the pad token as transformers' ``generate``
    does for a decoder-only model; ``decoder_only``: the prompt is the start of the output
    (the repetition penalty skips its left padding)."""

    dir: Path
    raw_config: ModelConfig
    infers_mask = False
    decoder_only = False

    @property
    @abstractmethod
    def _vocab(self) -> int:
        """The vocabulary size."""

    @abstractmethod
    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, Advance]: ...

    def settings(self, **given: Any) -> dict[str, Any]:
        """Generation settings: the folder's (``config.json``, ``generation_config.json``)
        where ``given`` leaves one None."""
        out = settings(self.dir, self.raw_config, self._vocab)
        out.update({k: v for k, v in given.items() if v is not None})
        return out

    def _inputs(self, function: str, ids: Any, attention_mask: Any, s: dict[str, Any]
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The checked ids and mask (None: no padding). Without a mask, a decoder-only model
        infers it as transformers' ``generate`` does: ``ids != pad`` when the pad token is set,
        is not an end token and occurs in ``ids``."""
        ids = check_ids(function, ids, self._vocab)
        if attention_mask is not None:
            return ids, check_mask(function, attention_mask, ids)
        pad, eos = s["pad_token_id"], end_tokens(s["eos_token_id"])
        if not self.infers_mask or pad is None or (eos is not None and bool((eos == pad).any())) \
                or not bool((ids == pad).any()):
            return ids, None
        return ids, check_mask(function, (ids != pad).long(), ids, inferred=True)

    def _prepare(self, name: str, ids: Any, max_new_tokens: Any, attention_mask: Any,
                 eos_token_id: Any, pad_token_id: Any, length_penalty: Any,
                 early_stopping: Any, generator: Any, streamer: Any,
                 given: dict[str, Any], options: dict[str, Any]) -> Any:
        """Check every argument and merge the settings; returns what a decoding needs."""
        check_options(name, options, ACCEPTED)
        n = check_count(name, "max_new_tokens", max_new_tokens)
        _check_tokens(name, "eos_token_id", eos_token_id, True, self._vocab)
        _check_tokens(name, "pad_token_id", pad_token_id, False, self._vocab)
        for key, value in given.items():
            ok, what, _ = SETTINGS[key]
            if value is not None and not ok(value):
                raise argument_error("GT3001", f"`{key}` of `{name}` does not match its "
                                     f"declared type: it must be {what}", f"pass {what}",
                                     _describe(value))
        if length_penalty is not None and not finite(length_penalty):
            raise argument_error("GT3001", f"`length_penalty` of `{name}` does not match its "
                                 "declared type: it must be a finite number", "pass a float",
                                 _describe(length_penalty))
        if early_stopping is not None and not (early_stopping is True or early_stopping is False
                                               or early_stopping == "never"):
            raise argument_error("GT3001", f"`early_stopping` of `{name}` does not match its "
                                 "declared type: it must be True, False or \"never\"",
                                 "pass True, False or \"never\"", _describe(early_stopping))
        if generator is not None and (not isinstance(generator, torch.Generator)
                                      or generator.device.type != "cpu"):
            raise argument_error("GT3001", f"`generator` of `{name}` does not match its "
                                 "declared type: it must be a CPU torch.Generator (the "
                                 "model runs on the CPU)",
                                 "pass torch.Generator().manual_seed(seed)",
                                 _describe(generator))
        if streamer is not None and not (callable(streamer) or (
                callable(getattr(streamer, "put", None)) and
                callable(getattr(streamer, "end", None)))):
            raise argument_error("GT3001", f"`streamer` of `{name}` does not match its "
                                 "declared type: it must have put(tokens) and end() methods "
                                 "(a transformers streamer) or be a callable",
                                 "pass a function of the new tokens", _describe(streamer))
        s = self.settings(eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                          length_penalty=length_penalty, early_stopping=early_stopping,
                          **given)
        beams, sample, r = s["num_beams"], s["do_sample"], s["num_return_sequences"]
        if not sample:
            idle = [k for k in WARPERS if given.get(k) is not None
                    and given[k] != SETTINGS[k][2]]
            if idle:
                warnings.warn(f"`{name}`: {', '.join(f'`{k}`' for k in idle)} only apply when "
                              "sampling (do_sample=True); decoding without them, as "
                              "transformers does", UserWarning, stacklevel=4)
        if beams == 1 and not sample and r > 1:
            raise argument_error("GT3001", f"`num_return_sequences={r}` of `{name}` asks for "
                                 f"{r} answers per prompt from greedy decoding, which has one",
                                 "sample (do_sample=True) or search with num_beams >= "
                                 "num_return_sequences")
        if beams > 1 and r > beams:
            raise argument_error("GT3001", f"`num_return_sequences={r}` of `{name}` exceeds "
                                 f"`num_beams={beams}`: beam search keeps {beams} answers",
                                 "ask for at most num_beams answers")
        if beams > 1 and streamer is not None:
            raise argument_error("GT2013", f"`{name}` cannot stream beam search: a beam's "
                                 "tokens change until the search ends",
                                 "stream greedy decoding or sampling (num_beams=1)")
        ids, mask = self._inputs(name, ids, attention_mask, s)
        _check_memory(name, ids, max(beams, r), n, self._vocab)
        return ids, mask, n, s

    def _processors(self, s: dict[str, Any], prompt: torch.Tensor, mask: torch.Tensor | None,
                    rows: int) -> Processors | None:
        ignore = None
        if self.decoder_only and mask is not None:
            ignore = (mask != 0).int().argmax(1).repeat_interleave(rows)
        eos = end_tokens(s["eos_token_id"])
        beams = s["num_beams"]
        keep = (len(eos) + 1 if eos is not None else 2) if beams > 1 else 1
        out = Processors(s, eos, prompt.shape[1], ignore, s["do_sample"], keep)
        return out if out.active else None

    def _decoding(self, name: str, ids: Any, max_new_tokens: Any, attention_mask: Any,
             eos_token_id: Any, pad_token_id: Any, length_penalty: Any, early_stopping: Any,
             generator: Any, streamer: Any, given: dict[str, Any], options: dict[str, Any]
             ) -> tuple[torch.Tensor | Generator[torch.Tensor, None, torch.Tensor],
                        torch.Tensor]:
        """The output of beam search, or the steps of greedy decoding or sampling; and the
        decoder's prompt (one row per sequence)."""
        ids, mask, n, s = self._prepare(name, ids, max_new_tokens, attention_mask,
                                        eos_token_id, pad_token_id, length_penalty,
                                        early_stopping, generator, streamer, given, options)
        beams, sample, r = s["num_beams"], s["do_sample"], s["num_return_sequences"]
        rows = beams if beams > 1 else r
        with torch.no_grad():
            prompt, first, advance = self._decoder(ids, rows, mask, n, s)
        process = self._processors(s, prompt, mask, rows)
        if beams > 1:
            with torch.no_grad():
                return beam_search(first, prompt, advance, beams, n, s["eos_token_id"],
                                   s["pad_token_id"], s["length_penalty"],
                                   s["early_stopping"], process, sample, generator, r), prompt
        if rows > 1:
            prompt = prompt.repeat_interleave(rows, 0)
            first = first.repeat_interleave(rows, 0)
        return decode_steps(first, prompt, advance, n, s["eos_token_id"], s["pad_token_id"],
                            process, sample, generator), prompt

    def generate(self, ids: torch.Tensor, max_new_tokens: int, *,
                 attention_mask: torch.Tensor | None = None, eos_token_id: EndTokens = None,
                 pad_token_id: int | None = None, num_beams: int | None = None,
                 do_sample: bool | None = None, temperature: float | None = None,
                 top_k: int | None = None, top_p: float | None = None,
                 repetition_penalty: float | None = None,
                 no_repeat_ngram_size: int | None = None, min_length: int | None = None,
                 min_new_tokens: int | None = None, num_return_sequences: int | None = None,
                 length_penalty: float | None = None,
                 early_stopping: EarlyStopping | None = None,
                 generator: torch.Generator | None = None, streamer: Streamer = None,
                 **options: Any) -> torch.Tensor:
        """Generate ``max_new_tokens`` tokens after ``ids`` ``[b, s]`` as transformers'
        ``generate`` does, with its names and meanings: greedy decoding, sampling
        (``do_sample=True`` with ``temperature``, ``top_k``, ``top_p``) or beam search
        (``num_beams`` > 1, sampled with ``do_sample``), with ``repetition_penalty``,
        ``no_repeat_ngram_size``, ``min_length`` and ``min_new_tokens``, and
        ``num_return_sequences`` answers per prompt (rows ``i * r .. i * r + r - 1`` answer
        prompt ``i``). Every setting left None comes from the folder's
        ``generation_config.json`` (else ``config.json``), else transformers' default.

        A sequence that emits the end token is finished (its later positions hold the pad
        token), and decoding stops when all are. ``attention_mask`` (1 real, 0 padding) has
        transformers' meaning. ``generator`` (a ``torch.Generator``) makes sampling
        reproducible; without it the global generator draws, as in transformers, so
        ``torch.manual_seed`` before either gives the same tokens. ``streamer`` gets the tokens
        as they come: an object with ``put``/``end`` (transformers' ``TextStreamer`` works), or
        a callable given each step's new tokens ``[rows]``."""
        return self._call(f"{type(self).__name__}.generate", ids, max_new_tokens, dict(
            attention_mask=attention_mask, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            num_beams=num_beams, do_sample=do_sample, temperature=temperature, top_k=top_k,
            top_p=top_p, repetition_penalty=repetition_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size, min_length=min_length,
            min_new_tokens=min_new_tokens, num_return_sequences=num_return_sequences,
            length_penalty=length_penalty, early_stopping=early_stopping, generator=generator,
            streamer=streamer, **options))

    def _call(self, name: str, ids: Any, max_new_tokens: Any, kw: dict[str, Any]
              ) -> torch.Tensor:
        options = {k: v for k, v in kw.items() if k not in ACCEPTED}
        given = {k: kw.get(k) for k in SETTINGS}
        streamer = kw.get("streamer")
        run, prompt = self._decoding(name, ids, max_new_tokens, kw.get("attention_mask"),
                                     kw.get("eos_token_id"), kw.get("pad_token_id"),
                                     kw.get("length_penalty"), kw.get("early_stopping"),
                                     kw.get("generator"), streamer, given, options)
        return run if isinstance(run, torch.Tensor) else run_steps(run, prompt, streamer)

    def stream(self, ids: torch.Tensor, max_new_tokens: int, **settings: Any
               ) -> Generator[torch.Tensor, None, None]:
        """``generate`` (greedy decoding or sampling, with the same settings) as an iterator of
        each step's new tokens ``[rows]``, yielded as soon as they are chosen."""
        name = f"{type(self).__name__}.stream"
        options = {k: v for k, v in settings.items() if k not in ACCEPTED}
        given = {k: settings.get(k) for k in SETTINGS}
        if given["num_beams"] not in (None, 1):
            raise argument_error("GT2013", f"`{name}` cannot stream beam search: a beam's "
                                 "tokens change until the search ends",
                                 "stream greedy decoding or sampling (num_beams=1)")
        if settings.get("streamer") is not None:
            raise argument_error("GT2013", f"`{name}` is itself the stream; it takes no "
                                 "`streamer`", "iterate over what it returns")
        given["num_beams"] = 1
        run, _ = self._decoding(name, ids, max_new_tokens, settings.get("attention_mask"),
                           settings.get("eos_token_id"), settings.get("pad_token_id"),
                           settings.get("length_penalty"), settings.get("early_stopping"),
                           settings.get("generator"), None, given, options)
        assert not isinstance(run, torch.Tensor)
        yield from run

    def beam_search(self, ids: torch.Tensor, max_new_tokens: int, beams: int,
                    **settings: Any) -> torch.Tensor:
        """``generate`` with ``num_beams=beams``: beam search with the cache reordered to
        follow the beams, by transformers' rules (see :mod:`gtdsl.models.search`)."""
        name = f"{type(self).__name__}.beam_search"
        check_count(name, "beams", beams)
        if "num_beams" in settings:
            raise argument_error("GT2013", f"`{name}` takes the beam count as `beams`, not "
                                 "`num_beams`", "pass beams once")
        return self._call(name, ids, max_new_tokens, dict(settings, num_beams=beams))

    # ------------------------------------------------------------------ text
    def _check_prompt(self, ids: torch.Tensor, max_new_tokens: int) -> None:
        """Refuse a tokenized prompt the model cannot run (a decoder with learned positions
        checks that the prompt and the new tokens fit them)."""

    def generate_texts(self, prompt: str, max_new_tokens: int = 20, beams: int = 1, *,
                       stream: Callable[[str], Any] | None = None, **settings: Any
                       ) -> list[str]:
        """Tokenize ``prompt`` with the folder's tokenizer, ``generate`` (``beams`` > 1: beam
        search; ``settings`` as ``generate`` takes them), and detokenize each answer (a
        decoder-only model's answer starts with the prompt; special tokens are left out).
        ``stream`` (one answer, no beams) is called with each piece of text as soon as it is
        final: the pieces add up to the answer."""
        name = f"{type(self).__name__}.generate_texts"
        if not isinstance(prompt, str):
            raise argument_error("GT3001", f"`prompt` of `{name}` must be a string",
                                 "pass the text to continue", _describe(prompt))
        check_count(name, "max_new_tokens", max_new_tokens)
        check_count(name, "beams", beams)
        if stream is not None and not callable(stream):
            raise argument_error("GT3001", f"`stream` of `{name}` must be a function of each "
                                 "piece of text", "pass print, or a function of a str",
                                 _describe(stream))
        tok = self.tokenizer()
        ids = torch.tensor([tok.encode(prompt).ids], dtype=torch.int64)
        if ids.shape[1] == 0:
            raise argument_error("GT3001", f"`prompt` of `{name}` is empty after "
                                 "tokenization", "give a prompt with text in it")
        self._check_prompt(ids, max_new_tokens)
        streamer = None
        if stream is not None:
            streamer = TextStream(lambda row: tok.decode(row), stream)
        out = self.beam_search(ids, max_new_tokens, beams, streamer=streamer, **settings) \
            if beams != 1 else self.generate(ids, max_new_tokens, streamer=streamer, **settings)
        return [tok.decode(row.tolist()) for row in out]

    def generate_text(self, prompt: str, max_new_tokens: int = 20, beams: int = 1, *,
                      stream: Callable[[str], Any] | None = None, **settings: Any) -> str:
        """``generate_texts`` for one answer."""
        if settings.get("num_return_sequences") not in (None, 1):
            raise argument_error("GT3001", "`generate_text` gives one answer",
                                 "call generate_texts(...) for num_return_sequences answers")
        return self.generate_texts(prompt, max_new_tokens, beams, stream=stream,
                                   **settings)[0]

    def tokenizer(self) -> Any:
        """The folder's ``tokenizer.json``."""
        return load_tokenizer(self.dir)


__all__ = ["NO_OP", "SETTINGS", "Decoding", "TextStream", "argument_error", "beam_search", "cached",
           "check_ids", "check_mask", "decode_steps", "end_tokens", "greedy", "is_no_op",
           "run_steps", "settings"]
