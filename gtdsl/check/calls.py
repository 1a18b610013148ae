"""Calls with checked arguments: catalogue ops (bound to their parameters and checked by their
relation, a ``CHECK_OP`` for what it leaves to run time), calls of gtdsl functions (their size
variables instantiated by the arguments, each argument cast to its parameter), and allowlisted
Python names (values and extern calls of type ``?``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gtdsl.check.builder import V
from gtdsl.check.casts import CastChecker
from gtdsl.check.env import FnInfo
from gtdsl.check.messages import op_label, undefined_help
from gtdsl.diagnostics import Span
from gtdsl.ir.core import Atom, BlameKind, Lit, Op, op_for
from gtdsl.ops import OPS, UNKNOWN, Arg, OpDef, OpError, Rel, bind
from gtdsl.ops.base import resolve_dim, seq_elems
from gtdsl.ops.pyallow import Allowlist, writing_args
from gtdsl.ops.table import positional_names
from gtdsl.syntax import ast
from gtdsl.types import (
    DT, DynReason, Row, ScalarKind, Size, TDyn, TList, TOther, TScalar, TShape, TStruct,
    TTensor, TTuple, Type,
)
from gtdsl.types.subst import KEEP, Instance, Mismatch, size_vars_of, substitute

# the parameters that name dims (by position or by label)
LABEL_PARAMS = {"dim", "dim0", "dim1", "dims", "names", "start_dim", "end_dim"}
_ATOM_PARAMS = frozenset(LABEL_PARAMS)  # the parameters _in_atom rewrites (names too)


class CallChecker(CastChecker):
    # ---------------------------------------------------------------- ops
    def op_call(self, name: str, args: list[V], kwargs: dict[str, V], span: Span | None,
                shown: str | None = None) -> V:
        """``shown`` is how the source wrote the op when it is an operator (``+``)."""
        op = OPS[name]
        if any(v.unresolved for v in args) or any(v.unresolved for v in kwargs.values()):
            # a bare name that is not a variable: only a dim's label can be one
            all_args = list(zip(op.params, args)) + [
                (next((p for p in op.params if p.name == k), None), v)
                for k, v in kwargs.items()]
            for p, v in all_args:
                if v.unresolved and (p is None or p.name not in LABEL_PARAMS):
                    return self.error("GT1001", f"undefined name `{v.label}`", v.span, "not "
                                      "defined", help=undefined_help(v.label, {}, self.fn))
        arg = self.arg
        try:
            bound = bind(op, [arg(a) for a in args],
                         {k: arg(v) for k, v in kwargs.items()} if kwargs else {})
            rel = Rel(rigid=self.rigid)
            out_t = op.relation(rel, bound)
        except OpError as err:
            culprit = None
            if err.arg is not None:
                by_name = dict(zip((p.name for p in op.params), args)) | kwargs
                base, _, rest = err.arg.partition("[")
                culprit = by_name.get(base)
                if rest and culprit is not None and isinstance(culprit.value, tuple):
                    i = int(rest.rstrip("]"))
                    elem = culprit.value[i] if i < len(culprit.value) else None
                    if elem is not None:  # an element of a tuple argument: point at it
                        culprit = V(elem.type, None, span=elem.span)
            where = culprit.span if culprit is not None and culprit.span else span
            secondary: tuple[tuple[Span | None, str], ...] = ()
            if culprit is not None and culprit.decl is not None:
                secondary = ((culprit.decl, f"its type is declared here: {culprit.type}"),)
            elif culprit is None:
                secondary = tuple((a.decl, f"declared as {a.type}") for a in
                                  [*args, *kwargs.values()] if a.decl is not None)[:2]
            sig = (f"`{shown}` is {op.signature()}" if shown else
                   f"the signature is {op.signature()}")
            return self.error(err.code, err.message, where,
                              op_label(f"`{shown}`" if shown else f"call to `{name}`",
                                       culprit), secondary, help=err.help or sig,
                              notes=err.notes)
        names = tuple(bound)
        sources = self._sources(op, args, kwargs)
        ref = _reference_shape(bound[op.params[0].name].type) if op.params else None
        ins = []
        for k in names:
            src = sources.get(k)
            if src.__class__ is V and k not in _ATOM_PARAMS and not src.unresolved:
                ins.append(src.atom)  # what _in_atom gives an argument as it is
                continue
            try:
                ins.append(self._in_atom(k, bound[k], src, ref, span))
            except OpError as err:
                return self.error(err.code, err.message, span,
                                  op_label(f"call to `{name}`", None), help=err.help)
        # An operand of unknown type: the relation is re-run on its metadata when it runs.
        if not rel.residuals and (any(_has_dyn(a.type) for a in args) or any(
                _has_dyn(a.type) for a in kwargs.values())):
            rel.check("operands of unknown type")
        if rel.residuals and self.ir:
            origin = next((a.origin for a in args if a.origin is not None), None)
            extern = any(a.extern for a in args)
            self.emit(Op.CHECK_OP, tuple(ins), (), (
                ("op", name), ("names", names), ("facts", tuple(rel.residuals)),
                ("preds", None if rel.opaque else tuple(rel.preds)),
                ("blame", self.blame(BlameKind.EXTERN if extern else BlameKind.OP_ARG,
                                     f"the arguments of `{name}`", span, origin))), span=span)
        out = self.var(name, out_t)
        self.emit(op_for(name), tuple(ins), (out,), (("names", names),), span=span)
        value = UNKNOWN
        if isinstance(out_t, TScalar) and out_t.value is not None:
            c = out_t.value.constant()
            value = c if c is not None else out_t.value
        origin = None
        if isinstance(out_t, TTensor) and out_t.dtype is DT.ANY:
            origin = next((a.origin for a in args if a.origin is not None), None)
        return V(out_t, out, value=value, span=span, origin=origin)

    def _sources(self, op: OpDef, args: list[V], kwargs: dict[str, V]) -> dict[str, Any]:
        """Each parameter's source: a V, or for a variadic parameter a list of Vs."""
        names = positional_names(op)
        if names and len(args) <= len(names):  # no variadic parameter
            out: dict[str, Any] = dict(zip(names, args))
            if kwargs:
                out.update(kwargs)
            return out
        out = {}
        positional = list(args)
        for p in op.params:
            if p.variadic:
                out[p.name] = positional if len(positional) != 1 or not isinstance(
                    positional[0].type, (TTuple, TList, TDyn)) else positional[0]
                positional = []
            elif positional and not p.keyword_only:
                out[p.name] = positional.pop(0)
        out.update(kwargs)
        return out

    def _in_atom(self, k: str, a: Arg, src: Any, ref: TShape | None,
                 span: Span | None) -> Atom:
        """The IR input for parameter ``k``: dims named by label become positions, a
        variadic parameter becomes one tuple, labels of ``rename`` become strings."""
        if k == "names":
            return Lit(tuple(e.label for e in (seq_elems(a) or (a,))), TOther("label"))
        elems = seq_elems(a) if k in LABEL_PARAMS else None
        if k in LABEL_PARAMS and ref is not None and any(
                e.label is not None and not isinstance(e.value, int)
                for e in (elems if elems is not None else (a,))):
            def pos(e: Arg) -> int:
                p = resolve_dim(ref, e, k)
                if p.index is None:
                    raise OpError("GT2013", f"`{k}` mixes labels with positions known only "
                                  "at run time", k, "pass every dim by label or every dim "
                                  "by position")
                return p.index if ref.row is None else p.negative
            if elems is None:
                return Lit(pos(a), TScalar(ScalarKind.INT))
            return Lit(tuple(pos(e) for e in elems), a.type)
        if isinstance(src, list):  # a variadic parameter given as separate arguments
            if all(isinstance(v.atom, Lit) for v in src):
                return Lit(tuple(v.atom.value for v in src), a.type)
            out = self.var("tup", a.type)
            self.emit(Op.TUPLE, tuple(v.atom for v in src), (out,), span=span)
            return out
        if src is not None and not src.unresolved:
            return src.atom
        return Lit(a.value, a.type)

    # ---------------------------------------------------------------- Python names
    def python_path(self, e: ast.Expr, env: dict[str, V]) -> str | None:
        """The full dotted Python name ``e`` spells (``torch.nn.functional.gelu``) when it is
        an attribute chain on an imported Python namespace, else ``None``."""
        parts: list[str] = []
        while isinstance(e, ast.Attribute):
            parts.append(e.attr)
            e = e.value
        mod = self.fn.module
        if not (isinstance(e, ast.Name) and e.id in mod.py_modules and e.id not in env):
            return None
        return ".".join([mod.py_modules[e.id], *reversed(parts)])

    def python_name(self, path: str, span: Span | None) -> V | None:
        """An error unless ``path`` is an allowlisted Python name (``None`` when it is)."""
        allowed = self.s.allowed
        if allowed.is_name(path):
            return self.python_missing(path, span)
        if allowed.is_namespace(path):
            return self.error("GT2024", f"`{path}` is a module", span, "used as a value",
                              help=f"use one of its names: {path}.NAME")
        return self.error("GT1012", f"`{path}` is not an allowlisted Python name", span,
                          "not allowed", help="a .gt file may use only the pure tensor and "
                          "math functions and values on gtdsl's allowlist (see `gtdsl explain "
                          "GT1012`)", notes=(
                              "a .gt file is data: it never reaches files, processes, the "
                              "network, or functions that call values they are given",))

    def python_value(self, path: str, span: Span | None) -> V:
        """An allowlisted Python name used as a value. Numbers (``math.inf``, ``torch.pi``)
        are constants of their scalar type, as if written out; anything else is an extern
        of type ``?``."""
        dtype = _TORCH_DTYPES.get(path)
        if dtype is not None:  # `torch.float32` is `f32`, for the ops that take a dtype
            dt = TOther("dtype")
            return V(dt, Lit(DT(dtype), dt), value=DT(dtype), span=span)
        obj = self.s.allowed.fact(path).value  # a number's value, else None
        kind = {bool: ScalarKind.BOOL, int: ScalarKind.INT, float: ScalarKind.FLOAT}.get(
            type(obj))
        t: Type
        if kind is not None:
            t = TScalar(kind, Size.of(obj) if type(obj) is int else None)
            return V(t, Lit(obj, t), value=obj, span=span)
        t = TDyn(DynReason.EXTERN)
        out = self.var(path.rsplit(".", 1)[-1], t)
        self.emit(Op.EXTERN, (), (out,), (("path", path), ("call", False)), span=span)
        return V(t, out, span=span, origin=span, extern=True)

    def python_writes(self, path: str, args: list[V], kwargs: dict[str, V]) -> V | None:
        """An error when the call would write into a tensor it is given (``out=``,
        ``inplace=True``, ``max_norm=`` of an embedding, ...): only values known statically
        to leave the arguments alone pass."""
        rules = writing_args(path)
        # no signature (a builtin): its writing arguments are keyword-only
        params = self.s.allowed.fact(path).params
        given = dict(zip(params, args))
        given.update(kwargs)
        for name, v in given.items():
            allowed = rules.get(name)
            if allowed is None or v.value is not UNKNOWN and any(
                    type(v.value) is type(a) and v.value == a for a in allowed):
                continue
            return self.error("GT1012", f"`{path}` with `{name}=` writes into the tensors it "
                              "is given", v.span, "not allowed", help="leave the argument out"
                              + (f" or pass {', '.join(map(repr, allowed))}" if allowed !=
                                 (None,) else ""), notes=(
                                  "a .gt file never writes into its caller's tensors",))
        return None

    def python_missing(self, path: str, span: Span | None) -> V | None:
        """An error when the allowlisted ``path`` does not exist in the installed modules."""
        try:
            self.s.allowed.fact(path)
        except LookupError as err:
            return self.error("GT1012", str(err), span, "not available",
                              help="this Python or torch version lacks it: use another "
                              "allowlisted name")
        return None

    def extern_call(self, path: str, args: list[V], kwargs: dict[str, V], e: ast.Call) -> V:
        for v in [*args, *kwargs.values()]:
            if v.unresolved:
                return self.error("GT1001", f"undefined name `{v.label}`", v.span,
                                  "not defined")
        missing = self.python_missing(path, e.span) or self.python_writes(path, args, kwargs)
        if missing is not None:
            return missing
        as_op = op_of_python(self.s.allowed, path)
        if as_op is not None:  # `F.gelu(x)` is the op `gelu`, checked by its relation
            name, by = as_op
            op_args, op_kwargs = args, kwargs
            if by is not None and len(args) <= len(by):  # bound by the Python parameters
                op_kwargs = {**dict(zip(by, args)), **kwargs}
                op_args = []
            params = OPS[name].params
            known = {p.name for p in params}
            rules = writing_args(path)
            extra = [k for k in op_kwargs if k not in known]
            # arguments the op does not take: writing arguments at values that write nothing
            # (checked above) are left out; any other makes the call the Python function's
            if all(k in rules for k in extra) and len(op_args) <= len(params):
                for k in extra:
                    del op_kwargs[k]
                return self.op_call(name, op_args, op_kwargs, e.span)
        t = TDyn(DynReason.EXTERN)
        out = self.var(path.rsplit(".", 1)[-1], t)
        self.emit(Op.EXTERN, tuple(a.atom for a in args) + tuple(v.atom for v in
                                                                  kwargs.values()), (out,),
                  (("path", path), ("keywords", tuple(kwargs))), span=e.span)
        return V(t, out, span=e.span, origin=e.span, extern=True)

    # ---------------------------------------------------------------- gtdsl functions
    def user_call(self, callee: FnInfo, args: list[V], kwargs: dict[str, V],
                  e: ast.Call) -> V:
        for v in [*args, *kwargs.values()]:
            if v.unresolved:
                return self.error("GT1001", f"undefined name `{v.label}`", v.span,
                                  "not defined", help=undefined_help(v.label, {}, self.fn))
        if callee.state != "done" and id(callee) in self.s.cyclic:
            return self.dyn_error(e.span)  # a call on a cycle: reported as GT2020
        self.ensure(callee)
        params = callee.params
        bound: dict[str, V] = {}
        if len(args) > len(params):
            return self.error("GT2013", f"`{callee.name}` takes {len(params)} arguments, got "
                              f"{len(args)}", e.span, "called here",
                              ((callee.decl.span, "defined here"),))
        for (pname, _, _), v in zip(params, args):
            bound[pname] = v
        size_args: dict[str, Size] = {}
        for k, v in kwargs.items():
            if k not in {p[0] for p in params} and k in callee.size_vars:
                # a size variable of the callee, given by keyword (as from Python)
                value = v.type.value if isinstance(v.type, TScalar) and \
                    v.type.kind is ScalarKind.INT else None
                if value is None or value.has_opaque() or value.variables() - self.rigid:
                    return self.error(
                        "GT2013", f"size `{k}` of `{callee.name}` needs a size the checker "
                        f"knows, got {v.type}", v.span, "not a known size",
                        ((callee.decl.span, "defined here"),),
                        help="pass a size variable, an integer literal, or an expression "
                        "of them")
                size_args[k] = value
                continue
            if k not in {p[0] for p in params}:
                return self.error("GT2013", f"`{callee.name}` has no parameter `{k}`", v.span,
                                  "unknown keyword", ((callee.decl.span, "defined here"),))
            if k in bound:
                return self.error("GT2013", f"`{callee.name}` got `{k}` twice", v.span, "here")
            bound[k] = v
        for pname, _, p in params:
            if pname not in bound and p.default is None:
                return self.error("GT2013", f"`{callee.name}` is missing its argument "
                                  f"`{pname}`", e.span, "called here",
                                  ((p.span, "parameter declared here"),))
        # The callee's variables renamed apart, then instantiated afresh for this call.
        plan = self._plan(callee)
        ren, ptypes = plan.ren, plan.ptypes
        inst = Instance(plan.flexible, plan.flex_rows, rigid=self.rigid)
        inst.sizes.update({ren[k]: value for k, value in size_args.items()})
        pdecl = plan.pdecl
        for pname, v in bound.items():
            try:
                inst.unify(v.type, ptypes[pname], plan.what[pname])
            except Mismatch as m:
                return self.error(m.code, f"in a call to `{callee.name}`: {m.message}", v.span,
                                  f"this has type {v.type}",
                                  ((pdecl[pname], f"parameter `{pname}` declared here"),),
                                  help=m.help or "pass a value of the declared type, or "
                                  "loosen the parameter's annotation")
        if inst.residuals:
            inst.settle()
            # a size the arguments leave open (`H` and `K` from an `H*K` dim) fails at run
            # time too, unless an argument whose size is not known statically can still fix it
            later = {x for pname, v in bound.items() if not _fully_static(v.type)
                     for x in plan.param_vars[pname]}
            open_vars = inst.undetermined(later)
        else:
            open_vars = inst.undetermined(set())
        if open_vars:
            back = {r: v for v, r in ren.items()}
            names = [back[x] for x in open_vars]
            where = next(pname for pname, _, _ in params
                         if set(open_vars) & plan.param_vars[pname])
            shown = ", ".join(f"`{n}`" for n in names)
            return self.error(
                "GT2013", f"in a call to `{callee.name}`: no argument determines {shown}",
                e.span, "called here",
                ((pdecl[where], f"`{where}` mentions {shown} only in products or "
                  "sums of unknowns"),),
                help="give them by keyword: " + ", ".join(f"{n}=..." for n in names))
        atoms = []
        name = callee.name
        for pname in plan.order:
            if pname not in bound:
                continue
            v = bound[pname]
            if inst.accepts(v.type, ptypes[pname]):  # as coerce finds it, without a cast
                atoms.append(v.atom)
                continue
            # a parameter type without the callee's variables is its own instance
            target = inst.resolve(ptypes[pname]) if plan.param_vars[pname] or \
                plan.param_rows[pname] else ptypes[pname]
            kind = BlameKind.EXTERN if v.extern else BlameKind.OP_ARG
            what = f"argument `{pname}` of `{name}`"
            c = self.coerce(v, target, partial(self.blame, kind, what, v.span, v.origin),
                            pdecl[pname], what, v.span)
            atoms.append(c.atom)
        rt = inst.resolve(plan.returns)
        out = self.var(callee.name, rt)
        # The callee's size variables as this call instantiated them: the callee binds them
        # from these (`attention[H, K]` cannot recover H and K from `H*K`-sized weights).
        if self.ir:
            isizes, rigid = inst.sizes, self.rigid
            sizes = tuple((v, isizes[r]) for v, r in plan.size_vars
                          if r in isizes and not (isizes[r].variables() - rigid))
            self.emit(Op.CALL, tuple(atoms), (out,), (
                ("callee", callee.qualname), ("args", tuple(p for p in plan.order if p in bound)),
                ("sizes", sizes)), span=e.span)
        return V(rt, out, span=e.span)

    def _plan(self, callee: FnInfo) -> CallPlan:
        """What every call of ``callee`` needs from its signature, its variables renamed
        apart (``d`` is ``d'``): made once for a checked callee."""
        plan = self.s.renamed.get(id(callee)) if callee.state == "done" else None
        if plan is None:
            plan = CallPlan(callee)
            if callee.state == "done":
                self.s.renamed[id(callee)] = plan
        return plan


