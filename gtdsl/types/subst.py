"""Substituting size and row variables in types, and unifying a call's arguments with the
callee's parameter types (size variables instantiated afresh at each call); the size and row
variables a type mentions."""

from __future__ import annotations

from collections.abc import Callable

from gtdsl._records import field, record
from gtdsl.types import (
    DOTS, DYN, Size, SizeEq, TDim, TDyn, TList, TScalar, TShape, TStruct, TTensor, TTuple, Type,
    Verdict, decide, solve_for,
)
from gtdsl.types.core import leq, size_leq
from gtdsl.types.lattice import dev_leq, dt_leq

KEEP = object()
SizeEnv = Callable[[str], object]  # a Size, None (unknown), or KEEP


def subst_size(s: Size | None, env: SizeEnv) -> Size | None:
    if s is None:
        return None
    var = s.single_variable()
    if var is not None:  # the common case, as the general one below computes it
        r = env(var)
        if r is KEEP:
            return s
        return r  # type: ignore[return-value]
    unknown = False

    def look(v: str) -> Size | None:
        nonlocal unknown
        r = env(v)
        if r is KEEP:
            return None
        if r is None:
            unknown = True
            return None
        return r  # type: ignore[return-value]

    out = s.substitute(look)
    return None if unknown else out


def substitute(t: Type, env: SizeEnv, rows: dict[str, TShape | None]) -> Type:
    """``t`` with each size variable ``v`` replaced by ``env(v)`` (a Size; None: unknown;
    KEEP: left as is) and each row variable in ``rows`` by its shape (None: ``...``).
    What does not change is shared with ``t``, and ``t`` itself is returned when nothing
    changes."""
    if isinstance(t, TTensor):
        shape = t.shape
        dims = _subst_dims(shape.dims, env)
        row = shape.row
        if row is not None and row.name is not None and row.name in rows:
            prefix = rows[row.name]
            if prefix is None:
                return TTensor(t.dtype, TShape(DOTS, dims), t.device)
            return TTensor(t.dtype, TShape(prefix.row, prefix.dims + dims), t.device)
        if dims is shape.dims:
            return t
        return TTensor(t.dtype, TShape(row, dims), t.device)
    if isinstance(t, TScalar):
        value = subst_size(t.value, env)
        return t if value is t.value else TScalar(t.kind, value)
    if isinstance(t, TStruct):
        args = tuple(subst_size(a, env) for a in t.args)
        return t if all(map(_same, args, t.args)) else TStruct(t.name, args)
    if isinstance(t, TList):
        elem = substitute(t.elem, env, rows)
        return t if elem is t.elem else TList(elem)
    if isinstance(t, TTuple):
        elems = tuple(substitute(e, env, rows) for e in t.elems)
        return t if all(map(_same, elems, t.elems)) else TTuple(elems)
    return t


def _same(a: object, b: object) -> bool:
    return a is b


def _subst_dims(dims: tuple[TDim, ...], env: SizeEnv) -> tuple[TDim, ...]:
    """``dims`` with their sizes substituted: the same tuple when none changes."""
    out: list[TDim] | None = None
    for i, d in enumerate(dims):
        size = d.size
        if size is None:
            new = None
        else:
            var = size.single_variable()
            if var is not None:  # the common case, as subst_size computes it
                new = env(var)
                if new is KEEP:
                    new = size
            else:
                new = subst_size(size, env)
        if new is not size:
            if out is None:
                out = list(dims[:i])
            out.append(TDim(d.label, new))  # type: ignore[arg-type]
        elif out is not None:
            out.append(d)
    return dims if out is None else tuple(out)


def strip_labels(t: Type) -> Type:
    """Labels are static names, erased at run time: conformance ignores them."""
    if isinstance(t, TTensor):
        if all(d.label is None for d in t.shape.dims):
            return t
        return TTensor(t.dtype, TShape(t.shape.row, tuple(TDim(None, d.size)
                                                          for d in t.shape.dims)), t.device)
    if isinstance(t, TList):
        return TList(strip_labels(t.elem))
    if isinstance(t, TTuple):
        return TTuple(tuple(strip_labels(e) for e in t.elems))
    return t


def conforms(a: Type, b: Type) -> bool:
    """``leq(strip_labels(a), strip_labels(b))``: precision with labels ignored, as a cast
    sees it, without building the label-free types."""
    if isinstance(b, TDyn):
        return True
    if isinstance(a, TDyn):
        return False
    if isinstance(a, TTensor) and isinstance(b, TTensor):
        return dt_leq(a.dtype, b.dtype) and dev_leq(a.device, b.device) and \
            _shape_conforms(a.shape, b.shape)
    if isinstance(a, TList) and isinstance(b, TList):
        return conforms(a.elem, b.elem)
    if isinstance(a, TTuple) and isinstance(b, TTuple):
        return len(a.elems) == len(b.elems) and all(map(conforms, a.elems, b.elems))
    return leq(a, b)  # no dims, so no labels


