"""The keys each model reads from its folder's config files, and the keys it refuses.

The files are read and checked by ``gtdsl.models.rules`` (regular files of bounded size,
duplicate keys refused, one JSON object each); the public readers are importable from here.

Each model declares, in a ``ModelKeys`` value below, every ``config.json`` key its loader
reads, with the values it supports and the default transformers uses when the key is absent,
and every key it refuses: a key that changes the computation in transformers (or changed it
in the transformers versions that wrote existing checkpoints) which gtdsl does not implement.
A refused key may be present with its off value (``is_decoder: false``); any other value
refuses the folder. Other keys (names, token ids of heads, architectures, dtype, dropout
rates, initializer settings, classifier heads, ``transformers_version``, ...) are not read,
as transformers' base models do not read them either.

Every problem is a ``ModelLoadError`` (GT0909) naming the file, the key and the bad value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gtdsl.models.rules import (
    Check, DERIVED, MAX_JSON_BYTES, MAX_SIZE, ModelConfig, ModelKeys, REQUIRED, Read, Refused,
    Rule, same, boolean, check_keys, count, key_error, model_type, nullable, one_of,
    positive_float, positive_int, read_bytes, read_config, read_json, read_json_object, show,
    token_ids,
)
from gtdsl.models.weights import load_error

# --------------------------------------------------------------------------- the models
ACTIVATION_CODES = {"gelu_new": 0, "gelu_fast": 0, "gelu_pytorch_tanh": 0,
                    "gelu_python_tanh": 0, "gelu_accurate": 0, "gelu": 1, "gelu_python": 1,
                    "gelu_10": 2, "quick_gelu": 3, "relu": 4, "relu2": 5, "relu6": 6,
                    "silu": 7, "swish": 7, "sigmoid": 8, "tanh": 9, "linear": 10, "mish": 11,
                    "leaky_relu": 12, "hardswish": 13, "laplace": 14, "sqrtsoftplus": 15}
"""transformers' ACT2FN names -> the codes of ``activation`` in blocks.gt (the tanh GELUs
differ only in float rounding). ``prelu`` and ``xielu`` carry learned weights: refused."""

BERT_ACTIVATIONS = tuple(ACTIVATION_CODES)
"""``hidden_act`` values BERT and RoBERTa run."""

GPT2_ACTIVATIONS = tuple(ACTIVATION_CODES)
"""``activation_function`` values GPT-2 runs (the names of ``gpt2.ACTIVATIONS``)."""

T5_FEED_FORWARD = tuple(ACTIVATION_CODES) + tuple(f"gated-{a}" for a in ACTIVATION_CODES)
"""``feed_forward_proj`` values T5 runs: an activation (the original T5's one ``wi``), or
``gated-`` and an activation (T5 v1.1, flan-T5 and mT5: ``act(wi_0 x) * wi_1 x``;
``gated-gelu`` is transformers' name for the tanh GELU, ``gelu_new``)."""

_NEVER = (False, None)


def _divides(total: str, part: str) -> Check:
    def check(v: Mapping[str, Any]) -> tuple[str, str] | None:
        if v[total] % v[part]:
            return total, (f"`{total}` {v[total]} is not a multiple of `{part}` {v[part]} "
                           "(each head gets hidden / heads features)")
        return None
    return check


_COMMON_REFUSED = {
    "pruned_heads": Refused(({}, None), {"0": [0]}, "pruned attention heads"),
    "per_layer_config": Refused((None, {}), {"0": {"hidden_act": "relu"}},
                                "settings that differ from layer to layer"),
}


def _bert_keys(model: str, types: tuple[str, ...], pad: int) -> ModelKeys:
    read = {
        "model_type": Read(one_of(*types), types[0], "the kind of model the folder holds"),
        "vocab_size": Read(positive_int(), note="rows of the token embedding table (V)"),
        "hidden_size": Read(positive_int(), note="features per token (H*K)"),
        "num_hidden_layers": Read(positive_int(), note="encoder layers"),
        "num_attention_heads": Read(positive_int(), note="attention heads (H)"),
        "intermediate_size": Read(positive_int(), note="feed-forward features (F)"),
        "max_position_embeddings": Read(positive_int(), note="rows of the position table (P)"),
        "type_vocab_size": Read(positive_int(), 2, "rows of the token type table (T)"),
        "layer_norm_eps": Read(positive_float(), 1e-12, "the layer norms' epsilon"),
        "hidden_act": Read(one_of(*BERT_ACTIVATIONS, doc="an activation (below)"), "gelu",
                           "the feed-forward activation"),
    }
    checks: list[Check] = [_divides("hidden_size", "num_attention_heads")]
    checks_doc = ["`hidden_size` is a multiple of `num_attention_heads`"]
    if model == "RoBERTa":
        read["pad_token_id"] = Read(count(), pad, "the padding token; position ids count "
                                    "from pad_token_id + 1")

        def positions(v: Mapping[str, Any]) -> tuple[str, str] | None:
            if v["max_position_embeddings"] < v["pad_token_id"] + 2:
                return "max_position_embeddings", (
                    f"`max_position_embeddings` {v['max_position_embeddings']} leaves no "
                    f"position for a token (positions start at pad_token_id + 1 = "
                    f"{v['pad_token_id'] + 1})")
            return None
        checks.append(positions)
        checks_doc.append("`max_position_embeddings` >= `pad_token_id` + 2 (positions start "
                          "after the pad id)")
    refused = {
        "is_decoder": Refused(_NEVER, True, "a causal (decoder) mask in self-attention"),
        "add_cross_attention": Refused(_NEVER, True, "cross-attention layers"),
        "position_embedding_type": Refused(("absolute", None), "relative_key",
                                           "relative position embeddings in attention"),
        **_COMMON_REFUSED,
    }
    return ModelKeys(model, read, refused, checks=tuple(checks), checks_doc=tuple(checks_doc))


BERT_KEYS = _bert_keys("BERT", ("bert",), 0)
ROBERTA_KEYS = _bert_keys("RoBERTa", ("roberta", "xlm-roberta", "camembert"), 1)


def _gpt2_inner(v: Mapping[str, Any]) -> tuple[str, str] | None:
    if v["n_inner"] is not None and v["n_inner"] != 4 * v["n_embd"]:
        return "n_inner", (f"`n_inner` is {v['n_inner']}; gtdsl's GPT-2 has a feed-forward "
                           f"of 4 * n_embd = {4 * v['n_embd']} features")
    return None


GPT2_KEYS = ModelKeys(
    "GPT-2",
    read={
        "model_type": Read(one_of("gpt2"), "gpt2", "the kind of model the folder holds"),
        "vocab_size": Read(positive_int(), note="rows of the token embedding table (V)"),
        "n_positions": Read(positive_int(), note="rows of the position table (P)"),
        "n_embd": Read(positive_int(), note="features per token (H*K)"),
        "n_layer": Read(positive_int(), note="decoder blocks"),
        "n_head": Read(positive_int(), note="attention heads (H)"),
        "n_inner": Read(nullable(positive_int()), None,
                        "feed-forward features: null or 4 * n_embd"),
        "layer_norm_epsilon": Read(positive_float(), 1e-5, "the layer norms' epsilon"),
        "activation_function": Read(one_of(*GPT2_ACTIVATIONS, doc="an activation (below)"),
                                    "gelu_new", "the feed-forward activation"),
        "scale_attn_weights": Read(boolean(), True, "attention scores scaled by K**-0.5"),
        "scale_attn_by_inverse_layer_idx": Read(boolean(), False,
                                                "attention scores of block i scaled by "
                                                "1 / (i + 1)"),
        "reorder_and_upcast_attn": Read(boolean(), False, "attention scores computed in "
                                        "float32: gtdsl computes in float32 throughout"),
        "bos_token_id": Read(nullable(count()), None, "generation: the start token"),
        "eos_token_id": Read(token_ids(), None, "generation: the end token(s)"),
        "pad_token_id": Read(nullable(count()), None, "generation: the pad token"),
    },
    refused={
        "tie_word_embeddings": Refused((True,), False, "an output head apart from the token "
                                       "embedding table"),
        "add_cross_attention": Refused(_NEVER, True, "cross-attention layers"),
        "is_encoder_decoder": Refused(_NEVER, True, "decoding as an encoder-decoder"),
        **_COMMON_REFUSED,
    },
    aliases={"hidden_size": "n_embd", "max_position_embeddings": "n_positions",
             "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"},
    checks=(_divides("n_embd", "n_head"), _gpt2_inner),
    checks_doc=("`n_embd` is a multiple of `n_head`", "`n_inner` is null or 4 * `n_embd`"),
)


def t5_activation(proj: str) -> tuple[str, bool]:
    """transformers' T5Config: ``dense_act_fn`` and ``is_gated_act`` from
    ``feed_forward_proj``."""
    parts = proj.split("-")
    return ("gelu_new" if proj == "gated-gelu" else parts[-1]), parts[0] == "gated"


def _t5_derived(v: Mapping[str, Any]) -> tuple[str, str] | None:
    act, gated = t5_activation(v["feed_forward_proj"])
    for key, want in (("dense_act_fn", act), ("is_gated_act", gated)):
        if v[key] is not None and v[key] != want:
            return key, (f"`{key}` is {show(v[key])}, but `feed_forward_proj` "
                         f"{show(v['feed_forward_proj'])} means {show(want)}: transformers "
                         f"runs `{key}`, gtdsl refuses the disagreement")
    return None


def _t5_buckets(v: Mapping[str, Any]) -> tuple[str, str] | None:
    exact = v["relative_attention_num_buckets"] // 2  # the decoder's exact buckets (the most)
    if v["relative_attention_max_distance"] <= exact:
        return "relative_attention_max_distance", (
            f"`relative_attention_max_distance` {v['relative_attention_max_distance']} must "
            f"exceed relative_attention_num_buckets // 2 = {exact}: the distances between "
            "are bucketed by log(distance / exact) / log(max_distance / exact)")
    return None


T5_KEYS = ModelKeys(
    "T5",
    read={
        "model_type": Read(one_of("t5", "mt5"), "t5", "the kind of model the folder holds "
                           "(mT5 is T5 v1.1's architecture)"),
        "vocab_size": Read(positive_int(), note="rows of the shared embedding table (V)"),
        "d_model": Read(positive_int(), note="features per token (D)"),
        "d_kv": Read(positive_int(), note="features per attention head (K)"),
        "d_ff": Read(positive_int(), note="feed-forward features (F)"),
        "num_layers": Read(positive_int(), note="encoder blocks"),
        "num_decoder_layers": Read(nullable(positive_int()), None,
                                   "decoder blocks (null: num_layers)"),
        "num_heads": Read(positive_int(), note="attention heads (H)"),
        "relative_attention_num_buckets": Read(count(4), 32, "position bias buckets"),
        "relative_attention_max_distance": Read(positive_int(), 128,
                                                "the longest distance with its own bucket"),
        "layer_norm_epsilon": Read(positive_float(), 1e-6, "the RMS norms' epsilon"),
        "feed_forward_proj": Read(one_of(*T5_FEED_FORWARD, doc="an activation, or `gated-` "
                                         "and an activation (below)"), "relu",
                                  "the feed-forward: its activation, gated or not"),
        "dense_act_fn": Read(Rule("a string", lambda v: type(v) is str, (1, [], None)),
                             DERIVED, "must agree with feed_forward_proj"),
        "is_gated_act": Read(boolean(), DERIVED, "must agree with feed_forward_proj"),
        "tie_word_embeddings": Read(nullable(boolean()), True, "false: no output scaling "
                                    "unless scale_decoder_outputs says so"),
        "scale_decoder_outputs": Read(boolean(), DERIVED,
                                      "decoder outputs scaled by d_model**-0.5 before the "
                                      "head (absent: unless tie_word_embeddings is false)"),
        "decoder_start_token_id": Read(nullable(count()), None,
                                       "generation: the decoder's first token (null: 0)"),
        "eos_token_id": Read(token_ids(), 1, "generation: the end token(s)"),
        "pad_token_id": Read(nullable(count()), 0, "generation: the pad token"),
    },
    refused={"is_encoder_decoder": Refused((True,), False, "decoding as a decoder-only model"),
             **_COMMON_REFUSED},
    aliases={"hidden_size": "d_model", "num_attention_heads": "num_heads",
             "num_hidden_layers": "num_layers", "head_dim": "d_kv"},
    checks=(_t5_derived, _t5_buckets),
    checks_doc=("`dense_act_fn` and `is_gated_act`, when present, agree with "
                "`feed_forward_proj`",
                "`relative_attention_max_distance` > `relative_attention_num_buckets` // 2"),
)

SENTENCE_KEYS = ModelKeys(
    "sentence-transformers",
    read={
        "max_seq_length": Read(nullable(positive_int()), None,
                               "inputs are truncated to this many tokens"),
        "do_lower_case": Read(boolean(), False, "inputs are lowercased first"),
    },
    file="sentence_bert_config.json",
)

MODELS: dict[str, ModelKeys] = {"BERT": BERT_KEYS, "RoBERTa": ROBERTA_KEYS,
                                "GPT-2": GPT2_KEYS, "T5": T5_KEYS,
                                "sentence-transformers": SENTENCE_KEYS}


# --------------------------------------------------------------------------- sentence-transformers
SENTENCE_MODULES = ("Transformer", "Pooling", "Normalize")
_POOLING_MODES = ("cls_token", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                  "lasttoken")


def read_sentence_config(folder: Path, hidden: int) -> ModelConfig | None:
    """A sentence-transformers folder's settings: ``sentence_bert_config.json`` (checked as
    ``SENTENCE_KEYS``; None when absent) and, when ``modules.json`` lists them, its modules:
    only a transformer, mean pooling and normalization load (gtdsl's ``encode`` is exactly
    these), any other module or pooling mode is GT0909."""
    modules = folder / "modules.json"
    if os.path.lexists(modules):
        _check_modules(folder, modules, hidden)
    path = folder / SENTENCE_KEYS.file
    if not os.path.lexists(path):
        return None
    return check_keys(read_json_object(path), SENTENCE_KEYS, path)


def _check_modules(folder: Path, path: Path, hidden: int) -> None:
    listed = read_json(path, "modules.json")
    if not isinstance(listed, list) or not all(isinstance(m, dict) for m in listed):
        raise load_error("`modules.json` must hold a list of modules (JSON objects)",
                         path=str(path))
    for m in listed:
        kind = m.get("type")
        short = kind.rsplit(".", 1)[-1] if isinstance(kind, str) else None
        if short not in SENTENCE_MODULES:
            raise key_error(path, "type", f"`modules.json` lists a module of `type` "
                            f"{show(kind)}; gtdsl's sentence embeddings are a transformer, "
                            "mean pooling and normalization only",
                            help="remove the module, or run the model with "
                            "sentence-transformers")
        sub = m.get("path", "")
        if short == "Pooling":
            if not isinstance(sub, str) or ".." in Path(sub).parts or Path(sub).is_absolute():
                raise key_error(path, "path", f"`modules.json`: the pooling module's path "
                                f"{show(sub)} is not a folder inside the model folder")
            pooling = folder / sub / "config.json"
            if os.path.lexists(pooling):
                _check_pooling(read_json_object(pooling, f"{sub}/config.json"), pooling, sub,
                               hidden)


def _check_pooling(cfg: Mapping[str, Any], path: Path, sub: str, hidden: int) -> None:
    name = f"{sub}/config.json"
    mode = cfg.get("pooling_mode")
    if mode is not None and not same(mode, "mean") and not same(mode, ["mean"]):
        raise key_error(path, "pooling_mode", f"`{name}`: `pooling_mode` is {show(mode)}; "
                        "gtdsl's sentence embeddings use mean pooling only")
    for m in _POOLING_MODES:
        key = f"pooling_mode_{m}"
        if key in cfg and not same(cfg[key], False):
            raise key_error(path, key, f"`{name}`: `{key}` is {show(cfg[key])}; gtdsl's "
                            "sentence embeddings use mean pooling only")
    if "pooling_mode_mean_tokens" in cfg and not same(cfg["pooling_mode_mean_tokens"], True):
        raise key_error(path, "pooling_mode_mean_tokens", f"`{name}`: "
                        f"`pooling_mode_mean_tokens` is {show(cfg['pooling_mode_mean_tokens'])}"
                        "; gtdsl's sentence embeddings use mean pooling only")
    for key in ("word_embedding_dimension", "embedding_dimension"):
        if key in cfg and not same(cfg[key], hidden):
            raise key_error(path, key, f"`{name}`: `{key}` is {show(cfg[key])}, but the model "
                            f"has {hidden} features per token")


# --------------------------------------------------------------------------- task heads
MAX_LABELS = 1 << 20


def read_labels(config: Mapping[str, Any], path: Path) -> list[str]:
    """A classification head's label names as transformers' config gives them: ``id2label``
    (``{"0": "NEGATIVE", "1": "POSITIVE"}``, one name per index from 0), else
    ``num_labels`` names ``LABEL_i``, else two (transformers' default)."""
    names = config.get("id2label")
    count = config.get("num_labels")
    if names is not None:
        if not isinstance(names, dict) or not names or len(names) > MAX_LABELS:
            raise key_error(path, "id2label", "`id2label` must map the label indices 0, 1, ... "
                            "to names", help="save the config with transformers")
        try:
            index = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            index = {}
        if sorted(index) != list(range(len(names))) or not all(
                isinstance(v, str) for v in index.values()):
            raise key_error(path, "id2label", f"`id2label` must map the label indices 0 .. "
                            f"{len(names) - 1} to names (strings), each once",
                            help="save the config with transformers")
        if count is not None and not same(count, len(names)):
            raise key_error(path, "num_labels", f"`num_labels` is {show(count)} but "
                            f"`id2label` names {len(names)} labels")
        return [index[i] for i in range(len(names))]
    if count is None:
        return ["LABEL_0", "LABEL_1"]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_LABELS:
        raise key_error(path, "num_labels", f"`num_labels` is {show(count)}; it must be a "
                        "positive integer")
    return [f"LABEL_{i}" for i in range(count)]


# --------------------------------------------------------------------------- documentation
def markdown() -> str:
    """The "What a model folder may contain" tables of docs/models.md, from the lists above."""
    out = ["Activations (`hidden_act`, `activation_function`, and T5's `feed_forward_proj` "
           "alone or after `gated-`): " + ", ".join(
        f"`{a}`" for a in ACTIVATION_CODES) + " (transformers' ACT2FN names; `prelu` and "
        "`xielu`, which carry weights of their own, are refused).\n"]
    for keys in MODELS.values():
        out.append(f"**{keys.model}** (`{keys.file}`) reads:\n")
        out.append("| key | value | when absent |")
        out.append("|---|---|---|")
        for key, spec in keys.read.items():
            absent = ("required" if spec.default is REQUIRED else "derived"
                      if spec.default is DERIVED else f"`{show(spec.default)}`")
            what = (spec.rule.doc or spec.rule.what).replace("|", "\\|")
            out.append(f"| `{key}` | {what}" + (f": {spec.note}" if spec.note else "") +
                       f" | {absent} |")
        out.append("")
        if keys.aliases:
            out.append("Also read under transformers' other names: " + ", ".join(
                f"`{a}` (= `{k}`)" for a, k in keys.aliases.items()) + ".\n")
        if keys.checks_doc:
            out.append("Checked together: " + "; ".join(keys.checks_doc) + ".\n")
        if keys.refused:
            out.append("Refused unless off (the key changes the computation and gtdsl does "
                       "not implement it):\n")
            for key, refused in keys.refused.items():
                allowed = " or ".join(f"`{show(a)}`" for a in refused.allowed)
                out.append(f"- `{key}` ({refused.why}): only {allowed} loads")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


__all__ = ["ACTIVATION_CODES", "BERT_ACTIVATIONS", "BERT_KEYS", "DERIVED", "GPT2_ACTIVATIONS",
           "GPT2_KEYS", "MAX_JSON_BYTES", "MODELS", "ModelConfig", "ModelKeys", "REQUIRED",
           "ROBERTA_KEYS", "Read", "Refused", "Rule", "SENTENCE_KEYS", "T5_KEYS", "check_keys",
           "key_error", "markdown", "model_type", "read_bytes", "read_config", "t5_activation",
           "read_json_object", "read_labels", "read_sentence_config", "show"]
