"""torch's dtype rules for the installed torch, as data (docs/types.md, "Promotion follows the
installed torch").

Promotion is torch's ``result_type`` algorithm (``gtdsl.types.lattice``) over two tables that
torch releases change: ``torch.promote_types`` of every pair of dtypes, and the complex dtype
a floating dtype becomes beside a complex number (``toComplexType``: torch 2.14 made bf16's
the new ``bcomplex32``, before it was ``complex64``). Which dtypes torch has, both tables, and
the op behaviours listed in ``PROBES`` are read from an imported torch (``generate``), shipped
for the torch gtdsl pins (``torch_rules.json``, remade by ``python -m gtdsl.types.torchrules``)
and otherwise made once per installed torch version and cached (``gtdsl._torchcache``), so a
check on a warm cache does not import torch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from gtdsl._records import record
from gtdsl._torchcache import table_key, versioned_table

TABLE = Path(__file__).with_name("torch_rules.json")
FORMAT = 1

# gtdsl's name of each torch dtype it types (torch attribute names)
TORCH_NAMES: dict[str, str] = {
    "f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64", "i8": "int8",
    "i16": "int16", "i32": "int32", "i64": "int64", "u8": "uint8", "bool": "bool",
    "c32": "complex32", "bc32": "bcomplex32", "c64": "complex64", "c128": "complex128",
}
FLOAT_NAMES = ("f16", "bf16", "f32", "f64")


def _probe_ok(fn: Any) -> bool:
    """Whether ``fn`` runs and does not return False (torch refuses: the behaviour is
    absent)."""
    try:
        return fn() is not False
    except Exception:  # noqa: BLE001
        return False


def _probes(torch: Any) -> dict[str, bool]:
    """Op behaviours that differ between torch releases, each probed on a tiny CPU tensor
    (releases named as seen: 2.6 and 2.9 are older than the range the package declares,
    2.10 its lower bound, 2.13 the pinned one).

    - ``dropout_complex``: ``F.dropout`` accepts a complex input (2.15).
    - ``arange_i64_in_double``: ``arange`` of i64 with a float step counts its elements in
      double precision (2.14: ``arange(0, 3, 1.5, dtype=i64)`` has 2), where before it
      truncated the numbers to integers first (3 elements; a step of 0.5 was a step of 0).
    - ``arange_int_checks_truncated``: ``arange`` of an integer dtype checks the step (not 0)
      and the direction on the numbers truncated to the dtype (2.6:
      ``arange(0, 2, 0.5, dtype=i8)`` is refused, ``arange(2.5, 2, dtype=i8)`` is empty; 2.13
      checks the numbers as given).
    - ``arg_extreme_trivial_dim``: ``argmax``/``argmin`` along a dim of size 1 return
      whatever the dtype (2.6: bool and complex too; 2.13 refuses both).
    - ``batch_norm_stats_together``: ``batch_norm`` refuses one of running_mean and
      running_var without the other (2.13; 2.6 takes either alone in training).
    - ``pad_empty_output_dim``: a constant ``pad`` may leave a padded dim of size 0 (2.10;
      2.9 and 2.6 refuse it once any padding is positive).
    - ``logsumexp_complex``: ``logsumexp`` takes complex tensors (2.6; not 2.4).
    - ``sort_complex_0dim``: ``sort``/``argsort`` of a 0-dim complex tensor return it (2.6),
      where 2.13 refuses complex tensors of any rank.
    - ``cum_extreme_0dim_any_dim``: ``cummax``/``cummin`` of a 0-dim tensor accept any dim
      (2.6); 2.13 only -1 and 0.
    - ``nll_loss_target_of_one``: ``nll_loss``/``cross_entropy`` of an unbatched input
      (``[C]``) take a 1-dim target of size 1 (2.13; 2.6 instead: of size C).
    - ``int32_index``: ``gather`` and the ``scatter`` ops take an i32 index (2.13; 2.6: i64
      only).
    - ``rms_norm_promotes_weight``: ``rms_norm``'s result is the input's dtype promoted with
      the weight's (2.6, a composite in Python); 2.13 gives the input's dtype.
    """
    import torch.nn.functional as F  # noqa: N812

    def dropout_complex() -> None:
        F.dropout(torch.ones(2, dtype=torch.complex64), 0.5, True)

    one = torch.ones(())
    return {
        "dropout_complex": _probe_ok(dropout_complex),
        "arange_i64_in_double": _probe_ok(
            lambda: torch.arange(0, 3, 1.5, dtype=torch.int64).numel() == 2),
        "arange_int_checks_truncated": not _probe_ok(
            lambda: torch.arange(0, 2, 0.5, dtype=torch.int8)),
        "arg_extreme_trivial_dim": _probe_ok(
            lambda: torch.argmin(torch.ones(2, 1, dtype=torch.bool), dim=1)),
        "batch_norm_stats_together": not _probe_ok(lambda: F.batch_norm(
            torch.ones(1, 1, 2), None, torch.ones(1), training=True)),
        "pad_empty_output_dim": _probe_ok(lambda: F.pad(torch.ones(0, 0), (0, 0, 0, 1))),
        "logsumexp_complex": _probe_ok(
            lambda: torch.logsumexp(torch.ones(2, dtype=torch.complex64), 0)),
        "sort_complex_0dim": _probe_ok(lambda: torch.sort(one.to(torch.complex64))),
        "cum_extreme_0dim_any_dim": _probe_ok(lambda: torch.cummin(one, 1)),
        "nll_loss_target_of_one": _probe_ok(lambda: F.nll_loss(
            torch.zeros(2), torch.zeros(1, dtype=torch.int64))),
        "int32_index": _probe_ok(lambda: torch.gather(
            torch.ones(3), 0, torch.zeros(2, dtype=torch.int32))),
        "rms_norm_promotes_weight": _probe_ok(lambda: F.rms_norm(
            torch.ones(2, dtype=torch.float16), (2,), weight=torch.ones(2)).dtype == torch.float32),
    }


PROBES = ("dropout_complex", "arange_i64_in_double", "arange_int_checks_truncated",
          "arg_extreme_trivial_dim", "batch_norm_stats_together", "pad_empty_output_dim",
          "logsumexp_complex", "sort_complex_0dim",
          "cum_extreme_0dim_any_dim", "nll_loss_target_of_one", "int32_index",
          "rms_norm_promotes_weight")


def generate() -> dict[str, Any]:
    """The table, from the installed torch (imported)."""
    import warnings

    import torch

    by_torch = {getattr(torch, t): g for g, t in TORCH_NAMES.items() if hasattr(torch, t)}
    names = sorted(by_torch.values(), key=list(TORCH_NAMES).index)
    promote: dict[str, str | None] = {}
    for a in names:
        for b in names:
            r = torch.promote_types(getattr(torch, TORCH_NAMES[a]), getattr(torch, TORCH_NAMES[b]))
            promote[f"{a},{b}"] = by_torch.get(r)  # None: a dtype gtdsl does not type
    complex_of: dict[str, str | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ComplexHalf support is experimental"
        for f in FLOAT_NAMES:
            x = torch.empty((2,), dtype=getattr(torch, TORCH_NAMES[f]), device="meta")
            complex_of[f] = by_torch.get(torch.result_type(x, 1j))
        probes = _probes(torch)
    return {"format": FORMAT, "torch": torch.__version__, "dtypes": names,
            "promote": promote, "complex_of": complex_of, "probes": probes}


def _valid(data: dict[str, Any]) -> bool:
    names = data["dtypes"]
    known = set(TORCH_NAMES)
    ok_name = (lambda v: v is None or v in names)
    return (isinstance(names, list) and set(names) <= known
            and {"f32", "i64", "bool", "c64"} <= set(names)
            and set(data["promote"]) == {f"{a},{b}" for a in names for b in names}
            and all(ok_name(v) for v in data["promote"].values())
            and set(data["complex_of"]) == set(FLOAT_NAMES)
            and all(ok_name(v) for v in data["complex_of"].values())
            and set(data["probes"]) == set(PROBES)
            and all(isinstance(v, bool) for v in data["probes"].values()))


@record
class Rules:
    """The installed torch's rules, by gtdsl dtype name."""

    torch: str
    dtypes: tuple[str, ...]
    promote: dict[tuple[str, str], str | None]
    complex_of: dict[str, str | None]
    probes: dict[str, bool]


_rules: list[Rules] = []
_lock = threading.Lock()


def rules() -> Rules:
    """The rules of the installed torch (the shipped table where none can be made)."""
    if _rules:
        return _rules[0]
    with _lock:
        if not _rules:
            data = versioned_table("rules", TABLE, FORMAT, generate, _valid,
                                   lambda: table_key(FORMAT, PROBES, TORCH_NAMES, FLOAT_NAMES))
            if data is None:  # torch cannot be asked: the rules of the torch gtdsl pins
                import json
                import warnings

                data = json.loads(TABLE.read_text("utf-8"))
                warnings.warn(f"gtdsl could not read torch's dtype rules from the installed "
                              f"torch; checking with torch {data['torch']}'s", RuntimeWarning,
                              stacklevel=2)
            _rules.append(Rules(
                data["torch"], tuple(data["dtypes"]),
                {(k.split(",")[0], k.split(",")[1]): v for k, v in data["promote"].items()},
                dict(data["complex_of"]), dict(data["probes"])))
    return _rules[0]


def probe(name: str) -> bool:
    """Whether the installed torch has behaviour ``name`` of ``PROBES``."""
    return rules().probes[name]


def main() -> None:
    import json

    TABLE.write_text(json.dumps(generate(), indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
