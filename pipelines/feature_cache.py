"""On-disk cache of frozen-backbone image features (computed once, reused automatically).

With a frozen CNN the annotation vectors of Show, Attend and Tell (Xu et al., 2015) are a fixed
function of the image, so they are computed once per image and read from disk in every epoch
instead of running the backbone again.

Layout::

    <directory>/<sha256(backbone_key)[:16]>/backbone_key.txt      the full key, for humans
    <directory>/<sha256(backbone_key)[:16]>/<h[:2]>/<h>.npy        float32 [regions, channels]

where ``h`` is the sha256 of the image file's bytes. The entry depends only on the image content
and on the backbone key (a string describing the backbone: name, weights identity, input size,
trainable layers, ...), so renamed or copied images reuse their entry and any change of the
backbone configuration gives a fresh set of entries. Writes are atomic (temporary file in the same
directory + ``os.replace``), so an interrupted run never leaves a half-written entry.

The cache does not import ``seq2seq``: it takes a ``feature_fn(images float32 [b, H, W, 3] in
[0, 255]) -> float32 [b, regions, channels]`` callable (``seq2seq.image_encoder.ImageEncoder.feature_fn``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from pipelines.atomic import atomic_path, write_atomically
from pipelines.images import _size_pair, decode_image

__all__ = ["FeatureCache", "file_sha256"]


def file_sha256(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks). Raises OSError if unreadable."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FeatureCache:
    """Backbone features per image, stored as one ``.npy`` per (image content, backbone key).

    Args:
      directory: cache root (created if needed); several backbone keys can share it.
      backbone_key: non-empty string identifying the backbone configuration
        (``ImageEncoder.backbone_key``); a different key never reuses entries.

    Attributes:
      computed: number of images passed through ``feature_fn`` by this object (for tests/logs).
    """

    def __init__(self, directory: str | os.PathLike, backbone_key: str):
        if not isinstance(backbone_key, str) or not backbone_key:
            raise ValueError("backbone_key must be a non-empty string describing the backbone configuration")
        self.directory = os.fspath(directory)
        self.backbone_key = backbone_key
        self.key_dir = os.path.join(self.directory, hashlib.sha256(backbone_key.encode("utf-8")).hexdigest()[:16])
        self.computed = 0
        self._hash_memo: dict[tuple[str, int, int], str] = {}

    def __repr__(self) -> str:
        return f"FeatureCache({self.directory!r}, backbone_key={self.backbone_key!r})"

    # -- paths ---------------------------------------------------------------------------------
    def image_hash(self, path: str) -> str:
        """sha256 of the image bytes, memoised per (path, size, mtime) within this object."""
        stat = os.stat(path)
        memo_key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if memo_key not in self._hash_memo:
            self._hash_memo[memo_key] = file_sha256(path)
        return self._hash_memo[memo_key]

    def entry_path(self, path: str) -> str:
        """Where the features of the image at ``path`` are (or would be) stored."""
        digest = self.image_hash(path)
        return os.path.join(self.key_dir, digest[:2], digest + ".npy")

    def contains(self, path: str) -> bool:
        """True when the features of this image under this backbone key are on disk."""
        return os.path.isfile(self.entry_path(path))

    @staticmethod
    def load(entry_path: str | bytes) -> np.ndarray:
        """Read one entry: float32 ``[regions, channels]``."""
        if isinstance(entry_path, bytes):
            entry_path = entry_path.decode("utf-8")
        return np.load(entry_path).astype(np.float32, copy=False)

    def _write(self, entry_path: str, features: np.ndarray) -> None:
        with atomic_path(entry_path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(features, dtype=np.float32))

    def _write_key_file(self) -> None:
        key_file = os.path.join(self.key_dir, "backbone_key.txt")
        if not os.path.exists(key_file):
            write_atomically(key_file, self.backbone_key + "\n")

    # -- main entry point ----------------------------------------------------------------------
    def features_for(
        self,
        paths: Sequence[str],
        feature_fn: Callable[[tf.Tensor], tf.Tensor] | None,
        image_size=None,
        batch_size: int = 32,
        progress: bool = True,
    ) -> list[str]:
        """Make sure every image has an entry, computing only the missing ones; return entry paths.

        Missing entries are computed in batches: images are decoded with
        ``pipelines.images.decode_image`` at ``image_size`` (float32 [0, 255]) in a ``tf.data``
        pipeline, passed through ``feature_fn`` and written one ``.npy`` per image, with a tqdm bar.
        Images with identical bytes are computed once.

        Args:
          paths: image file paths (run ``check_images`` first: unreadable images raise here).
          feature_fn: ``images float32 [b, H, W, 3] -> features float32 [b, regions, channels]``;
            may be None when every entry already exists.
          image_size: int or (height, width) the backbone expects; defaults to
            ``feature_fn.image_size`` when that attribute exists. Required if anything is missing.
          batch_size: images per ``feature_fn`` call (default 32).
          progress: show the tqdm progress bar (default True).

        Returns:
          list of ``.npy`` entry paths aligned with ``paths`` (read them with ``FeatureCache.load``).

        Raises:
          ValueError: entries are missing and ``feature_fn`` or ``image_size`` is not given, or
            ``feature_fn`` returns a tensor that is not ``[b, regions, channels]``.
          OSError / tf.errors.InvalidArgumentError: an image is missing or not decodable.
        """
        entries = [self.entry_path(os.fspath(p)) for p in paths]
        todo: dict[str, str] = {}  # entry -> one image path with that content
        for path, entry in zip(paths, entries):
            if entry not in todo and not os.path.isfile(entry):
                todo[entry] = os.fspath(path)
        if not todo:
            return entries
        if feature_fn is None:
            raise ValueError(
                f"{len(todo)} images have no cached features under {self.key_dir} and no feature_fn was given"
            )
        if image_size is None:
            image_size = getattr(feature_fn, "image_size", None)
        if image_size is None:
            raise ValueError("image_size is required to compute missing features (the backbone input size)")
        size = _size_pair(image_size)
        self._write_key_file()

        todo_entries = list(todo)
        images = (
            tf.data.Dataset.from_tensor_slices([todo[e] for e in todo_entries])
            .map(
                lambda p: decode_image(tf.io.read_file(p), size),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        position = 0
        with tqdm(
            total=len(todo_entries), desc="image features", unit="img", disable=not progress or not sys.stderr.isatty()
        ) as bar:
            for batch in images:
                features = feature_fn(batch)
                features = features.numpy() if hasattr(features, "numpy") else np.asarray(features)
                if features.ndim != 3 or features.shape[0] != batch.shape[0]:
                    raise ValueError(
                        f"feature_fn must return [batch, regions, channels]; got shape {features.shape} "
                        f"for a batch of {batch.shape[0]} images"
                    )
                for row in features:
                    self._write(todo_entries[position], row)
                    position += 1
                self.computed += int(batch.shape[0])
                bar.update(int(batch.shape[0]))
        return entries

    def feature_shape(self, entry_path: str) -> tuple[int, int]:
        """``(regions, channels)`` of a stored entry, read from the .npy header only."""
        array = np.load(entry_path, mmap_mode="r")
        return tuple(array.shape)
