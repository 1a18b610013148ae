"""TYPES.md §7 law 4, the static gradual guarantee: weaken annotations of a well-typed
program and it still checks, every inferred type equally or less precise.

Weakenings: a size to ``?``, ``cuda:0 → cuda → ?``, ``f16 → float → ?``, a leading dims prefix
to ``...``, a whole shape to ``[...]``. Labels that by-name ops use are binders and are kept,
and a size variable is weakened in a parameter only where another parameter still binds it.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from gtdsl.check.subst import strip_labels
from gtdsl.driver import check_file
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_file
from gtdsl.syntax.unparse import unparse
from gtdsl.types import leq
from tests.conftest import REPO

PROGRAMS = [REPO / "docs" / "examples" / "language" / n for n in
            ("mlp.gt", "rms_norm.gt", "softmax.gt", "layers.gt", "gated.gt")] + [
    REPO / "docs" / "examples" / "bert" / "bert.gt"]
CATEGORY = {"f16": "float", "bf16": "float", "f32": "float", "f64": "float", "i8": "int",
            "i16": "int", "i32": "int", "i64": "int", "u8": "uint"}


def _names_in(node: object, out: set[str]) -> set[str]:
    if isinstance(node, ast.Name):
        out.add(node.id)
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            _names_in(getattr(node, f.name), out)
    elif isinstance(node, tuple):
        for x in node:
            _names_in(x, out)
    return out


def _size_vars(t: object, out: list[str]) -> list[str]:
    if isinstance(t, ast.SizeVar):
        out.append(t.name)
    elif isinstance(t, ast.Variadic) and t.name:
        out.append(t.name)
    if dataclasses.is_dataclass(t):
        for f in dataclasses.fields(t):
            _size_vars(getattr(t, f.name), out)
    elif isinstance(t, tuple):
        for x in t:
            _size_vars(x, out)
    return out


def _weaken_tensor(t: ast.TensorType, choice: int, keep: set[str]) -> ast.TensorType | None:
    kind = choice % 5
    if kind == 0 and t.dtype is not None:
        cat = CATEGORY.get(t.dtype.value)
        new = ast.DType(cat) if cat and choice % 2 else None
        return dataclasses.replace(t, dtype=new)
    if kind == 1 and t.device is not None:
        d = t.device
        return dataclasses.replace(t, device=ast.Device(d.kind) if d.index is not None else None)
    if kind == 2 and t.shape is not None and t.shape.dims:
        i = (choice // 5) % len(t.shape.dims)
        dim = t.shape.dims[i]
        if dim.size is None or set(_size_vars(dim, [])) & keep or dim.label in keep:
            return None
        dims = t.shape.dims[:i] + (ast.Dim(None, None),) + t.shape.dims[i + 1:]
        return dataclasses.replace(t, shape=ast.Shape(t.shape.variadic, dims))
    if kind == 3 and t.shape is not None and t.shape.dims:
        k = 1 + (choice // 5) % len(t.shape.dims)
        head = t.shape.dims[:k]
        row = t.shape.variadic.name if t.shape.variadic else None
        if set(_size_vars(head, [])) & keep or any(d.label in keep for d in head) or (
                row is not None and row in keep):
            return None
        return dataclasses.replace(t, shape=ast.Shape(ast.Variadic(None), t.shape.dims[k:]))
    if kind == 4 and t.shape is not None:
        if set(_size_vars(t.shape, [])) & keep or any(d.label in keep for d in t.shape.dims):
            return None
        return dataclasses.replace(t, shape=None)
    return None


def weaken(fn: ast.FunctionDef, picks: list[tuple[int, int]]) -> ast.FunctionDef:
    binders = _names_in(fn.body, set())
    params = list(fn.params)
    returns = fn.returns
    for slot, choice in picks:
        n = len(params) + 1
        i = slot % n
        target = params[i].annotation if i < len(params) else returns
        if not isinstance(target, ast.TensorType):
            continue
        if i < len(params):  # a variable only this parameter binds must stay bound
            others = {v for j, p in enumerate(params) if j != i
                      for v in _size_vars(p.annotation, [])}
            keep = binders | (set(_size_vars(target, [])) - others)
        else:
            keep = set()
        new = _weaken_tensor(target, choice, keep)
        if new is None:
            continue
        if i < len(params):
            params[i] = dataclasses.replace(params[i], annotation=new)
        else:
            returns = new
    return dataclasses.replace(fn, params=tuple(params), returns=returns)


def test_weakenings_happen() -> None:
    """The weakening generator does weaken: every program has annotations it changes."""
    for prog in PROGRAMS:
        module = parse_file(prog)
        changed = 0
        for slot in range(8):
            for choice in range(25):
                body = tuple(weaken(d, [(slot, choice)]) if isinstance(d, ast.FunctionDef)
                             else d for d in module.body)
                changed += body != module.body
        assert changed > 0, prog.name


def _signatures(text: str, path) -> dict[str, object]:
    c = check_file(text, str(path))
    assert [d for d in c.diagnostics if d.is_error] == [], [str(d.message) for d in
                                                            c.diagnostics]
    return {f.name: f.returns for f in c.result.module.functions.values()}


@settings(max_examples=60, deadline=None)
@given(prog=st.sampled_from(PROGRAMS),
       picks=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200)), min_size=1,
                      max_size=4))
def test_weakening_annotations_keeps_programs_well_typed(prog, picks) -> None:
    module = parse_file(prog)
    precise = _signatures(prog.read_text(), prog)
    body = tuple(weaken(d, picks) if isinstance(d, ast.FunctionDef) else d for d in module.body)
    weak_text = unparse(dataclasses.replace(module, body=body))
    weak = _signatures(weak_text, prog.with_name("weak_" + prog.name))
    for name, t in precise.items():
        assert leq(strip_labels(t), strip_labels(weak[name])), (name, str(t), str(weak[name]),
                                                                weak_text)
