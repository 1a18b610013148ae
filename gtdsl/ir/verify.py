"""The IR verifier: structural invariants every pass must keep.

- every var is defined once, before its uses, in an enclosing block;
- every eqn's op is in ``Op``; catalogue ops carry their parameter names;
- ``CHECK_CAST`` has one input, one output, a target type equal to the output's type and a
  ``Blame``; ``CHECK_OP`` names the op of the eqn that follows it (or, once fused, an eqn of
  that op with the check's inputs in the block of a later ``KERNEL``);
- every structural op carries its parameters; ``COMPARE``, ``BOOL_OP`` and ``UNARY`` name an
  operator of the operator table of their kind;
- a ``KERNEL``'s block reads only the kernel's inputs and what it defines itself;
- ``IF`` has two blocks, ``FOR`` and ``KERNEL`` one, each ending in ``YIELD`` (or ``RETURN``
  for IF), whose arity matches the eqn's outputs; ``RETURN`` ends a block.
"""

from __future__ import annotations

from gtdsl.ir.core import Blame, Block, Eqn, Function, Op, Program, Var, walk
from gtdsl.ops.operators import names


class VerifyError(Exception):
    pass


# the parameters each structural op must carry
_PARAMS: dict[Op, set[str]] = {
    Op.CHECK_CAST: {"target", "blame"}, Op.CHECK_OP: {"op", "names", "blame"},
    Op.CONST: {"value"}, Op.CALL: {"callee", "args"}, Op.EXTERN: {"path"},
    Op.GET_FIELD: {"field"}, Op.ATTR: {"attr"}, Op.GETATTR: {"attr"}, Op.COMPARE: {"op"},
    Op.BOOL_OP: {"op"}, Op.UNARY: {"op"}, Op.FOR: {"binders"}, Op.KERNEL: {"kernel"},
}
# the operator-table names each operator op may carry
_OPERATOR_OPS: dict[Op, set[str]] = {
    Op.COMPARE: set(names("compare", "membership", "identity")),
    Op.BOOL_OP: set(names("bool")), Op.UNARY: {"neg", "pos"},
}


def verify_program(program: Program) -> None:
    for fn in program.functions:
        verify_function(fn)


def verify_function(fn: Function) -> None:
    defined: set[int] = set()
    for p in fn.params:
        _define(p, defined, fn)
    _block(fn.body, defined, fn, carried=0)


def _define(v: Var, defined: set[int], fn: Function) -> None:
    if v.id in defined:
        raise VerifyError(f"{fn.name}: {v} defined twice")
    defined.add(v.id)


def _block(block: Block, defined: set[int], fn: Function, carried: int | None) -> None:
    scope = set(defined)
    for i, eqn in enumerate(block.eqns):
        for a in eqn.ins:
            if isinstance(a, Var) and a.id not in scope:
                raise VerifyError(f"{fn.name}: {a} used before it is defined ({eqn.op.name})")
        if eqn.op is Op.CHECK_CAST:
            target = eqn.param("target")
            if len(eqn.ins) != 1 or len(eqn.outs) != 1 or eqn.outs[0].type != target or \
                    not isinstance(eqn.param("blame"), Blame):
                raise VerifyError(f"{fn.name}: malformed CHECK_CAST")
        if eqn.op is Op.CHECK_OP:
            nxt = block.eqns[i + 1] if i + 1 < len(block.eqns) else None
            if (nxt is None or nxt.op.value != eqn.param("op")) and \
                    not _fused_later(block.eqns[i + 1:], eqn):
                raise VerifyError(f"{fn.name}: CHECK_OP for {eqn.param('op')} is not followed "
                                  "by that op")
        if eqn.op.catalogue:
            if [k for k, _ in eqn.params] != ["names"]:
                raise VerifyError(f"{fn.name}: {eqn.op.name} lacks its parameter names")
            if len(eqn.param("names")) != len(eqn.ins):
                raise VerifyError(f"{fn.name}: {eqn.op.name} names/inputs arity")
        if eqn.op in _PARAMS and not _PARAMS[eqn.op] <= {k for k, _ in eqn.params}:
            raise VerifyError(f"{fn.name}: {eqn.op.name} lacks "
                              f"{sorted(_PARAMS[eqn.op] - {k for k, _ in eqn.params})}")
        if eqn.op in _OPERATOR_OPS and eqn.param("op") not in _OPERATOR_OPS[eqn.op]:
            raise VerifyError(f"{fn.name}: {eqn.op.name} with operator {eqn.param('op')!r}")
        blocks = {Op.IF: 2, Op.FOR: 1, Op.KERNEL: 1}.get(eqn.op, 0)
        if len(eqn.blocks) != blocks:
            raise VerifyError(f"{fn.name}: {eqn.op.name} has {len(eqn.blocks)} blocks")
        if eqn.op is Op.KERNEL:
            _kernel_reads(fn, eqn)
        for b in eqn.blocks:
            inner = set(scope)
            if eqn.op is Op.FOR:
                for v in eqn.param("binders", ()):
                    _define(v, defined, fn)
                    inner.add(v.id)
            _block(b, inner, fn, carried=len(eqn.outs))
            if not b.eqns or b.eqns[-1].op not in (Op.YIELD, Op.RETURN):
                raise VerifyError(f"{fn.name}: a block of {eqn.op.name} does not end in "
                                  "YIELD or RETURN")
            last = b.eqns[-1]
            if last.op is Op.YIELD and len(last.ins) != len(eqn.outs):
                raise VerifyError(f"{fn.name}: YIELD arity {len(last.ins)} != "
                                  f"{len(eqn.outs)}")
            if eqn.op in (Op.FOR, Op.KERNEL) and last.op is Op.RETURN:
                raise VerifyError(f"{fn.name}: RETURN inside a {eqn.op.name} body")
        if eqn.op in (Op.RETURN,) and i != len(block.eqns) - 1:
            raise VerifyError(f"{fn.name}: RETURN is not the last eqn of its block")
        for v in eqn.outs:
            _define(v, defined, fn)
            scope.add(v.id)


def _fused_later(rest: tuple[Eqn, ...], check: Eqn) -> bool:
    """The op a CHECK_OP checks was fused: a later KERNEL's block runs it on the same inputs
    (the check stays where it was, so it still runs before the kernel)."""
    return any(e.op is Op.KERNEL and any(x.op.value == check.param("op") and x.ins == check.ins
                                         for x in e.blocks[0].eqns) for e in rest)


def _kernel_reads(fn: Function, eqn: Eqn) -> None:
    """A KERNEL's block reads only the kernel's inputs and the values it defines itself."""
    given = {a.id for a in eqn.ins if isinstance(a, Var)}
    for x in walk(eqn.blocks[0]) if eqn.blocks else ():
        for a in x.ins:
            if isinstance(a, Var) and a.id not in given:
                raise VerifyError(f"{fn.name}: kernel {eqn.param('kernel')} reads {a}, which "
                                  "is not one of its inputs")
        given |= {o.id for o in x.outs}
