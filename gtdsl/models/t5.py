"""T5 from a Hugging Face-layout folder, run by ``t5.gt``: encoder, decoder, greedy
generation.

The loader maps Hugging Face keys to the parameter structs, checking every tensor against
its field; the shared embedding is read once (``encoder.embed_tokens`` and
``decoder.embed_tokens`` are copies of ``shared``) and the tied output head is not read.
Only block 0 of each stack holds the relative position bias table, as in the file. The
forward passes (the layer loops, the relative position buckets and biases, the masks, the
decoder's key/value cache) are ``t5.gt``'s ``encode``, ``decode`` and ``step``; this file
holds the key map, the config reading and the tokenizer.

The output head is ``lm_head.weight`` when the file holds one (an untied head, T5 v1.1's),
else the shared table; the decoder's output is scaled by ``d_model ** -0.5`` before it when
``scale_decoder_outputs`` is true (by default unless ``tie_word_embeddings`` is false), as
transformers does. An ``attention_mask`` over the input (1 real, 0 padding) masks the encoder's
self-attention and the decoder's cross-attention.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from gtdsl.models import search
from gtdsl.models.config import ACTIVATION_CODES as ACTIVATIONS, t5_activation
from gtdsl.models.structs import Stacked, Weights, f32, flatten
from gtdsl.models.sharing import Card, save_folder, target
from gtdsl.models.weights import load_error, read_weights
from gtdsl.driver import load
from gtdsl.types import TList

HERE = Path(__file__).resolve().parent
COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")  # of shared.weight
HEAD = "lm_head.weight"  # an untied output head (else the head is shared.weight)


def _attn(prefix: str) -> dict[str, str]:
    return {f: f"{prefix}.{f}.weight" for f in ("q", "k", "v", "o")}


def _ff(prefix: str, gated: bool) -> dict[str, Any]:
    """A feed-forward's keys: one ``wi``, or (gated) ``wi_0`` and ``wi_1`` stacked as ``wi``."""
    p = f"{prefix}.DenseReluDense."
    wi: str | Stacked = Stacked((p + "wi_0.weight", p + "wi_1.weight")) if gated else \
        p + "wi.weight"
    return {"wi": wi, "wo": p + "wo.weight"}


def _norm(prefix: str) -> dict[str, str]:
    return {"weight": f"{prefix}.layer_norm.weight"}


def _enc_keys(i: int, gated: bool) -> dict[str, Any]:
    """The key map of encoder layer ``i`` (an ``EncoderLayer``)."""
    p = f"encoder.block.{i}.layer."
    return {"attn_norm": _norm(p + "0"), "attn": _attn(p + "0.SelfAttention"),
            "ff_norm": _norm(p + "1"), "ff": _ff(p + "1", gated)}


def _dec_keys(i: int, gated: bool) -> dict[str, Any]:
    """The key map of decoder layer ``i`` (a ``DecoderLayer``)."""
    p = f"decoder.block.{i}.layer."
    return {"self_norm": _norm(p + "0"), "self_attn": _attn(p + "0.SelfAttention"),
            "cross_norm": _norm(p + "1"), "cross_attn": _attn(p + "1.EncDecAttention"),
            "ff_norm": _norm(p + "2"), "ff": _ff(p + "2", gated)}


def _keys(n_enc: int, n_dec: int, gated: bool) -> dict[str, Any]:
    """The key map of each value ``T5`` loads, by its attribute."""
    rel = "block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    return {"encoder": [_enc_keys(i, gated) for i in range(n_enc)],
            "decoder": [_dec_keys(i, gated) for i in range(n_dec)],
            "enc_final": {"weight": "encoder.final_layer_norm.weight"},
            "dec_final": {"weight": "decoder.final_layer_norm.weight"},
            "shared": "shared.weight", "enc_rel": f"encoder.{rel}", "dec_rel": f"decoder.{rel}"}


