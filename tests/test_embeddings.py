"""Tests for seq2seq.word_vectors."""

import gzip
import os

import numpy as np
import pytest

from seq2seq.word_vectors import export_projector, load_pretrained_vectors, nearest_neighbours

VOCAB = ["<pad>", "<unk>", "<s>", "</s>", "cat", "dog", "Paris", "zebra"]


def _write(path, lines):
    path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    return path


@pytest.fixture
def glove(tmp_path):
    return _write(
        tmp_path / "glove.txt",
        [
            "the 0.1 0.2 0.3",
            "cat 1 0 0",
            "dog 0 1 0",
            "paris 0 0 1",
            "cat 9 9 9",  # duplicate: first occurrence wins
            "unrelated 5 5 5",
        ],
    )


def test_pretrained_embedding_coverage_counts_glove(glove):
    matrix, cov = load_pretrained_vectors(glove, VOCAB, 3)
    assert matrix.shape == (8, 3) and matrix.dtype == np.float32
    assert cov == {"found": 3, "total": 7, "fraction": 3 / 7, "exact": 2, "lowercase": 1}
    np.testing.assert_array_equal(matrix[4], [1, 0, 0])
    np.testing.assert_array_equal(matrix[6], [0, 0, 1])  # Paris -> paris
    assert not matrix[0].any()  # PAD row zeros
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


# --------------------------------------------------------------------------------------------------
# Pretrained embeddings wired into training (model.embedding.*) and `seq2seq embeddings`

import logging  # noqa: E402

from conftest import _SYNTHETIC_LEXICON, write_synthetic_parallel  # noqa: E402

from seq2seq import runner  # noqa: E402
from seq2seq.config import ConfigError, config_from_dict  # noqa: E402
from seq2seq.embedding_tools import inspect_embeddings  # noqa: E402
from seq2seq.model.seq2seq import build_model  # noqa: E402
from seq2seq.word_vectors import apply_pretrained_embeddings, lookup_words, tokenizer_pieces  # noqa: E402,E501

DIM = 8
ENGLISH = sorted(set(_SYNTHETIC_LEXICON.values()))  # 17 words
SPANISH = sorted(_SYNTHETIC_LEXICON)  # 18 words


def _vectors(words, seed):
    """Random unit-ish vectors; 'dog' is 'cat' plus a little noise (their cosine is printed below)."""
    rng = np.random.default_rng(seed)
    table = {w: rng.normal(size=DIM).astype("float32") for w in words}
    if "cat" in table:
        table["dog"] = table["cat"] + 0.05 * rng.normal(size=DIM).astype("float32")
    return table


def _write_vectors(path, table, header=False):
    lines = [f"{len(table)} {DIM}"] if header else []
    lines += [w + " " + " ".join(f"{v:.6f}" for v in vec) for w, vec in table.items()]
    _write(path, lines)
    return {w: np.asarray([float(f"{v:.6f}") for v in vec], "float32") for w, vec in table.items()}


def _train_values(source, target, **sections):
    values = {
        "task": "translation",
        "data": {
            "format": "parallel",
            "source_file": source,
            "target_file": target,
            "lowercase": True,
            "validation_fraction": 0.05,
            "test_fraction": 0.05,
            "max_source_length": 12,
            "max_target_length": 12,
        },
        "tokenizer": {"kind": "word", "source_vocab_size": 64, "target_vocab_size": 64},
        "model": {"embedding": {"dim": DIM}, "encoder": {"units": 8}, "decoder": {"units": 8}},
        "train": {
            "batch_size": 32,
            "max_steps": 6,
            "eval_every": 6,
            "checkpoint_every": 6,
            "validation_batches": 1,
            "learning_rate": 0.05,
        },
        "decode": {"beam_size": 1, "strategy": "greedy", "batch_size": 64, "max_length": 14},
    }
    for section, keys in sections.items():
        node = values
        for part in section.split("__"):
            node = node.setdefault(part, {})
        node.update(keys)
    return values


