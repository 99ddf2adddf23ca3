"""SavedModel export and loading (strings in → strings out).

An export has the signatures of its `seq2seq.serving.modules.ServingModule` (see the table there):
  translation: `serving_default` (text tf.string [batch] → translation tf.string [batch], score float32
  [batch]), `translate_nbest`, `translate_with_attention`;
  captioning: `serving_default` (image_bytes tf.string [batch], encoded JPEG/PNG/... → caption, score),
  `caption_nbest`, `caption_with_attention`.
Everything (normalisation, tokenisation, encoder, beam search, detokenisation) is inside the graph and uses
only stock TensorFlow and tensorflow-text ops, so `tf.saved_model.load` in a process that imports only
`tensorflow` and `tensorflow_text` serves it, and so does TensorFlow Serving with tensorflow-text ops.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf


def save_atomically(module: tf.Module, output_dir: str, signatures: dict) -> str:
    """`tf.saved_model.save` into a temporary sibling directory, then rename it to `output_dir`.

    An existing `output_dir` is replaced only after the new export is complete, so an interrupted export
    never leaves a half-written directory at `output_dir`.

    Returns:
      the absolute path of the export.

    Raises:
      FileExistsError: `output_dir` exists and is not an empty folder or an earlier SavedModel (it is never
        deleted: a model directory or any other folder given by mistake stays as it is).
      whatever `tf.saved_model.save` raises; the temporary directory is removed first, and an existing
      `output_dir` is left untouched.
    """
    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and not (
        os.path.isdir(output_dir)
        and (not os.listdir(output_dir) or os.path.isfile(os.path.join(output_dir, "saved_model.pb")))
    ):
        raise FileExistsError(
            f"refusing to export to {output_dir!r}: it exists and is not an earlier SavedModel "
            f"export (no saved_model.pb); choose a new folder, e.g. MODEL_DIR/export"
        )
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-export-{os.getpid()}-{os.path.basename(output_dir)}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(output_dir):
        old = os.path.join(parent, f".old-export-{os.getpid()}-{os.path.basename(output_dir)}")
        os.replace(output_dir, old)
    os.replace(tmp, output_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return output_dir


def export_module(module, output_dir: str) -> str:
    """Write a `seq2seq.serving.modules.ServingModule` as a SavedModel with its signatures (atomic).

    Returns:
      the absolute path of the export.
    """
    return save_atomically(module, output_dir, module.signatures())


def load_saved_model(export_dir: str):
    """Load an export with its `serving_default` signature.

    Raises:
      FileNotFoundError: `export_dir` holds no saved_model.pb.
    """
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph uses)

    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise FileNotFoundError(
            f"{export_dir!r} is not a SavedModel directory (no saved_model.pb); "
            f"create one with `seq2seq export --model-dir MODEL_DIR` (writes MODEL_DIR/export)"
        )
    return tf.saved_model.load(export_dir)
