"""Command-line value types: a value that is not a number, or out of range, is a usage error saying what was wanted."""

import argparse

import pytest

from seq2seq import cli
from seq2seq.argtypes import non_negative_float, non_negative_int, positive_int


@pytest.mark.parametrize(
    "kind, text, message",
    [
        (positive_int, "abc", "must be a positive integer, got 'abc'"),
        (positive_int, "0", "must be a positive integer, got 0"),
        (non_negative_int, "1.5", "must be an integer >= 0, got '1.5'"),
        (non_negative_int, "-1", "must be an integer >= 0, got -1"),
        (non_negative_float, "x", "must be a finite number >= 0, got 'x'"),
        (non_negative_float, "nan", "must be a finite number >= 0, got nan"),
    ],
)
def test_bad_values_name_what_was_wanted(kind, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        kind(text)
    assert str(caught.value) == message


def test_good_values():
    assert (positive_int("3"), non_negative_int("0"), non_negative_float("0.6")) == (3, 0, 0.6)


def test_cli_usage_error_names_the_option(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["evaluate", "--model-dir", "unused", "--block-repeats", "abc"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--block-repeats: must be an integer >= 0, got 'abc'" in err and "non_negative_int" not in err
