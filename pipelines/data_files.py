"""Opening data files safely: regular files only, and lines of bounded length.

A data path that names a FIFO would block ``open`` forever, and ``/dev/zero`` or a file without line
breaks would make ``readline`` grow without bound. :func:`open_regular` opens without blocking
(``O_NONBLOCK``), checks with ``fstat`` on the opened descriptor (so no race between check and open)
that it is a regular file, and only then hands out a normal blocking binary file. :func:`bounded_lines`
reads at most ``max_line_bytes + 1`` bytes per line.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import stat
from typing import BinaryIO, Iterator, Tuple

from pipelines.errors import DataError

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB; config key data.max_line_bytes

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def file_kind(mode: int) -> str:
    """``'regular file'``, ``'directory'``, ``'FIFO (named pipe)'``, ``'character device'``, ... of ``st_mode``."""
    if stat.S_ISREG(mode):
        return "regular file"
    return next((name for test, name in _KINDS if test(mode)), "special file")


def regular_file_problem(path) -> str | None:
    """None when ``path`` is a regular file (symlinks followed), else ``"missing file"`` or e.g.
    ``"not a regular file (FIFO (named pipe))"``; for lists of files (images) that are skipped, not fatal.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing file"
    return None if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def open_regular(path) -> BinaryIO:
    """Open ``path`` for binary reading if (after following symlinks) it is a regular file.

    Never blocks: a FIFO is opened with ``O_NONBLOCK`` and refused before anything is read.

    Args:
      path: file path (str or os.PathLike).

    Returns:
      A binary file object (blocking reads), positioned at the start; the caller closes it.

    Raises:
      DataError: ``path`` is a directory, FIFO, device or socket (``<path>: is a FIFO (named pipe), not a
        regular file``).
      FileNotFoundError, PermissionError: as ``open``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DataError(
                f"{os.fspath(path)}: is a {file_kind(mode)}, not a regular file; data paths must name files"
            )
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def open_data(path) -> Iterator[BinaryIO]:
    """:func:`open_regular`, decompressing transparently when ``path`` ends in ``.gz`` (closes both)."""
    with open_regular(path) as raw:
        if str(path).endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped
        else:
            yield raw


def bounded_lines(file: BinaryIO, path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Tuple[int, bytes]]:
    """Yields ``(line_number, raw_line)`` (1-based, with its ``\\n``) reading at most ``max_line_bytes + 1`` per line.

    Args:
      file: binary file object.
      path: the file's name, for messages.
      max_line_bytes: longest allowed line in bytes, line ending not counted (default 1 MiB).

    Raises:
      DataError: a line is longer (``<path>:<line>: line longer than N bytes (data.max_line_bytes); ...``).
      ValueError: ``max_line_bytes`` < 1.
    """
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
    number = 0
    while True:
        raw = file.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            raise DataError(
                f"{os.fspath(path)}:{number}: line longer than {max_line_bytes} bytes "
                "(data.max_line_bytes); is this a text file with one example per line?"
            )
        yield number, raw


def numbered_lines(path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Tuple[int, bytes]]:
    """:func:`bounded_lines` of the regular (optionally ``.gz``) file ``path``; raises as both functions."""
    with open_data(path) as file:
        yield from bounded_lines(file, path, max_line_bytes)


def text_lines(path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Tuple[int, str]]:
    """``(line_number, line)`` of a UTF-8 file, each line with its ending, bounded as :func:`numbered_lines`.

    Raises:
      DataError: not a regular file, a line too long, or not UTF-8 (``<path>:<line>: not valid UTF-8 ...``).
    """
    for number, raw in numbered_lines(path, max_line_bytes):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(
                f"{os.fspath(path)}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})"
            ) from error
