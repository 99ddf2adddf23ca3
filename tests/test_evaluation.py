"""Tests for seq2seq.evaluation: corpus BLEU (sacreBLEU + NLTK), sentence BLEU, reference layouts."""

import math
import unicodedata
import warnings

import pytest

from seq2seq.evaluation import (
    corpus_bleu,
    normalize_references,
    per_sentence_scores,
    per_sentence_signatures,
    reference_streams,
    sentence_bleu,
    streams_to_items,
)


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


def test_identical_two_word_pair_scores_100_with_effective_order():
    # Issue 16: a corpus whose hypotheses all have < 3 tokens has no 3- or 4-grams at all (totals 0/0). sacreBLEU's
    # default (and its command line) then scores 0.0; corpus_bleu's effective order leaves orders 3-4 out -> 100.
    result = corpus_bleu(["left right"], [["left right"]])
    assert result["score"] == 100.0
    assert "eff:yes" in result["signature"]
    assert result["precisions"] == [100.0, 100.0, 0.0, 0.0]  # orders 3-4: no n-grams, left out of the mean
    assert corpus_bleu(["left right"], [["left right"]], effective_order=False)["score"] == 0.0
    # Two words of three match: p1 = 2/3, p2 = 1/1 ("up" has no bigram), orders 1-2 only; BP = 1 (3 vs 3 tokens).
    partial = corpus_bleu(["left right", "up"], [["left right"], ["down"]])
    assert partial["score"] == pytest.approx(100.0 * (2 / 3 * 1 / 1) ** 0.5, rel=1e-9)


def test_effective_order_changes_nothing_once_a_hypothesis_has_four_tokens():
    hyps, refs = ["left right", "a b c d e"], [["left right"], ["a b c d f"]]
    assert corpus_bleu(hyps, refs)["score"] == corpus_bleu(hyps, refs, effective_order=False)["score"]


