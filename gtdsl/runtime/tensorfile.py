"""Tensors from files: ``.safetensors`` (read and written here, no extra dependency), ``.pt``
(``torch.load`` with ``weights_only=True``: no code runs) and ``.npy`` (numpy, when present).

A tensor file is data from anywhere, so reading one trusts nothing in it:

- the path must name a regular file (a FIFO or a device is refused without being read) no
  larger than this machine's memory;
- a ``.safetensors`` header is at most 100 MB of strict JSON (no duplicate keys, no numbers
  longer than 20 digits, no floats, no nesting beyond what the format has), every shape is a
  list of at most 64 non-negative integers, every dtype is one the format names, and the
  entries' byte ranges tile the data exactly, each as long as its dtype and shape say, as the
  reference implementation requires; ``BOOL`` data holds only bytes 0 and 1;
- a ``.npy`` array has a bool, integer, float or complex dtype (big-endian data is converted
  to native order, values unchanged; string, object, record, datetime and void arrays are
  refused) and exactly the bytes its header says;
- a ``.pt`` file is loaded with ``weights_only=True`` from the opened file and must hold a
  dense tensor or a flat dict of them.

Nothing is allocated before the sizes it needs are checked against the file's length. A bad
file is a ``TensorFileError`` naming the file and what is wrong, never a crash or a hang;
a write goes to a temporary file renamed into place, so nothing is left half-written.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import struct
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from gtdsl._resources import FileTooLarge, NotRegularFile, open_regular

SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
    **{name: getattr(torch, attr) for name, attr in (
        ("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"), ("C64", "complex64"),
        ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")) if hasattr(torch, attr)},
}
_NAMES = {v: k for k, v in SAFETENSORS_DTYPES.items()}
SUFFIXES = (".safetensors", ".pt", ".pth", ".npy")
MAX_HEADER = 100_000_000  # bytes: the reference implementation's limit
MAX_RANK = 64
_MAX_DIGITS = 20  # 2**64 has 20 digits: longer numbers are no size or offset


class TensorFileError(ValueError):
    pass


def memory_bytes() -> int | None:
    """This machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _open_regular(p: Path) -> tuple[io.BufferedReader, int]:
    """The file opened for reading, and its size: a regular file no larger than memory
    (``open_regular``: a FIFO is refused, never waited on; the file checked is the file
    read)."""
    try:
        fd, size = open_regular(p, memory_bytes())
    except FileNotFoundError:
        raise TensorFileError(f"`{p}` does not exist") from None
    except NotRegularFile:
        raise TensorFileError(f"`{p}` is not a regular file") from None
    except FileTooLarge as e:
        raise TensorFileError(f"`{p}` is {e.size} bytes, more than this machine's memory "
                              f"({e.limit} bytes)") from None
    except OSError as e:
        raise TensorFileError(f"cannot read `{p}`: {e.strerror or e}") from None
    return os.fdopen(fd, "rb"), size


def _read_exact(fh: io.BufferedReader, n: int, p: Path, what: str) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        try:
            k = fh.readinto(view[got:])
        except OSError as e:
            raise TensorFileError(f"cannot read `{p}`: {e.strerror or e}") from None
        if not k:
            raise TensorFileError(f"`{p}` ends inside {what} (the file changed while read?)")
        got += k
    return buf


# ---------------------------------------------------------------------- safetensors


