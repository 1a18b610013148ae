"""Bad inputs to running code: tensor files, ``gtdsl run`` values, exotic tensors and wrong
calls. Each row ends in a gtdsl diagnostic with its code and where (the file or parameter at
fault), or in Python's own ``TypeError`` for a wrong call; never a traceback, a hang or a huge
allocation.

Oracles: the ``safetensors`` package (the format's reference implementation) refuses every
malformed ``.safetensors`` file this reader refuses except where the row says gtdsl is
stricter, and reads every good one to the same tensors; numpy reads the ``.npy`` files gtdsl
accepts to the same values; Python itself words the wrong-call errors, for a plain function
with the same signature.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import signal
import struct
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gtdsl
from gtdsl.cli.main import main
from gtdsl.diagnostics import GtdslError
from gtdsl.runtime.tensorfile import TensorFileError, read_safetensors, read_tensors
from tests.conftest import REPO

LANG = REPO / "docs" / "examples" / "language"
RMS = str(LANG / "rms_norm.gt")


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail, instead of hanging, when the body takes longer than ``seconds``."""
    def expire(*_: Any) -> None:
        raise AssertionError(f"took longer than {seconds}s (a hang?)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with deadline(60):
        code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# ====================================================================== .safetensors files


def st_file(header: Any, data: bytes = b"", *, raw_header: bytes | None = None,
            length: int | None = None) -> bytes:
    """A safetensors file: 8-byte length, header, data (each part overridable)."""
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(head) if length is None else length) + head + data


def entry(dtype: str = "F32", shape: Any = (2,), offsets: Any = (0, 8)) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


F32x2 = struct.pack("<2f", 1.0, 2.0)

