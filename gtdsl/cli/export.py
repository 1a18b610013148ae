"""``gtdsl export``: one function of a ``.gt`` file as a ``torch.export`` program file.

The arguments are built as ``gtdsl run`` builds them (``--arg NAME=VALUE``, ``--size``,
``--seed``): tensors (and lists of tensors) are the program's inputs, with dims dynamic where
the parameter types have size variables; structs (weights, from a ``.safetensors`` file),
numbers and sizes are constants of the program. The program is written with
``torch.export.save`` (``--aoti``: compiled by AOTInductor into a package that
``torch._inductor.aoti_load_package`` loads), whole or not at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

import torch

from gtdsl.cli.run import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, RunError, _arguments
from gtdsl.diagnostics import Diagnostic, GtdslError, render_text
from gtdsl.driver import load
from gtdsl.runtime import CastError
from gtdsl.runtime.inputs import InputError
from gtdsl.runtime.tensorfile import TensorFileError


def _is_input(v: Any) -> bool:
    """A value the program takes as an input: a tensor, or a list or tuple of tensors."""
    if isinstance(v, torch.Tensor):
        return True
    return isinstance(v, (list, tuple)) and bool(v) and all(isinstance(x, torch.Tensor)
                                                            for x in v)


class _Bound:
    """The function with its constant arguments bound: called with the inputs alone."""

    def __init__(self, fn: Any, values: list[Any], inputs: list[int], sizes: dict[str, int]
                 ) -> None:
        import inspect

        self.fn, self.values, self.inputs, self.sizes = fn, values, inputs, sizes
        self.__qualname__ = fn.qualname
        self.__signature__ = inspect.Signature([  # the inputs' names, for messages
            inspect.Parameter(fn._params[i][0], inspect.Parameter.POSITIONAL_ONLY)
            for i in inputs])

    def __call__(self, *given: Any) -> Any:
        values = list(self.values)
        for i, v in zip(self.inputs, given):
            values[i] = v
        return self.fn(*values, **self.sizes)


def export_function(path: str, fn_name: str, args: list[str], sizes: list[str], seed: int,
                    allow_python: list[str], output: str, aoti: bool, out: TextIO,
                    err: TextIO) -> int:
    def usage(message: str, help: str | None = None) -> int:
        err.write(render_text(Diagnostic("GT0908", message, help=help or
                                         "see `gtdsl export --help`", path=path)) + "\n")
        return EXIT_USAGE

    target = Path(os.path.realpath(output)) if output else Path()
    if not output or target.is_dir() or output.endswith(("/", os.sep)):
        return usage(f"`-o {output}` is a folder, not a file to write the program to",
                     "give a file name, e.g. -o model.pt2")
    if not target.parent.is_dir():
        return usage(f"the folder of `-o {output}` does not exist", "create it first")
    if target.exists() and not target.is_file():
        return usage(f"`-o {output}` is not a regular file (a device, a pipe, a socket): "
                     "the program replaces what it writes to", "give a file name")
    files = [path] + [a.partition("=")[2].partition(":")[0] for a in args]
    if target.exists() and any(os.path.exists(f) and os.path.samefile(f, target)
                               for f in files if f):
        return usage(f"`-o {output}` is one of the command's own input files",
                     "write the program to a file of its own, e.g. -o model.pt2")
    try:
        module = load(path, backend="torch", allow_python=tuple(allow_python))
    except GtdslError as e:
        for d in e.diagnostics:
            err.write(render_text(d) + "\n")
        return EXIT_USAGE if any(d.code.startswith("GT09") for d in e.diagnostics) \
            else EXIT_ERRORS
    fn = module.functions.get(fn_name)
    if fn is None or "." in fn_name:
        names = [q for q in module.functions if "." not in q]
        return usage(f"`{path}` has no function `{fn_name}`",
                     f"its functions are: {', '.join(names) or 'none'}")
    try:
        values, drawn_sizes = _arguments(module, fn, args, sizes, seed)
    except (RunError, InputError, TensorFileError) as e:
        return usage(str(e), getattr(e, "help", None))
    # the sizes given with --size are constants; one the arguments determine stays theirs
    named = {s.partition("=")[0].strip() for s in sizes}
    given_sizes = {k: v for k, v in drawn_sizes.items() if k in named}
    inputs = [i for i, v in enumerate(values) if _is_input(v)]
    if not inputs:
        return usage(f"`{fn_name}` takes no tensor: a program of constants has nothing to "
                     "export", "export a function with a tensor parameter")
    from gtdsl.exporting import ExportError, describe, export

    from gtdsl.runtime.errors import CALLER

    bound = _Bound(fn, values, inputs, given_sizes)
    example = [values[i] for i in inputs]
    token = CALLER.set(f"the command line (gtdsl export {path} --fn {fn_name})")
    try:
        ep = export(bound, *example)
    except (ExportError, CastError) as e:  # CastError: the examples do not fit the types
        err.write(str(e) + "\n")
        return EXIT_ERRORS
    finally:
        CALLER.reset(token)
    from gtdsl.exporting import _leaves

    names = [p for i in inputs for _, p in _leaves(values[i], fn._params[i][0])]
    try:
        _write(target, ep, aoti)
    except ExportError as e:
        err.write(str(e) + "\n")
        return EXIT_ERRORS
    except OSError as e:
        return usage(f"cannot write `{output}`: {e.strerror or e}")
    what = "an AOTInductor package" if aoti else "a torch.export program"
    out.write(f"{fn.signature}\nwrote {what} to {output}\n")
    for line in describe(ep, names):
        out.write(f"  {line}\n")
    return EXIT_OK


def _write(target: Path, ep: Any, aoti: bool) -> None:
    """Write the program (or its AOTInductor package) to a temporary file beside ``target``,
    then rename it: a failed export leaves nothing half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".pt2", dir=target.parent)
    os.close(fd)
    try:
        if aoti:
            _aoti(ep, tmp)
        else:
            torch.export.save(ep, tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _aoti(ep: Any, path: str) -> None:
    from gtdsl.exporting import ExportError, _error

    compile_package = getattr(getattr(torch, "_inductor", None), "aoti_compile_and_package",
                              None)
    if compile_package is None:
        raise _error(f"this torch ({torch.__version__}) has no AOTInductor packages",
                     help="drop --aoti to write the torch.export program, or install "
                     "torch 2.6 or newer")
    try:
        compile_package(ep, package_path=path)
    except ExportError:
        raise
    except Exception as e:  # a compiler missing, a lowering torch does not have
        first = str(e).strip().splitlines()
        raise _error(f"AOTInductor could not compile the program: {type(e).__name__}: "
                     f"{first[0] if first else ''}"[:400],
                     help="drop --aoti to write the torch.export program; AOTInductor "
                     "needs a C++ compiler on the machine") from None


__all__ = ["export_function"]
