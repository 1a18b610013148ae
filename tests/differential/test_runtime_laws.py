"""Two laws of gradual typing (docs/types.md, "What is checked, and when") on generated
programs and inputs biased toward violations.

- Soundness: the compiled torch backend and the reference interpreter agree: the same
  value bit for bit, or a ``CastError`` with the same code and blame label; never a raw
  torch error, on adversarial inputs (off by one, sizes 0 and 1, swapped dims, wrong dtype,
  a tensor on another device, a number where a tensor belongs).
- The dynamic gradual guarantee: weakening annotations changes no result: if the precise
  program returns r, the weakened one returns r; if the weakened one raises ``CastError``, so
  does the precise one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gtdsl.diagnostics import GtdslError
from gtdsl.runtime.errors import CastError
from gtdsl.runtime.inputs import Sampler
from gtdsl.driver import load_source
from gtdsl.syntax import ast, parse_source
from gtdsl.syntax.unparse import unparse
from tests.properties.strategies import programs, weaken

MUTATIONS = ("none", "none", "off_by_one", "swap", "dtype", "rank", "number", "meta")


def outcome(call) -> tuple:
    """("ok", value) or ("cast", code, label): anything else fails the test."""
    try:
        return ("ok", call())
    except CastError as e:
        b = e.blame
        label = (b.kind, b.function, b.what, b.span.location if b.span else None) if b else \
            str(e).splitlines()[0]
        return ("cast", e.code, label)
    except GtdslError as e:  # a gtdsl error of another kind is still not a raw one
        return ("error", e.diagnostics[0].code, str(e).splitlines()[0])


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape or a.device != b.device:
            return False
        if a.device.type == "meta":
            return True
        eq = a == b
        if a.is_floating_point():
            eq = eq | (torch.isnan(a) & torch.isnan(b))
        return bool(eq.all())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def same_outcome(x: tuple, y: tuple) -> bool:
    if x[0] != y[0]:
        return False
    if x[0] == "ok":
        return same(x[1], y[1])
    return x[1:] == y[1:]


def mutate(args: list[Any], choice: str, k: int) -> list[Any]:
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    if choice == "none" or not tensors:
        return args
    i = tensors[k % len(tensors)]
    x = args[i]
    out = list(args)
    if choice == "off_by_one" and x.dim():
        d = k % x.dim()
        shape = list(x.shape)
        shape[d] += 1
        out[i] = torch.randn(shape, generator=torch.Generator().manual_seed(k)).to(x.dtype)
    elif choice == "swap" and x.dim() >= 2:
        out[i] = x.transpose(-1, -2).contiguous()
    elif choice == "dtype":
        out[i] = x.to(torch.float64 if x.dtype != torch.float64 else torch.float32)
    elif choice == "rank":
        out[i] = x.unsqueeze(0)
    elif choice == "number":
        out[i] = 1.5
    elif choice == "meta":
        out[i] = x.to("meta")
    return out


def _args(fn: Any, module: Any, sizes: dict[str, int], seed: int) -> list[Any]:
    s = Sampler(dict(sizes), {}, torch.Generator().manual_seed(seed), module.program.struct,
                module.structs)
    return [s.value(t, n) for n, t in fn._params]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), sizes=st.fixed_dictionaries({v: st.sampled_from([0, 1, 2, 3])
                                                     for v in "abc"}),
       mutation=st.sampled_from(MUTATIONS), k=st.integers(0, 100),
       picks=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200)), min_size=1,
                      max_size=4))
def test_compiled_equals_interpreter_and_weakening_changes_no_result(text, sizes, mutation, k,
                                                                      picks) -> None:
    precise = load_source(text, "generated.gt")
    tree = parse_source(text, "generated.gt")
    body = tuple(weaken(d, picks) if isinstance(d, ast.FunctionDef) else d for d in tree.body)
    weak_text = unparse(dataclasses.replace(tree, body=body))
    weak = load_source(weak_text, "weak.gt")
    weak_interp = load_source(weak_text, "weak.gt", backend="interpret")
    precise_interp = load_source(text, "generated.gt", backend="interpret")
    # the weakest program of all: every annotation erased, nothing checked before ops run
    erased_text = unparse(dataclasses.replace(tree, body=tuple(
        dataclasses.replace(d, params=tuple(dataclasses.replace(p, annotation=None)
                                            for p in d.params), returns=None)
        if isinstance(d, ast.FunctionDef) else d for d in tree.body)))
    erased = load_source(erased_text, "erased.gt")
    erased_interp = load_source(erased_text, "erased.gt", backend="interpret")

    args = mutate(_args(precise.g, precise, sizes, k), mutation, k)
    results = {
        "precise": outcome(lambda: precise.g(*args)),
        "precise_ref": outcome(lambda: precise_interp.g(*args)),
        "weak": outcome(lambda: weak.g(*args)),
        "weak_ref": outcome(lambda: weak_interp.g(*args)),
        "erased": outcome(lambda: erased.g(*args)),
        "erased_ref": outcome(lambda: erased_interp.g(*args)),
    }
    context = (text, weak_text, mutation, sizes, {n: str(r[:2]) for n, r in results.items()})
    # law 6: compiled ≡ reference, for the precise and the weakened program alike
    assert same_outcome(results["precise"], results["precise_ref"]), context
    assert same_outcome(results["weak"], results["weak_ref"]), context
    assert same_outcome(results["erased"], results["erased_ref"]), context
    for w in ("weak", "erased"):
        # law 5: the weakened program returns what the precise one returns ...
        if results["precise"][0] == "ok":
            assert results[w][0] == "ok" and same(results["precise"][1], results[w][1]), \
                context
        # ... and fails only where the precise one fails
        if results[w][0] == "cast":
            assert results["precise"][0] == "cast", context


def test_violations_do_happen() -> None:
    """The biased inputs do reach casts: a wrong dtype fails the precise program."""
    text = "def g(p0: f32[a, b]) -> f32[a, b]:\n    return tanh(p0)\n"
    m = load_source(text, "g.gt")
    args = mutate(_args(m.g, m, {"a": 2, "b": 3}, 0), "dtype", 0)
    r = outcome(lambda: m.g(*args))
    assert r[0] == "cast" and r[1] == "GT3001"