# (id, the file's bytes, a fragment of the message, the reference implementation refuses it
# too: True, or False where gtdsl is deliberately stricter)
SAFETENSORS_ROWS: list[tuple[str, bytes, str, bool]] = [
    ("negative_shape", st_file({"x": entry(shape=[-2])}, F32x2), "non-negative", True),
    ("overflowing_shape", st_file({"x": entry(shape=[2 ** 62, 2 ** 62])}, F32x2),
     "does not take the 8 bytes", True),
    ("shape_2_pow_64", st_file({"x": entry(shape=[2 ** 64])}, F32x2), "does not take", True),
    ("shape_many_big_dims", st_file({"x": entry(shape=[2 ** 63] * 60)}, F32x2),
     "does not take", True),
    ("offset_5000_digits", st_file(None, F32x2, raw_header=(
        '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,' + "9" * 5000 + "]}}").encode()),
     "5000 digits", True),
    ("shape_5000_digits", st_file(None, F32x2, raw_header=(
        '{"x":{"dtype":"F32","shape":[' + "9" * 5000 + '],"data_offsets":[0,8]}}').encode()),
     "5000 digits", True),
    ("deeply_nested_json", st_file(None, F32x2, raw_header=b"{\"x\":" + b"[" * 200_000 +
                                   b"]" * 200_000 + b"}"), "nested too deeply", True),
    ("nested_json_in_entry", st_file({"x": {"dtype": "F32", "shape": [[[2]]],
                                            "data_offsets": [0, 8]}}, F32x2),
     "non-negative integers", True),
    ("duplicate_keys", st_file(None, F32x2 + F32x2, raw_header=(
        b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}')), "appears twice", True),
    ("duplicate_keys_same_entry", st_file(None, F32x2, raw_header=(
        b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}')), "appears twice", False),
    ("duplicate_field", st_file(None, F32x2, raw_header=(
        b'{"x":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}')),
     "appears twice", True),
    ("overlapping_offsets", st_file({"x": entry(offsets=(0, 8)), "y": entry(offsets=(4, 12))},
                                    F32x2 + F32x2[:4]), "overlapping", True),
    ("same_offsets_twice", st_file({"x": entry(), "y": entry()}, F32x2), "overlapping", True),
    ("gap_between_entries", st_file({"x": entry(offsets=(0, 8)), "y": entry(offsets=(12, 20))},
                                    F32x2 * 3), "unused", True),
    ("offsets_past_the_data", st_file({"x": entry(offsets=(0, 8))}, F32x2[:4]),
     "past the end", True),
    ("offsets_reversed", st_file({"x": entry(offsets=(8, 0))}, F32x2), "start <= end", True),
    ("negative_offset", st_file({"x": entry(offsets=(-8, 0))}, F32x2), "start <= end", True),
    ("three_offsets", st_file({"x": entry(offsets=(0, 4, 8))}, F32x2), "start <= end", True),
    ("bytes_after_the_data", st_file({"x": entry()}, F32x2 + b"\0" * 8), "belong to no entry",
     True),
    ("header_longer_than_file", st_file({"x": entry()}, F32x2, length=10 ** 6),
     "exceeds the file", True),
    ("header_length_2_pow_64", st_file({"x": entry()}, F32x2, length=2 ** 64 - 1),
     "exceeds the file", True),
    ("header_a_list", st_file([1, 2], b""), "not a JSON object", True),
    ("header_null", st_file(None, b"", raw_header=b"null"), "not a JSON object", True),
    ("header_not_json", st_file(None, b"", raw_header=b"{not json"), "malformed", True),
    ("header_not_utf8", st_file(None, b"", raw_header=b'{"\xff":1}'), "malformed", True),
    ("header_nan", st_file(None, F32x2, raw_header=(
        b'{"x":{"dtype":"F32","shape":[NaN],"data_offsets":[0,8]}}')), "NaN", True),
    ("float_in_shape", st_file({"x": entry(shape=[2.0])}, F32x2), "not an integer", True),
    ("bool_in_shape", st_file({"x": entry(shape=[True, True])}, F32x2), "non-negative", True),
    ("unknown_dtype", st_file({"x": entry(dtype="F128")}, F32x2), "dtype F128", True),
    ("dtype_not_a_string", st_file({"x": entry(dtype=4)}, F32x2), "dtype 4", True),
    ("missing_dtype", st_file({"x": {"shape": [2], "data_offsets": [0, 8]}}, F32x2),
     "no `dtype`", True),
    ("entry_a_list", st_file({"x": [1, 2]}, F32x2), "not an object", True),
    ("length_not_dtype_times_numel", st_file({"x": entry(shape=[3])}, F32x2),
     "does not take the 8 bytes", True),
    ("wrong_dtype_size", st_file({"x": entry(dtype="F64", shape=[2])}, F32x2),
     "does not take the 8 bytes", True),
    ("rank_65", st_file({"x": entry(shape=[1] * 65, offsets=(0, 4))}, F32x2[:4]),
     "65 dimensions", False),
    ("metadata_not_strings", st_file({"__metadata__": {"a": 1}, "x": entry()}, F32x2),
     "__metadata__", True),
    ("bool_byte_2", st_file({"x": entry(dtype="BOOL", shape=[2], offsets=(0, 2))}, b"\x01\x02"),
     "other than 0 and 1", False),
    ("too_short", b"\x00\x01\x02", "too short", True),
    ("empty_file", b"", "too short", True),
]


def _official_refuses(path: Path) -> bool | None:
    """Whether the reference implementation refuses the file (None: it is not installed)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        return None
    try:
        load_file(str(path))
    except Exception:  # noqa: BLE001 - it raises its own error kinds
        return True
    return False


@pytest.mark.parametrize(("data", "fragment", "official"),
                         [r[1:] for r in SAFETENSORS_ROWS], ids=[r[0] for r in SAFETENSORS_ROWS])
def test_malformed_safetensors_is_gt0908(tmp_path: Path, data: bytes, fragment: str,
                                         official: bool) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    with deadline(20):
        with pytest.raises(TensorFileError) as info:
            read_safetensors(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    refused = _official_refuses(path)
    if official and refused is not None:
        assert refused, "the reference implementation reads this file: gtdsl must too"
    code, out, err = run("run", RMS, "--fn", "rms_norm", "--arg", f"w={path}")
    assert code == 2 and out == "", err
    assert err.startswith("error[GT0908]: ") and fragment in err
    assert f"--> {RMS}" in err and str(path) in err and "Traceback" not in err


def test_malformed_model_weights_are_gt0909(tmp_path: Path) -> None:
    """Model loaders keep their own code for the same failures."""
    from gtdsl.models.weights import ModelLoadError, read_weights

    for name, data, fragment, _ in SAFETENSORS_ROWS:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        with deadline(20), pytest.raises(ModelLoadError) as info:
            read_weights(path)
        d = info.value.diagnostics[0]
        assert d.code == "GT0909" and fragment in d.message and d.path == str(path), name


def test_good_safetensors_match_the_reference(tmp_path: Path) -> None:
    """Files of every dtype, written by the reference implementation with the entries in any
    order, read to the same tensors; gtdsl's files read back in the reference."""
    from safetensors.torch import load_file, save_file

    from gtdsl.runtime.tensorfile import SAFETENSORS_DTYPES, write_safetensors

    g = torch.Generator().manual_seed(0)
    tensors = {}
    for i, (name, dt) in enumerate(SAFETENSORS_DTYPES.items()):
        base = torch.randn(2, 3, generator=g) * 50
        t = (base > 0) if dt is torch.bool else base.to(dt) if dt.is_floating_point or \
            dt.is_complex else base.to(torch.int64).abs().to(dt)
        tensors[f"t{i}_{name}"] = t
    tensors["empty"] = torch.zeros(0, 4)
    tensors["scalar"] = torch.tensor(3.5)
    path = tmp_path / "ref.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    ours, ref = read_safetensors(path), load_file(str(path))
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k].dtype == ref[k].dtype and ours[k].shape == ref[k].shape
        assert torch.equal(ours[k].reshape(-1).view(torch.uint8), ref[k].reshape(-1).view(
            torch.uint8)), k
    mine = tmp_path / "ours.safetensors"
    write_safetensors(mine, tensors)
    back = load_file(str(mine))
    for k in tensors:
        assert torch.equal(back[k].reshape(-1).view(torch.uint8),
                           tensors[k].reshape(-1).view(torch.uint8)), k
    # entries listed out of order still tile the data: the format allows it
    head = {"b": entry(offsets=(8, 16)), "a": entry(offsets=(0, 8))}
    (tmp_path / "order.safetensors").write_bytes(st_file(head, F32x2 + F32x2[::-1]))
    got = read_safetensors(tmp_path / "order.safetensors")
    ref = load_file(str(tmp_path / "order.safetensors"))
    assert all(torch.equal(got[k], ref[k]) for k in ref) and list(got) == ["b", "a"]


# ====================================================================== .npy and .pt files


def npy_bytes(array: np.ndarray, **kw: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, **kw)
    return buf.getvalue()


def npy_header(header: str, data: bytes) -> bytes:
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


NPY_ROWS: list[tuple[str, Callable[[], bytes], str]] = [
    ("string", lambda: npy_bytes(np.array(["ab", "c"])), "a string array"),
    ("bytes", lambda: npy_bytes(np.array([b"ab", b"c"])), "a bytes array"),
    ("object", lambda: npy_bytes(np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
     "an object array"),
    ("record", lambda: npy_bytes(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])),
     "record (structured)"),
    ("datetime", lambda: npy_bytes(np.array(["2024-01-01"], dtype="datetime64[D]")),
     "a datetime array"),
    ("timedelta", lambda: npy_bytes(np.array([1, 2], dtype="timedelta64[s]")),
     "a timedelta array"),
    ("void", lambda: npy_bytes(np.zeros(2, dtype="V4")), "a void array"),
    ("longdouble", lambda: npy_header(
        "{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }", b"\0" * 16),
     "no tensor type"),
    ("truncated", lambda: npy_bytes(np.arange(10, dtype="<f4"))[:-4], "does not take"),
    ("trailing_bytes", lambda: npy_bytes(np.arange(3, dtype="<f4")) + b"\0" * 4,
     "does not take"),
    ("huge_shape", lambda: npy_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 8), }",
        b"\0" * 64), "does not take"),
    ("negative_shape", lambda: npy_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", b""),
     "non-negative integers"),
    ("bad_magic", lambda: b"NOTNUMPY" + b"\0" * 64, "not a .npy array"),
    ("header_code", lambda: npy_header(
        "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (1,), }",
        b"\0" * 4), "not a .npy array"),
    ("bool_byte_2", lambda: npy_header(
        "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", b"\x01\x02"),
     "other than 0 and 1"),
]


