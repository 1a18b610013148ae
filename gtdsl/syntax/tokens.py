"""The lexical facts both parsers share, and the exception a parse fails with.

gtdsl has two parsers for one grammar (``grammar/gtdsl.lark``): the Lark LALR parser
(``gtdsl.syntax.grammar``), the definition, which also explains every syntax error; and the
direct parser (``gtdsl.syntax.direct``), which builds the same AST from well-formed text
without Lark and hands everything else to Lark. Importing this module imports no Lark.
"""

from __future__ import annotations

from gtdsl.diagnostics import Diagnostic

OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB"}
CLOSERS = {v: k for k, v in OPENERS.items()}
TAB_SIZE = 8

# Python keywords with no place in gtdsl: the construct each one starts, and what to do.
UNSUPPORTED_KEYWORDS: dict[str, tuple[str, str]] = {
    "while": ("`while` loops are not supported in gtdsl",
              "loop with `for i in range(n)`, or use a vectorised op"),
    "class": ("classes are not supported in gtdsl",
              "group parameters in a `struct`, and write functions over it"),
    "try": ("`try` statements are not supported in gtdsl",
            "check inputs with `assert`; types are checked at the boundary"),
    "except": ("`try` statements are not supported in gtdsl", "check inputs with `assert`"),
    "finally": ("`try` statements are not supported in gtdsl", "check inputs with `assert`"),
    "with": ("`with` statements are not supported in gtdsl",
             "move the `with` block into the Python caller"),
    "lambda": ("`lambda` expressions are not supported in gtdsl",
               "define a top-level function with `def`"),
    "yield": ("generators (`yield`) are not supported in gtdsl", "return a list or a tuple"),
    "async": ("async code is not supported in gtdsl",
              "call gtdsl functions from async Python instead"),
    "await": ("async code is not supported in gtdsl",
              "call gtdsl functions from async Python instead"),
    "global": ("`global` declarations are not supported in gtdsl",
               "pass the value as a parameter"),
    "nonlocal": ("`nonlocal` declarations are not supported in gtdsl",
                 "pass the value as a parameter"),
    "del": ("`del` statements are not supported in gtdsl", "let the name go out of scope"),
    "raise": ("`raise` statements are not supported in gtdsl",
              "use `assert condition, \"message\"`"),
    "break": ("`break` is not supported in gtdsl",
              "compute the result without leaving the loop early"),
    "continue": ("`continue` is not supported in gtdsl", "guard the loop body with `if`"),
    "def": ("nested functions are not supported in gtdsl",
            "define the function at the top level of the module"),
    "import": ("imports inside functions are not supported in gtdsl",
               "move the import to the top of the module"),
    "from": ("imports inside functions are not supported in gtdsl",
             "move the import to the top of the module"),
}
# Keywords that start a statement: after an open bracket they mean the bracket was left open.
STATEMENT_KEYWORDS = frozenset(
    "return if elif else for def pass assert from import struct while class try with del "
    "raise break continue global nonlocal".split()
)
STATEMENT_KEYWORD_TOKENS = frozenset(
    "RETURN IF ELIF ELSE FOR DEF PASS ASSERT FROM IMPORT STRUCT".split()
)
# Keywords that gtdsl does use, seen where the grammar cannot take them.
GRAMMAR_KEYWORDS = frozenset(
    "if elif else for in not and or is return pass assert as None True False".split()
)


# Nesting limits, below what the checker's recursion and the generated Python (at most 100
# levels of indentation) can take: `if`/`elif`/`for` blocks and conditional expressions
# inside each other, and the depth of one statement's expression or annotation.
MAX_BLOCK_DEPTH = 64
MAX_EXPR_DEPTH = 100
# Names the generated code uses for itself.
RESERVED_PREFIX = "__gt_"


class SyntaxProblem(Exception):
    """Raised inside the parse with a ready diagnostic; caught by the parse entry points."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def trim_end(text: str, end: int, floor: int) -> int:
    """A block's span ends at its last character that is not blank (Lark counts trailing
    whitespace and comments into it); never before ``floor``."""
    end = min(end, len(text))
    while end > floor and text[end - 1] in " \t\r\n\f":
        end -= 1
    return end
