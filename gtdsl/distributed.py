"""gtdsl's parameter structs under ``torch.distributed`` (docs/scaling.md).

- ``StructModule``: parameter structs (a model's ``params``, a head) as an ``nn.Module``, so
  that optimizers, ``DistributedDataParallel``, FSDP's ``fully_shard`` and ``state_dict``
  see them. Each tensor becomes an ``nn.Parameter`` registered under its field path
  (``encoder.layers.0.attention.query.weight``), in struct fields, lists and tuples; one
  tensor in several fields is one parameter (tied); a tensor that cannot be bound is refused.
  Before each forward the structs' fields are bound again to the module's current tensors,
  so a wrapper that swaps parameters (FSDP gathers the shards into new tensors for the
  forward) is what the gtdsl functions see.
- ``check_across_ranks``: at start-up, every rank's parameter shapes and dtypes, size
  bindings (and optionally the parameters' bytes) are gathered and compared with rank 0's; a
  rank that differs is a ``RankMismatchError`` raised on every rank, naming the field, the
  ranks and both values, instead of a collective that hangs or a wrong result. A DTensor
  (FSDP's sharded parameters) is compared by its global shape and placements, and its value
  by the piece each rank holds, among the ranks that hold the same piece.
- ``placements`` and ``distribute``: a tensor type's named dims mapped onto a device mesh's
  dims as DTensor placements: the dims ``shard`` names are ``Shard(i)`` on their mesh dim, a
  mesh dim no dim of the tensor maps to is ``Replicate()`` (weights, which have no batch
  dim, replicate on the data-parallel mesh dim; labels the type lacks are ignored, so one
  map serves a whole model). ``distribute`` checks the tensor's rank and dtype against the
  type.

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


def _holds_tensors(value: Any) -> bool:
    return next(iter(struct_tensors(value)), None) is not None


class _Node(torch.nn.Module):
    """One struct, list or tuple of a ``StructModule``: its tensor fields as parameters, its
    struct, list and tuple fields that hold tensors as submodules; ``_bind`` puts the
    module's current tensors back (a tuple, which cannot change, is rebuilt and put back in
    its parent's field). ``tied`` maps each tensor seen so far (by ``id``) to its parameter,
    so that a tensor held in two places is one parameter registered in both."""

    def __init__(self, value: Any, path: str, trainable: bool,
                 tied: dict[int, tuple[torch.Tensor, torch.nn.Parameter]]) -> None:
        super().__init__()
        self._tuple_type: type | None = type(value) if isinstance(value, tuple) else None
        self._value = list(value) if isinstance(value, tuple) else value
        self._tensor_fields: list[tuple[str | int, str]] = []  # (field or index, name here)
        self._child_fields: list[tuple[str | int, str]] = []
        items: list[tuple[str | int, Any]]
        if isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        else:
            items = [(f.name, getattr(value, f.name)) for f in fields(value)]
        for key, v in items:
            name = str(key)
            where = f"{path}.{name}" if path else name
            if isinstance(v, torch.Tensor):
                self._check_name(name, where)
                p = _parameter(v, trainable, tied)
                self.register_parameter(name, p)
                self._tensor_fields.append((key, name))
                self._set(key, p)
            elif not _holds_tensors(v):
                continue  # None, numbers, strings, empty lists: nothing to train
            elif _is_struct(v) or isinstance(v, (list, tuple)):
                self._check_name(name, where)
                child = _Node(v, where, trainable, tied)
                self.add_module(name, child)
                self._child_fields.append((key, name))
                if child._tuple_type is not None:
                    self._set(key, child._rebuilt)
            else:  # a dict, or anything else struct_tensors looks into
                raise _refuse(f"the field `{where}` is a {type(v).__name__} holding tensors, "
                              "which a StructModule cannot make parameters",
                              "hold tensors in struct fields, lists or tuples")

    def _check_name(self, name: str, where: str) -> None:
        if hasattr(self, name):
            raise _refuse(f"the field `{where}` shadows an nn.Module attribute",
                          "rename the struct's field")

    @property
    def _rebuilt(self) -> Any:
        """The struct or list (changed in place), or a new tuple of the current items."""
        if self._tuple_type is None:
            return self._value
        if hasattr(self._tuple_type, "_make"):  # a named tuple
            return self._tuple_type._make(self._value)
        return self._tuple_type(self._value)

    def __getitem__(self, index: int) -> Any:
        """A list's element (``module.encoder.layers[0]``), as the struct is indexed."""
        if not isinstance(self._value, list):
            raise _refuse(f"{type(self._value).__name__} is a struct, not a list",
                          "index a list field; read a struct's fields by name")
        return getattr(self, str(index))

    def _set(self, key: str | int, value: Any) -> None:
        if isinstance(key, int):
            self._value[key] = value
        else:
            setattr(self._value, key, value)

    def _bind(self) -> None:
        for key, name in self._tensor_fields:
            self._set(key, getattr(self, name))
        for key, name in self._child_fields:
            child = getattr(self, name)
            child._bind()
            if child._tuple_type is not None:
                self._set(key, child._rebuilt)


