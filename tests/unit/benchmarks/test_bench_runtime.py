"""The statistics of the CPU benchmarks (``benchmarks.timing``, ``benchmarks.runtime``): the
spread and when it warns, the interleaving order, and the rows' ratios, table and JSON, with a
fake clock. Nothing here measures or asserts on real time."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from benchmarks import timing
from benchmarks.runtime import Row, _rename, minilm_texts, table
from benchmarks.timing import Stats


def test_spread_is_median_over_minimum() -> None:
    assert timing.spread([1.0, 1.2, 1.1]) == pytest.approx(0.1)
    assert timing.spread([2.0, 2.0, 2.0, 9.0]) == 0.0  # one outlier does not move the median
    assert timing.spread([5.0]) == 0.0 and timing.spread([]) == 0.0
    assert timing.spread([0.0, 0.0]) == 0.0 and math.isinf(timing.spread([0.0, 1.0, 1.0]))


def test_relative_iqr() -> None:
    assert timing.relative_iqr([1.0, 1.0, 1.0]) == 0.0  # too few samples
    assert timing.relative_iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2.0 / 3.0)


def test_warning_only_above_the_limit() -> None:
    calm = Stats([1.0, 1.05, 1.08])
    busy = Stats([1.0, 1.3, 1.5])
    assert calm.trusted and timing.warning("row/impl", calm) is None
    assert not busy.trusted
    text = timing.warning("row/impl", busy)
    assert text is not None and "row/impl" in text and "30.0%" in text and "10%" in text
    assert Stats([1.0, 1.3, 1.5], limit=0.5).trusted  # the limit is the caller's


def test_stats_json_round_trips() -> None:
    d = Stats([3.0, 1.0, 2.0], calls=10).to_json()
    assert d["min_s"] == 1.0 and d["median_s"] == 2.0 and d["spread"] == 1.0
    assert d["calls_per_batch"] == 10 and d["repeats"] == 3 and d["trusted"] is False
    json.dumps(d)


def test_interleaved_order_rotates_each_round() -> None:
    order = list(timing.interleaved_order(["a", "b", "c"], 4))
    assert [n for _, n in order] == list("abc" "bca" "cab" "abc")
    assert [r for r, _ in order] == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for _, group in itertools.groupby(order, key=lambda x: x[0]):
        assert sorted(n for _, n in group) == ["a", "b", "c"]  # each once per round
    assert list(timing.interleaved_order(["only"], 2)) == [(0, "only"), (1, "only")]


class FakeClock:
    """Nanoseconds that advance only when an implementation runs (``cost`` ns a call)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def fn(self, cost: int, log: list[str] | None = None, name: str = ""):
        def call() -> None:
            self.now += cost
            if log is not None:
                log.append(name)
        return call


def test_measure_interleaves_batches_and_divides_by_calls() -> None:
    clock, log = FakeClock(), []
    impls = {"a": clock.fn(1000, log, "a"), "b": clock.fn(3000, log, "b")}
    got = timing.measure(impls, repeats=3, clock=clock, calls={"a": 2, "b": 1}, warmup=1)
    assert log[:2] == ["a", "b"]  # the warm-up calls
    assert log[2:] == ["a", "a", "b", "b", "a", "a", "a", "a", "b"]  # rounds ab, ba, ab
    assert got["a"].samples == [1e-6] * 3 and got["b"].samples == [3e-6] * 3
    assert got["a"].calls == 2 and got["a"].spread == 0.0


def test_calls_for_fills_the_budget() -> None:
    clock = FakeClock()
    n = timing.calls_for(clock.fn(1000), budget=0.001, clock=clock)  # 1 µs a call, 1 ms
    assert 900 <= n <= 1100
    assert timing.calls_for(clock.fn(10_000_000), budget=0.001, clock=clock) == 1


def test_row_ratios_table_and_json() -> None:
    row = Row("r", "a row", baseline="eager", unit="us",
              impls={"eager": Stats([2e-6, 2.1e-6, 2.2e-6]),
                     "gtdsl": Stats([5e-6, 7e-6, 8e-6])},
              labels={"gtdsl": "f(x)"}, notes={"gtdsl": "a note"})
    assert row.ratio("gtdsl") == pytest.approx(2.5) and row.ratio("eager") is None
    assert row.over("gtdsl") == pytest.approx(3e-6)
    assert not row.trusted and len(row.warnings()) == 1 and "r/gtdsl" in row.warnings()[0]
    d = row.to_json()
    assert d["trusted"] is False and d["impls"]["gtdsl"]["ratio_to_eager"] == pytest.approx(2.5)
    json.dumps(d)
    text = table([row, Row("m", "missing", status="skipped", reason="pip install x")])
    assert "| r | gtdsl: f(x) | 5 µs | 7 µs | 40.0% | 2.50× | +3 µs | **no** | a note |" in text
    assert "**skipped**: pip install x" in text


def test_generated_check_file_renames_functions_not_fields() -> None:
    import re

    names = {"norm": "norm_1"}
    pat = re.compile(r"(?<![\w.])(norm)(?!\w)(?!\s*=[^=])")
    src = "struct A:\n    norm: Norm[D]\n\ndef f(p: A, x):\n    return norm(p.norm, x, eps=norm)\n"
    got = pat.sub(lambda mo: _rename(mo, names), src)
    assert "    norm: Norm[D]" in got and "norm_1(p.norm, x, eps=norm_1)" in got


def test_minilm_texts_vary_in_length() -> None:
    texts = minilm_texts(16)
    assert len(texts) == 16 and texts == minilm_texts(16)
    assert len({len(t.split()) for t in texts}) > 5
