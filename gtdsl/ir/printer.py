"""Text form of the IR, one eqn a line, casts and their blame visible; nested blocks indented
under a label (``then:``/``else:`` of an IF, ``body:`` of a FOR, ``kernel:`` of a KERNEL)."""

from __future__ import annotations

from gtdsl.ir.core import Block, Eqn, Function, Lit, Op, Var

_LABELS = {Op.IF: ("then", "else"), Op.FOR: ("body",), Op.KERNEL: ("kernel",)}


def _param(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_param(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (Var, Lit)):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


def print_eqn(eqn: Eqn, indent: str) -> list[str]:
    outs = ", ".join(f"{v}: {v.type}" for v in eqn.outs)
    ins = ", ".join(str(a) for a in eqn.ins)
    if eqn.op is Op.KERNEL:  # kernel[name: kind]
        params = str(eqn.param("kernel"))
    else:
        # a CHECK_OP's `preds` restate its `facts` for compiled code
        params = ", ".join(f"{k}={_param(v)}" for k, v in eqn.params if k != "preds")
    head = eqn.op.name.lower() + (f"[{params}]" if params else "") + f"({ins})"
    line = f"{indent}{outs} = {head}" if outs else f"{indent}{head}"
    if eqn.span is not None:
        line += f"  # {eqn.span.line}:{eqn.span.column}"
    lines = [line]
    for i, block in enumerate(eqn.blocks):
        label = _LABELS.get(eqn.op, ())[i] if i < len(_LABELS.get(eqn.op, ())) else "block"
        lines.append(f"{indent}  {label}:")
        lines += print_block(block, indent + "    ")
    return lines


def print_block(block: Block, indent: str = "  ") -> list[str]:
    out: list[str] = []
    for eqn in block.eqns:
        out += print_eqn(eqn, indent)
    return out


def print_function(fn: Function) -> str:
    params = ", ".join(f"{p}: {p.type}" for p in fn.params)
    return "\n".join([f"def {fn.name}({params}) -> {fn.returns}:", *print_block(fn.body)])