def _parameter(t: torch.Tensor, trainable: bool,
               tied: dict[int, tuple[torch.Tensor, torch.nn.Parameter]]) -> torch.nn.Parameter:
    """The parameter for ``t``: the one made before when ``t`` was seen in another field."""
    seen = tied.get(id(t))
    if seen is not None:
        return seen[1]
    p = t if isinstance(t, torch.nn.Parameter) else torch.nn.Parameter(
        t.detach(), requires_grad=trainable and t.is_floating_point())
    tied[id(t)] = (t, p)  # the tensor is kept, so its id is not reused
    tied[id(p)] = (p, p)
    return p


class StructModule(torch.nn.Module):
    """Parameter structs as one ``nn.Module`` (see the module's docstring):
    ``StructModule(loss_fn, encoder=bert.params, head=head)``; calling it binds the structs
    to the module's tensors and calls ``forward_fn`` with the arguments. The structs are
    changed in place: their tensor fields become the module's parameters (floating tensors
    require grad unless ``trainable=False``), in struct fields, lists and tuples (a tuple
    field is replaced by a tuple of the parameters). One tensor held in several fields is
    one parameter registered under each path (tied: ``parameters()`` gives it once, an
    optimizer updates it once). Every tensor ``struct_tensors`` finds in the structs is a
    parameter of the module: what cannot be bound (a dict of tensors) is refused, never
    left out of training."""

    def __init__(self, forward_fn: Callable[..., Any] | None = None, trainable: bool = True,
                 **structs: Any) -> None:
        super().__init__()
        self._forward_fn = forward_fn
        self.structs = structs
        tied: dict[int, tuple[torch.Tensor, torch.nn.Parameter]] = {}
        for name, value in structs.items():
            if isinstance(value, tuple):
                raise _refuse(f"`{name}` is a tuple, which cannot be changed in place to hold "
                              "the parameters", "pass a list, or the struct that holds the "
                              "tuple")
            if not (_is_struct(value) or isinstance(value, list)):
                raise _refuse(f"`{name}` is a {type(value).__name__}, not a parameter struct "
                              "(or a list of them)", "pass the structs a model holds "
                              "(bert.params, a head), by name")
            self.add_module(name, _Node(value, name, trainable, tied))
        mine = {id(p) for p in self.parameters()}
        for name, value in structs.items():
            for path, t in struct_tensors(value, name):
                if id(t) not in mine:
                    raise _refuse(f"the tensor at `{path}` is not a parameter of the module",
                                  "hold tensors in struct fields, lists or tuples")

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


def _dtensor_type() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without distributed support has no DTensors
        return None
    return DTensor


def _describe(t: torch.Tensor, dtensor: type | None = None) -> str:
    dtype = str(t.dtype).removeprefix("torch.")
    text = f"{dtype}[{', '.join(str(n) for n in t.shape)}]"
    if dtensor is not None and isinstance(t, dtensor):  # the global shape, and how it is split
        d: Any = t
        text += f" as {tuple(d.placements)} on mesh {tuple(d.device_mesh.shape)}"
    return text


