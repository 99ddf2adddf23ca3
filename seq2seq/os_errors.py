"""One line for an operating-system failure: what happened, to which path, and what to do.

For the CLI's single error boundary: :func:`describe_os_error` turns Python's ``OSError`` (including
h5py's, which are ``OSError`` with the file name only inside the message) and TensorFlow's file errors
(``tf.errors.PermissionDeniedError``, ``ResourceExhaustedError``, ``NotFoundError``, ... whose messages
end in ``<path>; <reason> [Op:Name]``) into one line such as::

    no space left on device at /runs/a/checkpoints/ckpt-500.weights.h5: free some space or use a folder
    on another disk, then run the command again (files written before are intact)

and returns None for anything else, so the boundary can tell OS-level failures from other errors.
"""

from __future__ import annotations

import errno
import os
import re

# TensorFlow's file-system messages: "[{{function_node ...}} ]<path>; <strerror>[ [Op:WriteFile]]"
_TF_MESSAGE = re.compile(r"^(?:\{\{[^}]*\}\}\s*)?(?P<path>[^;{}]+?); (?P<reason>[^\[;]+?)\s*(?:\[Op:\w+\])?$")
# h5py / HDF5: "... (unable to open file: name = '<path>', errno = 30, ...)" or "filename = '<path>'"
_HDF5_NAME = re.compile(r"\b(?:file)?name = '(?P<path>[^']*)'")
_STRERROR_TO_ERRNO = {
    os.strerror(code): code
    for code in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EMFILE,
        errno.ENFILE,
        errno.EIO,
        errno.ENAMETOOLONG,
        errno.EEXIST,
        errno.ENOTEMPTY,
    )
}

_ADVICE = {
    errno.ENOSPC: "no space left on device {at}: free some space or use a folder on another disk, then run the "
    "command again (files written before are intact)",
    errno.EDQUOT: "disk quota exceeded {at}: free some space or use a folder with more quota, then run the "
    "command again (files written before are intact)",
    errno.EFBIG: "file too large {at} (file-system or `ulimit -f` limit): raise the limit or use another disk",
    errno.EROFS: "read-only file system {at}: choose a writable folder (e.g. another --model-dir or --output)",
    errno.EACCES: "permission denied {at}: check the owner and permissions of the folder, or choose another one",
    errno.EPERM: "operation not permitted {at}: check the owner and permissions of the folder, or choose another one",
    errno.ENOENT: "no such file or directory {at}: check the path (relative data paths resolve against "
    "data.data_dir or $SEQ2SEQ_DATA_DIR)",
    errno.EISDIR: "is a directory {at}: a file is expected there; remove or rename the folder",
    errno.ENOTDIR: "not a directory {at}: a part of the path is a file; check the path",
    errno.EMFILE: "too many open files {at}: raise the limit (`ulimit -n`) and run the command again",
    errno.ENFILE: "too many open files in the system {at}: close other programs and run the command again",
    errno.EIO: "input/output error {at}: the disk or network file system failed; check it and run the command again",
    errno.ENAMETOOLONG: "file name too long {at}: choose a shorter path",
}


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tensorflow_error(err: BaseException):
    """``(errno or None, path or None, reason)`` of a ``tf.errors.OpError``, or None for other errors."""
    module = type(err).__module__ or ""
    if not module.startswith("tensorflow") or not hasattr(err, "error_code"):
        return None
    message = _one_line(getattr(err, "message", None) or str(err), 10_000)
    match = _TF_MESSAGE.match(message)
    if not match:
        return None, None, message
    reason = match.group("reason").strip()
    return _STRERROR_TO_ERRNO.get(reason), match.group("path").strip(), reason


def describe_os_error(err: BaseException, path: str | None = None) -> str | None:
    """One line naming the failure, the path and what to do; None when ``err`` is not an OS-level failure.

    Handles ``OSError`` and its subclasses (``PermissionError``, ``FileNotFoundError``, h5py's errors, which
    carry the path only in their message), and TensorFlow's ``tf.errors.OpError`` subclasses whose message
    ends in ``<path>; <strerror>`` (``PermissionDeniedError`` for read-only / permission,
    ``ResourceExhaustedError`` for a full disk or, without a path, out of memory, ``NotFoundError``, ...).

    Args:
      err: the exception.
      path: the file the caller was writing or reading, used when the error names none (e.g. ``write``
        on a full disk gives ``[Errno 28] No space left on device`` with no file name).

    Returns:
      e.g. ``"read-only file system at /runs/a/metrics.json: choose a writable folder (...)"``, or None.
    """
    code, where, reason = None, None, None
    tf_parts = _tensorflow_error(err)
    if tf_parts is not None:
        code, where, reason = tf_parts
        if code is None and type(err).__name__ == "ResourceExhaustedError":
            return (
                f"out of memory: {_one_line(reason, 160)}; reduce train.batch_size (or decode.batch_size), "
                "the model size or the sequence lengths"
            )
        if code is None:  # not a file-system reason TensorFlow reports (e.g. a shape error): not ours
            return None
    elif isinstance(err, OSError):
        code, reason = err.errno, err.strerror or str(err)
        where = err.filename
        if where is None:
            match = _HDF5_NAME.search(str(err))
            where = match.group("path") if match else None
        if where is not None and err.filename2 is not None:
            where = f"{os.fsdecode(where)} -> {os.fsdecode(err.filename2)}"
    else:
        return None
    where = os.fsdecode(where) if where is not None else path
    at = f"at {where}" if where else "(path unknown)"
    if code in _ADVICE:
        return _one_line(_ADVICE[code].format(at=at))
    detail = _one_line(reason or str(err), 200)
    return _one_line(f"{detail} {at}" + (f" (errno {code})" if code else ""))
