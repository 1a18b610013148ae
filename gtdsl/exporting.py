"""Shape-polymorphic export: a gtdsl function, or Python code that calls gtdsl functions (a
model's entry point such as ``bert.hidden_states``), as a ``torch.export.ExportedProgram``
whose dims are dynamic exactly where the gtdsl types have size variables.

``export(fn, *example_args, **constants)``:

- ``fn`` a gtdsl function: each tensor in the arguments (inside lists, tuples and structs
  too) takes the dims of its declared type. A dim whose size is a variable (``b``, ``s``)
  becomes a ``torch.export.Dim`` of that name, one per variable, shared by every dim the
  types give it; a linear form of one variable (``2*d``, ``n + 1``) becomes the derived dim
  torch states the same relation with; a fixed size stays static. Sizes fixed by an int
  argument (``h: int[H]``) or a size keyword (``H=12``) are constants of the program, so
  ``H*K`` with ``H`` given is ``12*K``: ``K`` is dynamic and the dim a multiple of 12.
- ``fn`` any other callable (a bound method of a model, a lambda): it runs once on the
  example arguments, and each tensor argument takes the dims of the first gtdsl parameter
  it reaches unchanged; sizes that tensors the callable holds itself (a model's weights)
  fix are constants. A tensor that reaches no gtdsl parameter unchanged is left to torch
  (``Dim.AUTO``). The weights are constants of the program.

The program is traced through the functions' entries, so the checks their types imply
(sizes equal across arguments, fixed sizes, dtypes) are guards of the program: at other
sizes it gives gtdsl's results, and arguments the types refuse are refused by
``program.module()``. A relation torch cannot state (a product of two dynamic variables) or a
specialization torch finds while tracing is a GT0912 diagnostic naming the argument and the
dim, never a torch traceback. Keyword arguments are constants of the program.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError
from gtdsl.types import Size, TList, TScalar, TStruct, TTensor, TTuple, Type
from gtdsl.types.core import ScalarKind
from gtdsl.types.subst import KEEP, substitute


# what torch found of the dims while tracing: a variable's range (min, max), or under the key
# "=t" the variable torch found `t` equal to
Bounds = dict[str, tuple[Any, Any]]


class ExportError(GtdslError):
    """A function that cannot be exported with the dims its types declare."""


def _error(message: str, help: str | None = None, notes: tuple[str, ...] = ()) -> ExportError:
    return ExportError([Diagnostic("GT0912", message, None, (), notes, help,
                                   path="<gtdsl.export>")])


def _runtime_function(fn: Any) -> Any:
    """The compiled gtdsl function behind ``fn`` (a function of a loaded module, or an
    ``@gtdsl.jit`` function, compiled first), or None for any other callable."""
    compiled = getattr(fn, "compiled", None)
    if callable(compiled) and hasattr(fn, "__gtdsl_jit__"):
        fn = compiled()
    if hasattr(fn, "_params") and hasattr(fn, "qualname") and hasattr(fn, "_bind"):
        return fn
    return None


# ---------------------------------------------------------------------- the calls


@dataclasses.dataclass
class _Call:
    """One call of a gtdsl function: its parameters' types and the values they got."""

    fn: Any
    values: list[Any]
    sizes: dict[str, int]


_RECORDING = threading.Lock()


