"""The fine-tuning example as a DVC pipeline (docs/tracking.md): the committed dvc.lock records
the data, the code and the settings by content hash as they are now; in a copy of the example
in its own git repository, `dvc repro` runs the `train` stage and leaves the tracked files as
they were but dvc.lock; `dvc exp run -S train.lr=...` runs a variant; `dvc exp show` lists both
runs with their settings and metrics, and `dvc plots show` the loss and accuracy per step."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

FOLDER = REPO / "docs" / "examples" / "finetune"
FILES = ["finetune.py", "head.gt", "reviews.tsv"]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_the_committed_lock_records_the_files_as_they_are() -> None:
    """dvc.lock comes from a real `dvc repro` of the files as committed (rerun it in
    docs/examples/finetune after changing one of them)."""
    yaml = pytest.importorskip("yaml")
    lock = yaml.safe_load((FOLDER / "dvc.lock").read_text())
    stage = lock["stages"]["train"]
    dvc = yaml.safe_load((FOLDER / "dvc.yaml").read_text())["stages"]["train"]
    assert stage["cmd"] == dvc["cmd"] == \
        "python finetune.py --params params.yaml --out results --overwrite"
    assert {d["path"]: d["md5"] for d in stage["deps"]} == {
        name: _md5(FOLDER / name) for name in FILES}, "rerun `dvc repro` in " \
        "docs/examples/finetune: dvc.lock is stale"
    train = yaml.safe_load((FOLDER / "params.yaml").read_text())["train"]
    assert stage["params"]["params.yaml"] == {f"train.{k}": v for k, v in train.items()}
    assert sorted(train) == ["batch_size", "epochs", "lr", "seed"]
    outs = {o["path"] for o in stage["outs"]}
    assert outs == {"results/model", "results/metrics.json", "results/dvclive/plots/metrics"}
    # the subproject's DVC files are those `dvc init --subdir` writes
    assert (FOLDER / ".dvc" / "config").is_file() and (FOLDER / ".dvcignore").is_file()
    assert "/cache" in (FOLDER / ".dvc" / ".gitignore").read_text().split()
    assert "/results/" in (FOLDER / ".gitignore").read_text().split()


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 240) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _entry(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An `exp show --json` row's params (train:) and metrics."""
    d = data["data"]
    return d["params"]["params.yaml"]["data"]["train"], d["metrics"]["results/metrics.json"][
        "data"]


@pytest.mark.slow
def test_dvc_repro_then_an_experiment_then_the_comparison(tmp_path: Path) -> None:
    pytest.importorskip("dvc")
    pytest.importorskip("dvclive")
    repo = tmp_path / "repo"
    ex = repo / "finetune"
    shutil.copytree(FOLDER, ex, ignore=shutil.ignore_patterns(
        "results", "runs", "__pycache__", "cache", "tmp"))
    params = ex / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 4", "epochs: 1"))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com",
           # the stage's `python` is this interpreter
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": str(REPO)}
    git = ["git", "-c", "init.defaultBranch=main"]
    _run(git + ["init", "-q"], repo, env)
    _run(git + ["add", "-A"], repo, env)
    _run(git + ["commit", "-qm", "the example"], repo, env)
    dvc = [sys.executable, "-m", "dvc"]

    _run(dvc + ["repro"], ex, env)
    # the run's outputs are ignored: of the tracked files only dvc.lock changed
    status = _run(["git", "status", "--porcelain"], repo, env).splitlines()
    assert status == [" M finetune/dvc.lock"], status
    import yaml

    stage = yaml.safe_load((ex / "dvc.lock").read_text())["stages"]["train"]
    deps = {d["path"]: d["md5"] for d in stage["deps"]}
    assert deps["reviews.tsv"] == _md5(FOLDER / "reviews.tsv")  # the data, by content
    assert stage["params"]["params.yaml"]["train.epochs"] == 1
    first = json.loads((ex / "results" / "metrics.json").read_text())
    assert first["steps"] == 3
    _run(git + ["commit", "-qam", "dvc repro"], repo, env)

    _run(dvc + ["exp", "run", "-S", "train.lr=0.0001"], ex, env)
    rows = json.loads(_run(dvc + ["exp", "show", "--json"], ex, env))
    (base,) = [r for r in rows if r["rev"] != "workspace"]
    base_params, base_metrics = _entry(base)
    (exp,) = base["experiments"]
    exp_params, exp_metrics = _entry(exp["revs"][0])
    assert base_params == {"lr": 0.0003, "epochs": 1, "seed": 0, "batch_size": 16}
    assert exp_params == {"lr": 0.0001, "epochs": 1, "seed": 0, "batch_size": 16}
    assert base_metrics == first
    assert set(exp_metrics) == set(first) and exp_metrics["steps"] == 3
    assert exp_metrics["loss_last"] != first["loss_last"]
    assert exp_metrics["loss_first"] == pytest.approx(first["loss_first"], rel=1e-6)

    plots = json.loads(_run(dvc + ["plots", "show", "--json"], ex, env))["data"]
    where = "results/dvclive/plots/metrics/"
    assert sorted(plots) == [where + n for n in ("test/accuracy.tsv", "train/accuracy.tsv",
                                                 "train/loss.tsv")]
    loss = plots[where + "train/loss.tsv"][0]["content"]["data"]["values"]
    assert [(v["step"], float(v["loss"])) for v in loss][-1] == ("2", exp_metrics["loss_last"])


