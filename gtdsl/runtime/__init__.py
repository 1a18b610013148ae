"""The runtime: the reference interpreter, runtime casts with blame, and the JIT.

Input: a checked module (its IR). Output: callable functions. ``jit`` and ``load`` compile on
first call per specialization key through the torch backend (``gtdsl.lower.torch``);
``interpret`` runs the IR with every check, the oracle for every backend.
"""

from gtdsl.runtime.errors import CastError, TypeCheckError
from gtdsl.runtime.jit import CacheInfo, CompiledModule, JitFunction, jit, load

__all__ = ["CacheInfo", "CastError", "CompiledModule", "JitFunction", "TypeCheckError", "jit",
           "load"]
