"""The package's imports follow the pipeline order (README.md, "Layout"): no back edges."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "gtdsl"
# Stages in pipeline order; a module may import its own stage and earlier ones only.
ORDER = ["diagnostics", "syntax", "types", "ops", "ir", "check", "lower", "runtime",
         "instances", "driver", "pyfile", "exporting", "models", "distributed", "serving", "cli"]
# The typed IR is the boundary between checking and execution: what runs reads no syntax
# trees and no checker state.
FORBIDDEN = {"lower": ("syntax", "check"), "runtime": ("syntax", "check")}
# Leaves import nothing from gtdsl but other leaves; every stage may use them.
LEAVES = {"_version", "_resources", "_config", "_records", "_record_templates", "_torchcache"}
TRITON_ALLOWED = ("lower/triton", "runtime")


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, module: str = "") -> list[str]:
    """Absolute names of everything ``path`` (the module ``module``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.append(".".join(base + ([node.module] if node.module else [])))
    return found


def _sources() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(REPO).with_suffix("").parts), p)
            for p in sorted(PACKAGE.rglob("*.py"))]


def back_edges(sources: list[tuple[str, Path]]) -> list[str]:
    problems = []
    for module, path in sources:
        mine = _stage(module)
        for target in _imports(path, module):
            if not target.startswith("gtdsl"):
                continue
            theirs = _stage(target)
            if mine == "__init__" or theirs in LEAVES:
                continue
            if mine in LEAVES:
                problems.append(f"{module} is a leaf but imports {target}")
            elif theirs == "__init__":
                problems.append(f"{module} imports the public API module {target}")
            elif theirs not in ORDER or mine not in ORDER:
                problems.append(f"{module} -> {target}: stage not in the pipeline order")
            elif ORDER.index(theirs) > ORDER.index(mine):
                problems.append(f"{module} ({mine}) imports later stage {target} ({theirs})")
            elif theirs in FORBIDDEN.get(mine, ()):
                problems.append(f"{module} ({mine}) reads the front end: {target}")
    return problems


def test_no_back_edges() -> None:
    problems = back_edges(_sources())
    assert not problems, "\n".join(problems)


def test_only_the_gpu_stages_import_triton() -> None:
    for module, path in _sources():
        rel = str(path.relative_to(PACKAGE))
        if any(t.split(".")[0] == "triton" for t in _imports(path)):
            assert rel.startswith(TRITON_ALLOWED), f"{module} imports triton"


def test_the_checker_sees_back_edges(tmp_path: Path) -> None:
    """The scan itself works, for absolute and relative imports."""
    syntax = tmp_path / "gtdsl" / "syntax"
    syntax.mkdir(parents=True)
    (syntax / "bad.py").write_text("from gtdsl.cli.main import main\nfrom ..runtime import jit\n"
                                   "from . import ast\n")
    problems = back_edges([("gtdsl.syntax.bad", syntax / "bad.py")])
    assert len(problems) == 2
    assert "gtdsl.cli.main" in problems[0] and "gtdsl.runtime" in problems[1]
    runtime = tmp_path / "gtdsl" / "runtime"
    runtime.mkdir(parents=True)
    (runtime / "bad.py").write_text("from gtdsl.check.env import Session\n"
                                    "from ..syntax.unparse import unparse_expr\n"
                                    "from gtdsl.ir.core import Op\n")
    problems = back_edges([("gtdsl.runtime.bad", runtime / "bad.py")])
    assert len(problems) == 2 and all("reads the front end" in p for p in problems)
