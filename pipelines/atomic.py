"""Atomic file writes: write to a temporary name in the destination folder, then rename into place.

Every file the toolkit writes (tokenizers, checkpoints, configs, metrics, plots, cached features) goes
through `atomic_path`, so an interrupted or failed write never leaves a half-written file at the final
path and never damages the previous version of it (`os.replace` is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str, mode: int = 0o644) -> Iterator[str]:
    """Yield a temporary file path next to `path`; on success rename it to `path`, on error delete it.

    The temporary name keeps `path`'s ending (Keras and NumPy choose formats by it, e.g. `.weights.h5`,
    `.keras`, `.npy`). The folder of `path` is created if missing.

    Args:
      path: the final file path.
      mode: permission bits of the new file (default 0o644).

    Raises:
      whatever the body raises (after removing the temporary file).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomically(path: str, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write `data` (bytes, or str encoded with `encoding`) to `path` through `atomic_path`."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)
