"""Value types for command-line options (argparse `type=`), shared by `seq2seq.cli` and `seq2seq.server.cli`."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An int >= 1; `argparse.ArgumentTypeError` (shown as a usage error) otherwise."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An int >= 0; `argparse.ArgumentTypeError` (shown as a usage error) otherwise."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0; `argparse.ArgumentTypeError` otherwise."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
