"""Saving Keras weights files (``.weights.h5``) without letting HDF5 write to the disk.

Why: ``model.save_weights(path)`` writes through HDF5 straight to ``path``. When the disk fills up
(``ENOSPC``) or a size limit is hit, Keras (3.15, ``saving_lib.save_weights_only``) raises without
closing its ``h5py.File``; the file's metadata can then never be flushed, and at interpreter exit
HDF5's own shutdown (``H5close``) crashes: an h5py traceback, ``Exception ignored in
h5py._objects.ObjectID.__dealloc__``, then a segmentation fault (exit 139). Closing the file id by hand
fails the same way (the flush fails again), and ``gc.collect()`` does not help.

The fix: build the HDF5 file in memory (h5py on an ``io.BytesIO``, the same ``H5IOStore`` Keras uses for
``.keras`` archives, reached through `seq2seq.compat`, so the bytes are a normal ``.weights.h5`` that
``model.load_weights`` reads), then
write the bytes with ``pipelines.atomic.write_atomically``. A full disk is then an ordinary ``OSError``
from Python's own ``write``: the temporary is removed, the previous file is intact, no HDF5 file is left
open and the process exits normally. Cost: one in-memory copy of the weights (and the optimizer state
Keras includes) while saving.
"""

from __future__ import annotations

import keras

from pipelines.atomic import write_atomically
from seq2seq.compat import weights_h5_bytes


def save_weights_atomically(model: keras.Model, path: str) -> None:
    """Write ``model``'s weights to ``path`` (a ``.weights.h5`` file) atomically, HDF5 never touching the disk.

    Args:
      model: a built Keras model.
      path: destination; must end with ``.weights.h5`` (read back with ``model.load_weights(path)``).

    Raises:
      ValueError: ``path`` does not end with ``.weights.h5``, or the model is not built.
      OSError: the write failed (no space, read-only, permission; see ``seq2seq.os_errors``); the
        previous file at ``path`` is unchanged and no temporary file is left.
    """
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"a weights file name must end with .weights.h5, got {path!r}")
    write_atomically(path, weights_h5_bytes(model))
