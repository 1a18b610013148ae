"""``gtdsl run`` and ``gtdsl compile --emit torch`` (and ``--emit ir --backend triton``):
arguments from types, files and numbers; exit 0 with a summary, 1 for a program error (with
blame), 2 for bad usage; no traceback."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from gtdsl.cli.main import main
from gtdsl.runtime.tensorfile import write_safetensors
from tests.conftest import REPO

LANG = REPO / "docs" / "examples" / "language"
STRUCT = ("struct Linear[I, O]:\n    weight: f32[out=O, in=I]\n    bias: f32[out=O]\n\n"
          "def linear[I, O](p: Linear[I, O], x: f32[*b, in=I]) -> f32[*b, out=O]:\n"
          "    return x @ p.weight.T + p.bias\n")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_run_draws_the_rest_from_the_types() -> None:
    code, out, err = run("run", str(LANG / "rms_norm.gt"), "--fn", "rms_norm",
                         "--arg", "x=f32[2, 3, 8]")
    assert code == 0, err
    assert out.splitlines()[0].startswith("def rms_norm(")
    assert "f32[2, 3, 8] @ cpu" in out and "mean" in out and "values [" in out


def test_run_with_a_size_mismatch_blames_the_argument() -> None:
    code, out, err = run("run", str(LANG / "rms_norm.gt"), "--fn", "rms_norm",
                         "--arg", "x=f32[2, 8]", "--arg", "w=f32[7]")
    assert code == 1 and out == ""
    assert err.startswith("error[GT3001]: argument `w` of `rms_norm`")
    assert "called from the command line" in err and "Traceback" not in err


def test_run_reads_tensor_files(tmp_path: Path) -> None:
    torch.save(torch.ones(2, 4), tmp_path / "x.pt")
    write_safetensors(tmp_path / "w.safetensors", {"w": torch.full((4,), 2.0)})
    code, out, err = run("run", str(LANG / "rms_norm.gt"), "--fn", "rms_norm",
                         "--arg", f"x={tmp_path / 'x.pt'}",
                         "--arg", f"w={tmp_path / 'w.safetensors'}:w", "--arg", "eps=0.0")
    assert code == 0, err
    assert "values [2, 2, 2, 2, 2, 2, 2, 2]" in out


def test_run_fills_a_struct_from_safetensors_keys(tmp_path: Path) -> None:
    (tmp_path / "lin.gt").write_text(STRUCT)
    write_safetensors(tmp_path / "p.safetensors", {"weight": torch.eye(3),
                                                   "bias": torch.zeros(3)})
    (tmp_path / "x.pt").write_bytes(b"")
    torch.save(torch.arange(6.0).reshape(2, 3), tmp_path / "x.pt")
    code, out, err = run("run", str(tmp_path / "lin.gt"), "--fn", "linear",
                         "--arg", f"p={tmp_path / 'p.safetensors'}",
                         "--arg", f"x={tmp_path / 'x.pt'}")
    assert code == 0, err
    assert "values [0, 1, 2, 3, 4, 5]" in out


def test_run_fills_list_and_tuple_fields_from_numbered_keys(tmp_path: Path) -> None:
    (tmp_path / "s.gt").write_text(
        "struct L[d]:\n    w: f32[d]\n\nstruct M[d]:\n    layers: list[L[d]]\n"
        "    t: tuple[f32[d], f32[d]]\n\ndef f(m: M[d], x: f32[d]) -> f32[d]:\n"
        "    return x * m.t[0] + m.t[1] + m.layers[1].w\n")
    write_safetensors(tmp_path / "m.safetensors", {
        "layers.0.w": torch.zeros(3), "layers.1.w": torch.full((3,), 10.0),
        "t.0": torch.full((3,), 2.0), "t.1": torch.ones(3)})
    torch.save(torch.arange(3.0), tmp_path / "x.pt")
    code, out, err = run("run", str(tmp_path / "s.gt"), "--fn", "f",
                         "--arg", f"m={tmp_path / 'm.safetensors'}",
                         "--arg", f"x={tmp_path / 'x.pt'}")
    assert code == 0, err
    assert "values [11, 13, 15]" in out


def test_run_usage_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 3)
    cases = [
        (["--arg", "x=f32["], "is not a type"),
        (["--arg", "x"], "is not NAME=VALUE"),
        (["--arg", "nope=f32[3]"], "has no parameter `nope`"),
        (["--arg", f"x={tmp_path / 'missing.pt'}"], "does not exist"),
        (["--arg", f"x={tmp_path / 'bad.safetensors'}"], "not a safetensors file"),
        (["--size", "d=-1"], "non-negative"),
    ]
    for extra, text in cases:
        code, out, err = run("run", str(LANG / "rms_norm.gt"), "--fn", "rms_norm", *extra)
        assert code == 2 and text in err and err.startswith("error[GT0908]"), (extra, err)
    code, _, err = run("run", str(LANG / "rms_norm.gt"), "--fn", "rms_nrm")
    assert code == 2 and "did you mean `rms_norm`?" in err
    code, _, err = run("run", str(LANG / "softmax.gt"), "--fn", "scale")
    assert code == 2 and "not annotated" in err


def test_run_unannotated_with_given_arguments() -> None:
    code, out, err = run("run", str(LANG / "softmax.gt"), "--fn", "scale",
                         "--arg", "x=f32[3]", "--arg", "s=2")
    assert code == 0, err
    assert "f32[3] @ cpu" in out


def test_run_a_file_with_errors_exits_1(tmp_path: Path) -> None:
    (tmp_path / "e.gt").write_text("def f(x: f32[n, 4], w: f32[3, k]):\n    return x @ w\n")
    code, _, err = run("run", str(tmp_path / "e.gt"), "--fn", "f")
    assert code == 1 and "GT2004" in err


def test_compile_emit_torch_shows_generated_code() -> None:
    code, out, err = run("compile", str(LANG / "mlp.gt"), "--fn", "mlp", "--emit", "torch")
    assert code == 0, err
    assert "def __gt_entry(" in out and "def __gt_body(" in out and "@" in out


def test_compile_emit_ir_backend_triton_shows_the_fused_kernels() -> None:
    path = str(LANG / "mlp.gt")
    code, out, err = run("compile", path, "--fn", "mlp", "--emit", "ir", "--backend", "triton")
    assert code == 0, err
    heads = [line for line in out.splitlines() if "= kernel[matmul_" in line]
    assert len(heads) == 2 and all(": matmul](" in h for h in heads)
    assert out.count("    kernel:") == 2 and "yield(" in out
    code, plain, err = run("compile", path, "--fn", "mlp", "--emit", "ir")
    assert code == 0 and "kernel" not in plain
    assert run("compile", path, "--fn", "mlp", "--emit", "ir", "--backend", "torch")[1] == plain
    code, _, err = run("compile", path, "--fn", "mlp", "--emit", "typed", "--backend", "triton")
    assert code == 2 and "GT0906" in err and "--emit ir" in err


def test_bench_help_and_usage_errors(capsys) -> None:
    from gtdsl.cli.main import main as cli

    assert cli(["bench", "--only", "nope"]) == 2
    assert "unknown workload" in capsys.readouterr().err
    assert cli(["bench", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