class _Bad(Exception):
    """A header that is JSON but not what the safetensors format allows."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _Bad(f"a number with {len(text.lstrip('-'))} digits")
    return int(text)


def _json_float(text: str) -> Any:
    raise _Bad(f"the number {text[:24]} is not an integer")


def _json_constant(text: str) -> Any:
    raise _Bad(f"`{text}` is not JSON")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Bad(f"the key `{_short(k)}` appears twice")
        out[k] = v
    return out


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _entry(p: Path, key: str, info: Any) -> tuple[torch.dtype, list[int], int, int]:
    """An entry's dtype, shape and byte range, each checked for its form."""
    where = f"`{p}`: entry `{_short(key)}`"
    if not isinstance(info, dict):
        raise TensorFileError(f"{where} is not an object with dtype, shape and data_offsets")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in info:
            raise TensorFileError(f"{where} has no `{field}`")
    name, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(name, str) or name not in SAFETENSORS_DTYPES:
        shown = _short(name) if isinstance(name, str) else json.dumps(name)[:40]
        raise TensorFileError(f"{where} has dtype {shown!s}, which gtdsl does not read "
                              f"(one of {', '.join(SAFETENSORS_DTYPES)})")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise TensorFileError(f"{where}: its shape is not a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise TensorFileError(f"{where} has {len(shape)} dimensions, more than {MAX_RANK}")
    if not isinstance(offsets, list) or len(offsets) != 2 or \
            not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
        raise TensorFileError(f"{where}: its data_offsets are not [start, end] with "
                              "0 <= start <= end")
    return SAFETENSORS_DTYPES[name], shape, offsets[0], offsets[1]


def _nbytes_match(shape: list[int], itemsize: int, nbytes: int) -> bool:
    """Whether ``shape`` of ``itemsize``-byte elements is exactly ``nbytes`` bytes (the
    product stops growing past ``nbytes``: no huge numbers from huge shapes)."""
    if 0 in shape:
        return nbytes == 0
    count = itemsize
    for s in shape:
        count *= s
        if count > nbytes:
            return False
    return count == nbytes


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    p = Path(path)
    if sys.byteorder != "little":
        raise TensorFileError(f"`{p}`: reading safetensors (little-endian data) on a "
                              "big-endian machine is not supported")
    fh, size = _open_regular(p)
    with fh:
        if size < 8:
            raise TensorFileError(f"`{p}` is not a safetensors file: too short")
        (n,) = struct.unpack("<Q", _read_exact(fh, 8, p, "the header length"))
        if n > size - 8:
            raise TensorFileError(f"`{p}` is not a safetensors file: header length {n} "
                                  f"exceeds the file ({size} bytes)")
        if n > MAX_HEADER:
            raise TensorFileError(f"`{p}`: its header is {n} bytes, more than the "
                                  f"{MAX_HEADER} the format allows")
        raw = _read_exact(fh, n, p, "the header")
        if not raw.startswith(b"{"):
            raise TensorFileError(f"`{p}` is not a safetensors file: its header is not a "
                                  "JSON object")
        try:
            header = json.loads(raw.decode("utf-8"), parse_int=_json_int,
                                parse_float=_json_float, parse_constant=_json_constant,
                                object_pairs_hook=_json_object)
        except _Bad as e:
            raise TensorFileError(f"`{p}`: malformed safetensors header: {e}") from None
        except RecursionError:
            raise TensorFileError(f"`{p}`: malformed safetensors header: nested too deeply"
                                  ) from None
        except (UnicodeDecodeError, ValueError) as e:
            raise TensorFileError(f"`{p}`: malformed safetensors header ({e})") from None
        if not isinstance(header, dict):
            raise TensorFileError(f"`{p}`: malformed safetensors header: not a JSON object")
        meta = header.get("__metadata__")
        if meta is not None and not (isinstance(meta, dict) and all(
                isinstance(v, str) for v in meta.values())):
            raise TensorFileError(f"`{p}`: its __metadata__ is not an object of strings")
        entries = [(key, *_entry(p, key, info)) for key, info in header.items()
                   if key != "__metadata__"]
        body = size - 8 - n
        # the byte ranges, in order, must tile the data: no gap, no overlap, nothing after
        entries.sort(key=lambda e: (e[3], e[4]))
        at = 0
        for key, dtype, shape, start, end in entries:
            where = f"`{p}`: entry `{_short(key)}`"
            if end > body:
                raise TensorFileError(f"{where} has data_offsets [{start}, {end}], past the "
                                      f"end of the data ({body} bytes)")
            if start != at:
                raise TensorFileError(
                    f"{where} has data_offsets [{start}, {end}], " +
                    ("overlapping the entry before it" if start < at else
                     f"leaving bytes {at} to {start} unused") + " (entries must tile the data)")
            itemsize = torch.empty((), dtype=dtype).element_size()
            if not _nbytes_match(shape, itemsize, end - start):
                raise TensorFileError(f"{where}: shape {shape} of {_NAMES[dtype]} does not "
                                      f"take the {end - start} bytes of its data_offsets")
            at = end
        if at != body:
            raise TensorFileError(f"`{p}`: {body - at} bytes after the last tensor's data "
                                  "belong to no entry")
        out: dict[str, torch.Tensor] = {}
        for key, dtype, shape, start, end in entries:
            buf = _read_exact(fh, end - start, p, f"the data of `{_short(key)}`")
            if dtype is torch.bool and buf.translate(None, b"\x00\x01"):
                raise TensorFileError(f"`{p}`: entry `{_short(key)}` is BOOL but holds bytes "
                                      "other than 0 and 1")
            t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
            out[key] = t.reshape(shape)
    return {key: out[key] for key in header if key != "__metadata__"}


def write_safetensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor],
                      metadata: Mapping[str, str] | None = None) -> None:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for key, t in tensors.items():
        if t.dtype not in _NAMES:
            raise TensorFileError(f"cannot store `{key}`: dtype {t.dtype} has no safetensors "
                                  "name")
        c = t.detach().contiguous().cpu()
        raw = ctypes.string_at(c.data_ptr(), c.numel() * c.element_size()) if c.numel() else b""
        header[key] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)

    def fill(fh: BinaryIO) -> None:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for chunk in chunks:
            fh.write(chunk)
    write_whole(Path(path), fill)


