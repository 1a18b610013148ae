"""Building the AST from Lark's parse tree.

Input: a Lark tree from ``gtdsl.lark`` (module or type start) and the SourceFile it came
from. Output: frozen ``gtdsl.syntax.ast`` nodes with spans into that file. This stage also
rejects what the grammar accepts only to explain better (assignment to a subscript, a
variadic dim that is not first, a device on a struct, ...), and parses string annotations
with the ``type`` start rule, their spans placed inside the string in the same file.
"""

from __future__ import annotations

import ast as pyast
from collections.abc import Callable
from typing import Any, NoReturn

from lark import Token, Tree

from gtdsl.diagnostics import Diagnostic, Label, SourceFile, Span
from gtdsl.syntax import ast
from gtdsl.syntax.errors import parse_tree
from gtdsl.syntax.grammar import SyntaxProblem, token_span

_BINOPS = {
    "add": ast.BinOpKind.ADD, "sub": ast.BinOpKind.SUB, "mul": ast.BinOpKind.MUL,
    "div": ast.BinOpKind.DIV, "floordiv": ast.BinOpKind.FLOORDIV, "mod": ast.BinOpKind.MOD,
    "matmul": ast.BinOpKind.MATMUL, "power": ast.BinOpKind.POW,
}
_AUGOPS = {f"{k.value}=": k for k in ast.BinOpKind}
_SIZE_OPS = {
    "size_add": ast.SizeOp.ADD, "size_sub": ast.SizeOp.SUB, "size_mul": ast.SizeOp.MUL,
    "size_floordiv": ast.SizeOp.FLOORDIV, "size_mod": ast.SizeOp.MOD,
}
_CMP_OPS = {op.value: op for op in ast.CmpOp}
_STRING_PREFIX_CHARS = "rRbBuUfF"


