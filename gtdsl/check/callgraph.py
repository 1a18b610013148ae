"""The call graph of a checking session: every function ordered callees first, so that a
caller is checked after its callees and sees their inferred return types; cycles of calls
(GT2020) and chains of nested calls too deep to run (GT2023) reported.
"""

from __future__ import annotations

from typing import Any

from gtdsl._records import is_record, record_fields
from gtdsl.check.env import FnInfo, Session, diag
from gtdsl.syntax import ast


# The longest chain of nested calls between gtdsl functions: each call takes three to five
# Python frames at run time (more inside blocks, in the reference interpreter), and Python
# stops at 1000 frames, some of them the caller's.
MAX_CALL_DEPTH = 100
_SHOWN_IN_CHAIN = 6  # functions named at each end of a long cycle or chain


def call_order(session: Session) -> list[FnInfo]:
    """Every function of the session, callees before their callers, so that checking a
    caller finds each callee checked and nothing recurses. Reports a cycle of calls (GT2020)
    and calls nested more than ``MAX_CALL_DEPTH`` deep (GT2023), and records the functions
    on cycles in ``session.cyclic``. Iterative: a long chain costs no stack.

    The depth of a function is 1 for itself plus the deepest of its own blocks and of its
    calls, each call counting the ``if``/``for`` blocks and conditional expressions it sits
    in: what the reference interpreter nests at run time."""
    fns = [fn for mod in session.modules.values() for fn in mod.functions.values()]
    edges: dict[int, list[tuple[FnInfo, ast.Call, int]]] = {}
    own: dict[int, int] = {}
    for fn in fns:
        edges[id(fn)], own[id(fn)] = _calls_of(fn)
    sccs = _components(fns, edges)  # callees' components first
    comp: dict[int, int] = {id(fn): i for i, scc in enumerate(sccs) for fn in scc}
    depth: dict[int, int] = {}
    deepest: dict[int, tuple[FnInfo, ast.Call] | None] = {}
    for i, scc in enumerate(sccs):
        members = {id(fn) for fn in scc}
        if len(scc) > 1 or any(c is scc[0] for c, _, _ in edges[id(scc[0])]):
            session.cyclic |= members
            _report_cycle(session, scc, members, edges)
        for fn in scc:  # a cycle is reported already: its inner calls count once
            best: tuple[int, tuple[FnInfo, ast.Call] | None] = (own[id(fn)], None)
            for c, call, blocks in edges[id(fn)]:
                if comp[id(c)] != i and blocks + depth[id(c)] > best[0]:
                    best = (blocks + depth[id(c)], (c, call))
            depth[id(fn)], deepest[id(fn)] = best[0] + 1, best[1]
        for fn in scc:
            step = deepest[id(fn)]
            if depth[id(fn)] > MAX_CALL_DEPTH and step is not None and \
                    depth[id(step[0])] <= MAX_CALL_DEPTH:
                _report_depth(session, fn, step, deepest, depth[id(fn)])
    return [fn for scc in sccs for fn in scc]


def _calls_of(fn: FnInfo) -> tuple[list[tuple[FnInfo, ast.Call, int]], int]:
    """The gtdsl functions ``fn``'s body calls by name, in source order, each with the call
    site inside the most blocks and that number of blocks; and the body's deepest block."""
    out: dict[int, tuple[FnInfo, ast.Call, int]] = {}
    deepest = 0
    stack: list[tuple[Any, int]] = [(st, 0) for st in reversed(fn.decl.body)]
    walked = _WALKED
    call, name_ = ast.Call, ast.Name
    pop, push = stack.pop, stack.append
    while stack:
        node, blocks = pop()
        if blocks > deepest:
            deepest = blocks
        cls = type(node)
        if cls is call and type(node.func) is name_:
            callee = fn.module.function(node.func.id)
            if callee is not None and (id(callee) not in out or out[id(callee)][2] < blocks):
                out[id(callee)] = (callee, node, blocks)
        # children pushed last to first, so that they are visited in source order
        for name, block in child_fields(cls):
            value = getattr(node, name)
            if value is None:
                continue
            inner = blocks + block
            if value.__class__ is tuple:
                for v in reversed(value):
                    w = walked.get(type(v))
                    if w is None:
                        w = _walked(type(v))
                    if w:
                        push((v, inner))
            else:
                w = walked.get(type(value))
                if w is None:
                    w = _walked(type(value))
                if w:
                    push((value, inner))
    return list(out.values()), deepest


_WALKED: dict[type, bool] = {}


def _walked(cls: type) -> bool:
    """Whether values of ``cls`` are walked: AST nodes but annotations."""
    found = _WALKED[cls] = is_record(cls) and not issubclass(cls, _TYPES)
    return found


# Annotations hold no calls and add no block: their trees are not walked.
_TYPES = (ast.DynType, ast.TensorType, ast.ScalarType, ast.StructType, ast.ListType,
          ast.TupleType)
_CHILD_FIELDS: dict[type, tuple[tuple[str, int], ...]] = {}


# Fields that never hold a statement or an expression, by their annotations: names,
# numbers, operators, spans, annotations. A field not listed here is walked.
_LEAF_FIELDS = frozenset((
    "str", "str | None", "int", "int | None", "float", "bool", "Span | None", "BinOpKind",
    "UnaryOpKind", "BoolOpKind", "tuple[CmpOp, ...]", "TypeExpr", "TypeExpr | None",
))


