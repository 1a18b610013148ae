"""Files: the data that lives outside the package in a checkout and inside it in a wheel,
reading source files safely, gtdsl's private cache files, and the digest of the installation.

``grammar/``, ``kernels/`` and ``docs/errors/`` sit at the top of the repository; the wheel
carries them as ``gtdsl/_data/grammar``, ``gtdsl/_data/kernels`` and ``gtdsl/_data/errors``. A leaf module: imports nothing
from gtdsl, so every stage may use it.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):  # importlib.abc's is deprecated in 3.12, gone in 3.14
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

_CHECKOUT_DIRS = {"grammar": ("grammar",), "errors": ("docs", "errors"), "kernels": ("kernels",)}


def checkout_root() -> Path:
    return Path(__file__).resolve().parents[1]


def data_path(kind: str, name: str) -> Traversable | None:
    """The packaged copy if this is an installed wheel, else the checkout's, else None."""
    here = Path(__file__).parent
    packaged: Traversable
    if here.is_dir():  # a package in a folder: its data are plain files
        packaged = here / "_data" / kind / name
    else:  # in a zip file, or another loader's: importlib.resources (it loads tempfile, ...)
        from importlib import resources

        packaged = resources.files("gtdsl") / "_data" / kind / name
    if packaged.is_file():
        return packaged
    local = checkout_root().joinpath(*_CHECKOUT_DIRS[kind], name)
    return local if local.is_file() else None


# ====================================================================== reading files safely

SOURCE_LIMIT = 16 << 20  # bytes: a source file larger than this is refused, not read
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class NotRegularFile(OSError):
    """The path names a directory, a FIFO, a device or a socket: nothing is read from it."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}")
        self.path, self.kind = path, kind


class FileTooLarge(OSError):
    """The file holds more bytes than the caller's limit: it is not read."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"{path} has {size} bytes, more than {limit}")
        self.path, self.size, self.limit = path, size, limit


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "a special file"


def _read_fd(fd: int, path: str, size: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of an open regular file; a file that grew past it is refused."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(max(size, 1 << 16), limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise FileTooLarge(path, total, limit)


def open_regular(path: str | os.PathLike[str], limit: int | None) -> tuple[int, int]:
    """A descriptor open for reading on a regular file (symbolic links followed) of at most
    ``limit`` bytes (None: any size), and its size.

    Opened without blocking and checked on the open descriptor, so a FIFO, ``/dev/zero``, a
    directory or a file swapped in after a check is refused at once, never waited on:
    ``NotRegularFile``, ``FileTooLarge``, or the ``OSError`` of the open. The descriptor is
    back in blocking mode; the caller closes it.
    """
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | _NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(name, file_kind(info.st_mode))
        if limit is not None and info.st_size > limit:
            raise FileTooLarge(name, info.st_size, limit)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], limit: int = SOURCE_LIMIT) -> bytes:
    """The bytes of a regular file, at most ``limit`` of them (see ``open_regular``); a file
    that grows past the limit while it is read is ``FileTooLarge`` too."""
    fd, size = open_regular(path, limit)
    try:
        return _read_fd(fd, os.fspath(path), size, limit)
    finally:
        os.close(fd)


# ====================================================================== private cache files
#
# gtdsl's disk cache (the parser tables) lives under the cache directory in
# subdirectories gtdsl makes itself. What is read from there is trusted only as far as these
# rules go: every directory below the cache directory and the file itself are opened without
# following symbolic links and checked on the open descriptor (no window between check and
# use): owned by this user, writable by no one else, the file a regular file within a size
# limit. Anything else reads as a missing entry. Writes go to a new private file (0600) in a
# private directory (0700), renamed over the entry in one step.


def _private_ok(info: os.stat_result) -> bool:
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def private_files_supported() -> bool:
    """Whether this platform can open files relative to a directory and name their owner."""
    return hasattr(os, "geteuid") and bool(_NOFOLLOW) and all(
        f in os.supports_dir_fd for f in (os.open, os.mkdir, os.rename, os.unlink))


def _open_private_dir(base: Path, parts: tuple[str, ...], create: bool) -> int | None:
    """A descriptor for ``base/parts...``, each part private to this user, or None."""
    try:
        fd = os.open(base, os.O_RDONLY | _DIRECTORY | _NONBLOCK)
    except OSError:
        return None
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            sub = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _NONBLOCK, dir_fd=fd)
            os.close(fd)
            fd = sub
            info = os.fstat(fd)
            if not stat.S_ISDIR(info.st_mode) or not _private_ok(info):
                raise PermissionError(f"{part} is not private to this user")
        return fd
    except OSError:
        os.close(fd)
        return None


def read_private_file(base: Path, parts: tuple[str, ...], name: str, limit: int) -> bytes | None:
    """The bytes of ``base/parts.../name`` if it passes the private-file rules, else None."""
    if not private_files_supported():
        return None
    dfd = _open_private_dir(base, parts, create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not _private_ok(info) or info.st_size > limit:
            return None
        return _read_fd(fd, name, info.st_size, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private_file(base: Path, parts: tuple[str, ...], name: str, data: bytes) -> bool:
    """Write ``base/parts.../name`` whole or not at all; False when it could not be written
    (no cache directory, a directory that is not private, a full disk)."""
    if not private_files_supported():
        return False
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (OSError, RuntimeError):
        return False
    dfd = _open_private_dir(base, parts, create=True)
    if dfd is None:
        return False
    import secrets

    tmp = f".tmp-{secrets.token_hex(8)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(
            os, "O_CLOEXEC", 0), 0o600, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces `name` in one step
        return True
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        return False
    finally:
        os.close(dfd)


def remove_private_file(base: Path, parts: tuple[str, ...], name: str) -> None:
    """Delete ``base/parts.../name`` if its directory is private; errors are ignored."""
    if not private_files_supported():
        return
    dfd = _open_private_dir(base, parts, create=False)
    if dfd is None:
        return
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