class T5(search.Decoding):
    """A loaded T5: ``encode(ids)``, ``logits(ids, decoder_ids)``, ``generate(ids, n)``."""

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto") -> None:
        self.dir = Path(model_dir)
        try:
            from gtdsl.models.config import T5_KEYS, read_config

            c = read_config(self.dir, T5_KEYS)  # checked: GT0909 naming the key
            self.raw_config = c
            self.d, self.heads, self.d_kv = int(c["d_model"]), int(c["num_heads"]), int(c["d_kv"])
            self.d_ff, self.vocab = int(c["d_ff"]), int(c["vocab_size"])
            self.n_enc = int(c["num_layers"])
            self.n_dec = int(c.get("num_decoder_layers") or c["num_layers"])
            self.eps = float(c.get("layer_norm_epsilon", 1e-6))
            self.buckets = int(c.get("relative_attention_num_buckets", 32))
            self.max_distance = int(c.get("relative_attention_max_distance", 128))
            self.start = int(c.get("decoder_start_token_id") or 0)
            self.tied = bool(c.get("tie_word_embeddings", True))
        except (OSError, ValueError, KeyError) as e:
            raise load_error(f"cannot read the model config: {e}", path=str(self.dir),
                             help="a Hugging Face T5 config.json is expected") from None
        self.act, self.gated = self._activation()
        self.sizes = {"D": self.d, "H": self.heads, "K": self.d_kv, "F": self.d_ff,
                      "G": 2 if self.gated else 1}
        self.module = load(HERE / "t5.gt", backend=backend)
        self._load()

    def _activation(self) -> tuple[int, bool]:
        """The feed-forward's activation and whether it is gated, as transformers' T5Config
        resolves them from ``feed_forward_proj`` (``read_config`` has refused activations
        outside ``ACTIVATIONS`` and ``dense_act_fn``/``is_gated_act`` that disagree)."""
        act, gated = t5_activation(self.raw_config.value("feed_forward_proj"))
        return ACTIVATIONS[act], gated

    def _load(self) -> None:
        path = self.dir / "model.safetensors"
        weights = Weights(self.module, path, read_weights(path), dict(self.sizes, V=self.vocab))
        keys, table = _keys(self.n_enc, self.n_dec, self.gated), f32(buckets=self.buckets, heads="H")
        self.encoder = weights.load(TList(weights.struct_type("EncoderLayer")), keys["encoder"],
                                    "encoder")
        self.decoder = weights.load(TList(weights.struct_type("DecoderLayer")), keys["decoder"],
                                    "decoder")
        self.enc_final = weights.load(weights.struct_type("RMSNorm"), keys["enc_final"],
                                      "enc_final")
        self.dec_final = weights.load(weights.struct_type("RMSNorm"), keys["dec_final"],
                                      "dec_final")
        self.shared = weights.load(f32(vocab="V", hidden="D"), keys["shared"], "shared")
        self.enc_rel = weights.load(table, keys["enc_rel"], "enc_rel")
        self.dec_rel = weights.load(table, keys["dec_rel"], "dec_rel")
        for key in COPIES:
            copy = weights.unchecked(key)
            if copy is not None and not (copy.shape == self.shared.shape and
                                         torch.equal(copy, self.shared)):
                raise load_error(f"`{key}` differs from `shared.weight`: this T5 has one "
                                 "embedding table for the encoder, the decoder and (when "
                                 "tied) the output head", path=str(path),
                                 help="save the model with its embeddings shared")
        # transformers ties the head to the shared table unless the file holds another one
        self.untied_head = HEAD in weights.tensors
        if self.untied_head:
            self.lm_head = weights.load(f32(vocab="V", hidden="D"), HEAD, "lm_head")
        self.output_scale = self.d ** -0.5 if self._scales_outputs() else 1.0
        weights.finish("T5")

    def _scales_outputs(self) -> bool:
        """transformers' T5Config.scale_decoder_outputs: the key itself, else true unless
        ``tie_word_embeddings`` is false."""
        c = self.raw_config
        for key in ("scale_decoder_outputs", "tie_word_embeddings"):
            if key in c and not isinstance(c[key], bool) and c[key] is not None:
                raise load_error(f"`{key}` in config.json must be true or false, not "
                                 f"{json.dumps(c[key])[:80]}", path=str(self.dir / "config.json"))
        if c.get("model_type") == "mt5":
            # transformers' MT5ForConditionalGeneration never scales (the checkpoints have an
            # untied head and tie_word_embeddings false, under which T5 does not either)
            if c.get("scale_decoder_outputs") is True:
                raise load_error("`scale_decoder_outputs` is true, but transformers' mT5 never "
                                 "scales the decoder's outputs", path=str(self.dir / "config.json"),
                                 notes=("key: `scale_decoder_outputs`",),
                                 help="remove the key, or give the folder model_type \"t5\"")
            return False
        if c.get("scale_decoder_outputs") is not None:
            return bool(c["scale_decoder_outputs"])
        return c.get("tie_word_embeddings") is not False

    @property
    def head(self) -> torch.Tensor:
        """The output head's weight [V, D]."""
        return self.lm_head if self.untied_head else self.shared

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters by Hugging Face key name (T5ForConditionalGeneration's; the tied
        head and the embedding copies are left out)."""
        out: dict[str, torch.Tensor] = {}
        for name, keys in _keys(self.n_enc, self.n_dec, self.gated).items():
            out.update(flatten(getattr(self, name), keys))
        if self.untied_head:
            out[HEAD] = self.lm_head
        return out

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model as the Hub shares it (:mod:`gtdsl.models.sharing`): every loaded
        tensor, ``config.json``, the tokenizer files, ``generation_config.json`` and a model
        card; each file is written whole, then renamed."""
        mt5 = self.raw_config.get("model_type") == "mt5"
        name = target(directory).resolve().name
        card = Card("MT5ForConditionalGeneration" if mt5 else "T5ForConditionalGeneration",
                    "mT5" if mt5 else "T5", "text2text-generation",
                    {"encoder layers": self.n_enc, "decoder layers": self.n_dec,
                     "model size": self.d, "attention heads": self.heads,
                     "head size": self.d_kv, "feed-forward size": self.d_ff,
                     "feed-forward": ("gated " if self.gated else "") +
                     str(self.raw_config.value("feed_forward_proj")).removeprefix("gated-"),
                     "vocabulary": self.vocab},
                    "gtdsl.models.t5.T5",
                    "from gtdsl.models.t5 import T5\n\n"
                    f"text = T5(\"{name}\").generate_text(\"translate English to German: "
                    "The house is wonderful.\", 40)")
        return save_folder(self.dir, directory, self.state_dict(), self.raw_config, card,
                           generative=True)

    # ------------------------------------------------------------------ running
    # the forward passes are t5.gt's `encode`, `decode` and `step`: the layer loops, the
    # relative position biases, the masks and the decoder's cache; here, their arguments
    def _mask(self, mask: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(ids) if mask is None else mask

    @property
    def _buckets(self) -> dict[str, Any]:
        """The bucket settings, and ``K`` (which only the layers' ``H*K`` would bind: given,
        the call's entry checks the layers in generated code)."""
        return {"num_buckets": self.buckets, "max_distance": self.max_distance,
                "K": self.d_kv}

    def encode(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's output for ``ids`` [b, s]; ``mask`` [b, s] (1 real, 0 padding) hides
        the padding from the self-attention."""
        return self.module.encode(self.shared, self.enc_final, self.enc_rel, ids,
                                  self._mask(mask, ids), self.encoder, self.eps, self.act,
                                  **self._buckets)

    def decode(self, dec_ids: torch.Tensor, enc: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [b, t, V] for the decoder tokens ``dec_ids`` [b, t] over the encoder's output
        ``enc`` [b, s]; ``mask`` [b, s] is the input's padding mask."""
        mask = torch.ones(enc.shape[:2], dtype=torch.int64) if mask is None else mask
        return self.module.decode(self.shared, self.head, self.dec_final, self.dec_rel,
                                  dec_ids, enc, mask, self.decoder, self.eps, self.act,
                                  self.output_scale, **self._buckets)

    def logits(self, ids: torch.Tensor, dec_ids: torch.Tensor,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [b, t, V] of the decoder tokens ``dec_ids`` [b, t] after the input ``ids``
        [b, s]; ``attention_mask`` [b, s] (1 real, 0 padding) as transformers takes it."""
        name = "T5.logits"
        ids = search.check_ids(name, ids, self.vocab)
        dec_ids = search.check_ids(name, dec_ids, self.vocab, "dec_ids")
        if dec_ids.shape[0] != ids.shape[0]:
            raise search.argument_error(
                "GT3001", f"`dec_ids` of `{name}` has {dec_ids.shape[0]} rows and `ids` "
                f"{ids.shape[0]}", "pass one decoder row per input row")
        mask = None if attention_mask is None else search.check_mask(name, attention_mask, ids)
        return self.decode(dec_ids, self.encode(ids, mask), mask)

    def step(self, dec_ids: torch.Tensor, enc: torch.Tensor,
             cache: list[tuple[torch.Tensor, torch.Tensor]] | None,
             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        """Logits for ``dec_ids`` [b, s] after the cached decoder tokens, and the grown
        self-attention cache (one key/value pair per decoder layer); ``mask`` [b, u] is the
        input's padding mask."""
        mask = torch.ones(enc.shape[:2], dtype=torch.int64) if mask is None else mask
        keys = self.module.padding_bias(mask)
        state = None if cache is None else ([k for k, _ in cache], [v for _, v in cache])
        logits, (ks, vs) = self._step(dec_ids, enc, state, keys)
        return logits, list(zip(ks, vs))

    def _step(self, dec_ids: torch.Tensor, enc: torch.Tensor,
              cache: tuple[list[torch.Tensor], list[torch.Tensor]] | None, keys: torch.Tensor
              ) -> tuple[torch.Tensor, Any]:
        """``step`` with the cache as the keys and the values of every layer, and the input's
        padding as its bias ``keys`` [b, u]."""
        if cache is None:
            empty = [torch.zeros(dec_ids.shape[0], self.heads, 0, self.d_kv)] * self.n_dec
            cache = (empty, empty)
        logits, ks, vs = self.module.step(self.shared, self.head, self.dec_final, self.dec_rel,
                                          dec_ids, cache[0], cache[1], enc, keys, self.decoder,
                                          self.eps, self.act, self.output_scale,
                                          **self._buckets)
        return logits, (ks, vs)

    @property
    def _vocab(self) -> int:
        return self.vocab

    def _decoder(self, ids: torch.Tensor, beams: int, mask: torch.Tensor | None,
                 max_new_tokens: int, settings: dict[str, Any]
                 ) -> tuple[torch.Tensor, torch.Tensor, search.Advance]:
        """The decoder's start tokens, its first next-token logits, and the ``advance``
        function the decoding loops call: the encoder runs once (its output and the input's
        padding bias repeated for the beams), then the decoder one token per step with its
        self-attention cache reordered to follow the beams."""
        enc = self.encode(ids, mask)
        keys = self.module.padding_bias(self._mask(mask, ids))
        first = settings.get("decoder_start_token_id")
        start = torch.full((ids.shape[0], 1), self.start if first is None else first,
                           dtype=torch.int64)
        logits, cache = self._step(start, enc, None, keys)
        if beams > 1:
            enc = enc.repeat_interleave(beams, 0)
            keys = keys.repeat_interleave(beams, 0)

        def run(tokens: torch.Tensor, kv: Any) -> tuple[torch.Tensor, Any]:
            return self._step(tokens, enc, kv, keys)
        return start, logits[:, -1], search.cached(run, cache, beams)


__all__ = ["T5"]