def child_fields(cls: type) -> tuple[tuple[str, int], ...]:
    """The fields of an AST class that may hold statements or expressions, last first, each
    with the blocks it adds: 1 for the bodies of ``if``, ``for`` and conditional
    expressions."""
    found = _CHILD_FIELDS.get(cls)
    if found is None:
        names = [f.name for f in record_fields(cls) if f.type not in _LEAF_FIELDS]
        block = issubclass(cls, (ast.If, ast.For, ast.IfExp))
        # last field first: the walk pushes them on a stack
        found = tuple((n, int(block and n in ("body", "orelse"))) for n in reversed(names))
        _CHILD_FIELDS[cls] = found
    return found


def _components(fns: list[FnInfo], edges: dict[int, list[tuple[FnInfo, ast.Call, int]]]
                ) -> list[list[FnInfo]]:
    """Tarjan's strongly connected components, iteratively; a component comes after every
    component it calls into. Members keep source order."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[FnInfo] = []
    order = {id(fn): i for i, fn in enumerate(fns)}
    out: list[list[FnInfo]] = []
    for root in fns:
        if id(root) in index:
            continue
        work: list[tuple[FnInfo, int]] = [(root, 0)]
        while work:
            fn, i = work.pop()
            key = id(fn)
            if i == 0:
                index[key] = low[key] = len(index)
                stack.append(fn)
                on_stack.add(key)
            callees = edges.get(key, [])
            if i > 0:  # back from callees[i - 1]
                low[key] = min(low[key], low[id(callees[i - 1][0])])
            while i < len(callees):
                c = callees[i][0]
                if id(c) not in index:
                    break
                if id(c) in on_stack:
                    low[key] = min(low[key], index[id(c)])
                i += 1
            if i < len(callees):
                work.append((fn, i + 1))
                work.append((callees[i][0], 0))
                continue
            if low[key] == index[key]:
                scc: list[FnInfo] = []
                while True:
                    m = stack.pop()
                    on_stack.discard(id(m))
                    scc.append(m)
                    if m is fn:
                        break
                out.append(sorted(scc, key=lambda f: order.get(id(f), 0)))
    return out


def _chain_text(names: list[str]) -> str:
    if len(names) > 2 * _SHOWN_IN_CHAIN + 1:
        names = names[:_SHOWN_IN_CHAIN] + ["..."] + names[-_SHOWN_IN_CHAIN:]
    return " -> ".join(n if n == "..." else f"`{n}`" for n in names)


def _report_cycle(session: Session, scc: list[FnInfo], members: set[int],
                  edges: dict[int, list[tuple[FnInfo, ast.Call, int]]]) -> None:
    """GT2020 at the first call of the shortest cycle through the component's first
    function, with the other calls of the cycle as secondary labels."""
    start = scc[0]
    parent: dict[int, tuple[FnInfo, ast.Call]] = {}
    queue, head, closing = [start], 0, None
    while head < len(queue) and closing is None:
        fn = queue[head]
        head += 1
        for c, call, _ in edges[id(fn)]:
            if c is start:
                closing = (fn, call)
                break
            if id(c) in members and id(c) not in parent:
                parent[id(c)] = (fn, call)
                queue.append(c)
    assert closing is not None
    steps = [closing]  # (caller, call site), from the last call back to the first
    while steps[-1][0] is not start:
        steps.append(parent[id(steps[-1][0])])
    steps.reverse()
    names = [fn.qualname for fn, _ in steps] + [start.qualname]
    first_fn, first_call = steps[0]
    callee = steps[1][0] if len(steps) > 1 else start
    message = (f"recursive call: `{start.qualname}` calls itself" if len(steps) == 1 else
               f"recursive call: {_chain_text(names)}")
    secondary = tuple((call.span, f"`{fn.qualname}` calls `{nxt.qualname}` here")
                      for (fn, call), nxt in zip(steps[1:], [f for f, _ in steps[2:]] + [start])
                      )[:3]
    session.error(diag("GT2020", message, first_call.span,
                       f"`{first_fn.qualname}` calls `{callee.qualname}` here", secondary,
                       help="compute the repetition with a `for` loop, or unroll it into "
                       "separate functions",
                       notes=((f"a cycle of {len(steps)} functions: " if len(steps) > 1
                               else "") + "gtdsl functions may not call themselves, directly "
                              "or through other functions",)))


def _report_depth(session: Session, fn: FnInfo, step: tuple[FnInfo, ast.Call],
                  deepest: dict[int, tuple[FnInfo, ast.Call] | None], depth: int) -> None:
    names = [fn.qualname]
    cur: tuple[FnInfo, ast.Call] | None = step
    while cur is not None:
        names.append(cur[0].qualname)
        cur = deepest[id(cur[0])]
    levels = f" inside {depth - len(names)} blocks: {depth} levels" if depth > len(
        names) else ""
    session.error(diag(
        "GT2023", f"calls nested too deeply: `{fn.qualname}` starts a chain of {len(names)} "
        f"nested calls{levels}, more than {MAX_CALL_DEPTH}", step[1].span,
        f"the chain goes on through `{step[0].qualname}`",
        help="call the steps one after another from one function instead of each "
        "calling the next", notes=(f"the chain: {_chain_text(names)}",
                                   "each call counts one level, and so does each `if`, `for` "
                                   "or conditional expression a call sits in")))
