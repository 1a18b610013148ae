"""Saving a model folder as the Hugging Face Hub shares it.

``save_folder`` writes what transformers' ``save_pretrained`` (and, for sentence embeddings,
sentence-transformers' ``save``) would: ``model.safetensors`` with every loaded tensor,
``config.json``, the tokenizer files, a ``generation_config.json`` for a generative model, a
model card (``README.md``: the model's type, sizes, and how the folder was produced), and for a
sentence-embedding model the sentence-transformers layout (``modules.json``,
``1_Pooling/config.json``, ``2_Normalize``, ``sentence_bert_config.json``), so that
``AutoModel.from_pretrained`` and ``SentenceTransformer`` load the folder and agree with gtdsl.

Every file is written whole under a temporary name in the folder, then renamed into place:
an interrupted save leaves earlier files as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gtdsl.models.weights import load_error

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                   "sentence_bert_config.json", "config_sentence_transformers.json",
                   "generation_config.json")

GENERATION_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
"""The keys of config.json a generated ``generation_config.json`` carries (transformers'
``GenerationConfig.from_model_config`` takes the same from a model config)."""

POOLING = {"word_embedding_dimension": 0, "pooling_mode_cls_token": False,
           "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
           "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
           "pooling_mode_lasttoken": False, "include_prompt": True}
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize",
     "type": "sentence_transformers.models.Normalize"},
]


@dataclass
class Card:
    """What the model card says: the architecture (``BertForMaskedLM``), the kind
    (``BERT``), the Hub's ``pipeline_tag``, the sizes by name, the class that saved it."""

    architecture: str
    kind: str
    pipeline_tag: str
    sizes: dict[str, Any]
    saved_by: str
    usage: str = ""
    tags: list[str] = field(default_factory=list)


SENTENCE_FILES = ("sentence_bert_config.json", "config_sentence_transformers.json")
"""What only a sentence-embedding folder keeps (a task model saved from one does not)."""

LOADED = (*TOKENIZER_FILES, "modules.json", "1_Pooling", "2_Normalize")
"""The files and folders a loader reads beside the weights: a save into a folder that holds
one of them and does not write it is refused (it would load as part of this model)."""


def save_folder(source: Path, directory: str | os.PathLike[str],
                tensors: dict[str, torch.Tensor], config: dict[str, Any], card: Card,
                generative: bool = False, sentence: dict[str, Any] | None = None) -> Path:
    """Write a model folder in the Hugging Face layout (see the module's docstring).
    ``generative``: write a ``generation_config.json`` (the source's, else one from
    ``config.json``); ``sentence``: the sentence-transformers settings (``max_seq_length``,
    ``do_lower_case``, ``hidden``) of a sentence-embedding model. Files this save writes
    are replaced; a folder holding another model's tokenizer, generation or
    sentence-transformers files is refused (GT0909)."""
    d = target(directory)
    try:
        if d.exists() and not d.is_dir():
            raise load_error(f"`{d}` exists and is not a folder", path=str(d),
                             help="give a new or existing folder to save into")
        same = d.exists() and source.resolve() == d.resolve()
        copied = [n for n in TOKENIZER_FILES if (source / n).is_file()  # links followed
                  and (sentence is not None or n not in SENTENCE_FILES)]
        writes = set(copied) | ({"generation_config.json"} if generative else set()) | (
            {"modules.json", "1_Pooling", "2_Normalize", "sentence_bert_config.json"}
            if sentence is not None else set())
        stale = [n for n in LOADED if n not in writes and os.path.lexists(d / n)]
        if stale and not same:
            raise load_error(f"`{d}` holds {', '.join(stale)} from another model, which would "
                             "load as part of this one", path=str(d),
                             help="save into a new or empty folder")
        old_card = _read_card(source / "README.md")
        d.mkdir(parents=True, exist_ok=True)
        from gtdsl.runtime.tensorfile import write_safetensors

        write_safetensors(d / "model.safetensors", tensors, {"format": "pt"})
        config = dict(config)
        config.setdefault("architectures", [card.architecture])
        _write(d / "config.json", _json(config))
        if not same:
            for name in copied:
                _copy(source / name, d / name)
        if generative and "generation_config.json" not in copied:
            from gtdsl.models.search import SETTINGS

            # as transformers' GenerationConfig.from_model_config: the token ids and any
            # generation setting config.json holds (a legacy folder's), so the folder decodes
            # as before
            gen = {k: config[k] for k in (*GENERATION_KEYS, *SETTINGS, "length_penalty",
                                          "early_stopping") if config.get(k) is not None}
            _write(d / "generation_config.json", _json({"_from_model_config": True, **gen}))
        if sentence is not None:
            _sentence_layout(d, sentence, "sentence_bert_config.json" in copied or same)
        _write(d / "README.md", model_card(card, tensors, source, sentence is not None, d,
                                           old_card))
    except OSError as e:
        raise load_error(f"cannot save the model to `{d}`: {e.strerror or e}",
                         path=str(d), help="check that the folder can be written") from None
    return d


