"""``gtdsl check model.py``: the jitted functions of a Python file, checked without running it.

Input: a ``.py`` file. Output: the diagnostics (and signatures) of every function decorated
with ``@gtdsl.jit`` / ``@jit`` (``jit`` imported from gtdsl, with or without options),
methods and functions under ``if``/``try`` included, checked with the rules that hold when
they are decorated, at their lines in the file. The file is parsed with Python's own parser
and never imported or executed: what a jitted body's names are is read from the module's
top-level statements (imports, number constants, other jitted functions), as
``gtdsl.driver.jit`` reads them from the live module; a name whose value only running the
file could give is the same GT1012 a decorated function gets for a value it cannot use.
The rest of the file is not looked at.
"""

from __future__ import annotations

import ast as pyast
import math
from pathlib import Path
from typing import Any

from gtdsl._records import record
from gtdsl.check import check_module
from gtdsl.check.methods import (
    declared_structs, field_annotations, is_method, loosen_return, rewrite_calls_in,
    rewrite_struct_calls, self_struct_type, typed_self,
)
from gtdsl.check.env import ALLOWED_PYTHON, JitScope, JitSource
from gtdsl.diagnostics import Diagnostic, Label, ParseError, SourceFile, Span
from gtdsl.driver import _bound_names, _free_names, _merged
from gtdsl.ops import OPS
from gtdsl.ops.pyallow import Allowlist, bad_extra_name
from gtdsl.syntax import ast
from gtdsl.syntax.parse import parse_file_text, read_source
from gtdsl.syntax.pyfront import _base_indent

_RUNS = "(gtdsl check reads the file without running it)"
_MATH_VALUES = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
# math's functions a module-level constant may be computed with (bounded in time: no
# factorial, comb or perm of a huge argument)
_MATH_FUNCTIONS = frozenset(("sqrt", "exp", "log", "log2", "log10", "log1p", "expm1", "sin",
                             "cos", "tan", "tanh", "atan", "erf", "floor", "ceil", "fabs",
                             "trunc", "isqrt", "pow", "hypot", "gcd"))
_INT_LIMIT = 1 << 256  # a larger module-level int is no size or constant anyone writes


@record(frozen=False, slots=False)
class PyChecked:
    """What ``check_python_file`` found: diagnostics (errors and warnings, each once), the
    checked signatures, how many jitted functions there were, and whether the file could not
    be read at all."""

    diagnostics: tuple[Diagnostic, ...]
    signatures: tuple[str, ...] = ()
    functions: int = 0
    unreadable: bool = False


@record(frozen=False, slots=False)
class _Binding:
    kind: str  # "module" | "name" | "constant" | "jit" | "refused"
    value: Any


@record(frozen=False, slots=False)
class _JitDef:
    node: pyast.FunctionDef
    qualname: str
    extra: tuple[str, ...]  # its allow_python
    scope: dict[str, _Binding]  # the module's names when it is decorated
    source: JitSource | None = None
    problem: Diagnostic | None = None  # its decorator's options, or its source, are unusable
    cls: pyast.ClassDef | None = None  # the class whose body defines it


def check_python_file(path: str | Path) -> PyChecked:
    """Check every jitted function of the Python file at ``path`` (never imported)."""
    try:
        file, warnings = read_source(path)
    except ParseError as err:
        return PyChecked(tuple(err.diagnostics), unreadable=any(
            d.code.startswith("GT09") for d in err.diagnostics))
    try:
        tree = pyast.parse(file.text, filename=file.name)
    except SyntaxError as err:
        return PyChecked(tuple(warnings) + (_syntax_error(file, err),))
    except ValueError as err:  # a NUL character, on some Pythons
        return PyChecked(tuple(warnings) + (Diagnostic(
            "GT0001", f"Python cannot parse the file: {err}", path=file.name,
            help="gtdsl check reads a .py file with Python's parser; fix the file so that "
                 "Python reads it"),))
    except (RecursionError, MemoryError):
        return PyChecked(tuple(warnings) + (Diagnostic(
            "GT0015", "the Python file is nested too deeply for Python's parser",
            path=file.name, help="split deeply nested expressions into several statements"),))
    reader = _Reader(file, tree)
    reader.module(tree.body)
    return reader.check(tuple(warnings))