def _digest(t: torch.Tensor) -> str:
    data = t.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def _piece(name: str, t: Any) -> str | None:
    """Which piece of a DTensor this rank holds: None when every rank holds it whole
    (replicated on every mesh dim), else the name with this rank's place on each mesh dim
    that splits it (``weight [dp=1]``); ranks with the same piece hold replicas."""
    from torch.distributed.tensor import Replicate

    mesh = t.device_mesh
    coordinate = mesh.get_coordinate() or ()
    names = mesh.mesh_dim_names or tuple(str(i) for i in range(mesh.ndim))
    where = [f"{names[i]}={coordinate[i]}" for i, p in enumerate(t.placements)
             if not isinstance(p, Replicate)]
    return f"{name} [{', '.join(where)}]" if where else None


def signature(params: Any, sizes: Mapping[str, int] | None = None,
              values: bool = False) -> dict[str, dict[str, str]]:
    """What ``check_across_ranks`` compares: each tensor's dtype and shape by field path (a
    module's parameter and buffer names; a DTensor's global shape and placements), the size
    bindings, and with ``values`` a digest of each tensor's bytes. A DTensor's digest is of
    the piece this rank holds (no collective): a replicated one's under ``value of`` as a
    plain tensor's, a sharded one's under ``shard of``, keyed by the rank's place on the mesh
    dims that split it, so that only ranks holding the same piece are compared."""
    tensors = _named_tensors(params)
    dtensor = _dtensor_type()
    out: dict[str, dict[str, str]] = {
        "parameter": {name: _describe(t, dtensor) for name, t in tensors},
        "size": {k: str(v) for k, v in (sizes or {}).items()}}
    if values:
        out["value of"], shards = {}, {}
        for name, t in tensors:
            if dtensor is not None and isinstance(t, dtensor):
                d: Any = t
                piece = _piece(name, d)
                if piece is not None:
                    shards[piece] = _digest(d.to_local())
                else:
                    out["value of"][name] = _digest(d.to_local())
            else:
                out["value of"][name] = _digest(t)
        if shards:
            out["shard of"] = shards
    return out


def mismatches(signatures: Sequence[Mapping[str, Mapping[str, str]]]) -> list[str]:
    """Where the ranks' signatures differ from rank 0's, one line each; a shard's digest is
    compared with that of the first rank that holds the same piece (ranks holding other
    pieces are not compared)."""
    if not signatures:
        return []
    first = signatures[0]
    problems = []
    for rank, sig in enumerate(signatures[1:], 1):
        for kind in sorted((set(first) | set(sig)) - {"shard of"}):
            mine, theirs = first.get(kind, {}), sig.get(kind, {})
            for key in list(mine) + [k for k in theirs if k not in mine]:
                a, b = mine.get(key, "nothing"), theirs.get(key, "nothing")
                if a != b:
                    problems.append(f"{kind} `{key}`: rank 0 has {a}, rank {rank} has {b}")
    holder: dict[str, tuple[int, str]] = {}
    for rank, sig in enumerate(signatures):
        for key, digest in sig.get("shard of", {}).items():
            if key not in holder:
                holder[key] = (rank, digest)
            elif holder[key][1] != digest:
                problems.append(f"shard of `{key}`: rank {holder[key][0]} has {holder[key][1]}, "
                                f"rank {rank} has {digest}")
    return problems


def check_across_ranks(params: Any, sizes: Mapping[str, int] | None = None,
                       values: bool = False, group: Any = None, limit: int = 10) -> None:
    """Compare ``signature(params, sizes, values)`` across the ranks of ``group`` (the default
    process group): on any difference every rank raises ``RankMismatchError`` listing the
    first ``limit`` differences. A no-op when torch.distributed is not initialized. The only
    collective is one ``all_gather_object`` (a DTensor's value is digested from the piece this
    rank holds, see ``signature``), so ranks whose models differ never wait on each other."""
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
    labels, variadic, _, _ = _read_type(tensor_type)
    return labels, variadic


def _read_type(tensor_type: Any) -> tuple[list[str | None], str | None, str | None, str]:
    """``_dims``, the dtype the type states (``"f32"``, ``"float"``; None for any) and the
    type's spelling."""
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
    dtype = getattr(getattr(tensor_type, "dtype", None), "value", None)
    return labels, variadic, dtype if dtype not in (None, "?") else None, str(tensor_type)


