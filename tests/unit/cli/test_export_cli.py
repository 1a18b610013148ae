"""``gtdsl export FILE --fn NAME --arg ... -o OUT.pt2``: the program file loads with
``torch.export.load`` (or, with ``--aoti``, ``aoti_load_package``) and runs at other sizes
with gtdsl's results; structs are constants; bad input is a located diagnostic and leaves
nothing written."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.cli.main import main
from gtdsl.runtime.tensorfile import write_safetensors
from tests.conftest import REPO

SOURCE = ("struct Linear[I, O]:\n    weight: f32[out=O, in=I]\n    bias: f32[out=O]\n\n"
          "def linear[I, O](p: Linear[I, O], x: f32[*b, in=I]) -> f32[*b, out=O]:\n"
          "    return x @ p.weight.T + p.bias\n\n"
          "def scale(x: f32[n, d], y: f32[n, d], k: float) -> f32[n, d]:\n"
          "    return (x + y) * k\n")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "lin.gt"
    src.write_text(SOURCE)
    g = torch.Generator().manual_seed(0)
    weights = tmp_path / "w.safetensors"
    write_safetensors(weights, {"weight": torch.randn(5, 4, generator=g),
                                "bias": torch.randn(5, generator=g)})
    return src, weights


def test_export_writes_a_program_that_runs_at_other_sizes(files, tmp_path: Path) -> None:
    src, weights = files
    out_file = tmp_path / "lin.pt2"
    code, out, err = run("export", str(src), "--fn", "linear", "--arg", f"p={weights}",
                         "--arg", "x=f32[2, 3, 4]", "-o", str(out_file))
    assert code == 0, err
    assert "input x: f32[" in out and out_file.is_file()
    ep = torch.export.load(out_file)
    module = gtdsl.load(src)
    tensors = {"weight": None, "bias": None}
    from gtdsl.runtime.tensorfile import read_tensors

    tensors = read_tensors(str(weights))
    p = module.Linear(**tensors)
    g = torch.Generator().manual_seed(1)
    for shape in ((7, 2, 4), (3, 9, 4), (2, 2, 4)):
        x = torch.randn(*shape, generator=g)
        torch.testing.assert_close(ep.module()(x), module.linear(p, x))
    with pytest.raises(Exception, match="Guard failed"):  # in = I = 4 is the weights'
        ep.module()(torch.randn(2, 3, 5))
    # numbers are constants; the inputs' shared size variables one Dim each
    code, out, err = run("export", str(src), "--fn", "scale", "--arg", "x=f32[3, 4]",
                         "--arg", "k=2.5", "-o", str(tmp_path / "scale.pt2"))
    assert code == 0, err
    assert "input x: f32[n, d]" in out and "input y: f32[n, d]" in out
    ep = torch.export.load(tmp_path / "scale.pt2")
    x, y = torch.randn(6, 2), torch.randn(6, 2)
    torch.testing.assert_close(ep.module()(x, y), (x + y) * 2.5)


def test_the_readme_export_command(tmp_path: Path) -> None:
    out_file = tmp_path / "encode.pt2"
    code, out, err = run("export", str(REPO / "docs/examples/bert/bert.gt"), "--fn", "encode",
                         "--size", "H=4", "--size", "K=16", "-o", str(out_file))
    assert code == 0, err
    assert "input ids: i64[b, s]" in out and "input mask: f32[b, 1, 1, s]" in out
    ep = torch.export.load(out_file)
    for b, s in ((3, 3), (5, 2)):  # V = P = 4 (the default size): ids and positions below 4
        ids = torch.randint(0, 4, (b, s))
        h = ep.module()(ids, torch.zeros_like(ids), torch.arange(s), torch.ones(b, 1, 1, s))
        assert h.shape == (b, s, 64) and bool(h.isfinite().all())


def test_bad_input_is_a_diagnostic_and_nothing_is_written(files, tmp_path: Path) -> None:
    src, weights = files
    base = ["export", str(src), "--fn", "linear", "--arg", f"p={weights}"]
    cases = [
        (base + ["--arg", "x=f32[2, 3, 4]", "-o", str(tmp_path)], 2, "is a folder"),
        (base + ["--arg", "x=f32[2, 3, 4]", "-o", str(tmp_path / "no" / "x.pt2")], 2,
         "does not exist"),
        (["export", str(src), "--fn", "nope", "-o", str(tmp_path / "x.pt2")], 2,
         "has no function `nope`"),
        (base + ["--arg", "x=f32[2, 3", "-o", str(tmp_path / "x.pt2")], 2, "GT0908"),
        (base + ["--arg", "x=f32[2, 3, 5]", "-o", str(tmp_path / "x.pt2")], 1, "GT3001"),
        (base + ["--arg", "x=f32[2, 1, 4]", "-o", str(tmp_path / "x.pt2")], 0, ""),  # *b
        (["export", str(src), "--fn", "scale", "--arg", "x=f32[1, 4]", "-o",
          str(tmp_path / "y.pt2")], 1, "example size 1"),
        (["export", str(tmp_path / "missing.gt"), "--fn", "f", "-o",
          str(tmp_path / "y.pt2")], 2, "GT09"),
    ]
    for argv, want, text in cases:
        code, out, err = run(*argv)
        assert code == want, (argv, out, err)
        assert text in err and "Traceback" not in err, (argv, err)
    import os

    os.mkfifo(tmp_path / "pipe.pt2")
    for argv, text in [
            (["-o", str(tmp_path / "newdir") + "/"], "is a folder"),
            (["-o", str(tmp_path / "pipe.pt2")], "not a regular file"),
            (["-o", str(src)], "own input files"),
            (["-o", str(weights)], "own input files")]:
        code, out, err = run(*base, "--arg", "x=f32[2, 3, 4]", *argv)
        assert code == 2 and text in err, (argv, err)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["lin.gt", "pipe.pt2", "w.safetensors", "x.pt2"]  # no temporaries
    assert (tmp_path / "lin.gt").read_text() == SOURCE


def test_sizes_and_list_inputs(tmp_path: Path) -> None:
    src = tmp_path / "f.gt"
    src.write_text("def heads(x: f32[b, H*K]) -> f32[b, H, K]:\n"
                   "    return x.unflatten(-1, (H, -1))\n\n"
                   "def f(xs: list[f32[n]], y: f32[m, 3]) -> f32[m, 3]:\n"
                   "    return y + xs[0].sum() + xs[1].sum()\n")
    # H given: a constant; K, which the example's width determines, stays dynamic
    code, out, err = run("export", str(src), "--fn", "heads", "--size", "H=4", "--arg",
                         "x=f32[3, 8]", "-o", str(tmp_path / "h.pt2"))
    assert code == 0 and "input x: f32[b, 4*K]" in out, err
    ep = torch.export.load(tmp_path / "h.pt2")
    assert ep.module()(torch.randn(5, 12)).shape == (5, 4, 3)
    code, out, err = run("export", str(src), "--fn", "f", "--arg", "y=f32[2, 3]", "-o",
                         str(tmp_path / "f.pt2"))
    assert code == 0, err
    assert [line.strip() for line in out.splitlines() if line.startswith("  input")] == [
        "input xs[0]: f32[n]", "input xs[1]: f32[n]", "input y: f32[m, 3]"]


@pytest.mark.slow
def test_export_aoti_package_runs(files, tmp_path: Path) -> None:
    if getattr(torch._inductor, "aoti_compile_and_package", None) is None:
        pytest.skip("this torch has no AOTInductor packages")
    src, weights = files
    out_file = tmp_path / "lin.pt2"
    code, out, err = run("export", str(src), "--fn", "scale", "--arg", "x=f32[3, 4]",
                         "--arg", "k=2.0", "--aoti", "-o", str(out_file))
    assert code == 0, err
    assert "AOTInductor package" in out
    runner = torch._inductor.aoti_load_package(str(out_file))
    for n, d in ((5, 3), (2, 8), (9, 2)):
        x, y = torch.randn(n, d), torch.randn(n, d)
        torch.testing.assert_close(runner(x, y), (x + y) * 2.0)