class _Marker:
    """Unpickling this would create the file it names (torch.load must never do it)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def _pt(obj: Any) -> Callable[[Path], bytes]:
    def make(tmp: Path) -> bytes:
        buf = io.BytesIO()
        torch.save(obj(tmp) if callable(obj) else obj, buf)
        return buf.getvalue()
    return make


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _NESTED = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)])


def _loads_weights_only(obj: object) -> bool:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    try:
        torch.load(buf, weights_only=True)
    except Exception:  # noqa: BLE001 - refused by torch's weights-only unpickler
        return False
    return True


# torch 2.15's weights-only unpickler refuses a nested tensor (gtdsl reports torch's refusal);
# earlier releases load it and gtdsl refuses the nested layout itself
_NESTED_REFUSAL = "nested tensor" if _loads_weights_only(_NESTED) else "not a loadable"

PT_ROWS: list[tuple[str, Callable[[Path], bytes], str]] = [
    ("code_on_load", _pt(lambda tmp: {"w": _Marker(str(tmp / "MARK"))}), "not a loadable"),
    ("pickle_not_zip", lambda tmp: pickle.dumps(_Marker(str(tmp / "MARK"))), "not a loadable"),
    ("a_list", _pt([torch.ones(2)]), "holds a list"),
    ("a_string", _pt("hello"), "holds a str"),
    ("nested_dict", _pt({"a": {"b": torch.ones(2)}}), "holds a dict"),
    ("sparse", _pt(torch.ones(2, 2).to_sparse()), "sparse_coo tensor"),
    ("nested", _pt(_NESTED), _NESTED_REFUSAL),
    ("quantized", _pt(torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)),
     "quantized tensor"),
    ("truncated", lambda tmp: _pt(torch.ones(100))(tmp)[:200], "not a loadable"),
    ("garbage", lambda tmp: b"\x00garbage" * 10, "not a loadable"),
]


FILE_ROWS = [(f"npy_{n}", "x.npy", (lambda f: lambda tmp: f())(f), m) for n, f, m in NPY_ROWS] + \
    [(f"pt_{n}", "x.pt", f, m) for n, f, m in PT_ROWS]


@pytest.mark.parametrize(("name", "make", "fragment"), [r[1:] for r in FILE_ROWS],
                         ids=[r[0] for r in FILE_ROWS])
def test_bad_tensor_files_are_gt0908(tmp_path: Path, name: str,
                                     make: Callable[[Path], bytes], fragment: str) -> None:
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path.write_bytes(make(tmp_path))
    with deadline(20), pytest.raises(TensorFileError) as info:
        read_tensors(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    code, out, err = run("run", RMS, "--fn", "rms_norm", "--arg", f"x={path}")
    assert code == 2 and out == "" and err.startswith("error[GT0908]: "), err
    assert fragment in err and str(path) in err and f"--> {RMS}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "MARK").exists(), "loading the file ran code from it"


@pytest.mark.parametrize("suffix", [".safetensors", ".npy", ".pt"])
def test_a_fifo_or_a_folder_is_refused_without_reading(tmp_path: Path, suffix: str) -> None:
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)  # opening it for reading the usual way would wait for a writer forever
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    for path in (fifo, folder):
        with deadline(10), pytest.raises(TensorFileError, match="not a regular file"):
            read_tensors(path)
        code, out, err = run("run", RMS, "--fn", "rms_norm", "--arg", f"x={path}")
        assert code == 2 and "not a regular file" in err and str(path) in err
    with pytest.raises(TensorFileError, match="does not exist"):
        read_tensors(tmp_path / f"missing{suffix}")


def test_npy_big_endian_and_fortran_order_read_as_numpy_reads_them(tmp_path: Path) -> None:
    """Big-endian data is converted to this machine's order, values unchanged."""
    g = np.random.default_rng(0)
    for dt in (">f4", ">f8", ">i2", ">i8", ">u4", ">c8", "<f2", "|b1", "|u1"):
        arr = (g.standard_normal((3, 4)) * 100).astype(dt)
        for order in ("C", "F"):
            path = tmp_path / f"a{dt[1:]}{order}.npy"
            np.save(path, np.asarray(arr, order=order))
            (t,) = read_tensors(path).values()
            expected = np.load(path)
            assert t.shape == expected.shape and t.numpy().dtype == expected.dtype.newbyteorder(
                "=")
            assert np.array_equal(t.numpy(), expected), (dt, order)


