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
from gtdsl.models.structs import Weights, flatten, prefixed, weight_bias
from gtdsl.models.weights import ModelLoadError, read_weights, save_folder
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


class GPT2(search.Decoding):
    """A loaded GPT-2: ``logits(ids, attention_mask)``, ``generate(ids, max_new_tokens)``,
    ``beam_search(ids, max_new_tokens, beams)``, ``generate_text(prompt)``."""

    infers_mask = True  # generate without a mask infers it from the pad token, as transformers

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
        weights = Weights(self.module, path, tensors, dict(self.sizes, D=self.hidden))
        self.blocks = weights.load(TList(weights.struct_type("Block")), self._block_keys(),
                                   "blocks")
        self.embeddings = weights.load(weights.struct_type("PositionalEmbeddings", "V", "P",
                                                           "H*K"), EMBEDDINGS, "embeddings")
        self.ln_f = weights.load(weights.struct_type("Norm", "H*K"), LN_F, "ln_f")
        weights.unchecked(TIED)
        weights.finish("GPT-2", ignore=lambda key: key.endswith(BUFFERS))

    def _block_keys(self) -> list[Any]:
        return [prefixed(f"h.{i}.", BLOCK) for i in range(self.n_layers)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters by Hugging Face key name (GPT2LMHeadModel's, Conv1D weights
        ``[in, out]`` as stored; the tied head is left out)."""
        out = {**flatten(self.embeddings, EMBEDDINGS), **flatten(self.ln_f, LN_F),
               **flatten(self.blocks, self._block_keys())}
        return {f"transformer.{k}": v for k, v in out.items()}

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model back as a Hugging Face folder (``config.json``,
        ``model.safetensors``, the tokenizer and generation files)."""
        return save_folder(self.dir, directory, self.state_dict(), self.raw_config)

    # ------------------------------------------------------------------ running
    def empty_cache(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        kdim = self.hidden // self.heads
        z = torch.zeros(batch, self.heads, 0, kdim)
        return [(z, z) for _ in range(self.n_layers)]

    def _run(self, ids: torch.Tensor, cache: list[tuple[torch.Tensor, torch.Tensor]],
             keys: torch.Tensor, positions: torch.Tensor
             ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """The blocks over ``ids`` [b, s] at ``positions`` [b, s], after the cache; ``keys``
        [b, t + s] is the additive padding bias over the cached and new tokens."""
        kw = dict(H=self.sizes["H"], K=self.sizes["K"])
        x = self.module.embed(self.embeddings, ids, positions)
        new_cache = []
        for p, (pk, pv), scale in zip(self.blocks, cache, self.scales):
            x, k, v = self.module.block(p, x, pk, pv, keys, self.eps, scale, self.act, **kw)
            new_cache.append((k, v))
        return self.module.logits(self.embeddings, self.ln_f, x, self.eps), new_cache

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
        return self._run(ids, cache, keys, positions)

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
        call: the prompt runs once, its cache (with its padding bias and last positions) is
        repeated for the beams, then one token per step with the cache reordered to follow
        the beams; each new token is real and sits one position after the previous one."""
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
        keys = (1.0 - mask.float()) * NEG
        logits, cache = self._run(ids, self.empty_cache(b), keys, positions)

        def run(tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            kv, keys, last = state
            keys = torch.cat([keys, keys.new_zeros(keys.shape[0], tokens.shape[1])], 1)
            pos = last + torch.arange(1, tokens.shape[1] + 1)
            out, kv = self._run(tokens, kv, keys, pos)
            return out, (kv, keys, pos[:, -1:])
        return ids, logits[:, -1], search.cached(run, (cache, keys, last), beams)

    def generate_text(self, prompt: str, max_new_tokens: int = 20, beams: int = 1) -> str:
        """Tokenize, decode greedily (``beams`` 1) or by beam search, and detokenize."""
        tok = self.tokenizer()
        ids = torch.tensor([tok.encode(prompt).ids], dtype=torch.int64)
        if ids.shape[1] == 0:
            raise _error("the prompt is empty after tokenization", path=str(self.dir))
        if ids.shape[1] + max_new_tokens > self.sizes["P"]:
            raise _error(f"{ids.shape[1]} prompt tokens and {max_new_tokens} new ones exceed "
                         f"the model's {self.sizes['P']} positions", path=str(self.dir),
                         help="ask for fewer new tokens")
        out = (self.generate(ids, max_new_tokens) if beams == 1
               else self.beam_search(ids, max_new_tokens, beams))
        return tok.decode(out[0].tolist())


__all__ = ["GPT2", "ModelLoadError"]
