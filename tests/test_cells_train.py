"""Every recurrent cell with both attention types trains on real Tatoeba pairs (loss drops, stays finite).

A slice of 192 Spanish→English pairs from /work/shared/data/anki/spa-eng.txt (skipped when absent), word
vocabularies, a tiny model, 150 steps (25 epochs of 6 batches). One combination runs by default; the
whole grid (cells × attention, input feeding, a bidirectional LSTM encoder bridged to a GRU decoder) is
marked slow.
"""

import itertools
import os

import keras
import numpy as np
import pytest

from pipelines.tokenizers import train_word_vocabulary
from pipelines.translation import read_anki
from seq2seq.config import config_from_dict
from seq2seq.training.fit import compile_model
from seq2seq.training.trainer import build_trainable_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP, PAIRS, EPOCHS = 20000, 192, 25


def _anki_file():
    for folder in (os.environ.get("SEQ2SEQ_DATA_DIR"), os.path.join(ROOT, "..", "shared", "data")):
        if folder and os.path.isfile(os.path.join(folder, "anki", "spa-eng.txt")):
            return os.path.join(folder, "anki", "spa-eng.txt")
    pytest.skip("real data not found: set SEQ2SEQ_DATA_DIR or place ../shared/data next to the repo")


def _pad(rows, length):
    out = np.zeros((len(rows), length), "int32")
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """((source, target_in), target_out) int32 arrays: pieces + EOS; BOS + pieces; pieces + EOS."""
    pairs = list(read_anki(_anki_file(), reverse=True, limit=SKIP + PAIRS))[SKIP:]
    folder = str(tmp_path_factory.mktemp("vocab"))
    source_tok = train_word_vocabulary((s for s, _ in pairs), folder, "source", 400)
    target_tok = train_word_vocabulary((t for _, t in pairs), folder, "target", 400)
    source = [list(r) + [3] for r in source_tok.tokenize([s for s, _ in pairs]).to_list()]
    target = [list(r) for r in target_tok.tokenize([t for _, t in pairs]).to_list()]
    length = max(map(len, source + target)) + 1
    arrays = (_pad(source, length), _pad([[2] + t for t in target], length), _pad([t + [3] for t in target], length))
    return arrays, source_tok.vocab_size, target_tok.vocab_size


def _train(batches, encoder, decoder):
    (source, target_in, target_out), source_vocab, target_vocab = batches
    keras.utils.set_random_seed(0)
    config = config_from_dict(
        {
            "data": {"path": "unused.tsv"},
            "model": {
                "embedding": {"dim": 16},
                "encoder": {"units": 16, **encoder},
                "decoder": {"units": 24, **decoder},
            },
            "train": {"learning_rate": 0.01},
        }
    )
    model = compile_model(build_trainable_model(config, source_vocab, target_vocab), config.train)
    history = model.fit((source, target_in), target_out, batch_size=32, epochs=EPOCHS, verbose=0).history
    assert int(model.optimizer.iterations) == EPOCHS * PAIRS // 32
    losses = history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.6 * losses[0], losses
    return losses


def test_gru_bahdanau_trains(batches):
    _train(batches, {"cell": "gru"}, {"cell": "gru", "attention": "bahdanau"})


CELLS = ["simple", "gru", "lstm", "peephole_lstm"]
GRID = [(c, a) for c, a in itertools.product(CELLS, ["bahdanau", "luong"]) if (c, a) != ("gru", "bahdanau")]


@pytest.mark.slow
@pytest.mark.parametrize("cell,attention", GRID)
def test_cell_and_attention_train(batches, cell, attention):
    _train(batches, {"cell": cell}, {"cell": cell, "attention": attention})


@pytest.mark.slow
def test_input_feeding_trains(batches):
    _train(batches, {"cell": "lstm"}, {"cell": "lstm", "attention": "luong", "input_feeding": True})


@pytest.mark.slow
def test_bidirectional_lstm_encoder_with_gru_decoder_bridge_trains(batches):
    _train(batches, {"cell": "lstm", "bidirectional": True}, {"cell": "gru", "attention": "bahdanau", "layers": 1})