def test_pt_files_load_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    seen = []
    real = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    torch.save({"w": torch.arange(3.0)}, tmp_path / "w.pt")
    assert torch.equal(read_tensors(tmp_path / "w.pt")["w"], torch.arange(3.0))
    assert seen == [True]


# ====================================================================== gtdsl run values

HUGE = "9" * 5000
CLI_ROWS: list[tuple[str, list[str], str]] = [
    ("size_over_int64", ["--size", "d=99999999999999999999"], "larger than any tensor"),
    ("size_5000_digits", ["--size", f"d={HUGE}"], "non-negative integer"),
    ("size_cannot_allocate", ["--size", "d=4000000000"], "would have 8000000000 elements"),
    ("size_negative", ["--size", "d=-1"], "non-negative integer"),
    ("size_not_a_number", ["--size", "d=four"], "non-negative integer"),
    ("size_no_equals", ["--size", "d"], "non-negative integer"),
    ("size_not_a_size_variable", ["--size", "eps=3"], "no size variable `eps`"),
    ("size_unknown_name", ["--size", "q=3"], "no size variable `q`"),
    ("size_twice", ["--size", "d=3", "--size", "d=4"], "given twice"),
    ("seed_over_uint64", ["--seed", str(2 ** 64)], "outside torch's seed range"),
    ("seed_under_int64", ["--seed", str(-2 ** 63 - 1)], "outside torch's seed range"),
    ("type_cannot_allocate", ["--arg", "x=f32[99999999999]"], "99999999999 elements"),
    ("type_over_int64", ["--arg", "x=f32[3, 99999999999999999999]"], "elements, more than"),
    ("type_bytes_over_memory", ["--arg", "x=f64[2147483647]"], "would take"),
    ("number_5000_digits", ["--arg", f"eps={HUGE}"], "5000 digits"),
]


