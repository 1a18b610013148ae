"""What the checker needs to know about an allowlisted Python name, without importing torch.

Checking a ``.gt`` file that names ``torch.nn.functional.gelu`` asks three things of the name:
whether the installed torch has it (else GT1012), whether it is a function or a value (and a
number's value, ``torch.pi``), and its parameter names (``python_writes``: GT1012 for an
argument that writes into a tensor). Importing torch to answer costs more than a second, many
times the check. So the answers for every allowlisted ``torch.*`` name are a table made from
an imported torch (``generate``): the one for the torch gtdsl pins ships as
``torch_names.json`` (``python -m gtdsl.ops.pyfacts`` remakes it); for another installed torch
(its version read from ``torch/version.py``, which does not import torch) it is made on first
need and cached (``gtdsl._torchcache``). ``math`` and a caller's own names come from the
imported objects. ``tests/unit/check/test_pyfacts.py`` compares the table in use with torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gtdsl._records import record
from gtdsl._torchcache import table_key, versioned_table

TABLE = Path(__file__).with_name("torch_names.json")
FORMAT = 1


@record
class PyFact:
    """One allowlisted name as the checker sees it."""

    error: str | None  # why it cannot be used (``Allowlist.resolve``'s LookupError), or None
    is_callable: bool = False
    value: bool | int | float | None = None  # a number's value (``type`` exactly bool/int/float)
    params: tuple[str, ...] = ()  # ``inspect.signature``'s parameters; () where it has none


def fact_of(obj: Any) -> PyFact:
    """The facts of a resolved object."""
    import inspect  # only for names the shipped table does not describe

    value = obj if type(obj) in (bool, int, float) else None
    try:
        params = tuple(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # a builtin, or not callable
        params = ()
    return PyFact(None, callable(obj), value, params)


def live_fact(resolve: Any, path: str) -> PyFact:
    """The facts of ``path`` from the imported object (``resolve`` is ``Allowlist.resolve``)."""
    try:
        obj = resolve(path)
    except LookupError as err:
        return PyFact(str(err))
    return fact_of(obj)


# ---------------------------------------------------------------------- the table
_table: dict[str, PyFact] | None = None


def _valid(data: dict[str, Any]) -> bool:
    names = data["names"]
    return isinstance(names, dict) and all(
        isinstance(p, str) and isinstance(f, dict) and isinstance(f.get("error", ""), str)
        and isinstance(f.get("callable", False), bool)
        and type(f.get("value")) in (bool, int, float, type(None))
        and isinstance(f.get("params", []), list)
        and all(isinstance(q, str) for q in f.get("params", [])) for p, f in names.items())


def _load() -> dict[str, PyFact]:
    """The facts of the installed torch: shipped, cached or made now (``gtdsl._torchcache``);
    {} when no table describes it (each name is then looked up in torch itself)."""
    global _table
    if _table is None:
        from gtdsl.ops.pyallow import PYTHON_NAMES

        wanted = sorted(n for n in PYTHON_NAMES if n.split(".")[0] == "torch")
        data = versioned_table("names", TABLE, FORMAT, generate,
                               lambda d: _valid(d) and sorted(d["names"]) == wanted,
                               lambda: table_key(FORMAT, wanted))
        _table = {} if data is None else {
            path: PyFact(f.get("error"), f.get("callable", False), f.get("value"),
                         tuple(f.get("params", ()))) for path, f in data["names"].items()}
    return _table


def shipped_fact(path: str) -> PyFact | None:
    """``path``'s facts from the installed torch's table, or None (not in it)."""
    return _load().get(path)


# ---------------------------------------------------------------------- making the table
def generate() -> dict[str, Any]:
    """The table, from the installed torch (imported): every allowlisted ``torch.*`` name."""
    import torch

    from gtdsl.ops.pyallow import PYTHON_NAMES, Allowlist

    allowed = Allowlist()
    names: dict[str, Any] = {}
    for path in sorted(n for n in PYTHON_NAMES if n.split(".")[0] == "torch"):
        f = live_fact(allowed.resolve, path)
        entry: dict[str, Any] = {}
        if f.error is not None:
            entry["error"] = f.error
        else:
            entry["callable"] = f.is_callable
            if f.value is not None:
                entry["value"] = f.value
            if f.params:
                entry["params"] = list(f.params)
        names[path] = entry
    return {"format": FORMAT, "torch": torch.__version__, "names": names}


def dumps(table: dict[str, Any]) -> str:
    import json

    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main() -> None:
    TABLE.write_text(dumps(generate()), "utf-8")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
