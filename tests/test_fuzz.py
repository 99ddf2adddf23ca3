"""Fuzzing (hypothesis): any Unicode text through normalisation, tokenizers and the exported SavedModel.

Properties checked:
* normalisation -> SentencePiece (byte fallback) -> detokenisation never raises, and gives back exactly the
  normalised text when the text holds no U+2581 (SentencePiece's own word-boundary mark, which it turns
  into a space);
* the word tokenizer never raises and maps every id back into its vocabulary;
* the exported translation SavedModel (a tiny model trained and exported once per session) returns one
  string and one finite score per input, whatever the input, alone or in a batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_synthetic_parallel
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.text import normalize
from pipelines.tokenizers import train_sentencepiece
from seq2seq import runner
from seq2seq.serving.export import load_saved_model

pytestmark = pytest.mark.reliability

SP_MARK = "\u2581"
# Any code point except surrogates (not encodable as UTF-8), weighted toward awkward ones.
ANY_TEXT = st.text(max_size=300) | st.lists(
    st.sampled_from(
        [
            "\x00",
            "\x01",
            "\t",
            "\r",
            "\n",
            "\x0b",
            "\x85",
            "\u00a0",
            "\u200b",
            "\u2028",
            "\u3000",
            "\ufeff",
            "\ufffd",
            "e\u0301",
            "\ufb01",
            "😀",
            "👩‍👩‍👧",
            "日",
            " ",
            "a",
            ".",
        ]
    ),
    max_size=200,
).map("".join)
LONG_TEXT = st.builds(
    lambda piece, times: piece * times, st.text(min_size=1, max_size=5), st.integers(min_value=200, max_value=2000)
)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def sentencepiece(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz_sp")
    source, _ = write_synthetic_parallel(str(directory), pairs=200)
    with open(source, encoding="utf-8") as f:
        return train_sentencepiece([line.strip() for line in f], str(directory), "fuzz", 286, byte_fallback=True)


@pytest.fixture(scope="module")
def serve(synthetic_model_dir, tmp_path_factory):
    """serving_default of the session's tiny synthetic model, exported once for this module."""
    output = str(tmp_path_factory.mktemp("fuzz_export") / "export")
    runner.export(synthetic_model_dir, output)
    return load_saved_model(output).signatures["serving_default"]


def _one(values) -> str:
    return values.numpy()[0].decode("utf-8")


@FUZZ
@given(text=ANY_TEXT | LONG_TEXT)
@example(text="")
@example(text="\x00")
@example(text="a" * 5000)
def test_sentencepiece_round_trips_any_text_to_its_normalised_form(sentencepiece, text):
    ids = sentencepiece.tokenize(tf.constant([text]))
    assert ids.shape[0] == 1
    assert all(0 <= i < sentencepiece.vocab_size for i in ids.flat_values.numpy().tolist())
    back = _one(sentencepiece.detokenize(ids))
    normalised = _one(normalize(tf.constant([text])))
    if SP_MARK not in normalised:  # the mark is the one exception (see the next test)
        assert back == normalised


def test_the_word_boundary_mark_is_the_one_exception(sentencepiece):
    ids = sentencepiece.tokenize(tf.constant([f"a{SP_MARK}b"]))
    assert _one(sentencepiece.detokenize(ids)) == "a b"


@FUZZ
@given(text=ANY_TEXT)
def test_normalisation_is_idempotent_and_trimmed(text):
    once = _one(normalize(tf.constant([text])))
    assert _one(normalize(tf.constant([once]))) == once
    assert once == once.strip(" ") and "  " not in once


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(ANY_TEXT | LONG_TEXT, min_size=1, max_size=4))
@example(texts=[""])
@example(texts=["", "el gato", "\ufeff\r\n", "😀" * 3000])
def test_exported_translation_model_returns_a_string_for_any_input(serve, texts):
    out = serve(text=tf.constant(texts, tf.string))
    translations = out["translation"].numpy()
    scores = out["score"].numpy()
    assert translations.shape == scores.shape == (len(texts),)
    decoded = [t.decode("utf-8") for t in translations]  # valid UTF-8
    assert np.isfinite(scores).all()
    for text, translation_text, score in zip(texts, decoded, scores):
        if not _one(normalize(tf.constant([text]))):
            assert translation_text == "" and score == 0.0  # empty after normalisation


def test_exported_model_gives_the_same_output_alone_and_in_a_batch(serve):
    texts = ["el gato come pan .", "", "😀 日本 \x00", "la niña ve el perro ."]
    batch = [t.decode("utf-8") for t in serve(text=tf.constant(texts))["translation"].numpy()]
    alone = [_one(serve(text=tf.constant([t]))["translation"]) for t in texts]
    assert batch == alone
