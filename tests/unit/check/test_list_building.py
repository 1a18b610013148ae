"""Lists built in a loop (``xs = xs + [x]``): typed by the checker, run by every backend as
Python runs the same code, refused with GT2016 when a list meets a non-list; and a call whose
list of structs holds an equation (``G*F``) stays on the generated entry."""

from __future__ import annotations

import os

import pytest
import torch

import gtdsl

SOURCE = '''
struct Layer[D, F, G]:
    up: f32[G*F, D]
    down: f32[D, F]


def grow_each(layers: list[Layer[D, F, G]], x: f32[b, D], cache: list[f32[b, t, D]]
              ) -> tuple[f32[b, D], list[f32[b, t + 1, D]]]:
    grown: list[f32[b, t + 1, D]] = []
    i: int = 0
    for p in layers:
        h = linear(x, p.up).unflatten(-1, (G, F))
        x = x + linear(relu(h[:, 0]), p.down)
        grown = grown + [cat([cache[i], x.unsqueeze(1)], 1)]
        i = i + 1
    return x, grown


def pairs(xs: list[f32[n]], ys: list[f32[n]]) -> list[f32[n]]:
    return xs + ys + [xs[0] * 2.0]
'''


def _reference(layers: list, x: torch.Tensor, cache: list) -> tuple:
    grown = []
    for p, past in zip(layers, cache):
        g = p["up"].shape[0] // p["down"].shape[1]
        h = (x @ p["up"].T).unflatten(-1, (g, -1))
        x = x + torch.relu(h[:, 0]) @ p["down"].T
        grown.append(torch.cat([past, x.unsqueeze(1)], 1))
    return x, grown


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "lists.gt"
    path.write_text(SOURCE)
    return path


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_a_list_built_in_a_loop_equals_python(module_file, backend: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert gtdsl.check(module_file) == []
    m = gtdsl.load(module_file, backend=backend)
    g = torch.Generator().manual_seed(0)
    raw = [{"up": torch.randn(2 * 5, 4, generator=g), "down": torch.randn(4, 5, generator=g)}
           for _ in range(3)]
    layers = [m.structs["Layer"](**p) for p in raw]
    x = torch.randn(2, 4, generator=g)
    cache = [torch.randn(2, 3, 4, generator=g) for _ in range(3)]
    got_x, got = m.grow_each(layers, x, cache)
    want_x, want = _reference(raw, x, cache)
    torch.testing.assert_close(got_x, want_x)
    assert isinstance(got, list) and len(got) == 3
    for a, b in zip(got, want):
        assert a.shape == (2, 4, 4)
        torch.testing.assert_close(a, b)
    xs = [torch.randn(3, generator=g) for _ in range(2)]
    ys = [torch.randn(3, generator=g)]
    out = m.pairs(xs, ys)
    assert len(out) == 4 and all(torch.equal(a, b) for a, b in zip(out, xs + ys))
    torch.testing.assert_close(out[3], xs[0] * 2.0)
    if backend == "torch":  # the entry checks the layers in generated code, G*F included
        assert m.grow_each._slow_calls == 0
        with pytest.raises(gtdsl.CastError, match="cache"):
            m.grow_each(layers, x, cache[:1] + [torch.randn(2, 4, 4)] * 2)


def test_a_list_and_a_tensor_do_not_add(tmp_path) -> None:
    path = tmp_path / "bad.gt"
    path.write_text("def f(x: f32[n], xs: list[f32[n]]) -> list[f32[n]]:\n"
                    "    return xs + x\n")
    diags = gtdsl.check(path)
    assert [d.code for d in diags] == ["GT2016"]
    assert "on a list takes a list" in diags[0].message and "xs + [x]" in (diags[0].help or "")
    assert os.fspath(path) in (diags[0].path or os.fspath(path))


def test_a_loop_built_list_of_the_wrong_type_is_blamed(tmp_path) -> None:
    """An element whose size the checker cannot relate to the annotation (``n + 1`` joined
    with ``n``) is checked where the loop carries the list: a GT3001 at that line naming the
    element and both sizes."""
    path = tmp_path / "wrong.gt"
    path.write_text("def f(xs: list[f32[n]]) -> list[f32[n]]:\n"
                    "    out: list[f32[n]] = []\n"
                    "    for x in xs:\n"
                    "        out = out + [x.sum(0, keepdim=True).expand(n + 1)]\n"
                    "    return out\n")
    assert gtdsl.check(path) == []
    with pytest.raises(gtdsl.CastError) as err:
        gtdsl.load(path).f([torch.ones(3)])
    text = str(err.value)
    assert err.value.diagnostic.code == "GT3001" and "wrong.gt:4" in text
    assert "element 0, dim 0: expected 3, got 4" in text


@pytest.mark.parametrize("backend", ["torch", "interpret"])
def test_a_counter_carried_by_a_loop_counts(tmp_path, backend: str) -> None:
    """A loop-carried int that starts from a constant (``n: int = 0``) takes a new value each
    trip: its value before the loop is not folded into the body."""
    path = tmp_path / "count.gt"
    path.write_text("def count(xs: list[f32[k]], x: f32[k]) -> f32[k]:\n"
                    "    n: int = 0\n"
                    "    total: float = 0.0\n"
                    "    for y in xs:\n"
                    "        n = n + 1\n"
                    "        total = total + 0.5\n"
                    "    return x * n + total\n")
    m = gtdsl.load(path, backend=backend)
    x = torch.ones(2)
    for k in (0, 1, 3, 5):
        assert m.count([x] * k, x).tolist() == [1.0 * k + 0.5 * k] * 2


AFTER_LOOP = '''
def count(xs: list[f32[n]]) -> int:
    i: int = 0
    for x in xs:
        i = i + 1
    return i + 1


def doubled(xs: list[f32[n]]) -> int:
    i: int = 0
    for x in xs:
        i = i + 1
    j: int = i * 2
    return j


def pairs(xs: list[f32[n]]) -> int:
    t: tuple[int, int] = (0, 0)
    for x in xs:
        t = (t[0] + 1, t[1] + 2)
    return t[1] + 0


def first(xs: list[f32[n]]) -> int:
    ns: list[int] = []
    for x in xs:
        ns = ns + [7]
    return ns[0]


def sized(xs: list[f32[n]]) -> f32[?]:
    k: int = 2
    for x in xs:
        k = k + 1
    return zeros(k)
'''


@pytest.mark.parametrize("backend", ["torch", "interpret", "triton"])
def test_a_loop_carried_value_after_the_loop_is_its_last(tmp_path, backend: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """After the loop, a carried variable holds what the last trip gave it, not its value
    before the loop: nothing is folded from the start value."""
    if backend == "triton":
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    path = tmp_path / "after.gt"
    path.write_text(AFTER_LOOP)
    assert gtdsl.check(path) == []
    m = gtdsl.load(path, backend=backend)
    xs = [torch.ones(2)] * 3
    assert m.count(xs) == 4 and m.doubled(xs) == 6 and m.pairs(xs) == 6 and m.first(xs) == 7
    assert m.sized(xs).shape == (5,)


def test_list_misuse_is_a_located_diagnostic(tmp_path) -> None:
    path = tmp_path / "misuse.gt"
    path.write_text("def f(xs: list[f32[n]]) -> list[f32[n]]:\n"
                    "    return xs * 2\n\n\n"
                    "def g(x: f32[n]) -> f32[n]:\n"
                    "    ys: list[f32[n]] = [x, x] + [x]\n"
                    "    return ys[5]\n")
    found = [(d.code, d.message) for d in gtdsl.check(path)]
    assert any(c == "GT2016" and "`*` is not defined on lists" in m for c, m in found), found
    assert any(c == "GT2010" and "list index 5 is out of range" in m for c, m in found), found
