"""The runtime: the reference interpreter, run-time casts with blame, compiled functions.

Input: a checked IR program (``gtdsl.ir.Program``). Output: callable functions
(``CompiledModule``, ``JitFunction``), compiled on first call per specialization key by the
backend ``gtdsl.runtime.backends`` chooses; ``interp`` runs the IR with every check, the
oracle for every backend. The pipeline that produces the program is ``gtdsl.driver``.
"""

from gtdsl.runtime.errors import CastError, TypeCheckError
from gtdsl.runtime.jit import CacheInfo, JitFunction
from gtdsl.runtime.module import CompiledModule

__all__ = ["CacheInfo", "CastError", "CompiledModule", "JitFunction", "TypeCheckError"]
