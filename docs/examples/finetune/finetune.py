"""Fine-tune MiniLM (BERT written in gtdsl) to tell good reviews from bad ones.

    python finetune.py --epochs 2 --lr 3e-4 --seed 0 --batch-size 16 --out runs/first
    python finetune.py --params params.yaml --out results   # the `train:` settings of a file
    dvc repro                                # in this folder: dvc.yaml's `train` stage
    torchrun --nproc-per-node 2 finetune.py --out runs/ddp  # data parallel, the same metrics

The model is transformers' BertForSequenceClassification: the encoder
(``gtdsl.models.bert.Bert`` with all-MiniLM-L6-v2's weights) and its pooler, then the
classifier of ``head.gt``; every parameter is trained, the gradients flowing through the
compiled gtdsl functions. The run writes, under ``--out``:

- ``metrics.json``: first and last training loss, accuracy on the training and test sets;
- ``model/``: the trained model as a Hugging Face BertForSequenceClassification folder
  (transformers' ``AutoModelForSequenceClassification`` and gtdsl's
  ``BertForSequenceClassification`` load it);
- ``run.json``: the settings, the data's md5, the number of processes, the time taken;
- ``tensorboard/RUN/``: loss and accuracy per step and the hyperparameters with the final
  metrics (hparams), one directory per run (``tensorboard --logdir OUT/tensorboard``);
- ``dvclive/``: the same per step, as dvclive writes them for ``dvc plots``;
- ``wandb/``: with ``--wandb``, an offline wandb run (``wandb sync`` uploads it).

An ``--out`` that holds a run is refused unless ``--overwrite`` is given (which replaces the
run's files; the TensorBoard runs, each in its own directory, are kept); the output directory
and the run's TensorBoard directory are made (or checked) before anything runs, so a path
that cannot be written is refused at once. A run whose loss stops being finite stops there
(exit status 1) and saves no model and no metrics. Under ``torchrun`` each process trains on
its contiguous share of every global batch (``--batch-size`` examples; the shares differ by
at most one) with DistributedDataParallel (gloo on the CPU, nccl on GPUs); the metrics equal
those of one process with the same batch size and seed. docs/tracking.md, docs/scaling.md.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE / "reviews.tsv"
LABELS = ("negative", "positive")
OUTPUTS = ("metrics.json", "model", "run.json", "dvclive")  # what --overwrite replaces
SEED_MAX = 2**64 - 1  # torch.manual_seed takes seeds up to this
LR_MAX = float(torch.finfo(torch.float32).max)  # the optimizer scales float32 tensors by it


@dataclass
class Params:
    """The training settings: params.yaml's ``train:`` section, or the flags."""

    epochs: int = 4
    lr: float = 3e-4
    seed: int = 0
    batch_size: int = 16


