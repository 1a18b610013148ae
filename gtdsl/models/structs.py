"""One loader for every model: parameter struct values built from a weight file by a key map.

A key map is plain data shaped like the value it builds: a string is a tensor's key, a dict
gives a key map per field of a struct, a list one per element of a ``list[...]`` (the layers),
a tuple one per element of a ``tuple[...]``. ``Weights.load`` walks the structs' declared field
types; the runtime's value check (``check_value``) checks every tensor against its field's type
under one ``Bindings`` for the whole model, seeded with the config's sizes, so a tensor that
disagrees with the config or with another tensor is a GT0909 naming the key, where the tensor
goes (``p.layers[1].ffn.up.weight``), the field's declaration and both shapes.
``Weights.finish`` refuses the tensors nothing took; ``flatten`` gives a value's tensors back
by key, for saving.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import torch

from gtdsl.diagnostics import Label
from gtdsl.diagnostics.source import Span
from gtdsl.models.weights import load_error
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.types import DT, Size, TDim, TList, TShape, TStruct, TTensor, TTuple, Type
from gtdsl.types.subst import KEEP, substitute



class Stacked(tuple[str, ...]):
    """The key map of one tensor stored as several of the same shape, stacked along the first
    dim (T5 v1.1's gated ``wi_0`` and ``wi_1`` as one ``wi`` of twice the rows, so that both
    projections run as one product)."""


KeyMap = Union[str, Stacked, Mapping[str, "KeyMap"], Sequence["KeyMap"]]  # a list or tuple
Owner = tuple[str, Span | None]  # the field a tensor fills (`Dense.weight`), its declaration
Fields = dict[str, tuple[Type, Span | None]]  # field -> declared type, declaration


def _declaration(module: Any, name: str) -> tuple[tuple[str, ...], Fields]:
    """A struct's size parameters and its fields (declared type, span of the declaration), from
    the IR program's ``StructDecl``: the one place the loader reads struct declarations."""
    decl = module.program.struct(name)
    if decl is None:
        raise load_error(f"the model's program declares no struct `{name}`",
                         help="a key map fills the structs of the model's own program")
    return tuple(decl.params), {f.name: (f.type, f.span) for f in decl.fields}


def _size(s: str | int | Size) -> Size:
    """A size given as a Size, a number, a name or a product of them (``"H*K"``)."""
    if not isinstance(s, str):
        return s if isinstance(s, Size) else Size.of(s)
    out = Size.of(1)
    for part in s.split("*"):
        out = out * Size.of(int(part) if part.strip().isdigit() else part.strip())
    return out


def f32(**dims: str | int | Size) -> TTensor:
    """The type ``f32[label=size, ...]`` (``f32(vocab="V", hidden="D")``), for tensors that no
    struct field declares."""
    return TTensor(DT.F32, TShape(None, tuple(TDim(k, _size(v)) for k, v in dims.items())))


def prefixed(prefix: str, keys: KeyMap) -> KeyMap:
    """``keys`` with ``prefix`` before every key (``encoder.layer.3.``)."""
    if isinstance(keys, str):
        return prefix + keys
    if isinstance(keys, Mapping):
        return {f: prefixed(prefix, k) for f, k in keys.items()}
    inner = [prefixed(prefix, k) for k in keys]
    return tuple(inner) if isinstance(keys, tuple) else inner


def weight_bias(prefix: str) -> dict[str, str]:
    """The key map of a layer stored as ``PREFIX.weight`` and ``PREFIX.bias``."""
    return {"weight": f"{prefix}.weight", "bias": f"{prefix}.bias"}


def flatten(value: Any, keys: KeyMap) -> dict[str, torch.Tensor]:
    """The tensors of ``value`` by the keys ``keys`` gives them (the inverse of ``load``)."""
    if isinstance(keys, str):
        return {keys: value}
    if isinstance(keys, Stacked):
        return dict(zip(keys, value.chunk(len(keys)), strict=True))
    out: dict[str, torch.Tensor] = {}
    if isinstance(keys, dict):
        for f, k in keys.items():
            out.update(flatten(getattr(value, f), k))
    else:
        for v, k in zip(value, keys, strict=True):
            out.update(flatten(v, k))
    return out


_KIND = {TTensor: str, TStruct: dict, TList: list, TTuple: tuple}  # a type's key map
_SHOWN = {str: "a key", dict: "a dict of fields", list: "a list", tuple: "a tuple"}


