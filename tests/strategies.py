"""Hypothesis strategies for gtdsl syntax: types and whole modules.

They generate canonical trees, i.e. trees the parser itself can produce (a bare name in a
dim is always a label, a BoolOp has at least two values, a docstring is lifted out of a
body, literals are non-negative), so that ``parse(unparse(t)) == t`` must hold exactly.
"""

from __future__ import annotations

from hypothesis import strategies as st

from gtdsl.syntax import ast

# Names chosen to stress the contextual lexer: dtype names, `list`, `struct`, `cuda` are
# ordinary names outside types.
NAMES = ["x", "y", "w", "n", "b", "d", "f32", "list", "tuple", "struct", "cuda", "Tensor",
         "int", "sum", "T", "in_", "out", "_h", "α"]
SIZE_NAMES = ["n", "m", "B", "S", "D", "H", "f32", "cuda", "hidden"]
LABELS = SIZE_NAMES + ["in"]
STRUCT_NAMES = ["Linear", "Block", "LayerNorm", "P2"]

names = st.sampled_from(NAMES)

# ------------------------------------------------------------------ types

sizes: st.SearchStrategy[ast.SizeExpr] = st.recursive(
    st.one_of(st.builds(ast.SizeLit, st.integers(0, 4096)),
              st.builds(ast.SizeVar, st.sampled_from(SIZE_NAMES))),
    lambda inner: st.builds(ast.SizeBinOp, st.sampled_from(list(ast.SizeOp)), inner, inner),
    max_leaves=5,
)
unlabelled_sizes = sizes.filter(lambda s: not isinstance(s, ast.SizeVar))


@st.composite
def dims(draw: st.DrawFn) -> ast.Dim:
    kind = draw(st.sampled_from(["dyn", "bare", "labelled", "labelled_dyn", "unlabelled"]))
    if kind == "dyn":
        return ast.Dim(None, None)
    if kind == "bare":
        name = draw(st.sampled_from(SIZE_NAMES))
        return ast.Dim(name, ast.SizeVar(name))
    if kind == "labelled":
        return ast.Dim(draw(st.sampled_from(LABELS)), draw(sizes))
    if kind == "labelled_dyn":
        return ast.Dim(draw(st.sampled_from(LABELS)), None)
    return ast.Dim(None, draw(unlabelled_sizes))


variadics = st.one_of(st.none(), st.just(ast.Variadic(None)),
                      st.builds(ast.Variadic, st.sampled_from(SIZE_NAMES)))
shapes = st.builds(ast.Shape, variadics, st.lists(dims(), max_size=4).map(tuple))
devices = st.one_of(
    st.none(),
    st.just(ast.Device(ast.DeviceKind.CPU)),
    st.just(ast.Device(ast.DeviceKind.CUDA)),
    st.builds(ast.Device, st.just(ast.DeviceKind.CUDA), st.integers(0, 15)),
)
tensor_types = st.builds(ast.TensorType, st.one_of(st.none(), st.sampled_from(list(ast.DType))),
                         st.one_of(st.none(), shapes), devices)
scalar_types = st.one_of(
    st.builds(ast.ScalarType, st.sampled_from(list(ast.ScalarKind))),
    st.builds(ast.ScalarType, st.just(ast.ScalarKind.INT), sizes),
)
struct_types = st.builds(ast.StructType, st.sampled_from(STRUCT_NAMES),
                         st.lists(st.one_of(st.none(), sizes), max_size=3).map(tuple))
base_types = st.one_of(st.just(ast.DynType()), tensor_types, scalar_types, struct_types)
types: st.SearchStrategy[ast.TypeExpr] = st.recursive(
    base_types,
    lambda inner: st.one_of(st.builds(ast.ListType, inner),
                            st.builds(ast.TupleType, st.lists(inner, min_size=1, max_size=3)
                                      .map(tuple))),
    max_leaves=4,
)

# ------------------------------------------------------------------ expressions

literals = st.one_of(
    st.builds(ast.Name, names),
    st.builds(ast.Int, st.integers(0, 10**12)),
    st.builds(ast.Float, st.floats(min_value=0, allow_nan=False, allow_infinity=False)),
    st.builds(ast.Str, st.text(max_size=6)),
    st.builds(ast.Bool, st.booleans()),
    st.just(ast.NoneLit()),
    st.just(ast.EllipsisLit()),
)


