"""Value types for command-line options (argparse `type=`), shared by `seq2seq.cli` and `seq2seq.server.cli`."""

from __future__ import annotations

import argparse
import math


def _number(kind, text: str, wanted: str):
    """`kind(text)`, or `argparse.ArgumentTypeError` saying what was wanted (argparse's own message names the
    function, e.g. "invalid positive_int value").
    """
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An int >= 1; `argparse.ArgumentTypeError` (shown as a usage error) otherwise."""
    value = _number(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0; `argparse.ArgumentTypeError` (shown as a usage error) otherwise."""
    value = _number(int, text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0; `argparse.ArgumentTypeError` otherwise."""
    value = _number(float, text, "a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
