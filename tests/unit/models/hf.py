"""Writing a transformers model as a Hugging Face-layout folder, for the model tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gtdsl.runtime.tensorfile import write_safetensors


def save_folder(model: Any, folder: Path, prefix: bool = True) -> Path:
    """``config.json`` and ``model.safetensors`` (tied output heads left out, as checkpoints
    usually do; ``prefix`` False drops GPT-2's ``transformer.``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(model.config.to_json_string())
    write_safetensors(folder / "model.safetensors", {
        k if prefix else k.removeprefix("transformer."): v.contiguous()
        for k, v in model.state_dict().items() if k != "lm_head.weight"})
    return folder