_EXACT = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32,
          "f64": torch.float64, "i8": torch.int8, "i16": torch.int16, "i32": torch.int32,
          "i64": torch.int64, "u8": torch.uint8, "bool": torch.bool, "c32": torch.complex32,
          "c64": torch.complex64, "c128": torch.complex128}
if hasattr(torch, "bcomplex32"):  # torch 2.14
    _EXACT["bc32"] = torch.bcomplex32
_SIGNED = (torch.int8, torch.int16, torch.int32, torch.int64)


def _dtype_fits(dtype: torch.dtype, stated: str) -> bool:
    if stated in _EXACT:
        return dtype == _EXACT[stated]
    if stated == "float":
        return dtype.is_floating_point
    if stated == "complex":
        return dtype.is_complex
    if stated == "int":
        return dtype in _SIGNED
    if stated == "uint":
        return dtype == torch.uint8 or str(dtype).startswith("torch.uint")
    return True


def _rank_error(spelling: str, ndim: int, named: int, variadic: str | None) -> ShardingError:
    want = f"{named} dim{'s' * (named != 1)}"
    if variadic is not None:
        want = f"a variadic part and {want}"
    return _refuse(f"a tensor of rank {ndim} is not a `{spelling}`: the type has {want}",
                   "give the tensor the type describes, or the type of the tensor")


def placements(tensor_type: Any, mesh: Any, shard: Mapping[str, str],
               ndim: int | None = None) -> tuple[Any, ...]:
    """DTensor placements, one per dim of ``mesh`` (a ``DeviceMesh`` with dim names, or the
    names themselves), for a tensor of ``tensor_type`` (a gtdsl tensor type or its spelling,
    ``"f32[b, s, hidden=D]"``): ``shard`` maps dim labels to mesh dim names; a mesh dim that
    a dim of this tensor maps to is ``Shard(i)`` (``i`` that dim's position), any other is
    ``Replicate()``.

    ``ndim``, the tensor's rank, is checked against the type when given (equal to the number
    of dims, or at least that behind a variadic part). Behind a leading variadic part
    (``f32[*b, hidden=D]``) a dim's position depends on the rank: sharding such a dim needs
    ``ndim`` (``distribute`` passes the tensor's); every ``Shard`` is a position from the
    start, never a negative one.

    Labels of ``shard`` that the type does not have are not an error: one map is meant for
    all the tensors of a model (``{"b": "dp", "out": "tp"}``), and a tensor without a
    sharded label is replicated (a weight, which has no ``b``, on the data-parallel mesh
    dim). Check the spelling of the labels: a misspelled one replicates too."""
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
    labels, variadic, _, spelling = _read_type(tensor_type)
    if ndim is not None and (ndim < len(labels) or (variadic is None and ndim != len(labels))):
        raise _rank_error(spelling, ndim, len(labels), variadic)
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
            if ndim is None:
                raise _refuse(f"`{label}` follows the variadic part of `{spelling}`: its "
                              "position depends on the tensor's rank",
                              "give ndim, the tensor's rank (distribute passes it)")
            pos = ndim - len(labels) + i
        out[mesh_dim] = Shard(pos)
    return tuple(out)


def distribute(tensor: torch.Tensor, tensor_type: Any, mesh: Any,
               shard: Mapping[str, str]) -> Any:
    """``tensor`` (the whole tensor, the same on every rank) as a DTensor on ``mesh`` with
    the placements its type's named dims give (``placements``). The tensor must be of the
    type: its rank that of the type's dims (at least that behind a variadic part), its dtype
    the one the type states (``f32``; ``float`` any floating one; none: any)."""
    from torch.distributed.tensor import distribute_tensor

    _, _, dtype, spelling = _read_type(tensor_type)
    if dtype is not None and not _dtype_fits(tensor.dtype, dtype):
        raise _refuse(f"a {str(tensor.dtype).removeprefix('torch.')} tensor is not a "
                      f"`{spelling}`", "give the tensor the type describes, or the type of "
                      "the tensor")
    return distribute_tensor(tensor, mesh, placements(tensor_type, mesh, shard, tensor.ndim))


__all__ = ["RankMismatchError", "ShardingError", "StructModule", "check_across_ranks", "distribute",
           "mismatches", "placements", "signature", "struct_tensors"]
