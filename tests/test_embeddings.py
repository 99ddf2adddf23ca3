"""Tests for seq2seq.layers.embeddings."""

import gzip
import os

import numpy as np
import pytest
import keras

from seq2seq.layers.embeddings import (export_projector, load_pretrained_vectors,
                                       make_embedding, nearest_neighbours)

VOCAB = ["<pad>", "<unk>", "<s>", "</s>", "cat", "dog", "Paris", "zebra"]


def _write(path, lines):
    path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    return path


@pytest.fixture
def glove(tmp_path):
    return _write(tmp_path / "glove.txt", [
        "the 0.1 0.2 0.3",
        "cat 1 0 0",
        "dog 0 1 0",
        "paris 0 0 1",
        "cat 9 9 9",            # duplicate: first occurrence wins
        "unrelated 5 5 5",
    ])


def test_pretrained_embedding_coverage_counts_glove(glove):
    matrix, cov = load_pretrained_vectors(glove, VOCAB, 3)
    assert matrix.shape == (8, 3) and matrix.dtype == np.float32
    assert cov == {"found": 3, "total": 7, "fraction": 3 / 7, "exact": 2,
                   "lowercase": 1}
    np.testing.assert_array_equal(matrix[4], [1, 0, 0])
    np.testing.assert_array_equal(matrix[6], [0, 0, 1])  # Paris -> paris
    assert not matrix[0].any()                           # PAD row zeros
    assert matrix[7].any() and np.isfinite(matrix).all()  # zebra random
    again, _ = load_pretrained_vectors(glove, VOCAB, 3, seed=0)
    np.testing.assert_array_equal(matrix, again)
    other, _ = load_pretrained_vectors(glove, VOCAB, 3, seed=1)
    assert not np.array_equal(matrix[7], other[7])


def test_pretrained_embedding_word2vec_header_and_gzip(tmp_path):
    lines = ["2 3", "cat 1 2 3 ", "zebra 4 5 6 "]
    path = tmp_path / "w2v.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    matrix, cov = load_pretrained_vectors(path, VOCAB, 3)
    assert cov["found"] == 2 and cov["exact"] == 2
    np.testing.assert_array_equal(matrix[7], [4, 5, 6])


def test_pretrained_embedding_dimension_mismatch_names_file_line(tmp_path):
    path = _write(tmp_path / "bad.txt", ["cat 1 0 0", "dog 1 0"])
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected 3 values"):
        load_pretrained_vectors(path, VOCAB, 3)
    path = _write(tmp_path / "other.txt", ["x 1 0", "cat 1 0"])
    with pytest.raises(ValueError, match=r"other\.txt:1:"):
        load_pretrained_vectors(path, VOCAB, 3)
    path = _write(tmp_path / "hdr.txt", ["10 50", "cat 1 0 0"])
    with pytest.raises(ValueError, match=r"hdr\.txt:1: .*dimension 50"):
        load_pretrained_vectors(path, VOCAB, 3)
    path = _write(tmp_path / "nan.txt", ["cat 1 x 0"])
    with pytest.raises(ValueError, match=r"nan\.txt:1: cannot parse"):
        load_pretrained_vectors(path, VOCAB, 3)


def _train_step(emb, ids):
    model = keras.Sequential([emb, keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.train_on_batch(ids, np.ones((len(ids), 1), "float32"))


def test_pretrained_embedding_frozen_weights_unchanged(glove):
    matrix, _ = load_pretrained_vectors(glove, VOCAB, 3)
    emb = make_embedding(8, 3, matrix, trainable=False)
    ids = np.array([[4, 5, 6, 0]])
    _train_step(emb, ids)
    np.testing.assert_array_equal(emb.embeddings.numpy(), matrix)
    assert emb.trainable_weights == []


def test_pretrained_embedding_fine_tuned_changes(glove, tmp_path):
    matrix, _ = load_pretrained_vectors(glove, VOCAB, 3)
    emb = make_embedding(8, 3, matrix, trainable=True, name="src_emb")
    assert emb.get_config()["mask_zero"] is True
    np.testing.assert_array_equal(emb.embeddings.numpy(), matrix)
    _train_step(emb, np.array([[4, 5, 6]]))
    changed = emb.embeddings.numpy()
    assert not np.allclose(changed[4:7], matrix[4:7])
    np.testing.assert_array_equal(changed[7], matrix[7])  # unused row untouched
    # Round trip without the matrix in the config.
    assert "weights" not in emb.get_config()
    model = keras.Sequential([keras.Input((None,), dtype="int32"), emb])
    model.save(tmp_path / "emb.keras")
    loaded = keras.models.load_model(tmp_path / "emb.keras")
    np.testing.assert_array_equal(loaded.layers[0].embeddings.numpy(), changed)


def test_pretrained_embedding_shape_checked():
    with pytest.raises(ValueError, match=r"\(8, 3\)"):
        make_embedding(8, 3, np.zeros((7, 3)))


def test_pretrained_embedding_nearest_neighbours_exact():
    vocab = ["<pad>", "a", "b", "c", "d"]
    matrix = np.array([[0, 0], [1, 0], [2, 0.0], [1, 1], [0, -1]], "float32")
    result = nearest_neighbours(matrix, vocab, "a", k=3)
    assert [w for w, _ in result] == ["b", "c", "<pad>"]
    np.testing.assert_allclose([s for _, s in result], [1.0, np.sqrt(0.5), 0.0])
    assert len(nearest_neighbours(matrix, vocab, "a", k=100)) == 4
    with pytest.raises(KeyError, match="'zzz' is not in the vocabulary"):
        nearest_neighbours(matrix, vocab, "zzz")


def test_pretrained_embedding_export_projector(tmp_path):
    vocab = ["<pad>", "tab\tword", "x"]
    matrix = np.arange(6, dtype="float32").reshape(3, 2) / 4
    out = tmp_path / "proj"
    vec_path, meta_path = export_projector(matrix, vocab, out)
    rows = [l.split("\t") for l in open(vec_path).read().splitlines()]
    np.testing.assert_allclose(np.array(rows, float), matrix)
    assert open(meta_path).read().splitlines() == ["<pad>", "tab word", "x"]
    assert sorted(os.listdir(out)) == ["metadata.tsv", "vectors.tsv"]
    with pytest.raises(ValueError):
        export_projector(matrix[:2], vocab, out)


def test_pretrained_embedding_token_with_spaces_glove_840b(tmp_path):
    path = _write(tmp_path / "g840.txt", ["cat 1 0 0", ". . . 7 7 7", "dog 0 1 0"])
    vocab = ["<pad>", "cat", "dog", ". . ."]
    matrix, cov = load_pretrained_vectors(path, vocab, 3)
    assert cov["found"] == 3
    np.testing.assert_array_equal(matrix[3], [7, 7, 7])