def _shape_conforms(a: TShape, b: TShape) -> bool:
    """``shape_leq`` of the shapes with their labels erased."""
    ad, bd = a.dims, b.dims
    if b.row is None or b.row.name is not None:
        # no row, or a row variable: the same row and pointwise ⊑ dims
        if a.row != b.row or len(ad) != len(bd):
            return False
    elif len(ad) < len(bd):  # b = [..., e1..ek]: a's last k dims pointwise ⊑
        return False
    else:
        ad = ad[len(ad) - len(bd):]
    for x, y in zip(ad, bd):
        xs, ys = x.size, y.size
        if ys is not None and xs is not ys and (xs is None or not size_leq(xs, ys)):
            return False
    return True


@record(frozen=False, slots=False)
class Mismatch(Exception):
    """Unification failed: which component, what was expected and found."""

    code: str
    message: str
    help: str | None = None


@record(frozen=False, slots=False)
class Instance:
    """One call's instantiation: the callee's variables are flexible and bound here."""

    flexible: frozenset[str]
    flex_rows: frozenset[str]
    sizes: dict[str, Size] = field(default_factory=dict)
    rows: dict[str, TShape] = field(default_factory=dict)
    residuals: list[SizeEq] = field(default_factory=list)
    rigid: frozenset[str] = frozenset()  # the caller's own variables

    def env(self, v: str) -> object:
        if v in self.sizes:
            return self.sizes[v]
        if v in self.flexible:
            return None
        return KEEP

    def resolve(self, t: Type) -> Type:
        """The parameter or result type with this call's bindings; unbound variables are ?."""
        rows: dict[str, TShape | None] = {r: self.rows.get(r) for r in self.flex_rows}
        return substitute(t, self.env, rows)

    def accepts(self, arg: Type, param: Type) -> bool:
        """``conforms(arg, self.resolve(param))`` without building the resolved type, for
        ``?`` and for tensors whose shape has no row variable; False also where it does not
        decide (the caller then resolves and casts)."""
        if isinstance(param, TDyn):
            return True
        if type(param) is not TTensor or type(arg) is not TTensor:
            return False
        pshape = param.shape
        prow = pshape.row
        if prow is not None and prow.name is not None:
            return False  # a row variable: its instance is a shape to build
        if not (dt_leq(arg.dtype, param.dtype) and dev_leq(arg.device, param.device)):
            return False
        ad, pd = arg.shape.dims, pshape.dims
        if prow is None:
            if arg.shape.row is not None or len(ad) != len(pd):
                return False
        elif len(ad) < len(pd):
            return False
        else:
            ad = ad[len(ad) - len(pd):]
        env = self.env
        for x, y in zip(ad, pd):
            ys = y.size
            if ys is None:
                continue
            var = ys.single_variable()
            if var is not None:  # as subst_size computes it
                r = env(var)
                if r is KEEP:
                    r = ys
                elif r is None:
                    continue  # unbound: the instance's dim is ?
            else:
                r = subst_size(ys, env)
                if r is None:
                    continue
            xs = x.size
            if xs is not r and (xs is None or not size_leq(xs, r)):  # type: ignore[arg-type]
                return False
        return True

    # ---------------------------------------------------------------- unification
    def unify(self, arg: Type, param: Type, what: str) -> None:
        """Bind the flexible variables of ``param`` from ``arg``'s sizes (labels play no
        part); what cannot be decided yet waits in ``residuals``."""
        if isinstance(arg, TDyn) or isinstance(param, TDyn):
            return
        if isinstance(param, TTensor) and isinstance(arg, TTensor):
            self._shape(arg.shape, param.shape, what)
        elif isinstance(param, TScalar) and isinstance(arg, TScalar):
            if param.value is not None and arg.value is not None:
                self.size(arg.value, param.value, what)
        elif isinstance(param, TStruct) and isinstance(arg, TStruct):
            if param.name == arg.name and len(param.args) == len(arg.args):
                for i, (a, p) in enumerate(zip(arg.args, param.args)):
                    if a is not None and p is not None:
                        self.size(a, p, what, ("size argument", i))
        elif isinstance(param, TList) and isinstance(arg, TList):
            self.unify(arg.elem, param.elem, what)
        elif isinstance(param, TTuple) and isinstance(arg, TTuple):
            for i, (elem, elem_param) in enumerate(zip(arg.elems, param.elems)):
                self.unify(elem, elem_param, f"{what}[{i}]")

    def _shape(self, a: TShape, p: TShape, what: str) -> None:
        k = len(p.dims)
        if a.row is None and p.row is None and len(a.dims) != k:
            raise Mismatch("GT2005", f"{what} has rank {len(a.dims)}, expected {k}")
        if a.row is None and len(a.dims) < k:
            raise Mismatch("GT2005", f"{what} has rank {len(a.dims)}, expected at least {k}")
        n = min(k, len(a.dims))
        for i in range(1, n + 1):
            ad, pd = a.dims[-i], p.dims[-i]
            if ad.size is not None and pd.size is not None:
                self.size(ad.size, pd.size, what,
                          ("dim", len(p.dims) - i if p.row is None else -i))
        if p.row is not None and p.row.name is not None and p.row.name in self.flex_rows:
            # what the row stands for in this call, labels erased (a conformance ignores
            # them, and the caller's labels are no names of the callee's dims)
            prefix = TShape(a.row, tuple(d if d.label is None else TDim(None, d.size)
                                         for d in a.dims[:len(a.dims) - n])) \
                if len(a.dims) >= k else None
            name = p.row.name
            if prefix is not None:
                if name in self.rows:
                    old = self.rows[name]
                    if old.row is None and prefix.row is None and len(old.dims) != len(
                            prefix.dims):
                        raise Mismatch("GT2005", f"{what}: `*{name}` stands for "
                                       f"{len(old.dims)} dims here but {len(prefix.dims)} "
                                       "earlier")
                    for x, y in zip(old.dims[::-1], prefix.dims[::-1]):
                        if x.size is not None and y.size is not None:
                            self.size(y.size, x.size, f"{what}, `*{name}`")
                else:
                    self.rows[name] = prefix

    def settle(self) -> None:
        """Retry the equations left over while a variable was still unbound: a later argument
        may have bound enough of them (``H*K`` solves for ``K`` once ``H`` is known)."""
        changed = True
        while changed:
            changed = False
            rest = []
            for eq in self.residuals:
                p = eq.right.substitute(lambda v: self.sizes.get(v))
                unbound = p.variables() & (self.flexible - set(self.sizes))
                sol = solve_for(p, eq.left, unbound) if unbound else None
                if sol is not None:
                    self.sizes[sol.var] = sol.value
                    changed = True
                else:
                    rest.append(eq)
            self.residuals = rest

    def undetermined(self, later: set[str]) -> list[str]:
        """The flexible size variables that stay open: no argument bound them, and they
        cannot be solved at run time either, once the variables in ``later`` (those that
        arguments of statically unknown size may bind) are known."""
        known = set(self.sizes) | later
        changed = True
        while changed:
            changed = False
            for eq in self.residuals:
                unknown = eq.right.variables() & (self.flexible - known)
                if len(unknown) == 1 and eq.right.is_linear_in(next(iter(unknown))):
                    known |= unknown
                    changed = True
        out: list[str] = []
        for eq in self.residuals:
            for v in sorted(eq.right.variables() & (self.flexible - known)):
                if v not in out:
                    out.append(v)
        return out

    def size(self, a: Size, p: Size, what: str,
             part: tuple[str, int] | None = None) -> None:
        """Equate the argument's size ``a`` with the parameter's ``p`` (of ``what``, at
        ``part``: ("dim", 1) reads "dim 1", written out only for a message)."""
        # This call's bindings; the variables not bound here (the caller's, or flexible ones
        # not yet solved) are kept.
        sizes = self.sizes
        if sizes:
            p = p.substitute(sizes.get)
        flexible = self.flexible
        var = p.single_variable()
        if var is not None:
            unbound = {var} if var in flexible and var not in sizes else set()
        else:
            unbound = {v for v in p.variables() if v in flexible and v not in sizes}
        if unbound:
            sol = solve_for(p, a, unbound)
            if sol is not None:
                self.sizes[sol.var] = sol.value
                return
            self.residuals.append(SizeEq(a, p))
            return
        if a == p:  # what decide() says at once: VALID
            return
        verdict = decide(a, p)
        if verdict is Verdict.VALID:
            return
        if verdict is Verdict.UNSAT:
            raise Mismatch("GT2004", f"{_where(what, part)}: expected size {p}, got {a}")
        if not a.has_opaque() and not p.has_opaque() and (
                a.variables() | p.variables()) <= self.rigid:
            raise Mismatch("GT2006", f"{_where(what, part)}: expected size {p}, got {a}, "
                           "which differs for "
                           "some values of the size variables",
                           "the caller's size variables are rigid: pass a value whose size "
                           "is the one the parameter needs")
        self.residuals.append(SizeEq(a, p))


__all__ = ["DYN", "Instance", "KEEP", "Mismatch", "conforms", "strip_labels", "subst_size",
           "substitute"]


def _where(what: str, part: tuple[str, int] | None) -> str:
    return what if part is None else f"{what}, {part[0]} {part[1]}"


def size_vars_of(t: Type, out: list[str], rows: list[str]) -> None:
    """Size and row variables of ``t`` in order of first appearance."""
    def add_size(s: Size | None) -> None:
        if s is None:
            return
        var = s.single_variable()  # the common case: `n`
        if var is not None:
            if var not in out:
                out.append(var)
            return
        for v in sorted(s.variables()):
            if v not in out:
                out.append(v)

    if isinstance(t, TTensor):
        if t.shape.row is not None and t.shape.row.name and t.shape.row.name not in rows:
            rows.append(t.shape.row.name)
        for d in t.shape.dims:
            add_size(d.size)
    elif isinstance(t, TScalar):
        add_size(t.value)
    elif isinstance(t, TStruct):
        for a in t.args:
            add_size(a)
    elif isinstance(t, TList):
        size_vars_of(t.elem, out, rows)
    elif isinstance(t, TTuple):
        for e in t.elems:
            size_vars_of(e, out, rows)
