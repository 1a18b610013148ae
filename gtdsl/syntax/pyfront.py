"""The Python front end: a Python function object to the same AST a ``.gt`` file gives.

Input: a function (as ``@gtdsl.jit`` receives it). Output: its ``ast.FunctionDef``, parsed
from its own source with the gtdsl grammar, decorators, docstring, comments and string
annotations included. The source lines are parsed as they stand: a method or nested
function's block starts at its ``def``'s indentation instead of being dedented, so string
values and columns are exactly those of the user's ``.py`` file.
"""

from __future__ import annotations

import sys
from typing import Any

from gtdsl._records import replace
from gtdsl.diagnostics import Diagnostic, ParseError, SourceFile
from gtdsl.syntax import ast
from gtdsl.syntax.tokens import TAB_SIZE
from gtdsl.syntax.parse import parse_file_text


def function_source(fn: Any) -> SourceFile:
    """The source of ``fn`` as a SourceFile positioned in its file."""
    import inspect  # loads ast, dis and tokenize: not for checking .gt files

    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if not inspect.isfunction(fn):
        raise ParseError([Diagnostic(
            "GT0905", f"`{name}` is not a Python function defined with `def`",
            help="gtdsl compiles functions written with `def` in a source file",
        )])
    if fn.__name__ == "<lambda>":
        raise ParseError([Diagnostic(
            "GT0905", "a lambda cannot be compiled by gtdsl", path=fn.__code__.co_filename,
            help="define the function with `def`",
        )])
    fn = inspect.unwrap(fn)  # the source read below is the innermost function's
    try:
        lines, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError) as err:
        raise ParseError([Diagnostic(
            "GT0905", f"the source of `{name}` is not available",
            path=fn.__code__.co_filename,
            notes=(str(err),),
            help="define the function in a .py file (source typed into a REPL or built with "
                 "exec cannot be read back), or write it in a .gt file",
        )]) from None
    filename = inspect.getsourcefile(fn) or fn.__code__.co_filename
    return SourceFile(filename, "".join(lines), line_offset=max(first_line - 1, 0))


def _base_indent(file: SourceFile) -> int:
    first = file.line_text(0).expandtabs(TAB_SIZE)
    return len(first) - len(first.lstrip())


def parse_function(fn: Any) -> ast.FunctionDef:
    """Parse ``fn``'s own source; raises ParseError with positions in its ``.py`` file."""
    source = function_source(fn)
    module = parse_file_text(source, base_indent=_base_indent(source))
    functions = module.functions()
    if len(functions) != 1 or len(module.body) != 1:
        raise ParseError([Diagnostic(
            "GT0905", f"could not isolate the source of `{fn.__qualname__}`",
            path=fn.__code__.co_filename,
            help="define the function on its own with `def` (not inside an expression)",
        )])
    fn_def = functions[0]
    if fn_def.docstring is not None and sys.version_info >= (3, 13):
        # the docstring as this Python compiles it (``fn.__doc__``): 3.13 strips indentation
        fn_def = replace(fn_def, docstring=compiled_docstring(fn_def.docstring))
    return fn_def


def compiled_docstring(doc: str) -> str:
    """``doc`` as Python 3.13 and later compile a docstring (CPython's
    ``_PyCompile_CleanDoc``): tabs expanded, the first line's leading spaces removed, and
    from each later line the indentation that all later non-blank lines share; blank lines
    at either end are kept (unlike ``inspect.cleandoc``)."""
    lines = doc.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip(" ")) for line in lines[1:] if line.strip(" ")]
    margin = min(indents, default=0)
    rest = [line[min(margin, len(line) - len(line.lstrip(" "))):] for line in lines[1:]]
    return "\n".join([lines[0].lstrip(" "), *rest])
