"""gtdsl's parameter structs under ``torch.distributed`` (docs/scaling.md).

- ``StructModule``: parameter structs (a model's ``params``, a head) as an ``nn.Module``, so
  that optimizers, ``DistributedDataParallel``, FSDP's ``fully_shard`` and ``state_dict``
  see them. Each tensor becomes an ``nn.Parameter`` registered under its field path
  (``encoder.layers.0.attention.query.weight``); before each forward the structs' fields are
  bound again to the module's current tensors, so a wrapper that swaps parameters (FSDP
  gathers the shards into new tensors for the forward) is what the gtdsl functions see.
- ``check_across_ranks``: at start-up, every rank's parameter shapes and dtypes, size
  bindings (and optionally the parameters' bytes) are gathered and compared with rank 0's; a
  rank that differs is a ``RankMismatchError`` raised on every rank, naming the field, the
  ranks and both values, instead of a collective that hangs or a wrong result.
- ``placements`` and ``distribute``: a tensor type's named dims mapped onto a device mesh's
  dims as DTensor placements: the dims ``shard`` names are ``Shard(i)`` on their mesh dim, a
  mesh dim no dim of the tensor maps to is ``Replicate()`` (weights, which have no batch
  dim, replicate on the data-parallel mesh dim).

``torch.distributed`` is imported when these are called, not when the module is imported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError


class RankMismatchError(GtdslError, RuntimeError):
    """Ranks that should agree (parameter shapes, dtypes, sizes, values) do not (GT0913)."""


class ShardingError(GtdslError, ValueError, TypeError):
    """A sharding or a struct module that cannot be built as asked (GT0914)."""


def _refuse(message: str, help: str) -> ShardingError:
    return ShardingError([Diagnostic("GT0914", message, None, (), (), help,
                                     path="<gtdsl.distributed>")])


# ---------------------------------------------------------------------- structs as modules
def _is_struct(value: Any) -> bool:
    return is_dataclass(value) and not isinstance(value, type)


def struct_tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside a parameter value (a struct, a list or tuple of them, a dict, a
    tensor), with its field path (``layers.0.ffn.up.weight``), in field order."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from struct_tensors(v, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from struct_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif _is_struct(value):
        for f in fields(value):
            yield from struct_tensors(getattr(value, f.name),
                                      f"{prefix}.{f.name}" if prefix else f.name)


class _Node(torch.nn.Module):
    """One struct (or list) of a ``StructModule``: its tensor fields as parameters, its
    struct and list fields as submodules; ``_bind`` puts the module's current tensors back."""

    def __init__(self, value: Any, path: str, trainable: bool) -> None:
        super().__init__()
        self._value = value
        self._tensor_fields: list[tuple[str | int, str]] = []  # (field or index, name here)
        items: list[tuple[str | int, Any]]
        if isinstance(value, list):
            items = list(enumerate(value))
        else:
            items = [(f.name, getattr(value, f.name)) for f in fields(value)]
        for key, v in items:
            name = str(key)
            where = f"{path}.{name}" if path else name
            if isinstance(v, torch.Tensor):
                if hasattr(self, name):
                    raise _refuse(f"the field `{where}` shadows an nn.Module attribute",
                                  "rename the struct's field")
                p = v if isinstance(v, torch.nn.Parameter) else torch.nn.Parameter(
                    v.detach(), requires_grad=trainable and v.is_floating_point())
                self.register_parameter(name, p)
                self._tensor_fields.append((key, name))
                self._set(key, p)
            elif _is_struct(v) or (isinstance(v, list) and v and
                                   all(_is_struct(x) or isinstance(x, (list, torch.Tensor))
                                       for x in v)):
                if hasattr(self, name):
                    raise _refuse(f"the field `{where}` shadows an nn.Module attribute",
                                  "rename the struct's field")
                self.add_module(name, _Node(v, where, trainable))

    def __getitem__(self, index: int) -> Any:
        """A list's element (``module.encoder.layers[0]``), as the struct is indexed."""
        if not isinstance(self._value, list):
            raise _refuse(f"{type(self._value).__name__} is a struct, not a list",
                          "index a list field; read a struct's fields by name")
        return getattr(self, str(index))

    def _set(self, key: str | int, tensor: torch.Tensor) -> None:
        if isinstance(key, int):
            self._value[key] = tensor
        else:
            setattr(self._value, key, tensor)

    def _bind(self) -> None:
        for key, name in self._tensor_fields:
            self._set(key, getattr(self, name))
        for child in self.children():
            if isinstance(child, _Node):
                child._bind()


