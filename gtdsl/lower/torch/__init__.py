"""The torch backend: the typed IR lowered to straight-line Python over torch ops."""

from gtdsl.lower.torch.codegen import Generated, lower_function

__all__ = ["Generated", "lower_function"]
