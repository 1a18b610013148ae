"""The fine-tuning example under torchrun (docs/scaling.md): two CPU processes on 127.0.0.1
with DistributedDataParallel (gloo), each on its share of every global batch (half of it, or
one example more or less when the batch does not divide), give the metrics and the per-step
losses of one process with the same batch size and seed; only rank 0 writes. The page's
commands are the example's."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, docs_python_example

PATH = REPO / "docs" / "examples" / "finetune" / "finetune.py"
ARGS = ["--epochs", "2", "--lr", "3e-4", "--seed", "0", "--batch-size", "16"]
ODD = ["--epochs", "1", "--lr", "3e-4", "--seed", "0", "--batch-size", "15"]  # 8 + 7 a step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _losses(out: Path) -> list[float]:
    with open(out / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv", newline="") as f:
        return [float(v) for _, v in list(csv.reader(f, delimiter="\t"))[1:]]


def _one_and_two(args: list[str], single: Path, double: Path, cwd: Path
                 ) -> tuple[dict[str, float], dict[str, float], str]:
    """The metrics of one process and of two under torchrun, and the two's stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    one = subprocess.run([sys.executable, str(PATH), *args, "--out", str(single)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(PATH), *args,
         "--out", str(double)],
        capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((double / "metrics.json").read_text())
    assert set(a) == set(b) and a["steps"] == b["steps"]
    for k in ("train_accuracy", "test_accuracy"):
        assert a[k] == b[k], k
    for k in ("loss_first", "loss_last"):
        assert b[k] == pytest.approx(a[k], rel=1e-4), k
    # every step's loss, not only the first and last
    assert _losses(double) == pytest.approx(_losses(single), rel=1e-4)
    run = json.loads((double / "run.json").read_text())
    assert (run["world_size"], run["backend"]) == (2, "gloo")
    assert len(list((double / "tensorboard").iterdir())) == 1
    return a, b, two.stdout


@pytest.mark.slow
def test_two_processes_give_the_metrics_of_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    single, double = runs / "single", runs / "ddp"
    a, b, out = _one_and_two(ARGS, single, double, tmp_path)
    assert out.count("epoch 2/2") == 1  # rank 0 reports, rank 1 is quiet
    assert a["steps"] == 6
    # a batch that does not divide: 15 = 8 + 7 a step, the epoch's last 3 = 2 + 1
    odd, _, _ = _one_and_two(ODD, runs / "odd-single", runs / "odd", tmp_path)
    assert odd["steps"] == 4
    # rank 0 wrote the runs; nothing else was written
    assert sorted(p.name for p in runs.iterdir()) == ["ddp", "odd", "odd-single", "single"]
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    # docs/scaling.md's comparison of the two runs: the same keys, the differences it shows
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    docs_python_example("scaling.md", "## Data-parallel fine-tuning", tmp_path, "compare")
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == list(a)
    for key, first, second, diff in rows:
        assert float(diff) <= 1e-4 * abs(float(first)) if "loss" in key else diff == "0.0e+00"


def _page() -> str:
    return (REPO / "docs" / "scaling.md").read_text(encoding="utf-8")


def test_the_pages_commands_are_the_examples(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import re
    import shlex

    spec = importlib.util.spec_from_file_location("finetune_scaling", PATH)
    assert spec is not None and spec.loader is not None
    ex = importlib.util.module_from_spec(spec)
    sys.modules["finetune_scaling"] = ex
    spec.loader.exec_module(ex)
    monkeypatch.chdir(tmp_path)  # rank 0's parse() makes the output directories
    page = _page()
    commands = re.findall(r"^\$ (torchrun .*)$", page, re.M)
    assert len(commands) == 2
    for command, args in zip(commands, (ARGS, ODD)):
        argv = shlex.split(command)
        assert argv[:6] == ["torchrun", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                            "--master-port"] and argv[7] == "finetune.py"
        assert argv[8:-2] == args and argv[-2] == "--out"  # what the test above runs
        for rank in (0, 1):
            assert ex.parse(argv[8:], ex.World(rank, 2))[1] == ex.parse(args, ex.World())[1]
    # the excerpt of finetune.py is finetune.py's
    excerpt = page.split("From the example's `finetune.py`:", 1)[1].split("```python\n")[1]
    source = PATH.read_text(encoding="utf-8")
    for line in excerpt.split("```")[0].splitlines():
        assert line == "..." or line in source, line
