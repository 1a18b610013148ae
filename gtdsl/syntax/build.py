"""Building the module AST from Lark's parse tree.

Input: a Lark tree from ``gtdsl.lark`` (``module`` start) and the SourceFile it came from.
Output: frozen ``gtdsl.syntax.ast`` nodes with spans into that file. Types and literals are
built by the base class in ``build_types``. This stage also rejects what the grammar
accepts only to explain better (assignment to a subscript, a positional argument after a
keyword, a stray string at the top level, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Token, Tree

from gtdsl.diagnostics import Span
from gtdsl.syntax import ast
from gtdsl.syntax.build_types import TypeBuilder, as_token
from gtdsl.syntax.tokens import trim_end

_BINOPS = {
    "add": ast.BinOpKind.ADD, "sub": ast.BinOpKind.SUB, "mul": ast.BinOpKind.MUL,
    "div": ast.BinOpKind.DIV, "floordiv": ast.BinOpKind.FLOORDIV, "mod": ast.BinOpKind.MOD,
    "matmul": ast.BinOpKind.MATMUL, "power": ast.BinOpKind.POW,
}
_AUGOPS = {f"{k.value}=": k for k in ast.BinOpKind}
_CMP_OPS = {op.value: op for op in ast.CmpOp}


class AstBuilder(TypeBuilder):
    """Turns one module parse tree into AST nodes."""

    # ------------------------------------------------------------------ module level
    def module(self, tree: Tree) -> ast.Module:
        self.prepare(tree)
        items = list(tree.children)
        docstring = None
        if items and isinstance(items[0], Tree) and items[0].data == "string_stmt":
            docstring = self.string_value(items.pop(0))
        body: list[ast.Decl] = []
        for item in items:
            kind = item.data
            if kind == "string_stmt":
                self.fail("GT0014", "a string here does nothing", item,
                          "only the first statement of a module is its docstring",
                          help="turn it into a comment with `#`, or move it to the top")
            body.append(self.declaration(item))
        return ast.Module(tuple(body), docstring, self.span(tree))

    def declaration(self, tree: Tree) -> ast.Decl:
        kind = tree.data
        if kind == "funcdef":
            return self.funcdef(tree, ())
        if kind == "decorated":
            *decorators, fn = tree.children
            return self.funcdef(fn, tuple(self.decorator(d) for d in decorators), tree)
        if kind == "structdef":
            return self.structdef(tree)
        if kind == "import_from":
            return self.import_from(tree)
        if kind == "import_name":
            names = tuple(self.dotted_as(c) for c in tree.children)
            return ast.Import(names, self.span(tree).to(self.span(tree.children[-1])))
        raise AssertionError(kind)

    def decorator(self, tree: Tree) -> ast.Expr:
        dotted, call_args = tree.children
        parts = [as_token(p) for p in dotted.children]
        expr: ast.Expr = ast.Name(parts[0].value, self.span(parts[0]))
        for part in parts[1:]:
            expr = ast.Attribute(expr, part.value, self.span(parts[0]).to(self.span(part)))
        if call_args is not None:
            args, keywords = self.call_arguments(call_args)
            expr = ast.Call(expr, args, keywords, self.span(dotted).to(self.span(call_args)))
        return expr

    def funcdef(self, tree: Tree, decorators: tuple[ast.Expr, ...],
                outer: Tree | None = None) -> ast.FunctionDef:
        name, size_params, params, _arrow, returns, suite = tree.children
        body = self.suite(suite)
        docstring, body = self.split_docstring(body)
        if not body and docstring is None:
            raise AssertionError("empty function body")
        header_end = self.span(suite).start
        span = self.span(outer if outer is not None else tree)
        return ast.FunctionDef(
            name=as_token(name).value,
            size_params=self.size_params(size_params),
            params=self.parameters(params),
            returns=self.annotation(returns) if returns is not None else None,
            body=body,
            docstring=docstring,
            decorators=decorators,
            span=Span(self.file, span.start, max(span.start, self._trim_end(span.end, header_end))),
        )

    def _trim_end(self, end: int, floor: int) -> int:
        return trim_end(self.file.text, end, floor)

    def size_params(self, tree: Tree | None) -> tuple[ast.SizeParam, ...]:
        if tree is None:
            return ()
        names = [as_token(t) for t in tree.children]
        self.reject_duplicates(names, "size parameter")
        return tuple(ast.SizeParam(t.value, self.span(t)) for t in names)

    def reject_duplicates(self, names: list[Token], what: str) -> None:
        seen: set[str] = set()
        for tok in names:
            if tok.value in seen:
                self.fail("GT0017", f"duplicate {what} `{tok.value}`", tok,
                          "declared a second time here", help="give each one its own name")
            seen.add(tok.value)

    def parameters(self, tree: Tree | None) -> tuple[ast.Param, ...]:
        if tree is None:
            return ()
        self.reject_duplicates([as_token(p.children[0]) for p in tree.children], "parameter")
        params = []
        seen_default: ast.Param | None = None
        for p in tree.children:
            name, annotation, default = p.children
            param = ast.Param(
                as_token(name).value,
                self.annotation(annotation) if annotation is not None else None,
                self.expr(default) if default is not None else None,
                self.span(p),
            )
            if param.default is not None:
                seen_default = param
            elif seen_default is not None:
                self.fail("GT0017", "a parameter without a default follows one with a default",
                          p, f"`{param.name}` has no default",
                          help=f"give `{param.name}` a default, or move it before "
                               f"`{seen_default.name}`")
            params.append(param)
        return tuple(params)

    def split_docstring(self, body: tuple[ast.Stmt, ...]) -> tuple[str | None, tuple[ast.Stmt, ...]]:
        if body and isinstance(body[0], ast.ExprStmt) and isinstance(body[0].value, ast.Str):
            return body[0].value.value, body[1:]
        return None, body

    def structdef(self, tree: Tree) -> ast.StructDef:
        name, size_params, *items = tree.children
        docstring = None
        fields = []
        for i, item in enumerate(items):
            if item.data == "string_stmt":
                if i != 0:
                    self.fail("GT0014", "a string here does nothing", item,
                              "only the first line of a struct body is its docstring",
                              help="turn it into a comment with `#`")
                docstring = self.string_value(item)
            elif item.data == "field":
                fname, annotation = item.children
                fields.append(ast.Field(as_token(fname).value, self.annotation(annotation),
                                        self.span(item)))
        span = self.span(tree)
        return ast.StructDef(as_token(name).value, self.size_params(size_params), tuple(fields),
                             docstring,
                             Span(self.file, span.start, self._trim_end(span.end, span.start)))

    def import_from(self, tree: Tree) -> ast.ImportFrom:
        dotted, targets = tree.children
        if targets.data == "import_star":
            self.fail("GT0007", "wildcard imports are not supported in gtdsl", targets,
                      "import names one by one", help="list the names: `from m import a, b`")
        if targets.data != "import_list":  # parenthesised list
            targets = targets.children[0]
        names = tuple(
            ast.Alias(as_token(a.children[0]).value, _opt_value(a.children[1]), self.span(a))
            for a in targets.children
        )
        return ast.ImportFrom(_dotted_name(dotted), names,
                              self.span(tree).to(self.span(targets)))

    def dotted_as(self, tree: Tree) -> ast.Alias:
        dotted, asname = tree.children
        return ast.Alias(_dotted_name(dotted), _opt_value(asname),
                         self.span(tree))

    # ------------------------------------------------------------------ statements
    def suite(self, tree: Tree) -> tuple[ast.Stmt, ...]:
        return tuple(self.stmt(c) for c in tree.children)

    def stmt(self, tree: Tree) -> ast.Stmt:
        method: Callable[[Tree], ast.Stmt] = getattr(self, f"stmt_{tree.data}")
        return method(tree)

    def stmt_expr_stmt(self, tree: Tree) -> ast.Stmt:
        return ast.ExprStmt(self.expr(tree.children[0]), self.span(tree))

    def stmt_assign(self, tree: Tree) -> ast.Stmt:
        target, value = tree.children
        return ast.Assign(self.target(target), self.expr(value), self.span(tree))

    def stmt_ann_assign(self, tree: Tree) -> ast.Stmt:
        target, annotation, value = tree.children
        name = self.target(target)
        if not isinstance(name, ast.Name):
            self.fail("GT0013", "only a single name can be annotated", target,
                      "annotate each name in its own assignment")
        return ast.AnnAssign(name, self.annotation(annotation), self.expr(value), self.span(tree))

    def stmt_aug_assign(self, tree: Tree) -> ast.Stmt:
        target, op_node, value = tree.children
        op = as_token(op_node)
        name = self.target(target)
        if not isinstance(name, ast.Name):
            self.fail("GT0013", f"`{op.value}` needs a single name on its left", target)
        return ast.AugAssign(name, _AUGOPS[op.value], self.expr(value), self.span(tree))

    def stmt_return_stmt(self, tree: Tree) -> ast.Stmt:
        (value,) = tree.children
        return ast.Return(self.expr(value) if value is not None else None, self.span(tree))

    def stmt_pass_stmt(self, tree: Tree) -> ast.Stmt:
        return ast.Pass(self.span(tree))

    def stmt_assert_stmt(self, tree: Tree) -> ast.Stmt:
        test, msg = tree.children
        return ast.Assert(self.expr(test), self.expr(msg) if msg is not None else None,
                          self.span(tree))

    def stmt_if_stmt(self, tree: Tree) -> ast.Stmt:
        test, body, *elifs, orelse = tree.children
        tail: tuple[ast.Stmt, ...] = self.suite(orelse) if orelse is not None else ()
        for clause in reversed(elifs):
            ctest, cbody = clause.children
            span = self.span(clause)
            if tail:
                span = span.to(_last_span(tail))
            tail = (ast.If(self.expr(ctest), self.suite(cbody), tail, span),)
        span = self.span(tree)
        return ast.If(self.expr(test), self.suite(body), tail,
                      Span(self.file, span.start, self._trim_end(span.end, span.start)))

    def stmt_for_stmt(self, tree: Tree) -> ast.Stmt:
        target, iterable, body = tree.children
        *names, comma = target.children
        elts = tuple(ast.Name(as_token(n).value, self.span(n)) for n in names)
        tgt: ast.Name | ast.Tuple = (
            elts[0] if len(elts) == 1 and comma is None else ast.Tuple(elts, self.span(target))
        )
        span = self.span(tree)
        return ast.For(tgt, self.expr(iterable), self.suite(body),
                       Span(self.file, span.start, self._trim_end(span.end, span.start)))

    def target(self, tree: Tree) -> ast.Name | ast.Tuple:
        expr = self.expr(tree)
        if isinstance(expr, ast.Name):
            return expr
        if isinstance(expr, ast.Tuple) and expr.elts and all(
            isinstance(e, ast.Name) for e in expr.elts
        ):
            return expr
        bad = expr
        if isinstance(expr, ast.Tuple):
            bad = next((e for e in expr.elts if not isinstance(e, ast.Name)), expr)
        self.fail("GT0013", f"cannot assign to {_describe_expr(bad)}",
                  bad.span if bad.span is not None else tree,
                  "only names (or a tuple of names) can be assigned",
                  help=_assign_help(bad))

    # ------------------------------------------------------------------ expressions
    def expr(self, tree: Tree) -> ast.Expr:
        method: Callable[[Tree], ast.Expr] = getattr(self, f"expr_{tree.data}")
        return method(tree)

    def expr_name(self, tree: Tree) -> ast.Expr:
        return ast.Name(as_token(tree.children[0]).value, self.span(tree))

    def expr_int_lit(self, tree: Tree) -> ast.Expr:
        return ast.Int(self.int_value(as_token(tree.children[0])), self.span(tree))

    def expr_float_lit(self, tree: Tree) -> ast.Expr:
        return ast.Float(self.float_value(as_token(tree.children[0])), self.span(tree))

    def expr_str_lit(self, tree: Tree) -> ast.Expr:
        return ast.Str(self.string_value(tree), self.span(tree))

    def string_value(self, tree: Tree) -> str:
        return "".join(self.string_token_value(as_token(tok)) for tok in tree.children)

    def expr_none_lit(self, tree: Tree) -> ast.Expr:
        return ast.NoneLit(self.span(tree))

    def expr_true_lit(self, tree: Tree) -> ast.Expr:
        return ast.Bool(True, self.span(tree))

    def expr_false_lit(self, tree: Tree) -> ast.Expr:
        return ast.Bool(False, self.span(tree))

    def expr_ellipsis_lit(self, tree: Tree) -> ast.Expr:
        return ast.EllipsisLit(self.span(tree))

    def expr_empty_tuple(self, tree: Tree) -> ast.Expr:
        return ast.Tuple((), self.span(tree))

    def expr_paren(self, tree: Tree) -> ast.Expr:
        inner = self.expr(tree.children[0])
        if isinstance(inner, ast.Tuple):  # the tuple's span takes in its parentheses
            return ast.Tuple(inner.elts, self.span(tree))
        return inner

    def expr_test_tuple(self, tree: Tree) -> ast.Expr:
        elts = tuple(self.expr(c) for c in tree.children if isinstance(c, Tree))
        return ast.Tuple(elts, self.span(tree))

    def expr_list_lit(self, tree: Tree) -> ast.Expr:
        (items,) = tree.children
        elts = tuple(self.expr(c) for c in items.children) if items is not None else ()
        return ast.List(elts, self.span(tree))

    def expr_attribute(self, tree: Tree) -> ast.Expr:
        value, attr = tree.children
        return ast.Attribute(self.expr(value), as_token(attr).value, self.span(tree))

    def expr_call(self, tree: Tree) -> ast.Expr:
        func, call_args = tree.children
        args, keywords = self.call_arguments(call_args)
        return ast.Call(self.expr(func), args, keywords, self.span(tree))

    def call_arguments(self, call_args: Tree) -> tuple[tuple[ast.Expr, ...], tuple[ast.Keyword, ...]]:
        (arguments,) = call_args.children
        args: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        if arguments is None:
            return (), ()
        for arg in arguments.children:
            if isinstance(arg, Tree) and arg.data == "keyword":
                name_node, value = arg.children
                name = as_token(name_node)
                if any(k.name == name.value for k in keywords):
                    self.fail("GT0017", f"keyword argument `{name.value}` is repeated", arg,
                              "given a second time here", help="pass each keyword once")
                keywords.append(ast.Keyword(name.value, self.expr(value), self.span(arg)))
            else:
                if keywords:
                    self.fail("GT0017", "a positional argument follows a keyword argument",
                              arg, "positional argument",
                              help="put positional arguments before keyword arguments")
                args.append(self.expr(arg))
        return tuple(args), tuple(keywords)

    def expr_index(self, tree: Tree) -> ast.Expr:
        value, subscripts = tree.children
        indices = tuple(self.index_item(c) for c in subscripts.children if isinstance(c, Tree))
        return ast.Subscript(self.expr(value), indices, self.span(tree))

    def index_item(self, tree: Tree) -> ast.Expr | ast.Slice:
        if tree.data == "slice":
            lo, hi, step = (self.expr(c) if c is not None else None for c in tree.children)
            return ast.Slice(lo, hi, step, self.span(tree))
        return self.expr(tree)

    def _binop(self, tree: Tree) -> ast.Expr:
        left, right = tree.children
        return ast.BinOp(_BINOPS[tree.data], self.expr(left), self.expr(right), self.span(tree))

    expr_add = expr_sub = expr_mul = expr_div = expr_floordiv = expr_mod = _binop
    expr_matmul = expr_power = _binop

    def expr_neg(self, tree: Tree) -> ast.Expr:
        return ast.UnaryOp(ast.UnaryOpKind.NEG, self.expr(tree.children[0]), self.span(tree))

    def expr_pos(self, tree: Tree) -> ast.Expr:
        return ast.UnaryOp(ast.UnaryOpKind.POS, self.expr(tree.children[0]), self.span(tree))

    def expr_not_op(self, tree: Tree) -> ast.Expr:
        return ast.UnaryOp(ast.UnaryOpKind.NOT, self.expr(tree.children[0]), self.span(tree))

    def _boolop(self, tree: Tree) -> ast.Expr:
        kind = ast.BoolOpKind.AND if tree.data == "and_op" else ast.BoolOpKind.OR
        left, right = tree.children
        values = [self.expr(right)]
        # Left-nested chains from the grammar flatten into one BoolOp; parentheses stop it.
        while isinstance(left, Tree) and left.data == tree.data:
            left, right = left.children
            values.append(self.expr(right))
        values.append(self.expr(left))
        return ast.BoolOp(kind, tuple(reversed(values)), self.span(tree))

    expr_and_op = expr_or_op = _boolop

    def expr_compare(self, tree: Tree) -> ast.Expr:
        left, *rest = tree.children
        ops = tuple(_CMP_OPS[" ".join(as_token(t).value for t in op.children)] for op in rest[0::2])
        comparators = tuple(self.expr(c) for c in rest[1::2])
        return ast.Compare(self.expr(left), ops, comparators, self.span(tree))

    def expr_if_exp(self, tree: Tree) -> ast.Expr:
        body, test, orelse = tree.children
        return ast.IfExp(self.expr(test), self.expr(body), self.expr(orelse), self.span(tree))

def _opt_value(node: object) -> str | None:
    return as_token(node).value if node is not None else None


def _dotted_name(tree: Tree) -> str:
    return ".".join(as_token(t).value for t in tree.children)


def _last_span(stmts: tuple[ast.Stmt, ...]) -> Span:
    span = stmts[-1].span
    assert span is not None
    return span


def _describe_expr(expr: Any) -> str:
    return {
        ast.Subscript: "a subscript", ast.Attribute: "an attribute", ast.Call: "a call",
        ast.Tuple: "a tuple other than a tuple of names", ast.List: "a list",
        ast.BinOp: "an expression",
    }.get(type(expr), "this expression")


def _assign_help(expr: Any) -> str:
    if isinstance(expr, ast.Subscript):
        return ("tensors are immutable in gtdsl: build a new one, e.g. with `where`, "
                "`masked_fill` or `cat`")
    if isinstance(expr, ast.Attribute):
        return "struct fields are immutable: build a new value instead"
    return "assign to a plain name"
