"""What gtdsl reads back from its disk caches is trusted only under the private-file rules.

A compiled-code cache entry is executed only when it and the directories holding it are owned
by this user and writable by no one else, it is a regular file reached without a symbolic
link, within the size limit, and its checksum matches. Each test plants an entry that would
create a marker file if it ran and return a wrong number; every entry breaking one rule must
neither run nor change the result, and is rewritten (private, atomically) where the directory
allows. A control shows that the same planted entry, placed by the user under the rules, does
run: the refusals are the rules at work, not a broken plant.

The parser tables are stored as JSON, never as a pickle, and are verified before decoding.
"""

from __future__ import annotations

import hashlib
import importlib
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
from gtdsl.runtime.jit import load_source
from gtdsl.syntax import grammar

# the module: the name gtdsl.runtime.jit also stands for the decorator
jit = importlib.import_module("gtdsl.runtime.jit")

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


def _entry_bytes(source: str, checksum_of: str | None = None) -> bytes:
    digest = hashlib.sha256((checksum_of if checksum_of is not None else source).encode()
                            ).hexdigest()
    return f"# {jit._CACHE_FORMAT} {digest}\n{source}".encode()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, time_limit) -> Path:
    """A private cache directory holding the one entry for ``SRC``; returns the entry."""
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path / "cache"))
    first = load_source(SRC, "c.gt", backend="torch")
    assert torch.equal(first.f(X), torch.exp(X) + 1)
    (entry,) = (tmp_path / "cache" / "jit").rglob("*.py")
    return entry


def _call(expect_disk_hit: bool = False) -> None:
    m = load_source(SRC, "c.gt", backend="torch")
    assert torch.equal(m.f(X), torch.exp(X) + 1)
    assert m.f.cache_info().disk_hits == int(expect_disk_hit)


def _assert_rewritten(entry: Path) -> None:
    info = entry.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    text = entry.read_text()
    assert "__gt_body" in text and "open(" not in text
    assert not list(entry.parent.glob(".tmp-*"))  # nothing half-written left behind
    _call(expect_disk_hit=True)  # and the rewritten entry is what the next load uses


def test_control_a_private_valid_entry_is_what_runs(cache: Path, tmp_path: Path) -> None:
    """The plant itself works: under the rules, the user's own entry is trusted."""
    marker = tmp_path / "ran"
    cache.write_bytes(_entry_bytes(_planted_source(marker)))
    m = load_source(SRC, "c.gt", backend="torch")
    assert torch.equal(m.f(X), torch.full_like(X, 42.0))
    assert marker.exists() and Path(str(marker) + "-body").exists()
    assert m.f.cache_info().disk_hits == 1


