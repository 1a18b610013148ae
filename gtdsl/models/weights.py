"""A model folder's files: the weight file read and written back, the tokenizer, the GT0909
error every loader raises (the parameter structs are built by ``gtdsl.models.structs``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, Label
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