def _syntax_error(file: SourceFile, err: SyntaxError) -> Diagnostic:
    line = max(err.lineno or 1, 1)
    col = max((err.offset or 1) - 1, 0)
    start = _offset(file, line, col)
    end = start
    if err.end_lineno is not None and err.end_offset is not None:
        end = _offset(file, err.end_lineno, max(err.end_offset - 1, 0))
    end = max(end, min(start + 1, len(file.text)))
    return Diagnostic("GT0001", f"Python syntax error: {err.msg}",
                      Label(Span(file, start, end), "Python cannot parse this"),
                      help="gtdsl check reads a .py file with Python's parser; fix the file "
                           "so that Python reads it")


def _offset(file: SourceFile, line: int, col: int) -> int:
    """The offset of (1-based ``line``, 0-based character ``col``) in ``file``."""
    starts = file._line_starts
    idx = min(max(line - 1, 0), len(starts) - 1)
    return min(starts[idx] + col, len(file.text))


class _Reader:
    def __init__(self, file: SourceFile, tree: pyast.Module) -> None:
        self.file = file
        self.tree = tree
        self.lines = file.text.splitlines(keepends=True)
        self.bindings: dict[str, _Binding] = {}
        self.gtdsl_modules: set[str] = set()  # local names bound to the gtdsl package
        self.jit_names: set[str] = set()  # local names bound to gtdsl.jit
        self.defs: list[_JitDef] = []
        self.extra: list[JitSource] = []  # jitted forwards read again as a method's callees
        self.star: str | None = None  # the module of a `from X import *`
        self.stem = "".join(c if c.isalnum() else "_" for c in Path(file.name).stem)

    # ------------------------------------------------------------ the module's statements
    def module(self, body: list[pyast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt, conditional=False)

    def statement(self, stmt: pyast.stmt, conditional: bool) -> None:
        if isinstance(stmt, pyast.Import):
            for alias in stmt.names:
                if alias.asname is not None:
                    self.bind_module(alias.asname, alias.name, conditional)
                else:
                    top = alias.name.split(".")[0]
                    self.bind_module(top, top, conditional)
        elif isinstance(stmt, pyast.ImportFrom):
            self.import_from(stmt, conditional)
        elif isinstance(stmt, (pyast.FunctionDef, pyast.AsyncFunctionDef)):
            self.function(stmt, stmt.name, conditional)
        elif isinstance(stmt, pyast.ClassDef):
            self.bind(stmt.name, _Binding("refused", f"the class `{stmt.name}`"), conditional)
            self.class_body(stmt, stmt.name)
        elif isinstance(stmt, (pyast.Assign, pyast.AnnAssign, pyast.AugAssign)):
            self.assign(stmt, conditional)
        elif isinstance(stmt, pyast.Expr):  # `(M := 4)` at the top level binds M
            for node in pyast.walk(stmt.value):
                if isinstance(node, pyast.NamedExpr) and isinstance(node.target, pyast.Name):
                    value = self.constant(node.value)
                    self.bind(node.target.id, _Binding("constant", value) if value is not None
                              else _Binding("refused", f"a value the module computes {_RUNS}"),
                              conditional)
        elif isinstance(stmt, pyast.Delete):
            for target in stmt.targets:
                for name in _target_names(target):
                    self.bindings.pop(name, None)
        elif isinstance(stmt, (pyast.If, pyast.Try, pyast.With, pyast.For, pyast.While,
                               pyast.AsyncWith, pyast.AsyncFor)) or _is_try_star(stmt):
            for name in _bound_by_header(stmt):
                self.bind(name, _Binding("refused", "a value bound by a loop or `with` "
                                         f"header {_RUNS}"), True)
            for block in _blocks(stmt):
                for inner in block:
                    self.statement(inner, conditional=True)
        elif isinstance(stmt, pyast.Match):
            for case in stmt.cases:
                for inner in case.body:
                    self.statement(inner, conditional=True)

    def bind(self, name: str, binding: _Binding, conditional: bool) -> None:
        if conditional and binding.kind not in ("refused", "jit"):
            binding = _Binding("refused", f"a value bound under a condition {_RUNS}")
        self.bindings[name] = binding
        if not conditional:  # (a fallback under `except ImportError` keeps gtdsl's jit)
            self.gtdsl_modules.discard(name)
            self.jit_names.discard(name)

    def bind_module(self, local: str, path: str, conditional: bool) -> None:
        # whether it is an allowlisted namespace is the using function's allowlist's to say
        self.bind(local, _Binding("module", path), conditional)
        if path == "gtdsl":
            self.gtdsl_modules.add(local)

    def import_from(self, stmt: pyast.ImportFrom, conditional: bool) -> None:
        base = stmt.module or ""
        for alias in stmt.names:
            local = alias.asname or alias.name
            if alias.name == "*":
                self.star = base
                if base == "gtdsl":
                    self.jit_names.add("jit")  # `from gtdsl import *` binds jit
                continue
            if stmt.level:
                self.bind(local, _Binding("refused", "a name from a relative import "
                                          f"{_RUNS}"), conditional)
                continue
            path = f"{base}.{alias.name}"
            self.bind(local, _Binding("import", path), conditional)  # a module or a name
            if path == "gtdsl.jit":  # (under a try or an if too: a fallback is common)
                self.jit_names.add(local)

    def assign(self, stmt: pyast.Assign | pyast.AnnAssign | pyast.AugAssign,
               conditional: bool) -> None:
        if isinstance(stmt, pyast.AnnAssign) and stmt.value is None:
            return
        if isinstance(stmt, pyast.AugAssign):  # `N += 1`: N op 1, when both are numbers
            if isinstance(stmt.target, pyast.Name):
                value = self.constant(pyast.BinOp(stmt.target, stmt.op, stmt.value))
                self.bind(stmt.target.id, _Binding("constant", value) if value is not None
                          else _Binding("refused", f"a value the module computes {_RUNS}"),
                          conditional)
            return
        targets = stmt.targets if isinstance(stmt, pyast.Assign) else [stmt.target]
        value = None
        if not isinstance(stmt, pyast.AugAssign) and stmt.value is not None:
            value = self.constant(stmt.value)
        for target in targets:
            if isinstance(target, pyast.Name) and value is not None:
                self.bind(target.id, _Binding("constant", value), conditional)
            else:
                what = _literal_kind(stmt.value) if isinstance(target, pyast.Name) else None
                what = (f"a value of type `{what}`" if what is not None
                        else f"a value the module computes {_RUNS}")
                for name in _target_names(target):
                    self.bind(name, _Binding("refused", what), conditional)

    def constant(self, node: pyast.expr, depth: int = 0) -> int | float | bool | None:
        """A module-level number the file writes (a literal, a constant's name, arithmetic on
        them, ``float("-inf")``, ``math.pi``); None for anything only running could give."""
        if depth > 50:
            return None
        if isinstance(node, pyast.Constant):
            v = node.value
            if isinstance(v, (int, float)) and _small(v):  # bool is an int
                return v
            return None
        if isinstance(node, pyast.Name):
            b = self.bindings.get(node.id)
            return b.value if b is not None and b.kind == "constant" else None
        if isinstance(node, pyast.UnaryOp) and isinstance(node.op, (pyast.USub, pyast.UAdd)):
            v = self.constant(node.operand, depth + 1)
            if v is None:
                return None
            return -v if isinstance(node.op, pyast.USub) else +v
        if isinstance(node, pyast.Attribute) and isinstance(node.value, pyast.Name):
            b = self.bindings.get(node.value.id)
            if b is not None and b.kind == "module" and b.value == "math":
                return _MATH_VALUES.get(node.attr)
            return None
        if (isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name)
                and node.func.id in ("float", "int") and node.func.id not in self.bindings
                and len(node.args) == 1 and not node.keywords):
            arg = node.args[0]
            if (node.func.id == "float" and isinstance(arg, pyast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.strip().lower() in ("inf", "-inf", "+inf", "nan", "infinity",
                                                      "-infinity")):
                return float(arg.value)
            v = self.constant(arg, depth + 1)
            if v is None or (node.func.id == "int" and not math.isfinite(v)):
                return None
            return float(v) if node.func.id == "float" else int(v)
        if (isinstance(node, pyast.Call) and isinstance(node.func, pyast.Attribute)
                and isinstance(node.func.value, pyast.Name) and not node.keywords
                and node.func.attr in _MATH_FUNCTIONS):
            b = self.bindings.get(node.func.value.id)
            args = [self.constant(a, depth + 1) for a in node.args]
            if b is None or b.kind != "module" or b.value != "math" or None in args:
                return None
            try:
                r = getattr(math, node.func.attr)(*args)
            except (ArithmeticError, ValueError, TypeError):
                return None
            return r if type(r) in (int, float) and _small(r) else None
        if isinstance(node, pyast.BinOp):
            left = self.constant(node.left, depth + 1)
            right = self.constant(node.right, depth + 1)
            if left is None or right is None:
                return None
            return _arith(node.op, left, right)
        return None

    # ------------------------------------------------------------ functions and classes
    def function(self, node: pyast.FunctionDef | pyast.AsyncFunctionDef, qualname: str,
                 conditional: bool, in_class: bool = False,
                 cls: pyast.ClassDef | None = None) -> None:
        jitted = self.jit_decorator(node)
        if jitted is not None:
            extra, problem = jitted
            self.defs.append(_JitDef(node, qualname, extra, dict(self.bindings), None,  # type: ignore[arg-type]
                                     problem, cls))
            if not in_class:
                self.bind(node.name, _Binding("jit", self.defs[-1]), conditional)
            return
        if not in_class:
            self.bind(node.name, _Binding("refused", f"the Python function `{qualname}` (not "
                                          "an @gtdsl.jit function, nor an allowlisted name)"),
                      conditional)
        for inner in _nested_defs(node.body):  # jitted functions defined inside it
            if isinstance(inner, pyast.ClassDef):
                self.class_body(inner, f"{qualname}.<locals>.{inner.name}")
            else:
                self.function(inner, f"{qualname}.<locals>.{inner.name}", True,
                              in_class=True)

    def class_body(self, cls: pyast.ClassDef, qualname: str) -> None:
        for stmt in cls.body:
            if isinstance(stmt, (pyast.FunctionDef, pyast.AsyncFunctionDef)):
                self.function(stmt, f"{qualname}.{stmt.name}", False, in_class=True, cls=cls)
            elif isinstance(stmt, pyast.ClassDef):
                self.class_body(stmt, f"{qualname}.{stmt.name}")
            else:
                for inner in _nested_defs([stmt]):  # under an `if` in the class body
                    if isinstance(inner, pyast.ClassDef):
                        self.class_body(inner, f"{qualname}.{inner.name}")
                    else:
                        self.function(inner, f"{qualname}.{inner.name}", False,
                                      in_class=True, cls=cls)

    def jit_decorator(self, node: pyast.FunctionDef | pyast.AsyncFunctionDef
                      ) -> tuple[tuple[str, ...], Diagnostic | None] | None:
        """(its allow_python, a problem with the options) when ``node`` is decorated with
        gtdsl's jit; None when it is not."""
        for deco in node.decorator_list:
            call = deco if isinstance(deco, pyast.Call) else None
            target = call.func if call is not None else deco
            if not self.is_jit(target):
                continue
            if isinstance(node, pyast.AsyncFunctionDef):
                return (), self.at(deco, "GT0007", "an `async def` cannot be jitted",
                                   "async function", "define it with `def`")
            if call is None:
                return (), None
            return self.options(call)
        return None

    def is_jit(self, target: pyast.expr) -> bool:
        if isinstance(target, pyast.Name):
            return target.id in self.jit_names
        return (isinstance(target, pyast.Attribute) and target.attr == "jit"
                and isinstance(target.value, pyast.Name)
                and target.value.id in self.gtdsl_modules)

    def options(self, call: pyast.Call) -> tuple[tuple[str, ...], Diagnostic | None]:
        if call.args:
            return (), self.at(call.args[0], "GT1012", "gtdsl.jit takes options by keyword",
                               "a positional argument", "write @gtdsl.jit or "
                               "@gtdsl.jit(backend=..., allow_python=(...))")
        extra: tuple[str, ...] = ()
        for kw in call.keywords:
            if kw.arg == "allow_python":
                try:
                    value = pyast.literal_eval(kw.value)
                except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
                    value = None
                if (not isinstance(value, (tuple, list))
                        or not all(isinstance(v, str) for v in value)):
                    return (), self.at(kw.value, "GT1012", "allow_python must be written as "
                                       "a tuple of strings for gtdsl check to read it",
                                       "not a literal tuple of names",
                                       "e.g. allow_python=(\"operator.neg\",)")
                for name in value:
                    why = bad_extra_name(name)
                    if why is not None:
                        return (), self.at(kw.value, "GT1012", f"allow_python: {why}",
                                           "here", "name each function or value in full, "
                                           "e.g. allow_python=(\"operator.neg\",)")
                extra = tuple(value)
            elif kw.arg != "backend":
                return (), self.at(kw, "GT1012", f"gtdsl.jit has no option `{kw.arg}`",
                                   "unknown option", "its options are backend and "
                                   "allow_python")
        return extra, None

    def at(self, node: pyast.AST, code: str, message: str, label: str,
           help: str) -> Diagnostic:
        line, end_line = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        start = _offset(self.file, line, self.column(line, node.col_offset))  # type: ignore[attr-defined]
        end = _offset(self.file, end_line, self.column(end_line, node.end_col_offset or 0))  # type: ignore[attr-defined]
        return Diagnostic(code, message, Label(Span(self.file, start, max(end, start + 1)),
                                               label), help=help)

    def column(self, line: int, byte_col: int) -> int:
        """Python's column (UTF-8 bytes into the line) as characters."""
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "ignore"))

    # ------------------------------------------------------------ checking
    def source(self, d: _JitDef) -> JitSource:
        """``d`` parsed as gtdsl, with its scope (parsing errors raise ParseError)."""
        if d.source is not None:
            return d.source
        seg, tree = self.parse(d)
        modname = "".join(c if c.isalnum() else "_" for c in f"{self.stem}_{d.qualname}")
        index = self.defs.index(d)
        decl = tree.functions()[0]
        d.source = src = JitSource(index, f"jit_{index}_{modname}", seg, tree)
        self.fill_scope(d, decl, src.scope)
        if d.cls is not None and is_method(d.qualname, decl):
            if field_annotations(d.cls):  # declared: `self` is the class's struct
                structs = declared_structs(self.file, self.tree, d.cls)
                by_name = {st.name: st for st in structs}
                method = self.declared_method(d, decl, src.scope, by_name, structs[0].name,
                                              frozenset())
                src.tree = ast.Module(tuple(structs) + (method,), tree.docstring, tree.span)
            else:  # read from the instance when called: nothing is known of it here,
                # nor of what calling its attributes does (a layer, a jitted forward)
                src.tree = ast.Module((typed_self(loosen_return(_unknown_self_calls(decl)),
                                                  ast.DynType(decl.params[0].span)),),
                                      tree.docstring, tree.span)
                src.scope.unknown_calls = frozenset((_SELF_CALL,))
        return src

    def parse(self, d: _JitDef) -> tuple[SourceFile, ast.Module]:
        node = d.node
        first = min([node.lineno] + [x.lineno for x in node.decorator_list])
        last = node.end_lineno or node.lineno
        text = "".join(self.lines[first - 1:last])
        seg = SourceFile(self.file.name, text, line_offset=first - 1)
        tree = parse_file_text(seg, base_indent=_base_indent(seg))
        if len(tree.functions()) != 1 or len(tree.body) != 1:
            raise ParseError([Diagnostic("GT0905", f"could not isolate the source of "
                                         f"`{d.qualname}`", path=self.file.name,
                                         help="define the function on its own with `def`")])
        return seg, tree

    def declared_method(self, d: _JitDef, decl: Any, scope: JitScope,
                        structs: dict[str, ast.StructDef], struct: str,
                        active: frozenset[str]) -> Any:
        """As ``gtdsl.driver._declared_method``: ``self`` typed as the declared struct, and
        calls of fields whose class (in this file) has a jitted forward made calls of it."""
        forwards = {e.cls.name: e for e in self.defs if e.cls is not None
                    and e.node.name == "forward" and e.problem is None}

        def callable_struct(name: str) -> bool:
            return name in forwards and name not in active and name != struct

        taken = set(scope.functions) | set(scope.names) | set(scope.constants) | \
            set(scope.refused) | set(scope.modules) | {n for n, _ in _free_names(decl)} | \
            {p.name for p in decl.params} | _assigned(decl)
        decl, callees = rewrite_struct_calls(decl, struct, structs, callable_struct, taken)
        for local, name in callees.items():
            child = forwards[name]
            seg, tree = self.parse(child)
            child_decl = tree.functions()[0]
            child_src = JitSource(10_000_000 + len(self.extra), f"jit_called_{len(self.extra)}_"
                                  f"{name}", seg, tree)
            self.extra.append(child_src)
            self.fill_scope(child, child_decl, child_src.scope)
            method = self.declared_method(child, child_decl, child_src.scope, structs, name,
                                          active | {struct})
            child_src.tree = ast.Module((method,), None, None)
            scope.functions[local] = child_src
        return typed_self(decl, self_struct_type(structs[struct], decl.params[0].span))

    def fill_scope(self, d: _JitDef, decl: Any, scope: JitScope) -> None:
        allowed = _merged(ALLOWED_PYTHON, d.extra)
        for name, called in _free_names(decl):
            binding = d.scope.get(name)
            if binding is None and called and name not in OPS:
                binding = self.bindings.get(name)  # defined further down: the first call's
            if binding is None:
                if self.star is not None and name not in _builtin_names():
                    scope.refused[name] = (f"a name that may come from `from {self.star} "
                                           f"import *` {_RUNS}")
                continue
            if binding.kind in ("module", "import"):
                path = binding.value
                if allowed.is_namespace(path):
                    scope.modules[name] = path
                elif binding.kind == "import" and allowed.is_name(path):
                    scope.names[name] = path
                elif binding.kind == "module":
                    scope.refused[name] = (f"the module `{path}` (not an allowlisted "
                                           "namespace)")
                else:
                    scope.refused[name] = f"`{path}` (not an allowlisted name)"
            elif binding.kind == "constant":
                scope.constants[name] = binding.value
            elif binding.kind == "jit":
                try:
                    scope.functions[name] = self.source(binding.value)
                except ParseError:
                    continue  # its own parse error is reported with it
            else:
                scope.refused[name] = binding.value

    def check(self, warnings: tuple[Diagnostic, ...]) -> PyChecked:
        seen: set[tuple] = set()
        out: list[Diagnostic] = list(warnings)
        signatures: list[str] = []

        def add(diags: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
            for diag in diags:
                p = diag.primary
                key = (diag.code, diag.message, p.span.start if p else None,
                       p.span.file.line_offset if p else None)
                if key not in seen:
                    seen.add(key)
                    out.append(diag)

        for d in self.defs:
            if d.problem is not None:
                add([d.problem])
                continue
            try:
                src = self.source(d)
            except ParseError as err:
                add(err.diagnostics)
                continue
            allowed: Allowlist = _merged(ALLOWED_PYTHON, d.extra)
            for other in self.defs:
                if other.source is not None and other is not d:
                    allowed = _merged(allowed, other.extra)
            result = check_module(src.file, src.tree, None, allowed, ir=False, jit=src)
            add(result.diagnostics)
            signatures += [sig for _, sig in result.signatures]
        out.sort(key=_position)  # stable: diagnostics with no place keep their order
        return PyChecked(tuple(out), tuple(signatures), len(self.defs))


def _position(diag: Diagnostic) -> tuple[int, int]:
    p = diag.primary
    if p is None or p.span is None:
        return (0, 0)
    return p.span.line, p.span.column


_LITERALS = {pyast.Dict: "dict", pyast.List: "list", pyast.Tuple: "tuple", pyast.Set: "set",
             pyast.DictComp: "dict", pyast.ListComp: "list", pyast.SetComp: "set",
             pyast.JoinedStr: "str"}


def _literal_kind(node: pyast.expr | None) -> str | None:
    """The type a literal written at module level has (``{...}`` is a dict); None when only
    running it would tell."""
    if isinstance(node, pyast.Constant):
        return type(node.value).__qualname__
    return _LITERALS.get(type(node)) if node is not None else None


_SELF_CALL = "__gt_self_call"


def _unknown_self_calls(decl: Any) -> Any:
    """``decl`` with each call of something reached through ``self`` (``self(x)``,
    ``self.up(x)``, ``self.layers[0](x)``, ``layer(x)`` in ``for layer in self.layers``)
    made a call whose result is unknown: what it calls is known only from an instance."""
    from gtdsl._records import replace

    me = decl.params[0].name

    def rooted(e: Any, loops: dict[str, Any]) -> bool:
        if isinstance(e, ast.Name):
            return e.id == me or e.id in loops
        if isinstance(e, ast.Attribute):
            return rooted(e.value, loops)
        if isinstance(e, ast.Subscript):
            return rooted(e.value, loops)
        return False

    def element(it: Any, loops: dict[str, Any]) -> Any:
        return True if rooted(it, loops) else None

    def on_call(node: Any, loops: dict[str, Any]) -> Any:
        # `self.x.sum()` is an op on a tensor field; `self.norm(x)` a submodule's call
        if rooted(node.func, loops) and not (
                isinstance(node.func, ast.Attribute) and node.func.attr in OPS
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == me)):
            return ast.Call(ast.Name(_SELF_CALL, node.span), node.args, node.keywords,
                            node.span)
        return None

    return replace(decl, body=rewrite_calls_in(decl.body, element, on_call))


