"""Random values drawn from types: the inputs of ``gtdsl run`` and of the tests.

Sizes come from the bindings given (``n=8``), else a default (4 for a size variable, one
leading dim of 2 for a row variable, 2 for an ``int`` parameter), so the same variable gets
the same size across every argument and sizes written as expressions (``2*n``, ``d // h``)
are evaluated, not guessed.

A drawn tensor has at most ``MAX_ELEMENTS`` elements, and all drawn together at most half of
this machine's memory: a size that cannot be allocated is an ``InputError`` before anything
is allocated, not an out-of-memory failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from gtdsl.types.subst import KEEP, substitute
from gtdsl.ops.calls import DT_TORCH
from gtdsl.runtime.tensorfile import memory_bytes
from gtdsl.types import DT, ScalarKind, Size, TDyn, TList, TOther, TScalar, TStruct, TTensor, \
    TTuple, Type
from gtdsl.types.sizes import size_str

DEFAULT_SIZE = 4
DEFAULT_ROW = (2,)
DEFAULT_INT = 2
MAX_ELEMENTS = 2 ** 31
_CATEGORY_DEFAULT = {DT.ANY: DT.F32, DT.FLOAT: DT.F32, DT.INT: DT.I64, DT.UINT: DT.U8,
                     DT.COMPLEX: DT.C64}


class InputError(ValueError):
    """A type no value can be drawn for (an expression over unknown sizes, a negative size,
    a tensor too large to allocate); ``help`` says what to do instead."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


class Sampler:
    def __init__(self, sizes: Mapping[str, int] | None = None,
                 rows: Mapping[str, tuple[int, ...]] | None = None,
                 generator: torch.Generator | None = None,
                 structs: Callable[[str], Any] | None = None,
                 classes: Mapping[str, type] | None = None,
                 device: str | None = None) -> None:
        # shared, not copied: a caller binding sizes as it goes sees them used here
        self.sizes = sizes if isinstance(sizes, dict) else dict(sizes or {})
        self.rows = rows if isinstance(rows, dict) else dict(rows or {})
        self.gen = generator
        self.structs = structs
        self.classes = classes or {}
        self.device = device
        self.drawn_bytes = 0  # of every tensor drawn so far

    def size(self, s: Size) -> int:
        for v in sorted(s.variables()):
            self.sizes.setdefault(v, DEFAULT_SIZE)
        n = s.evaluate(self.sizes)
        if n is None or n < 0:
            bound = ", ".join(f"{v}={self.sizes[v]}" for v in sorted(s.variables()))
            raise InputError(f"size {size_str(s)} is not a valid size with {bound}")
        return n

    def value(self, t: Type, name: str = "") -> Any:
        if isinstance(t, TTensor):
            return self.tensor(t, name)
        if isinstance(t, TScalar):
            if t.kind is ScalarKind.INT:
                if t.value is not None:
                    if t.value.constant() is None and len(t.value.variables()) == 1 and \
                            t.value == Size.of(next(iter(t.value.variables()))):
                        self.sizes.setdefault(next(iter(t.value.variables())), DEFAULT_INT)
                    return self.size(t.value)
                return DEFAULT_INT
            return 0.5 if t.kind is ScalarKind.FLOAT else True
        if isinstance(t, TList):
            return [self.value(t.elem) for _ in range(2)]
        if isinstance(t, TTuple):
            return tuple(self.value(e) for e in t.elems)
        if isinstance(t, TStruct):
            return self.struct(t)
        if isinstance(t, TOther) and t.what == "none":
            return None
        if isinstance(t, TDyn):
            raise InputError(f"`{name or 'a value'}` has type ?: say what to pass")
        raise InputError(f"cannot draw a value of type {t}")

    def shape(self, t: TTensor) -> tuple[int, ...]:
        """The shape drawn for a tensor of type ``t``: its row variable's dims, then its
        sizes (given, or drawn once per size variable)."""
        row = t.shape.row
        lead: tuple[int, ...] = ()
        if row is not None and row.name is not None:
            lead = self.rows.setdefault(row.name, DEFAULT_ROW)
        return lead + tuple(self.size(d.size) if d.size is not None else DEFAULT_SIZE
                            for d in t.shape.dims)

    def tensor(self, t: TTensor, name: str = "") -> torch.Tensor:
        dims = self.shape(t)
        dt = _CATEGORY_DEFAULT.get(t.dtype, t.dtype)
        device = str(t.device) if t.device.kind is not None else (self.device or "cpu")
        tdt = DT_TORCH[dt]
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"a random {t}" + (f" for `{name}`" if name else "") + " needs a "
                             "CUDA device, and this torch sees none", "drop the `@ cuda` "
                             "from the type, or run on a machine with a GPU")
        self._reserve(dims, tdt, t, name)
        if dt.value.startswith(("f", "bf", "c")):
            return torch.randn(dims, dtype=tdt, generator=self.gen).to(device)
        if dt is DT.BOOL:
            return (torch.rand(dims, generator=self.gen) > 0.5).to(device)
        return torch.randint(0, 2, dims, dtype=tdt, generator=self.gen).to(device)

    def _reserve(self, dims: tuple[int, ...], dtype: torch.dtype, t: TTensor,
                 name: str) -> None:
        """Refuse a tensor too large to draw, before allocating it."""
        count = 1
        for d in dims:
            count *= d
        shown = f"a random {t} with shape [{', '.join(map(str, dims))}]" + (
            f" for `{name}`" if name else "")
        help = "give smaller sizes (--size NAME=N, or the type in --arg), or pass the " \
               "tensor in a file"
        if count > MAX_ELEMENTS:
            raise InputError(f"{shown} would have {count} elements, more than the "
                             f"{MAX_ELEMENTS} gtdsl draws", help)
        nbytes = count * torch.empty((), dtype=dtype).element_size()
        limit = memory_bytes()
        if limit is not None and self.drawn_bytes + nbytes > limit // 2:
            raise InputError(f"{shown} would take {nbytes} bytes; with the "
                             f"{self.drawn_bytes} bytes drawn before it, more than half of "
                             f"this machine's memory ({limit} bytes)", help)
        self.drawn_bytes += nbytes

    def struct(self, t: TStruct) -> Any:
        info = self.structs(t.name) if self.structs is not None else None
        if info is None:
            raise InputError(f"unknown struct {t.name}")
        env: dict[str, Size] = {}
        for p, a in zip(info.params, t.args):
            env[p] = a if a is not None else Size.of(f"{t.name}.{p}")
        fields = {}
        for f, ft in info.field_types().items():
            fields[f] = self.value(substitute(ft, lambda v: env.get(v, KEEP), rows={}), f)
        cls = self.classes.get(t.name)
        return cls(**fields) if cls is not None else fields


__all__ = ["DEFAULT_INT", "DEFAULT_ROW", "DEFAULT_SIZE", "InputError", "MAX_ELEMENTS",
           "Sampler"]
