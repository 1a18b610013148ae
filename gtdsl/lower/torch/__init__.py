"""The torch backend: the typed IR lowered to straight-line Python over torch ops."""

from gtdsl.lower.torch.calls import PLANS, call_op
from gtdsl.lower.torch.codegen import Generated, lower_function

__all__ = ["Generated", "PLANS", "call_op", "lower_function"]
