"""Differential test: gtdsl expressions parse exactly as CPython parses the same text.

gtdsl's expressions are a subset of Python's, with Python's precedence. CPython's own
``ast`` module is an independent oracle: for generated expressions, the text our unparser
prints must mean the same tree to CPython as to our parser.
"""

from __future__ import annotations

import ast as pyast
import io
import tokenize

from hypothesis import given

from gtdsl.syntax import ast, parse_source
from gtdsl.syntax.unparse import unparse_expr
from tests import strategies as S

_BIN = {pyast.Add: ast.BinOpKind.ADD, pyast.Sub: ast.BinOpKind.SUB, pyast.Mult: ast.BinOpKind.MUL,
        pyast.Div: ast.BinOpKind.DIV, pyast.FloorDiv: ast.BinOpKind.FLOORDIV,
        pyast.Mod: ast.BinOpKind.MOD, pyast.Pow: ast.BinOpKind.POW,
        pyast.MatMult: ast.BinOpKind.MATMUL}
_UNARY = {pyast.USub: ast.UnaryOpKind.NEG, pyast.UAdd: ast.UnaryOpKind.POS,
          pyast.Not: ast.UnaryOpKind.NOT}
_CMP = {pyast.Lt: ast.CmpOp.LT, pyast.LtE: ast.CmpOp.LE, pyast.Gt: ast.CmpOp.GT,
        pyast.GtE: ast.CmpOp.GE, pyast.Eq: ast.CmpOp.EQ, pyast.NotEq: ast.CmpOp.NE,
        pyast.In: ast.CmpOp.IN, pyast.NotIn: ast.CmpOp.NOT_IN, pyast.Is: ast.CmpOp.IS,
        pyast.IsNot: ast.CmpOp.IS_NOT}


def from_python(node: pyast.expr) -> ast.Expr:
    """CPython's tree for an expression, in gtdsl's AST."""
    match node:
        case pyast.Name(id=name):
            return ast.Name(name)
        case pyast.Constant(value=value):
            if value is None:
                return ast.NoneLit()
            if value is Ellipsis:
                return ast.EllipsisLit()
            if isinstance(value, bool):
                return ast.Bool(value)
            if isinstance(value, int):
                return ast.Int(value)
            if isinstance(value, float):
                return ast.Float(value)
            return ast.Str(value)
        case pyast.BinOp(left=left, op=op, right=right):
            return ast.BinOp(_BIN[type(op)], from_python(left), from_python(right))
        case pyast.UnaryOp(op=op, operand=operand):
            return ast.UnaryOp(_UNARY[type(op)], from_python(operand))
        case pyast.BoolOp(op=op, values=values):
            kind = ast.BoolOpKind.AND if isinstance(op, pyast.And) else ast.BoolOpKind.OR
            return ast.BoolOp(kind, tuple(from_python(v) for v in values))
        case pyast.Compare(left=left, ops=ops, comparators=comps):
            return ast.Compare(from_python(left), tuple(_CMP[type(o)] for o in ops),
                               tuple(from_python(c) for c in comps))
        case pyast.IfExp(test=test, body=body, orelse=orelse):
            return ast.IfExp(from_python(test), from_python(body), from_python(orelse))
        case pyast.Attribute(value=value, attr=attr):
            return ast.Attribute(from_python(value), attr)
        case pyast.Call(func=func, args=args, keywords=keywords):
            return ast.Call(from_python(func), tuple(from_python(a) for a in args),
                            tuple(ast.Keyword(k.arg, from_python(k.value)) for k in keywords))
        case pyast.Subscript(value=value, slice=index):
            items = index.elts if isinstance(index, pyast.Tuple) and not _parenthesised(index) \
                else [index]
            return ast.Subscript(from_python(value), tuple(_index(i) for i in items))
        case pyast.Tuple(elts=elts):
            return ast.Tuple(tuple(from_python(e) for e in elts))
        case pyast.List(elts=elts):
            return ast.List(tuple(from_python(e) for e in elts))
    raise AssertionError(pyast.dump(node))


def _parenthesised(node: pyast.Tuple) -> bool:
    """Whether the tuple's own parentheses enclose it (``x[(a, b)]``, not ``x[(a, b), c]``)."""
    if not node.elts:
        return True
    depth = 0
    start, end = _char_col(node.col_offset), _char_col(node.end_col_offset or 0)
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(_SOURCE).readline)
              if t.start[1] >= start]
    if not tokens or tokens[0].string != "(" or tokens[0].start[1] != start:
        return False
    for tok in tokens:
        if tok.type != tokenize.OP:
            continue
        if tok.string in "([":
            depth += 1
        elif tok.string in ")]":
            depth -= 1
            if depth == 0:
                return tok.end[1] == end
    return False


def _char_col(byte_col: int) -> int:
    """CPython's ast columns count UTF-8 bytes; tokenize's count characters."""
    return len(_SOURCE.encode("utf-8")[:byte_col].decode("utf-8"))


def _index(node: pyast.expr) -> ast.Expr | ast.Slice:
    if isinstance(node, pyast.Slice):
        def opt(n: pyast.expr | None) -> ast.Expr | None:
            return from_python(n) if n is not None else None
        return ast.Slice(opt(node.lower), opt(node.upper), opt(node.step))
    return from_python(node)


_SOURCE = ""


@given(S.exprs)
def test_cpython_reads_our_expressions_the_same_way(expr: ast.Expr) -> None:
    global _SOURCE
    text = unparse_expr(expr)
    _SOURCE = text
    ours = parse_source(f"def f():\n    return {text}\n").body[0].body[0].value
    assert ours == expr
    theirs = from_python(pyast.parse(text, mode="eval").body)
    assert theirs == expr, text