def write_whole(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` whole: ``fill`` writes a temporary file beside it, which gets the mode a
    new file gets (0666 less the umask) and is then renamed to ``path``; on any failure the
    temporary file is removed and ``path`` is as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------- .pt and .npy


def _dense(p: Path, key: str, t: torch.Tensor) -> torch.Tensor:
    what = "a nested" if t.is_nested else "a quantized" if t.is_quantized else \
        f"a {str(t.layout).removeprefix('torch.')}" if t.layout is not torch.strided else None
    if what is not None:
        name = f"`{key}` in `{p}`" if key else f"`{p}`"
        raise TensorFileError(f"{name} is {what} tensor; gtdsl takes dense (strided) tensors")
    return t


def _check_unpacked_size(fh: io.BufferedReader, p: Path) -> None:
    """A ``.pt`` file is a zip archive: refuse one whose entries unpack to more than half of
    memory (a compressed archive can unpack to a thousand times its size) before loading."""
    try:
        with zipfile.ZipFile(fh) as z:
            total = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip (a legacy .pt): torch.load judges it, within the file's own size
    finally:
        fh.seek(0)
    limit = memory_bytes()
    if limit is not None and total > limit // 2:
        raise TensorFileError(f"`{p}` unpacks to {total} bytes, more than half of this "
                              f"machine's memory ({limit} bytes)")


def _read_pt(p: Path) -> dict[str, torch.Tensor]:
    fh, _ = _open_regular(p)
    with fh:
        _check_unpacked_size(fh, p)
        try:
            obj = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds for a bad file
            # (torch's messages may hold terminal escapes: bold text in torch 2.15)
            text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]", "", str(e)).strip()
            raise TensorFileError(f"`{p}`: not a loadable tensor file ({type(e).__name__}: "
                                  f"{_short(text.splitlines()[0], 200) if text else ''})"
                                  ) from None
    if isinstance(obj, torch.Tensor):
        return {"": _dense(p, "", obj)}
    if isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): _dense(p, str(k), v) for k, v in obj.items()}
    raise TensorFileError(f"`{p}` holds a {type(obj).__name__}, not a tensor or a dict of "
                          "tensors")


_NPY_REFUSED = {"U": "a string", "S": "a bytes", "O": "an object", "M": "a datetime",
                "m": "a timedelta", "V": "a void"}


def _read_npy(p: Path) -> dict[str, torch.Tensor]:
    try:
        import numpy as np
        from numpy.lib import format as npformat
    except ImportError:
        raise TensorFileError(f"reading `{p}` needs numpy: pip install numpy") from None
    fh, size = _open_regular(p)
    with fh as data:
        try:
            version = npformat.read_magic(data)
            if version == (1, 0):
                shape, fortran, dtype = npformat.read_array_header_1_0(data)
            elif version == (2, 0):
                shape, fortran, dtype = npformat.read_array_header_2_0(data)
            elif hasattr(npformat, "_read_array_header"):
                shape, fortran, dtype = npformat._read_array_header(data, version)
            else:
                raise ValueError(f"format version {version} is not supported")
        except Exception as e:  # numpy says ValueError; a damaged header may say more
            text = str(e).strip()
            why = _short(text.splitlines()[0], 200) if text else type(e).__name__
            raise TensorFileError(f"`{p}`: not a .npy array ({why})") from None
        offset = data.tell()
        if dtype.fields is not None:
            raise TensorFileError(f"`{p}` holds a record (structured) array of dtype "
                                  f"{_short(str(dtype))}; gtdsl reads numeric arrays")
        if dtype.kind in _NPY_REFUSED:
            raise TensorFileError(f"`{p}` holds {_NPY_REFUSED[dtype.kind]} array (dtype "
                                  f"{_short(str(dtype))}); gtdsl reads numeric arrays")
        if dtype.kind not in "biufc" or dtype.subdtype is not None or (
                dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16)):
            raise TensorFileError(f"`{p}` holds an array of dtype {_short(str(dtype))}, "
                                  "which torch has no tensor type for")
        if not isinstance(shape, tuple) or len(shape) > MAX_RANK or \
                not all(type(s) is int and s >= 0 for s in shape):
            raise TensorFileError(f"`{p}`: its shape {_short(str(shape))} is not a tuple of "
                                  f"at most {MAX_RANK} non-negative integers")
        body = size - offset
        if not _nbytes_match(list(shape), dtype.itemsize, body):
            raise TensorFileError(f"`{p}`: shape {list(shape)} of {dtype} does not take the "
                                  f"{body} bytes after its header")
        buf = _read_exact(data, body, p, "the array")
        if dtype.kind == "b" and buf.translate(None, b"\x00\x01"):
            raise TensorFileError(f"`{p}` is a bool array holding bytes other than 0 and 1")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    if not dtype.isnative:  # big-endian data: the same values in this machine's order
        arr = arr.astype(dtype.newbyteorder("="))
    try:
        # (np.ascontiguousarray would turn a 0-d array into shape [1])
        return {"": torch.from_numpy(arr if arr.flags.c_contiguous else arr.copy(order="C"))}
    except (TypeError, RuntimeError) as e:
        raise TensorFileError(f"`{p}` holds an array of dtype {dtype}, which torch cannot "
                              f"take ({e})") from None


def read_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor in a file, by key (``.pt`` and ``.npy`` holding one tensor: key "")."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors(p)
    if suffix in (".pt", ".pth"):
        return _read_pt(p)
    if suffix == ".npy":
        return _read_npy(p)
    raise TensorFileError(f"`{p}`: unknown tensor file type (use {', '.join(SUFFIXES)})")


__all__ = ["SUFFIXES", "TensorFileError", "memory_bytes", "read_safetensors", "read_tensors",
           "write_safetensors", "write_whole"]
