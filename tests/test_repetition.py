"""repetition_rate: the fraction of outputs with a 1–3-gram repeated back to back."""

import pytest

from seq2seq.repetition import repeats_back_to_back, repetition_rate


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ein mann sitzt am strand am strand .", True),  # bigram
        ("ein ein hund .", True),  # unigram
        ("auf dem rasen auf dem rasen", True),  # trigram
        ("a b c d a b c d", False),  # a 4-gram repeat is not counted (max_n = 3)
        ("ein hund und ein hund", False),  # not back to back
        ("", False),
        ("hund", False),
    ],
)
def test_repeats_back_to_back(text, expected):
    assert repeats_back_to_back(text.split()) is expected


def test_repetition_rate_is_the_fraction_of_outputs():
    outputs = ["am strand am strand .", "ein hund läuft .", "zwei zwei katzen", "ein mann ."]
    assert repetition_rate(outputs) == 0.5
    assert repetition_rate([]) == 0.0
    assert repetition_rate(["a b c d a b c d"], max_n=4) == 1.0
