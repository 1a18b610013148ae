"""GPT-2 from a Hugging Face-layout folder, run by ``gpt2.gt``: the forward pass (the block
loop, the attention bias, the position ids, the key/value cache) is ``gpt2.gt``'s ``run``;
this file holds the key map, the config reading and the tokenizer.

The loader maps Hugging Face keys (with or without the ``transformer.`` prefix of
GPT2LMHeadModel) to the parameter structs and checks every tensor against its field's type;
the output head is tied to the token embeddings, so ``lm_head.weight`` (absent, or a copy) and
the attention mask buffers are skipped. Conv1D weights stay as stored, ``[in, out]``.

The config's ``activation_function`` (any of ``ACTIVATIONS``), ``scale_attn_weights`` and
``scale_attn_by_inverse_layer_idx`` are honoured; another activation is refused (GT0909).
Padding follows transformers' ``generate``: an ``attention_mask`` (1 real, 0 padding; left
padding for a batch of prompts) masks the keys, and the position ids count the real tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from gtdsl.models import search
from gtdsl.models.config import ACTIVATION_CODES
from gtdsl.models.structs import Weights, f32, flatten, prefixed, weight_bias
from gtdsl.models.sharing import Card, save_folder, target
from gtdsl.models.weights import ModelLoadError, read_weights
from gtdsl.models.weights import load_error as _error
from gtdsl.driver import load
from gtdsl.types import TList

HERE = Path(__file__).resolve().parent
# the key maps: struct field -> Hugging Face key (gtdsl.models.structs)
BLOCK = {"ln_1": weight_bias("ln_1"), "attn": weight_bias("attn.c_attn"),
         "proj": weight_bias("attn.c_proj"), "ln_2": weight_bias("ln_2"),
         "fc": weight_bias("mlp.c_fc"), "out": weight_bias("mlp.c_proj")}
EMBEDDINGS = {"token": "wte.weight", "position": "wpe.weight"}
LN_F = weight_bias("ln_f")
TIED = "lm_head.weight"  # the output head is the token embeddings: a copy is not read
# transformers' ACT2FN names -> the codes of `activation` in blocks.gt (prelu and xielu, with
# learned parameters, are refused)
ACTIVATIONS = ACTIVATION_CODES
BUFFERS = (".attn.bias", ".attn.masked_bias")  # the attention mask buffers, not read
HEADS = ("score.", "qa_outputs.", "classifier.")  # task heads' tensors


class GPT2(search.Decoding):
    """A loaded GPT-2: ``logits(ids, attention_mask)``, ``generate(ids, max_new_tokens)``,
    ``beam_search(ids, max_new_tokens, beams)``, ``generate_text(prompt)``."""

    infers_mask = True  # generate without a mask infers it from the pad token, as transformers
    decoder_only = True

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto") -> None:
        self.dir = Path(model_dir)
        try:
            from gtdsl.models.config import GPT2_KEYS, read_config

            self.raw_config = read_config(self.dir, GPT2_KEYS)  # checked: GT0909 naming the key
            c = self.raw_config
            self.heads, self.hidden = int(c["n_head"]), int(c["n_embd"])
            self.n_layers, self.eps = int(c["n_layer"]), float(c.get("layer_norm_epsilon", 1e-5))
            self.sizes = {"V": int(c["vocab_size"]), "P": int(c["n_positions"]),
                          "H": self.heads, "K": self.hidden // self.heads}
        except (OSError, ValueError, KeyError) as e:
            raise _error(f"cannot read the model config: {e}", path=str(self.dir),
                         help="a Hugging Face GPT-2 config.json is expected") from None
        self._read_flags()
        self.module = load(HERE / "gpt2.gt", backend=backend)
        self._load()

    def _read_flags(self) -> None:
        """The config keys that change the computation beyond the sizes: the MLP's activation
        and the attention scale per layer (transformers' GPT2Attention.scaling)."""
        c, where = self.raw_config, str(self.dir / "config.json")
        act = c.get("activation_function", "gelu_new")
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise _error(f"`activation_function` {json.dumps(act)[:80]} in config.json is not "
                         "supported by this GPT-2", path=where,
                         help="supported: " + ", ".join(sorted(ACTIVATIONS)))
        flags = {}
        for key, default in (("scale_attn_weights", True),
                             ("scale_attn_by_inverse_layer_idx", False)):
            flags[key] = c.get(key, default)
            if not isinstance(flags[key], bool):
                raise _error(f"`{key}` in config.json must be true or false, not "
                             f"{json.dumps(flags[key])[:80]}", path=where)
        self.act = ACTIVATIONS[act]
        base = self.sizes["K"] ** -0.5 if flags["scale_attn_weights"] else 1.0
        self.scales = [base / float(i + 1) if flags["scale_attn_by_inverse_layer_idx"] else base
                       for i in range(self.n_layers)]

    def _load(self) -> None:
        path = self.dir / "model.safetensors"
        tensors = {k.removeprefix("transformer."): v for k, v in read_weights(path).items()}
        weights = Weights(self.module, path, tensors, dict(self.sizes, D=self.hidden,
                                                           **self._head_sizes()))
        self.blocks = weights.load(TList(weights.struct_type("Block")), self._block_keys(),
                                   "blocks")
        self.embeddings = weights.load(weights.struct_type("PositionalEmbeddings", "V", "P",
                                                           "H*K"), EMBEDDINGS, "embeddings")
        self.ln_f = weights.load(weights.struct_type("Norm", "H*K"), LN_F, "ln_f")
        self._load_head(weights)
        weights.finish(type(self).__name__, ignore=lambda key: key.endswith(BUFFERS))

    def _head_sizes(self) -> dict[str, int]:
        """Sizes a task head adds to the config's (``L``: its labels)."""
        return {}

    def _load_head(self, weights: Weights) -> None:
        """The language-model head is tied to the token embeddings: a copy is not read, and
        a head of its own is refused (config.json's ``tie_word_embeddings`` is checked)."""
        head = weights.unchecked(TIED)
        if head is not None and not (head.shape == self.embeddings.token.shape and
                                     torch.equal(head, self.embeddings.token)):
            raise _error(f"`{TIED}` differs from the token embeddings it is tied to",
                         path=str(self.dir / "model.safetensors"),
                         help="save the model with its output head tied")
        # a task head's tensors (GPT2ForSequenceClassification's score): kept, saved back
        self.head_tensors = {k: t for k in list(weights.tensors) if k.startswith(HEADS)
                             and (t := weights.unchecked(k)) is not None}

    def _block_keys(self) -> list[Any]:
        return [prefixed(f"h.{i}.", BLOCK) for i in range(self.n_layers)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters by Hugging Face key name (GPT2LMHeadModel's, Conv1D weights
        ``[in, out]`` as stored; the tied head is left out)."""
        out = {**flatten(self.embeddings, EMBEDDINGS), **flatten(self.ln_f, LN_F),
               **flatten(self.blocks, self._block_keys())}
        return {**{f"transformer.{k}": v for k, v in out.items()},
                **getattr(self, "head_tensors", {})}

    ARCHITECTURE = "GPT2LMHeadModel"
    PIPELINE = "text-generation"
    USAGE = "text = {cls}(\"{name}\").generate_text(\"Once upon a time\", 20)"

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model as the Hub shares it (:mod:`gtdsl.models.sharing`): every loaded
        tensor, ``config.json``, the tokenizer files, ``generation_config.json`` and a model
        card; each file is written whole, then renamed."""
        name = target(directory).resolve().name
        card = Card(self.ARCHITECTURE, "GPT-2", self.PIPELINE,
                    {"layers": self.n_layers, "hidden size": self.hidden,
                     "attention heads": self.heads, "vocabulary": self.sizes["V"],
                     "positions": self.sizes["P"]},
                    f"{type(self).__module__}.{type(self).__name__}",
                    f"from {type(self).__module__} import {type(self).__name__}\n\n" +
                    self.USAGE.format(cls=type(self).__name__, name=name))
        return save_folder(self.dir, directory, self.state_dict(), self.raw_config, card,
                           generative=self.PIPELINE == "text-generation")

    # ------------------------------------------------------------------ running
    def empty_cache(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The cache ``step`` takes before the first token: per block, keys and values of no
        token."""
        empty = torch.zeros(batch, self.heads, 0, self.hidden // self.heads)
        return [(empty, empty)] * self.n_layers

    # the forward pass is gpt2.gt's `run` (the block loop, the bias, the cache): here, its
    # arguments
    def _run(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor,
             ks: list[torch.Tensor], vs: list[torch.Tensor]
             ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``run`` over ``ids`` [b, s] at ``positions`` after the cached keys ``ks`` and
        values ``vs`` [b, H, t, K] per block; ``mask`` [b, t + s] (1 real, 0 padding).
        The hidden states before the final norm, and the grown cache."""
        out: tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]] = self.module.run(
            self.embeddings, ids, positions, mask, ks, vs, self.blocks, self.scales, self.eps,
            self.act, H=self.sizes["H"], K=self.sizes["K"])
        return out

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.module.logits(self.embeddings, self.ln_f, x, self.eps)
        return out

    def step(self, ids: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]],
             attention_mask: torch.Tensor | None = None,
             position_ids: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Logits for ``ids`` [b, s] after the t cached tokens, and the grown cache.
        ``attention_mask`` [b, t + s] covers the cached and the new tokens (1 real, 0
        padding; None: all real); ``position_ids`` [b, s] default to the count of real tokens
        before each one (0 on padding), as transformers' ``generate`` computes them."""
        t = cache[0][0].shape[2]
        b, s = ids.shape
        mask = torch.ones(b, t + s, dtype=torch.int64) if attention_mask is None else \
            attention_mask.long()
        positions = position_ids if position_ids is not None else \
            self.module.positions_of(mask)[:, t:]
        x, ks, vs = self._run(ids, positions, mask, [k for k, _ in cache],
                              [v for _, v in cache])
        return self._logits(x), list(zip(ks, vs))

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits [b, s, V] for every position of ``ids`` [b, s]. With an
        ``attention_mask`` (1 real, 0 padding) the padding is masked and the position ids
        count the real tokens, as in ``generate``: a left-padded row gives, at its real
        positions, the logits of the row without its padding. transformers' model called with
        ``attention_mask`` alone numbers the positions 0 .. s-1 instead: pass
        ``position_ids=torch.arange(s).expand(b, s)`` for that."""
        name = "GPT2.logits"
        ids = search.check_ids(name, ids, self.sizes["V"])
        mask = None if attention_mask is None else search.check_mask(name, attention_mask, ids)
        if position_ids is not None:
            position_ids = self._positions(name, position_ids, ids)
        elif mask is not None and search.exporting():
            search.holds(mask.sum(1).max() <= self.sizes["P"], f"GT3001: `ids` of `{name}` "
                         f"has more tokens than the model's {self.sizes['P']} positions")
        else:
            real = ids.shape[1] if mask is None else int(mask.sum(1).max())
            if real > self.sizes["P"]:
                raise search.argument_error(
                    "GT3001", f"`ids` of `{name}` has {real} tokens, more than the model's "
                    f"{self.sizes['P']} positions", "pass fewer tokens")
        return self.step(ids, self.empty_cache(ids.shape[0]), mask, position_ids)[0]

    def _positions(self, name: str, position_ids: Any, ids: torch.Tensor) -> torch.Tensor:
        """``position_ids`` checked: ids of the position table, one per token of ``ids``."""
        positions = search.check_ids(name, position_ids, self.sizes["P"], "position_ids")
        if positions.shape != ids.shape:
            raise search.argument_error(
                "GT3001", f"`position_ids` of `{name}` does not match its declared type: "
                f"it must be shaped like `ids`, {tuple(ids.shape)}",
                "pass one position per token", f"shape {tuple(positions.shape)}")
        return positions

    @property
    def _vocab(self) -> int:
        return self.sizes["V"]

    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, search.Advance]:
        """The prompt, its next-token logits and the ``advance`` function the decoding loops
        call. The prompt runs once (its cache repeated for the beams), then one token per
        step, each new token real and one position after the previous one; beam search
        reorders the cache rows to follow the beams (within a prompt's beams, so the mask
        and positions, equal for them, stay)."""
        b, s = ids.shape
        n = max_new_tokens
        if mask is None:
            mask = torch.ones(b, s, dtype=torch.int64)
        positions = self.module.positions_of(mask)
        last = positions[:, -1:]
        if int(last.max()) + n - 1 >= self.sizes["P"]:
            raise search.argument_error(
                "GT3001", f"the prompt ({int(last.max()) + 1} positions) and {n} new tokens "
                f"exceed the model's {self.sizes['P']} positions", "ask for fewer new tokens")
        empty = [torch.zeros(b, self.heads, 0, self.sizes["K"])] * self.n_layers
        x, ks, vs = self._run(ids, positions, mask, empty, empty)
        first = self._logits(x[:, -1:])
        full = torch.cat([mask, torch.ones(b, n, dtype=torch.int64)], 1)  # new tokens: real
        ahead = last + torch.arange(1, n + 1)  # [b, n]: the new tokens' positions
        if beams > 1:
            ks = [k.repeat_interleave(beams, 0) for k in ks]
            vs = [v.repeat_interleave(beams, 0) for v in vs]
            full = full.repeat_interleave(beams, 0)
            ahead = ahead.repeat_interleave(beams, 0)
        box = [ks, vs]

        def advance(rows: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
            ks, vs = box
            if rows is not None:
                ks = [k.index_select(0, rows) for k in ks]
                vs = [v.index_select(0, rows) for v in vs]
            t = ks[0].shape[2]
            x, box[0], box[1] = self._run(tokens, ahead[:, t - s:t - s + 1], full[:, :t + 1],
                                          ks, vs)
            return self._logits(x)[:, -1]
        return ids, first[:, -1], advance

    def _check_prompt(self, ids: torch.Tensor, max_new_tokens: int) -> None:
        if ids.shape[1] + max_new_tokens > self.sizes["P"]:
            raise search.argument_error(
                "GT3001", f"{ids.shape[1]} prompt tokens and {max_new_tokens} new ones exceed "
                f"the model's {self.sizes['P']} positions",
                "ask for fewer new tokens, or give a shorter prompt")


class GPT2ForSequenceClassification(GPT2):
    """transformers' GPT2ForSequenceClassification: ``score`` (no bias) over the hidden state
    of each row's last token that is not the pad token: ``logits(ids, attention_mask)``
    ``[b, labels]`` and ``classify(texts)``."""

    SCORE = "score.weight"
    ARCHITECTURE = "GPT2ForSequenceClassification"
    PIPELINE = "text-classification"
    USAGE = "labels = {cls}(\"{name}\").classify([\"A sentence.\"])"

    def _head_sizes(self) -> dict[str, int]:
        from gtdsl.models.config import read_labels

        self.labels = read_labels(self.raw_config, self.dir / "config.json")
        return {"L": len(self.labels)}

    def _load_head(self, weights: Weights) -> None:
        self.score = weights.load(f32(labels="L", hidden="D"), self.SCORE, "score")

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), self.SCORE: self.score}

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Label logits ``[b, labels]``. As transformers' model, the position ids are 0 ..
        s-1 (pass ``position_ids`` for others) and each row is read at its last token that
        is not ``pad_token_id`` (without a pad token the batch must be one row)."""
        name = f"{type(self).__name__}.logits"
        ids = search.check_ids(name, ids, self.sizes["V"])
        pad = self.raw_config.get("pad_token_id")
        if not isinstance(pad, int) or isinstance(pad, bool):
            if ids.shape[0] != 1:
                raise search.argument_error(
                    "GT3001", f"`{name}` cannot find the last token of each row: config.json "
                    "has no `pad_token_id`", "classify one row at a time, or set "
                    "pad_token_id in config.json", f"{ids.shape[0]} rows")
            last = torch.full((1,), ids.shape[1] - 1)
        else:
            real = (ids != pad).long()
            last = (torch.arange(ids.shape[1]) * real).argmax(-1)
        h = self.hidden_states(ids, attention_mask, position_ids)
        with torch.no_grad():
            out: torch.Tensor = self.module.score(self.score, h[torch.arange(ids.shape[0]), last])
        return out

    def hidden_states(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The final hidden states ``[b, s, hidden]`` (after the final layer norm)."""
        name = f"{type(self).__name__}.hidden_states"
        ids = search.check_ids(name, ids, self.sizes["V"])
        mask = None if attention_mask is None else search.check_mask(name, attention_mask, ids)
        if ids.shape[1] > self.sizes["P"]:
            raise search.argument_error(
                "GT3001", f"`ids` of `{name}` has {ids.shape[1]} tokens, more than the "
                f"model's {self.sizes['P']} positions", "pass fewer tokens")
        b, s = ids.shape
        positions = torch.arange(s).expand(b, s) if position_ids is None else \
            self._positions(name, position_ids, ids)
        empty = [k for k, _ in self.empty_cache(b)]
        with torch.no_grad():
            x, _, _ = self._run(ids, positions, torch.ones(b, s, dtype=torch.int64)
                                if mask is None else mask, empty, empty)
            out: torch.Tensor = self.module.final_norm(self.ln_f, x, self.eps)
        return out

    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, search.Advance]:
        raise search.argument_error("GT2013", f"`{type(self).__name__}` classifies; it has no "
                                    "language-model head to generate with",
                                    "load the folder as GPT2 to generate")

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """The best label and its score (softmax; a sigmoid for one label or a
        ``multi_label_classification`` problem) per text, one text at a time unless the
        config has a pad token. A string is one text."""
        tok = self.tokenizer()
        out = []
        for text in ([texts] if isinstance(texts, str) else texts):
            ids = torch.tensor([tok.encode(text).ids], dtype=torch.int64)
            logits = self.logits(ids)[0]
            multi = self.raw_config.get("problem_type") == "multi_label_classification" or \
                len(self.labels) == 1
            scores = logits.sigmoid() if multi else logits.softmax(-1)
            i = int(scores.argmax())
            out.append({"label": self.labels[i], "score": float(scores[i])})
        return out


__all__ = ["GPT2", "GPT2ForSequenceClassification", "ModelLoadError"]
