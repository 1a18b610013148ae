"""What the checker needs to know about an allowlisted Python name, without importing torch.

Checking a ``.gt`` file that names ``torch.nn.functional.gelu`` asks three things of the name:
whether the installed torch has it (else GT1012), whether it is a function or a value (and a
number's value, ``torch.pi``), and its parameter names (``python_writes``: GT1012 for an
argument that writes into a tensor). Importing torch to answer costs more than a second, many
times the check. So the answers for every allowlisted ``torch.*`` name ship in
``torch_names.json``, made from an installed torch by ``python -m gtdsl.ops.pyfacts`` and
recording that torch's version; the table is used only when the installed torch has that same
version (read from ``torch/version.py``, which does not import torch); otherwise, and for
``math`` and a caller's own names, the facts come from the imported objects, as before.
``tests/unit/check/test_pyfacts.py`` regenerates the table and compares.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from gtdsl._records import record

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


# ---------------------------------------------------------------------- the shipped table
_VERSION = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*['"]([^'"]+)['"]""", re.M)
_table: dict[str, PyFact] | None = None


def installed_torch_version() -> str | None:
    """The installed torch's version without importing it (None: no torch, or unreadable):
    ``torch/version.py`` as its file says, else the distribution's metadata."""
    loaded = sys.modules.get("torch")
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for where in spec.submodule_search_locations or ():
        try:
            found = _VERSION.search((Path(where) / "version.py").read_text("utf-8"))
        except OSError:
            continue
        if found:
            return found.group(1)
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def _load() -> dict[str, PyFact]:
    """The shipped facts, or {} when they do not describe the installed torch."""
    global _table
    if _table is None:
        _table = {}
        import json

        try:
            data = json.loads(TABLE.read_text("utf-8"))
        except (OSError, ValueError):
            return _table
        if data.get("format") == FORMAT and same_release(data.get("torch"),
                                                          installed_torch_version()):
            _table = {path: PyFact(f.get("error"), f.get("callable", False), f.get("value"),
                                   tuple(f.get("params", ()))) for path, f in
                      data["names"].items()}
    return _table


def same_release(a: object, b: object) -> bool:
    """Whether two torch versions are one release: the local label (``+cpu``, ``+cu130``)
    names the build, whose Python functions are the release's (tests/unit/check/
    test_pyfacts.py checks every fact against the installed build)."""
    return isinstance(a, str) and isinstance(b, str) and a.split("+")[0] == b.split("+")[0]


def shipped_fact(path: str) -> PyFact | None:
    """``path``'s facts from the table, or None (not in it, or made for another torch)."""
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