def _compound(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    opt = st.one_of(st.none(), inner)
    keywords = st.lists(st.builds(ast.Keyword, names, inner), max_size=2,
                        unique_by=lambda k: k.name).map(tuple)
    return st.one_of(
        st.builds(ast.BinOp, st.sampled_from(list(ast.BinOpKind)), inner, inner),
        st.builds(ast.UnaryOp, st.sampled_from(list(ast.UnaryOpKind)), inner),
        st.builds(ast.BoolOp, st.sampled_from(list(ast.BoolOpKind)),
                  st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(_compare, inner, st.lists(st.tuples(st.sampled_from(list(ast.CmpOp)), inner),
                                            min_size=1, max_size=2)),
        st.builds(ast.IfExp, inner, inner, inner),
        st.builds(ast.Attribute, inner, names),
        st.builds(ast.Call, inner, st.lists(inner, max_size=3).map(tuple), keywords),
        st.builds(ast.Subscript, inner,
                  st.lists(st.one_of(inner, st.builds(ast.Slice, opt, opt, opt)),
                           min_size=1, max_size=3).map(tuple)),
        st.builds(ast.Tuple, st.lists(inner, max_size=3).map(tuple)),
        st.builds(ast.List, st.lists(inner, max_size=3).map(tuple)),
    )


def _compare(left: ast.Expr, pairs: list[tuple[ast.CmpOp, ast.Expr]]) -> ast.Compare:
    return ast.Compare(left, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


exprs: st.SearchStrategy[ast.Expr] = st.recursive(literals, _compound, max_leaves=8)


# ------------------------------------------------------------------ statements

name_nodes = st.builds(ast.Name, names)
targets = st.one_of(name_nodes, st.builds(ast.Tuple, st.lists(name_nodes, min_size=1, max_size=3)
                                          .map(tuple)))
simple_stmts = st.one_of(
    st.builds(ast.Assign, targets, exprs),
    st.builds(ast.AnnAssign, name_nodes, types, exprs),
    st.builds(ast.AugAssign, name_nodes, st.sampled_from(list(ast.BinOpKind)), exprs),
    st.builds(ast.Return, st.one_of(st.none(), exprs)),
    st.builds(ast.Assert, exprs, st.one_of(st.none(), exprs)),
    st.just(ast.Pass()),
    st.builds(ast.ExprStmt, exprs),
)


def _blocks(inner: st.SearchStrategy[ast.Stmt]) -> st.SearchStrategy[ast.Stmt]:
    body = st.lists(inner, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(ast.If, exprs, body, st.one_of(st.just(()), body)),
        st.builds(ast.For, targets, exprs, body),
    )


stmts: st.SearchStrategy[ast.Stmt] = st.recursive(simple_stmts, _blocks, max_leaves=6)


def _not_docstring_like(body: tuple[ast.Stmt, ...]) -> bool:
    first = body[0]
    return not (isinstance(first, ast.ExprStmt) and isinstance(first.value, ast.Str))


# ------------------------------------------------------------------ declarations

@st.composite
def params(draw: st.DrawFn) -> tuple[ast.Param, ...]:
    chosen = draw(st.lists(names, unique=True, max_size=4))
    n_defaults = draw(st.integers(0, len(chosen)))
    out = []
    for i, name in enumerate(chosen):
        default = draw(exprs) if i >= len(chosen) - n_defaults else None
        out.append(ast.Param(name, draw(st.one_of(st.none(), types)), default))
    return tuple(out)


dotted_decorators = st.lists(names, min_size=1, max_size=3).map(
    lambda parts: _dotted(parts))


def _dotted(parts: list[str]) -> ast.Expr:
    expr: ast.Expr = ast.Name(parts[0])
    for p in parts[1:]:
        expr = ast.Attribute(expr, p)
    return expr


decorators = st.one_of(
    dotted_decorators,
    st.builds(ast.Call, dotted_decorators, st.lists(exprs, max_size=2).map(tuple),
              st.lists(st.builds(ast.Keyword, names, exprs), max_size=2,
                       unique_by=lambda k: k.name).map(tuple)),
)
size_params = st.lists(st.sampled_from(SIZE_NAMES), unique=True, max_size=3).map(
    lambda ns: tuple(ast.SizeParam(n) for n in ns))
docstrings = st.one_of(st.none(), st.text(max_size=12))


@st.composite
def functions(draw: st.DrawFn) -> ast.FunctionDef:
    docstring = draw(docstrings)
    body = draw(st.lists(stmts, min_size=1, max_size=4).map(tuple))
    if docstring is None and not _not_docstring_like(body):
        body = (ast.Pass(),) + body
    return ast.FunctionDef(
        name=draw(names), size_params=draw(size_params), params=draw(params()),
        returns=draw(st.one_of(st.none(), types)), body=body, docstring=docstring,
        decorators=tuple(draw(st.lists(decorators, max_size=2))),
    )


structs = st.builds(
    ast.StructDef, st.sampled_from(STRUCT_NAMES), size_params,
    st.lists(st.builds(ast.Field, names, types), max_size=3, unique_by=lambda f: f.name)
    .map(tuple),
    docstrings,
)
dotted_names = st.lists(st.sampled_from(["torch", "nn", "functional", "layers", "math"]),
                        min_size=1, max_size=3).map(".".join)
aliases = st.builds(ast.Alias, names, st.one_of(st.none(), names))
imports = st.one_of(
    st.builds(ast.ImportFrom, dotted_names, st.lists(aliases, min_size=1, max_size=3).map(tuple)),
    st.builds(ast.Import, st.lists(st.builds(ast.Alias, dotted_names, st.one_of(st.none(), names)),
                                   min_size=1, max_size=2).map(tuple)),
)
modules = st.builds(
    ast.Module, st.lists(st.one_of(functions(), structs, imports), max_size=4).map(tuple),
    docstrings,
)