@pytest.mark.parametrize(("extra", "fragment"), [r[1:] for r in CLI_ROWS],
                         ids=[r[0] for r in CLI_ROWS])
def test_bad_run_values_are_gt0908_and_nothing_runs(extra: list[str], fragment: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import gtdsl.runtime.inputs as inputs

    if fragment == "would take":  # a machine this size: 2**31 - 1 doubles are 16 GiB
        monkeypatch.setattr(inputs, "memory_bytes", lambda: 8 * 2 ** 30)
    start = time.perf_counter()
    code, out, err = run("run", RMS, "--fn", "rms_norm", *extra)
    assert code == 2 and out == "", err  # nothing ran: no signature, no summary
    assert err.startswith("error[GT0908]: ") and fragment in err, err
    assert f"--> {RMS}" in err and "Traceback" not in err
    assert time.perf_counter() - start < 30


def test_the_largest_accepted_values_still_run() -> None:
    code, out, err = run("run", RMS, "--fn", "rms_norm", "--size", "d=3",
                         "--seed", str(2 ** 64 - 1))
    assert code == 0 and "f32[2, 3] @ cpu" in out, err
    code, out, err = run("run", RMS, "--fn", "rms_norm", "--seed", str(-2 ** 63))
    assert code == 0, err


# ====================================================================== exotic tensors

SOFTMAX = str(LANG / "softmax.gt")
BACKENDS = ["auto", "torch", "interpret"]


def _nested(layout: torch.layout) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=layout)


