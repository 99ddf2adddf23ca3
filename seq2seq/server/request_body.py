"""Parse and check the body of `POST /v1/models/NAME:predict` (TensorFlow Serving's REST request formats).

Row format: `{"instances": [v, ...]}` or `{"instances": [{"text": v}, ...]}`; columnar format:
`{"inputs": [v, ...]}` or `{"inputs": {"text": [v, ...]}}`; an optional `"signature_name"` (default
`serving_default`). Binary values (captioning's `image_bytes`) are `{"b64": "<base64>"}`, as in TF Serving
(https://www.tensorflow.org/tfx/serving/api_rest#encoding_binary_values). Every problem raises `RequestError`
with a 4xx status and a message naming the field (e.g. `instances[3].text`) or the limit (e.g. `--max-text-chars`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

DEFAULT_SIGNATURE = "serving_default"


class RequestError(Exception):
    """A client error: `status` (4xx) and a message for the JSON body `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-request limits (each also a `seq2seq serve` option).

    Attributes:
      max_body_bytes: request body size in bytes (default 10 MiB; larger bodies get 413).
      max_text_chars: characters in one sentence (default 2,000).
      max_instances: inputs in one request (default 64).
    """

    max_body_bytes: int = 10 * 2**20
    max_text_chars: int = 2000
    max_instances: int = 64


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A checked request: `values` (str for `text`, bytes for `image_bytes`), one per row; `columnar` tells
    which response format to use (`outputs` for `inputs`, `predictions` for `instances`); `field` is where the
    values came from, for messages about one of them (e.g. "instances", so "instances[2]").
    """

    signature_name: str
    values: list
    columnar: bool
    field: str


def _decode_b64(value, where: str) -> bytes:
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(
            400,
            f'{where}: expected {{"b64": "<base64 of the image file>"}}, got '
            f"{type(value).__name__} {json.dumps(value)[:80]}",
        )
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(400, f"{where}.b64: not valid base64 ({err})") from None
    if not data:
        raise RequestError(400, f"{where}.b64: empty image")
    return data


def _check_text(value, where: str, limits: Limits) -> str:
    if not isinstance(value, str):
        raise RequestError(400, f"{where}: expected a string, got {type(value).__name__} {json.dumps(value)[:80]}")
    if len(value) > limits.max_text_chars:
        raise RequestError(
            400, f"{where}: {len(value)} characters, more than the limit of {limits.max_text_chars} (--max-text-chars)"
        )
    return value


def _check_value(value, where: str, input_key: str, limits: Limits):
    if input_key == "text":
        return _check_text(value, where, limits)
    return _decode_b64(value, where)


def _rows(body: dict, input_key: str) -> tuple[list, str, bool]:
    """(values, field name for messages, columnar) from the body's `instances` or `inputs`."""
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise RequestError(400, f"instances: expected a list, got {type(rows).__name__}")
        values = []
        for i, row in enumerate(rows):
            if isinstance(row, dict) and set(row) != {"b64"}:
                if set(row) != {input_key}:
                    raise RequestError(
                        400, f"instances[{i}]: fields {sorted(row)}; this model's only input is {input_key!r}"
                    )
                row = row[input_key]
            values.append(row)
        return values, "instances", False
    rows = body["inputs"]
    if isinstance(rows, dict) and set(rows) != {"b64"}:
        if set(rows) != {input_key}:
            raise RequestError(400, f"inputs: fields {sorted(rows)}; this model's only input is {input_key!r}")
        rows, field = rows[input_key], f"inputs.{input_key}"
    else:
        field = "inputs"
    if not isinstance(rows, list):
        raise RequestError(400, f"{field}: expected a list, got {type(rows).__name__}")
    return rows, field, True


def parse_predict(body: bytes, input_key: str, signatures, limits: Limits) -> PredictRequest:
    """Check a `:predict` body.

    Args:
      body: the raw request body.
      input_key: the model's input, "text" or "image_bytes".
      signatures: the model's signature names.
      limits: `Limits`.

    Returns:
      `PredictRequest`.

    Raises:
      RequestError: 413 for a body over `limits.max_body_bytes`; 400 for malformed JSON, a body that is not an
        object, missing or unknown fields, an unknown signature, no rows, too many rows, a row of the wrong type,
        a string over the character limit, bad base64.
    """
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"request body over the limit of {limits.max_body_bytes} bytes (--max-body-bytes)")
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"malformed JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(parsed).__name__}")
    unknown = sorted(set(parsed) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise RequestError(
            400, f"unknown field(s) {unknown}; expected 'instances' or 'inputs', and optionally 'signature_name'"
        )
    if ("instances" in parsed) == ("inputs" in parsed):
        raise RequestError(400, "exactly one of 'instances' (row format) or 'inputs' (columnar format) is required")
    signature = parsed.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature, str) or signature not in signatures:
        raise RequestError(400, f"signature_name {json.dumps(signature)[:80]} is not one of {sorted(signatures)}")
    rows, field, columnar = _rows(parsed, input_key)
    if not rows:
        raise RequestError(400, f"{field}: empty list; send at least one input")
    if len(rows) > limits.max_instances:
        raise RequestError(
            400,
            f"{field}: {len(rows)} inputs, more than the limit of {limits.max_instances} per request (--max-instances)",
        )
    values = [_check_value(row, f"{field}[{i}]", input_key, limits) for i, row in enumerate(rows)]
    return PredictRequest(signature, values, columnar, field)
