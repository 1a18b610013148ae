"""Timing statistics that hold up on a shared machine (issue #18, part 4).

On a machine that other people use at the same time, wall-clock time measures the machine's
load as much as the code. The helpers here measure process CPU time instead, run the
implementations being compared *interleaved* (a batch of A, a batch of B, a batch of A, ...,
each round starting with the next implementation, so that a slow phase of the machine hits
every implementation alike), keep the minimum of the repetitions (interference only adds
time), and report the spread of the repetitions so that a reader can tell whether a figure is
trustworthy: a spread above ``SPREAD_LIMIT`` prints a warning and marks the row untrusted.

Imports nothing heavy: ``benchmarks.suite``, ``benchmarks.overhead`` and
``benchmarks.runtime`` share it, and its unit tests run without torch.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SPREAD_LIMIT = 0.10  # (median - min) / min above this: the figure is not to be trusted

Clock = Callable[[], int]  # nanoseconds


def cpu_clock() -> int:
    """Process CPU time in nanoseconds (user + system, every thread of this process)."""
    return time.process_time_ns()


def spread(samples: Sequence[float]) -> float:
    """How far the typical repetition lies above the best: ``(median - min) / min``. 0 for
    fewer than two samples; ``inf`` when the minimum is 0 and the median is not."""
    if len(samples) < 2:
        return 0.0
    lo, med = min(samples), statistics.median(samples)
    if lo <= 0:
        return 0.0 if med <= 0 else math.inf
    return (med - lo) / lo


def relative_iqr(samples: Sequence[float]) -> float:
    """The interquartile range relative to the median (0 for fewer than four samples)."""
    if len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    med = statistics.median(samples)
    return (q3 - q1) / med if med > 0 else 0.0


@dataclass
class Stats:
    """Seconds per call over the repetitions of one implementation."""

    samples: list[float]
    calls: int = 1  # calls per timed batch
    limit: float = SPREAD_LIMIT

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        return spread(self.samples)

    @property
    def iqr(self) -> float:
        return relative_iqr(self.samples)

    @property
    def trusted(self) -> bool:
        return self.spread <= self.limit

    def to_json(self) -> dict[str, Any]:
        return {"min_s": self.min, "median_s": self.median, "spread": round(self.spread, 4),
                "iqr": round(self.iqr, 4), "trusted": self.trusted, "calls_per_batch":
                self.calls, "repeats": len(self.samples), "samples_s": self.samples}


def warning(name: str, stats: Stats) -> str | None:
    """The warning for an implementation whose repetitions spread too widely, else None."""
    if stats.trusted:
        return None
    return (f"warning: {name}: the repetitions spread {stats.spread:.1%} above the minimum "
            f"(limit {stats.limit:.0%}); the machine was busy: do not trust this figure")


def interleaved_order(names: Sequence[str], repeats: int) -> Iterator[tuple[int, str]]:
    """``(round, name)`` in the order they are measured: every name once per round, each
    round starting one name further along (A B C, B C A, C A B, A B C, ...)."""
    n = len(names)
    for r in range(repeats):
        for i in range(n):
            yield r, names[(r + i) % n]


def _batch(fn: Callable[[], Any], calls: int, clock: Clock) -> float:
    gc.collect()  # the garbage of the previous batch is not this one's to pay for
    t = clock()
    for _ in range(calls):
        fn()
    return (clock() - t) / 1e9


def calls_for(fn: Callable[[], Any], budget: float, clock: Clock = cpu_clock,
              most: int = 100_000) -> int:
    """How many calls make a batch of about ``budget`` seconds (after one warm-up call)."""
    fn()
    n = 1
    while True:
        took = _batch(fn, n, clock)
        if took >= budget / 4 or n >= most:
            break
        n = min(most, n * 4 if took <= 0 else max(n + 1, int(n * budget / 4 / took) + 1))
    return max(1, min(most, int(n * budget / max(took, 1e-9))))


def measure(impls: dict[str, Callable[[], Any]], repeats: int, budget: float = 0.02,
            clock: Clock = cpu_clock, limit: float = SPREAD_LIMIT,
            calls: dict[str, int] | None = None, warmup: int = 1,
            on_batch: Callable[[int, str], None] | None = None) -> dict[str, Stats]:
    """Seconds per call of each implementation: ``repeats`` interleaved rounds, each a batch
    of about ``budget`` CPU seconds per implementation (``calls`` fixes the batch sizes
    instead; ``budget`` 0: one call a batch). Each implementation is first called ``warmup``
    times (compiles, caches)."""
    names = list(impls)
    for f in impls.values():
        for _ in range(warmup):
            f()
    samples: dict[str, list[float]] = {k: [] for k in names}
    with _frozen_heap():
        if calls is None:
            calls = {k: (calls_for(f, budget, clock) if budget > 0 else 1)
                     for k, f in impls.items()}
        for r, name in interleaved_order(names, repeats):
            if on_batch is not None:
                on_batch(r, name)
            samples[name].append(_batch(impls[name], calls[name], clock) / calls[name])
    return {k: Stats(samples[k], calls[k], limit) for k in names}


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects alive now moved out of the collector's sight: with torch and transformers
    loaded a full collection takes 0.1-0.2 s, which would otherwise land in whichever batch
    it happens to interrupt (and make each batch's ``gc.collect()`` costly)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