NESTED_ROWS = [
    # (id, file, function, argument index of the nested tensor, its parameter, the arguments)
    ("annotated_row_param", SOFTMAX, "softmax", 0, "x", lambda n: (n,)),
    ("unannotated_param", SOFTMAX, "scale", 0, "x", lambda n: (n, 2.0)),
    ("annotated_second_param", RMS, "rms_norm", 1, "w", lambda n: (torch.ones(2, 3), n)),
    ("annotated_first_param", RMS, "rms_norm", 0, "x", lambda n: (n, torch.ones(3))),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", [torch.strided, torch.jagged], ids=["strided", "jagged"])
@pytest.mark.parametrize(("path", "fn", "name", "args"), [(r[1], r[2], r[4], r[5])
                                                          for r in NESTED_ROWS],
                         ids=[r[0] for r in NESTED_ROWS])
def test_a_nested_tensor_argument_is_gt3001_naming_the_parameter(
        path: str, fn: str, name: str, args: Callable, layout: torch.layout,
        backend: str) -> None:
    f = getattr(gtdsl.load(path, backend=backend), fn)
    for _ in range(2):  # the first call and a call after the entry has compiled
        with pytest.raises(gtdsl.CastError) as info:
            f(*args(_nested(layout)))
        d = info.value.diagnostics[0]
        assert d.code == "GT3001" and f"argument `{name}` of `{fn}`" in d.message
        assert d.primary is not None and d.primary.span.file.name == path
        assert any(n.startswith("called from ") for n in d.notes)
        assert "Traceback" not in str(info.value)
        f(*args(torch.ones(2, 3)) if fn != "rms_norm" else (torch.ones(2, 3), torch.ones(3)))


def test_an_unannotated_parameter_passes_a_nested_tensor_through_until_an_op_needs_it(
        tmp_path: Path) -> None:
    """Unchecked means unchecked: compiled code hands the tensor on untouched (torch's own
    value comes back); the reference interpreter, which types every value, refuses it."""
    (tmp_path / "ident.gt").write_text("def ident(x):\n    return x\n")
    n = _nested(torch.strided)
    assert gtdsl.load(tmp_path / "ident.gt", backend="torch").ident(n) is n
    with pytest.raises(gtdsl.CastError, match=r"argument `x` of `ident` is a nested tensor"):
        gtdsl.load(tmp_path / "ident.gt", backend="interpret").ident(n)


def test_a_nested_tensor_to_a_jit_function_is_gt3001() -> None:
    @gtdsl.jit
    def add(x: "f32[n]", y: "f32[n]") -> "f32[n]":  # noqa: F821
        return x + y

    with pytest.raises(gtdsl.CastError, match=r"argument `y` of `add` is a nested tensor"):
        add(torch.ones(3), _nested(torch.jagged))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["struct_field", "list_element"])
def test_a_nested_tensor_inside_a_struct_or_list_is_gt3001(backend: str, where: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "m.gt").write_text(
        "struct P[d]:\n    w: f32[d]\n\n\ndef f(p: P[d], x: f32[d]) -> f32[d]:\n"
        "    return p.w * x\n\n\ndef g(xs: list[f32[d]]) -> f32[d]:\n    acc = xs[0]\n"
        "    for x in xs:\n        acc = acc + x\n    return acc\n")
    m = gtdsl.load(tmp_path / "m.gt", backend=backend)
    n = _nested(torch.strided)
    call = (lambda: m.f(m.structs["P"](w=n), torch.ones(3))) if where == "struct_field" \
        else (lambda: m.g([torch.ones(3), n]))
    with pytest.raises(gtdsl.CastError) as info:
        call()
    d = info.value.diagnostics[0]
    assert d.code == "GT3001" and "nested tensor" in str(info.value)


EXOTIC = {
    "sparse_coo": lambda: torch.tensor([[0.0, 1.5], [2.0, 0.0]]).to_sparse(),
    "sparse_csr": lambda: torch.tensor([[0.0, 1.5], [2.0, 0.0]]).to_sparse_csr(),
    "meta": lambda: torch.empty(2, 2, device="meta"),
    "quantized": lambda: torch.quantize_per_tensor(torch.tensor([[0.0, 1.5], [2.0, 0.5]]),
                                                    0.5, 0, torch.quint8),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(EXOTIC))
