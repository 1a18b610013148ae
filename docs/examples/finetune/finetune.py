"""Fine-tune MiniLM (BERT written in gtdsl) with a classification head on reviews.tsv.

    python docs/examples/finetune/finetune.py [--epochs 4] [--out runs/finetune]

Every parameter of the encoder and of the head (head.gt) is trained; gradients flow through
the compiled gtdsl functions as through any torch code. Loss and accuracy are logged to
TensorBoard (when the `tensorboard` package is installed: ``tensorboard --logdir OUT``) and
to DVC-style ``metrics.json`` and ``params.yaml`` in ``--out``. About a minute on the CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch

import gtdsl
from gtdsl.models.bert import Bert

HERE = Path(__file__).resolve().parent


def tensors_of(obj: Any) -> list[torch.Tensor]:
    """Every tensor inside a parameter struct (its fields, lists of structs included)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, list):
        return [t for x in obj for t in tensors_of(x)]
    return [t for f in vars(obj).values() for t in tensors_of(f)]


def load_data(seed: int) -> tuple[list, list]:
    rows = [line.split("\t", 1) for line in (HERE / "reviews.tsv").read_text().splitlines()[1:]]
    data = [(text, int(label)) for label, text in rows]
    random.Random(seed).shuffle(data)
    cut = int(len(data) * 0.8)
    return data[:cut], data[cut:]


class Classifier:
    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.encoder = Bert("all-MiniLM-L6-v2")
        self.heads = gtdsl.load(HERE / "head.gt")
        hidden = self.encoder.config.hidden
        self.head = self.heads.Head(weight=torch.randn(2, hidden) * 0.02, bias=torch.zeros(2))
        self.parameters = tensors_of(self.encoder.params) + tensors_of(self.head)
        for t in self.parameters:
            t.requires_grad_(True)

    def embed(self, texts: list[str]) -> torch.Tensor:
        m = self.encoder
        t = m.tokenize(texts)
        return m.module.sentence_embedding(m.params, t["ids"], t["types"], m.positions(t["ids"]),
                                           t["mask"], m.config.eps, m.config.act,
                                           **m.config.sizes)

    def loss(self, texts: list[str], labels: list[int]) -> torch.Tensor:
        return self.heads.loss(self.head, self.embed(texts), torch.tensor(labels))

    @torch.no_grad()
    def accuracy(self, data: list) -> float:
        logits = self.heads.classify(self.head, self.embed([t for t, _ in data]))
        return (logits.argmax(-1) == torch.tensor([y for _, y in data])).float().mean().item()


def train(epochs: int = 4, batch: int = 16, lr: float = 3e-4, seed: int = 0,
          out: Path | None = None, log: Any = print) -> dict[str, float]:
    train_set, test_set = load_data(seed)
    model = Classifier(seed)
    opt = torch.optim.AdamW(model.parameters, lr=lr)
    writer = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            log("tensorboard is not installed: logging to metrics.json only")
    losses: list[float] = []
    step = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        random.Random(seed + epoch).shuffle(train_set)
        for i in range(0, len(train_set), batch):
            chunk = train_set[i:i + batch]
            loss = model.loss([t for t, _ in chunk], [y for _, y in chunk])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if writer is not None:
                writer.add_scalar("loss/train", loss.item(), step)
            step += 1
        acc = model.accuracy(test_set)
        if writer is not None:
            writer.add_scalar("accuracy/test", acc, epoch)
        log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}  test accuracy {acc:.3f}  "
            f"({time.perf_counter() - start:.0f}s)")
    metrics = {"loss_first": losses[0], "loss_last": losses[-1],
               "train_accuracy": model.accuracy(train_set), "test_accuracy": model.accuracy(
                   test_set), "steps": step}
    if out is not None:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (out / "params.yaml").write_text(
            f"model: all-MiniLM-L6-v2\nepochs: {epochs}\nbatch: {batch}\nlr: {lr}\n"
            f"seed: {seed}\ntrain_examples: {len(train_set)}\ntest_examples: {len(test_set)}\n")
        if writer is not None:
            writer.close()
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--out", default="runs/finetune", help="where metrics and logs go")
    a = ap.parse_args(argv)
    m = train(a.epochs, lr=a.lr, out=Path(a.out))
    print(json.dumps(m, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
