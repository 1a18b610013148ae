"""The registry of diagnostic codes.

Codes are grouped by stage and never reused: GT0xxx syntax and input, GT1xxx names,
GT2xxx types and shapes, GT3xxx casts and runtime checks, GT4xxx lowering, GT5xxx JIT,
GT9xxx bugs in gtdsl itself.
Every code has a page ``docs/errors/<CODE>.md`` that ``gtdsl explain`` prints; a test
keeps the registry and the pages in step.
"""

from __future__ import annotations

import re

from gtdsl._records import record


@record
class CodeInfo:
    code: str
    title: str


def _table(*rows: tuple[str, str]) -> dict[str, CodeInfo]:
    return {code: CodeInfo(code, title) for code, title in rows}


CODES: dict[str, CodeInfo] = _table(
    # --- syntax
    ("GT0001", "invalid syntax"),
    ("GT0002", "unexpected character"),
    ("GT0003", "missing colon"),
    ("GT0004", "expected an indented block"),
    ("GT0005", "unexpected indent"),
    ("GT0006", "inconsistent dedent"),
    ("GT0007", "unsupported Python construct"),
    ("GT0008", "`?` outside a type"),
    ("GT0009", "unbalanced brackets"),
    ("GT0010", "unterminated string"),
    ("GT0011", "malformed type"),
    ("GT0012", "unexpected end of input"),
    ("GT0013", "invalid assignment target"),
    ("GT0014", "statement not allowed here"),
    ("GT0015", "nested too deeply"),
    ("GT0016", "invalid literal"),
    ("GT0017", "malformed argument list"),
    # --- names
    ("GT1001", "undefined name"),
    ("GT1002", "unknown type name"),
    ("GT1003", "duplicate definition"),
    ("GT1004", "import not allowed"),
    ("GT1005", "module not found"),
    ("GT1006", "name not found in module"),
    ("GT1007", "no such struct field"),
    ("GT1008", "unbound size variable"),
    ("GT1009", "import cycle"),
    ("GT1011", "unknown attribute or method"),
    ("GT1012", "Python name not allowed"),
    # --- types and shapes
    ("GT2001", "type mismatch"),
    ("GT2002", "dtype mismatch"),
    ("GT2003", "device mismatch"),
    ("GT2004", "size mismatch"),
    ("GT2005", "rank mismatch"),
    ("GT2006", "rigid size variable violated"),
    ("GT2007", "no dim with this label"),
    ("GT2008", "ambiguous dim label"),
    ("GT2009", "dim position unknown statically"),
    ("GT2010", "dim or index out of range"),
    ("GT2011", "sizes do not broadcast"),
    ("GT2012", "wrong number of struct size arguments"),
    ("GT2013", "bad call arguments"),
    ("GT2014", "argument must be known statically"),
    ("GT2015", "reshape element count mismatch"),
    ("GT2016", "operand of the wrong kind"),
    ("GT2017", "missing return"),
    ("GT2018", "loop changes a variable's type"),
    ("GT2019", "return inside a loop"),
    ("GT2020", "recursive call"),
    ("GT2021", "loop too long to check"),
    ("GT2022", "constant too large"),
    ("GT2023", "calls nested too deeply"),
    ("GT2024", "not a value"),
    ("GT2025", "not callable"),
    ("GT2026", "invalid size, count or step"),
    ("GT2027", "argument value not allowed"),
    ("GT2028", "parameter default is not a literal"),
    ("GT2029", "the installed torch promotes to a dtype gtdsl does not type"),
    # --- runtime casts and checks
    ("GT3001", "value does not match its declared type"),
    ("GT3002", "op arguments fail a check at run time"),
    ("GT3003", "assertion failed"),
    ("GT3004", "unchecked code failed"),
    ("GT3005", "op failed on its values"),
    # --- lowering
    ("GT4001", "kernel does not compile for the target"),
    ("GT4002", "kernel spills registers or exceeds the target's shared memory"),
    ("GT4003", "Triton unavailable for compiling ahead of time"),
    ("GT4004", "Triton's interpreter computes wrong results"),
    # --- JIT
    ("GT5001", "bad JIT option"),
    # --- input and usage
    ("GT0901", "cannot read file"),
    ("GT0902", "file is not UTF-8"),
    ("GT0903", "path is a directory"),
    ("GT0904", "empty file"),
    ("GT0905", "function source unavailable"),
    ("GT0906", "bad command-line usage"),
    ("GT0907", "unknown diagnostic code"),
    ("GT0908", "bad argument for gtdsl run"),
    ("GT0909", "model files do not match the model"),
    ("GT0910", "file too large"),
    ("GT0911", "bad argument for gtdsl compile --emit cubin"),
    ("GT0912", "function cannot be exported with its declared dims"),
    ("GT0913", "ranks do not agree"),
    ("GT0914", "bad sharding or struct module"),
    # --- bugs in gtdsl itself
    ("GT9001", "internal error in gtdsl"),
)

_CODE_RE = re.compile(r"(?:gt)?(\d{1,4})", re.IGNORECASE)


def lookup_code(text: str) -> CodeInfo | None:
    """The registered code spelled ``text`` (``GT0003``, ``gt0003`` or ``3``), if any."""
    match = _CODE_RE.fullmatch(text.strip())
    if match is None:
        return None
    return CODES.get(f"GT{int(match.group(1)):04d}")