class _Made(torch.overrides.TorchFunctionMode):
    """Keeps every tensor torch makes while it is active (what a callable computes from its
    inputs, as opposed to what it holds: a model's weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[int, Any] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        given = {id(t) for t, _ in _leaves([args, kwargs or {}], "")}
        for t, _ in _leaves(out, ""):
            if id(t) not in given:  # `w.contiguous()` may give `w` itself: still held
                self.made[id(t)] = t  # kept alive: ids stay unique while recording
        return out


@contextmanager
def _recording(calls: list[_Call], made: _Made) -> Iterator[None]:
    """Every call of a gtdsl function from Python while the block runs, in order, and
    every tensor torch makes meanwhile (in ``made``)."""
    from gtdsl.runtime.jit import LIVE

    with _RECORDING, made:
        swapped = []
        for f in list(LIVE):
            old = f.__class__
            call = f.__call__

            def record(*args: Any, _f: Any = f, _call: Any = call, **kwargs: Any) -> Any:
                try:
                    values, sizes = _f._bind(*args, **kwargs)
                    calls.append(_Call(_f, list(values),
                                       {k: v for k, v in sizes.items() if v is not None}))
                except Exception:  # noqa: BLE001 - the call itself reports a wrong call
                    pass
                return _call(*args, **kwargs)

            f.__class__ = type(old.__name__, (old,), {"__call__": staticmethod(record)})
            swapped.append((f, old))
        try:
            yield
        finally:
            for f, old in swapped:
                f.__class__ = old


# ---------------------------------------------------------------------- types of values


def _typed_tensors(t: Type | None, v: Any, struct: Any,
                   out: list[tuple[torch.Tensor, TTensor | None]]) -> None:
    """Each tensor inside ``v`` with the type the parameter type ``t`` gives it (None where
    no type says: an unannotated part)."""
    if isinstance(v, torch.Tensor):
        out.append((v, t if isinstance(t, TTensor) else None))
    elif isinstance(v, (list, tuple)):
        if isinstance(t, TList):
            for x in v:
                _typed_tensors(t.elem, x, struct, out)
        elif isinstance(t, TTuple) and len(t.elems) == len(v):
            for et, x in zip(t.elems, v):
                _typed_tensors(et, x, struct, out)
        else:
            for x in v:
                _typed_tensors(None, x, struct, out)
    elif isinstance(v, dict):
        for x in v.values():
            _typed_tensors(None, x, struct, out)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        decl = struct(t.name) if isinstance(t, TStruct) else None
        if decl is None:
            for f in dataclasses.fields(v):
                _typed_tensors(None, getattr(v, f.name), struct, out)
            return
        args = dict(zip(decl.params, t.args))  # type: ignore[union-attr]

        def env(name: str) -> object:
            return args[name] if name in args else KEEP

        for f in decl.fields:
            _typed_tensors(substitute(f.type, env, {}), getattr(v, f.name, None), struct, out)


def _solve(size: Size, n: int, fixed: dict[str, int]) -> None:
    """Fix the one unfixed variable of ``size`` from its value ``n`` where ``size`` is
    linear in it (``H*K`` = 768 with ``H`` fixed at 12 fixes ``K`` at 64)."""
    rest = size.substitute(lambda v: Size.of(fixed[v]) if v in fixed else None)
    free = rest.variables()
    if len(free) != 1:
        return
    v = next(iter(free))
    form = rest.linear_coefficient(v)
    if form is None:
        return
    a, b = form
    c = b.constant()
    if c is not None and a != 0 and (n - c) % a == 0 and (n - c) // a >= 0:
        fixed[v] = (n - c) // a


def _fixed_sizes(call: _Call, inputs: set[int]) -> dict[str, int]:
    """The size variables of ``call`` that values outside the exported inputs fix: int
    arguments (``int[H]``), size keywords, and the dims of tensors the callable holds (a
    model's weights; ``inputs`` holds the ids of the exported inputs and of what was computed
    from them)."""
    fixed = dict(call.sizes)
    held: list[tuple[torch.Tensor, TTensor | None]] = []
    struct = call.fn.module.program.struct
    for (_, t), v in zip(call.fn._params, call.values):
        if isinstance(t, TScalar) and t.kind is ScalarKind.INT and t.value is not None and \
                isinstance(v, int) and not isinstance(v, bool):
            _solve(t.value, v, fixed)  # ints are constants of an exported program
        _typed_tensors(t, v, struct, held)
    for _ in range(4):  # a few rounds: a size one weight fixes solves another's dims
        for tensor, tt in held:
            if tt is None or id(tensor) in inputs or tt.shape.row is not None or \
                    len(tt.shape.dims) != tensor.dim():
                continue
            for d, n in zip(tt.shape.dims, tensor.shape):
                if d.size is not None and d.size.variables() - set(fixed):
                    _solve(d.size, int(n), fixed)
    return fixed


# ---------------------------------------------------------------------- dims


def _auto() -> Any:
    from torch.export import Dim

    return getattr(Dim, "AUTO", None)


def _dim(size: Size | None, fixed: dict[str, int], dims: dict[str, Any], where: str,
         bounds: Bounds) -> Any:
    """The export dim of a dim of size ``size``: None (static), a named ``Dim``, or a
    derived one (``2*d + 1``); an unknown size (``?``) is left to torch (``Dim.AUTO``)."""
    from torch.export import Dim

    if size is None:
        return _auto()
    shown = size
    size = size.substitute(lambda v: Size.of(fixed[v]) if v in fixed else None)
    if size.constant() is not None:
        return None
    variables = sorted(size.variables())
    if len(variables) != 1:
        raise _error(f"{where} has size {shown}: torch.export states no relation between "
                     "two dynamic size variables", help="give the sizes but one as int "
                     "arguments or size keywords (`H=12`), give this dim a size variable of "
                     "its own, or export at a fixed size",
                     notes=(f"dynamic variables: {', '.join(variables)}",))
    v = variables[0]
    form = size.linear_coefficient(v)
    b = form[1].constant() if form is not None else None
    if form is None or b is None or form[0] < 1:
        raise _error(f"{where} has size {shown}: torch.export derives dims only as "
                     f"a*{v} + b", help="give this dim a size variable of its own")
    a = form[0]
    v = bounds.get("=" + v, (v, None))[0]
    if "#" + v in bounds:  # torch found the callable needs v constant
        return None
    if v not in dims:
        low, high = bounds.get(v, (None, None))
        dims[v] = Dim(v, **({"min": low} if low is not None else {}),
                      **({"max": high} if high is not None else {}))
    base = dims[v]
    return base if (a, b) == (1, 0) else base * a + b


def _spec(tensor: torch.Tensor, t: TTensor | None, fixed: dict[str, int],
          dims: dict[str, Any], where: str,
          bounds: Bounds) -> Any:
    """One tensor's ``dynamic_shapes`` entry: dim index -> Dim (None: all static)."""
    if t is None:
        auto = _auto()
        return None if auto is None else {i: auto for i in range(tensor.dim())}
    known = t.shape.dims
    lead = tensor.dim() - len(known)
    if lead < 0 or (lead > 0 and t.shape.row is None):
        return None  # the call refuses it: the trace reports that
    spec: dict[int, Any] = {}
    auto = _auto()
    for i in range(lead):  # a row variable's dims (`*b`): left to torch
        if auto is not None:
            spec[i] = auto
    for i, d in enumerate(known):
        dim = _dim(d.size, fixed, dims, f"{where} dim {lead + i}", bounds)
        if dim is not None:
            n = int(tensor.shape[lead + i])
            if n < 2:
                raise _error(f"{where} dim {lead + i} (`{d.size}`) has example size {n}: "
                             "torch.export makes a dim of example size 0 or 1 a constant",
                             help="give every dim whose type has a size variable an example "
                             "size of 2 or more")
            spec[lead + i] = dim
    return spec or None


