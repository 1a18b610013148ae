"""``gtdsl.export``: dims dynamic where the type has size variables (named after them,
linear relations kept, fixed sizes static); the exported program equals the gtdsl function
at three other sizes and refuses what the type refuses; relations torch cannot state are
GT0912."""

from __future__ import annotations

import pytest
import torch

import gtdsl
from gtdsl.exporting import ExportError, dynamic_shapes

SOURCE = '''
def mlp(x: f32[b, s, d], w: f32[f, d], v: f32[d, f]) -> f32[b, s, d]:
    return x + linear(gelu(linear(x, w)), v)


def halves(x: f32[n, 2*d], y: f32[n, d]) -> f32[n, d]:
    return x[:, :d] * y + x[:, d:]


def fixed(x: f32[n, 4], w: f32[4, 4]) -> f32[n, 4]:
    return x @ w


def heads(x: f32[b, H*K], h: int[H]) -> f32[b, H, K]:
    return x.unflatten(-1, (h, -1))


def heads_kw(x: f32[b, H*K]) -> f32[b, H, K]:
    return x.unflatten(-1, (H, -1))


def product(x: f32[n, m], y: f32[n*m]) -> f32[n*m]:
    return x.flatten() + y


struct P[D, F]:
    w: f32[F, D]
    v: f32[D, F]


def struct_mlp(p: P[D, F], x: f32[b, D]) -> f32[b, D]:
    return linear(gelu(linear(x, p.w)), p.v)


def total(xs: list[f32[n, d]], y: f32[n, d]) -> f32[n, d]:
    return xs[0] + xs[1] + y


def rows(x: f32[*b, d], w: f32[d, d]) -> f32[*b, d]:
    return x @ w
'''


@pytest.fixture(scope="module")
def module():
    return gtdsl.load_source(SOURCE)


def test_the_dims_follow_the_type(module) -> None:
    shapes = dynamic_shapes(module.mlp, (torch.randn(2, 3, 4), torch.randn(8, 4),
                                         torch.randn(4, 8)))
    names = [{i: d.__name__ for i, d in s.items()} for s in shapes]
    assert names == [{0: "b", 1: "s", 2: "d"}, {0: "f", 1: "d"}, {0: "d", 1: "f"}]
    assert shapes[0][2] is shapes[1][1]  # one Dim per variable
    fixed = dynamic_shapes(module.fixed, (torch.randn(3, 4), torch.randn(4, 4)))
    assert [None if s is None else sorted(s) for s in fixed] == [[0], None]