def test_exp_smoothing_of_an_order_without_matches():
    # "a b c d" vs "a b x d": p1 = 3/4, p2 = 1/3 ("a b"), 3-grams 0/2, 4-grams 0/1. sacreBLEU's default 'exp'
    # (mteval-v13a) gives the k-th zero order precision 1 / (2**k * total): p3 = 1/(2*2), p4 = 1/(4*1).
    result = corpus_bleu(["a b c d"], [["a b x d"]])
    assert result["score"] == pytest.approx(100.0 * (3 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25, rel=1e-9)
    assert result["precisions"] == pytest.approx([75.0, 100 / 3, 25.0, 25.0], rel=1e-9)


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
    assert streams_to_items([["r1", "r2"], [None, "r3"]]) == [["r1"], ["r2", "r3"]]


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


def test_token_list_references_are_refused_with_the_accepted_layouts():
    # Issue 17 item 9: a tokenised reference where a sentence is expected was scored as 4 one-word references.
    with pytest.raises(ValueError, match=r"token lists where sentences are expected") as error:
        corpus_bleu(["This is cat"], [["This", "is", "a", "cat"]])
    assert "references[i] = list of all reference strings of hypothesis i" in str(error.value)
    assert "sacreBLEU reference streams" in str(error.value)
    # NLTK's layout (references as lists of token lists) and tokenised hypotheses.
    with pytest.raises(ValueError, match=r"a reference of hypothesis 0 is a list.*tokenised sentence"):
        corpus_bleu(["This is cat"], [[["This", "is", "a", "cat"]]])
    with pytest.raises(ValueError, match=r"hypothesis 0 is a list \(a token list\?\)"):
        corpus_bleu([["This", "is", "cat"]], [["This is a cat"]])
    with pytest.raises(ValueError, match=r"token lists"):
        sentence_bleu("This is cat", ["This", "is", "a", "cat"])
    with pytest.raises(TypeError, match=r"hypothesis 0 is int"):
        corpus_bleu([3], [["3"]])


def test_one_word_multi_references_of_one_word_hypotheses_are_accepted():
    # Genuine short multi-reference data ("hi" vs "hello" / "hi"): not mistaken for token lists.
    result = corpus_bleu(["hi", "bye"], [["hello", "hi"], ["goodbye", "bye"]])
    assert result["score"] == 100.0 and "nrefs:2" in result["signature"]


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
    assert result["signature"] == "nrefs:1|case:lc|eff:yes|tok:13a|smooth:exp|version:2.6.0"
    cased = corpus_bleu(["The Cat sat ."], [["the cat sat ."]])
    # Cased: "sat ." matches (2 of 4 unigrams, 1 of 3 bigrams); 3-/4-grams unmatched -> exp smoothing 1/(2*2), 1/(4*1).
    assert cased["score"] == pytest.approx(100.0 * (2 / 4 * 1 / 3 * 1 / 4 * 1 / 4) ** 0.25, rel=1e-9)
    # 13a splits punctuation for both implementations: "mat." matches "mat ."
    tokenized = corpus_bleu(["on the mat."], ["on the mat ."])
    assert tokenized["score"] == 100.0 and tokenized["nltk_score"] == 100.0


def test_composed_and_decomposed_spellings_score_the_same():
    composed = ["el niño pequeño come", "la señora ve el pan"]
    decomposed = [unicodedata.normalize("NFD", s) for s in composed]
    assert decomposed != composed
    assert corpus_bleu(decomposed, composed)["score"] == 100.0
    assert corpus_bleu(composed, [[d] for d in decomposed]) == corpus_bleu(composed, composed)
    assert sentence_bleu(decomposed[0], [composed[0]])["score"] == 100.0


# --------------------------------------------------------------------------------------------------
# Sentence BLEU (issue 16 part 3)


def test_identical_short_sentence_scores_100():
    result = sentence_bleu("left right", ["left right"])
    assert result["score"] == 100.0
    assert result["signature"] == "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0"
    assert (result["counts"], result["totals"]) == ([2, 1, 0, 0], [2, 1, 0, 0])
    assert sentence_bleu("left right", "left right")["score"] == 100.0  # a single reference as a string


def test_sentence_bleu_hand_computed_with_effective_order():
    # "the cat sat" vs "the cat sat down": p1 = 3/3, p2 = 2/2, p3 = 1/1, no 4-gram -> effective order 3;
    # BP = exp(1 - 4/3).
    result = sentence_bleu("the cat sat", ["the cat sat down"])
    assert result["score"] == pytest.approx(100.0 * math.exp(1.0 - 4.0 / 3.0), rel=1e-9)
    assert result["brevity_penalty"] == pytest.approx(math.exp(1.0 - 4.0 / 3.0), rel=1e-9)
    # Two references: the closest reference length (3) -> BP = 1.
    assert sentence_bleu("the cat sat", ["the cat sat down", "a cat sat"])["score"] == 100.0
    # Case-insensitive through sacreBLEU's lowercase.
    lowered = sentence_bleu("The Cat sat", ["the cat sat"], lowercase=True)
    assert lowered["score"] == 100.0 and "case:lc" in lowered["signature"]


def test_unsmoothed_bleu4_on_a_short_pair_is_zero_with_one_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sentence_bleu("left right", ["left right"], smooth=False)
    assert result["score"] == 0.0
    assert "smooth:none" in result["signature"] and "eff:no" in result["signature"]
    assert len(caught) == 1 and caught[0].category is UserWarning
    message = str(caught[0].message)
    assert "has no 3-grams, 4-grams" in message and "n-gram orders 3, 4 missing" in message
    # Unmatched (not absent) orders are named too: "a b c d" vs "a b x d" has 3- and 4-grams, none matching.
    with pytest.warns(UserWarning, match=r"no 3-gram, 4-gram of the hypothesis matches.*orders 3, 4 missing"):
        assert sentence_bleu("a b c d", ["a b x d"], smooth="none")["score"] == 0.0


def test_no_warning_when_unsmoothed_bleu_is_positive_or_nothing_matches():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sentence_bleu("a b c d", ["a b c d"], smooth=False)["score"] == 100.0
        assert sentence_bleu("a b c d", ["w x y z"], smooth=False)["score"] == 0.0


def test_other_smoothing_methods_and_bad_value():
    # floor (0.1) with effective order: "a b c d" vs "a b x d": p3 = 0.1/2, p4 = 0.1/1.
    floor = sentence_bleu("a b c d", ["a b x d"], smooth="floor")
    assert floor["score"] == pytest.approx(100.0 * (3 / 4 * 1 / 3 * 0.05 * 0.1) ** 0.25, rel=1e-9)
    assert "smooth:floor[0.10]" in floor["signature"]
    with pytest.raises(ValueError, match=r"smooth must be True, False or one of"):
        sentence_bleu("a", ["a"], smooth="laplace")


def test_per_sentence_scores_on_reference_streams():
    hyps = ["left right", "the cat sat"]
    streams = [["left right", "the cat sat down"], ["left", "a cat sat"]]
    scores = per_sentence_scores(hyps, streams)
    assert [s["bleu"] for s in scores] == [100.0, 100.0]
    assert scores[0]["chrf"] == 100.0
    assert scores[1]["bleu"] == sentence_bleu(hyps[1], [streams[0][1], streams[1][1]])["score"]
    # chrF of "the cat sat" vs the closer reference "a cat sat": as sacreBLEU's sentence chrF.
    from sacrebleu.metrics import CHRF

    assert scores[1]["chrf"] == round(CHRF().sentence_score(hyps[1], [streams[0][1], streams[1][1]]).score, 10)
    assert per_sentence_signatures(2) == {
        "bleu": "nrefs:2|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0",
        "chrf": "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
    }
    with pytest.raises(ValueError, match=r"reference stream 1 has 1 entries but there are 2 hypotheses"):
        per_sentence_scores(hyps, [["a", "b"], ["c"]])
