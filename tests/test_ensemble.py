"""Ensemble decoding: a model with itself decodes as the model; vocabularies must match; exportable."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from seq2seq import runner
from seq2seq.decoding import decode_batch
from seq2seq.model.ensemble import EnsembleModel
from seq2seq.serving.export import export_module, load_saved_model

SENTENCES = ["a b c .", "b a .", "c c a b ."]


def test_ensemble_of_a_model_with_itself_gives_its_beam_output(synthetic_model_dir):
    alone_loaded = runner.load(synthetic_model_dir)
    config, model = alone_loaded.config, alone_loaded.model
    pair_loaded = runner.load_ensemble([synthetic_model_dir, synthetic_model_dir])
    ensemble = pair_loaded.model
    assert len(ensemble.members) == 2
    source = tf.constant([[5, 6, 7, 3], [8, 5, 3, 0]], tf.int32)
    lengths = tf.constant([4, 3], tf.int32)
    alone = decode_batch(model, source, lengths, config.decode)
    together = decode_batch(ensemble, source, lengths, config.decode)
    np.testing.assert_array_equal(together.ids.numpy(), alone.ids.numpy())
    np.testing.assert_array_equal(together.lengths.numpy(), alone.lengths.numpy())
    np.testing.assert_allclose(together.scores.numpy(), alone.scores.numpy(), rtol=1e-5)
    single = runner.predict(runner.serving_module(alone_loaded), SENTENCES)
    pair = runner.predict(runner.serving_module(pair_loaded), SENTENCES)
    assert pair[0] == single[0]


def test_step_returns_the_mean_log_probability(synthetic_model_dir):
    model = runner.load(synthetic_model_dir).model
    other = runner.load(synthetic_model_dir).model
    other.set_weights([w * 0.5 for w in other.get_weights()])
    ensemble = EnsembleModel([model, other])
    source = tf.constant([[5, 6, 3]], tf.int32)
    state, constants = ensemble.encode(source)
    ids = tf.constant([2])
    logits, new_state, attention = ensemble.step(ids, state, constants)
    expected, attentions = 0.0, 0.0
    for member in (model, other):
        s, c = member.encode(source)
        member_logits, _, member_attention = member.step(ids, s, c)
        expected += tf.nn.log_softmax(member_logits).numpy() / 2
        attentions += member_attention.numpy() / 2
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(attention.numpy(), attentions, rtol=1e-6)
    assert len(new_state) == 2


def test_different_target_vocabularies_are_refused(synthetic_model_dir, tmp_path):
    other = str(tmp_path / "other")
    shutil.copytree(synthetic_model_dir, other)
    target = sorted(n for n in os.listdir(os.path.join(other, "tokenizers")) if n.startswith("target."))[0]
    with open(os.path.join(other, "tokenizers", target), "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(
        ValueError,
        match=f"{synthetic_model_dir} and {other} have different target vocabularies: tokenizers/{target} differs",
    ):
        runner.load_ensemble([synthetic_model_dir, other])


def test_ensemble_exports_as_one_saved_model(synthetic_model_dir, tmp_path):
    module = runner.serving_module(runner.load_ensemble([synthetic_model_dir, synthetic_model_dir]))
    expected = [t.decode() for t in module.translate(tf.constant(SENTENCES))["translation"].numpy()]
    path = export_module(module, str(tmp_path / "export"))
    served = load_saved_model(path).signatures["serving_default"](text=tf.constant(SENTENCES))
    assert [t.decode() for t in served["translation"].numpy()] == expected
    assert "score" not in load_saved_model(path).signatures  # an ensemble has no teacher-forced call
