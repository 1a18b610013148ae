"""The fine-tuning example (docs/examples/finetune/finetune.py): gradients flow through the
gtdsl encoder into every parameter; a run writes its metrics, the trained model as a Hugging
Face BertForSequenceClassification folder that transformers and gtdsl load with the trained
model's logits, TensorBoard scalars and hparams in a run directory of its own, and dvclive's
per-step plots (without making the enclosing git repository a DVC one). The command line
refuses bad values, an --out that holds a run (exit status 2, nothing touched) unless
--overwrite, and an --out or run name it cannot write (exit status 2 before anything runs,
nothing left behind); runs started at once get directories of their own; a run whose loss
stops being finite stops (exit status 1) without writing a model or metrics; --wandb logs an
offline wandb run, or says in one line how to get wandb."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO, docs_python_example

FOLDER = REPO / "docs" / "examples" / "finetune"
PATH = FOLDER / "finetune.py"
TEXTS = ["What a great and happy day", "I hated this movie, it was awful", "fine", "meh ok"]


def _example() -> Any:
    name = "finetune_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_gradients_reach_every_parameter() -> None:
    ex = _example()
    model = ex.Classifier(0)
    loss = model.loss(["a good day", "a bad day"], [1, 0])
    loss.backward()
    grads = [t.grad for t in model.parameters]
    assert len(grads) == 6 * 16 + 5 + 2 + 2  # layers, embeddings, pooler, classifier
    assert all(g is not None for g in grads)
    assert sum(bool(g.abs().sum() > 0) for g in grads) >= len(grads) - 2  # token rows unused


def _tsv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def _tensorboard(run: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
    """A TensorBoard run's scalars (tag -> (step, value)) and its hparams."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    ea = EventAccumulator(str(run))
    ea.Reload()
    scalars = {t: [(s.step, s.value) for s in ea.Scalars(t)] for t in ea.Tags()["scalars"]}
    content = ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return scalars, {k: v.number_value for k, v in info.hparams.items()}