def test_the_program_runs_at_other_sizes_as_gtdsl(module) -> None:
    g = torch.Generator().manual_seed(0)
    ep = gtdsl.export(module.mlp, torch.randn(2, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    for b, s, d, f in ((3, 5, 4, 6), (7, 2, 6, 3), (2, 9, 2, 2)):
        x = torch.randn(b, s, d, generator=g)
        w, v = torch.randn(f, d, generator=g), torch.randn(d, f, generator=g)
        torch.testing.assert_close(ep.module()(x, w, v), module.mlp(x, w, v))
    with pytest.raises(Exception, match="Guard failed|size"):  # the type's d == d
        ep.module()(torch.randn(2, 3, 4), torch.randn(8, 5), torch.randn(4, 8))
    ep = gtdsl.export(module.halves, torch.randn(3, 8), torch.randn(3, 4))
    x, y = torch.randn(5, 12, generator=g), torch.randn(5, 6, generator=g)
    torch.testing.assert_close(ep.module()(x, y), module.halves(x, y))
    with pytest.raises(Exception):  # 2*d: 12 against 2*5
        ep.module()(torch.randn(5, 12), torch.randn(5, 5))


def test_what_torch_cannot_state_is_gt0912(module) -> None:
    with pytest.raises(ExportError, match=r"m\*n") as err:  # two dynamic variables
        gtdsl.export(module.product, torch.randn(2, 3), torch.randn(6))
    assert err.value.diagnostic.code == "GT0912"
    with pytest.raises(ExportError, match="example size 1") as err:  # 1 specializes
        gtdsl.export(module.mlp, torch.randn(1, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    assert err.value.diagnostic.code == "GT0912"
    with pytest.raises(ExportError, match="missing 2 required positional"):
        gtdsl.export(module.mlp, torch.randn(2, 3, 4))
    with pytest.raises(ExportError, match="called no gtdsl function"):
        gtdsl.export(torch.sin, torch.randn(2))
    with pytest.raises(ExportError, match="not int"):
        gtdsl.export(3, torch.randn(2))


def test_an_int_argument_fixes_its_size_and_relates_the_rest(module) -> None:
    # heads(x: f32[b, H*K], h: int[H]): H = 3 is a constant, so dim 1 is 3*K
    shapes = dynamic_shapes(module.heads, (torch.randn(2, 12), 3))
    assert shapes[0][0].__name__ == "b" and shapes[0][1].root.__name__ == "K"
    ep = gtdsl.export(module.heads, torch.randn(2, 12), 3)
    g = torch.Generator().manual_seed(1)
    for b, k in ((5, 7), (2, 2), (9, 4)):
        x = torch.randn(b, 3 * k, generator=g)
        torch.testing.assert_close(ep.module()(x, 3), module.heads(x, 3))
    with pytest.raises(Exception, match="Guard failed"):  # not a multiple of H = 3
        ep.module()(torch.randn(5, 10), 3)
    ep = gtdsl.export(module.heads_kw, torch.randn(2, 8), H=2)  # a size keyword, too
    assert ep.module()(torch.randn(4, 10)).shape == (4, 2, 5)


def test_structs_lists_and_rows_are_exported(module) -> None:
    g = torch.Generator().manual_seed(2)
    p = module.P(w=torch.randn(8, 4), v=torch.randn(4, 8))
    shapes = dynamic_shapes(module.struct_mlp, (p, torch.randn(3, 4)))
    assert [{i: d.__name__ for i, d in s.items()} for s in shapes[0]] == [
        {0: "F", 1: "D"}, {0: "D", 1: "F"}]
    ep = gtdsl.export(module.struct_mlp, p, torch.randn(3, 4))
    for b, d, f in ((7, 5, 6), (2, 3, 9), (4, 4, 8)):
        q = module.P(w=torch.randn(f, d, generator=g), v=torch.randn(d, f, generator=g))
        x = torch.randn(b, d, generator=g)
        torch.testing.assert_close(ep.module()(q, x), module.struct_mlp(q, x))
    ep = gtdsl.export(module.total, [torch.randn(3, 4), torch.randn(3, 4)], torch.randn(3, 4))
    xs = [torch.randn(5, 6, generator=g) for _ in range(2)]
    y = torch.randn(5, 6, generator=g)
    torch.testing.assert_close(ep.module()(xs, y), module.total(xs, y))
    ep = gtdsl.export(module.rows, torch.randn(2, 3, 4), torch.randn(4, 4))  # *b: torch's
    x, w = torch.randn(5, 6, 3, generator=g), torch.randn(3, 3, generator=g)
    torch.testing.assert_close(ep.module()(x, w), module.rows(x, w))


def test_a_callable_holding_weights_keeps_them_constant(module) -> None:
    p = module.P(w=torch.randn(8, 4), v=torch.randn(4, 8))
    shapes = dynamic_shapes(lambda x: module.struct_mlp(p, x), (torch.randn(3, 4),))
    assert {i: d.__name__ for i, d in shapes[0].items()} == {0: "b"}  # D: fixed by p
    ep = gtdsl.export(lambda x: module.struct_mlp(p, x), torch.randn(3, 4))
    x = torch.randn(9, 4)
    torch.testing.assert_close(ep.module()(x), module.struct_mlp(p, x))
    with pytest.raises(Exception, match="Guard failed"):
        ep.module()(torch.randn(9, 5))
    # a weight passed through an op that returns it as it is (`contiguous`) is still held
    ep = gtdsl.export(lambda x: module.struct_mlp(module.P(w=p.w.contiguous(), v=p.v), x),
                      torch.randn(3, 4))
    torch.testing.assert_close(ep.module()(x), module.struct_mlp(p, x))


def test_a_saved_program_loads_and_runs_at_other_sizes(module, tmp_path) -> None:
    ep = gtdsl.export(module.mlp, torch.randn(2, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    torch.export.save(ep, tmp_path / "mlp.pt2")
    loaded = torch.export.load(tmp_path / "mlp.pt2")
    args = (torch.randn(3, 5, 6), torch.randn(2, 6), torch.randn(6, 2))
    torch.testing.assert_close(loaded.module()(*args), module.mlp(*args))
    with pytest.raises(Exception, match="Guard failed"):
        loaded.module()(torch.randn(2, 3, 4), torch.randn(8, 5), torch.randn(4, 8))


@pytest.mark.slow
def test_the_program_compiles_with_aot_inductor(module, tmp_path) -> None:
    compile_package = getattr(torch._inductor, "aoti_compile_and_package", None)
    if compile_package is None:  # torch older than 2.6
        pytest.skip("this torch has no AOTInductor packages")
    ep = gtdsl.export(module.mlp, torch.randn(2, 3, 4), torch.randn(8, 4), torch.randn(4, 8))
    path = compile_package(ep, package_path=str(tmp_path / "mlp.pt2"))
    runner = torch._inductor.aoti_load_package(path)
    g = torch.Generator().manual_seed(3)
    for b, s, d, f in ((3, 5, 4, 6), (7, 2, 6, 3), (2, 9, 2, 2)):
        args = (torch.randn(b, s, d, generator=g), torch.randn(f, d, generator=g),
                torch.randn(d, f, generator=g))
        torch.testing.assert_close(runner(*args), module.mlp(*args))


def test_the_docs_example_runs(tmp_path) -> None:
    from tests.conftest import docs_python_example

    ex = docs_python_example("runtime.md", "### Exporting with `torch.export`", tmp_path,
                             "export_example")
    args = (torch.randn(4, 2, 6), torch.randn(5, 6), torch.randn(6, 5))
    torch.testing.assert_close(ex.ep.module()(*args), ex.m.mlp(*args))


def test_the_docs_model_and_command_examples(tmp_path, monkeypatch) -> None:
    import doctest
    import io
    import re

    from gtdsl.cli.main import main
    from tests.conftest import REPO

    text = (REPO / "docs" / "runtime.md").read_text(encoding="utf-8")
    section = text.split("### Exporting with `torch.export`", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```pycon\n(.*?)```", section, re.S).group(1)
    test = doctest.DocTestParser().get_doctest(block, {"torch": torch, "gtdsl": gtdsl},
                                               "runtime.md", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4
    command = re.search(r"```sh\n\$ gtdsl (.*?)\n(.*?)```", section, re.S)
    argv, shown = command.group(1).split(), command.group(2)
    monkeypatch.chdir(tmp_path)
    import shutil

    shutil.copytree(REPO / "docs" / "examples" / "bert", tmp_path / "docs/examples/bert")
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, out, err) == 0, err.getvalue()
    assert out.getvalue() == shown


def test_the_program_checks_dtype_and_rank(tmp_path) -> None:
    # torch.export's guards check the sizes of the dims a program has, not their number or
    # the dtype; the exported program is the function at the example's dtypes and ranks
    m = gtdsl.load_source("def norm(x: f32[n]) -> f32[n]:\n    return x / x.sum()\n\n"
                          "def double(x: float[n]) -> float[n]:\n    return x * 2.0\n")
    ep = gtdsl.export(m.norm, torch.randn(3))
    torch.export.save(ep, tmp_path / "norm.pt2")  # saved and loaded, it keeps the checks
    for program in (ep.module(), torch.export.load(tmp_path / "norm.pt2").module()):
        x = torch.rand(5) + 0.5
        torch.testing.assert_close(program(x), m.norm(x))
        with pytest.raises(RuntimeError, match="number of sizes"):
            program(torch.ones(2, 2))
        with pytest.raises(IndexError):
            program(torch.tensor(2.0))
        with pytest.raises(RuntimeError, match="dtype mismatch"):
            program(torch.randn(4, dtype=torch.float64))
    ep = gtdsl.export(m.double, torch.randn(3))  # a dtype-generic type: the example's dtype
    with pytest.raises(RuntimeError, match="dtype mismatch"):
        ep.module()(torch.arange(4))


def test_each_place_of_a_tensor_passed_twice_has_its_own_dims() -> None:
    m = gtdsl.load_source('''
def attn(q: f32[b, s, d], k: f32[b, t, d], v: f32[b, t, d]) -> f32[b, s, d]:
    return softmax(q @ k.transpose(1, 2), dim=-1) @ v
''')
    x = torch.randn(2, 3, 4)
    ep = gtdsl.export(m.attn, x, x, x)
    q, k = torch.randn(2, 3, 4), torch.randn(2, 7, 4)
    torch.testing.assert_close(ep.module()(q, k, k), m.attn(q, k, k))


def test_a_dim_less_a_constant() -> None:
    m = gtdsl.load_source("def f(x: f32[n-1], y: f32[n]) -> f32[n]:\n"
                          "    return y + x.sum()\n")
    ep = gtdsl.export(m.f, torch.randn(2), torch.randn(3))
    x, y = torch.randn(5), torch.randn(6)
    torch.testing.assert_close(ep.module()(x, y), m.f(x, y))
    with pytest.raises(Exception, match="Guard failed"):
        ep.module()(torch.randn(5), torch.randn(5))


def test_jit_methods_and_functions_compiled_on_first_call(tmp_path) -> None:
    path = tmp_path / "jitted.py"  # @jit functions read their source from a file
    path.write_text('''
import torch
import gtdsl


class Scaled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 4))

    @gtdsl.jit
    def forward(self, x: "f32[n, d]") -> "f32[n, d]":
        return x @ self.w


@gtdsl.jit
def later(x: "f32[n, 4]") -> "f32[n, 4]":
    return helper(x)


@gtdsl.jit
def helper(x: "f32[n, 4]") -> "f32[n, 4]":
    return x + 1.0
''')
    import importlib.util

    spec = importlib.util.spec_from_file_location("jitted", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    scaled = mod.Scaled()
    ep = gtdsl.export(scaled, torch.randn(3, 4))  # d: fixed by the weight the module holds
    x = torch.randn(7, 4)
    torch.testing.assert_close(ep.module()(x), scaled(x))
    ep = gtdsl.export(lambda x: mod.later(x) * 2, torch.randn(3, 4))  # compiled when called
    torch.testing.assert_close(ep.module()(x), (x + 1.0) * 2)
