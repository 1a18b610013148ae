"""The fine-tuning example: gradients flow through the gtdsl encoder into every parameter,
the loss falls, and TensorBoard and DVC-style metrics are written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from tests.conftest import REPO

PATH = REPO / "docs" / "examples" / "finetune" / "finetune.py"


def _example():
    spec = importlib.util.spec_from_file_location("finetune_example", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradients_reach_every_encoder_parameter() -> None:
    ex = _example()
    model = ex.Classifier(0)
    loss = model.loss(["a good day", "a bad day"], [1, 0])
    loss.backward()
    grads = [t.grad for t in model.parameters]
    assert all(g is not None for g in grads)
    assert sum(bool(g.abs().sum() > 0) for g in grads) >= len(grads) - 2  # token rows unused


def test_loss_falls_and_logs_are_written(tmp_path: Path) -> None:
    ex = _example()
    metrics = ex.train(epochs=2, out=tmp_path, log=lambda _: None)
    assert metrics["loss_last"] < metrics["loss_first"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["steps"] == metrics["steps"] == 6
    assert "epochs: 2" in (tmp_path / "params.yaml").read_text()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    torch.set_grad_enabled(True)
