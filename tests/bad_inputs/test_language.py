"""Bad programs for the language itself: each is refused by ``gtdsl check`` with its code and a
located diagnostic, never a Python traceback, and within a time limit. The rows cover unary
operators on non-numbers, row and size variables bound only in a return type, identifiers that
Python reads differently (NFKC normalisation, keywords, invalid characters), recursion and deep
call chains, nesting limits, long loops, and constants too large to compute.

Every row runs the real command line in-process (``gtdsl.cli.main``) on a file in a temporary
directory; rows with several files put each one there (imports resolve next to the main file).
"""

from __future__ import annotations

import contextlib
import io
import signal
import time
from pathlib import Path

import pytest

from gtdsl.check.callgraph import MAX_CALL_DEPTH
from gtdsl.check.expressions import MAX_CONSTANT_BITS
from gtdsl.check.statements import MAX_LOOP_TRIPS
from gtdsl.cli import main
from gtdsl.syntax.build_types import MAX_BLOCK_DEPTH, MAX_EXPR_DEPTH

SIG = "def f(x: f32[n]) -> f32[n]:\n"
FAST_S = 1.0  # checking one of the small programs
LONG_S = 5.0  # tens of thousands of tokens: most of it is parsing the text
BIG_S = 20.0  # thousands of functions: most of it is parsing the file


def _chain(n: int, closing: str = "x", inside: str = "") -> str:
    """``f0`` calls ``f1`` ... ``f{n-1}``, which returns ``closing``; each call sits in the
    (indented) statements of ``inside`` when given."""
    out = []
    for i in range(n - 1):
        call = f"f{i + 1}(x) + 1.0"
        if inside:
            out.append(f"def f{i}(x: f32[n]) -> f32[n]:\n    y = x\n{inside.format(call=call)}"
                       f"    return y\n")
        else:
            out.append(f"def f{i}(x: f32[n]) -> f32[n]:\n    return {call}\n")
    out.append(f"def f{n - 1}(x: f32[n]) -> f32[n]:\n    return {closing}\n")
    return "\n".join(out)


def _nested_ifs(depth: int) -> str:
    lines = [SIG.rstrip("\n"), "    y = x"]
    for i in range(depth):
        lines.append("    " * (i + 1) + f"if x.sum() > {i}.0:")
    lines += ["    " * (depth + 1) + "y = y + 1.0", "    return y"]
    return "\n".join(lines) + "\n"


def _elifs(count: int) -> str:
    body = "".join(f"    elif x.sum() > {i}.0:\n        return x + {i}.0\n"
                   for i in range(count))
    return SIG + "    if x.sum() > 0.0:\n        return x\n" + body + "    return x\n"


def _squarings(k: int) -> str:
    return "def f() -> int:\n    m = 3\n" + "    m = m * m\n" * k + "    return m\n"