class AstBuilder:
    """Turns one parse tree into AST nodes; ``offset`` places a nested parse in its file."""

    def __init__(self, file: SourceFile, offset: int = 0) -> None:
        self.file = file
        self.offset = offset

    # ------------------------------------------------------------------ helpers
    def span(self, node: Tree | Token) -> Span:
        if isinstance(node, Token):
            return token_span(self.file, node, self.offset)
        meta = node.meta
        if meta.empty:
            return Span(self.file, self.offset, self.offset)
        return Span(self.file, meta.start_pos + self.offset, meta.end_pos + self.offset)

    def fail(self, code: str, message: str, where: Tree | Token | Span, label: str = "",
             help: str | None = None, notes: tuple[str, ...] = ()) -> NoReturn:
        span = where if isinstance(where, Span) else self.span(where)
        raise SyntaxProblem(Diagnostic(code, message, Label(span, label), notes=notes, help=help))

    # ------------------------------------------------------------------ module level
    def module(self, tree: Tree) -> ast.Module:
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
        parts = dotted.children
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
            name=name.value,
            size_params=self.size_params(size_params),
            params=self.parameters(params),
            returns=self.annotation(returns) if returns is not None else None,
            body=body,
            docstring=docstring,
            decorators=decorators,
            span=Span(self.file, span.start, max(span.start, self._trim_end(span.end, header_end))),
        )

    def _trim_end(self, end: int, floor: int) -> int:
        """Drop trailing whitespace and comments that Lark counts into a block's span."""
        text = self.file.text
        end = min(end, len(text))
        while end > floor and text[end - 1] in " \t\r\n\f":
            end -= 1
        return end

    def size_params(self, tree: Tree | None) -> tuple[ast.SizeParam, ...]:
        if tree is None:
            return ()
        return tuple(ast.SizeParam(t.value, self.span(t)) for t in tree.children)

    def parameters(self, tree: Tree | None) -> tuple[ast.Param, ...]:
        if tree is None:
            return ()
        params = []
        seen_default: ast.Param | None = None
        for p in tree.children:
            name, annotation, default = p.children
            param = ast.Param(
                name.value,
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
                fields.append(ast.Field(fname.value, self.annotation(annotation), self.span(item)))
        span = self.span(tree)
        return ast.StructDef(name.value, self.size_params(size_params), tuple(fields), docstring,
                             Span(self.file, span.start, self._trim_end(span.end, span.start)))

    def import_from(self, tree: Tree) -> ast.ImportFrom:
        dotted, targets = tree.children
        if targets.data == "import_star":
            self.fail("GT0007", "wildcard imports are not supported in gtdsl", targets,
                      "import names one by one", help="list the names: `from m import a, b`")
        if targets.data != "import_list":  # parenthesised list
            targets = targets.children[0]
        names = tuple(
            ast.Alias(a.children[0].value, _opt_value(a.children[1]), self.span(a))
            for a in targets.children
        )
        return ast.ImportFrom(".".join(t.value for t in dotted.children), names,
                              self.span(tree).to(self.span(targets)))

    def dotted_as(self, tree: Tree) -> ast.Alias:
        dotted, asname = tree.children
        return ast.Alias(".".join(t.value for t in dotted.children), _opt_value(asname),
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
        target, op, value = tree.children
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
        elts = tuple(ast.Name(n.value, self.span(n)) for n in names)
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
    def expr(self, tree: Tree | Token) -> ast.Expr:
        method: Callable[[Tree], ast.Expr] = getattr(self, f"expr_{tree.data}")
        return method(tree)

    def expr_name(self, tree: Tree) -> ast.Expr:
        return ast.Name(tree.children[0].value, self.span(tree))

    def expr_int_lit(self, tree: Tree) -> ast.Expr:
        return ast.Int(self.int_value(tree.children[0]), self.span(tree))

    def int_value(self, tok: Token) -> int:
        try:
            return int(tok.value, 0)
        except ValueError:
            self.fail("GT0016", f"invalid integer literal `{tok.value}`", tok,
                      "leading zeros are not allowed in decimal integers",
                      help=f"write `{tok.value.lstrip('0') or '0'}`, or `0o...` for octal")

    def expr_float_lit(self, tree: Tree) -> ast.Expr:
        tok = tree.children[0]
        return ast.Float(float(tok.value), self.span(tree))

    def expr_str_lit(self, tree: Tree) -> ast.Expr:
        return ast.Str(self.string_value(tree), self.span(tree))

    def string_value(self, tree: Tree) -> str:
        return "".join(self.string_token_value(tok) for tok in tree.children)

    def string_token_value(self, tok: Token) -> str:
        prefix = _string_prefix(tok.value)
        lowered = prefix.lower()
        if "f" in lowered:
            self.fail("GT0007", "f-strings are not supported in gtdsl", tok,
                      "formatted string", help="use a plain string literal")
        if "b" in lowered:
            self.fail("GT0007", "bytes literals are not supported in gtdsl", tok,
                      "bytes literal", help="use a plain string literal")
        try:
            value = pyast.literal_eval(tok.value)
        except (SyntaxError, ValueError):
            self.fail("GT0016", "invalid string literal", tok, "it holds a malformed escape",
                      help="check the backslash escapes, or use a raw string `r\"...\"`")
        assert isinstance(value, str)
        return value

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
        return ast.Attribute(self.expr(value), attr.value, self.span(tree))

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
                name, value = arg.children
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
        ops = tuple(_CMP_OPS[" ".join(t.value for t in op.children)] for op in rest[0::2])
        comparators = tuple(self.expr(c) for c in rest[1::2])
        return ast.Compare(self.expr(left), ops, comparators, self.span(tree))

    def expr_if_exp(self, tree: Tree) -> ast.Expr:
        body, test, orelse = tree.children
        return ast.IfExp(self.expr(test), self.expr(body), self.expr(orelse), self.span(tree))

    # ------------------------------------------------------------------ types
    def annotation(self, tree: Tree | Token) -> ast.TypeExpr:
        if isinstance(tree, Tree) and tree.data == "string_annotation":
            return self.string_annotation(tree.children[0])
        return self.type(tree)

    def string_annotation(self, tok: Token) -> ast.TypeExpr:
        """A type written as a string (``x: "f32[n]"``), parsed with the ``type`` rule."""
        self.string_token_value(tok)  # rejects f/b prefixes and broken escapes
        prefix = _string_prefix(tok.value)
        quote = tok.value[len(prefix) : len(prefix) + 3]
        quote = quote if quote in ('"""', "'''") else quote[0]
        content = tok.value[len(prefix) + len(quote) : len(tok.value) - len(quote)]
        if "\\" in content:
            self.fail("GT0011", "a string annotation cannot contain escapes", tok,
                      "write the type without backslashes")
        stripped = content.lstrip()
        if not stripped.strip():
            self.fail("GT0011", "empty string annotation", tok, "a type is expected inside",
                      help='write a type, e.g. "f32[n]", or remove the annotation')
        start = (tok.start_pos or 0) + self.offset + len(prefix) + len(quote)
        start += len(content) - len(stripped)
        nested = parse_tree(self.file, stripped.rstrip(), "type", start)
        return AstBuilder(self.file, start).type(nested)

    def type(self, tree: Tree) -> ast.TypeExpr:
        kind = tree.data
        span = self.span(tree)
        if kind == "dyn_type":
            _q, shape, device = tree.children
            if shape is None and device is None:
                return ast.DynType(span)
            return ast.TensorType(None, self.shape(shape), self.device(device), span)
        if kind == "named_type":
            return self.named_type(tree)
        if kind == "list_type":
            return ast.ListType(self.type(tree.children[0]), span)
        if kind == "tuple_type":
            return ast.TupleType(tuple(self.type(c) for c in tree.children), span)
        raise AssertionError(kind)

    def named_type(self, tree: Tree) -> ast.TypeExpr:
        name_tok, shape, device = tree.children
        name = name_tok.value
        span = self.span(tree)
        # `int`, `float`, `bool` alone are Python scalars; a written shape or device makes
        # them tensor dtypes (`bool[]`, `int @ cuda`); `int[N]` alone is an int naming size N.
        if name in ast.SCALAR_NAMES and shape is None and device is None:
            return ast.ScalarType(ast.SCALAR_NAMES[name], None, span)
        if name == "int" and device is None and _single_size_dim(shape):
            return ast.ScalarType(ast.ScalarKind.INT, self.size(shape.children[0].children[0].children[0]), span)
        if name in ast.DTYPE_NAMES or name == "Tensor":
            dtype = ast.DTYPE_NAMES.get(name)
            return ast.TensorType(dtype, self.shape(shape), self.device(device), span)
        if device is not None:
            self.fail("GT0011", f"`{name}` is not a dtype, so it takes no device", device,
                      "a struct type has no device",
                      help="dtypes are f16 bf16 f32 f64 i8 i16 i32 i64 u8 bool c64 c128, "
                           "and the categories float int uint complex")
        return ast.StructType(name, self.struct_args(name, shape), span)

    def struct_args(self, name: str, shape: Tree | None) -> tuple[ast.SizeExpr | None, ...]:
        if shape is None or shape.children[0] is None:
            return ()
        args: list[ast.SizeExpr | None] = []
        for dim in shape.children[0].children:
            if dim.data == "size_dim":
                args.append(self.size(dim.children[0]))
            elif dim.data == "dyn_dim":
                args.append(None)
            else:
                self.fail("GT0011", f"struct `{name}` takes sizes, not dims", dim,
                          "expected a size such as `768`, `D` or `4*D`",
                          help="labels and variadic parts belong to tensor shapes")
        return tuple(args)

    def shape(self, tree: Tree | None) -> ast.Shape | None:
        if tree is None:
            return None
        (dims_tree,) = tree.children
        span = self.span(tree)
        if dims_tree is None:
            return ast.Shape(None, (), span)
        variadic = None
        dims: list[ast.Dim] = []
        for i, dim in enumerate(dims_tree.children):
            kind = dim.data
            if kind in ("row_dim", "ellipsis_dim"):
                if i != 0:
                    self.fail("GT0011", "a variadic part may only come first in a shape", dim,
                              "variadic part after a dim",
                              help="move it to the front: shapes are aligned from the right, "
                                   "as in broadcasting",
                              notes=("with variadic parts at both ends two shapes have no exact "
                                     "meet, so gtdsl allows one, leading",))
                name = dim.children[0].value if kind == "row_dim" else None
                variadic = ast.Variadic(name, self.span(dim))
            elif kind == "dyn_dim":
                dims.append(ast.Dim(None, None, self.span(dim)))
            elif kind == "labelled_dim":
                label, size = dim.children
                dims.append(ast.Dim(label.value, self.size(size), self.span(dim)))
            else:
                size = self.size(dim.children[0])
                label = size.name if isinstance(size, ast.SizeVar) else None
                dims.append(ast.Dim(label, size, self.span(dim)))
        return ast.Shape(variadic, tuple(dims), span)

    def size(self, tree: Tree) -> ast.SizeExpr | None:
        kind = tree.data
        span = self.span(tree)
        if kind == "dyn_size":
            return None
        if kind == "size_int":
            return ast.SizeLit(self.int_value(tree.children[0]), span)
        if kind == "size_name":
            return ast.SizeVar(tree.children[0].value, span)
        left, right = tree.children
        lhs, rhs = self.size(left), self.size(right)
        assert lhs is not None and rhs is not None
        return ast.SizeBinOp(_SIZE_OPS[kind], lhs, rhs, span)

    def device(self, tree: Tree | None) -> ast.Device | None:
        if tree is None:
            return None
        (tok,) = tree.children
        span = self.span(tree)
        if tok.type == "QMARK":
            return None
        if tok.type == "CUDA_INDEX":
            return ast.Device(ast.DeviceKind.CUDA, int(tok.value.split(":")[1]), span)
        if tok.value == "cpu":
            return ast.Device(ast.DeviceKind.CPU, None, span)
        if tok.value == "cuda":
            return ast.Device(ast.DeviceKind.CUDA, None, span)
        self.fail("GT0011", f"unknown device `{tok.value}`", tok, "not a device",
                  help="write `@ cpu`, `@ cuda`, `@ cuda:0` (any index) or `@ ?`")


def _opt_value(tok: Token | None) -> str | None:
    return tok.value if tok is not None else None


def _string_prefix(text: str) -> str:
    i = 0
    while i < len(text) and text[i] in _STRING_PREFIX_CHARS:
        i += 1
    return text[:i]


def _single_size_dim(shape: Tree | None) -> bool:
    """True for ``[N]``, ``[768]``, ``[2*H]``: the shape that makes ``int[...]`` a sized int."""
    if shape is None or shape.children[0] is None:
        return False
    dims = shape.children[0].children
    return len(dims) == 1 and dims[0].data == "size_dim"


def _last_span(stmts: tuple[ast.Stmt, ...]) -> Span:
    span = stmts[-1].span
    assert span is not None
    return span


def _describe_expr(expr: Any) -> str:
    return {
        ast.Subscript: "a subscript", ast.Attribute: "an attribute", ast.Call: "a call",
        ast.Tuple: "a nested tuple", ast.List: "a list", ast.BinOp: "an expression",
    }.get(type(expr), "this expression")


def _assign_help(expr: Any) -> str:
    if isinstance(expr, ast.Subscript):
        return ("tensors are immutable in gtdsl: build a new one, e.g. with `where`, "
                "`masked_fill` or `cat`")
    if isinstance(expr, ast.Attribute):
        return "struct fields are immutable: build a new value instead"
    return "assign to a plain name"
