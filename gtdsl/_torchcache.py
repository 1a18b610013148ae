"""Tables derived from the installed torch, once per torch version (docs/runtime.md, "What
gtdsl knows of torch").

The checker needs facts of torch without importing it (importing torch costs more than a
second, many times a check): which allowlisted names exist and their parameters
(``gtdsl.ops.pyfacts``), and how torch promotes dtypes (``gtdsl.types.torchrules``). Each is
a JSON table made from an imported torch. The package ships the tables of the torch it pins;
for any other installed torch the table is made once, on first need (that run imports
torch), and kept in the cache directory (``GTDSL_CACHE_DIR``, subdirectory ``torch/``, private
to the user: a cache entry is data, read back only if it passes the private-file rules of
``gtdsl._resources`` and the table's own checks, else made again). Later runs read it
without importing torch.

A leaf module: imports only other leaves.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gtdsl._config import load_config
from gtdsl._resources import read_private_file, write_private_file

SUBDIR = "torch"
LIMIT = 4 << 20  # bytes: a cached table larger than this is not read
_VERSION = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*['"]([^'"]+)['"]""", re.M)


def installed_torch_version() -> str | None:
    """The installed torch's version without importing it (None: no torch, or unreadable):
    ``torch/version.py`` as its file says, else the distribution's metadata."""
    loaded = sys.modules.get("torch")
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for where in spec.submodule_search_locations or ():
        try:
            found = _VERSION.search((Path(where) / "version.py").read_text("utf-8"))
        except OSError:
            continue
        if found:
            return found.group(1)
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def table_key(*parts: object) -> str:
    """A digest of what a table must describe (its names, its probes)."""
    import hashlib

    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def same_release(a: object, b: object) -> bool:
    """Whether two torch versions are one release: the local label (``+cpu``, ``+cu130``)
    names the build, whose Python functions and dtype rules are the release's (the tests
    check every shipped fact against the installed build)."""
    return isinstance(a, str) and isinstance(b, str) and a.split("+")[0] == b.split("+")[0]


def cache_name(kind: str, version: str, key: str = "") -> str:
    """The cache file of table ``kind`` for torch ``version`` and table ``key`` (what the
    table must cover: a gtdsl release with other names or probes has its own file)."""
    return f"{kind}-{re.sub(r'[^A-Za-z0-9._+-]', '_', version)[:100]}-{key[:16]}.json"


def _parse(raw: bytes | str | None, fmt: int, valid: Callable[[dict[str, Any]], bool]
           ) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    try:
        ok = isinstance(data, dict) and data.get("format") == fmt and \
            isinstance(data.get("torch"), str) and valid(data)
    except (TypeError, ValueError, KeyError, AttributeError):
        ok = False
    return data if ok else None


# what each table came from in this process, per kind: "shipped", "cache" or "made"
SOURCES: dict[str, str] = {}


def versioned_table(kind: str, shipped: Path, fmt: int,
                    generate: Callable[[], dict[str, Any]],
                    valid: Callable[[dict[str, Any]], bool],
                    key: str | Callable[[], str] = "") -> dict[str, Any] | None:
    """Table ``kind`` for the installed torch: the shipped one if made for its release, else
    the cached one made for this exact version and ``key`` (a callable is asked only then:
    hashing imports hashlib, which the shipped path need not pay), else one made now
    (importing torch) and cached. None when no table can describe it (torch cannot be
    imported, or makes an invalid table): the callers then ask torch itself, or say so."""
    version = installed_torch_version()
    try:
        text: str | None = shipped.read_text("utf-8")
    except OSError:
        text = None
    found = _parse(text, fmt, valid)
    if found is not None and (version is None or same_release(found["torch"], version)):
        SOURCES[kind] = "shipped"
        return found
    if version is None:
        return None
    if callable(key):
        key = key()
    cache_dir = load_config().cache_dir
    name = cache_name(kind, version, key)
    found = _parse(read_private_file(cache_dir, (SUBDIR,), name, LIMIT), fmt, valid)
    if found is not None and found["torch"] == version and found.get("key", "") == key:
        SOURCES[kind] = "cache"
        return found
    try:
        made = generate()
    except Exception:  # noqa: BLE001 - a torch that cannot be imported: no table
        return None
    text = json.dumps(dict(made, key=key), indent=1, sort_keys=True) + "\n"
    found = _parse(text, fmt, valid)  # as it will read back: inf and nan round-trip
    if found is None or found["torch"] != version:
        return None
    write_private_file(cache_dir, (SUBDIR,), name, text.encode("utf-8"))
    SOURCES[kind] = "made"
    return found
