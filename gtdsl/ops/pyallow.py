"""The Python names a ``.gt`` file may use: an explicit list of pure functions and values.

A ``.gt`` file is untrusted input: checking or running one must never run a command, read or
write a file, reach the network, or write into the tensors its caller passed. It reaches
Python only through names on this list, each a function that computes on its arguments and
calls nothing it is given (no ``torch.cond``, no ``torch.save``/``torch.load``, no hooks), or
a value (``torch.float32``, ``math.inf``). Every use is resolved statically by its full
dotted name: ``torch.nn.functional.gelu`` is allowed, ``torch.os`` and ``torch.os.system``
are not, whatever attributes the modules happen to have.

``import torch`` (or ``import torch.nn.functional as F``, ``import math``) binds a namespace:
one of ``NAMESPACES``, or a module some allowlisted name lives in. Importing a namespace allows
nothing by itself; each name used through it is looked up here.

Callers may add names of their own (``gtdsl.load(path, allow_python=("operator.neg",))``):
each entry is a full dotted name of a function or value, never a whole module.
"""

from __future__ import annotations

import importlib
import re
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gtdsl.ops.pyfacts import PyFact

_MATH = """
pi e tau inf nan
sqrt cbrt exp exp2 expm1 log log2 log10 log1p pow
sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh hypot dist
erf erfc gamma lgamma floor ceil trunc fabs copysign fmod remainder modf frexp ldexp
isfinite isinf isnan isclose radians degrees gcd lcm isqrt fsum prod nextafter ulp
"""

_TORCH = """
float16 float32 float64 bfloat16 half float double complex64 complex128 cfloat cdouble
int8 int16 int32 int64 uint8 short int long bool
inf nan pi e
finfo iinfo device result_type promote_types can_cast is_tensor is_floating_point
is_complex numel
abs absolute acos acosh arccos arccosh add addbmm addcdiv addcmul addmm addmv addr
all allclose amax amin aminmax angle any arange argmax argmin argsort argwhere asin asinh
arcsin arcsinh atan atan2 arctan arctan2 atanh arctanh atleast_1d atleast_2d atleast_3d
baddbmm bernoulli bincount block_diag bmm broadcast_shapes broadcast_tensors broadcast_to
bucketize cartesian_prod cat cdist ceil chunk clamp clamp_max clamp_min clip clone
column_stack complex concat concatenate conj corrcoef cos cosh count_nonzero cov cross
cummax cummin cumprod cumsum deg2rad diag diag_embed diagflat diagonal diff digamma dist
div divide dot dsplit dstack einsum eq equal erf erfc erfinv exp exp2 expm1 eye flatten
flip fliplr flipud float_power floor floor_divide fmax fmin fmod frac full full_like gather
gcd ge greater greater_equal gt heaviside histc hsplit hstack hypot i0 imag index_select
inner isclose isfinite isin isinf isnan isneginf isposinf isreal kron kthvalue lcm ldexp
le less less_equal lerp lgamma linspace log log10 log1p log2 logaddexp logaddexp2
logcumsumexp logdet logical_and logical_not logical_or logical_xor logit logspace logsumexp
lt masked_fill masked_select matmul max maximum mean median meshgrid min minimum mm mode
moveaxis movedim msort mul multinomial multiply mv mvlgamma nan_to_num nanmean nanmedian
nanquantile nansum narrow ne neg negative nextafter nonzero norm normal not_equal ones
ones_like outer permute polar polygamma positive pow prod quantile rad2deg rand rand_like
randint randint_like randn randn_like randperm ravel real reciprocal remainder
repeat_interleave reshape roll rot90 round rsqrt scatter scatter_add scatter_reduce
searchsorted select sgn sigmoid sign signbit sin sinc sinh softmax log_softmax sort split
sqrt square squeeze stack std std_mean sub subtract sum swapaxes swapdims t take
take_along_dim tan tanh tensor tensor_split tensordot tile topk trace transpose trapezoid
tril tril_indices triu triu_indices true_divide trunc unbind unflatten unique
unique_consecutive unsqueeze vander var var_mean view_as_complex view_as_real vsplit vstack
where xlogy zeros zeros_like
"""

_LINALG = """
cholesky cond cross det diagonal eig eigh eigvals eigvalsh householder_product inv lstsq
lu lu_factor matrix_exp matrix_norm matrix_power matrix_rank multi_dot norm pinv qr slogdet
solve solve_triangular svd svdvals tensorinv tensorsolve vander vecdot vector_norm
"""

_SPECIAL = """
bessel_j0 bessel_j1 digamma entr erf erfc erfcx erfinv exp2 expit expm1 gammainc
gammaincc gammaln i0 i0e i1 i1e log1p log_ndtr log_softmax logit logsumexp multigammaln
ndtr ndtri polygamma psi round sinc softmax xlog1py xlogy zeta
"""

_FUNCTIONAL = """
adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d
adaptive_max_pool2d adaptive_max_pool3d affine_grid alpha_dropout avg_pool1d avg_pool2d
avg_pool3d batch_norm bilinear binary_cross_entropy binary_cross_entropy_with_logits celu
conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d cosine_embedding_loss
cosine_similarity cross_entropy ctc_loss dropout dropout1d dropout2d dropout3d elu embedding
embedding_bag fold gaussian_nll_loss gelu glu grid_sample group_norm gumbel_softmax
hardshrink hardsigmoid hardswish hardtanh hinge_embedding_loss huber_loss
interpolate kl_div l1_loss layer_norm leaky_relu linear local_response_norm log_softmax
logsigmoid lp_pool1d lp_pool2d margin_ranking_loss max_pool1d max_pool2d max_pool3d mish
mse_loss multi_margin_loss multilabel_margin_loss multilabel_soft_margin_loss nll_loss
normalize one_hot pad pairwise_distance pdist pixel_shuffle pixel_unshuffle poisson_nll_loss
prelu relu relu6 rms_norm rrelu scaled_dot_product_attention selu sigmoid silu
smooth_l1_loss soft_margin_loss softmax softmin softplus softshrink softsign tanh tanhshrink
threshold triplet_margin_loss unfold
"""