class CallPlan:
    """A callee's signature as its calls instantiate it: parameters in order, their types
    with the callee's size and row variables renamed apart, the variables each mentions."""

    def __init__(self, callee: FnInfo) -> None:
        params = callee.params
        self.order = tuple(pname for pname, _, _ in params)
        self.ren = ren = {v: f"{v}'" for v in callee.size_vars}
        ren_rows = {r: f"{r}'" for r in callee.row_vars}
        int_params = {pname for pname, t, _ in params if isinstance(t, TScalar)
                      and t.kind is ScalarKind.INT and t.value is None}
        rows: dict[str, TShape | None] = {r: TShape(Row(n), ()) for r, n in ren_rows.items()}

        renamed = {v: Size.of(n) for v, n in ren.items()}

        def env(v: str) -> object:
            found = renamed.get(v)
            if found is not None:
                return found
            return None if v in int_params else KEEP

        def rename(t: Type) -> Type:
            return substitute(t, env, rows)

        self.ptypes = {pname: rename(t) for pname, t, _ in params}
        self.returns = rename(callee.returns)
        self.flexible = frozenset(ren.values())
        self.flex_rows = frozenset(ren_rows.values())
        self.pdecl = {pname: p.annotation.span if p.annotation else p.span
                      for pname, _, p in params}
        self.what = {pname: f"argument `{pname}`" for pname in self.order}  # for messages
        self.param_vars: dict[str, set[str]] = {}
        self.param_rows: dict[str, bool] = {}
        for pname, t in self.ptypes.items():
            names: list[str] = []
            row_names: list[str] = []
            size_vars_of(t, names, row_names)
            self.param_vars[pname] = set(names)
            self.param_rows[pname] = bool(row_names)
        # the callee's size variables no parameter is named after, with their new names
        self.size_vars = tuple((v, ren[v]) for v in callee.size_vars if v not in self.order)


