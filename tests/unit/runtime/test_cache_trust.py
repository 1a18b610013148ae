"""What gtdsl reads back from disk is data, trusted only under the private-file rules.

gtdsl never executes code read from disk: generated code lives in memory only, and a file
planted where a code cache would be never runs. The parser tables are stored as JSON, never
as a pickle, in private files (owned by this user, writable by no one else, regular files
reached without a link, within a size limit), and are verified before decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gtdsl import _resources
from gtdsl.driver import load_source
from gtdsl.syntax import grammar

SRC = "def f(x: f32[n]) -> f32[n]:\n    return exp(x) + 1\n"
X = torch.linspace(-1.0, 1.0, 5)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Timeout


@pytest.fixture
def time_limit():
    """Fail, instead of hanging the suite, if a read waits on a pipe or an endless device."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _planted_source(marker: Path) -> str:
    return (f"open({str(marker)!r}, 'w').close()\n"
            "def __gt_body(*args):\n"
            f"    open({str(marker) + '-body'!r}, 'w').close()\n"
            "    return args[0] * 0 + 42\n")


def test_no_code_is_read_from_or_written_to_the_cache_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, time_limit) -> None:
    """Generated code lives in memory only. Entries planted where a code cache would keep
    them (every layout: ``jit/ab/cdef.py`` with a valid-looking header, private or not) never
    run and never change a result, and compiling writes no code file anywhere under the
    cache directory."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(cache))
    marker = tmp_path / "ran"
    source = _planted_source(marker)
    digest = hashlib.sha256(source.encode()).hexdigest()
    for a in ("00", "7f", "ff"):
        d = cache / "jit" / a
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        for name in ("0" * 32, "f" * 32):
            (d / f"{name}.py").write_text(f"# gtdsl-jit-cache 2 {digest}\n{source}")
    before = sorted(q for q in cache.rglob("*") if q.is_file())
    for backend in ("torch", "triton", "interpret"):
        m = load_source(SRC, f"c_{backend}.gt", backend=backend)
        torch.testing.assert_close(m.f(X), torch.exp(X) + 1)  # not the planted 42
        torch.testing.assert_close(m.f(X[:3]), torch.exp(X[:3]) + 1)
    assert not marker.exists() and not Path(str(marker) + "-body").exists()
    after = sorted(q for q in cache.rglob("*") if q.is_file())
    assert [q for q in after if q not in before and q.suffix == ".py"] == []
    assert not (cache / "jit").joinpath("new").exists()


# ---------------------------------------------------------------- reading regular files only


def test_read_regular_file_refuses_at_once(tmp_path: Path, time_limit) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    cases = [(fifo, _resources.NotRegularFile), (Path("/dev/zero"), _resources.NotRegularFile),
             (tmp_path, _resources.NotRegularFile), (big, _resources.FileTooLarge)]
    for path, exc in cases:
        with pytest.raises(exc):
            _resources.read_regular_file(path, limit=100)
    assert _resources.read_regular_file(big, limit=101) == b"x" * 101


# ---------------------------------------------------------------- parser tables


def _tables(cache_dir: Path) -> Path:
    return cache_dir / "parser" / grammar._tables_name()


def _fresh_parser(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> tuple[object, list[str]]:
    """The parser as a new process would get it where the shipped tables do not serve (made
    by another Lark release), and whether it was built or loaded."""
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(cache_dir))
    monkeypatch.setattr(grammar, "_load_shipped", lambda text: None)
    how: list[str] = []
    real_init, real_load = grammar.Lark.__init__, grammar.Lark._load_from_dict.__func__

    def init(self, *a, **k):
        how.append("built")
        real_init(self, *a, **k)

    def load(cls, *a, **k):
        how.append("loaded")
        return real_load(cls, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(grammar.Lark, "__init__", init)
        m.setattr(grammar.Lark, "_load_from_dict", classmethod(load))
        parser = grammar._parser_template.__wrapped__()
    return parser, how


def _trees(parser: object) -> list[str]:
    from gtdsl.syntax.parse import parse_source
    from tests.conftest import REPO

    files = sorted((REPO / "docs" / "examples").rglob("*.gt"))
    assert files
    out = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(grammar, "_parser_template", lambda: parser)
        m.setattr("gtdsl.syntax.parse.DIRECT", False)  # Lark parses, with these tables
        for f in files:
            out.append(repr(parse_source(f.read_text(), str(f))))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], bytes]:
    """Trees from a parser built from the grammar, and the tables file it wrote."""
    cache_dir = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as m:
        parser, how = _fresh_parser(m, cache_dir)
    assert how == ["built"]
    return _trees(parser), _tables(cache_dir).read_bytes()


def _install(tables: bytes, cache_dir: Path) -> Path:
    (cache_dir / "parser").mkdir(mode=0o700, parents=True)
    path = _tables(cache_dir)
    path.write_bytes(tables)
    path.chmod(0o600)
    return path


def test_parser_tables_are_json_and_parse_as_the_grammar_does(
        built: tuple[list[str], bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trees, raw = built
    head, _, payload = raw.partition(b"\n")
    assert head.startswith(b"gtdsl-lalr-tables ") and payload.startswith(b"{")
    json.loads(payload)  # data, not a pickle
    _install(raw, tmp_path)
    loaded, how = _fresh_parser(monkeypatch, tmp_path)
    assert how == ["loaded"]
    assert _trees(loaded) == trees


def test_parser_tables_are_written_private(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _, how = _fresh_parser(monkeypatch, tmp_path)
    assert how == ["built"]
    assert stat.S_IMODE(_tables(tmp_path).stat().st_mode) == 0o600
    assert stat.S_IMODE(_tables(tmp_path).parent.stat().st_mode) == 0o700


def _payload_pickle(marker: Path) -> bytes:
    class Plant:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(Plant())


@pytest.mark.parametrize("case", ["pickle_as_tables", "pickle_at_the_old_name",
                                  "tampered_payload", "other_grammar", "shared_dir",
                                  "symlinked_tables", "fifo_tables"])
def test_planted_parser_tables_are_not_used(case: str, built: tuple[list[str], bytes],
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            time_limit) -> None:
    trees, good = built
    tables = _install(good, tmp_path)
    head, _, payload = good.partition(b"\n")
    fmt1, fmt2, key, _digest = head.split(b" ")
    marker = tmp_path / "ran"
    if case == "pickle_as_tables":
        tables.write_bytes(head + b"\n" + _payload_pickle(marker))
    elif case == "pickle_at_the_old_name":
        old = tables.parent / f"gtdsl-lark-{grammar.lark.__version__}.cache"
        old.write_bytes(key + b"\n" + _payload_pickle(marker))
        tables.unlink()
    elif case == "tampered_payload":
        tables.write_bytes(head + b"\n" + payload.replace(b'"NAME"', b'"NAMF"'))
    elif case == "other_grammar":
        bad = payload.replace(b'"NAME"', b'"NAMF"')
        tables.write_bytes(b" ".join((fmt1, fmt2, b"0" * 64,
                                      hashlib.sha256(bad).hexdigest().encode())) + b"\n" + bad)
    elif case == "shared_dir":
        tables.parent.chmod(0o777)
    elif case == "symlinked_tables":
        target = tmp_path / "elsewhere.json"
        target.write_bytes(good)
        target.chmod(0o600)
        tables.unlink()
        tables.symlink_to(target)
    elif case == "fifo_tables":
        tables.unlink()
        os.mkfifo(tables, 0o600)
    parser, how = _fresh_parser(monkeypatch, tmp_path)
    assert how == ["built"], how
    assert not marker.exists()
    assert _trees(parser) == trees
    if case != "shared_dir":
        assert _tables(tmp_path).lstat().st_mode & 0o777 == 0o600  # rewritten, private
        _, how = _fresh_parser(monkeypatch, tmp_path)
        assert how == ["loaded"]
    if case == "pickle_at_the_old_name":
        assert not (tables.parent / f"gtdsl-lark-{grammar.lark.__version__}.cache").exists()


@pytest.mark.slow
def test_a_new_process_parses_from_the_tables_and_never_unpickles(tmp_path: Path) -> None:
    code = ("import pickle, gtdsl\n"
            "import gtdsl.syntax.grammar as g, gtdsl.syntax.parse as p\n"
            "def refuse(*a, **k):\n"
            "    raise AssertionError('a pickle was loaded')\n"
            "pickle.load = pickle.loads = refuse\n"
            "g._load_shipped = lambda text: None  # as with a Lark the shipped tables miss\n"
            "p.DIRECT = False\n"
            "print(gtdsl.parse_type('f32[b, 768] @ cuda'))\n")
    env = {"GTDSL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # builds and writes the tables, then reads them
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0 and out.stdout == "f32[b, 768] @ cuda\n", out.stderr
    assert _tables(tmp_path).is_file()
