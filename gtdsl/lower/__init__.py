"""Lowering: the typed IR to executable code (``torch``: straight-line Python over torch ops)."""