# ---------------------------------------------------------------------- docs/tracking.md
DOC = REPO / "docs" / "tracking.md"


def _blocks(kind: str) -> list[str]:
    import re

    return re.findall(rf"^```{kind}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


def _commands() -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the page's console blocks, with the lines shown after it."""
    out: list[tuple[str, list[str]]] = []
    for block in _blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def test_the_page_shows_the_pipeline_files_as_they_are() -> None:
    yaml = pytest.importorskip("yaml")
    shown = [yaml.safe_load(b) for b in _blocks("yaml")]
    assert shown == [yaml.safe_load((FOLDER / n).read_text()) for n in ("dvc.yaml",
                                                                         "params.yaml")]


def test_the_pages_commands_run_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each `python finetune.py` command is accepted, or refused with the lines the page
    shows, or (a diverged run) run, failing with the line the page shows; each `dvc` command
    is one the pipeline test runs (or its table form)."""
    import importlib.util
    import shlex

    spec = importlib.util.spec_from_file_location("finetune_doc", FOLDER / "finetune.py")
    assert spec is not None and spec.loader is not None
    ex = importlib.util.module_from_spec(spec)
    sys.modules["finetune_doc"] = ex
    spec.loader.exec_module(ex)
    held = tmp_path / "held"  # a directory whose runs/first holds a run
    for name in ("model", "dvclive"):
        (held / "runs" / "first" / name).mkdir(parents=True)
    for name in ("metrics.json", "run.json"):
        (held / "runs" / "first" / name).write_text("{}")
    (tmp_path / "empty").mkdir()
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    checked = dvc = 0
    for command, shown in _commands():
        argv = shlex.split(command)
        if argv[0] == "dvc":
            assert " ".join(argv[1:3]) in ("repro", "exp run", "exp show", "plots show",
                                           "plots diff", "metrics show"), command
            dvc += 1
        if argv[:2] != ["python", "finetune.py"]:
            continue
        refused = bool(shown) and shown[0].startswith("usage:")
        monkeypatch.chdir(held if refused else tmp_path / "empty")
        if shown and shown[0].startswith("finetune.py: error: the training loss"):
            assert ex.main(argv[2:]) == 1
            assert capsys.readouterr().err.splitlines() == shown, command
        elif refused:
            with pytest.raises(SystemExit) as e:
                ex.main(argv[2:])
            assert e.value.code == 2
            assert capsys.readouterr().err.splitlines() == shown, command
        else:
            world = ex.World()
            if "--wandb" in argv:
                argv.remove("--wandb")  # accepted where wandb is installed
            ex.parse(argv[2:], world)
        checked += 1
    assert checked == 7 and dvc >= 7