@pytest.fixture(scope="module")
def frozen_model(tmp_path_factory):
    """A word-level model trained 6 steps with frozen pretrained source and target vectors."""
    folder = tmp_path_factory.mktemp("pretrained")
    source, target = write_synthetic_parallel(str(folder), pairs=200)
    target_vectors = _write_vectors(folder / "en.vec", _vectors(ENGLISH + ["unused"], 0), header=True)
    source_vectors = _write_vectors(folder / "es.txt", _vectors(SPANISH[:10], 1))
    values = _train_values(
        source,
        target,
        model__embedding={
            "pretrained": str(folder / "en.vec"),
            "source_pretrained": str(folder / "es.txt"),
            "trainable": False,
        },
    )
    handler = _Records()
    logging.getLogger("seq2seq").addHandler(handler)
    logging.getLogger("seq2seq").setLevel(logging.INFO)
    try:
        runner.train(config_from_dict(values), str(folder / "model"), verbose=0)
    finally:
        logging.getLogger("seq2seq").removeHandler(handler)
    return str(folder / "model"), target_vectors, source_vectors, handler.messages


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.slow
def test_pretrained_embedding_frozen_through_training(frozen_model):
    model_dir, target_vectors, source_vectors, messages = frozen_model
    _, model, source_tok, target_tok = _unpack(runner.load(model_dir))
    assert int(model.optimizer.iterations) == 6
    target_pieces = tokenizer_pieces(target_tok)
    source_pieces = tokenizer_pieces(source_tok)
    assert len(target_pieces) == 4 + len(ENGLISH) + 1  # specials, words, "."
    target_matrix = model.decoder.embedding.embeddings.numpy()
    source_matrix = model.encoder.embedding.embeddings.numpy()
    # Frozen: after training the rows are still exactly the file's vectors; PAD stays zero.
    for word in ENGLISH:
        np.testing.assert_array_equal(target_matrix[target_pieces.index(word)], target_vectors[word])
    for word in SPANISH[:10]:
        np.testing.assert_array_equal(source_matrix[source_pieces.index(word)], source_vectors[word])
    assert not target_matrix[0].any() and not source_matrix[0].any()
    assert not model.decoder.embedding.trainable and not model.encoder.embedding.trainable
    # Coverage: found / vocabulary without PAD (3 specials + words + ".").
    assert any("model.embedding.pretrained: 17/21 vocabulary entries found" in m for m in messages), messages
    assert any("model.embedding.source_pretrained: 10/22 vocabulary entries found" in m for m in messages)


