"""The package's imports follow the pipeline order (ARCHITECTURE.md): no back edges."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "gtdsl"
# Stages in pipeline order; a module may import its own stage and earlier ones only.
ORDER = ["diagnostics", "syntax", "types", "ops", "check", "ir", "lower", "driver", "runtime",
         "cli"]
LEAVES = {"_version", "_resources", "_config"}  # import nothing from gtdsl; usable everywhere
TRITON_ALLOWED = ("lower/triton", "runtime")


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _sources() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(REPO).with_suffix("").parts), p)
            for p in sorted(PACKAGE.rglob("*.py"))]


def test_no_back_edges() -> None:
    problems = []
    for module, path in _sources():
        mine = _stage(module)
        for target in _imports(path):
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
    assert not problems, "\n".join(problems)


def test_only_the_gpu_stages_import_triton() -> None:
    for module, path in _sources():
        rel = str(path.relative_to(PACKAGE))
        if any(t.split(".")[0] == "triton" for t in _imports(path)):
            assert rel.startswith(TRITON_ALLOWED), f"{module} imports triton"


def test_the_checker_sees_a_back_edge(tmp_path: Path) -> None:
    """The scan itself works: a syntax module importing the CLI is caught."""
    bad = tmp_path / "m.py"
    bad.write_text("from gtdsl.cli.main import main\nimport gtdsl.syntax.ast\n")
    assert _imports(bad) == ["gtdsl.cli.main", "gtdsl.syntax.ast"]
    assert ORDER.index(_stage("gtdsl.cli.main")) > ORDER.index(_stage("gtdsl.syntax.x"))
