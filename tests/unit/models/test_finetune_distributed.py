"""The fine-tuning example under torchrun (docs/scaling.md): two CPU processes on 127.0.0.1
with DistributedDataParallel (gloo), each on half of every global batch, give the metrics and
the per-step losses of one process with the same batch size and seed; only rank 0 writes. The
page's commands are the example's."""

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _losses(out: Path) -> list[float]:
    with open(out / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv", newline="") as f:
        return [float(v) for _, v in list(csv.reader(f, delimiter="\t"))[1:]]


@pytest.mark.slow
def test_two_processes_give_the_metrics_of_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    single, double = tmp_path / "runs" / "single", tmp_path / "runs" / "ddp"
    one = subprocess.run([sys.executable, str(PATH), *ARGS, "--out", str(single)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(PATH), *ARGS,
         "--out", str(double)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert two.stdout.count("epoch 2/2") == 1  # rank 0 reports, rank 1 is quiet
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((double / "metrics.json").read_text())
    assert set(a) == set(b) and a["steps"] == b["steps"] == 6
    for k in ("train_accuracy", "test_accuracy"):
        assert a[k] == b[k], k
    for k in ("loss_first", "loss_last"):
        assert b[k] == pytest.approx(a[k], rel=1e-4), k
    # every step's loss, not only the first and last
    assert _losses(double) == pytest.approx(_losses(single), rel=1e-4)
    run = json.loads((double / "run.json").read_text())
    assert (run["world_size"], run["backend"]) == (2, "gloo")
    # rank 0 wrote the run; nothing else was written
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp", "single"]
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    assert len(list((double / "tensorboard").iterdir())) == 1
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


def test_the_pages_commands_are_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    import re
    import shlex

    spec = importlib.util.spec_from_file_location("finetune_scaling", PATH)
    assert spec is not None and spec.loader is not None
    ex = importlib.util.module_from_spec(spec)
    sys.modules["finetune_scaling"] = ex
    spec.loader.exec_module(ex)
    page = _page()
    commands = re.findall(r"^\$ (torchrun .*)$", page, re.M)
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command)
        assert argv[:6] == ["torchrun", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                            "--master-port"] and argv[7] == "finetune.py"
        if "15" in argv:  # the refused one: the page shows the error each rank prints
            with pytest.raises(SystemExit):
                ex.parse(argv[8:], ex.World(0, 2))
            err = capsys.readouterr().err.splitlines()[-1]
            assert f"\n{err}\n" in page
        else:
            assert ex.parse(argv[8:], ex.World(0, 2))[1] == ex.Params(epochs=2)
    # the excerpt of finetune.py is finetune.py's
    excerpt = page.split("From the example's `finetune.py`:", 1)[1].split("```python\n")[1]
    source = PATH.read_text(encoding="utf-8")
    for line in excerpt.split("```")[0].splitlines():
        assert line == "..." or line in source, line
