"""``gtdsl run``: load a ``.gt`` file, build the arguments, call one function, summarize.

Arguments come from ``--arg NAME=VALUE``: a type (``f32[4, 10]``: random values of that type),
a tensor file (``x.safetensors``, ``x.pt``, ``x.npy``; ``file.safetensors:key`` picks one
tensor; a struct parameter takes a whole ``.safetensors`` file by key path, ``query.weight``),
or a number. Parameters not given are drawn from their declared types with the sizes the
given arguments bound (and ``--size NAME=N``, else defaults), so ``gtdsl run f.gt --fn f``
works on any fully annotated function.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError, render_text
from gtdsl.driver import load
from gtdsl.runtime import CastError
from gtdsl.runtime.casts import Bindings, CastFailed, check_value
from gtdsl.runtime.errors import CALLER
from gtdsl.runtime.inputs import InputError, Sampler
from gtdsl.runtime.tensorfile import SUFFIXES, TensorFileError, read_tensors
from gtdsl.runtime.values import type_of_value
from gtdsl.types import TDyn, TStruct, TTensor, TTuple

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
MAX_SIZE = 2 ** 63 - 1  # torch's sizes are 64-bit


class RunError(Exception):
    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


def run_function(path: str, fn_name: str, args: list[str], sizes: list[str], backend: str,
                 seed: int, allow_python: list[str], out: TextIO, err: TextIO) -> int:
    try:
        module = load(path, backend=backend, allow_python=tuple(allow_python))
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        unreadable = any(d.code.startswith("GT09") for d in e.diagnostics)
        return EXIT_USAGE if unreadable else EXIT_ERRORS
    try:
        fn = module.functions.get(fn_name)
        if fn is None:
            import difflib

            names = [q for q in module.functions if "." not in q]
            close = difflib.get_close_matches(fn_name, names, n=1)
            raise RunError(f"`{path}` has no function `{fn_name}`",
                           f"did you mean `{close[0]}`?" if close else
                           f"its functions are: {', '.join(names) or 'none'}")
        values, given_sizes = _arguments(module, fn, args, sizes, seed)
    except (RunError, InputError, TensorFileError) as e:
        err.write(render_text(Diagnostic("GT0908", str(e), help=getattr(e, "help", None) or
                                         "see `gtdsl run --help`", path=path)) + "\n")
        return EXIT_USAGE
    token = CALLER.set(f"the command line (gtdsl run {path} --fn {fn_name})")
    try:
        with torch.no_grad():
            result = fn(*values, **given_sizes)
    except CastError as e:
        err.write(str(e) + "\n")
        return EXIT_ERRORS
    finally:
        CALLER.reset(token)
    out.write(f"{fn.signature}\n")
    out.write(summarize(result) + "\n")
    return EXIT_OK


def _arguments(module: Any, fn: Any, args: list[str], sizes: list[str], seed: int
               ) -> tuple[list[Any], dict[str, int]]:
    params = dict(fn._params)
    given: dict[str, str] = {}
    for a in args:
        name, eq, text = a.partition("=")
        name = name.strip()
        if not eq or not name:
            raise RunError(f"`--arg {a}` is not NAME=VALUE",
                           "e.g. --arg x=f32[4,10] or --arg w=weights.safetensors")
        if name not in params:
            raise RunError(f"`{fn.name}` has no parameter `{name}`",
                           f"its parameters are: {', '.join(params)}")
        if name in given:
            raise RunError(f"`--arg {name}` is given twice")
        given[name] = text.strip()
    size_values: dict[str, int] = {}
    for sz in sizes:
        name, eq, text = sz.partition("=")
        try:
            n = int(text)
        except ValueError:  # not a number, or more digits than Python converts
            n = -1
        if not eq or not name.strip().isidentifier() or n < 0:
            raise RunError(f"`--size {_short(sz)}` is not NAME=N with N a non-negative "
                           "integer")
        if n > MAX_SIZE:
            raise RunError(f"`--size {_short(sz)}`: {_short(text.strip())} is larger than "
                           f"any tensor dimension (at most 2**63 - 1)")
        if name.strip() in size_values:
            raise RunError(f"`--size {name.strip()}` is given twice")
        size_values[name.strip()] = n
    known = set(fn._sizes) | set(fn.module.program.ir[fn.qualname].size_vars)
    for name in size_values:
        if name not in known:
            raise RunError(f"`{fn.name}` has no size variable `{name}`",
                           f"its size variables are: {', '.join(sorted(known)) or 'none'}")
    if not -2 ** 63 <= seed < 2 ** 64:
        raise RunError(f"`--seed {_short(str(seed))}` is outside torch's seed range",
                       "give a seed from -2**63 to 2**64 - 1")
    gen = torch.Generator().manual_seed(seed)
    b = Bindings(dict(size_values))
    sampler = Sampler(b.sizes, b.rows, gen, module.program.struct, module.structs)
    values: dict[str, Any] = {}
    for name, text in given.items():  # given arguments first: they bind sizes
        v = _given_value(module, name, text, params[name], gen)
        values[name] = sampler.value(_parse_type(text), name) if v is _RANDOM else v
        try:
            check_value(values[name], params[name], b, "", module.program.struct, owner=name)
        except CastFailed:
            pass  # the call reports it, with blame
    out = []
    for name, t in fn._params:
        if name in values:
            out.append(values[name])
        elif name in module.program.defaults.get(fn.qualname, {}):
            out.append(module.program.defaults[fn.qualname][name])
        else:
            if isinstance(t, TDyn):
                raise RunError(f"parameter `{name}` is not annotated: pass it with "
                               f"--arg {name}=TYPE or --arg {name}=FILE")
            out.append(sampler.value(t, name))
    bound = Bindings()
    for (name, t), v in zip(fn._params, out):
        try:
            check_value(v, t, bound, "", module.program.struct)
        except CastFailed:
            pass
    # sizes no argument determines (`attention[H, K]` from H*K-sized weights) are given
    kw = {v: sampler.sizes[v] for v in fn._size_kw
          if v in sampler.sizes and (v not in bound.sizes or v in size_values)}
    return out, kw


_RANDOM = object()


def _given_value(module: Any, name: str, text: str, t: Any, gen: torch.Generator) -> Any:
    path, _, key = text.partition(":") if ":" in text and text.split(":")[0].lower().endswith(
        SUFFIXES) else (text, "", "")
    if path.lower().endswith(SUFFIXES):
        tensors = read_tensors(path)
        if isinstance(t, TStruct):
            return _struct_from(module, t.name, tensors, "", path)
        if key:
            if key not in tensors:
                raise RunError(f"`{path}` has no tensor `{key}`",
                               f"its keys are: {', '.join(sorted(tensors)[:20])}" if any(
                                   tensors) else f"it holds one tensor: pass {path} alone")
            return tensors[key]
        if len(tensors) != 1:
            raise RunError(f"`{path}` holds {len(tensors)} tensors; pick one with "
                           f"{path}:KEY", f"its keys are: {', '.join(sorted(tensors)[:20])}")
        return next(iter(tensors.values()))
    number = _number(text)
    if number is not None:
        return number
    _parse_type(text)  # a type: drawn later, once every size is known
    return _RANDOM


def _struct_from(module: Any, struct: str, tensors: dict, prefix: str, path: str) -> Any:
    info = module.program.struct(struct)
    fields = {}
    for f, ft in info.field_types().items():
        key = f"{prefix}{f}"
        if isinstance(ft, TStruct):
            fields[f] = _struct_from(module, ft.name, tensors, key + ".", path)
        elif key in tensors:
            fields[f] = tensors[key]
        elif any(k.startswith(key + ".") for k in tensors):  # a list or tuple: key.0, key.1
            items = []
            i = 0
            elems = ft.elems if isinstance(ft, TTuple) else None
            while any(k.startswith(f"{key}.{i}.") or k == f"{key}.{i}" for k in tensors):
                elem = elems[i] if elems is not None and i < len(elems) else getattr(
                    ft, "elem", None)
                items.append(_struct_from(module, elem.name, tensors, f"{key}.{i}.", path)
                             if isinstance(elem, TStruct) else tensors[f"{key}.{i}"])
                i += 1
            fields[f] = tuple(items) if elems is not None else items
        else:
            raise RunError(f"`{path}` has no tensor `{key}` for field `{f}` of `{struct}`")
    return module.structs[struct](**fields)


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _number(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        if text.strip().lstrip("+-").isdigit():  # more digits than Python converts
            raise RunError(f"`{_short(text)}` has {len(text.strip().lstrip('+-'))} digits, "
                           "more than an argument takes") from None
    try:
        return float(text)
    except ValueError:
        return None


def _parse_type(text: str) -> Any:
    from gtdsl.diagnostics import ParseError
    from gtdsl.syntax import parse_type
    from gtdsl.types import type_of

    try:
        t = type_of(parse_type(text))
    except ParseError:
        raise RunError(f"`{text}` is not a type, a number or a tensor file ({', '.join(SUFFIXES)})",
                       "e.g. f32[4, 10], 0.5, weights.safetensors") from None
    if not isinstance(t, TTensor):
        raise RunError(f"`{text}` is not a type, a number or a tensor file "
                       f"({', '.join(SUFFIXES)})", "e.g. f32[4, 10], 0.5, weights.safetensors")
    return t


def summarize(value: Any, indent: str = "") -> str:
    """A readable account of a result: type, statistics and leading values of each tensor."""
    if isinstance(value, torch.Tensor):
        t = type_of_value(value)
        lines = [f"{indent}{t}"]
        if value.numel() and (value.is_floating_point() or value.is_complex()):
            v = value.detach().float() if not value.is_complex() else value.detach().abs()
            lines.append(f"{indent}  min {v.min().item():.6g}  max {v.max().item():.6g}  "
                         f"mean {v.mean().item():.6g}  std "
                         f"{(v.std().item() if v.numel() > 1 else 0.0):.6g}")
        elif value.numel():
            v = value.detach()
            lines.append(f"{indent}  min {v.min().item()}  max {v.max().item()}")
        flat = value.detach().reshape(-1)[:8].tolist()
        text = ", ".join(_fmt(x) for x in flat)
        more = ", ..." if value.numel() > 8 else ""
        lines.append(f"{indent}  values [{text}{more}]")
        return "\n".join(lines)
    if isinstance(value, (tuple, list)):
        parts = [f"{indent}{type(value).__name__} of {len(value)}:"]
        for i, v in enumerate(value):
            parts.append(f"{indent}[{i}]")
            parts.append(summarize(v, indent + "  "))
        return "\n".join(parts)
    return f"{indent}{value!r}"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return str(x)