def test_a_run_saves_a_model_transformers_loads_and_logs_each_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import transformers

    from gtdsl.models.bert import BertForSequenceClassification

    ex = _example()
    repo = tmp_path / "repo"  # a plain run inside a git repository leaves it as it was
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    out = repo / "runs" / "first"
    captured: dict[str, Any] = {}
    real = ex.Classifier

    class Keep(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            captured["model"] = self

    monkeypatch.setattr(ex, "Classifier", Keep)
    metrics = ex.train(ex.Params(epochs=2), out=out, log=lambda _: None, run="first")
    assert sorted(os.listdir(repo)) == [".git", "runs"]  # dvclive made no DVC repository
    assert metrics["loss_last"] < metrics["loss_first"] and metrics["steps"] == 6
    assert json.loads((out / "metrics.json").read_text()) == metrics
    info = json.loads((out / "run.json").read_text())
    assert info["params"] == {"epochs": 2, "lr": 3e-4, "seed": 0, "batch_size": 16}
    assert info["data"]["md5"] == hashlib.md5((FOLDER / "reviews.tsv").read_bytes()).hexdigest()
    assert info["world_size"] == 1

    # the saved folder: transformers and gtdsl give the trained model's logits
    model = captured["model"]
    with torch.no_grad():
        trained = model.logits(TEXTS)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    assert type(hf).__name__ == "BertForSequenceClassification"
    assert hf.config.id2label == {0: "negative", 1: "positive"}
    tok = transformers.AutoTokenizer.from_pretrained(out / "model")
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**batch).logits
    ours = BertForSequenceClassification(out / "model")
    got = ours.logits(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    torch.testing.assert_close(theirs, trained, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, trained, rtol=1e-5, atol=1e-5)
    assert [c["label"] for c in ours.classify(TEXTS[:2])] == ["positive", "negative"]
    # docs/tracking.md's example prints what the page shows
    capsys.readouterr()
    docs_python_example("tracking.md", "## The trained model", tmp_path, "tracking_doc")
    page = (REPO / "docs" / "tracking.md").read_text(encoding="utf-8")
    shown = page.split("## The trained model", 1)[1].split("```text\n", 1)[1].split("```")[0]
    assert capsys.readouterr().out == shown
    # and the pretrained weights were changed by training (the folder is not MiniLM's)
    from safetensors.torch import load_file

    base = load_file(model.encoder.dir / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(base[key], hf.bert.state_dict()[key])

    # per step: TensorBoard and dvclive hold the same losses; hparams with the final metrics
    (run,) = (out / "tensorboard").iterdir()
    assert run.name == "first" and len(list(run.iterdir())) == 1  # one events file
    scalars, hparams = _tensorboard(run)
    rows = _tsv(out / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv")
    assert rows[0] == ["step", "loss"] and len(rows) == 7
    losses = [(int(s), float(v)) for s, v in rows[1:]]
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in losses] == list(range(6))
    assert all(abs(a - b) < 1e-6 for (_, a), (_, b) in zip(scalars["train/loss"], losses))
    assert losses[0][1] == metrics["loss_first"] and losses[-1][1] == metrics["loss_last"]
    assert [s for s, _ in scalars["test/accuracy"]] == [2, 5]
    assert len(_tsv(out / "dvclive" / "plots" / "metrics" / "train" / "accuracy.tsv")) == 7
    test_rows = _tsv(out / "dvclive" / "plots" / "metrics" / "test" / "accuracy.tsv")
    assert [float(v) for _, v in test_rows[1:]][-1] == metrics["test_accuracy"]
    assert hparams == {"lr": pytest.approx(3e-4), "epochs": 2, "seed": 0, "batch_size": 16,
                       "world_size": 1}
    assert scalars["hparam/test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"])


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of the command line, run in this process."""
    ex = _example()
    try:
        code = ex.main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


BAD = [
    (["--epochs", "-1"], "epochs must be at least 1, not -1"),
    (["--epochs", "0"], "epochs must be at least 1, not 0"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--lr", "0"], "lr must be a positive number, not 0.0"),
    (["--lr", "-0.001"], "lr must be a positive number, not -0.001"),
    (["--lr", "nan"], "lr must be a positive number"),
    (["--batch-size", "0"], "batch size must be at least 1, not 0"),
    (["--seed", "-2"], "seed must be at least 0, not -2"),
    (["--seed", str(2**64)], f"seed must be at most {2**64 - 1}, not {2**64}"),
    (["--params", "bigseed.yaml"], f"seed must be at most {2**64 - 1}, not {2**64}"),
    (["--lr", "1e39"], "lr must be at most 3.40282e+38 (the largest float32), not 1e+39"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--params", "missing.yaml"], "cannot read missing.yaml: No such file or directory"),
    (["--params", "list.yaml"], "list.yaml has no `train:` section"),
    (["--params", "broken.yaml"], "broken.yaml is not YAML"),
    (["--params", "extra.yaml"], "extra.yaml: unknown settings under `train:`: momentum"),
    (["--params", "text.yaml"], "lr must be a number, not 'fast'"),
    (["--run-name", "../up"], "--run-name '../up' must be a plain name (no path)"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_are_refused_with_status_2(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "broken.yaml").write_text("train: {lr: [\n")
    (tmp_path / "extra.yaml").write_text("train:\n  lr: 0.1\n  momentum: 0.9\n")
    (tmp_path / "text.yaml").write_text("train:\n  lr: fast\n")
    (tmp_path / "bigseed.yaml").write_text(f"train:\n  seed: {2**64}\n")
    code, err = _main(argv + ["--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("usage: finetune.py") and f"finetune.py: error: {message}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_largest_seed_is_one_torch_takes() -> None:
    ex = _example()
    torch.manual_seed(ex.SEED_MAX)  # the largest the command line accepts
    with pytest.raises((ValueError, RuntimeError)):
        torch.manual_seed(ex.SEED_MAX + 1)  # the smallest it refuses
    torch.manual_seed(0)


def test_settings_come_from_the_params_file_then_the_flags(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = _example()
    monkeypatch.chdir(tmp_path)  # parse() makes the output directories
    params = tmp_path / "params.yaml"
    # DVC writes `dvc exp run -S train.lr=1e-4` as YAML 1.2, which PyYAML reads as a string
    params.write_text("train:\n  lr: 1e-4\n  epochs: 3\n  seed: 7\n  batch_size: 8\n")
    _, p, _, _ = ex.parse(["--params", str(params), "--out", str(tmp_path / "o")], ex.World())
    assert p == ex.Params(epochs=3, lr=1e-4, seed=7, batch_size=8)
    _, p, _, _ = ex.parse(["--params", str(params), "--epochs", "1", "--out", "o"], ex.World())
    assert p == ex.Params(epochs=1, lr=1e-4, seed=7, batch_size=8)
    _, p, out, run = ex.parse([], ex.World())
    assert p == ex.Params() and out == Path("runs") / run and "-lr0.0003-bs16-e4-seed0" in run


def test_a_batch_that_does_not_divide_among_the_processes_is_accepted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = _example()
    monkeypatch.chdir(tmp_path)
    for size in (15, 16, 1):
        argv = ["--batch-size", str(size), "--out", f"o{size}"]
        assert ex.parse(argv, ex.World(0, 2))[1].batch_size == size


def test_each_process_gets_its_share_of_a_batch() -> None:
    ex = _example()
    batch = list(range(7))
    assert [ex.World(r, 2).share(batch) for r in (0, 1)] == [[0, 1, 2, 3], [4, 5, 6]]
    assert [ex.World(r, 3).share([0, 1]) for r in (0, 1, 2)] == [[0], [1], []]
    assert ex.World().share(batch) == batch
    # contiguous shares, in rank order, that differ by at most one
    for size in range(1, 5):
        for n in range(0, 20):
            shares = [ex.World(r, size).share(list(range(n))) for r in range(size)]
            assert sum(shares, []) == list(range(n))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_a_used_out_is_refused_and_overwrite_keeps_each_tensorboard_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _main(["--epochs", "1", "--out", str(out), "--run-name", "a"], capsys)[0] == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = _main(["--epochs", "1", "--out", str(out), "--run-name", "b"], capsys)
    assert code == 2 and "already holds a run (metrics.json, model, run.json, dvclive)" in err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == first
    code, _ = _main(["--epochs", "1", "--lr", "1e-4", "--out", str(out), "--run-name", "a",
                     "--overwrite"], capsys)
    assert code == 0
    # the run's files replaced; the TensorBoard runs side by side ("a" was taken)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["a", "a-2"]
    assert all(len(list(p.iterdir())) == 1 for p in (out / "tensorboard").iterdir())
    again = json.loads((out / "metrics.json").read_text())
    assert again["loss_last"] != json.loads(first[Path("metrics.json")])["loss_last"]
    assert json.loads((out / "run.json").read_text())["params"]["lr"] == 1e-4


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


LONG = "x" * 300
UNWRITABLE = [
    (["--out", "afile/sub"], "cannot write the run's files to afile/sub: Not a directory"),
    (["--out", "dangling"], "--out dangling is a symbolic link to nothing"),
    (["--out", "/sys/gtdsl-x"], "cannot write the run's files to /sys/gtdsl-x"),
    (["--out", "/proc/gtdsl-x"], "cannot write the run's files to /proc/gtdsl-x: No such file or "
     "directory"),
    (["--out", "tbfile", "--run-name", "a"],
     "cannot write the run's files to tbfile/tensorboard/a: Not a directory"),
    (["--out", "new/deeper", "--run-name", LONG],
     f"cannot write the run's files to new/deeper/tensorboard/{LONG}: File name too long"),
    (["--run-name", LONG], f"cannot write the run's files to runs/{LONG}: File name too long"),
]


@pytest.mark.parametrize("argv,message", UNWRITABLE,
                         ids=[" ".join(a)[:40] for a, _ in UNWRITABLE])
def test_an_out_that_cannot_be_written_is_refused_before_anything_runs(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Refused by parse() with exit status 2 and one message, before the model is built;
    what was made for the run is removed."""
    ex = _example()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "tbfile").mkdir()
    (tmp_path / "tbfile" / "tensorboard").write_text("")
    before = _tree(tmp_path)

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the model was built")

    monkeypatch.setattr(ex, "Classifier", refuse)
    code, err = _main(argv + ["--epochs", "1"], capsys)
    assert code == 2
    assert err.startswith("usage: finetune.py") and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith(f"finetune.py: error: {message}"), err
    assert _tree(tmp_path) == before