@pytest.mark.slow
def test_pretrained_embedding_nearest_neighbours_and_projector(frozen_model, tmp_path):
    model_dir, target_vectors, _, _ = frozen_model
    cat, dog = target_vectors["cat"], target_vectors["dog"]
    cosine = float(cat @ dog / np.linalg.norm(cat) / np.linalg.norm(dog))
    lines = list(inspect_embeddings(model_dir, "target", ["cat", "zzz"], 3, str(tmp_path / "proj")))
    assert lines[0] == f"target embeddings: 22 pieces x {DIM} dimensions"
    assert lines[1] == "cat (target, piece 'cat'):"
    assert lines[2] == f"  dog\t{cosine:.4f}"
    assert len(lines) == 1 + 1 + 3 + 1 + 1
    assert lines[5] == "'zzz' is not in the target vocabulary"
    assert lines[6].startswith("projector: ")
    metadata = (tmp_path / "proj" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    vectors = (tmp_path / "proj" / "vectors.tsv").read_text(encoding="utf-8").splitlines()
    assert len(metadata) == len(vectors) == 22 and metadata[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert len(vectors[5].split("\t")) == DIM


@pytest.mark.slow
def test_pretrained_embedding_cli_embeddings_command(frozen_model, capsys):
    from seq2seq.cli import main

    model_dir = frozen_model[0]
    assert (
        main(["--quiet", "embeddings", "--model-dir", model_dir, "--side", "source", "--word", "gato", "-k", "2"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "gato (source, piece 'gato'):" and len(out) == 4


def test_pretrained_embedding_lookup_strips_sentencepiece_marker():
    assert lookup_words(["<pad>", "\u2581casa", "sa", "\u2581", "x\u2581"]) == ["<pad>", "casa", "sa", "", "x\u2581"]


def _word_tok(words, name):
    from pipelines.tokenizers import WordTokenizer

    return WordTokenizer(["<pad>", "<unk>", "<s>", "</s>"] + list(words), name=name)


def test_pretrained_embedding_applied_to_built_model(tmp_path, caplog):
    vectors = _write_vectors(tmp_path / "en.txt", _vectors(["cat", "dog", "house"], 0))
    values = _train_values(
        "s", "t", model__embedding={"pretrained": "en.txt", "trainable": False}, data={"data_dir": str(tmp_path)}
    )
    config = config_from_dict(values)
    source_tok, target_tok = _word_tok(["gato"], "source"), _word_tok(["cat", "Dog", "tree"], "target")
    model = build_model(config, source_tok.vocab_size, target_tok.vocab_size)
    before = model.encoder.embedding.embeddings.numpy().copy()
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        coverage = apply_pretrained_embeddings(model, config, source_tok, target_tok)  # relative path: data_dir
    info = coverage["model.embedding.pretrained"]
    assert (info["found"], info["total"], info["exact"], info["lowercase"]) == (2, 6, 1, 1)
    assert "model.embedding.pretrained: 2/6 vocabulary entries found" in caplog.text
    matrix = model.decoder.embedding.embeddings.numpy()
    np.testing.assert_array_equal(matrix[4], vectors["cat"])
    np.testing.assert_array_equal(matrix[5], vectors["dog"])  # "Dog" found lowercased
    assert not matrix[0].any() and not model.decoder.embedding.trainable
    np.testing.assert_array_equal(model.encoder.embedding.embeddings.numpy(), before)  # no source file
    assert model.encoder.embedding.trainable


def test_pretrained_embedding_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="model.embedding.share.*tokenizer.shared"):
        config_from_dict({"data": {"path": "x.tsv"}, "model": {"embedding": {"share": True}}})
    _write(tmp_path / "wrong.txt", ["cat 1 2 3"])
    tok = _word_tok(["cat"], "target")
    config = config_from_dict(_train_values("s", "t", model__embedding={"pretrained": str(tmp_path / "wrong.txt")}))
    model = build_model(config, tok.vocab_size, tok.vocab_size)
    with pytest.raises(ConfigError, match=r"model.embedding.pretrained: .*wrong.txt:1: expected 8 values"):
        apply_pretrained_embeddings(model, config, tok, tok)
    config.model.embedding.pretrained = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="model.embedding.pretrained"):
        apply_pretrained_embeddings(model, config, tok, tok)


@pytest.mark.slow
def test_pretrained_embedding_shared_sentencepiece_tied_fine_tuned(tmp_path, caplog):
    """tokenizer.shared + model.embedding.share + tie_output, SentencePiece pieces, fine-tuned vectors."""
    source, target = write_synthetic_parallel(str(tmp_path), pairs=300)
    table = _write_vectors(tmp_path / "both.txt", _vectors(ENGLISH + SPANISH, 2))
    values = _train_values(
        source,
        target,
        tokenizer={"kind": "sentencepiece", "shared": True, "byte_fallback": False, "source_vocab_size": 50},
        model__embedding={
            "pretrained": str(tmp_path / "both.txt"),
            "share": True,
            "tie_output": True,
            "trainable": True,
        },
    )
    model_dir = str(tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        runner.train(config_from_dict(values), model_dir, verbose=0)
    tok_dir = os.path.join(model_dir, "tokenizers")
    assert (
        open(os.path.join(tok_dir, "source.model"), "rb").read()
        == open(os.path.join(tok_dir, "target.model"), "rb").read()
    )
    _, model, source_tok, target_tok = _unpack(runner.load(model_dir))
    assert model.encoder.embedding is model.decoder.embedding and model.decoder.embedding.trainable
    pieces = tokenizer_pieces(target_tok)
    words = lookup_words(pieces)
    found = [i for i in range(1, len(pieces)) if words[i] in table]  # the file has lowercase words only
    # Whole words are pieces "▁word": they are found only because the marker is stripped.
    assert any(pieces[i].startswith("\u2581") for i in found)
    assert f"model.embedding.pretrained: {len(found)}/{len(pieces) - 1} vocabulary entries found" in caplog.text
    matrix = model.decoder.embedding.embeddings.numpy()
    changed = [i for i in found if not np.array_equal(matrix[i], table[words[i]])]
    assert changed  # fine-tuned: the vectors moved during training


def test_word_lookup_prefers_the_word_initial_sentencepiece_piece():
    from seq2seq.embedding_tools import _find

    pieces = ["<pad>", "<unk>", "<s>", "</s>", "house", "\u2581house", "cat"]
    assert _find("house", pieces) == "\u2581house"  # the whole word, not the suffix piece "house"
    assert _find("cat", pieces) == "cat"  # word vocabularies have no '▁' pieces
    assert _find("\u2581house", pieces) == "\u2581house"
    assert _find("dog", pieces) is None


def _unpack(loaded):
    """(config, model, source tokenizer, target tokenizer) of a loaded translation model."""
    return loaded.config, loaded.model, loaded.tokenizers["source"], loaded.tokenizers["target"]