def target(directory: Any) -> Path:
    """The folder to save into: a non-empty path (a str or os.PathLike)."""
    try:
        text = os.fspath(directory)
    except TypeError:
        text = None
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise load_error(f"cannot save the model to {directory!r}: give the path of a folder"[:300],
                         help="pass a folder path such as \"my-model\"")
    return Path(text)


def _read_card(path: Path) -> str | None:
    """The source folder's model card (a regular file of at most 1 MiB), or None."""
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _sentence_layout(d: Path, sentence: dict[str, Any], keep_settings: bool) -> None:
    """sentence-transformers' files: the transformer, mean pooling, normalization
    (``sentence_bert_config.json`` unless the source's was copied: ``keep_settings``)."""
    _write(d / "modules.json", _json(MODULES))
    (d / "1_Pooling").mkdir(exist_ok=True)
    _write(d / "1_Pooling" / "config.json",
           _json({**POOLING, "word_embedding_dimension": sentence["hidden"]}))
    (d / "2_Normalize").mkdir(exist_ok=True)
    if not keep_settings:
        _write(d / "sentence_bert_config.json",
               _json({"max_seq_length": sentence["max_seq_length"],
                      "do_lower_case": sentence["do_lower_case"]}))


def model_card(card: Card, tensors: dict[str, torch.Tensor], source: Path, sentence: bool,
               d: Path, old: str | None = None) -> str:
    """``README.md``: YAML front matter as the Hub reads it, then the model's type, sizes,
    parameter count and how the folder was produced and can be loaded; the source folder's
    own card (``old``) follows, its front matter's other keys (a licence, languages,
    datasets) kept in ours."""
    from gtdsl._version import __version__

    params = sum(t.numel() for t in tensors.values())
    library = "sentence-transformers" if sentence else "transformers"
    tags = ["gtdsl", card.kind.lower().replace("-", ""), *card.tags] + \
        (["sentence-transformers", "sentence-similarity"] if sentence else [])
    kept, body, old_tags = _split_card(old)
    # a model saved for another task than its source's: not the source's pipeline's tags
    tags += old_tags if sentence else [t for t in old_tags if t not in SENTENCE_TAGS]
    lines = ["---", f"library_name: {library}",
             f"pipeline_tag: {'sentence-similarity' if sentence else card.pipeline_tag}",
             "tags:", *[f"- {t}" for t in dict.fromkeys(tags)], *kept, "---", "",
             f"# {d.resolve().name}", "",
             f"A {card.kind} model (`{card.architecture}`) saved by gtdsl {__version__} with "
             f"`{card.saved_by}.save`, from the folder `{source.resolve().name}`.", "",
             "| | |", "|---|---|", f"| architecture | `{card.architecture}` |",
             *[f"| {k} | {v} |" for k, v in card.sizes.items()],
             f"| parameters | {params:,} in {len(tensors)} tensors (`model.safetensors`) |", "",
             "## How to use", "", "```python", card.usage.strip(), "```", ""]
    if sentence:
        lines += ["With sentence-transformers (the same vectors):", "", "```python",
                  "from sentence_transformers import SentenceTransformer", "",
                  f"vectors = SentenceTransformer(\"{d.resolve().name}\").encode([\"A sentence.\"])",
                  "```", ""]
    lines += ["With transformers:", "", "```python",
              f"from transformers import {card.architecture}", "",
              f"model = {card.architecture}.from_pretrained(\"{d.resolve().name}\")", "```", ""]
    if body.strip():
        lines += ["## The source folder's model card", "", body.strip(), ""]
    return "\n".join(lines)


OURS = ("library_name", "pipeline_tag", "tags")
SENTENCE_TAGS = ("sentence-transformers", "sentence-similarity", "feature-extraction")


def _split_card(card: str | None) -> tuple[list[str], str, list[str]]:
    """A model card's front matter entries other than ``OURS`` (as lines), its body, and its
    tags (a YAML list of ``- tag`` lines)."""
    if not card:
        return [], "", []
    if not card.startswith("---\n") or "\n---" not in card[4:]:
        return [], card, []
    head, _, body = card[4:].partition("\n---")
    kept: list[str] = []
    tags: list[str] = []
    key = ""
    for line in head.splitlines():
        if line and not line.startswith((" ", "-", "\t")):
            key = line.split(":", 1)[0].strip()
        if key == "tags" and line.startswith("- "):
            tags.append(line[2:].strip())
        elif key not in OURS:
            kept.append(line)
    return kept, body.lstrip("-").lstrip("\n"), tags


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    """``text`` written whole (``write_whole``: a temporary file renamed into place)."""
    from gtdsl.runtime.tensorfile import write_whole

    write_whole(path, lambda fh: fh.write(text.encode("utf-8")))


def _copy(src: Path, dst: Path) -> None:
    """``src``'s bytes written whole to ``dst``."""
    from gtdsl.runtime.tensorfile import write_whole

    with open(src, "rb") as f:
        write_whole(dst, lambda fh: shutil.copyfileobj(f, fh))


__all__ = ["Card", "TOKENIZER_FILES", "model_card", "save_folder", "target"]
