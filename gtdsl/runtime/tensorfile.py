"""Tensors from files: ``.safetensors`` (read and written here, no extra dependency), ``.pt``
(``torch.load`` with ``weights_only=True``: no code runs) and ``.npy`` (numpy, when present).

A malformed file is a ``TensorFileError`` naming the file and what is wrong, never a crash;
a write goes to a temporary file renamed into place, so nothing is left half-written.
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in SAFETENSORS_DTYPES.items()}
SUFFIXES = (".safetensors", ".pt", ".pth", ".npy")


class TensorFileError(ValueError):
    pass


def read_safetensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise TensorFileError(f"cannot read `{p}`: {e.strerror or e}") from None
    if len(data) < 8:
        raise TensorFileError(f"`{p}` is not a safetensors file: too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise TensorFileError(f"`{p}` is not a safetensors file: header length {n} exceeds "
                              "the file")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TensorFileError(f"`{p}`: malformed safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise TensorFileError(f"`{p}`: malformed safetensors header")
    body = memoryview(data)[8 + n:]
    out: dict[str, torch.Tensor] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            start, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise TensorFileError(f"`{p}`: entry `{key}` has an unsupported or malformed "
                                  "description") from None
        count = 1
        for s in shape:
            count *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not 0 <= start <= end <= len(body) or end - start != count * itemsize:
            raise TensorFileError(f"`{p}`: entry `{key}` points outside the file or has the "
                                  "wrong byte length")
        buf = bytearray(body[start:end])
        t = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
        out[key] = t.reshape(shape)
    return out


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
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent or ".", prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(struct.pack("<Q", len(head)))
            fh.write(head)
            for c in chunks:
                fh.write(c)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor in a file, by key (``.pt`` and ``.npy`` holding one tensor: key "")."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise TensorFileError(f"`{p}` does not exist" if not p.exists() else
                              f"`{p}` is not a file")
    if suffix == ".safetensors":
        return read_safetensors(p)
    if suffix in (".pt", ".pth"):
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds for a bad file
            raise TensorFileError(f"`{p}`: not a loadable tensor file ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''})") from None
        if isinstance(obj, torch.Tensor):
            return {"": obj}
        if isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {str(k): v for k, v in obj.items()}
        raise TensorFileError(f"`{p}` holds a {type(obj).__name__}, not tensors")
    if suffix == ".npy":
        try:
            import numpy as np
        except ImportError:
            raise TensorFileError(f"reading `{p}` needs numpy: pip install numpy") from None
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:
            raise TensorFileError(f"`{p}`: not a .npy array ({e})") from None
        return {"": torch.from_numpy(np.ascontiguousarray(arr))}
    raise TensorFileError(f"`{p}`: unknown tensor file type (use {', '.join(SUFFIXES)})")


__all__ = ["SUFFIXES", "TensorFileError", "read_safetensors", "read_tensors",
           "write_safetensors"]
