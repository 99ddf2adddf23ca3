"""Image decoding for the captioning pipeline: decode by content, resize, report unreadable files.

Images are decoded in-graph with ``tf.io.decode_image`` so JPEG, PNG, GIF (first frame) and BMP are
recognised by their bytes, not by their file name (a PNG named ``.jpg`` decodes fine). Grayscale
images are expanded to 3 channels and the alpha channel of RGBA images is dropped
(``channels=3``). Images are resized with ``tf.image.resize`` (bilinear) to the backbone's input
size and returned as float32 in [0, 255]; the backbone's own ``preprocess_input`` is applied later,
inside the model (``seq2seq.model.image_encoder``), so the same decode serves training and export.

``check_images`` is a Python pre-pass that finds missing, empty, truncated or non-image files
before they can abort a ``tf.data`` pipeline halfway through an epoch.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Iterable, Sequence

import tensorflow as tf

from pipelines.data_files import regular_file_problem

logger = logging.getLogger(__name__)

__all__ = ["decode_image", "load_image", "check_images", "log_skipped_images"]


def _size_pair(size) -> tuple[int, int]:
    """Normalise ``size`` (int or (height, width)) to a pair of positive ints; raises ValueError."""
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"image size must be an int or (height, width) of positive ints, got {size!r}")
    return size


def decode_image(image_bytes: tf.Tensor, size, antialias: bool = False) -> tf.Tensor:
    """Decode one encoded image (by content) and resize it; works in-graph (tf.data map, tf.function).

    Args:
      image_bytes: scalar ``tf.string``, the encoded file contents (JPEG, PNG, GIF or BMP).
      size: int or ``(height, width)`` in pixels, usually the backbone's input size
        (224 for MobileNetV2, 299 for InceptionV3).
      antialias: passed to ``tf.image.resize`` (default False, the Keras Applications convention).

    Returns:
      float32 ``[height, width, 3]`` with values in [0, 255] (RGB; grayscale is replicated to 3
      channels, alpha is dropped; animated GIFs give their first frame).

    Raises:
      ValueError: bad ``size``.
      tf.errors.InvalidArgumentError (at run time): bytes that are not a decodable image.
    """
    height, width = _size_pair(size)
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return resize_image(image, (height, width), antialias)


def resize_image(pixels: tf.Tensor, size, antialias: bool = False) -> tf.Tensor:
    """Bilinear resize of decoded RGB pixels, the second half of ``decode_image`` (also used where images arrive
    decoded, as in a LiteRT captioning file).

    Args:
      pixels: uint8 or float ``[height, width, 3]`` or ``[batch, height, width, 3]``, values in [0, 255].
      size: int or ``(height, width)``.
      antialias: passed to ``tf.image.resize``.

    Returns:
      float32 ``[(batch,) height, width, 3]`` in [0, 255].
    """
    image = tf.image.resize(tf.cast(pixels, tf.float32), _size_pair(size), method="bilinear", antialias=antialias)
    # Bilinear interpolation is a convex combination, but keep the documented range exact.
    return tf.clip_by_value(image, 0.0, 255.0)


def load_image(path: tf.Tensor, size) -> tf.Tensor:
    """Read a file (scalar ``tf.string`` path) and ``decode_image`` it: float32 ``[h, w, 3]`` in [0, 255]."""
    return decode_image(tf.io.read_file(path), size)


def check_images(paths: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Try to decode every file once (eagerly, with the same decoder as ``decode_image``).

    Never raises for bad files: each problem is returned as ``(path, reason)`` where reason is
    ``"missing file"``, ``"not a regular file (FIFO (named pipe))"`` (or directory, device), ``"empty file"``,
    ``"unreadable file: <OSError>"`` or
    ``"not a decodable image: <decoder message>"`` (truncated JPEG/PNG data, text files, ...).
    Duplicated paths are checked once and keep their first position.

    Args:
      paths: image file paths (str or os.PathLike).

    Returns:
      ``(ok_paths, problems)``: the readable paths in input order, and the problems in input order.
      Callers should log them with ``log_skipped_images`` and count ``len(problems)``.
    """
    ok: list[str] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path in paths:
        path = os.fspath(path)
        if path in seen:
            continue
        seen.add(path)
        problem = regular_file_problem(path)
        if problem:
            problems.append((path, problem))
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            problems.append((path, f"unreadable file: {err}"))
            continue
        if not data:
            problems.append((path, "empty file"))
            continue
        try:
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
            if int(tf.size(image)) == 0:
                raise ValueError("image has no pixels")
        except (tf.errors.OpError, ValueError) as err:
            message = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", getattr(err, "message", None) or str(err))
            problems.append((path, f"not a decodable image: {message.strip().splitlines()[0]}"))
            continue
        ok.append(path)
    return ok, problems


def log_skipped_images(problems: Sequence[tuple[str, str]], log: logging.Logger | None = None, limit: int = 20) -> int:
    """Log ``"skipped N unreadable images: path: reason; ..."`` (at most ``limit`` listed); returns N."""
    if problems:
        listed = "; ".join(f"{path}: {reason}" for path, reason in problems[:limit])
        more = f"; ... and {len(problems) - limit} more" if len(problems) > limit else ""
        (log or logger).warning("skipped %d unreadable images: %s%s", len(problems), listed, more)
    return len(problems)