# ---------------------------------------------------------------------- data
def load_data(seed: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """reviews.tsv (label, text), shuffled by ``seed``: 80% to train on, 20% to test."""
    rows = [line.split("\t", 1) for line in DATA.read_text(encoding="utf-8").splitlines()[1:]]
    data = [(text, int(label)) for label, text in rows]
    random.Random(seed).shuffle(data)
    cut = int(len(data) * 0.8)
    return data[:cut], data[cut:]


def data_md5() -> str:
    return hashlib.md5(DATA.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- processes
@dataclass
class World:
    """This process among those of a ``torchrun`` (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    device: str = "cpu"
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: list[Any]) -> list[Any]:
        """This rank's contiguous share of ``items`` (the first ranks get one more when the
        count does not divide evenly)."""
        base, extra = divmod(len(items), self.size)
        start = self.rank * base + min(self.rank, extra)
        return items[start:start + base + (self.rank < extra)]

    def total(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if self.size == 1:
            return list(values)
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()


def torchrun_world() -> World:
    """The world ``torchrun`` describes in RANK, WORLD_SIZE and LOCAL_RANK (not joined yet)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return World()
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    cuda = torch.cuda.is_available()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
    return World(rank, size, device, "nccl" if cuda else "gloo")


def join(world: World) -> None:
    import torch.distributed as dist

    if world.device.startswith("cuda"):
        torch.cuda.set_device(torch.device(world.device))
    torch.set_num_threads(1)  # one thread per process: several processes share the cores
    dist.init_process_group(world.backend, rank=world.rank, world_size=world.size)


# ---------------------------------------------------------------------- the model
class Classifier:
    """BertForSequenceClassification in gtdsl: the MiniLM encoder and its pooler (loaded),
    the classifier of head.gt (initialized as transformers does: normal(0, 0.02) weights,
    zero bias, from ``seed``). ``module`` holds every parameter as an ``nn.Module``
    (``gtdsl.distributed.StructModule``); calling it gives the loss of a batch."""

    def __init__(self, seed: int = 0, device: str = "cpu") -> None:
        import gtdsl
        from gtdsl.distributed import StructModule
        from gtdsl.models.bert import Bert

        torch.manual_seed(seed)
        self.encoder = Bert("all-MiniLM-L6-v2")
        if self.encoder.pooler is None:
            raise ValueError(f"{self.encoder.dir} has no pooler weights")
        self.heads = gtdsl.load(HERE / "head.gt")
        hidden = self.encoder.config.hidden
        std = float(self.encoder.raw_config.get("initializer_range", 0.02))
        self.head = self.heads.Head(weight=torch.randn(len(LABELS), hidden) * std,
                                    bias=torch.zeros(len(LABELS)))
        self.module = StructModule(self._batch_loss, encoder=self.encoder.params,
                                   pooler=self.encoder.pooler, head=self.head).to(device)
        self.device = device
        self.dense = self.encoder.module.functions["blocks.dense"]

    @property
    def parameters(self) -> list[torch.Tensor]:
        return list(self.module.parameters())

    def pooled(self, texts: list[str]) -> torch.Tensor:
        """The pooler's output: tanh(dense(the first token's hidden state))."""
        m = self.encoder
        t = {k: v.to(self.device) for k, v in m.tokenize(texts).items()}
        keep = (t["mask"] != 0)[:, None, None, :]
        h = m.module.encode(m.params, t["ids"], t["types"], m.positions(t["ids"]).to(self.device),
                            keep, m.config.eps, m.config.act, **m.config.sizes)
        return torch.tanh(self.dense(m.pooler, h[:, 0]))

    def logits(self, texts: list[str]) -> torch.Tensor:
        self.module.bind()
        return self.heads.classify(self.head, self.pooled(texts))

    def loss(self, texts: list[str], labels: list[int]) -> torch.Tensor:
        self.module.bind()
        return self._batch_loss(texts, labels, 1.0)[0]

    def _batch_loss(self, texts: list[str], labels: list[int], scale: float
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mean loss times ``scale`` (to backpropagate), the summed loss and the number
        of right answers (to report)."""
        x = self.pooled(texts)
        y = torch.tensor(labels, device=self.device)
        loss = self.heads.loss(self.head, x, y)
        right = (self.heads.classify(self.head, x).argmax(-1) == y).sum()
        return loss * scale, loss.detach() * len(labels), right.detach()

    @torch.no_grad()
    def correct(self, data: list[tuple[str, int]], batch: int = 64) -> int:
        right = 0
        for i in range(0, len(data), batch):
            chunk = data[i:i + batch]
            got = self.logits([t for t, _ in chunk]).argmax(-1).cpu()
            right += int((got == torch.tensor([y for _, y in chunk])).sum())
        return right

    def save(self, folder: Path) -> Path:
        """The model as transformers saves a BertForSequenceClassification: the encoder's
        and pooler's tensors under ``bert.``, the classifier's as ``classifier.``, a config
        with the labels, the tokenizer's files and a model card."""
        from gtdsl.models.sharing import Card, save_folder

        enc = self.encoder
        tensors = {f"bert.{k}": v.detach().cpu().contiguous()
                   for k, v in enc.state_dict().items()}
        tensors["classifier.weight"] = self.head.weight.detach().cpu().contiguous()
        tensors["classifier.bias"] = self.head.bias.detach().cpu().contiguous()
        config = dict(enc.raw_config)
        config.update(architectures=["BertForSequenceClassification"],
                      id2label={str(i): name for i, name in enumerate(LABELS)},
                      label2id={name: i for i, name in enumerate(LABELS)},
                      problem_type="single_label_classification")
        c = enc.config
        card = Card("BertForSequenceClassification", "BERT", "text-classification",
                    {"layers": c.layers, "hidden size": c.hidden, "attention heads": c.heads,
                     "labels": ", ".join(LABELS)}, "finetune.Classifier",
                    "from gtdsl.models.bert import BertForSequenceClassification\n\n"
                    f"labels = BertForSequenceClassification(\"{folder.name}\").classify("
                    "[\"What a great day\"])", tags=["text-classification"])
        return save_folder(enc.dir, folder, tensors, config, card)


# ---------------------------------------------------------------------- loggers
class Loggers:
    """TensorBoard, dvclive and wandb, each when available (rank 0 only)."""

    def __init__(self, out: Path, run: str, params: Params, world: World, use_wandb: bool,
                 log: Any) -> None:
        """``out / "tensorboard" / run`` is the run's own TensorBoard directory, made by
        ``fresh`` (``train`` and ``parse`` make it)."""
        self.tb: Any = None
        self.live: Any = None
        self.wandb: Any = None
        if not world.main:
            return
        hp = {**asdict(params), "world_size": world.size}
        self.dvclive = out / "dvclive"
        tb = out / "tensorboard" / run
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(tb))
        except ImportError:
            log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
            for empty in (tb, tb.parent):  # made for nothing
                try:
                    empty.rmdir()
                except OSError:
                    pass
        self.live = _dvclive(self.dvclive, log)
        if self.live is not None:
            self.live.log_params(hp)
        if use_wandb:
            import wandb

            self.wandb = wandb.init(mode="offline", dir=str(out), project="gtdsl-finetune",
                                    name=run, config=hp)

    def step(self, step: int, values: dict[str, float]) -> None:
        """Per-step values (``train/loss``, ``train/accuracy``, ``test/accuracy``)."""
        for name, v in values.items():
            if self.tb is not None:
                self.tb.add_scalar(name, v, step)
            if self.live is not None:
                self.live.log_metric(name, v)
        if self.wandb is not None:
            self.wandb.log(values, step=step)
        if self.live is not None:
            self.live.next_step()

    def finish(self, params: Params, world: World, metrics: dict[str, float]) -> None:
        if self.tb is not None:
            from torch.utils.tensorboard.summary import hparams

            final = {f"hparam/{k}": float(v) for k, v in metrics.items() if k != "steps"}
            for summary in hparams({**asdict(params), "world_size": world.size}, final):
                self.tb.file_writer.add_summary(summary)
            for k, v in final.items():
                self.tb.add_scalar(k, v)
            self.tb.close()
        if self.live is not None:
            self.live.end()
        if self.wandb is not None:
            self.wandb.summary.update(metrics)
            self.wandb.finish()

    def abort(self) -> None:
        """A run that failed: TensorBoard keeps its steps (the run's own directory), wandb
        marks the run failed, dvclive's rows go (``dvclive/`` is part of a finished run, and
        would block the next run into ``--out``)."""
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish(exit_code=1)
        if self.live is not None:
            shutil.rmtree(self.dvclive, ignore_errors=True)


def _dvclive(directory: Path, log: Any) -> Any:
    """A dvclive logger into ``directory``. Inside a DVC pipeline (``dvc repro``, ``dvc exp
    run``) it is dvclive's own; in a plain run it looks for no DVC repository (dvclive
    would otherwise make the enclosing git repository a DVC one) and saves no experiment."""
    try:
        from dvclive import Live
    except ImportError:
        if os.environ.get("DVC_ROOT"):
            print("finetune.py: error: the DVC pipeline needs dvclive: pip install dvclive",
                  file=sys.stderr)
            raise SystemExit(2) from None
        log("dvclive is not installed: no per-step plots for DVC (pip install dvclive)")
        return None
    if os.environ.get("DVC_ROOT"):
        return Live(str(directory), save_dvc_exp=False, dvcyaml=None)
    if not hasattr(Live, "_init_dvc"):  # an unknown dvclive: a plain run goes without
        log("this dvclive version is not supported outside DVC: no per-step plots")
        return None

    class PlainLive(Live):
        def _init_dvc(self) -> None:
            self._dvc_repo = None
            self._dvc_file = "dvc.yaml"

    return PlainLive(str(directory), save_dvc_exp=False, dvcyaml=None)


# ---------------------------------------------------------------------- training
class Diverged(Exception):
    """The training loss, or the trained weights, stopped being finite."""


def train(params: Params | None = None, out: Path | None = None, log: Any = print,
          world: World | None = None, use_wandb: bool = False, run: str | None = None,
          overwrite: bool = False) -> dict[str, float]:
    """Train; the metrics (every rank gets them). ``out``: where the run's files go (rank 0
    writes them; None writes nothing). A loss that is not finite raises ``Diverged`` on every
    rank, before that step's update; the model and metrics are then not written."""
    p = params or Params()
    world = world or World()
    start, cpu_start = time.perf_counter(), time.process_time()
    train_set, test_set = load_data(p.seed)
    model = Classifier(p.seed, world.device)
    net: Any = model.module
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        from gtdsl.distributed import check_across_ranks

        check_across_ranks(model.module, model.encoder.config.sizes)
        net = DistributedDataParallel(model.module)  # broadcasts rank 0's parameters
    opt = torch.optim.AdamW(model.parameters, lr=p.lr)
    run = run or run_name(p)
    loggers = None
    if out is not None and world.main:
        out.mkdir(parents=True, exist_ok=True)
        if overwrite:
            remove_run(out)
        tb = out / "tensorboard" / run
        if not (tb.is_dir() and not tb.is_symlink() and not any(tb.iterdir())):
            tb = fresh(tb)  # parse() made an empty one; else a run of its own
        run = tb.name
        loggers = Loggers(out, run, p, world, use_wandb, log)

    def accuracy(data: list[tuple[str, int]]) -> float:
        right, count = world.total(model.correct(world.share(data)), len(world.share(data)))
        return right / count

    def diverged(what: str) -> Diverged:
        if loggers is not None:
            loggers.abort()
        return Diverged(f"{what}: training diverged; try a lower --lr than {p.lr:g}")

    losses: list[float] = []
    step = 0
    for epoch in range(p.epochs):
        random.Random(p.seed + epoch).shuffle(train_set)
        for i in range(0, len(train_set), p.batch_size):
            chunk = train_set[i:i + p.batch_size]
            mine = world.share(chunk)
            # each rank's mean loss, scaled so that the average DDP takes of the gradients is
            # the gradient of the global batch's mean loss; a rank without examples runs one
            # with weight 0, so that every rank takes part in the gradients' all-reduce
            scale = len(mine) * world.size / len(chunk)
            texts, labels = ([t for t, _ in mine], [y for _, y in mine]) if mine else \
                ([chunk[0][0]], [chunk[0][1]])
            loss, loss_sum, right = net(texts, labels, scale)
            total, correct = world.total(float(loss_sum) if mine else 0.0,
                                         float(right) if mine else 0.0)
            if not math.isfinite(total):  # the global loss: every rank stops here
                raise diverged(f"the training loss is {total} at step {step} (epoch {epoch + 1})")
            opt.zero_grad()
            loss.backward()
            try:
                opt.step()
            except RuntimeError as e:  # a step size float32 cannot hold (lr over 3.4e37)
                if "overflow" not in str(e):
                    raise
                raise diverged(f"the update at step {step} (epoch {epoch + 1}) overflows "
                               "float32") from None
            losses.append(total / len(chunk))
            values = {"train/loss": losses[-1], "train/accuracy": correct / len(chunk)}
            if i + p.batch_size >= len(train_set):
                values["test/accuracy"] = test_acc = accuracy(test_set)
                if world.main:
                    log(f"epoch {epoch + 1}/{p.epochs}: loss {losses[-1]:.4f}  test accuracy "
                        f"{test_acc:.3f}  ({time.perf_counter() - start:.0f}s)")
            if loggers is not None:
                loggers.step(step, values)
            step += 1
    if not all(bool(torch.isfinite(t).all()) for t in model.parameters):
        raise diverged(f"the weights are not finite after step {step - 1} (epoch {p.epochs})")
    metrics = {"loss_first": losses[0], "loss_last": losses[-1],
               "train_accuracy": accuracy(train_set), "test_accuracy": accuracy(test_set),
               "steps": step}
    if out is not None and world.main:
        model.save(out / "model")
        info = {"run": run, "params": asdict(p), "data": {"path": DATA.name, "md5": data_md5(),
                                                          "train": len(train_set),
                                                          "test": len(test_set)},
                "world_size": world.size, "backend": world.backend, "device": world.device,
                "seconds": round(time.perf_counter() - start, 2),
                "cpu_seconds": round(time.process_time() - cpu_start, 2)}
        (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
        assert loggers is not None
        loggers.finish(p, world, metrics)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")  # last
    return metrics


def run_name(p: Params) -> str:
    """``20250101-120000-lr0.0003-bs16-e4-seed0``: when, and with what settings."""
    return (f"{time.strftime('%Y%m%d-%H%M%S')}-lr{p.lr:g}-bs{p.batch_size}-e{p.epochs}"
            f"-seed{p.seed}")


def fresh(path: Path, made: list[Path] | None = None) -> Path:
    """A new directory, made: ``path``, or ``path-2``, ``path-3``, ... when it exists (made
    with ``os.mkdir``, which fails if another process made it first, so two runs started at
    once never share one); its missing parents are made too. Each directory made is added to
    ``made``. Raises OSError when it cannot be made."""
    made = [] if made is None else made
    makedirs(path.parent, made)
    n, candidate = 1, path
    while True:
        try:
            os.mkdir(candidate)
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")
            continue
        made.append(candidate)
        return candidate


def makedirs(path: Path, made: list[Path]) -> None:
    """``path`` and its missing parents, each directory made added to ``made``."""
    missing = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made by another process meanwhile
        made.append(d)
    if not path.is_dir() and not missing:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def unmake(made: list[Path]) -> None:
    """Remove the directories ``fresh`` and ``makedirs`` made, last first, if still empty."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass


def held_run(out: Path) -> list[str]:
    """The files of a run that ``out`` holds."""
    return [n for n in OUTPUTS if os.path.lexists(out / n)]


def remove_run(out: Path) -> None:
    for name in OUTPUTS:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()


# ---------------------------------------------------------------------- command line
def read_params(path: str) -> dict[str, Any]:
    """The ``train:`` section of a YAML file (DVC's params.yaml), checked; raises ValueError
    with the reason."""
    try:
        import yaml
    except ImportError:
        raise ValueError("reading a params file needs PyYAML (pip install pyyaml)") from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not YAML: {str(e).splitlines()[0]}") from None
    section = data.get("train") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ValueError(f"{path} has no `train:` section (a mapping of lr, epochs, seed, "
                         "batch_size)")
    unknown = sorted(set(section) - set(Params.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{path}: unknown settings under `train:`: {', '.join(map(str, unknown))}"
                         f" (known: {', '.join(Params.__dataclass_fields__)})")
    return dict(section)


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if n < low:
        raise ValueError(f"{name} must be at least {low}, not {n}")
    if high is not None and n > high:
        raise ValueError(f"{name} must be at most {high}, not {n}")
    return n


def _lr(value: Any) -> float:
    # YAML 1.1 (PyYAML) reads `1e-4` as a string; DVC writes it so
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"lr must be a number, not {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"lr must be a number, not {value!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"lr must be a positive number, not {value!r}")
    if x > LR_MAX:
        raise ValueError(f"lr must be at most {LR_MAX:g} (the largest float32), not {value!r}")
    return x


def checked(values: dict[str, Any]) -> Params:
    return Params(epochs=_int("epochs", values["epochs"], 1), lr=_lr(values["lr"]),
                  seed=_int("seed", values["seed"], 0, SEED_MAX),
                  batch_size=_int("batch size", values["batch_size"], 1))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="finetune.py", description=__doc__.splitlines()[0])
    ap.add_argument("--params", metavar="FILE",
                    help="read the settings from FILE's `train:` section (DVC's params.yaml); "
                    "flags given as well win")
    ap.add_argument("--epochs", type=int, help=f"passes over the data ({Params.epochs})")
    ap.add_argument("--lr", type=float, help=f"AdamW's learning rate ({Params.lr})")
    ap.add_argument("--seed", type=int, help=f"data order and head initialization, 0 to "
                    f"2**64 - 1 ({Params.seed})")
    ap.add_argument("--batch-size", type=int, dest="batch_size",
                    help=f"examples per step, over all processes ({Params.batch_size})")
    ap.add_argument("--out", metavar="DIR", help="where the run's files go (runs/RUN: a new "
                    "directory named by the time and settings)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace the run that --out holds (refused otherwise)")
    ap.add_argument("--run-name", help="the TensorBoard and wandb run's name (the time and "
                    "settings)")
    ap.add_argument("--wandb", action="store_true",
                    help="also log to an offline wandb run under --out (needs wandb)")
    return ap


def parse(argv: list[str] | None, world: World
          ) -> tuple[argparse.Namespace, Params, Path, str]:
    """The arguments, the settings, the output directory and the run's name; a bad
    argument is an argparse error (a message and exit status 2). On rank 0 the output
    directory (without ``--out``: a new one under ``runs/``) and the run's TensorBoard
    directory (``OUT/tensorboard/RUN``, ``RUN-2`` if taken: the name returned) are made here,
    so that a path that cannot be written is refused before anything runs; what was made for
    a refused run is removed."""
    ap = parser()
    a = ap.parse_args(argv)
    values: dict[str, Any] = asdict(Params())
    try:
        if a.params is not None:
            values.update(read_params(a.params))
        values.update({k: getattr(a, k) for k in values if getattr(a, k) is not None})
        p = checked(values)
    except ValueError as e:
        ap.error(str(e))
    if a.run_name is not None and (not a.run_name.strip() or a.run_name in (".", "..") or
                                   Path(a.run_name).name != a.run_name):
        ap.error(f"--run-name {a.run_name!r} must be a plain name (no path)")
    run = a.run_name or run_name(p)
    out = Path(a.out) if a.out else Path("runs") / run
    if a.out:
        if out.is_symlink() and not out.exists():
            ap.error(f"--out {out} is a symbolic link to nothing ({os.readlink(out)})")
        if out.exists() and not out.is_dir():
            ap.error(f"--out {out} is a file, not a directory")
        held = held_run(out)
        if held and not a.overwrite:
            ap.error(f"--out {out} already holds a run ({', '.join(held)}): give a new "
                     "directory, or --overwrite to replace it")
    if a.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            ap.error("--wandb needs the wandb package: pip install wandb")
    if world.main:  # the other ranks write nothing
        made: list[Path] = []
        where = out
        try:
            if a.out:
                makedirs(out, made)
            else:
                out = where = fresh(out, made)
            where = out / "tensorboard" / run
            run = fresh(where, made).name
            where = out  # its files: metrics.json, run.json, model/, dvclive/
            fd, probe = tempfile.mkstemp(dir=out, prefix=".finetune-")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            unmake(made)
            ap.error(f"cannot write the run's files to {where}: {e.strerror or e}")
    return a, p, out, run


def main(argv: list[str] | None = None) -> int:
    world = torchrun_world()
    a, p, out, run = parse(argv, world)
    if world.size > 1:
        join(world)
    try:
        log = print if world.main else (lambda _: None)
        m = train(p, out, log, world, use_wandb=a.wandb, run=run,
                  overwrite=a.overwrite)
    except Diverged as e:
        if world.main:
            tb = out / "tensorboard" / run
            kept = f"; its steps' TensorBoard log is in {tb}" if tb.is_dir() else ""
            print(f"finetune.py: error: {e}. No model or metrics were written{kept}",
                  file=sys.stderr)
        return 1
    finally:
        if world.size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if world.main:
        print(json.dumps(m, indent=2))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
