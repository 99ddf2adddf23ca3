"""TranslationModule and decode_batch on trained tiny models: n-best, beam 1 = greedy, awkward inputs,
attention, and the `.keras` round trip in a fresh process.

Model fixtures are in tests/conftest.py (the Tatoeba variant skips without the shared data folder).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pipelines.batching import format_source
from seq2seq import model_dir as md
from seq2seq import runner
from seq2seq.cli import main
from seq2seq.config import DecodeConfig
from seq2seq.serving.modules import decode_batch

KERAS_SCRIPT = r"""
import sys
import keras
import numpy as np
import seq2seq.model.seq2seq  # noqa: F401  registers the model and layer classes
import seq2seq.training.fit  # noqa: F401  registers the compiled loss and metrics saved with the model
model = keras.saving.load_model(sys.argv[1])
source, target_in = np.load(sys.argv[2]), np.load(sys.argv[3])
np.save(sys.argv[4], keras.ops.convert_to_numpy(model((source, target_in), training=False)))
"""


@pytest.fixture(scope="module")
def loaded(translation_model_dir):
    """(model_dir, config, model, source_tokenizer, target_tokenizer)."""
    return (translation_model_dir, *_unpack(runner.load(translation_model_dir)))


def _source_ids(source_tok, texts, max_length):
    return format_source(source_tok.tokenize(tf.constant(texts, tf.string)), max_length)


def test_keras_file_round_trips_in_a_fresh_process(loaded, tmp_path):
    model_dir, config, model, source_tok, _ = loaded
    source = _source_ids(source_tok, ["el gato come pan .", "¿Dónde está el gato?"], 20).numpy()
    target_in = np.array([[2, 5, 6, 7], [2, 8, 0, 0]], "int32")
    np.save(tmp_path / "source.npy", source)
    np.save(tmp_path / "target.npy", target_in)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            KERAS_SCRIPT,
            os.path.join(model_dir, md.MODEL_FILE),
            str(tmp_path / "source.npy"),
            str(tmp_path / "target.npy"),
            str(tmp_path / "logits.npy"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    fresh = np.load(tmp_path / "logits.npy")
    expected = model((source, target_in), training=False).numpy()  # best.weights.h5, as model.keras holds
    assert fresh.shape == (2, 4, model.target_vocab_size)
    np.testing.assert_array_equal(fresh, expected)


def test_nbest_is_distinct_and_sorted(loaded, edge_case_texts):
    _, config, model, source_tok, target_tok = loaded
    decode = DecodeConfig(beam_size=4, n_best=4, length_penalty=0.6, max_length=20)
    texts = [t for t in edge_case_texts if t.strip()]
    source = _source_ids(source_tok, texts, config.data.max_source_length)
    lengths = tf.reduce_sum(tf.cast(source != 0, tf.int32), axis=1)
    result = decode_batch(model, source, lengths, decode)
    assert result.ids.shape[:2] == (len(texts), 4)
    scores = result.scores.numpy()
    assert np.all(np.diff(scores, axis=1) <= 0), scores
    for ids, row_lengths in zip(result.ids.numpy(), result.lengths.numpy()):
        hypotheses = {tuple(row[:n]) for row, n in zip(ids, row_lengths)}
        assert len(hypotheses) == 4  # tiny models have far more than 4 candidates: all real and distinct
        assert all(np.all(row[n:] == 0) for row, n in zip(ids, row_lengths))

    module = _translator(config, model, source_tok, target_tok, n_best=3)
    out = module.translate_nbest(tf.constant(texts, tf.string))
    assert out["translations"].shape == (len(texts), 3)
    assert np.all(np.diff(out["scores"].numpy(), axis=1) <= 0)
    best = module.translate(tf.constant(texts, tf.string))
    np.testing.assert_array_equal(out["translations"].numpy()[:, 0], best["translation"].numpy())


def test_beam_size_one_equals_greedy(loaded, edge_case_texts, capsys):
    model_dir, config, model, source_tok, target_tok = loaded
    texts = tf.constant(edge_case_texts, tf.string)
    beam = _translator(config, model, source_tok, target_tok, beam_size=1, length_penalty=0.0)
    greedy = _translator(config, model, source_tok, target_tok, strategy="greedy")
    beam_out, greedy_out = beam.translate(texts), greedy.translate(texts)
    np.testing.assert_array_equal(beam_out["translation"].numpy(), greedy_out["translation"].numpy())
    # Without a length penalty the beam score is the raw log-probability, as greedy's.
    np.testing.assert_allclose(beam_out["score"].numpy(), greedy_out["score"].numpy(), rtol=1e-5, atol=1e-5)

    lines = [t for t in edge_case_texts if "\n" not in t]
    capsys.readouterr()
    assert main(["--quiet", "translate", "--model-dir", model_dir, "--beam-size", "1", *lines]) == 0
    with_beam = capsys.readouterr().out
    assert main(["--quiet", "translate", "--model-dir", model_dir, "--strategy", "greedy", *lines]) == 0
    assert with_beam == capsys.readouterr().out
    assert len(with_beam.split("\n")) == len(lines) + 1


def test_awkward_inputs(loaded, edge_case_texts):
    _, config, model, source_tok, target_tok = loaded
    module = _translator(config, model, source_tok, target_tok)
    out = module.translate(tf.constant(edge_case_texts, tf.string))
    translations = [t.decode("utf-8") for t in out["translation"].numpy()]
    scores = out["score"].numpy()
    assert out["score"].dtype == tf.float32 and len(translations) == len(edge_case_texts)
    for text, translation_, score in zip(edge_case_texts, translations, scores):
        if text.strip():
            assert np.isfinite(score) and score < 0.0, (text, score)
        else:
            assert translation_ == "" and score == 0.0
    # The very long input is cut to data.max_source_length pieces, so its output is bounded too.
    long_pieces = source_tok.tokenize(tf.constant(edge_case_texts[-1:])).row_lengths().numpy()[0]
    assert long_pieces > config.data.max_source_length
    pieces = target_tok.tokenize(tf.constant(translations[-1:])).row_lengths().numpy()[0]
    assert pieces <= config.decode.max_length

    empty_batch = module.translate(tf.constant([], tf.string))
    assert empty_batch["translation"].shape == (0,) and empty_batch["score"].shape == (0,)


def test_translate_with_attention_shapes(loaded):
    _, config, model, source_tok, target_tok = loaded
    module = _translator(config, model, source_tok, target_tok)
    texts = ["el gato come pan .", "¿Dónde está el gato?"]
    out = module.translate_with_attention(tf.constant(texts, tf.string))
    attention = out["attention"].numpy()
    batch, time, source_time = attention.shape
    assert batch == 2 and out["target_pieces"].shape == (2, time)
    assert out["source_pieces"].shape == (2, source_time)
    np.testing.assert_array_equal(out["translation"].numpy(), module.translate(tf.constant(texts))["translation"])
    # Each emitted token's attention is a distribution over real source positions (zeros after the end).
    sums = attention.sum(axis=-1)
    real = out["target_pieces"].numpy() != b"<pad>"
    np.testing.assert_allclose(sums[real], 1.0, atol=1e-4)
    assert np.all(sums[~real] == 0.0)
    source = _source_ids(source_tok, texts, config.data.max_source_length).numpy()
    assert np.all(attention[:, :, :][np.broadcast_to((source == 0)[:, None, :], attention.shape)] == 0.0)


def test_decode_config_is_recorded_on_the_module(loaded):
    _, config, model, source_tok, target_tok = loaded
    module = _translator(config, model, source_tok, target_tok, beam_size=2, n_best=4)
    assert module.decode_config["n_best"] == 4 and module.decode_config["beam_size"] == 4
    assert json.loads(json.dumps(dict(module.decode_config))) == dict(module.decode_config)


def _unpack(loaded):
    """(config, model, source tokenizer, target tokenizer) of a loaded translation model."""
    return loaded.config, loaded.model, loaded.tokenizers["source"], loaded.tokenizers["target"]


def _translator(config, model, source_tok, target_tok, **decode_overrides):
    """The translation serving module with `config.decode` and overrides (as `runner.serving_module`)."""
    from seq2seq.decoding import decode_settings
    from seq2seq.serving.modules import TranslationModule

    return TranslationModule(
        model, source_tok, target_tok, decode_settings(config.decode, **decode_overrides), config.data.max_source_length
    )