@pytest.mark.slow
def test_an_out_without_write_permission_is_refused(tmp_path: Path) -> None:
    """A directory of mode 555, for a user other than root (root, in a user namespace of its
    own, is no longer allowed to write there either)."""
    out = tmp_path / "readonly"
    out.mkdir()
    (out / "tensorboard").mkdir()  # writable itself: the directory's own files are checked
    out.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-U", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("running as root without user namespaces: mode 555 does not stop root")
        prefix = ["unshare", "-U"]
    try:
        proc = subprocess.run(prefix + [sys.executable, str(PATH), "--out", str(out)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        out.chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1] == \
        f"finetune.py: error: cannot write the run's files to {out}: Permission denied"
    assert _tree(out) == ["tensorboard"]


def test_runs_started_at_once_get_directories_of_their_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory is made when its name is chosen: a second choice, before anything is
    written into the first, is another directory."""
    ex = _example()
    monkeypatch.chdir(tmp_path)
    outs = [ex.parse(["--run-name", "same"], ex.World())[2] for _ in range(3)]
    assert outs == [Path("runs/same"), Path("runs/same-2"), Path("runs/same-3")]
    assert all(o.is_dir() and (o / "tensorboard" / "same").is_dir() for o in outs)
    assert [ex.fresh(tmp_path / "t") for _ in range(2)] == [tmp_path / "t", tmp_path / "t-2"]
    # under torchrun the other ranks make nothing
    assert ex.parse(["--run-name", "other"], ex.World(1, 2))[2] == Path("runs/other")
    assert not Path("runs/other").exists()


def test_a_diverged_run_stops_at_the_first_bad_loss_and_saves_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = _example()
    out = tmp_path / "out"
    code, err = _main(["--lr", "1e30", "--epochs", "1", "--out", str(out), "--run-name",
                       "big"], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1] == (
        "finetune.py: error: the training loss is nan at step 1 (epoch 1): training "
        "diverged; try a lower --lr than 1e+30. No model or metrics were written; its steps' "
        f"TensorBoard log is in {out}/tensorboard/big")
    assert _tree(out) == ["tensorboard", "tensorboard/big",
                          f"tensorboard/big/{os.listdir(out / 'tensorboard' / 'big')[0]}"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard" / "big"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [0]  # the steps before the bad one
    assert ex.held_run(out) == []  # the next run into --out is not blocked
    # an update that overflows float32 stops the same way
    code, err = _main(["--lr", "3.4e38", "--epochs", "1", "--batch-size", "48", "--out",
                       str(out), "--run-name", "huge"], capsys)
    assert code == 1
    assert "the update at step 0 (epoch 1) overflows float32: training diverged" in err
    assert ex.held_run(out) == []


def test_weights_that_are_not_finite_at_the_end_are_not_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last step's update is checked too (its loss is never computed)."""
    ex = _example()

    class Broken(torch.optim.AdamW):
        def step(self, closure: Any = None) -> Any:
            out = super().step(closure)
            with torch.no_grad():
                self.param_groups[0]["params"][-1][0] = float("inf")
            return out

    monkeypatch.setattr(torch.optim, "AdamW", Broken)
    out = tmp_path / "out"
    with pytest.raises(ex.Diverged, match=r"the weights are not finite after step 0 \(epoch "
                       r"1\): training diverged"):
        ex.train(ex.Params(epochs=1, batch_size=48), out=out, log=lambda _: None, run="r")
    assert ex.held_run(out) == [] and not (out / "model").exists()


def test_wandb_logs_an_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("wandb")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "out"
    assert _main(["--epochs", "1", "--out", str(out), "--wandb"], capsys)[0] == 0
    (run,) = (out / "wandb").glob("offline-run-*")
    (log,) = run.glob("run-*.wandb")
    data = log.read_bytes()  # the run's records: the scalars by name, the settings
    for name in (b"train/loss", b"train/accuracy", b"test/accuracy", b"batch_size",
                 b"world_size", b"test_accuracy"):
        assert name in data, name


def test_wandb_missing_is_one_line_and_status_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    code, err = _main(["--out", str(tmp_path / "out"), "--wandb"], capsys)
    assert code == 2
    assert err.splitlines()[-1] == "finetune.py: error: --wandb needs the wandb package: " \
        "pip install wandb"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_script_refuses_bad_values_as_a_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(PATH), "--epochs", "-3", "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == "finetune.py: error: epochs must be at least 1, " \
        "not -3"