class Weights:
    """A weight file's tensors (``tensors``, read from ``path``), handed out into the values of
    ``module``'s types, each checked under one set of size bindings starting from ``sizes``."""

    def __init__(self, module: Any, path: Path, tensors: dict[str, torch.Tensor],
                 sizes: dict[str, int]) -> None:
        self.module, self.path, self.tensors = module, path, tensors
        self.bindings = Bindings(dict(sizes))
        self.used: set[str] = set()

    def struct_type(self, name: str, *args: str | int | Size) -> TStruct:
        """``name[args]``; with no ``args``, the struct's own parameters as the sizes (``Bert``
        is ``Bert[V, P, T, H, K, F]``, sized by the config's ``V``, ``P``, ...)."""
        return TStruct(name, tuple(_size(a) for a in (args or _declaration(self.module, name)[0])))

    def load(self, t: Type, keys: KeyMap, shown: str, owner: Owner | None = None) -> Any:
        """The value of type ``t`` whose tensors ``keys`` names; ``shown`` is the value's name
        in messages (``p``: its tensors are ``p.layers[1].ffn.up.weight``, ...)."""
        if isinstance(t, TTensor) and isinstance(keys, Stacked):
            return self.stacked(keys, t, shown, owner)
        want = _KIND.get(type(t))
        if want is None:
            raise load_error(f"`{shown}` is {t}: only tensors, and structs, lists and tuples "
                             "of them, are read from a weight file", path=str(self.path))
        if not isinstance(keys, want) or (isinstance(t, TTuple) and len(keys) != len(t.elems)):
            raise self._map_error(shown, t, f"is {_SHOWN.get(type(keys), repr(keys)[:40])}, "
                                  f"not {_SHOWN[want]}" + (f" of {len(t.elems)}"
                                                           if isinstance(t, TTuple) else ""))
        if isinstance(t, TTensor):
            return self.tensor(keys, t, shown, owner)
        if isinstance(t, TList):
            return [self.load(t.elem, k, f"{shown}[{i}]", owner) for i, k in enumerate(keys)]
        if isinstance(t, TTuple):
            return tuple(self.load(et, k, f"{shown}[{i}]", owner)
                         for i, (et, k) in enumerate(zip(t.elems, keys)))
        params, fields = _declaration(self.module, t.name)
        if set(keys) != set(fields):
            raise self._map_error(shown, t, f"names {', '.join(map(repr, keys)) or 'nothing'}, "
                                  f"not the fields {', '.join(map(repr, fields))}")
        env = dict(zip(params, t.args))
        return self.module.structs[t.name](**{
            f: self.load(substitute(ft, lambda v: env.get(v, KEEP), rows={}), keys[f],
                         f"{shown}.{f}", (f"{t.name}.{f}", span))
            for f, (ft, span) in fields.items()})

    def tensor(self, key: str, t: Type, shown: str, owner: Owner | None = None) -> torch.Tensor:
        """The tensor ``key``, checked against ``t``; ``shown`` is where it goes in the model's
        parameters, ``owner`` the struct field that declares it and its declaration."""
        field, span = owner or (None, None)
        where = f"`{shown}`" + (f" (`{field}`)" if field else "")
        if key not in self.tensors:
            raise load_error(f"`{self.path.name}` has no tensor `{key}` for {where}",
                             Label(span, "declared here") if span is not None else None,
                             path=str(self.path),
                             help="check that the folder holds this kind of model")
        v = self.tensors[key]
        self.used.add(key)
        try:
            check_value(v, t, self.bindings, "", None, f"`{key}`")
        except CastFailed as f:
            sizes = ", ".join(f"{k}={n}" for k, n in self.bindings.sizes.items()
                              if not k.startswith("#"))
            raise load_error(
                f"`{key}` in `{self.path.name}` does not match {where}: {f.mismatch}",
                Label(span, f"declared here: {t}") if span is not None else None,
                notes=(f"got: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}",
                       f"expected: {t} with {sizes}"),
                help="the file does not hold this model, or its config.json gives other "
                "sizes", path=str(self.path)) from None
        return v

    def stacked(self, keys: Stacked, t: Type, shown: str, owner: Owner | None = None
                ) -> torch.Tensor:
        """The tensors ``keys`` (each of one shape) stacked along their first dim, checked
        against ``t``."""
        parts = [self.tensors.get(k) for k in keys]
        first = parts[0]
        if first is not None and first.dim() > 0 and all(
                p is not None and p.shape == first.shape and p.dtype == first.dtype
                for p in parts):
            joined = " + ".join(keys)
            self.tensors[joined] = torch.cat([p for p in parts if p is not None])
            self.used.update(keys)
            try:
                return self.tensor(joined, t, shown, owner)
            finally:
                del self.tensors[joined]
        for k, p in zip(keys, parts):  # the message names a missing, scalar or odd one
            if p is None or p.dim() == 0:
                self.tensor(k, t, shown, owner)  # raises: missing, or not of t's rank
            elif first is not None and (p.shape != first.shape or p.dtype != first.dtype):
                raise self._odd(k, keys[0])
        raise self._odd(keys[-1], keys[0])

    def _odd(self, key: str, other: str) -> Exception:
        got = self.tensors[key]
        first = self.tensors[other]
        return load_error(f"`{key}` in `{self.path.name}` does not match `{other}`: the two "
                          "are stacked into one tensor and need one shape and dtype (at "
                          "least one dim)", path=str(self.path),
                          notes=(f"got: {tuple(got.shape)} {str(got.dtype).replace('torch.', '')}",
                                 f"expected: {tuple(first.shape)} "
                                 f"{str(first.dtype).replace('torch.', '')}"),
                          help="the file does not hold this model")

    def unchecked(self, key: str) -> torch.Tensor | None:
        """The tensor ``key`` as it is (None when absent), for a tensor the model does not run
        but accepts: a buffer, a copy the caller compares, a tied head."""
        if key in self.tensors:
            self.used.add(key)
        return self.tensors.get(key)

    def finish(self, model: str, ignore: Callable[[str], bool] = lambda key: False,
               help: str | None = None) -> None:
        """Refuse the tensors nothing took (unless ``ignore`` accepts their key)."""
        extra = sorted(k for k in self.tensors if k not in self.used and not ignore(k))
        if extra:
            raise load_error(f"`{self.path.name}` holds tensors this {model} does not use: "
                             f"{', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""),
                             path=str(self.path), help=help)

    def _map_error(self, shown: str, t: Type, problem: str) -> Exception:
        return load_error(f"the key map for `{shown}` ({t}) {problem}", path=str(self.path),
                          help="a key map gives a key for a tensor, a dict with one entry per "
                          "field for a struct, a list for a list, a tuple for a tuple")
