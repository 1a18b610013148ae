"""Source files that cannot be read as source: each ends at once in a diagnostic with its code
and the path, through ``gtdsl check``, ``gtdsl run``, ``gtdsl.load`` and ``gtdsl.check``.

Named pipes and devices are refused without being opened for a blocking read (a FIFO with no
writer, or ``/dev/zero``, once hung every later run); only regular files of at most 16 MiB are
read. Every case runs under an alarm: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest

import gtdsl
from gtdsl._resources import SOURCE_LIMIT
from gtdsl.cli.main import main

TIME_LIMIT_S = 20
GOOD = "def f(x: f32[n]) -> f32[n]:\n    return x + 1\n"


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.gt")
    return d / "pipe.gt"


def _dev_zero_link(d: Path) -> Path:
    (d / "zero.gt").symlink_to("/dev/zero")
    return d / "zero.gt"


def _dev_zero(d: Path) -> Path:
    return Path("/dev/zero")


def _dev_null_link(d: Path) -> Path:
    (d / "null.gt").symlink_to("/dev/null")
    return d / "null.gt"


def _directory(d: Path) -> Path:
    (d / "models.gt").mkdir()
    return d / "models.gt"


def _oversized(d: Path) -> Path:
    path = d / "huge.gt"
    with open(path, "wb") as fh:
        fh.write(GOOD.encode())
        fh.truncate(SOURCE_LIMIT + 1)  # a sparse file: big without writing 16 MiB
    return path


def _missing(d: Path) -> Path:
    return d / "missing.gt"


def _dangling_link(d: Path) -> Path:
    (d / "gone.gt").symlink_to(d / "nowhere.gt")
    return d / "gone.gt"


def _link_loop(d: Path) -> Path:
    (d / "loop.gt").symlink_to(d / "loop.gt")
    return d / "loop.gt"


IMPORTER = ("from helpers import f\n\n\n"
            "def g(x: f32[n]) -> f32[n]:\n    return f(x)\n")


def _imports_a_fifo(d: Path) -> Path:
    os.mkfifo(d / "helpers.gt")
    (d / "main.gt").write_text(IMPORTER)
    return d / "main.gt"


def _imports_an_oversized_module(d: Path) -> Path:
    with open(d / "helpers.gt", "wb") as fh:
        fh.write(GOOD.encode())
        fh.truncate(SOURCE_LIMIT + 1)
    (d / "main.gt").write_text(IMPORTER)
    return d / "main.gt"


# (name, make the path, expected code, text the message must hold, where the problem is)
ROWS = [
    ("fifo", _fifo, "GT0901", "not a regular file", None),
    ("dev_zero_symlink", _dev_zero_link, "GT0901", "not a regular file", None),
    ("dev_zero", _dev_zero, "GT0901", "not a regular file", None),
    ("dev_null_symlink", _dev_null_link, "GT0901", "not a regular file", None),
    ("directory", _directory, "GT0903", "is a directory", None),
    ("oversized", _oversized, "GT0910", "too large", None),
    ("missing", _missing, "GT0901", "no such file", None),
    ("dangling_symlink", _dangling_link, "GT0901", "no such file", None),
    ("symlink_loop", _link_loop, "GT0901", "cannot read", None),
    ("imported_module_is_a_fifo", _imports_a_fifo, "GT0901", "not a regular file",
     "helpers.gt"),
    ("imported_module_oversized", _imports_an_oversized_module, "GT0910", "too large",
     "helpers.gt"),
]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Timeout


@pytest.fixture(autouse=True)
def _time_limit():
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue() + err.getvalue()


def _where(path: Path, tmp_path: Path, in_file: str | None) -> str:
    return str(tmp_path / in_file) if in_file else str(path)


@pytest.mark.parametrize("name,make,code,text,in_file", ROWS, ids=[r[0] for r in ROWS])
@pytest.mark.parametrize("command", ["check", "run"])
def test_cli_refuses_an_unreadable_source(command: str, name: str, make, code: str, text: str,
                                          in_file: str | None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path)
    argv = ["check", str(path)] if command == "check" else ["run", str(path), "--fn", "f"]
    status, output = _cli(*argv)
    # 2: the named file cannot be read; a module it imports is an error in the check (1)
    assert status == 2 if not in_file else status in (1, 2), output
    assert f"error[{code}]" in output and text in output, output
    assert f"--> {_where(path, tmp_path, in_file)}" in output, output
    assert "Traceback" not in output


@pytest.mark.parametrize("name,make,code,text,in_file", ROWS, ids=[r[0] for r in ROWS])
def test_api_refuses_an_unreadable_source(name: str, make, code: str, text: str,
                                          in_file: str | None, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path)
    with pytest.raises(gtdsl.GtdslError) as err:
        gtdsl.load(path)
    (diag,) = [d for d in err.value.diagnostics if d.is_error]
    assert diag.code == code and text in diag.message
    where = _where(path, tmp_path, in_file)
    assert (diag.path or "") == where or (diag.location or "").startswith(where), \
        (diag.path, diag.location)
    assert "Traceback" not in str(err.value)
    found = [d for d in gtdsl.check(path) if d.is_error]
    assert [d.code for d in found] == [code]


def test_the_limit_is_the_documented_one(tmp_path: Path) -> None:
    """16 MiB is accepted (a long file of comments still checks), one byte more is not."""
    path = tmp_path / "long.gt"
    with open(path, "wb") as fh:
        fh.write(GOOD.encode())
        fh.write(b"#" * (SOURCE_LIMIT - len(GOOD) - 1) + b"\n")
    assert path.stat().st_size == SOURCE_LIMIT == 16 << 20
    assert [d for d in gtdsl.check(path) if d.is_error] == []
    with open(path, "ab") as fh:
        fh.write(b"#")
    assert [d.code for d in gtdsl.check(path)] == ["GT0910"]
