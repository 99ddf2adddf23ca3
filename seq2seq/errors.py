"""The error types a user can cause, in one place, so that every layer raises and the CLI catches the same ones.

`ConfigError` and `ModelDirError` are `ValueError`s: bad input, reported by the CLI as one `error:` line with
exit status 2. `NonFiniteLossError` is a failed run (exit status 1). Data-file errors are
`pipelines.errors.DataError` (the `pipelines` package never imports `seq2seq`).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type, or has an impossible value; the message names the dotted key."""


class ModelDirError(ValueError):
    """A model directory is missing, empty, unrelated, or incompatible with the requested config."""


class LiteRTExportError(ValueError):
    """A model that cannot be written as a LiteRT file; the message names what blocks (op, layer, tokenizer)."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""
