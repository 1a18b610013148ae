"""GPT-2 from a Hugging Face-layout folder, run by ``gpt2.gt``, with a KV cache, greedy
generation and beam search.

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
from gtdsl.models.sharing import Card, save_folder
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
NEG = -1e9  # the additive bias of a masked key: exp underflows to exactly 0
BUFFERS = (".attn.bias", ".attn.masked_bias")  # the attention mask buffers, not read
HEADS = ("score.", "qa_outputs.", "classifier.")  # task heads' tensors


def attention_bias(keys: torch.Tensor, s: int) -> torch.Tensor:
    """The additive bias ``[b, 1, s, t + s]`` of s new tokens after t cached ones: ``keys``
    ``[b, t + s]`` masks padding, and query i sees the keys 0 .. t + i (one new token sees
    every key: the padding bias alone)."""
    if s == 1:
        return keys[:, None, None, :]
    t = keys.shape[1] - s
    causal = torch.triu(torch.full((s, t + s), NEG), t + 1)  # key j > t + i is in the future
    return (causal + keys[:, None, :]).unsqueeze(1)


class KVCache:
    """The keys and values of every layer in one preallocated tensor
    ``[2, layers, rows, H, capacity, K]``, filled for the first ``length`` tokens. A step
    writes its new keys and values in place after the cached ones and the blocks read views
    of the filled part, so no token copies the cache. ``reorder`` (beam search) gathers the
    rows into a second buffer of the same size and swaps the two; the first ``shared``
    positions, equal in every row a reorder mixes (a prompt's, repeated for its beams), are
    not copied."""

    def __init__(self, layers: int, rows: int, heads: int, kdim: int, capacity: int) -> None:
        self._use(torch.empty(2, layers, rows, heads, capacity, kdim))
        self.length = 0
        self.shared = 0
        self._spare: torch.Tensor | None = None

    def _use(self, data: torch.Tensor) -> None:
        """Hold ``data``, with a view of each layer's keys and values ``[2, rows, H,
        capacity, K]`` (made once per buffer, not per token)."""
        self.data = data
        self._layers = data.unbind(1)

    @classmethod
    def holding(cls, cache: list[tuple[torch.Tensor, torch.Tensor]], capacity: int) -> KVCache:
        """A cache of ``capacity`` tokens holding ``cache`` (per layer, keys and values
        ``[rows, H, t, K]``)."""
        rows, heads, t, kdim = cache[0][0].shape
        out = cls(len(cache), rows, heads, kdim, capacity)
        if t:
            for layer, (k, v) in zip(out._layers, cache):
                layer[0, :, :, :t] = k
                layer[1, :, :, :t] = v
        out.length = t
        return out

    def write(self, layer: int, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new keys and values ``kv`` ``[2, rows, H, s, K]`` of ``layer`` after the
        cached tokens; the keys and values of all ``length + s`` tokens, as views."""
        end = self.length + kv.shape[-2]
        both = self._layers[layer]
        both[:, :, :, self.length:end] = kv
        filled = both[:, :, :, :end]
        return filled[0], filled[1]

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues row ``rows[i]`` (a row whose first ``shared`` positions equal
        row i's)."""
        start, t = self.shared, self.length
        if self._spare is None:
            self._spare = torch.empty_like(self.data)
            self._spare[..., :start, :] = self.data[..., :start, :]
        torch.index_select(self.data[..., start:t, :], 2, rows,
                           out=self._spare[..., start:t, :])
        old = self.data
        self._use(self._spare)
        self._spare = old

    def repeated(self, times: int) -> KVCache:
        """A cache of the same capacity with each row repeated ``times`` times in a row (the
        beams of a prompt): the positions cached so far are shared by each row's copies."""
        _, layers, rows, heads, capacity, kdim = self.data.shape
        out = KVCache(layers, rows * times, heads, kdim, capacity)
        t = out.length = out.shared = self.length
        torch.index_select(self.data[..., :t, :], 2,
                           torch.arange(rows).repeat_interleave(times),
                           out=out.data[..., :t, :])
        return out

    def tensors(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the keys and values of the cached tokens ``[rows, H, length, K]``
        (views)."""
        t = self.length
        return [(layer[0, :, :, :t], layer[1, :, :, :t]) for layer in self._layers]


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
        name = Path(directory).resolve().name
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
    def new_cache(self, batch: int, capacity: int) -> KVCache:
        """An empty preallocated cache of ``batch`` rows for up to ``capacity`` tokens."""
        return KVCache(self.n_layers, batch, self.heads, self.hidden // self.heads, capacity)

    def empty_cache(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The cache ``step`` takes before the first token: per layer, keys and values of no
        token."""
        return self.new_cache(batch, 0).tensors()

    def _run(self, ids: torch.Tensor, positions: torch.Tensor, cache: KVCache,
             bias: torch.Tensor, last_only: bool = False, hidden: bool = False
             ) -> torch.Tensor:
        """The blocks over ``ids`` [b, s] at ``positions`` [b, s] after the ``cache.length``
        cached tokens; ``bias`` [b, 1, s, t + s] masks the keys (causality and padding). Each
        block's new keys and values are written into the cache in place; the logits are
        those of the last position only when ``last_only``."""
        kw = dict(H=self.sizes["H"], K=self.sizes["K"])
        m, eps, act = self.module, self.eps, self.act
        x = self.module.embed(self.embeddings, ids, positions)
        for layer, (p, scale) in enumerate(zip(self.blocks, self.scales)):
            qkv = m.attention_input(p, x, eps, **kw)
            k, v = cache.write(layer, qkv[1:])
            x = m.block(p, x, qkv[0], k, v, bias, eps, scale, act, **kw)
        cache.length += ids.shape[1]
        if last_only:
            x = x[:, -1:]
        if hidden:  # the hidden states the task heads read
            return m.final_norm(self.ln_f, x, eps)
        return m.logits(self.embeddings, self.ln_f, x, eps)

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
        if attention_mask is None:
            keys = torch.zeros(b, t + s)
            positions = torch.arange(t, t + s).expand(b, s)
        else:
            mask = attention_mask.long()
            keys = (1.0 - mask.float()) * NEG
            positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, t:]
        if position_ids is not None:
            positions = position_ids
        grown = KVCache.holding(cache, t + s)
        out = self._run(ids, positions, grown, attention_bias(keys, s))
        return out, grown.tensors()

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
            position_ids = search.check_ids(name, position_ids, self.sizes["P"], "position_ids")
            if position_ids.shape != ids.shape:
                raise search.argument_error(
                    "GT3001", f"`position_ids` of `{name}` does not match its declared type: "
                    f"it must be shaped like `ids`, {tuple(ids.shape)}",
                    "pass one position per token", f"shape {tuple(position_ids.shape)}")
        else:
            real = ids.shape[1] if mask is None else int(mask.sum(1).max())
            if real > self.sizes["P"]:
                raise search.argument_error(
                    "GT3001", f"`ids` of `{name}` has {real} tokens, more than the model's "
                    f"{self.sizes['P']} positions", "pass fewer tokens")
        return self.step(ids, self.empty_cache(ids.shape[0]), mask, position_ids)[0]

    @property
    def _vocab(self) -> int:
        return self.sizes["V"]

    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, search.Advance]:
        """The prompt, its next-token logits and the ``advance`` function the decoding loops
        call. The cache, the padding bias and the positions of every step are preallocated
        for the prompt and ``max_new_tokens``: the prompt runs once (its cache repeated for
        the beams), then one token per step, each new token real and one position after the
        previous one, its keys and values written in place; beam search reorders the cache
        rows to follow the beams (within a prompt's beams, so the bias and positions, equal
        for them, stay)."""
        b, s = ids.shape
        if mask is None:
            mask = torch.ones(b, s, dtype=torch.int64)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        last = positions[:, -1:]
        if int(last.max()) + max_new_tokens - 1 >= self.sizes["P"]:
            raise search.argument_error(
                "GT3001", f"the prompt ({int(last.max()) + 1} positions) and {max_new_tokens} "
                f"new tokens exceed the model's {self.sizes['P']} positions",
                "ask for fewer new tokens")
        capacity = s + max_new_tokens
        keys = torch.zeros(b, capacity)  # the new tokens are real: 0
        keys[:, :s] = (1.0 - mask.float()) * NEG
        cache = self.new_cache(b, capacity)
        first = self._run(ids, positions, cache, attention_bias(keys[:, :s], s), last_only=True)
        ahead = last + torch.arange(1, max_new_tokens + 1)  # [b, n]: the new tokens' positions
        if beams > 1:
            cache = cache.repeated(beams)
            keys = keys.repeat_interleave(beams, 0)
            ahead = ahead.repeat_interleave(beams, 0)
        bias = keys[:, None, None, :]  # one query: no causal part

        def advance(rows: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
            if rows is not None:
                cache.reorder(rows)
            t = cache.length
            return self._run(tokens, ahead[:, t - s:t - s + 1], cache, bias[..., :t + 1])[:, -1]
        return ids, first[:, -1], advance

    def _check_prompt(self, ids: torch.Tensor, max_new_tokens: int) -> None:
        if ids.shape[1] + max_new_tokens > self.sizes["P"]:
            raise _error(f"{ids.shape[1]} prompt tokens and {max_new_tokens} new ones exceed "
                         f"the model's {self.sizes['P']} positions", path=str(self.dir),
                         help="ask for fewer new tokens, or give a shorter prompt")


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
        if position_ids is None:
            position_ids = torch.arange(ids.shape[1]).expand(ids.shape)
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
        keys = torch.zeros(b, s) if mask is None else (1.0 - mask.float()) * NEG
        positions = torch.arange(s).expand(b, s) if position_ids is None else \
            search.check_ids(name, position_ids, self.sizes["P"], "position_ids")
        with torch.no_grad():
            return self._run(ids, positions, self.new_cache(b, s), attention_bias(keys, s),
                             hidden=True)

    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, search.Advance]:
        raise search.argument_error("GT2013", f"`{type(self).__name__}` classifies; it has no "
                                    "language-model head to generate with",
                                    "load the folder as GPT2 to generate")

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """The best label and its score (softmax; a sigmoid for one label or a
        ``multi_label_classification`` problem) per text, one text at a time unless the
        config has a pad token."""
        tok = self.tokenizer()
        out = []
        for text in texts:
            ids = torch.tensor([tok.encode(text).ids], dtype=torch.int64)
            logits = self.logits(ids)[0]
            multi = self.raw_config.get("problem_type") == "multi_label_classification" or \
                len(self.labels) == 1
            scores = logits.sigmoid() if multi else logits.softmax(-1)
            i = int(scores.argmax())
            out.append({"label": self.labels[i], "score": float(scores[i])})
        return out


__all__ = ["GPT2", "GPT2ForSequenceClassification", "ModelLoadError"]
