"""The IR verifier: structural invariants every pass must keep.

- every var is defined once, before its uses, in an enclosing block;
- every eqn's op is in ``Op``; catalogue ops carry their parameter names;
- ``CHECK_CAST`` has one input, one output, a target type equal to the output's type and a
  ``Blame``; ``CHECK_OP`` names the op of the eqn that follows it;
- ``IF`` has two blocks and ``FOR`` one, each ending in ``YIELD`` (or ``RETURN`` for IF),
  whose arity matches the eqn's outputs; ``RETURN`` ends a block.
"""

from __future__ import annotations

from gtdsl.ir.core import STRUCTURAL, Blame, Block, Function, Op, Program, Var


class VerifyError(Exception):
    pass


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
            if nxt is None or nxt.op.name.lower() != eqn.param("op"):
                raise VerifyError(f"{fn.name}: CHECK_OP for {eqn.param('op')} is not followed "
                                  "by that op")
        if eqn.op.name not in STRUCTURAL:
            if [k for k, _ in eqn.params] != ["names"]:
                raise VerifyError(f"{fn.name}: {eqn.op.name} lacks its parameter names")
            if len(eqn.param("names")) != len(eqn.ins):
                raise VerifyError(f"{fn.name}: {eqn.op.name} names/inputs arity")
        if eqn.op is Op.IF and len(eqn.blocks) != 2 or eqn.op is Op.FOR and len(
                eqn.blocks) != 1:
            raise VerifyError(f"{fn.name}: {eqn.op.name} has {len(eqn.blocks)} blocks")
        for b in eqn.blocks:
            inner = set(scope)
            if eqn.op is Op.FOR:
                for v in eqn.param("binders", ()):
                    _define(v, defined, fn)
                    inner.add(v.id)
            _block(b, inner | defined & set(), fn, carried=len(eqn.outs))
            if not b.eqns or b.eqns[-1].op not in (Op.YIELD, Op.RETURN):
                raise VerifyError(f"{fn.name}: a block of {eqn.op.name} does not end in "
                                  "YIELD or RETURN")
            last = b.eqns[-1]
            if last.op is Op.YIELD and len(last.ins) != len(eqn.outs):
                raise VerifyError(f"{fn.name}: YIELD arity {len(last.ins)} != "
                                  f"{len(eqn.outs)}")
            if eqn.op is Op.FOR and last.op is Op.RETURN:
                raise VerifyError(f"{fn.name}: RETURN inside a FOR body")
        if eqn.op in (Op.RETURN,) and i != len(block.eqns) - 1:
            raise VerifyError(f"{fn.name}: RETURN is not the last eqn of its block")
        for v in eqn.outs:
            _define(v, defined, fn)
            scope.add(v.id)