def _assigned(decl: Any) -> set[str]:
    """The names ``decl``'s body assigns (its parameters aside)."""
    return _bound_names(decl) - {p.name for p in decl.params}


def _small(v: int | float | bool) -> bool:
    return not isinstance(v, int) or abs(v) < _INT_LIMIT


def _arith(op: pyast.operator, a: Any, b: Any) -> int | float | None:
    try:
        if isinstance(op, pyast.Add):
            r = a + b
        elif isinstance(op, pyast.Sub):
            r = a - b
        elif isinstance(op, pyast.Mult):
            r = a * b
        elif isinstance(op, pyast.Div):
            r = a / b
        elif isinstance(op, pyast.FloorDiv):
            r = a // b
        elif isinstance(op, pyast.Mod):
            r = a % b
        elif isinstance(op, pyast.Pow):
            if isinstance(a, int) and isinstance(b, int) and (b > 256 or b < 0 and a == 0):
                return None
            r = a ** b
        else:
            return None
    except (ArithmeticError, ValueError, TypeError):
        return None
    if isinstance(r, complex) or not _small(r):
        return None
    return r


def _target_names(target: pyast.expr) -> list[str]:
    if isinstance(target, pyast.Name):
        return [target.id]
    if isinstance(target, (pyast.Tuple, pyast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, pyast.Starred):
        return _target_names(target.value)
    return []


def _is_try_star(stmt: pyast.stmt) -> bool:
    return type(stmt).__name__ == "TryStar"


def _bound_by_header(stmt: pyast.stmt) -> list[str]:
    if isinstance(stmt, (pyast.For, pyast.AsyncFor)):
        return _target_names(stmt.target)
    if isinstance(stmt, (pyast.With, pyast.AsyncWith)):
        return [n for item in stmt.items if item.optional_vars is not None
                for n in _target_names(item.optional_vars)]
    if isinstance(stmt, pyast.Try) or _is_try_star(stmt):
        return [h.name for h in stmt.handlers if h.name]  # type: ignore[attr-defined]
    return []


def _blocks(stmt: pyast.stmt) -> list[list[pyast.stmt]]:
    out = []
    for field in ("body", "orelse", "finalbody"):
        block = getattr(stmt, field, None)
        if block:
            out.append(block)
    for handler in getattr(stmt, "handlers", ()):
        out.append(handler.body)
    return out


def _nested_defs(body: list[pyast.stmt]) -> list[Any]:
    """Functions and classes defined in ``body``'s blocks (not inside those found)."""
    out: list[Any] = []
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (pyast.FunctionDef, pyast.AsyncFunctionDef, pyast.ClassDef)):
            out.append(stmt)
        else:
            for block in reversed(_blocks(stmt)):
                stack.extend(reversed(block))
    return out


_BUILTINS: frozenset[str] | None = None


def _builtin_names() -> frozenset[str]:
    global _BUILTINS
    if _BUILTINS is None:
        import builtins

        _BUILTINS = frozenset(dir(builtins))
    return _BUILTINS
