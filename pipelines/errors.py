"""The error type of the input pipelines."""

from __future__ import annotations


class DataError(ValueError):
    """Malformed input data; the message names the file and, where it applies, the 1-based line."""
