"""Every module these tests build has its IR verified after each pass (``tests/ir_passes.py``)."""

from tests.ir_passes import verify_each_pass  # noqa: F401  (an autouse fixture)