@pytest.mark.parametrize("fn", ["softmax", "scale"])
def test_other_exotic_tensors_give_a_diagnostic_or_torchs_own_result(
        kind: str, fn: str, backend: str) -> None:
    """Sparse, meta and quantized tensors are tensors of a dtype and a shape: the entry checks
    those; an op torch cannot run on them is GT3005 naming it, and a result is torch's own."""
    f = getattr(gtdsl.load(SOFTMAX, backend=backend), fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = EXOTIC[kind]()
        args = (x,) if fn == "softmax" else (x, 2.0)
        try:
            got = f(*args)
        except GtdslError as e:
            assert e.diagnostics[0].code in ("GT3001", "GT3005"), str(e)
            assert "Traceback" not in str(e)
            return
        ref = x * 2.0 if fn == "scale" else torch.softmax(x, dim=-1)
    assert got.device == ref.device and got.shape == ref.shape and got.layout == ref.layout
    if kind != "meta":
        assert torch.equal(got.to_dense(), ref.to_dense())


# ====================================================================== wrong calls


def softmax(x):  # noqa: ANN001, ANN201 - the signature Python words the errors for
    return x


def rms_norm(x, w, eps=1e-6):  # noqa: ANN001, ANN201
    return x


def linear(p, x, *, I=None, O=None):  # noqa: ANN001, ANN201, E741
    return x


ONE = torch.ones(2, 3)
CALLS: list[tuple[str, str, Callable, Callable]] = [
    ("missing", SOFTMAX, softmax, lambda f: f()),
    ("too_many", SOFTMAX, softmax, lambda f: f(ONE, ONE)),
    ("unknown_keyword", SOFTMAX, softmax, lambda f: f(ONE, y=1)),
    ("twice", SOFTMAX, softmax, lambda f: f(ONE, x=ONE)),
    ("missing_two", RMS, rms_norm, lambda f: f()),
    ("too_many_with_default", RMS, rms_norm, lambda f: f(ONE, ONE, 1e-5, 4)),
    ("unknown_keyword_with_default", RMS, rms_norm, lambda f: f(ONE, ONE, epsilon=1e-5)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("path", "python", "call"), [r[1:] for r in CALLS],
                         ids=[r[0] for r in CALLS])
def test_wrong_calls_read_as_pythons_own_for_the_users_function(
        path: str, python: Callable, call: Callable, backend: str) -> None:
    with pytest.raises(TypeError) as expected:
        call(python)
    f = getattr(gtdsl.load(path, backend=backend), python.__name__)
    with pytest.raises(TypeError) as got:
        call(f)
    assert str(got.value) == str(expected.value)
    assert "__gt" not in str(got.value)


def test_wrong_calls_with_size_keywords_and_under_jit(tmp_path: Path) -> None:
    (tmp_path / "lin.gt").write_text(
        "struct Linear[I, O]:\n    weight: f32[out=O, in=I]\n\n"
        "def linear[I, O](p: Linear[I, O], x: f32[*b, in=I]) -> f32[*b, out=O]:\n"
        "    return x @ p.weight.T\n")
    for backend in BACKENDS:
        f = gtdsl.load(tmp_path / "lin.gt", backend=backend).linear
        for call in (lambda g: g(ONE, K=3), lambda g: g(ONE, ONE, ONE), lambda g: g(ONE)):
            with pytest.raises(TypeError) as expected:
                call(linear)
            with pytest.raises(TypeError) as got:
                call(f)
            assert str(got.value) == str(expected.value), backend

    @gtdsl.jit
    def double(x: "f32[n]") -> "f32[n]":  # noqa: F821
        return x * 2

    def plain(x):  # noqa: ANN001, ANN202
        return x

    for call in (lambda g: g(), lambda g: g(ONE, ONE), lambda g: g(y=ONE)):
        with pytest.raises(TypeError) as expected:
            call(plain)
        with pytest.raises(TypeError) as got:
            call(double)
        assert str(got.value) == str(expected.value).replace(".plain()", ".double()")


def test_a_pt_archive_that_unpacks_beyond_memory_is_refused_before_loading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deflated .pt of zeros is a thousandth of what it unpacks to: the unpacked size is
    what must fit, read from the archive's directory before torch.load allocates anything."""
    import zipfile

    from gtdsl.runtime import tensorfile

    plain = tmp_path / "plain.pt"
    torch.save(torch.zeros(2_000_000), plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as z, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info.filename))
    assert bomb.stat().st_size * 100 < plain.stat().st_size
    monkeypatch.setattr(tensorfile, "memory_bytes", lambda: 4 * plain.stat().st_size)
    assert torch.equal(tensorfile.read_tensors(bomb)[""], torch.zeros(2_000_000))
    monkeypatch.setattr(tensorfile, "memory_bytes", lambda: plain.stat().st_size)
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(1))
    with pytest.raises(tensorfile.TensorFileError, match="unpacks to"):
        tensorfile.read_tensors(bomb)
    assert not loads


@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_npy_keeps_its_shape_zero_dims_included(shape: tuple, tmp_path: Path) -> None:
    import numpy as np

    from gtdsl.runtime import tensorfile

    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    arrays = [("c.npy", a)] + ([("f.npy", np.asfortranarray(a))] if a.ndim >= 2 else [])
    for name, arr in arrays:
        np.save(tmp_path / name, arr)
        got = tensorfile.read_tensors(tmp_path / name)[""]
        assert tuple(got.shape) == shape and torch.equal(got, torch.from_numpy(a))
