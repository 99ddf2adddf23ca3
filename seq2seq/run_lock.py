"""One writer per model directory: an exclusive ``flock`` on ``MODEL_DIR/.lock``.

Commands that write a model directory (``train``) hold the lock for their whole run; a second writer is
refused at once with :class:`ModelDirLockedError` naming the directory and the holder. Read-only commands
(``translate``, ``evaluate``, ``export``) never take it, so they keep working while a training runs.

The lock is the kernel's ``flock(2)`` on an open file, not the file's existence: when the holding
process dies (even by ``kill -9``) the kernel releases it, and a later run simply takes it over. The
file holds the holder's PID, host and command line (one line of JSON), only so that the refusal can
say who holds the lock. It stays while the directory holds anything else; when a run leaves nothing
but the lock file (it failed before writing anything), the file is removed on exit, and so is the
directory when the lock created it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys

LOCK_NAME = ".lock"


class ModelDirLockedError(ValueError):
    """Another live process holds the model directory's lock; the message is one line naming it."""


def _holder_text(lock_path: str) -> str:
    try:
        with open(lock_path, encoding="utf-8") as handle:
            holder = json.loads(handle.readline(4096) or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    return f"PID {holder.get('pid', '?')} on {holder.get('host', '?')} ({holder.get('command', '?')})"


class ModelDirLock:
    """Context manager holding the exclusive lock of ``model_dir`` (created if missing).

    Usage::

        with ModelDirLock(model_dir):
            ...  # train, write checkpoints, metrics, model.keras

    Args:
      model_dir: the model directory (str or os.PathLike).
      command: text recorded as the holder's command; default the process's ``sys.argv`` joined by spaces.

    Raises (on ``__enter__``):
      ModelDirLockedError: another live process holds the lock (message: ``<dir> is in use by PID N on
        HOST (COMMAND); wait for it to finish or stop it``).
      OSError: the directory or lock file cannot be created (e.g. read-only file system).
    """

    def __init__(self, model_dir, command: str | None = None):
        self.model_dir = os.fspath(model_dir)
        self.path = os.path.join(self.model_dir, LOCK_NAME)
        self.command = command if command is not None else " ".join(sys.argv)
        self._fd: int | None = None
        self.created = False

    def _acquire(self) -> int | None:
        """The locked descriptor, or None when the file was replaced meanwhile (try again)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ModelDirLockedError(
                    f"{self.model_dir} is in use by {_holder_text(self.path)}; wait for it to finish or stop it"
                ) from None
            raise
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino  # not unlinked by a finishing holder
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd

    def __enter__(self) -> "ModelDirLock":
        self.created = not os.path.isdir(self.model_dir)
        os.makedirs(self.model_dir, exist_ok=True)
        self._before = set(os.listdir(self.model_dir)) - {LOCK_NAME}
        fd = None
        while fd is None:
            fd = self._acquire()
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": self.command[:500]})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is None:
            return
        try:
            if set(os.listdir(self.model_dir)) - {LOCK_NAME} == self._before:  # nothing written: leave nothing
                os.remove(self.path)
                if self.created:
                    os.rmdir(self.model_dir)
        except OSError:
            pass  # read-only or changed meanwhile: an empty lock file does no harm
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
