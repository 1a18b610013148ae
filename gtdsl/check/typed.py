"""The typed program: the source of each function with every inferred type written in.

Each assignment shows the type bound to its name, each ``return`` the type it returns, and
each cast inserted on a line is listed under it as a comment, with its blame.
"""

from __future__ import annotations

from gtdsl.check.builder import target_names
from gtdsl.check.env import FnInfo
from gtdsl.diagnostics import Span
from gtdsl.ir.core import Op, walk
from gtdsl.syntax import ast
from gtdsl.syntax.unparse import unparse_expr


def print_typed(fn: FnInfo, sig: str, lets: dict[tuple[int, int], object]) -> str:
    casts: dict[int, list[str]] = {}
    if fn.ir is not None:
        for eqn in walk(fn.ir.body):
            if eqn.op in (Op.CHECK_CAST, Op.CHECK_OP) and eqn.span is not None:
                if eqn.op is Op.CHECK_CAST:
                    b = eqn.param("blame")
                    text = f"cast to {eqn.param('target')} ({b.kind.value}: {b.what})"
                else:
                    text = f"runtime check of `{eqn.param('op')}`: " + "; ".join(
                        eqn.param("facts"))
                casts.setdefault(eqn.span.line, []).append(text)
    lines = [sig + ":"]

    def note(span: Span | None, depth: int) -> None:
        if span is None:
            return
        last = span.file.line_col(max(span.start, span.end - 1))[0]
        for line in range(span.line, last + 1):
            for text in casts.pop(line, []):
                lines.append("    " * depth + f"# {text}")

    def let_type(target: ast.Name) -> str:
        t = lets.get((target.span.start, target.span.end)) if target.span else None
        return str(t) if t is not None else "?"

    def stmts(body: tuple[ast.Stmt, ...], depth: int) -> None:
        pad = "    " * depth
        for st in body:
            if isinstance(st, ast.Assign) and isinstance(st.target, ast.Name):
                lines.append(f"{pad}{st.target.id}: {let_type(st.target)} = "
                             f"{unparse_expr(st.value)}")
            elif isinstance(st, ast.Assign):
                names = ", ".join(f"{n.id}: {let_type(n)}" for n in target_names(st.target))
                lines.append(f"{pad}{names} = {unparse_expr(st.value)}")
            elif isinstance(st, ast.AnnAssign):
                lines.append(f"{pad}{st.target.id}: {let_type(st.target)} = "
                             f"{unparse_expr(st.value)}")
            elif isinstance(st, ast.AugAssign):
                lines.append(f"{pad}{st.target.id} {st.op.value}= {unparse_expr(st.value)}")
            elif isinstance(st, ast.Return):
                lines.append(f"{pad}return" + (f" {unparse_expr(st.value)}" if st.value else ""))
            elif isinstance(st, ast.If):
                lines.append(f"{pad}if {unparse_expr(st.test)}:")
                stmts(st.body, depth + 1)
                if st.orelse:
                    lines.append(f"{pad}else:")
                    stmts(st.orelse, depth + 1)
                continue
            elif isinstance(st, ast.For):
                target = ", ".join(n.id for n in target_names(st.target))
                lines.append(f"{pad}for {target} in {unparse_expr(st.iter)}:")
                note(st.span and _head(st), depth + 1)
                stmts(st.body, depth + 1)
                continue
            elif isinstance(st, ast.ExprStmt):
                lines.append(f"{pad}{unparse_expr(st.value)}")
            elif isinstance(st, ast.Assert):
                lines.append(f"{pad}assert {unparse_expr(st.test)}")
            else:
                lines.append(f"{pad}pass")
            note(st.span, depth)

    note(fn.decl.span and _head(fn.decl), 1)
    stmts(fn.decl.body, 1)
    return "\n".join(lines)


def _head(node: ast.FunctionDef | ast.For) -> Span:
    """The span of a compound statement's first line only."""
    span = node.span
    assert span is not None  # called only where the statement has a span
    end = span.file.text.find("\n", span.start)
    return Span(span.file, span.start, end if end >= 0 else span.end)
