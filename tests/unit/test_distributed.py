"""gtdsl.distributed: parameter structs as an nn.Module (parameters by field path, the structs
bound to the module's tensors at each call), a tensor type's named dims as DTensor placements
(checked against torch's own DTensor and FSDP on a gloo mesh), and the start-up check that
every rank built the same parameters (two processes under torchrun, one of them different)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gtdsl
from gtdsl.distributed import (
    RankMismatchError, StructModule, check_across_ranks, distribute, mismatches, placements,
    signature,
)
from tests.conftest import REPO, docs_python_example

SOURCE = """
struct Dense[I, O]:
    weight: f32[out=O, in=I]
    bias: f32[out=O]


struct Net[D, C]:
    layers: list[Dense[D, D]]
    head: Dense[D, C]


def forward[D, C](p: Net[D, C], x: f32[b, hidden=D]) -> f32[b, classes=C]:
    for layer in p.layers:
        x = tanh(x @ layer.weight.T + layer.bias)
    return x @ p.head.weight.T + p.head.bias
"""


def _net(seed: int = 0, d: int = 4, c: int = 3, layers: int = 2) -> tuple[object, object]:
    m = gtdsl.load_source(SOURCE, "net.gt")
    g = torch.Generator().manual_seed(seed)

    def dense(i: int, o: int) -> object:
        return m.Dense(weight=torch.randn(o, i, generator=g), bias=torch.randn(o, generator=g))

    return m, m.Net(layers=[dense(d, d) for _ in range(layers)], head=dense(d, c))


def test_a_struct_module_holds_every_tensor_as_a_parameter_by_field_path() -> None:
    m, net = _net()
    before = [net.layers[0].weight, net.head.bias]
    module = StructModule(lambda x: m.forward(net, x), net=net)
    names = [n for n, _ in module.named_parameters()]
    assert names == ["net.layers.0.weight", "net.layers.0.bias", "net.layers.1.weight",
                     "net.layers.1.bias", "net.head.weight", "net.head.bias"]
    # the structs now hold the parameters themselves, with the same values
    assert isinstance(net.layers[0].weight, torch.nn.Parameter)
    assert net.layers[0].weight is module.net.layers[0].weight
    assert torch.equal(net.layers[0].weight, before[0]) and torch.equal(net.head.bias, before[1])
    x = torch.randn(5, 4)
    out = module(x)
    assert out.shape == (5, 3)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert list(module.state_dict()) == names


def test_a_call_binds_the_structs_to_the_modules_current_tensors() -> None:
    """What FSDP relies on: a wrapper that swaps a module's tensors for others (the gathered
    shards) is what the gtdsl function computes with."""
    m, net = _net()
    module = StructModule(lambda x: m.forward(net, x), net=net)
    x = torch.randn(2, 4)
    before = module(x)
    old, swapped = net.head.bias, torch.nn.Parameter(torch.full((3,), 5.0))
    module.net.head.bias = swapped  # nn.Module.__setattr__: a new parameter
    assert net.head.bias is old  # not bound until the next call
    got = module(x)
    assert net.head.bias is swapped
    want = m.forward(m.Net(layers=net.layers, head=m.Dense(weight=net.head.weight,
                                                             bias=swapped)), x)
    assert torch.equal(got, want) and not torch.allclose(got, before)


def test_a_struct_module_refuses_what_is_not_a_struct() -> None:
    with pytest.raises(TypeError, match="not a parameter struct"):
        StructModule(None, w=torch.zeros(2))
    _, net = _net()
    with pytest.raises(TypeError, match="without a forward function"):
        StructModule(None, net=net)(torch.zeros(1, 4))


def test_named_dims_give_dtensor_placements() -> None:
    from torch.distributed.tensor import Replicate, Shard

    dp = ("dp",)
    assert placements("f32[b, s, hidden=D]", dp, {"b": "dp"}) == (Shard(0),)
    assert placements("f32[out=O, in=I]", dp, {"b": "dp"}) == (Replicate(),)  # weights
    mesh = ("dp", "tp")
    heads = "f32[b, heads=H, s, k=K]"
    assert placements(heads, mesh, {"b": "dp", "heads": "tp"}) == (Shard(0), Shard(1))
    # tensor parallel as Megatron: the up projection splits `out`, the down projection `in`
    tp = {"out": "tp"}
    assert placements("f32[out=F, in=D]", mesh, tp) == (Replicate(), Shard(0))
    assert placements("f32[out=D, in=F]", mesh, {"in": "tp"}) == (Replicate(), Shard(1))
    # behind a leading variadic part, positions count from the end, or from the rank given
    assert placements("f32[*b, hidden=D]", mesh, {"hidden": "tp"}) == (Replicate(), Shard(-1))
    assert placements("f32[*b, hidden=D]", mesh, {"hidden": "tp"}, ndim=3) == (
        Replicate(), Shard(2))
    # gtdsl's own (IR) types, as struct declarations give them, work the same
    m, _ = _net()
    weight = {f.name: f.type for f in m.program.struct("Dense").fields}["weight"]
    assert placements(weight, mesh, {"in": "tp"}) == (Replicate(), Shard(1))
    with pytest.raises(ValueError, match="both shard on mesh dim `tp`"):
        placements(heads, mesh, {"heads": "tp", "k": "tp"})
    with pytest.raises(ValueError, match=r"mesh dims \['pp'\]"):
        placements(heads, mesh, {"b": "pp"})
    with pytest.raises(ValueError, match=r"`\*b` is a variadic part"):
        placements("f32[*b, hidden=D]", mesh, {"b": "dp"})
    with pytest.raises(ValueError, match="named dims"):
        placements(heads, object(), {"b": "dp"})


def test_signatures_name_what_differs() -> None:
    _, a = _net(0)
    _, b = _net(1, c=2)
    sa, sb = signature(a, {"D": 4}), signature(b, {"D": 5}, values=False)
    assert sa["parameter"]["head.weight"] == "float32[3, 4]"
    assert mismatches([sa, sa]) == []
    assert mismatches([sa, sb]) == [
        "parameter `head.weight`: rank 0 has float32[3, 4], rank 1 has float32[2, 4]",
        "parameter `head.bias`: rank 0 has float32[3], rank 1 has float32[2]",
        "size `D`: rank 0 has 4, rank 1 has 5"]
    # with values, the same shapes and different numbers differ
    _, c = _net(2)
    assert mismatches([signature(a), signature(c)]) == []
    assert len(mismatches([signature(a, values=True), signature(c, values=True)])) == 6
    assert mismatches([signature(a, values=True), signature(a, values=True)]) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_distribute_on_a_one_process_gloo_mesh() -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard

    _, net = _net()
    check_across_ranks(net)  # no process group: nothing to compare
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,), mesh_dim_names=("dp",))
        x = torch.randn(6, 4)
        d = distribute(x, "f32[b, hidden=D]", mesh, {"b": "dp"})
        assert isinstance(d, DTensor) and d.placements == (Shard(0),)
        assert torch.equal(d.full_tensor(), x)
        check_across_ranks(net, {"D": 4}, values=True)  # one rank agrees with itself
    finally:
        dist.destroy_process_group()


DOC = REPO / "docs" / "scaling.md"


def _section(heading: str) -> str:
    return DOC.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]


def _block(section: str, kind: str) -> str:
    return section.split(f"```{kind}\n", 1)[1].split("```", 1)[0]


def test_the_placements_example_prints_what_the_page_shows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    heading = "## Named dims and DTensor placements"
    docs_python_example("scaling.md", heading, tmp_path, "placements_doc")
    assert capsys.readouterr().out == _block(_section(heading), "text")


@pytest.mark.slow
def test_two_ranks_agree_shard_with_fsdp_and_refuse_a_mismatch(tmp_path: Path) -> None:
    """docs/scaling.md's two-process tour, run under torchrun, prints what the page shows
    (each rank's lines; the ranks' lines interleave in any order)."""
    section = _section("## What gtdsl checks across ranks")
    script = tmp_path / "ranks.py"
    script.write_text(_block(section, "python"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), str(script)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert sorted(proc.stdout.splitlines()) == sorted(_block(section, "text").splitlines())


def test_scaling_md_documents_the_module() -> None:
    text = (REPO / "docs" / "scaling.md").read_text(encoding="utf-8")
    for name in ("StructModule", "check_across_ranks", "placements", "distribute",
                 "RankMismatchError"):
        assert f"`{name}" in text, name
