"""The direct parser (gtdsl.syntax.direct) against the Lark path: the same tree, spans
included, for every program it builds; everything else is left to Lark, which gives the
diagnostic. Corpora: every .gt file of the repository, Python functions read by @jit,
mutations of them, and generated modules."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from gtdsl.diagnostics import ParseError, SourceFile, Span
from gtdsl.syntax import direct, parse
from gtdsl.syntax.parse import normalise_newlines, parse_file_text, parse_type
from gtdsl.syntax.pyfront import _base_indent, function_source
from gtdsl.syntax.unparse import unparse
from tests import strategies
from tests.conftest import REPO
from tests.fixtures import decorators, jit_functions

CORPUS = sorted(p for d in ("gtdsl/models", "docs/examples", "tests/golden")
                for p in (REPO / d).rglob("*.gt"))
# Realistic code: the direct parser must build these itself, not hand them to Lark.
OWN = [p for p in CORPUS if "golden/errors" not in str(p) and p.name not in (
    "expressions.gt",  # a raw string `r"..."`, on purpose
)]


def differences(a: Any, b: Any, path: str = "tree") -> str | None:
    """Where two trees differ, spans (start and end) included; None when they are equal."""
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Span):
        return None if (a.start, a.end) == (b.start, b.end) else \
            f"{path}: span {a.start}..{a.end} vs {b.start}..{b.end}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            found = differences(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
            if found:
                return found
        return None
    if isinstance(a, tuple):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            found = differences(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if a != b or repr(a) != repr(b):
        return f"{path}: {a!r} vs {b!r}"
    return None


def _parse(text: str, direct_first: bool, base_indent: int = 0) -> tuple[Any, str | None]:
    old = parse.DIRECT
    parse.DIRECT = direct_first
    try:
        return parse_file_text(SourceFile("t.gt", text), base_indent), None
    except ParseError as e:
        return None, str(e)
    finally:
        parse.DIRECT = old


def _lark(file: SourceFile, text: str, base_indent: int) -> Any:
    """The Lark path alone (no checks before it): the tree, or None."""
    from gtdsl.syntax.build import AstBuilder
    from gtdsl.syntax.errors import parse_tree
    from gtdsl.syntax.tokens import SyntaxProblem

    try:
        return AstBuilder(file).module(parse_tree(file, text, "module",
                                                  base_indent=base_indent))
    except (SyntaxProblem, RecursionError):
        return None


def same_either_way(text: str, base_indent: int = 0) -> bool:
    """Assert both paths agree on ``text``; return whether the direct parser built it."""
    fast, fast_error = _parse(text, True, base_indent)
    slow, slow_error = _parse(text, False, base_indent)
    assert fast_error == slow_error, text
    if slow is not None:
        assert differences(fast, slow) is None, (differences(fast, slow), text)
    file = SourceFile("t.gt", text)
    full = text if text.endswith("\n") else text + "\n"
    built = direct.parse_module(file, full, base_indent)
    if built is not None:
        lark = _lark(file, full, base_indent)
        assert lark is not None, f"direct accepted what Lark refuses:\n{text}"
        assert differences(built, lark) is None, (differences(built, lark), text)
    return built is not None and fast is not None


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_corpus_file_parses_the_same(path: Path) -> None:
    text = normalise_newlines(path.read_text(encoding="utf-8"))
    built = same_either_way(text)
    if path in OWN:
        assert built, f"the direct parser left {path.name} to Lark"
    if "golden/errors" in str(path):
        assert not built


def test_functions_read_from_python_parse_the_same() -> None:
    functions = [f for m in (jit_functions, decorators) for f in vars(m).values()
                 if inspect.isfunction(f) and f.__module__ == m.__name__]
    assert len(functions) >= 3
    built = 0
    for fn in functions:
        source = function_source(fn)
        base = _base_indent(source)
        built += same_either_way(source.text, base)
    assert built  # decorated, indented and string-annotated functions included


_PIECE = re.compile(r"\s+|\w+|[^\w\s]")
_INSERTS = ["(", ")", "[", "]", ",", ":", "=", "*", "**", "-", "@", "?", "...", " ", "\n",
            "    ", "\t", "#", '"', "'s'", '"""d"""', "\\\n", "in", "not", "is", "if", "else",
            "elif", "for", "and", "or", "struct", "list", "tuple", "None", "True", "lambda",
            "def", "return", "pass", "as", "from", "import", "x", "1", "1.5", "0x1f", "01",
            "1_0", "cuda:0", "cuda", "cpu", "->", ".", "+=", "==", "<", "int", "f32", "Tensor",
            "__gt_x", "é", "\r", "\ud800", "\x00", "\f"]


def _mutants(text: str, count: int, rnd: random.Random) -> list[str]:
    pieces = _PIECE.findall(text)
    out = []
    for _ in range(count):
        ps = list(pieces)
        for _ in range(rnd.randint(1, 3)):
            j = rnd.randrange(len(ps))
            op = rnd.randrange(6)
            if op == 0:
                del ps[j]
            elif op == 1:
                ps.insert(j, ps[rnd.randrange(len(ps))])
            elif op == 2:
                ps[j] = rnd.choice(_INSERTS)
            elif op == 3:
                k = rnd.randrange(len(ps))
                ps[j], ps[k] = ps[k], ps[j]
            elif op == 4:
                ps.insert(j, "\n" + " " * rnd.choice([0, 2, 4, 8]))
            else:
                ps.insert(j, " ")
        out.append("".join(ps))
    return out


@pytest.mark.parametrize("path", [p for p in CORPUS if "golden/errors" not in str(p)][::3],
                         ids=lambda p: p.name)
def test_mutated_programs_parse_the_same(path: Path) -> None:
    """Small edits of real programs, most of them syntax errors: whatever the direct parser
    builds, Lark builds the same; the rest gets Lark's diagnostic either way."""
    rnd = random.Random(path.name)
    text = normalise_newlines(path.read_text(encoding="utf-8"))
    built = sum(same_either_way(m) for m in _mutants(text, 40, rnd))
    assert built  # some mutants stay well formed, and the direct parser builds them


