"""Atomic file writes: write to a temporary name in the destination folder, then rename into place.

Every file the toolkit writes (tokenizers, checkpoints, configs, metrics, plots, cached features) goes
through `atomic_path`, so an interrupted or failed write never leaves a half-written file at the final
path and never damages the previous version of it (`os.replace` is atomic on POSIX file systems).

Temporary names are ``.tmp-<pid>-<random>-<file name>``: the writer's process id is in the name, so
`remove_stale_temps` can remove the leftovers of a killed writer (``kill -9`` runs no cleanup) and
never touches the temporary file of a live one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from typing import Iterator

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
# ".tmp-<pid>-<random>-<name>" (atomic_path) and ".tmp-export-<pid>-<name>" (seq2seq.export folders)
_TEMP_WITH_PID = re.compile(r"^\.tmp-(?:export-)?(\d+)-")


@contextlib.contextmanager
def atomic_path(path: str, mode: int = 0o644) -> Iterator[str]:
    """Yield a temporary file path next to `path`; on success rename it to `path`, on error delete it.

    The temporary name keeps `path`'s ending (Keras and NumPy choose formats by it, e.g. `.weights.h5`,
    `.keras`, `.npy`). The folder of `path` is created if missing.

    Args:
      path: the final file path.
      mode: permission bits of the new file (default 0o644).

    Raises:
      whatever the body raises (after removing the temporary file); an ``OSError`` that names no file
      (``write`` on a full disk) gets ``path`` as its ``filename``, so its message says which file failed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(
        dir=folder, prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=f"-{os.path.basename(path)}"
    )
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            err.filename = path
        raise


def write_atomically(path: str, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write `data` (bytes, or str encoded with `encoding`) to `path` through `atomic_path`."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temps(directory: str, legacy_age_seconds: float = 3600.0) -> list[str]:
    """Remove the ``.tmp-*`` files and folders in ``directory`` (not below it) left by dead processes.

    A temporary name carrying a process id (``.tmp-<pid>-...``, ``.tmp-export-<pid>-...``) is removed when
    no process with that id exists on this machine; the temporary of a live process is kept. Names
    without a process id (written before ids were put in names) are removed when older than
    ``legacy_age_seconds``. Call it from the one process that holds the directory's lock
    (``seq2seq.run_lock.ModelDirLock``); process ids are only checked on this host.

    Args:
      directory: folder to clean (a missing folder is not an error).
      legacy_age_seconds: minimum age (modification time, seconds) of a temporary without a process
        id before it is removed; default 3600.

    Returns:
      The removed paths, sorted; each is also logged.

    Raises:
      OSError: a stale temporary cannot be removed (e.g. read-only directory).
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    removed = []
    for name in sorted(names):
        if not name.startswith(TEMP_PREFIX):
            continue
        path = os.path.join(directory, name)
        match = _TEMP_WITH_PID.match(name)
        if match:
            stale = not _process_alive(int(match.group(1)))
        else:
            try:
                stale = time.time() - os.lstat(path).st_mtime > legacy_age_seconds
            except FileNotFoundError:
                continue
        if not stale:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        removed.append(path)
    if removed:
        logger.info("removed %d temporary files left by interrupted saves: %s", len(removed), ", ".join(removed))
    return removed
