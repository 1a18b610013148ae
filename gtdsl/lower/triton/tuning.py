"""Tuning: which configuration (tile shape, warps, stages) of a kernel runs a class of problems
fastest, measured once and remembered in memory and on disk.

A problem class is a ``TuningKey``: the kernel family, the GPU's name, the dtype, the operands'
layout and a size bucket (each size rounded up to a power of two, small sizes sharing the
smallest bucket), so a new size in a known bucket launches at once. On a miss the candidates
are timed once (``triton.testing.do_bench`` on the GPU), the fastest wins, and the winner is
kept in memory and written to ``<cache dir>/tuning/<family>-<digest>.json`` (the cache dir is
``GTDSL_CACHE_DIR``, default ``~/.cache/gtdsl``; see ``gtdsl._config``).

The files are data, never code: one is read back only if it passes gtdsl's private-file
rules (``gtdsl._resources``: a regular file owned by this user, writable by no one else, in a
directory that is private too, at most ``MAX_FILE`` bytes), parses as JSON, names the format
and the very key asked for, and holds a configuration from the caller's candidate list. A file
that fails any of these (corrupt, planted, written for another GPU or by another version) is
ignored, reported once through the ``gtdsl`` logger, tuned again and replaced. A file is
written whole or not at all (a temporary file renamed over it), so processes tuning at once
leave one of their complete results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gtdsl._config import load_config
from gtdsl._resources import read_private_file, write_private_file

log = logging.getLogger("gtdsl")

FORMAT = 1
MAX_FILE = 1 << 16  # bytes: a larger tuning file is not read
SMALLEST_BUCKET = 16  # sizes up to this share one bucket
SUBDIR = "tuning"  # the tuning files' directory under the cache directory

Config = tuple[int, ...]
# times one candidate: (its configuration, a callable that launches it once) -> milliseconds
Timer = Callable[[Config, Callable[[], object]], float]


def bucket(*sizes: int) -> tuple[int, ...]:
    """Each size rounded up to a power of two, at least ``SMALLEST_BUCKET``."""
    return tuple(max(SMALLEST_BUCKET, 1 << max(s - 1, 0).bit_length()) for s in sizes)


@dataclass(frozen=True, slots=True)
class TuningKey:
    """A class of problems that share their best configuration."""

    family: str  # the kernel family: "matmul"
    device: str  # the GPU's name ("NVIDIA H100 80GB HBM3"), "interpreter" on the CPU
    dtype: str  # the operands' dtype: "f16", "bf16", "f32"
    layout: str  # how the operands are laid out (the family's own spelling)
    bucket: tuple[int, ...]  # the sizes' bucket

    def as_json(self) -> dict[str, Any]:
        return {"family": self.family, "device": self.device, "dtype": self.dtype,
                "layout": self.layout, "bucket": list(self.bucket)}

    def filename(self) -> str:
        text = json.dumps(self.as_json(), sort_keys=True)
        return f"{self.family}-{hashlib.sha256(text.encode()).hexdigest()[:24]}.json"


def gpu_timer(config: Config, run: Callable[[], object]) -> float:
    """The mean time of ``run`` in milliseconds, measured by Triton on the GPU."""
    import triton.testing

    return float(triton.testing.do_bench(run, warmup=10, rep=40))


class Tuner:
    """Chooses a configuration per ``TuningKey``: from memory, else from its file under
    ``cache_dir/tuning``, else by timing every candidate once with ``timer`` (then kept in
    both). ``cache_dir`` None keeps choices in memory only. ``tunings`` counts the keys
    timed."""

    def __init__(self, cache_dir: Path | None, timer: Timer = gpu_timer) -> None:
        self.cache_dir = cache_dir
        self.directory = None if cache_dir is None else cache_dir / SUBDIR
        self.timer = timer
        self.tunings = 0
        self._memory: dict[TuningKey, Config] = {}
        self._lock = threading.Lock()
        self._reported: set[str] = set()

    def choose(self, key: TuningKey, candidates: Sequence[Config],
               launch: Callable[[Config], Callable[[], object]]) -> Config:
        """The configuration of ``candidates`` for ``key``; ``launch(config)`` returns a
        callable that runs the kernel once with it (timed on a miss)."""
        if len(candidates) == 1:
            return tuple(candidates[0])
        found = self._memory.get(key)
        if found is not None and found in candidates:
            return found
        with self._lock:  # one thread times a key; the others wait for its result
            found = self._memory.get(key)
            if found is None or found not in candidates:
                found = self.load(key, candidates)
            if found is None:
                found = self._time(key, candidates, launch)
                self._store(key, found)
            self._memory[key] = found
            return found

    def _time(self, key: TuningKey, candidates: Sequence[Config],
              launch: Callable[[Config], Callable[[], object]]) -> Config:
        self.tunings += 1
        best: tuple[float, Config] | None = None
        for cfg in candidates:
            cfg = tuple(cfg)
            try:
                t = float(self.timer(cfg, launch(cfg)))
            except Exception as e:  # a candidate this GPU cannot run (shared memory) loses
                log.debug("tuning %s: %s failed: %s", key, cfg, e)
                continue
            if t == t and (best is None or t < best[0]):  # NaN never wins
                best = (t, cfg)
        if best is None:
            raise RuntimeError(f"no candidate configuration of {key.family} ran for {key}")
        return best[1]

    # ------------------------------------------------------------------ the files

    def load(self, key: TuningKey, candidates: Sequence[Config]) -> Config | None:
        """The configuration the directory holds for ``key``, if it is valid (see the
        module's docstring); an invalid file is reported once and ignored."""
        if self.cache_dir is None or self.directory is None:
            return None
        name = key.filename()
        data = read_private_file(self.cache_dir, (SUBDIR,), name, MAX_FILE)
        if data is None:
            if os.path.lexists(self.directory / name):
                self._ignore(name, "not a private regular file of at most "
                             f"{MAX_FILE} bytes (see gtdsl._resources)")
            return None
        try:
            entry = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            self._ignore(name, f"not JSON ({type(e).__name__})")
            return None
        problem = _invalid(entry, key, candidates)
        if problem is not None:
            self._ignore(name, problem)
            return None
        return tuple(entry["config"])

    def _store(self, key: TuningKey, config: Config) -> bool:
        """Write ``key``'s file (whole or not at all); False where it cannot be written."""
        if self.cache_dir is None:
            return False
        entry = {"format": FORMAT, "key": key.as_json(), "config": list(config)}
        data = (json.dumps(entry, sort_keys=True) + "\n").encode()
        name = key.filename()
        if write_private_file(self.cache_dir, (SUBDIR,), name, data):
            return True
        self._report(f"write {name}", f"cannot write the tuning cache file {name} in "
                     f"{self.directory} (a directory that is not private to this user, a full "
                     "disk, ...): the choice is kept in memory only")
        return False

    def _ignore(self, name: str, problem: str) -> None:
        self._report(name, f"ignoring the tuning cache file {name} in {self.directory}: "
                     f"{problem}")

    def _report(self, what: str, message: str) -> None:
        """Log ``message`` the first time ``what`` goes wrong."""
        if what not in self._reported:
            self._reported.add(what)
            log.warning("%s", message)


def _invalid(entry: Any, key: TuningKey, candidates: Sequence[Config]) -> str | None:
    """Why ``entry`` (parsed JSON) is not a valid choice for ``key``, or None."""
    if not isinstance(entry, dict) or set(entry) != {"format", "key", "config"}:
        return "not a tuning entry"
    if entry["format"] != FORMAT or isinstance(entry["format"], bool):
        return f"format {entry['format']!r}, not {FORMAT}"
    if entry["key"] != key.as_json():
        return "written for another problem, GPU or layout"
    cfg = entry["config"]
    if not isinstance(cfg, list) or not all(type(x) is int for x in cfg):
        return "its configuration is not a list of integers"
    if tuple(cfg) not in {tuple(c) for c in candidates}:
        return f"configuration {cfg} is not one of the candidates"
    return None


_DEFAULT: dict[Path, Tuner] = {}
_DEFAULT_LOCK = threading.Lock()


def default_tuner() -> Tuner:
    """The process's tuner for the cache directory configured now (``GTDSL_CACHE_DIR``)."""
    cache_dir = load_config().cache_dir
    tuner = _DEFAULT.get(cache_dir)
    if tuner is None:
        with _DEFAULT_LOCK:
            tuner = _DEFAULT.setdefault(cache_dir, Tuner(cache_dir))
    return tuner


__all__ = ["FORMAT", "MAX_FILE", "SMALLEST_BUCKET", "SUBDIR", "Config", "Timer", "Tuner",
           "TuningKey", "bucket", "default_tuner", "gpu_timer"]
