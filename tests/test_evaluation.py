"""Tests for seq2seq.evaluation.corpus_bleu (sacreBLEU + NLTK)."""

import math

import pytest

from seq2seq.evaluation import corpus_bleu, normalize_references, reference_streams


def test_identical_is_exactly_100():
    hyps = ["the cat sat on the mat .", "a dog runs in the park"]
    result = corpus_bleu(hyps, hyps)
    assert result["score"] == 100.0
    assert result["nltk_score"] == 100.0
    assert result["brevity_penalty"] == 1.0
    assert result["precisions"] == [100.0] * 4
    for n in range(1, 5):
        assert result["bleu_n"]["sacrebleu"][n] == 100.0
        assert result["bleu_n"]["nltk"][n] == 100.0


def test_hand_computed_two_sentences():
    # hyp1 "a b c d e" vs "a b c d f": 1-4 gram matches 4/5, 3/4, 2/3, 1/2.
    # hyp2 "w x y z" vs "w x y z q": 4/4, 3/3, 2/2, 1/1.
    # Corpus: p = 8/9, 6/7, 4/5, 2/3; c = 5 + 4 = 9, r = 5 + 5 = 10, BP = exp(1 - 10/9).
    result = corpus_bleu(["a b c d e", "w x y z"], ["a b c d f", "w x y z q"])
    bp = math.exp(1.0 - 10.0 / 9.0)
    precisions = [8 / 9, 6 / 7, 4 / 5, 2 / 3]
    expected = 100.0 * bp * math.prod(precisions) ** 0.25
    assert result["score"] == pytest.approx(expected, rel=1e-9)
    assert result["nltk_score"] == pytest.approx(expected, rel=1e-9)
    assert result["brevity_penalty"] == pytest.approx(bp, rel=1e-9)
    assert result["precisions"] == pytest.approx([100.0 * p for p in precisions], rel=1e-9)
    assert (result["sys_len"], result["ref_len"]) == (9, 10)
    for n in range(1, 5):
        bleu_n = 100.0 * bp * math.prod(precisions[:n]) ** (1.0 / n)
        assert result["bleu_n"]["sacrebleu"][n] == pytest.approx(bleu_n, rel=1e-9)
        assert result["bleu_n"]["nltk"][n] == pytest.approx(bleu_n, rel=1e-9)


def test_short_hypothesis_counts_differ_between_implementations():
    # "x y" has no 3-/4-grams: sacreBLEU adds 0/0, NLTK adds 0/1 (denominator max(1, count)).
    # sacreBLEU: p = 6/7, 4/5, 2/3, 1/2;  NLTK: p = 6/7, 4/5, 2/4, 1/3;  BP = exp(1 - 8/7).
    result = corpus_bleu(["a b c d e", "x y"], ["a b c d f", "x y z"])
    bp = math.exp(1.0 - 8.0 / 7.0)
    sacre = 100.0 * bp * (6 / 7 * 4 / 5 * 2 / 3 * 1 / 2) ** 0.25
    nltk = 100.0 * bp * (6 / 7 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert result["score"] == pytest.approx(sacre, rel=1e-9)
    assert result["nltk_score"] == pytest.approx(nltk, rel=1e-9)


def test_multi_reference_raises_score():
    hyps = ["the cat is on the mat"]
    single = corpus_bleu(hyps, [["there is a cat on the mat"]])
    multi = corpus_bleu(hyps, [["there is a cat on the mat", "the cat sits on the mat"]])
    assert multi["score"] > single["score"]
    assert multi["nltk_score"] > single["nltk_score"]
    assert "nrefs:2" in multi["signature"]


def test_variable_reference_counts_are_padded_not_counted():
    hyps = ["a b c d e f", "g h i j"]
    ragged = corpus_bleu(hyps, [["a b c d e x"], ["g h i j k l", "g h i y"]])
    # Repeating the single reference gives identical statistics: padding must be ignored.
    repeated = corpus_bleu(hyps, [["a b c d e x"] * 2, ["g h i j k l", "g h i y"]])
    assert ragged["score"] == repeated["score"]
    assert ragged["ref_len"] == repeated["ref_len"] == 10
    assert ragged["nltk_score"] == repeated["nltk_score"]
    assert "nrefs:var" in ragged["signature"]
    assert reference_streams([["r1"], ["r2", "r3"]]) == [["r1", "r2"], [None, "r3"]]


def test_flat_references_mean_one_each():
    assert normalize_references(["x", "y"], ["a", "b"]) == [["a"], ["b"]]
    flat = corpus_bleu(["the cat sat", "hello"], ["the cat sat down", "hello there"])
    nested = corpus_bleu(["the cat sat", "hello"], [["the cat sat down"], ["hello there"]])
    assert flat == nested
    assert "nrefs:1" in flat["signature"]


def test_length_mismatch_error_message():
    with pytest.raises(ValueError, match=r"3 hypotheses but 2 reference"):
        corpus_bleu(["a", "b", "c"], [["a"], ["b"]])


def test_item_without_reference_is_rejected():
    with pytest.raises(ValueError, match=r"hypothesis 1 has no reference"):
        corpus_bleu(["a b", "c d"], [["a b"], []])


def test_empty_hypothesis_handled():
    result = corpus_bleu([""], [["the cat sat on the mat"]])
    assert result["score"] == 0.0
    assert result["nltk_score"] == 0.0
    assert result["sys_len"] == 0
    mixed = corpus_bleu(["", "the cat sat on the mat"], ["a dog", "the cat sat on the mat"])
    assert 0.0 < mixed["score"] < 100.0
    assert 0.0 < mixed["nltk_score"] < 100.0


def test_signature_and_options():
    result = corpus_bleu(["The Cat sat ."], [["the cat sat ."]], lowercase=True)
    assert result["score"] == 100.0 and result["nltk_score"] == 100.0
    assert "nrefs" in result["signature"]
    assert "case:lc" in result["signature"] and "tok:13a" in result["signature"]
    cased = corpus_bleu(["The Cat sat ."], [["the cat sat ."]])
    assert cased["score"] < 100.0
    # 13a splits punctuation for both implementations: "mat." matches "mat ."
    tokenized = corpus_bleu(["on the mat."], ["on the mat ."])
    assert tokenized["score"] == 100.0 and tokenized["nltk_score"] == 100.0
