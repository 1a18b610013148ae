"""Syntax: the grammar, the frozen AST, the Python-function front end and the unparser.

Contract: input is source text (a ``.gt`` file, a type string, or a Python function's own
source); output is ``gtdsl.syntax.ast`` values with spans, or a ``ParseError`` carrying one
located diagnostic. No Lark object leaves this package.
"""

from gtdsl.syntax.parse import parse_file, parse_source, parse_type, read_source
from gtdsl.syntax.pyfront import parse_function
from gtdsl.syntax.unparse import unparse, unparse_type

__all__ = [
    "parse_file",
    "parse_function",
    "parse_source",
    "parse_type",
    "read_source",
    "unparse",
    "unparse_type",
]