def _plant_group_writable_file(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.write_bytes(planted)
    entry.chmod(0o620)
    return True


def _plant_other_writable_file(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.write_bytes(planted)
    entry.chmod(0o602)
    return True


def _plant_group_writable_dir(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.write_bytes(planted)
    entry.parent.chmod(0o770)
    return False  # not a private directory: nothing is written there either


def _plant_shared_jit_dir(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.write_bytes(planted)
    entry.parent.parent.chmod(0o777)
    return False


def _plant_symlink(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    target = tmp_path / "elsewhere.py"
    target.write_bytes(planted)
    target.chmod(0o600)
    entry.unlink()
    entry.symlink_to(target)
    return True


def _plant_symlinked_dir(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    other = tmp_path / "other-shard"
    other.mkdir(mode=0o700)
    (other / entry.name).write_bytes(planted)
    (other / entry.name).chmod(0o600)
    shard = entry.parent
    for p in shard.iterdir():
        p.unlink()
    shard.rmdir()
    shard.symlink_to(other, target_is_directory=True)
    return False


def _plant_fifo(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.unlink()
    os.mkfifo(entry, 0o600)
    return True


def _plant_dev_zero(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.unlink()
    entry.symlink_to("/dev/zero")
    return True


def _plant_oversized(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    source = planted.decode().partition("\n")[2]
    padded = source + "#" * (jit.CACHE_LIMIT + 1) + "\n"
    entry.write_bytes(_entry_bytes(padded))  # a correct checksum: only the size refuses it
    entry.chmod(0o600)
    return True


def _plant_stale_checksum(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    original = entry.read_text().partition("\n")[2]
    source = planted.decode().partition("\n")[2]
    entry.write_bytes(_entry_bytes(source, checksum_of=original))  # tampered, old checksum
    entry.chmod(0o600)
    return True


def _plant_wrong_owner(entry: Path, planted: bytes, tmp_path: Path) -> bool:
    entry.write_bytes(planted)
    entry.chmod(0o600)
    os.chown(entry, os.geteuid() + 4242, -1)
    return True


PLANTS = {
    "group_writable_file": _plant_group_writable_file,
    "other_writable_file": _plant_other_writable_file,
    "group_writable_dir": _plant_group_writable_dir,
    "shared_jit_dir": _plant_shared_jit_dir,
    "symlink": _plant_symlink,
    "symlinked_dir": _plant_symlinked_dir,
    "fifo": _plant_fifo,
    "dev_zero": _plant_dev_zero,
    "oversized": _plant_oversized,
    "stale_checksum": _plant_stale_checksum,
    "wrong_owner": _plant_wrong_owner,
}


@pytest.mark.parametrize("case", list(PLANTS))
def test_a_planted_entry_breaking_a_rule_never_runs(case: str, cache: Path,
                                                   tmp_path: Path) -> None:
    if case == "wrong_owner" and os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    marker = tmp_path / "ran"
    rewritable = PLANTS[case](cache, _entry_bytes(_planted_source(marker)), tmp_path)
    _call()
    assert not marker.exists() and not Path(str(marker) + "-body").exists()
    if rewritable:
        _assert_rewritten(cache)
    else:
        _call()  # still never trusted, still right
        assert not marker.exists()


def test_entries_are_private_whatever_the_umask(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(tmp_path / "c"))
    old = os.umask(0)
    try:
        load_source(SRC, "c.gt", backend="torch").f(X)
    finally:
        os.umask(old)
    (entry,) = (tmp_path / "c" / "jit").rglob("*.py")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.parent.parent.stat().st_mode) == 0o700


def test_entries_are_keyed_by_the_whole_package(cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Any change to gtdsl's code or data is a new key: the old entry is not looked up."""
    _call(expect_disk_hit=True)
    monkeypatch.setattr(jit, "_code_digest", lambda: "another gtdsl")
    _call(expect_disk_hit=False)
    assert len(list(cache.parents[1].rglob("*.py"))) == 2


def test_the_package_digest_covers_every_source_and_data_file(tmp_path: Path) -> None:
    pkg = tmp_path / "gtdsl"
    for rel in ("check/checker.py", "ir/core.py", "lower/triton/kernels.py", "runtime/jit.py",
                "models/bert.gt", "__pycache__/jit.cpython-311.pyc", "notes.txt"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(rel)
    data = tmp_path / "grammar"
    data.mkdir()
    (data / "gtdsl.lark").write_text("start: NAME\n")
    base = _resources.tree_digest([pkg, data])
    for rel in ("check/checker.py", "ir/core.py", "lower/triton/kernels.py", "runtime/jit.py",
                "models/bert.gt"):
        f = pkg / rel
        f.write_text(rel + " changed")
        assert _resources.tree_digest([pkg, data]) != base, rel
        f.write_text(rel)
    (data / "gtdsl.lark").write_text("start: INT\n")
    assert _resources.tree_digest([pkg, data]) != base
    (data / "gtdsl.lark").write_text("start: NAME\n")
    assert _resources.tree_digest([pkg, data]) == base
    (pkg / "__pycache__" / "jit.cpython-311.pyc").write_text("other bytecode")
    (pkg / "notes.txt").write_text("other notes")
    assert _resources.tree_digest([pkg, data]) == base  # neither is source
    (pkg / "lower" / "new.py").write_text("")
    assert _resources.tree_digest([pkg, data]) != base  # a new module counts too
    assert _resources.package_digest() == _resources.package_digest.__wrapped__()


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
    """The parser as a new process would get it, and whether it was built or loaded."""
    monkeypatch.setenv("GTDSL_CACHE_DIR", str(cache_dir))
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
            "def refuse(*a, **k):\n"
            "    raise AssertionError('a pickle was loaded')\n"
            "pickle.load = pickle.loads = refuse\n"
            "print(gtdsl.parse_type('f32[b, 768] @ cuda'))\n")
    env = {"GTDSL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # builds and writes the tables, then reads them
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0 and out.stdout == "f32[b, 768] @ cuda\n", out.stderr
    assert _tables(tmp_path).is_file()