@settings(max_examples=60)
@given(strategies.modules)
def test_generated_modules_parse_the_same(module: Any) -> None:
    same_either_way(unparse(module))


# The tokenizer's layout: indents, dedents and the line breaks inside brackets, with brackets,
# quotes and comment signs where they could be miscounted; `<` and `>` where a dedent or an
# indent could stand (operators, not layout: Lark refuses these programs).
LAYOUT = [
    "def f():\n> x\n< struct S:\n    a: int\n",
    "def f():\n    return 1\n< x\n",
    "def f() -> int:\n    if x:\n        return 1\n    > y\n",
    'def f(x: int) -> int:\n    y = g("(", x)  # (\n    return y\n',
    'def f(x: int) -> int:\n    y = g(")",\n          x)\n    return y\n',
    "def f(x: int) -> int:\n    y = g('[',  # ]\n          x)\n    return y\n",
    'def f(x: int) -> int:\n    """(\n    ["""\n    return g(x,\n             x)\n',
    "def f(x: int) -> int:\n    y = g(x)) + (1\n    return y\n",
    "def f(x: int) -> int:\n    return g(x,\n\n  # ]\n        x)\n\n\n# end\n",
    "def f(x: int) -> int:\n\tif x:\n\t\treturn 1\n\treturn 2\n",
    "def f(x: int) -> int:\n  \tif x:\n\t  return 1\n        return 2\n",
    "def f(x: int) -> int:\n    if x:\n        if x:\n            return 1\n    return 2",
    "def f(x: int) -> int:\n    if x:\n        return 1\n      return 2\n",
    "struct S:\n    a: f32[\n        n]\n    b: int\n",
    'def f(x: "struct") -> int:\n    return 1\n', 'struct S:\n    a: "struct[n]"\n',
]


@pytest.mark.parametrize("text", LAYOUT)
def test_layout_parses_the_same(text: str) -> None:
    same_either_way(text)


def test_a_line_left_of_the_base_indent_is_left_to_lark() -> None:
    assert not same_either_way("    def f():\n        pass\nx\n", 4)
    assert same_either_way("    def f():\n        pass\n    def g():\n        pass\n", 4)