#: Arguments through which a listed function writes into tensors it is given, with the only
#: values a ``.gt`` file may pass for them (statically known; absent is always fine). ``out``
#: and ``inplace`` are refused for every function; these add the others.
WRITING_ARGS: dict[str, dict[str, tuple[Any, ...]]] = {
    "torch.nn.functional.embedding": {"max_norm": (None,)},      # renormalises weight rows
    "torch.nn.functional.embedding_bag": {"max_norm": (None,)},
    "torch.nn.functional.batch_norm": {"training": (False,)},    # updates running statistics
}
_ALWAYS_WRITING: dict[str, tuple[Any, ...]] = {"out": (None,), "inplace": (False,)}


def writing_args(path: str) -> dict[str, tuple[Any, ...]]:
    """The arguments of ``path`` that would write into a caller's tensor, with the values
    that do not (see ``WRITING_ARGS``)."""
    return {**_ALWAYS_WRITING, **WRITING_ARGS.get(path, {})}


def _names(module: str, text: str) -> frozenset[str]:
    return frozenset(f"{module}.{n}" for n in text.split())


#: Every Python name a ``.gt`` file may use, by full dotted name.
PYTHON_NAMES: frozenset[str] = (
    _names("math", _MATH) | _names("torch", _TORCH) | _names("torch.linalg", _LINALG)
    | _names("torch.special", _SPECIAL) | _names("torch.nn.functional", _FUNCTIONAL))

#: Modules a ``.gt`` file may import as namespaces (``import torch.nn.functional as F``).
NAMESPACES: frozenset[str] = frozenset(
    ("math", "torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special"))

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+"  # compiled where first used


class Allowlist:
    """The names one check may use: ``PYTHON_NAMES`` plus a caller's own."""

    def __init__(self, extra: tuple[str, ...] = ()) -> None:
        self.extra = tuple(extra)
        self.names = PYTHON_NAMES | frozenset(extra)
        prefixes = {n.rsplit(".", i)[0] for n in extra for i in range(1, n.count(".") + 1)}
        self.namespaces = NAMESPACES | frozenset(prefixes)
        self._resolved: dict[str, Any] = {}
        self._facts: dict[str, PyFact] = {}

    def __repr__(self) -> str:
        return f"Allowlist(extra={self.extra!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Allowlist) and other.extra == self.extra

    def __hash__(self) -> int:
        return hash(self.extra)

    def is_name(self, path: str) -> bool:
        return path in self.names

    def is_namespace(self, path: str) -> bool:
        return path in self.namespaces

    def resolve(self, path: str) -> Any:
        """The object named ``path``, which must be on the list exactly. Its module is the
        part before the last dot; nothing but that module is imported. Raises ``LookupError``
        when the name is not on the list or the installed module lacks it."""
        if path in self._resolved:
            return self._resolved[path]
        if path not in self.names:
            raise LookupError(f"`{path}` is not an allowlisted Python name")
        module, _, attr = path.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            raise LookupError(f"`{path}` does not exist in the installed `{module}`") from None
        if isinstance(obj, types.ModuleType):
            raise LookupError(f"`{path}` is a module; allowlists name functions and values")
        self._resolved[path] = obj
        return obj

    def fact(self, path: str) -> PyFact:
        """What the checker needs of ``path`` (``gtdsl.ops.pyfacts``): whether it exists,
        whether it is callable, a number's value, its parameters. Raises ``LookupError`` as
        ``resolve`` does. An allowlisted ``torch`` name is answered from the shipped table
        when it was made for the installed torch, so checking does not import torch."""
        found = self._facts.get(path)
        if found is None:
            from gtdsl.ops import pyfacts

            if path not in self.names:
                raise LookupError(f"`{path}` is not an allowlisted Python name")
            if path in PYTHON_NAMES and path.split(".", 1)[0] == "torch":
                found = pyfacts.shipped_fact(path)
            if found is None:
                found = pyfacts.live_fact(self.resolve, path)
            self._facts[path] = found
        if found.error is not None:
            raise LookupError(found.error)
        return found


DEFAULT = Allowlist()


def bad_extra_name(name: Any) -> str | None:
    """Why ``name`` cannot be added to an allowlist (``None`` when it can): entries are full
    dotted names of functions or values, never modules."""
    if not isinstance(name, str) or not re.fullmatch(_DOTTED, name):
        return (f"{name!r} is not a dotted Python name; name each function or value in full, "
                "e.g. 'operator.neg'")
    if any(part.startswith("_") for part in name.split(".")):
        return f"`{name}`: private and dunder names cannot be allowlisted"
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ImportError:
        # ``name`` itself may be a module: say so rather than "cannot import"
        return f"cannot import `{module}` for `{name}`"
    except AttributeError:
        return f"`{module}` has no `{attr}`"
    if isinstance(obj, types.ModuleType):
        return (f"`{name}` is a module; allowlists name functions and values, not modules: "
                f"name each function you need, e.g. '{name}.NAME'")
    return None


__all__ = ["Allowlist", "DEFAULT", "NAMESPACES", "PYTHON_NAMES", "WRITING_ARGS",
           "bad_extra_name", "writing_args"]
