"""The op catalogue (docs/language.md, "The op set"): one entry per op in ``OPS``, each a
type relation.

Importing this package registers every family.
"""

from gtdsl.ops import (  # noqa: F401
    arrange, conv, create, elementwise, index, linalg, norms, order, reduce, scatter, shape,
)
from gtdsl.ops.base import UNKNOWN, Arg, OpError, Rel
from gtdsl.ops.elementwise import ARITH, COMPARE, binary
from gtdsl.ops.table import OPS, OpDef, Param, bind

__all__ = ["ARITH", "COMPARE", "OPS", "UNKNOWN", "Arg", "OpDef", "OpError", "Param", "Rel",
           "bind", "binary"]
