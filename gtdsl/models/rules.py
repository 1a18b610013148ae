"""Reading a model folder's JSON files, and checking config keys against declared rules.

A model folder comes from anywhere, so its JSON files are data to check, never to trust:
each is read as a regular file of at most ``MAX_JSON_BYTES`` bytes (a FIFO or a device is
refused, not waited on), parsed with duplicate keys refused, and must hold a JSON object.
A ``ModelKeys`` value names every key a loader reads (with a ``Rule`` for its values and the
default transformers uses when it is absent) and every key it refuses; ``check_keys`` applies
it. Every problem is a ``ModelLoadError`` (GT0909) naming the file, the key and the bad value.
The models' own key lists are in ``gtdsl.models.config``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtdsl._resources import FileTooLarge, NotRegularFile, read_regular_file
from gtdsl.models.weights import ModelLoadError, load_error

MAX_JSON_BYTES = 4 * 2**20
MAX_SIZE = 2**31 - 1  # sizes, counts and token ids fit in an int32

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
DERIVED: Any = type("Derived", (), {"__repr__": lambda self: "DERIVED"})()
"""The default of a key whose absent value transformers derives from other keys (the
loader reads None and derives it the same way)."""


# --------------------------------------------------------------------------- files
def read_bytes(path: Path, what: str = "", limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``read_regular_file``: a FIFO
    is refused rather than waited on, and what is read is what was checked); anything else
    is GT0909."""
    name = what or path.name
    try:
        return read_regular_file(path, limit)
    except NotRegularFile:
        raise load_error(f"`{name}` is not a regular file", path=str(path),
                         help="model files are read only from regular files (not "
                         "directories, FIFOs or devices)") from None
    except FileTooLarge as e:
        raise load_error(f"`{name}` is {e.size} bytes; files of this kind are read up to "
                         f"{limit} bytes", path=str(path)) from None
    except OSError as e:
        if not path.exists():
            raise load_error(f"`{path.parent}` has no `{name}`", path=str(path),
                             help="a Hugging Face model folder holds config.json, "
                             "model.safetensors and the tokenizer files") from None
        raise load_error(f"cannot read `{name}`: {e.strerror or e}", path=str(path)) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def read_json(path: Path, what: str = "") -> Any:
    """A JSON file's value, read as ``read_bytes`` reads; malformed JSON, a duplicate key,
    or nesting too deep to parse is GT0909."""
    name = what or path.name
    data = read_bytes(path, name)
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as d:
        raise key_error(path, d.key, f"`{name}` has the key `{d.key}` more than once",
                        help="a key may appear once in each JSON object") from None
    except UnicodeDecodeError as e:
        raise load_error(f"`{name}` is not UTF-8 text: {e.reason} at byte {e.start}",
                         path=str(path)) from None
    except RecursionError:
        raise load_error(f"`{name}` is nested too deeply to read", path=str(path)) from None
    except ValueError as e:  # json.JSONDecodeError, and integers too long to convert
        raise load_error(f"`{name}` is not valid JSON: {e}", path=str(path)) from None


def read_json_object(path: Path, what: str = "") -> dict[str, Any]:
    """A JSON file holding one object (a dict), read as ``read_json`` reads; another
    top-level value is GT0909."""
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise load_error(f"`{what or path.name}` holds {_kind(value)}; it must hold a JSON "
                         "object (`{...}`)", path=str(path))
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list"


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON writes it, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def key_error(path: Path, key: str, message: str, help: str | None = None) -> ModelLoadError:
    return load_error(message, path=str(path), notes=(f"key: `{key}`",), help=help)


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """What a value must be: ``what`` says it in words, ``test`` decides it, ``bad`` lists
    values it refuses (for the tests and as examples)."""

    what: str
    test: Callable[[Any], bool]
    bad: tuple[Any, ...] = ()
    convert: Callable[[Any], Any] = lambda v: v
    doc: str = ""  # a shorter ``what`` for the docs' tables


def _int(v: Any) -> bool:
    return type(v) is int  # bool is not an int here


def positive_int(hi: int = MAX_SIZE) -> Rule:
    return Rule(f"an integer from 1 to {hi}", lambda v: _int(v) and 1 <= v <= hi,
                (0, -1, True, "32", 32.5, 32.0, None, [32], hi + 1))


def count(lo: int = 0, hi: int = MAX_SIZE) -> Rule:
    return Rule(f"an integer from {lo} to {hi}", lambda v: _int(v) and lo <= v <= hi,
                (lo - 1, False, "1", 1.5, None, [1], hi + 1))


def positive_float() -> Rule:
    def ok(v: Any) -> bool:
        return (_int(v) or type(v) is float) and math.isfinite(v) and v > 0
    return Rule("a finite number > 0", ok,
                (0, -1e-5, 0.0, "1e-05", [1], None, True, float("inf"), float("nan")),
                float)


def boolean() -> Rule:
    return Rule("true or false", lambda v: type(v) is bool, (0, 1, "true", None, [True]))