# (id, files: the main file's text, or {name: text} with the main file first, code, time limit)
ROWS: list[tuple[str, object, str, float]] = [
    # unary operators
    ("neg_string", SIG + "    s = -\"a\"\n    return x\n", "GT2016", FAST_S),
    ("pos_list", SIG + "    s = +[x, x]\n    return x\n", "GT2016", FAST_S),
    ("neg_none", SIG + "    s = -None\n    return x\n", "GT2016", FAST_S),
    # row and size variables bound only in the return type
    ("row_bound_only_as_size", "def f(x: f32[b, n]) -> f32[*b, n]:\n    return x\n", "GT1008",
     FAST_S),
    ("size_bound_only_as_row", "def f(x: f32[*b, n]) -> f32[b, n]:\n    return x\n", "GT1008",
     FAST_S),
    ("row_in_return_only", "def f(x: f32[n]) -> f32[*r, n]:\n    return x\n", "GT1008",
     FAST_S),
    ("size_in_return_only", "def f(x: f32[n]) -> f32[m]:\n    return x\n", "GT1008", FAST_S),
    ("float_param_is_no_size", "def f(c: float) -> f32[c]:\n    return zeros(c)\n", "GT1008",
     FAST_S),
    ("struct_size_param_is_no_row", "struct S[b]:\n    w: f32[*b]\n\n\n"
     "def f(p: S[3]) -> f32[3]:\n    return p.w\n", "GT1008", FAST_S),
    ("struct_return_size_unbound", "struct S[d]:\n    w: f32[d]\n\n\n"
     "def f(p: S[d]) -> f32[e]:\n    return p.w\n", "GT1008", FAST_S),
    ("row_variable_as_value", "def f(x: f32[*b, n]) -> int:\n    return b\n", "GT2024",
     FAST_S),
    # identifiers as Python reads them
    ("invalid_character_in_name", "def f(x\u00b2: f32[n]) -> f32[n]:\n    return x\u00b2\n",
     "GT0002", FAST_S),
    ("nfkc_keyword", SIG + "    \uff49\uff46 = x\n    return x\n", "GT0001", FAST_S),
    ("nfkc_keyword_param", "def f(\uff4e\uff4f\uff54: f32[n]) -> f32[n]:\n    return x\n",
     "GT0001", FAST_S),
    ("reserved_prefix_param", "def f(__gt_self: f32[n]) -> f32[n]:\n    return __gt_self\n",
     "GT0001", FAST_S),
    ("reserved_prefix_size", "def f(x: f32[__gt_s_n]) -> f32[__gt_s_n]:\n    return x\n",
     "GT0001", FAST_S),
    ("nfkc_duplicate_parameter", "def f(n: f32[3], \uff4e: f32[3]) -> f32[3]:\n    return n\n",
     "GT0017", FAST_S),
    ("nfkc_duplicate_size_parameter", "def f[n, \uff4e](x: f32[n]) -> f32[n]:\n    return x\n",
     "GT0017", FAST_S),
    ("nfkc_duplicate_function", SIG + "    return x\n\n\ndef \uff46(x: f32[n]) -> f32[n]:\n"
     "    return x\n", "GT1003", FAST_S),
    ("nfkc_sizes_are_one_variable", "def f(x: f32[n]) -> f32[\uff4e + 1]:\n    return x\n",
     "GT2004", FAST_S),
    # recursion
    ("self_recursion", SIG + "    return f(x)\n", "GT2020", FAST_S),
    ("self_recursion_in_branch", "def f(x: f32[n], k: int) -> f32[n]:\n    if k > 0:\n"
     "        return f(x, k - 1) + 1.0\n    return x\n", "GT2020", FAST_S),
    ("self_recursion_in_loop", "def f(x: f32[n], k: int) -> f32[n]:\n    y = x\n"
     "    for i in range(k):\n        y = f(y, 0)\n    return y\n", "GT2020", FAST_S),
    ("mutual_recursion", "def even(x: f32[n], k: int) -> f32[n]:\n    if k > 0:\n"
     "        return odd(x, k - 1)\n    return x\n\n\ndef odd(x: f32[n], k: int) -> f32[n]:\n"
     "    return even(x + 1.0, k)\n", "GT2020", FAST_S),
    ("recursion_without_types", "def a(x):\n    return b(x)\n\n\ndef b(x):\n    return c(x)\n"
     "\n\ndef c(x):\n    return a(x)\n", "GT2020", FAST_S),
    ("recursion_in_imported_module", {
        "main.gt": "from lib import a\n\n\ndef f(x: f32[n]) -> f32[n]:\n    return a(x)\n",
        "lib.gt": "def a(x):\n    return b(x)\n\n\ndef b(x):\n    return a(x)\n"},
     "GT2020", FAST_S),
    ("recursion_through_imported_function", {
        "main.gt": "from lib import g\n\n\ndef f(x: f32[n]) -> f32[n]:\n    return g(x)\n",
        "lib.gt": "def g(x: f32[n]) -> f32[n]:\n    return h(x)\n\n\n"
                  "def h(x: f32[n]) -> f32[n]:\n    return g(x) + 1.0\n"},
     "GT2020", FAST_S),
    ("cycle_of_2000_functions", _chain(2000, closing="f0(x)"), "GT2020", BIG_S),
    # call chains
    ("chain_past_the_limit", _chain(MAX_CALL_DEPTH + 1), "GT2023", FAST_S),
    ("chain_of_2000", _chain(2000), "GT2023", BIG_S),
    ("chain_in_blocks", _chain(MAX_CALL_DEPTH // 2, inside="    if x.sum() > 0.0:\n"
                               "        for i in range(2):\n            y = {call}\n"),
     "GT2023", FAST_S),
    # nesting
    ("ifs_200", _nested_ifs(200), "GT0015", FAST_S),
    ("ifs_past_the_limit", _nested_ifs(MAX_BLOCK_DEPTH + 1), "GT0015", FAST_S),
    ("elifs_past_the_limit", _elifs(MAX_BLOCK_DEPTH + 1), "GT0015", FAST_S),
    ("conditional_expressions", SIG + "    return " + "x if x.sum() > 0.0 else (" *
     (MAX_BLOCK_DEPTH + 1) + "x" + ")" * (MAX_BLOCK_DEPTH + 1) + "\n", "GT0015", FAST_S),
    ("parentheses_5000", SIG + "    return " + "(" * 5000 + "x" + ")" * 5000 + "\n", "GT0015",
     LONG_S),
    ("sum_of_10000_terms", SIG + "    return " + " + ".join(["x"] * 10000) + "\n", "GT0015",
     LONG_S),
    ("sum_past_the_limit", SIG + "    return " + " + ".join(["x"] * (MAX_EXPR_DEPTH + 2)) +
     "\n", "GT0015", FAST_S),
    ("unary_minus_5000", SIG + "    return " + "-" * 5000 + "x\n", "GT0015", LONG_S),
    ("nested_calls", SIG + "    return " + "abs(" * 200 + "x" + ")" * 200 + "\n", "GT0015",
     FAST_S),
    ("nested_list_type", "def f(x: " + "list[" * 300 + "f32[n]" + "]" * 300 +
     ") -> int:\n    return 0\n", "GT0015", FAST_S),
    ("long_size_expression", "def f(x: f32[" + " + ".join(["n"] * 300) +
     "]) -> int:\n    return 0\n", "GT0015", FAST_S),
    ("string_annotation", "def f(x: \"" + "list[" * 300 + "f32[n]" + "]" * 300 +
     "\") -> int:\n    return 0\n", "GT0015", FAST_S),
    # loops
    ("range_10_12", SIG + "    y = x\n    for i in range(10**12):\n        y = y + 1.0\n"
     "    return y\n", "GT2021", FAST_S),
    ("range_past_the_limit", SIG + f"    y = x\n    for i in range({MAX_LOOP_TRIPS + 1}):\n"
     "        y = y + 1.0\n    return y\n", "GT2021", FAST_S),
    ("range_start_stop_step", SIG + "    y = x\n    for i in range(-10**9, 10**9, 3):\n"
     "        y = y + 1.0\n    return y\n", "GT2021", FAST_S),
    ("nested_loops_multiply", SIG + "    y = x\n    for i in range(2000):\n"
     "        for j in range(1000):\n            y = y + 1.0\n    return y\n", "GT2021", FAST_S),
    ("range_zero_step", SIG + "    y = x\n    for i in range(0, 10, 0):\n        y = y + 1.0\n"
     "    return y\n", "GT2013", FAST_S),
    ("range_float", SIG + "    y = x\n    for i in range(2.5):\n        y = y + 1.0\n"
     "    return y\n", "GT2016", FAST_S),
    ("range_four_arguments", SIG + "    y = x\n    for i in range(1, 2, 3, 4):\n"
     "        y = y + 1.0\n    return y\n", "GT2013", FAST_S),
    ("range_keyword", SIG + "    y = x\n    for i in range(5, step=2):\n        y = y + 1.0\n"
     "    return y\n", "GT2013", FAST_S),
    # constants
    ("power_tower", SIG + "    return x * (9 ** 9 ** 9)\n", "GT2022", FAST_S),
    ("power_past_the_limit", "def f() -> int:\n    return 2 ** " + str(MAX_CONSTANT_BITS + 1) +
     "\n", "GT2022", FAST_S),
    ("power_of_power", "def f() -> int:\n    return 10 ** 10 ** 10\n", "GT2022", FAST_S),
    ("repeated_squaring", _squarings(14), "GT2022", FAST_S),
    ("augmented_power", "def f() -> int:\n    m = 7\n    m **= 100000\n    return m\n",
     "GT2022", FAST_S),
    ("product_of_large_literals", "def f() -> int:\n    return " + "*".join(["9" * 900] * 6) +
     "\n", "GT2022", FAST_S),
    ("literal_too_long", "def f() -> int:\n    return " + "9" * 1001 + "\n", "GT0016", FAST_S),
]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Timeout


