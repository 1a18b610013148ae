"""The one model loader (gtdsl.models.structs): a struct with a nested struct and a list field
built from a key map and a dict of tensors, every tensor checked against its declared field
type with sizes bound across the whole model; bad files and bad key maps are GT0909."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import gtdsl
from gtdsl.diagnostics import render_text
from gtdsl.models.structs import Weights, f32, flatten, prefixed, weight_bias
from gtdsl.models.weights import ModelLoadError

SOURCE = """\
struct Lin[I, O]:
    weight: f32[out=O, in=I]
    bias: f32[out=O]


struct Net[V, D, F]:
    table: f32[vocab=V, hidden=D]
    up: Lin[D, F]
    layers: list[Lin[F, F]]


def run[V, D, F](p: Net[V, D, F], ids: i64[b]) -> f32[b, F]:
    x = embedding(ids, p.table) @ p.up.weight.T + p.up.bias
    for l in p.layers:
        x = x @ l.weight.T + l.bias
    return x
"""
KEYS = {"table": "emb.weight", "up": weight_bias("proj"),
        "layers": [prefixed(f"h.{i}.", weight_bias("fc")) for i in range(2)]}
FILE = Path("model.safetensors")


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("net") / "net.gt"
    path.write_text(SOURCE)
    return gtdsl.load(path, backend="torch")


def _tensors(v: int = 7, d: int = 4, f: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    t = {"emb.weight": torch.randn(v, d, generator=g),
         "proj.weight": torch.randn(f, d, generator=g), "proj.bias": torch.randn(f, generator=g)}
    for i in range(2):
        t[f"h.{i}.fc.weight"] = torch.randn(f, f, generator=g)
        t[f"h.{i}.fc.bias"] = torch.randn(f, generator=g)
    return t


def _error(err: pytest.ExceptionInfo[ModelLoadError]) -> tuple[str, str]:
    d = err.value.diagnostics[0]
    assert d.code == "GT0909", d
    return d.message, render_text(d)


def test_a_key_map_builds_the_value_and_flatten_gives_it_back(module: Any) -> None:
    tensors = _tensors()
    weights = Weights(module, FILE, tensors, {"V": 7})
    p = weights.load(weights.struct_type("Net"), KEYS, "p")
    weights.finish("net")
    assert isinstance(p, module.structs["Net"]) and isinstance(p.up, module.structs["Lin"])
    assert len(p.layers) == 2 and p.layers[1].bias is tensors["h.1.fc.bias"]
    assert weights.bindings.sizes == {"V": 7, "D": 4, "F": 3}  # D and F bound by the tensors
    assert flatten(p, KEYS) == tensors  # the same tensors, by the same keys
    ids = torch.tensor([0, 6, 2])
    want = tensors["emb.weight"][ids] @ tensors["proj.weight"].T + tensors["proj.bias"]
    for i in range(2):
        want = want @ tensors[f"h.{i}.fc.weight"].T + tensors[f"h.{i}.fc.bias"]
    torch.testing.assert_close(module.run(p, ids), want)


def test_a_missing_tensor_names_its_key_and_the_field_declaration(module: Any) -> None:
    tensors = _tensors()
    del tensors["h.1.fc.bias"]
    weights = Weights(module, FILE, tensors, {})
    with pytest.raises(ModelLoadError) as err:
        weights.load(weights.struct_type("Net"), KEYS, "p")
    message, text = _error(err)
    assert message == ("`model.safetensors` has no tensor `h.1.fc.bias` for `p.layers[1].bias` "
                       "(`Lin.bias`)")
    assert "net.gt:3:5" in text and "bias: f32[out=O]" in text and "declared here" in text


def test_a_tensor_nothing_takes_is_refused_unless_the_model_ignores_it(module: Any) -> None:
    tensors = {**_tensors(), "h.0.attn.masked_bias": torch.zeros(1),
               "pooler.weight": torch.ones(2)}
    weights = Weights(module, FILE, tensors, {})
    weights.load(weights.struct_type("Net"), KEYS, "p")
    with pytest.raises(ModelLoadError) as err:
        weights.finish("net", help="check the folder")
    message, text = _error(err)
    assert message == ("`model.safetensors` holds tensors this net does not use: "
                       "h.0.attn.masked_bias, pooler.weight")
    assert "help: check the folder" in text
    with pytest.raises(ModelLoadError) as err:
        weights.finish("net", ignore=lambda key: key.endswith(".masked_bias"))
    assert _error(err)[0].endswith("does not use: pooler.weight")
    assert weights.unchecked("pooler.weight") is tensors["pooler.weight"]
    weights.finish("net", ignore=lambda key: key.endswith(".masked_bias"))
    assert weights.unchecked("absent") is None


def test_a_wrong_shape_names_the_size_and_what_bound_it(module: Any) -> None:
    tensors = _tensors()
    tensors["h.1.fc.weight"] = torch.zeros(3, 5)
    weights = Weights(module, FILE, tensors, {"V": 7})
    with pytest.raises(ModelLoadError) as err:
        weights.load(weights.struct_type("Net"), KEYS, "p")
    message, text = _error(err)
    assert message.startswith("`h.1.fc.weight` in `model.safetensors` does not match "
                              "`p.layers[1].weight` (`Lin.weight`): dim 1 (`in`): expected 3, "
                              "got 5"), message
    assert "bound by `proj.weight` dim 0 (`out`)" in message  # F, bound by another tensor
    assert "declared here: f32[out=F, in=F]" in text and "net.gt:2:5" in text
    assert "got: (3, 5) float32" in text and "with V=7, D=4, F=3" in text
    # a size the config gives is checked the same way, and so is the dtype
    weights = Weights(module, FILE, _tensors(), {"V": 8})
    with pytest.raises(ModelLoadError, match=r"`p.table` \(`Net.table`\): dim 0 \(`vocab`\): "
                       "expected 8, got 7"):
        weights.load(weights.struct_type("Net"), KEYS, "p")
    weights = Weights(module, FILE, {**_tensors(), "proj.bias": torch.zeros(3, dtype=torch.int64)},
                      {})
    with pytest.raises(ModelLoadError, match="`p.up.bias` .*dtype: expected f32, got i64"):
        weights.load(weights.struct_type("Net"), KEYS, "p")


def test_sizes_are_bound_across_every_load_of_one_file(module: Any) -> None:
    tensors = {**_tensors(), "head": torch.ones(4), "norm": torch.ones(5),
               "wide.weight": torch.ones(8, 4), "wide.bias": torch.ones(8)}
    weights = Weights(module, FILE, tensors, {})
    weights.load(weights.struct_type("Net"), KEYS, "p")
    assert weights.load(f32(hidden="D"), "head", "head") is tensors["head"]
    with pytest.raises(ModelLoadError) as err:
        weights.load(f32(hidden="D"), "norm", "norm")
    assert _error(err)[0] == ("`norm` in `model.safetensors` does not match `norm`: dim 0 "
                              "(`hidden`): expected 4, got 5 (`D` = 4, bound by `emb.weight` "
                              "dim 1 (`hidden`))")
    # a struct's size arguments may be products of sizes
    wide = weights.load(weights.struct_type("Lin", "D", "2*D"), weight_bias("wide"), "wide")
    assert wide.bias is tensors["wide.bias"]
    with pytest.raises(ModelLoadError, match=r"`wide.weight` \(`Lin.weight`\): dim 0 "
                       r"\(`out`\): expected 9 \(3\*F with F=3\), got 8"):
        weights.load(weights.struct_type("Lin", "D", "3*F"), weight_bias("wide"), "wide")


def test_a_key_map_that_does_not_fit_the_struct_is_gt0909(module: Any) -> None:
    weights = Weights(module, FILE, _tensors(), {})
    net = weights.struct_type("Net")
    with pytest.raises(ModelLoadError) as err:
        weights.load(net, {**KEYS, "extra": "x"}, "p")
    assert "the key map for `p` (Net[V, D, F]) names" in _error(err)[0]
    with pytest.raises(ModelLoadError, match="no struct `Missing`"):
        weights.struct_type("Missing")
    with pytest.raises(ModelLoadError, match=r"key map for `p.up` \(Lin\[D, F\]\) is a key, "
                       "not a dict of fields"):
        weights.load(net, {**KEYS, "up": "proj.weight"}, "p")
    with pytest.raises(ModelLoadError, match="key map for `p.layers` .* is a dict of fields, "
                       "not a list"):
        weights.load(net, {**KEYS, "layers": KEYS["up"]}, "p")