_AS_OP: dict[str, tuple[str, tuple[str, ...] | None] | None] = {}


def op_of_python(allowed: Allowlist, path: str) -> tuple[str, tuple[str, ...] | None] | None:
    """The catalogue op an allowlisted Python function is, so that a call of it is checked
    as the op is (``torch.nn.functional.gelu`` is ``gelu``, ``torch.nn.functional.relu`` is
    ``relu``): the op whose torch function it is, or, for ``torch.nn.functional.X`` where
    the op ``X`` is ``torch.X``, that op when the function has its parameters in the same
    order (then, with the Python parameter names to bind positional arguments by). None for
    any other name."""
    if path in _AS_OP:
        return _AS_OP[path]
    found: tuple[str, tuple[str, ...] | None] | None = None
    module, _, name = path.rpartition(".")
    op = _by_torch_path().get(path)
    if op is not None:
        found = (op, None)
    elif module == "torch.nn.functional" and name in OPS and OPS[name].torch == f"torch.{name}":
        try:
            params = allowed.fact(path).params
        except LookupError:
            params = ()
        wanted = [p.name for p in OPS[name].params if not p.variadic and not p.keyword_only]
        it = iter(params)
        if params and all(w in it for w in wanted):  # a subsequence: the same order
            found = (name, tuple(params))
    _AS_OP[path] = found
    return found


