"""One export being served: its task, its signatures as TF Serving describes them, and running them on rows.

An export of `seq2seq export` (see `seq2seq.serving.export`) has a single input per signature: `text` (tf.string
[batch], translation) or `image_bytes` (tf.string [batch], encoded JPEG/PNG/GIF/BMP, captioning). Every output has
the batch as its leading axis, so a batch's outputs split into one row per input.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from seq2seq.serving.export import load_saved_model

TASK_OF_INPUT = {"text": "translation", "image_bytes": "captioning"}
MODEL_VERSION = "1"  # an export folder is one SavedModel; TF Serving would see it as version 1


def parse_model_spec(spec: str) -> tuple[str, str]:
    """`NAME=EXPORT_DIR` or `EXPORT_DIR` (name = the folder's name) -> (name, export_dir).

    Raises:
      ValueError: an empty name or folder, or a name that cannot appear in a URL path segment (":" or "/").
    """
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = os.path.basename(os.path.normpath(spec)), spec
    if not name or not path:
        raise ValueError(f"model {spec!r}: expected NAME=EXPORT_DIR or EXPORT_DIR")
    if ":" in name or "/" in name:
        raise ValueError(f"model name {name!r} must not contain ':' or '/' (it is part of /v1/models/NAME:predict)")
    return name, path


def _tensor_info(spec) -> dict:
    """A TensorSpec or symbolic tensor -> TF Serving's TensorInfo JSON (dtype name, shape with -1 = unknown)."""
    dims = [{"size": str(-1 if d is None else d), "name": ""} for d in spec.shape.as_list()]
    return {
        "dtype": types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
        "tensor_shape": {"dim": dims},
        "name": getattr(spec, "name", "") or "",
    }


def _json_value(value):
    """A numpy output row (array or scalar) -> JSON-ready Python values (tf.string bytes decoded as UTF-8,
    invalid bytes replaced).
    """
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


class ServedModel:
    """A loaded export.

    Args:
      name: the model's name in URLs (`/v1/models/NAME`).
      export_dir: a SavedModel written by `seq2seq export`.

    Raises:
      FileNotFoundError: no saved_model.pb in `export_dir`.
      ValueError: its `serving_default` signature has not exactly one input named `text` or `image_bytes`.
    """

    def __init__(self, name: str, export_dir: str):
        self.name = name
        self.export_dir = os.path.abspath(export_dir)
        self._loaded = load_saved_model(export_dir)
        self.signatures = dict(self._loaded.signatures)
        if "serving_default" not in self.signatures:
            raise ValueError(f"{export_dir!r} has no serving_default signature (signatures: {sorted(self.signatures)})")
        inputs = list(self.signatures["serving_default"].structured_input_signature[1])
        if len(inputs) != 1 or inputs[0] not in TASK_OF_INPUT:
            raise ValueError(
                f"{export_dir!r}: serving_default inputs {inputs}; expected ['text'] (translation) "
                f"or ['image_bytes'] (captioning), as `seq2seq export` writes"
            )
        self.input_key = inputs[0]
        self.task = TASK_OF_INPUT[self.input_key]

    def image_problem(self, data: bytes) -> str | None:
        """Why `data` cannot be captioned (the decoder's message), or None when it decodes as an image.

        Uses the decoder of the exported graph (`tf.io.decode_image`, JPEG/PNG/GIF/BMP), so a batch holding only
        checked images does not fail on one of them.
        """
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as err:
            return f"not a decodable image (JPEG, PNG, GIF or BMP): {str(err).splitlines()[0][:200]}"
        return None

    def run(self, signature_name: str, inputs: Sequence) -> list[dict]:
        """Call a signature on a batch.

        Args:
          signature_name: e.g. "serving_default", "translate_nbest", "caption_with_attention".
          inputs: str (translation) or bytes (captioning) values, one per row; may be empty.

        Returns:
          one dict per input: output name -> JSON-ready value (str, float, int or nested lists of them).
        """
        if not inputs:
            return []
        outputs = self.signatures[signature_name](**{self.input_key: tf.constant(list(inputs), tf.string)})
        arrays = {key: value.numpy() for key, value in outputs.items()}
        return [{key: _json_value(array[row]) for key, array in arrays.items()} for row in range(len(inputs))]

    def batchable(self, signature_name: str) -> bool:
        """Whether rows of different requests may share a call: every output's shape is known but for the batch
        axis. Outputs with a data-dependent axis (the pieces and attention of `*_with_attention`) are padded to
        the longest row of a call, so coalescing would change one request's answer by another's input.
        """
        outputs = self.signatures[signature_name].structured_outputs.values()
        return all(None not in spec.shape.as_list()[1:] for spec in outputs)

    def status(self) -> dict:
        """TF Serving's GetModelStatus response."""
        return {
            "model_version_status": [
                {"version": MODEL_VERSION, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }

    def metadata(self) -> dict:
        """TF Serving's GetModelMetadata response (signature_def of every signature), plus this server's `task`."""
        signature_def = {}
        for key, fn in sorted(self.signatures.items()):
            signature_def[key] = {
                "inputs": {k: _tensor_info(s) for k, s in fn.structured_input_signature[1].items()},
                "outputs": {k: _tensor_info(s) for k, s in fn.structured_outputs.items()},
                "method_name": "tensorflow/serving/predict",
            }
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": MODEL_VERSION},
            "metadata": {"signature_def": {"signature_def": signature_def}},
            "task": self.task,
        }
