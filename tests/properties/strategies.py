"""Shared hypothesis strategies: generated well-typed programs and the weakening of their
annotations (the static and dynamic gradual guarantees: docs/types.md, "What is checked,
and when")."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from gtdsl.syntax import ast

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


# A well-typed function built by construction: the generator tracks each local's shape as
# a tuple of dim names over the parameters' size variables and only writes ops that fit.

SIZES = ("a", "b", "c")
DTYPES = ("f32", "f16", "f64")


@st.composite
def programs(draw) -> str:
    dtype = draw(st.sampled_from(DTYPES))
    n_params = draw(st.integers(1, 3))
    params: dict[str, tuple[str, ...]] = {}
    for i in range(n_params):
        rank = draw(st.integers(1, 3))
        params[f"p{i}"] = tuple(draw(st.sampled_from(SIZES)) for _ in range(rank))
    env = dict(params)
    lines = []
    for k in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(sorted(env)))
        shape = env[name]
        choice = draw(st.integers(0, 7))
        if choice == 0:
            expr, out = f"{draw(st.sampled_from(('exp', 'tanh', 'relu', 'sigmoid')))}({name})", \
                shape
        elif choice == 1:
            same = [v for v, s in sorted(env.items()) if s == shape]
            other = draw(st.sampled_from(same))
            expr, out = f"{name} {draw(st.sampled_from('+-*'))} {other}", shape
        elif choice == 2:
            expr, out = f"{name} * {draw(st.sampled_from(('2', '0.5', '3')))}", shape
        elif choice == 3 and len(shape) > 1:
            i = draw(st.integers(0, len(shape) - 1))
            expr, out = f"{name}.sum({i})", shape[:i] + shape[i + 1:]
        elif choice == 4 and len(shape) >= 2:
            expr, out = f"{name}.transpose(-1, -2)", shape[:-2] + (shape[-1], shape[-2])
        elif choice == 5:
            expr, out = f"softmax({name}, -1)", shape
        elif choice == 6:
            mats = [v for v, s in sorted(env.items()) if len(s) == 2 and s[0] == shape[-1]]
            if not mats:
                continue
            m = draw(st.sampled_from(mats))
            expr, out = f"{name} @ {m}", shape[:-1] + (env[m][1],)
        else:
            expr, out = f"{name}.unsqueeze(0)", ("1",) + shape
        var = f"v{k}"
        lines.append(f"    {var} = {expr}")
        env[var] = out
    result = draw(st.sampled_from(sorted(env)))
    sig = ", ".join(f"{p}: {dtype}[{', '.join(s)}]" for p, s in params.items())
    ret = f"{dtype}[{', '.join(env[result])}]"
    return f"def g({sig}) -> {ret}:\n" + "\n".join(lines + [f"    return {result}"]) + "\n"