_TORCH_DTYPES = {
    "torch.float16": "f16", "torch.half": "f16", "torch.bfloat16": "bf16",
    "torch.float32": "f32", "torch.float": "f32", "torch.float64": "f64", "torch.double": "f64",
    "torch.int8": "i8", "torch.int16": "i16", "torch.short": "i16", "torch.int32": "i32",
    "torch.int": "i32", "torch.int64": "i64", "torch.long": "i64", "torch.uint8": "u8",
    "torch.bool": "bool", "torch.complex64": "c64", "torch.complex128": "c128",
}
_TORCH_PATHS: dict[str, str] = {}


def _by_torch_path() -> dict[str, str]:
    """Each op by its torch function's path (``torch.nn.functional.gelu`` -> ``gelu``)."""
    if not _TORCH_PATHS:
        _TORCH_PATHS.update({d.torch: n for n, d in OPS.items() if d.torch.startswith("torch.")})
    return _TORCH_PATHS


def is_python_value(allowed: Allowlist, path: str) -> bool:
    """Whether the allowlisted name ``path`` is a value (``math.inf``), not a function."""
    try:
        return not allowed.fact(path).is_callable
    except LookupError:
        return False


def _reference_shape(t: Type) -> TShape | None:
    """The shape whose dims an op's dim arguments name: its first tensor (or first element
    of a tensor list, as in ``cat``)."""
    if isinstance(t, TTensor):
        return t.shape
    if isinstance(t, TTuple) and t.elems:
        return _reference_shape(t.elems[0])
    if isinstance(t, TList):
        return _reference_shape(t.elem)
    return None


def _has_dyn(t: Type) -> bool:
    """Whether ``t`` is, or holds, a ``?`` that is not an error."""
    if isinstance(t, TDyn):
        return t.reason is not DynReason.ERROR
    if isinstance(t, TTuple):
        return any(_has_dyn(e) for e in t.elems)
    if isinstance(t, TList):
        return _has_dyn(t.elem)
    return False


def _fully_static(t: Type) -> bool:
    """Every size in ``t`` is known statically (as a constant or a size variable)."""
    if isinstance(t, TTensor):
        return t.shape.row is None and all(d.size is not None for d in t.shape.dims)
    if isinstance(t, TStruct):
        return all(a is not None for a in t.args)
    if isinstance(t, (TList,)):
        return _fully_static(t.elem)
    if isinstance(t, TTuple):
        return all(_fully_static(e) for e in t.elems)
    return not isinstance(t, TDyn)


def _size_vars(t: Type) -> set[str]:
    names: list[str] = []
    size_vars_of(t, names, [])
    return set(names)