def _leaves(v: Any, path: str) -> Iterator[tuple[torch.Tensor, str]]:
    if isinstance(v, torch.Tensor):
        yield v, path
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from _leaves(x, f"{path}[{i}]")
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves(x, f"{path}[{k!r}]")
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        for f in dataclasses.fields(v):
            yield from _leaves(getattr(v, f.name), f"{path}.{f.name}")


def _tree(v: Any, specs: dict[int, Any]) -> Any:
    """``v``'s ``dynamic_shapes``: its structure, each tensor replaced by its spec (a struct
    by the list of its fields' specs, as torch reads a registered dataclass)."""
    if isinstance(v, torch.Tensor):
        return specs.get(id(v))
    if isinstance(v, list):
        return [_tree(x, specs) for x in v]
    if isinstance(v, tuple):
        return tuple(_tree(x, specs) for x in v)
    if isinstance(v, dict):
        return {k: _tree(x, specs) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return [_tree(getattr(v, f.name), specs) for f in dataclasses.fields(v)]
    return None


def _shapes(calls: list[_Call], args: tuple[Any, ...], names: list[str], made: set[int],
            bounds: Bounds) -> tuple[Any, ...]:
    leaves = [(t, p) for a, n in zip(args, names) for t, p in _leaves(a, n)]
    inputs = {id(t) for t, _ in leaves}
    typed: dict[int, tuple[TTensor | None, dict[str, int]]] = {}
    for call in calls:
        fixed = _fixed_sizes(call, inputs | made)
        found: list[tuple[torch.Tensor, TTensor | None]] = []
        for (_, t), v in zip(call.fn._params, call.values):
            _typed_tensors(t, v, call.fn.module.program.struct, found)
        for tensor, tt in found:
            if id(tensor) in inputs and id(tensor) not in typed:
                typed[id(tensor)] = (tt, fixed)
    bounds = _least(leaves, typed, bounds)
    dims: dict[str, Any] = {}
    specs: dict[int, Any] = {}
    for tensor, path in leaves:
        if id(tensor) in specs:
            continue
        tt, fixed = typed.get(id(tensor), (None, {}))
        specs[id(tensor)] = _spec(tensor, tt, fixed, dims, f"`{path}`", bounds)
    return tuple(_tree(a, specs) for a in args)


def _least(leaves: list[tuple[torch.Tensor, str]],
           typed: dict[int, tuple[TTensor | None, dict[str, int]]], bounds: Bounds) -> Bounds:
    """``bounds`` with each variable's least value where a dim is it less a constant
    (``n - 1``: torch wants every derived dim's range at or above 0, so ``n >= 1``)."""
    out = dict(bounds)
    for tensor, _ in leaves:
        tt, fixed = typed.get(id(tensor), (None, {}))
        for d in tt.shape.dims if tt is not None else ():
            if d.size is None:
                continue
            size = d.size.substitute(lambda v: Size.of(fixed[v]) if v in fixed else None)
            v = size.single_variable() or next(iter(size.variables()), None)
            form = size.linear_coefficient(v) if v is not None and len(
                size.variables()) == 1 else None
            b = form[1].constant() if form is not None else None
            if v is None or form is None or b is None or b >= 0 or form[0] < 1:
                continue
            need = -(b // form[0])  # ceil(-b / a)
            low, high = out.get(v, (None, None))
            if low is None or low < need:  # with a max: torch fails to word a violation of
                out[v] = (need, high if high is not None else 2 ** 62)  # an unbounded one
    return out


def dynamic_shapes(fn: Any, args: tuple[Any, ...], **constants: Any) -> tuple[Any, ...]:
    """The ``dynamic_shapes`` of ``torch.export.export`` for ``fn`` at ``args``: one entry
    per argument (a dict dim index -> Dim for a tensor, the same structure for lists,
    tuples and structs, None for the others)."""
    return _plan(fn, _distinct(args), constants)[1]({})


def _distinct(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with a tensor passed in several places cloned after its first: each place
    takes the dims of its own parameter (torch.export would tie the places' dims)."""
    seen: set[int] = set()

    def once(t: torch.Tensor) -> torch.Tensor:
        if id(t) in seen:
            return t.clone()
        seen.add(id(t))
        return t

    return tuple(_map_tensors(a, once) for a in args)


def _map_tensors(v: Any, f: Any) -> Any:
    """``v`` rebuilt (lists, tuples, dicts, structs) with ``f`` of each tensor in it."""
    if isinstance(v, torch.Tensor):
        return f(v)
    if isinstance(v, list):
        return [_map_tensors(x, f) for x in v]
    if isinstance(v, tuple):
        return tuple(_map_tensors(x, f) for x in v)
    if isinstance(v, dict):
        return {k: _map_tensors(x, f) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return dataclasses.replace(v, **{field.name: _map_tensors(getattr(v, field.name), f)
                                          for field in dataclasses.fields(v)})
    return v


def _plan(fn: Any, args: tuple[Any, ...], constants: dict[str, Any]
          ) -> tuple[Any, Any]:
    """The callable to export, and a function of the dims' bounds giving the
    ``dynamic_shapes``."""
    target = _runtime_function(fn)
    if target is not None:
        try:
            values, sizes = target._bind(*args, **constants)
        except TypeError as e:
            raise _error(f"the example arguments do not fit `{target.qualname}`: {e}",
                         help="pass one example value per parameter, in order") from None
        call = [_Call(target, list(values), {k: v for k, v in sizes.items()
                                             if v is not None})]
        names = [n for n, _ in target._params]
        return target, lambda bounds: _shapes(call, args, names, set(), bounds)
    if not callable(fn):
        raise _error(f"`gtdsl.export` takes a gtdsl function or a callable that calls "
                     f"gtdsl functions, not {type(fn).__name__}",
                     help="pass a function of gtdsl.load(...), an @gtdsl.jit function, or "
                     "a model's method such as bert.hidden_states")
    with torch.no_grad():  # once first: what compiles on its first call (a @jit function
        fn(*args, **constants)  # defined before the ones it calls) exists when recorded
    calls: list[_Call] = []
    made = _Made()
    with _recording(calls, made), torch.no_grad():
        fn(*args, **constants)
    if not calls:
        raise _error(f"`{getattr(fn, '__qualname__', type(fn).__name__)}` called no gtdsl "
                     "function on the example arguments: no type says which dims are "
                     "dynamic", help="export a gtdsl function, or use torch.export.export "
                     "with your own dynamic_shapes")
    names = _arg_names(fn, len(args))
    computed = set(made.made)
    return fn, lambda bounds: _shapes(calls, args, names, computed, bounds)


def _arg_names(fn: Any, n: int) -> list[str]:
    """The names of a callable's first ``n`` positional parameters (``args[i]`` where it
    has none: ``*args``)."""
    import inspect

    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"args[{i}]" for i in range(n)]


_REGISTERED: weakref.WeakSet[type] = weakref.WeakSet()


def _register_structs(args: Any) -> None:
    """Let torch.export take gtdsl struct values as inputs (pytree nodes)."""
    if isinstance(args, (list, tuple)):
        for x in args:
            _register_structs(x)
    elif isinstance(args, dict):
        for x in args.values():
            _register_structs(x)
    elif dataclasses.is_dataclass(args) and not isinstance(args, type):
        cls = type(args)
        if getattr(cls, "__gtdsl_struct__", False) and cls not in _REGISTERED:
            torch.export.register_dataclass(
                cls, serialized_type_name=f"gtdsl.struct.{cls.__name__}.{id(cls):x}")
            _REGISTERED.add(cls)
        for f in dataclasses.fields(args):
            _register_structs(getattr(args, f.name))


class _Module(torch.nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any) -> Any:
        return self.fn(*(_map_tensors(a, _pinned) for a in args))


def _pinned(t: torch.Tensor) -> torch.Tensor:
    """``t`` checked, in the traced program, to have the example's dtype and rank:
    torch.export's guards check the sizes of the dims a program has, not their number nor the
    dtype, and the program is the function at the example's dtypes and ranks. The dtype is an
    assert (``_assert_tensor_metadata``); the rank is the tensor expanded to its own sizes,
    which fails for another number of dims."""
    torch.ops.aten._assert_tensor_metadata.default(t, None, None, t.dtype)
    return t.expand(t.shape)


def export(fn: Any, *args: Any, **constants: Any) -> Any:
    """``fn`` exported with ``torch.export`` at the example ``args``, its dims dynamic where
    the gtdsl types have size variables (see the module's docstring).

    A bound the code puts on a dynamic dim (a model's ``s <= 512`` positions) is kept: the
    dim stays dynamic within it, and the program's guard refuses sizes outside it."""
    args = _distinct(args)
    target, shapes_for = _plan(fn, args, constants)
    _register_structs(args)
    call = functools.partial(target, **constants) if constants else target
    typed = _runtime_function(fn) is not None
    name = getattr(target, "qualname", None) or getattr(fn, "__qualname__", None) or \
        type(fn).__name__
    bounds: Bounds = {}
    for _ in range(4):
        shapes = shapes_for(bounds)
        try:
            # forward(*args): one entry, the shapes of the args tuple
            ep = torch.export.export(_Module(call), tuple(args), dynamic_shapes=(shapes,),
                                     strict=False)
            _NAMES[ep] = _symbol_names(ep, shapes)
            return ep
        except GtdslError:
            raise
        except Exception as e:  # torch.export's own errors: constraint violations, guards
            text = str(e)
            more = _range_fixes(text, _names(shapes), constants=not typed)
            if more and any(bounds.get(k) != v for k, v in more.items()):
                bounds.update(more)
                continue
            first = text.strip().splitlines()
            raise _error(f"`{name}` cannot be exported with the dims its types declare: "
                         f"{type(e).__name__}: {first[0] if first else ''}"[:400],
                         help="the function needs a dim its type leaves open to be a "
                         "constant: give that dim a fixed size in the type, or export at "
                         "fixed sizes" if "specialized" in text else
                         "the notes give torch.export's reason",
                         notes=tuple(line.strip() for line in first[1:6] if line.strip())) \
                from None
    raise _error(f"`{name}`: torch.export kept refining the dims' ranges",
                 help="export at fixed sizes")


# each exported program's symbols' names (b, s, K), for as long as the program lives
_NAMES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _symbol_names(ep: Any, shapes: tuple[Any, ...]) -> dict[str, str]:
    """Which of torch's symbols (``s33``) is which size variable (``b``)."""
    from torch.utils import _pytree as pytree

    out: dict[str, str] = {}
    vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"
            and n.name in ep.graph_signature.user_inputs]
    specs = pytree.tree_leaves(shapes, is_leaf=lambda x: x is None or isinstance(x, dict))
    for val, spec in zip(vals, specs):
        if not isinstance(spec, dict) or not isinstance(val, torch.Tensor):
            continue
        for i, d in spec.items():
            root = getattr(d, "root", None)  # a derived dim (4*K): its root's symbol
            name = getattr(root if root is not None else d, "__name__", None)
            node = getattr(val.shape[i], "node", None)
            symbols = getattr(getattr(node, "expr", None), "free_symbols", ())
            if name and len(symbols) == 1:
                out.setdefault(str(next(iter(symbols))), name)
    return out


def describe(ep: Any, names: list[str]) -> list[str]:
    """One line per input of ``ep`` (named ``names``): its dtype and dims, dynamic ones by
    their size variable's name (``f32[b, s, 768]``, ``f32[b, 4*K]``), then each dynamic
    variable's range."""
    from gtdsl.runtime.values import dtype_of

    rename = _NAMES.get(ep, {})

    def show(expr: Any) -> str:
        text = str(expr)
        for sym in sorted(rename, key=len, reverse=True):
            text = re.sub(rf"\b{sym}\b", rename[sym], text)
        return text

    lines = []
    vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"
            and n.name in ep.graph_signature.user_inputs]
    for name, val in zip(names, vals):
        if isinstance(val, torch.Tensor):
            dt = dtype_of(val).value
            dims = ", ".join(str(d) if isinstance(d, int) else show(d.node.expr)
                             for d in val.shape)
            lines.append(f"input {name}: {dt}[{dims}]")
    for sym, r in sorted(ep.range_constraints.items(), key=lambda kv: show(kv[0])):
        if not getattr(sym, "is_Symbol", False):
            continue  # a derived dim's range follows its root's
        upper = "inf" if str(r.upper) in ("int_oo", "oo") or int(r.upper) >= 2 ** 62 - 1 \
            else str(r.upper)
        lines.append(f"{show(sym)}: {r.lower} .. {upper}")
    return lines


_FIX = re.compile(r"^\s*(\w+) = Dim\('(\w+)'(?:, min=(\d+))?(?:, max=(\d+))?\)\s*$")
_SAME = re.compile(r"^\s*(\w+) = (\w+)\s*$")
_CONST = re.compile(r"^\s*(\w+) = (\d+)\s*$")


def _range_fixes(text: str, names: set[str], constants: bool = False) -> Bounds:
    """The fixes torch suggests after a constraint violation, where each only bounds one of
    our dims (``s = Dim('s', max=512)``) or finds two of them equal (``t = s``: the code
    makes them so, a cache of length 0 before ``s`` tokens); empty where any fix would make
    a dim a constant or relate dims otherwise (the types say the dim is dynamic).
    Equalities are kept under the key ``"=t"``. With ``constants`` (a callable's dims,
    which weights it holds outside any type may fix: a module's ``self.w``), a dim torch
    finds constant (``d = 4``) is made static, under the key ``"#d"``."""
    if "Suggested fixes:" not in text:
        return {}
    out: Bounds = {}
    for line in text.split("Suggested fixes:", 1)[1].splitlines():
        if not line.strip():
            if out:
                break
            continue
        const = _CONST.match(line)
        if constants and const is not None and const.group(1) in names:
            out["#" + const.group(1)] = (int(const.group(2)), None)
            continue
        same = _SAME.match(line)
        if same is not None and same.group(1) in names and same.group(2) in names:
            out["=" + same.group(1)] = (same.group(2), None)
            continue
        m = _FIX.match(line)
        if m is None:
            return {}
        if m.group(1) != m.group(2) or m.group(1) not in names:
            return {}
        out[m.group(1)] = (int(m.group(3)) if m.group(3) else None,
                           int(m.group(4)) if m.group(4) else None)
    return out


def _names(shapes: Any) -> set[str]:
    from torch.export import Dim

    out: set[str] = set()
    if isinstance(shapes, (list, tuple)):
        for x in shapes:
            out |= _names(x)
    elif isinstance(shapes, dict):
        for x in shapes.values():
            out |= _names(x)
    elif isinstance(shapes, type) or type(shapes).__name__ in ("Dim", "_Dim"):
        name = getattr(shapes, "__name__", None)
        if name is not None and not isinstance(shapes, type(Dim.AUTO)):
            out.add(name)
    return out


__all__ = ["ExportError", "describe", "dynamic_shapes", "export"]