TYPES = ["f32", "f32[b, 768] @ cuda", "f32[b, 768] @ cuda:1", "?[*b, in=4, out=O] @ ?",
         "? @ cpu", "i64[...]", "Tensor[n, n*2 + 1, (n - 1) // 2 % 3]", "int[N]", "int[2*H]",
         "int[n=3]", "int", "bool[]", "list[tuple[f32[n], Linear[D, ?], int]]",
         "tuple[f32, ]", "  f32[\n n]  ", "f32[n,]", "f32[cuda:0]", "f32 @ cuda:01",
         "f32 @ gpu", "list", "f32[in]", "Foo[n=1]", "f32[n, *b]", "None", "f32[ (n) ]",
         "struct", "struct[n]", "list[struct]"]  # `struct` first: the keyword, for Lark


@pytest.mark.parametrize("text", TYPES)
def test_types_parse_the_same(text: str) -> None:
    results = []
    for flag in (True, False):
        old = parse.DIRECT
        parse.DIRECT = flag
        try:
            results.append(("ok", parse_type(text)))
        except ParseError as e:
            results.append(("error", str(e)))
        finally:
            parse.DIRECT = old
    (kind_a, a), (kind_b, b) = results
    assert kind_a == kind_b
    assert (a == b) if kind_a == "error" else differences(a, b) is None, (a, b)


# Numbers whose kind the tokenizer tells from their text (a point or an exponent makes a
# float; an `e` in a hexadecimal int does not), and texts of every width: Latin-1 only,
# two-byte and four-byte characters, with a lone surrogate or a control character in a
# comment or a string (no token: Lark reads those programs, and refuses them).
NUMBERS = ["1", "1.", ".5", "1.5", "1e5", "1E5", "0e1", "1e-5", "1_0.5e+1_0", "0xE", "0XE1",
           "0xe_1", "0o7", "0b1", "1_000", "007", "1e", "0x", "1.e5", "1..2", "1_", "0xg"]


@pytest.mark.parametrize("number", NUMBERS)
def test_numbers_parse_the_same(number: str) -> None:
    same_either_way(f"def f() -> float:\n    return {number}\n")
    same_either_way(f"def f(x: f32[{number}]) -> int:\n    return 1\n")


@pytest.mark.parametrize("extra", ["§", "—", "\U0001f600", "\ud800", "\x00", "\x1f", "\x7f",
                                   "\x0b", "\u2028"])
@pytest.mark.parametrize("where", ["comment", "string"])
def test_texts_of_every_width_parse_the_same(extra: str, where: str) -> None:
    line = f"    # {extra}\n" if where == "comment" else f'    s = "{extra}"\n'
    text = f"def f(x: f32[n]) -> f32[n]:\n{line}    return x\n"
    same_either_way(text)
    file = SourceFile("t.gt", text)
    ours = extra not in ("\ud800", "\x00", "\x1f", "\x7f", "\x0b")
    assert (direct.parse_module(file, text, 0) is not None) == ours


def test_the_number_form_matches_as_the_grammars_forms_do() -> None:
    """The tokenizer's one number form against the grammar's float and int forms, written
    out as they are there, on every string of up to four number characters and on random
    longer ones: the same matches, the same lengths."""
    d = r"[0-9](?:_?[0-9])*"
    grammar_float = (rf"(?:(?:{d})?\.{d}(?:[eE][-+]?{d})?|{d}\.(?:[eE][-+]?{d})?"
                     rf"|{d}[eE][-+]?{d})")
    grammar_int = rf"(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|{d})"
    tail = r"(?![A-Za-z0-9_.])"
    reference = re.compile(rf"{grammar_float}{tail}|{grammar_int}{tail}")
    ours = re.compile(rf"{direct._NUMBER}{tail}")
    alphabet = "019._eExobf+-"
    texts = ["".join(t) for n in range(1, 5) for t in itertools.product(alphabet, repeat=n)]
    rnd = random.Random(0)
    texts += ["".join(rnd.choice(alphabet + "a7 (") for _ in range(rnd.randint(5, 12)))
              for _ in range(20000)]
    for text in texts:
        for start in range(len(text)):
            a, b = reference.match(text, start), ours.match(text, start)
            assert (a and a.group()) == (b and b.group()), (text, start)