def _check(tmp_path: Path, files: object, limit: float) -> tuple[int, str, float]:
    if isinstance(files, str):
        files = {"bad.gt": files}
    assert isinstance(files, dict)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    main_file = tmp_path / next(iter(files))
    out = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(limit) + 5)  # a hang fails the row instead of the whole run
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = main(["check", str(main_file)])
    except _Timeout:
        pytest.fail(f"`gtdsl check` did not finish in {int(limit) + 5} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, out.getvalue(), time.perf_counter() - start


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Load the grammar and the op catalogue once, so that the rows time checking alone."""
    rc, text, _ = _check(tmp_path_factory.mktemp("warm"), SIG + "    return -x\n", 60)
    assert rc == 0, text


@pytest.mark.parametrize(("files", "code", "limit"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_bad_program_is_a_located_diagnostic(tmp_path: Path, files: object, code: str,
                                             limit: float, warm: None) -> None:
    rc, text, took = _check(tmp_path, files, limit)
    assert rc == 1, text
    assert f"error[{code}]" in text, text[:2000]
    first = text[text.index(f"error[{code}]"):].splitlines()
    assert any(line.lstrip().startswith("--> ") and ".gt:" in line for line in first[:3]), \
        text[:2000]
    assert "Traceback" not in text and "RecursionError" not in text
    assert "GT9001" not in text  # never an internal error
    assert took < limit, f"checking took {took:.2f} s"


def test_every_row_has_its_own_name() -> None:
    assert len({r[0] for r in ROWS}) == len(ROWS)


def test_one_struct_name_in_two_modules_is_refused(tmp_path: Path) -> None:
    """Struct types compare by name: two different `S` in one program would let a value of
    one pass for the other."""
    import contextlib
    import io

    from gtdsl.cli import main

    (tmp_path / "b.gt").write_text("struct S:\n    w: f32[3]\n    v: f32[3]\n\n\n"
                                   "def g(s: S) -> f32[3]:\n    return s.w - s.v\n")
    (tmp_path / "a.gt").write_text("from b import g\n\n\nstruct S:\n    w: f32[5]\n\n\n"
                                   "def f(s: S) -> f32[5]:\n    return s.w\n")
    (tmp_path / "dup.gt").write_text("struct S:\n    w: f32[3]\n    w: f32[5]\n")
    for name in ("a.gt", "dup.gt"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(["check", str(tmp_path / name)])
        assert code == 1 and "error[GT1003]" in out.getvalue() and "-->" in out.getvalue()


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069"])
@pytest.mark.parametrize("where", ["comment", "string", "docstring"])
def test_bidirectional_text_controls_are_refused(char: str, where: str, tmp_path: Path) -> None:
    import contextlib
    import io

    from gtdsl.cli import main

    line = {"comment": f"    # ok {char} here", "string": f'    s = "a{char}b"',
            "docstring": f'    """{char}"""'}[where]
    path = tmp_path / "bidi.gt"
    path.write_text(f"def f(x: f32[n]) -> f32[n]:\n{line}\n    return x\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["check", str(path)])
    assert code == 1 and "error[GT0002]" in out.getvalue() and "bidi.gt:2:" in out.getvalue()
