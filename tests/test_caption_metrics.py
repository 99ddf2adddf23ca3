"""Tests for seq2seq.evaluation.caption_metrics (coco-caption metrics by pycocoevalcap; Java for PTB and METEOR)."""

import math
import os
import shutil
import unicodedata

import pytest

from seq2seq.evaluation import caption_metrics, caption_scores
from seq2seq.evaluation.caption_scores import METRICS, ptb_tokenize

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH (PTB tokenizer, METEOR)")

# Four images, two references each: enough images for CIDEr-D's IDF to mean something (an n-gram found in the
# references of every image gets IDF 0, which on one or two images is most n-grams).
HYPOTHESES = ["A dog runs on the grass.", "Two cats sleep on a bed.", "A man rides a bike.", "Children play in a park."]
REFERENCES = [
    ["A dog runs on the green grass.", "A brown dog is running on grass."],
    ["Two cats sleep on a red bed.", "Cats are sleeping on the bed."],
    ["A man rides a bike down the street.", "A person riding a bicycle."],
    ["Children play in the park.", "Kids are playing outside."],
]


@pytest.fixture(scope="module")
def metrics():
    return caption_metrics(HYPOTHESES, REFERENCES)  # about 10 s: METEOR starts a JVM with its paraphrase table


@needs_java
def test_values_pinned(metrics):
    # Obtained once with pycocoevalcap 1.2 (Java 17) on the inputs above, times 100, rounded to 10 decimals;
    # BLEU-1 and BLEU-2 are also computed by hand in the next test.
    assert {name: entry["score"] for name, entry in metrics.items()} == {
        "bleu_1": 91.2128352719,
        "bleu_2": 82.3351751934,
        "bleu_3": 77.3453207166,
        "bleu_4": 71.7675600698,
        "meteor": 43.8063842523,
        "rouge_l": 83.9848577934,
        "cider_d": 348.6685479826,
    }
    assert metrics["cider_d"]["signature"] == (
        "coco-caption|tok:ptb.lc.nopunct|nrefs:2|pycocoevalcap:1.2|metric:cider-d(n:4,sigma:6)"
    )
    assert all(entry["signature"].startswith("coco-caption|tok:ptb.lc.nopunct|nrefs:2|") for entry in metrics.values())
    assert tuple(metrics) == METRICS


@needs_java
def test_bleu_1_and_2_by_hand(metrics):
    # PTB tokens, lowercased, "." removed. Hypothesis lengths 6, 6, 5, 5 (22); the closest reference lengths
    # 7 (both refs have 7), 6, 5, 5 (23) -> BP = exp(1 - 23/22).
    # Clipped unigram matches: 6, 6, 5 ("a" twice in "a man rides a bike down the street"), 4 ("a" in no reference)
    # = 21/22. Bigrams: 4/5 ("the grass" missing), 4/5 ("a bed"), 4/4, 2/4 ("in a", "a park") = 14/18.
    bp = math.exp(1.0 - 23.0 / 22.0)
    assert metrics["bleu_1"]["score"] == pytest.approx(100.0 * bp * 21 / 22, rel=1e-9)
    assert metrics["bleu_2"]["score"] == pytest.approx(100.0 * bp * (21 / 22 * 14 / 18) ** 0.5, rel=1e-9)


@needs_java
def test_same_tokenisation_for_every_metric_lowercased_without_punctuation():
    gts, res = ptb_tokenize(["A Dog, runs!", ""], [["a dog runs .", "Line\nbreak"], ["Niño's toy"]])
    assert res == {0: ["a dog runs"], 1: [""]}
    assert gts == {0: ["a dog runs", "line break"], 1: ["niño 's toy"]}
    # Case and punctuation change nothing: the same tokens go to every scorer.
    upper = [h.upper().replace(".", " !") for h in HYPOTHESES]
    assert ptb_tokenize(upper, REFERENCES) == ptb_tokenize(HYPOTHESES, REFERENCES)


@needs_java
def test_nfd_captions_reach_the_tokenizer_in_nfc(monkeypatch):
    seen = []

    def record(hypotheses, references):
        seen.append((hypotheses, references))
        raise StopIteration  # stop before the scorers: only the input of the tokenisation is checked

    monkeypatch.setattr(caption_scores, "ptb_tokenize", record)
    with pytest.raises(StopIteration):
        caption_metrics([unicodedata.normalize("NFD", "el niño")], [[unicodedata.normalize("NFD", "la niña")]])
    assert seen == [(["el ni\u00f1o"], [["la ni\u00f1a"]])]


def test_without_java_every_metric_is_skipped_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no java
    result = caption_metrics(HYPOTHESES, REFERENCES)
    assert set(result) == set(METRICS)
    for entry in result.values():
        assert list(entry) == ["skipped"]
        assert entry["skipped"].startswith("no Java runtime ('java' not on PATH)")
        assert "default-jre-headless" in entry["skipped"]


@needs_java
def test_meteor_failure_is_reported_not_dropped(monkeypatch):
    import pycocoevalcap.meteor.meteor as meteor_module

    class BrokenMeteor:
        def __init__(self):
            raise OSError("Could not reserve enough space for object heap")

    monkeypatch.setattr(meteor_module, "Meteor", BrokenMeteor)
    result = caption_metrics(HYPOTHESES[:3], REFERENCES[:3])
    assert result["meteor"] == {
        "skipped": "METEOR (java -jar meteor-1.5.jar) failed: Could not reserve enough space for object heap"
    }
    assert result["bleu_1"]["score"] > 0 and "signature" in result["cider_d"]


@needs_java
def test_tokenizer_that_cannot_write_its_input_file_skips_everything(monkeypatch):
    import pycocoevalcap.tokenizer.ptbtokenizer as ptb_module

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(ptb_module.tempfile, "NamedTemporaryFile", read_only)
    result = caption_metrics(HYPOTHESES, REFERENCES)
    assert set(result) == set(METRICS)
    assert all(
        entry
        == {
            "skipped": f"the PTB tokenizer could not run: [Errno 13] Permission denied: "
            f"'{os.path.dirname(ptb_module.__file__)}'"
        }
        for entry in result.values()
    )


def test_layout_errors():
    with pytest.raises(ValueError, match=r"token lists where sentences are expected"):
        caption_metrics(["a dog runs"], [["a", "dog", "runs"]])
    with pytest.raises(ValueError, match=r"2 hypotheses but 1 reference entries"):
        caption_metrics(["a", "b"], [["a"]])
