"""Files the CLI writes where the user says (``export -o FILE``, ``keygen --out FILE``).

Two things must never happen to such a file: a failed write (disk full, I/O error, Ctrl-C)
must not leave it cut off or empty when it held something before, and ``-o`` naming the
database the command reads (or its ``-wal``/``-shm``/``-journal``) must not overwrite it.
:func:`write_replacing` writes a temporary file beside the target and renames it over the
target only once every byte is on disk; :func:`database_files` names what ``-o`` may not be.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

__all__ = ["database_files", "is_database_file", "write_replacing"]

SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def database_files(db_url: str) -> list[str]:
    """The files of ``db_url`` when it is a SQLite file (itself, ``-wal``, ``-shm``,
    ``-journal``; symbolic links resolved), else none."""
    from .inspect import sqlite_path

    path = sqlite_path(db_url)
    if path is None:
        return []
    base = os.path.realpath(os.path.expanduser(path))
    return [base + suffix for suffix in SQLITE_SIDE_FILES]


def is_database_file(path: str, db_url: str) -> bool:
    """True if writing ``path`` would overwrite a file of the database ``db_url`` (by name,
    or the same file under another name: a hard link)."""
    target = os.path.realpath(os.path.expanduser(path))
    for name in database_files(db_url):
        if target == name:
            return True
        with contextlib.suppress(OSError):
            if os.path.samefile(target, name):
                return True
    return False


def write_replacing(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that ``path`` holds either its old content or all of
    ``data``, never part of it.

    The bytes go to a temporary file in the same directory (so the rename cannot cross file
    systems), are flushed and fsynced, and the file is then renamed over ``path``
    (``os.replace``, atomic). An existing file's permission bits (and, where allowed, its
    owner) carry over; a new file gets the usual ``0o666`` minus the umask, as ``open`` would.
    Anything that is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO) is written
    directly: renaming over a device would replace it.

    Raises:
        OSError: the temporary file could not be created, written or renamed; it is removed
            and ``path`` is as it was.
    """
    target = os.path.realpath(os.path.expanduser(path))  # a symbolic link keeps pointing
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(21, "Is a directory", path)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, "wb") as fh:
            fh.write(data)
        return
    if existing is not None and not os.access(target, os.W_OK):
        # A rename would get past a file the user may not write (as mv does): open() would not.
        raise PermissionError(13, "Permission denied", path)
    directory = os.path.dirname(target)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.",
                                suffix=".tmp")
    try:
        if existing is not None:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(OSError):  # only root may give a file to someone else
                if (existing.st_uid, existing.st_gid) != (os.getuid(), os.getgid()):
                    os.fchown(fd, existing.st_uid, existing.st_gid)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fd = -1  # closed with fh from here on
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:  # also Ctrl-C: no temporary file left behind
        if fd != -1:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # the rename itself on disk (best effort)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
