"""Wording shared by the checker's diagnostics: what kind of value a type describes, numbers
too large to print, labels naming the culprit of a failed op, suggestions for a misspelt name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gtdsl.check.env import FnInfo
from gtdsl.ops import OPS
from gtdsl.types import TList, TOther, TScalar, TStruct, TTensor, TTuple, Type

if TYPE_CHECKING:
    from gtdsl.check.builder import V


def kind_of(t: Type) -> str:
    """``t`` as a noun phrase: "a tensor `f32[n]`", "a Python int", "None"."""
    if isinstance(t, TTensor):
        return f"a tensor `{t}`"
    if isinstance(t, TScalar):
        return f"a Python {t.kind.value}"
    if isinstance(t, TStruct):
        return f"a `{t}` struct"
    if isinstance(t, (TList, TTuple)):
        return f"a `{t}`"
    if isinstance(t, TOther):
        return {"none": "None", "str": "a string"}.get(t.what, f"a {t.what}")
    return "`?`"


def count_text(n: int) -> str:
    """A count, or its order of magnitude when it is too long to read."""
    return str(n) if n < 10**15 else f"about 10^{len(str(n)) - 1}"


def short_int(n: int) -> str:
    """An int, or its size in bits when it is too long to print."""
    text = str(n) if n.bit_length() <= 200 else f"an int of {n.bit_length()} bits"
    return text


def op_label(name: str, culprit: V | None) -> str:
    """The label under the place an op call failed: the culprit argument's type, or the
    call."""
    if culprit is not None and culprit.unresolved:
        return f"the label `{culprit.label}`"
    if culprit is not None:
        return f"this has type {culprit.type}"
    return f"in this {name}"


def undefined_help(name: str | None, env: dict[str, V], fn: FnInfo, calls: bool = False) -> str:
    """A close name in scope (a variable or size variable; a function where a call is
    written), else how to define the name."""
    if calls:  # functions are not values: offer them only where a call is written
        pool = list(fn.module.functions) + list(fn.module.imported_fns) + list(
            fn.module.externs) + list(OPS)
    else:
        pool = list(env) + list(fn.size_vars)
    import difflib  # only where a name is misspelt: not loaded for a clean check

    close = difflib.get_close_matches(name or "", pool, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return "define it, import it, or (as a dim) use one of the tensor's labels"