class StructModule(torch.nn.Module):
    """Parameter structs as one ``nn.Module`` (see the module's docstring):
    ``StructModule(loss_fn, encoder=bert.params, head=head)``; calling it binds the structs
    to the module's tensors and calls ``forward_fn`` with the arguments. The structs are
    changed in place: their tensor fields become the module's parameters (floating tensors
    require grad unless ``trainable=False``)."""

    def __init__(self, forward_fn: Callable[..., Any] | None = None, trainable: bool = True,
                 **structs: Any) -> None:
        super().__init__()
        self._forward_fn = forward_fn
        self.structs = structs
        for name, value in structs.items():
            if not (_is_struct(value) or isinstance(value, list)):
                raise _refuse(f"`{name}` is a {type(value).__name__}, not a parameter struct "
                              "(or a list of them)", "pass the structs a model holds "
                              "(bert.params, a head), by name")
            self.add_module(name, _Node(value, name, trainable))

    def bind(self) -> None:
        """Point every struct field at the module's current tensor for it."""
        for child in self.children():
            if isinstance(child, _Node):
                child._bind()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_fn is None:
            raise _refuse("this StructModule was built without a forward function",
                          "give StructModule(forward_fn, ...) the function that computes "
                          "with the structs")
        self.bind()
        return self._forward_fn(*args, **kwargs)


# ---------------------------------------------------------------------- checks across ranks
def _named_tensors(value: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.nn.Module):
        return list(value.named_parameters()) + list(value.named_buffers())
    return list(struct_tensors(value))


def _describe(t: torch.Tensor) -> str:
    dtype = str(t.dtype).removeprefix("torch.")
    return f"{dtype}[{', '.join(str(n) for n in t.shape)}]"


def _digest(t: torch.Tensor) -> str:
    data = t.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def signature(params: Any, sizes: Mapping[str, int] | None = None,
              values: bool = False) -> dict[str, dict[str, str]]:
    """What ``check_across_ranks`` compares: each tensor's dtype and shape by field path (a
    module's parameter and buffer names), the size bindings, and with ``values`` a digest of
    each tensor's bytes."""
    tensors = _named_tensors(params)
    out: dict[str, dict[str, str]] = {
        "parameter": {name: _describe(t) for name, t in tensors},
        "size": {k: str(v) for k, v in (sizes or {}).items()}}
    if values:
        out["value of"] = {name: _digest(t) for name, t in tensors}
    return out


def mismatches(signatures: Sequence[Mapping[str, Mapping[str, str]]]) -> list[str]:
    """Where the ranks' signatures differ from rank 0's, one line each."""
    if not signatures:
        return []
    first = signatures[0]
    problems = []
    for rank, sig in enumerate(signatures[1:], 1):
        for kind in sorted(set(first) | set(sig)):
            mine, theirs = first.get(kind, {}), sig.get(kind, {})
            for key in list(mine) + [k for k in theirs if k not in mine]:
                a, b = mine.get(key, "nothing"), theirs.get(key, "nothing")
                if a != b:
                    problems.append(f"{kind} `{key}`: rank 0 has {a}, rank {rank} has {b}")
    return problems