def one_of(*choices: Any, doc: str = "") -> Rule:
    names = ", ".join(show(c) for c in choices)

    def ok(v: Any) -> bool:
        return any(type(v) is type(c) and v == c for c in choices)
    return Rule(f"one of {names}" if len(choices) > 1 else names, ok,
                ("no-such-value", 1, None, list(choices[:1])), doc=doc)


def nullable(rule: Rule) -> Rule:
    return Rule(f"null or {rule.what}", lambda v: v is None or rule.test(v),
                tuple(b for b in rule.bad if b is not None),
                lambda v: None if v is None else rule.convert(v))


def token_ids() -> Rule:
    """An end-token setting: one id, a list of ids, or null."""
    def ok(v: Any) -> bool:
        if v is None or (_int(v) and 0 <= v <= MAX_SIZE):
            return True
        return (isinstance(v, list) and len(v) <= 1024 and
                all(_int(i) and 0 <= i <= MAX_SIZE for i in v))
    return Rule("null, a token id (an integer >= 0) or a list of them", ok,
                (-1, "2", [1, "2"], True, 1.5, [[1]]))


@dataclass(frozen=True)
class Read:
    """A key the loader reads: its rule, the value used when it is absent (``REQUIRED``: it
    must be present; ``DERIVED``: derived from other keys), and what it does."""

    rule: Rule
    default: Any = REQUIRED
    note: str = ""


@dataclass(frozen=True)
class Refused:
    """A key that changes the computation and is not implemented: only ``allowed`` (its off
    values) loads; ``example`` turns it on."""

    allowed: tuple[Any, ...]
    example: Any
    why: str


Check = Callable[[Mapping[str, Any]], "tuple[str, str] | None"]


@dataclass(frozen=True)
class ModelKeys:
    """The keys one model's loader reads and refuses in one file."""

    model: str
    read: Mapping[str, Read]
    refused: Mapping[str, Refused] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> the key it names
    checks: tuple[Check, ...] = ()  # rules over several keys: (key, problem) or None
    checks_doc: tuple[str, ...] = ()
    file: str = "config.json"


class ModelConfig(dict[str, Any]):
    """A config file as read (the dict is written back as it is by ``save``), after every
    declared key was checked; ``value(key)`` is a read key's checked value or its default."""

    def __init__(self, data: Mapping[str, Any], values: Mapping[str, Any], path: Path,
                 keys: ModelKeys) -> None:
        super().__init__(data)
        self.checked = dict(values)
        self.path = path
        self.spec = keys

    def value(self, key: str) -> Any:
        return self.checked[key]


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def check_keys(data: Mapping[str, Any], keys: ModelKeys, path: Path) -> ModelConfig:
    """``data`` (a parsed config file) checked against ``keys``: GT0909 naming the first bad
    key. Keys given under an alias (``hidden_size`` for GPT-2's ``n_embd``) are read as the
    key they name, which is added to the returned dict when absent."""
    name = keys.file
    data = dict(data)
    for alias, key in keys.aliases.items():
        if alias not in data:
            continue
        if key not in data:
            data[key] = data[alias]
        elif not same(data[alias], data[key]):
            raise key_error(path, alias, f"`{name}`: `{alias}` is {show(data[alias])} but "
                            f"`{key}`, the key it names, is {show(data[key])}",
                            help=f"give `{key}` once, or both with the same value")
    values: dict[str, Any] = {}
    for key, spec in keys.read.items():
        if key not in data:
            if spec.default is REQUIRED:
                raise key_error(path, key, f"`{name}` has no `{key}`; {keys.model} needs it "
                                f"({spec.rule.what})",
                                help=f"a {keys.model} {name} written by transformers has it")
            values[key] = None if spec.default is DERIVED else spec.default
            continue
        v = data[key]
        if not spec.rule.test(v):
            raise key_error(path, key, f"`{name}`: `{key}` is {show(v)}; {keys.model} reads "
                            f"it as {spec.rule.what}",
                            help=f"`{key}`: {spec.note}" if spec.note else None)
        values[key] = spec.rule.convert(v)
    for key, refused in keys.refused.items():
        if key in data and not any(same(data[key], a) for a in refused.allowed):
            allowed = " or ".join(show(a) for a in refused.allowed)
            raise key_error(path, key, f"`{name}`: `{key}` is {show(data[key])}: {refused.why}, "
                            f"which gtdsl's {keys.model} does not implement",
                            help=f"only {allowed} loads; gtdsl refuses the folder rather "
                            "than compute something else")
    for check in keys.checks:
        problem = check(values)
        if problem is not None:
            key, message = problem
            raise key_error(path, key, f"`{name}`: {message}")
    return ModelConfig(data, values, path, keys)


def model_type(folder: str | os.PathLike[str]) -> str | None:
    """The ``model_type`` a folder's ``config.json`` names (None when it names none), read as
    every config file is read: for a command that picks the loader by it."""
    kind = read_json_object(Path(folder) / "config.json").get("model_type")
    return kind if isinstance(kind, str) else None


def read_config(folder: str | os.PathLike[str], keys: ModelKeys) -> ModelConfig:
    """``folder``'s ``keys.file`` (``config.json``), read and checked."""
    path = Path(folder) / keys.file
    return check_keys(read_json_object(path, keys.file), keys, path)
