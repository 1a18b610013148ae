"""Reading a model's weights into its parameter structs, each tensor checked against the
declared type of the field it fills (shared by every model's loader)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, Label
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.runtime.tensorfile import TensorFileError, read_safetensors


class ModelLoadError(GtdslError):
    """A model folder that cannot be read, or whose tensors do not match the model's types."""


def load_error(message: str, label: Label | None = None, help: str | None = None,
               path: str | None = None, notes: tuple[str, ...] = ()) -> ModelLoadError:
    return ModelLoadError([Diagnostic("GT0909", message, label, (), notes, help,
                                      path=None if label else path)])


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors``: a regular file (a FIFO or a device is refused, not read)."""
    try:
        return read_safetensors(path)
    except TensorFileError as e:
        raise load_error(str(e), path=str(path)) from None


MAX_TOKENIZER_BYTES = 256 * 2**20


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                   "sentence_bert_config.json", "generation_config.json")


def field(obj: Any, path: str) -> Any:
    """A struct value's field by dotted path (``attn.q``)."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def save_folder(source: Path, directory: str | os.PathLike[str],
                tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write a model folder in the Hugging Face layout: ``model.safetensors`` (``tensors`` by
    key), ``config.json``, and the source folder's tokenizer and generation files; each file
    is written whole, then renamed into place."""
    import json
    import os as _os
    import shutil

    from gtdsl.runtime.tensorfile import write_safetensors

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    write_safetensors(d / "model.safetensors", {k: v.detach().contiguous()
                                                for k, v in tensors.items()}, {"format": "pt"})
    tmp = d / ".config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2))
    _os.replace(tmp, d / "config.json")
    if source.resolve() != d.resolve():
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, d / name)
    return d


def load_tokenizer(folder: Path) -> Any:
    """The folder's ``tokenizer.json`` through the ``tokenizers`` package."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise load_error("the tokenizer needs the `tokenizers` package",
                         help="pip install tokenizers", path=str(folder)) from None
    from gtdsl.models.config import read_bytes

    path = folder / "tokenizer.json"
    if not os.path.lexists(path):
        raise load_error(f"`{folder}` has no tokenizer.json", path=str(folder),
                         help="save the model's tokenizer in the folder (tokenizer.json)")
    data = read_bytes(path, limit=MAX_TOKENIZER_BYTES)
    try:
        return Tokenizer.from_str(data.decode("utf-8"))
    except Exception as e:  # the tokenizers package raises plain Exceptions on bad files
        raise load_error(f"cannot read `{path.name}`: {e}", path=str(path)) from None


class WeightReader:
    """Hands out tensors by key, each checked against its field's type under one set of
    size bindings (so every tensor agrees with the config and with the others)."""

    def __init__(self, path: Path, tensors: dict[str, torch.Tensor], sizes: dict[str, int],
                 structs: Any) -> None:
        self.path, self.tensors, self.structs = path, tensors, structs
        self.bindings = Bindings(dict(sizes))
        self.used: set[str] = set()

    def take(self, key: str, t: Any, decl: Any, shown: str, field: str | None = None
             ) -> torch.Tensor:
        """The tensor ``key``, checked against ``t``; ``shown`` is where it goes in the
        model's parameters, ``field`` the struct field that declares it."""
        where = f"`{shown}`" + (f" (`{field}`)" if field else "")
        if key not in self.tensors:
            raise load_error(f"`{self.path.name}` has no tensor `{key}` for {where}",
                             Label(decl.span, "declared here") if decl is not None else None,
                             path=str(self.path), help="check that the folder holds this "
                             "kind of model")
        v = self.tensors[key]
        self.used.add(key)
        try:
            check_value(v, t, self.bindings, "", self.structs)
        except CastFailed as f:
            sizes = ", ".join(f"{k}={n}" for k, n in self.bindings.sizes.items()
                              if not k.startswith("#"))
            raise load_error(
                f"`{key}` in `{self.path.name}` does not match {where}: {f.mismatch}",
                Label(decl.span, f"declared here: {t}") if decl is not None else None,
                notes=(f"got: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}",
                       f"expected: {t} with {sizes}"),
                help="the file does not hold this model, or its config.json gives other "
                "sizes", path=str(self.path)) from None
        return v

    def unused(self, skip: tuple[str, ...] = (), skip_suffix: tuple[str, ...] = ()
               ) -> list[str]:
        return sorted(k for k in self.tensors if k not in self.used and
                      not k.startswith(skip) and not k.endswith(skip_suffix or ("\0",)))
