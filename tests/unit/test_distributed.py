"""gtdsl.distributed: parameter structs as an nn.Module (parameters by field path, the structs
bound to the module's tensors at each call), a tensor type's named dims as DTensor placements
(checked against torch's own DTensor and FSDP on a gloo mesh), and the start-up check that
every rank built the same parameters (two processes under torchrun, one of them different)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import gtdsl
from gtdsl.distributed import (
    ShardingError, StructModule, check_across_ranks, distribute, mismatches,
    placements, signature, struct_tensors,
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


def _every_tensor_is_a_parameter(module: StructModule, value: object) -> bool:
    mine = {id(p) for p in module.parameters()}
    return all(id(t) in mine for _, t in struct_tensors(value))


def test_tuples_and_lists_with_none_are_bound_and_what_cannot_be_is_refused() -> None:
    """gtdsl functions take a tuple for `list[Dense]`: its structs' tensors are parameters;
    a tuple of tensors is rebuilt in its field at each call (tuples cannot change); None in
    a list holds nothing; a dict of tensors is refused, never left out of training."""
    m, net = _net()
    net.layers = tuple(net.layers)
    net.layers[1].bias = None  # not a gtdsl value, but a struct may hold one
    module = StructModule(lambda: None, net=net)
    assert [n for n, _ in module.named_parameters()] == [
        "net.layers.0.weight", "net.layers.0.bias", "net.layers.1.weight", "net.head.weight",
        "net.head.bias"]
    assert isinstance(net.layers, tuple) and _every_tensor_is_a_parameter(module, net)

    m, net = _net()
    net.layers = (net.layers[0], net.layers[1])
    module = StructModule(lambda x: m.forward(net, x), net=net)
    module(torch.randn(2, 4)).sum().backward()
    assert len(list(module.parameters())) == 6 and _every_tensor_is_a_parameter(module, net)
    assert all(p.grad is not None for p in module.parameters())

    m, net = _net()
    net.layers = [net.layers[0], None]
    module = StructModule(None, net=net)
    assert [n for n, _ in module.named_parameters()] == [
        "net.layers.0.weight", "net.layers.0.bias", "net.head.weight", "net.head.bias"]
    assert net.layers[1] is None and _every_tensor_is_a_parameter(module, net)

    @dataclass
    class Pair:
        ws: tuple[torch.Tensor, ...]
        nested: list[tuple[torch.Tensor, torch.Tensor]]

    pair = Pair((torch.ones(2), torch.zeros(2)), [(torch.ones(1), torch.ones(1))])
    module = StructModule(lambda: (pair.ws[0], pair.nested[0][1]), pair=pair)
    assert [n for n, _ in module.named_parameters()] == [
        "pair.ws.0", "pair.ws.1", "pair.nested.0.0", "pair.nested.0.1"]
    assert isinstance(pair.ws, tuple) and _every_tensor_is_a_parameter(module, pair)
    w, n = torch.nn.Parameter(torch.full((2,), 7.0)), torch.nn.Parameter(torch.full((1,), 3.0))
    module.pair.ws._parameters["0"] = w  # as FSDP swaps parameters
    module.pair.nested[0]._parameters["1"] = n
    assert module() == (w, n)
    assert pair.ws[0] is w and isinstance(pair.ws, tuple) and pair.nested[0][1] is n

    @dataclass
    class Table:
        by_name: dict[str, torch.Tensor]

    with pytest.raises(ShardingError, match="`t.by_name` is a dict holding tensors") as e:
        StructModule(None, t=Table({"w": torch.ones(2)}))
    assert e.value.diagnostic.code == "GT0914"
    with pytest.raises(ShardingError, match="`layers` is a tuple"):
        StructModule(None, layers=(net.head,))
    # a dict without tensors is left as it is
    StructModule(None, t=Table({}))


def test_a_tensor_in_two_fields_is_one_parameter() -> None:
    """Tied weights stay tied: one parameter registered in both places, updated once per
    step, as a truly tied nn.Parameter is."""
    m, net = _net()
    net.layers[1].weight = net.layers[0].weight
    start = {k: t.detach().clone() for k, t in struct_tensors(net)}
    module = StructModule(lambda x: m.forward(net, x), net=net)

    def train(params: list[torch.nn.Parameter], forward: Any) -> None:
        opt = torch.optim.Adam(params, lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            forward(torch.linspace(-1, 1, 8).reshape(2, 4)).square().sum().backward()
            opt.step()

    train(list(module.parameters()), module)
    # the reference: one nn.Parameter in both layers, each other tensor a parameter of its own
    ref = {k: torch.nn.Parameter(v.clone()) for k, v in start.items()}
    ref["layers.1.weight"] = ref["layers.0.weight"]
    ref_net = m.Net(layers=[m.Dense(weight=ref[f"layers.{i}.weight"],
                                    bias=ref[f"layers.{i}.bias"]) for i in range(2)],
                    head=m.Dense(weight=ref["head.weight"], bias=ref["head.bias"]))
    train(list({id(p): p for p in ref.values()}.values()), lambda x: m.forward(ref_net, x))
    for k, t in struct_tensors(net):
        torch.testing.assert_close(t, ref[k], rtol=0, atol=0, msg=k)
    assert not torch.equal(net.layers[0].weight, start["layers.0.weight"])
    assert net.layers[0].weight is net.layers[1].weight
    assert module.net.layers[0].weight is module.net.layers[1].weight
    assert len(list(module.parameters())) == 5
    assert "net.layers.1.weight" in module.state_dict()

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
    # behind a leading variadic part, positions count from the tensor's rank, which is needed
    assert placements("f32[*b, hidden=D]", mesh, {"hidden": "tp"}, ndim=3) == (
        Replicate(), Shard(2))
    assert placements("f32[*b, hidden=D]", mesh, {"hidden": "tp"}, ndim=1) == (
        Replicate(), Shard(0))
    with pytest.raises(ShardingError, match="`hidden` follows the variadic part"):
        placements("f32[*b, hidden=D]", mesh, {"hidden": "tp"})
    assert placements("f32[*b, hidden=D]", mesh, {"x": "tp"}) == (Replicate(), Replicate())
    # a rank given is checked against the type
    for spelling, ndim, want in [("f32[*b, hidden=D]", 0, "a variadic part and 1 dim"),
                                 ("f32[*b, x, hidden=D]", 1, "a variadic part and 2 dims"),
                                 ("f32[b, s]", 1, "2 dims"), ("f32[b]", 2, "1 dim")]:
        with pytest.raises(ShardingError, match=f"rank {ndim} is not a .*: the type has {want}\n"):
            placements(spelling, mesh, {"b": "dp"}, ndim=ndim)
    # labels the type does not have are allowed: one map serves every tensor of a model
    assert placements("f32[out=O]", mesh, {"b": "dp", "heads": "tp"}) == (
        Replicate(), Replicate())
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


@contextmanager
def _one_process_mesh() -> Iterator[Any]:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        yield init_device_mesh("cpu", (1,), mesh_dim_names=("dp",))
    finally:
        dist.destroy_process_group()


def test_distribute_on_a_one_process_gloo_mesh() -> None:
    from torch.distributed.tensor import DTensor, Shard

    _, net = _net()
    check_across_ranks(net)  # no process group: nothing to compare
    with _one_process_mesh() as mesh:
        x = torch.randn(6, 4)
        d = distribute(x, "f32[b, hidden=D]", mesh, {"b": "dp"})
        assert isinstance(d, DTensor) and d.placements == (Shard(0),)
        assert torch.equal(d.full_tensor(), x)
        check_across_ranks(net, {"D": 4}, values=True)  # one rank agrees with itself


def test_distribute_checks_the_tensor_against_its_type() -> None:
    from torch.distributed.tensor import Shard

    with _one_process_mesh() as mesh:
        for tensor, spelling, shard, message in [
                (torch.zeros(4), "f32[b, s]", {"s": "dp"}, "rank 1 is not a `f32[b, s]`"),
                (torch.zeros(4), "f32[*b, x, hidden=D]", {"x": "dp"},
                 "rank 1 is not a `f32[*b, x, hidden=D]`"),
                (torch.zeros(4, 2), "f32[b]", {"b": "dp"}, "rank 2 is not a `f32[b]`"),
                (torch.zeros(4), "i64[b]", {"b": "dp"}, "a float32 tensor is not a `i64[b]`"),
                (torch.zeros(4, dtype=torch.int64), "float[b]", {"b": "dp"},
                 "a int64 tensor is not a `float[b]`")]:
            with pytest.raises(ShardingError, match=re.escape(message)) as e:
                distribute(tensor, spelling, mesh, shard)
            assert e.value.diagnostic.code == "GT0914"
        assert distribute(torch.zeros(3, 5, 4), "f32[*b, hidden=D]", mesh,
                          {"hidden": "dp"}).placements == (Shard(2),)
        assert distribute(torch.zeros(4, dtype=torch.float64), "float[b]", mesh,
                          {"b": "dp"}).placements == (Shard(0),)
        assert distribute(torch.zeros(4, dtype=torch.int32), "Tensor[b]", mesh,
                          {"b": "dp"}).placements == (Shard(0),)


def test_dtensors_are_compared_by_the_piece_each_rank_holds() -> None:
    """FSDP's parameters are DTensors: compared by global shape and placements, and by the
    bytes of the piece each rank holds (no collective; `.numpy()` refuses DTensors)."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    m, net = _net()
    with _one_process_mesh() as mesh:
        d = distribute(torch.randn(6, 4), "f32[b, hidden=D]", mesh, {"b": "dp"})
        sig = signature({"d": d}, values=True)
        assert sig["parameter"]["d"] == "float32[6, 4] as (Shard(dim=0),) on mesh (1,)"
        assert list(sig["shard of"]) == ["d [dp=0]"] and "d" not in sig["value of"]
        module = StructModule(lambda x: m.forward(net, x), net=net)
        fully_shard(module, mesh=mesh)
        assert isinstance(module.net.head.weight, DTensor)
        check_across_ranks(module, {"D": 4}, values=True)
        module(torch.randn(2, 4)).sum().backward()


def test_shards_are_compared_among_the_ranks_holding_the_same_piece() -> None:
    def sig(shards: dict[str, str], value: str = "v") -> dict[str, dict[str, str]]:
        return {"parameter": {"w": "float32[4] as (Shard(dim=0),) on mesh (2,)"},
                "value of": {"b": value}, "shard of": shards}

    # FSDP on 2 ranks: each holds its own piece, nothing to compare
    assert mismatches([sig({"w [dp=0]": "a"}), sig({"w [dp=1]": "b"})]) == []
    # HSDP (replicate over 2, shard over 2): ranks 0 and 2 hold the same piece
    ranks = [sig({"w [shard=0]": "a"}), sig({"w [shard=1]": "b"}),
             sig({"w [shard=0]": "c"}), sig({"w [shard=1]": "b"}, "x")]
    assert mismatches(ranks) == ["value of `b`: rank 0 has v, rank 3 has x",
                                 "shard of `w [shard=0]`: rank 0 has a, rank 2 has c"]


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