def check_across_ranks(params: Any, sizes: Mapping[str, int] | None = None,
                       values: bool = False, group: Any = None, limit: int = 10) -> None:
    """Compare ``signature(params, sizes, values)`` across the ranks of ``group`` (the default
    process group): on any difference every rank raises ``RankMismatchError`` listing the
    first ``limit`` differences. A no-op when torch.distributed is not initialized."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    mine = signature(params, sizes, values)
    gathered: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, mine, group=group)
    problems = mismatches(gathered)
    if problems:
        more = len(problems) - limit
        raise RankMismatchError([Diagnostic(
            "GT0913", f"the {len(gathered)} ranks do not agree (each rank must build the same "
            "model)", None, (), tuple(problems[:limit]) + (
                (f"... and {more} more",) if more > 0 else ()),
            "build the model from the same folder, config and seed on every rank",
            path="<gtdsl.distributed>")])


# ---------------------------------------------------------------------- placements
def _dims(tensor_type: Any) -> tuple[list[str | None], str | None]:
    """A tensor type's dim labels (a dim without a label is named by its size variable) and
    the leading variadic part's name (``""`` for ``...``), or None without one."""
    if isinstance(tensor_type, str):
        from gtdsl.syntax.parse import parse_type

        tensor_type = parse_type(tensor_type)
    shape = getattr(tensor_type, "shape", None)
    if shape is None or not hasattr(shape, "dims"):
        raise _refuse(f"{tensor_type!r} is not a tensor type",
                      "give a tensor type or its spelling, f32[b, s, hidden=D]")
    labels: list[str | None] = []
    for d in shape.dims:
        label = d.label
        if label is None:
            size = d.size
            label = getattr(size, "name", None)
            if not isinstance(label, str):
                label = None
        labels.append(label)
    part = getattr(shape, "variadic", None) or getattr(shape, "row", None)
    variadic = None if part is None else (getattr(part, "name", None) or "")
    return labels, variadic


def placements(tensor_type: Any, mesh: Any, shard: Mapping[str, str],
               ndim: int | None = None) -> tuple[Any, ...]:
    """DTensor placements, one per dim of ``mesh`` (a ``DeviceMesh`` with dim names, or the
    names themselves), for a tensor of ``tensor_type`` (a gtdsl tensor type or its spelling,
    ``"f32[b, s, hidden=D]"``): ``shard`` maps dim labels to mesh dim names; a mesh dim that
    a dim of this tensor maps to is ``Shard(i)`` (``i`` that dim's position), any other is
    ``Replicate()``. Behind a leading variadic part, positions count from the end (or from
    ``ndim``, the tensor's rank, when given)."""
    from torch.distributed.tensor import Replicate, Shard

    names = list(getattr(mesh, "mesh_dim_names", None) or ()) if not isinstance(
        mesh, (list, tuple)) else list(mesh)
    if not names or any(not isinstance(n, str) for n in names):
        raise _refuse("the mesh has no named dims",
                      "give a device mesh with named dims (init_device_mesh(..., "
                      "mesh_dim_names=(\"dp\",))) or the names")
    unknown = sorted(set(shard.values()) - set(names))
    if unknown:
        raise _refuse(f"`shard` names mesh dims {unknown} that the mesh {tuple(names)} "
                      "does not have", "map dim labels to the mesh's dim names")
    labels, variadic = _dims(tensor_type)
    if variadic and variadic in shard:
        raise _refuse(f"`*{variadic}` is a variadic part, of dims unknown to the type",
                      "shard a named dim")
    out: list[Any] = [Replicate()] * len(names)
    taken: dict[int, str] = {}  # mesh dim -> the label sharded on it
    for i, label in enumerate(labels):
        if label is None or label not in shard:
            continue
        mesh_dim = names.index(shard[label])
        if mesh_dim in taken:
            raise _refuse(f"dims `{taken[mesh_dim]}` and `{label}` both shard on mesh dim "
                          f"`{shard[label]}`", "shard one dim per mesh dim")
        taken[mesh_dim] = label
        pos = i
        if variadic is not None:
            pos = i - len(labels) if ndim is None else ndim - len(labels) + i
        out[mesh_dim] = Shard(pos)
    return tuple(out)


def distribute(tensor: torch.Tensor, tensor_type: Any, mesh: Any,
               shard: Mapping[str, str]) -> Any:
    """``tensor`` (the whole tensor, the same on every rank) as a DTensor on ``mesh`` with
    the placements its type's named dims give (``placements``)."""
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(tensor, mesh, placements(tensor_type, mesh, shard, tensor.ndim))


__all__ = ["RankMismatchError", "ShardingError", "StructModule", "check_across_ranks", "distribute",
           "mismatches", "placements", "signature", "struct_tensors"]
