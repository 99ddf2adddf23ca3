import json
import os
import re
import unicodedata

import pytest
import tensorflow as tf

from pipelines.tokenizers import (
    SentencePieceTokenizer,
    WordTokenizer,
    load_tokenizer,
    split_words,
    train_sentencepiece,
    train_word_vocabulary,
)
from pipelines.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIAL_PIECES, UNK_ID

CORPUS = [
    "¿Dónde está la estación de tren?",
    "La canción es muy bonita.",
    "Tengo un perro y un gato.",
    "El niño come una manzana.",
    "Mañana vamos a la playa.",
    "¿Cómo te llamas?",
    "Me llamo Tomás.",
    "Hace mucho frío en invierno.",
    "Ella lee un libro en el jardín.",
    "Nosotros vivimos en España.",
    "El tren llega a las tres.",
    "¡Qué día tan bonito!",
    "Mi hermano trabaja en un hospital.",
    "Los pájaros cantan por la mañana.",
    "¿Quieres un café con leche?",
    "No entiendo la pregunta.",
] * 4
SP_VOCAB = 340
TEXTS = ["¿Dónde está la canción?", "Un perro come."]


def as_lists(ragged):
    return ragged.to_list()


def decoded(tensor):
    return [text.decode("utf-8") for text in tensor.numpy()]


@pytest.fixture(scope="module")
def sp_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sp")


@pytest.fixture(scope="module")
def sentencepiece_tokenizer(sp_dir):
    return train_sentencepiece(iter(CORPUS), sp_dir, "spa", SP_VOCAB)


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory):
    return train_word_vocabulary(iter(CORPUS), tmp_path_factory.mktemp("word"), "spa-words", max_size=60)


@pytest.fixture(params=["sentencepiece", "word"])
def tokenizer(request, sentencepiece_tokenizer, word_tokenizer):
    return {"sentencepiece": sentencepiece_tokenizer, "word": word_tokenizer}[request.param]


def test_sentencepiece_vocabulary_and_special_ids(sentencepiece_tokenizer):
    assert sentencepiece_tokenizer.vocab_size == SP_VOCAB
    pieces = decoded(sentencepiece_tokenizer.id_to_piece(tf.constant([PAD_ID, UNK_ID, BOS_ID, EOS_ID, 4])))
    assert pieces == list(SPECIAL_PIECES) + ["<0x00>"]


def test_composed_and_decomposed_input_give_same_ids(tokenizer):
    texts = [unicodedata.normalize("NFC", TEXTS[0]), unicodedata.normalize("NFD", TEXTS[0])]
    ids = as_lists(tokenizer.tokenize(texts))
    assert ids[0] == ids[1]
    assert UNK_ID not in ids[0]


def test_tokenize_output_type_and_no_bos_eos(tokenizer):
    ids = tokenizer.tokenize(tf.constant(TEXTS))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32 and ids.shape[0] == 2
    flat = ids.flat_values.numpy().tolist()
    assert BOS_ID not in flat and EOS_ID not in flat and PAD_ID not in flat


def test_sentencepiece_round_trip_and_byte_fallback_for_unseen_characters(sentencepiece_tokenizer):
    texts = TEXTS + ["日本語 ☃ Ωmega €5 🙂", "Żółć x"]
    ids = sentencepiece_tokenizer.tokenize(texts)
    assert UNK_ID not in ids.flat_values.numpy().tolist()
    assert decoded(sentencepiece_tokenizer.detokenize(ids)) == texts


def test_sentencepiece_bpe_model_type(sp_dir):
    tokenizer = train_sentencepiece(iter(CORPUS), sp_dir, "spa-bpe", SP_VOCAB, model_type="bpe")
    assert decoded(tokenizer.detokenize(tokenizer.tokenize(TEXTS))) == TEXTS
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(iter(CORPUS), sp_dir, "bad", SP_VOCAB, model_type="char")


def test_too_large_vocabulary_names_requested_and_maximum_size(sp_dir):
    with pytest.raises(ValueError, match=r"vocab_size=5000 .*maximum possible size is \d+") as error:
        train_sentencepiece(iter(CORPUS), sp_dir, "too-big", 5000)
    maximum = int(re.search(r"maximum possible size is (\d+)", str(error.value)).group(1))
    assert SP_VOCAB < maximum < 5000
    assert train_sentencepiece(iter(CORPUS), sp_dir, "largest", maximum).vocab_size == maximum


def test_too_small_vocabulary_names_requested_and_minimum_size(sp_dir):
    with pytest.raises(ValueError, match=r"vocab_size=100 .*minimum possible size is \d+") as error:
        train_sentencepiece(iter(CORPUS), sp_dir, "too-small", 100)
    minimum = int(re.search(r"minimum possible size is (\d+)", str(error.value)).group(1))
    assert 4 + 256 < minimum < SP_VOCAB


def test_detokenize_stops_at_eos_and_drops_specials(tokenizer):
    pieces = as_lists(tokenizer.tokenize(["perro gato"]))[0]
    expected = decoded(tokenizer.detokenize(tf.ragged.constant([pieces], dtype=tf.int32)))
    dense = tf.constant(
        [[BOS_ID] + pieces + [EOS_ID] + pieces + [PAD_ID], pieces + [PAD_ID] * (len(pieces) + 3)], dtype=tf.int32
    )
    ragged = tf.ragged.constant([[BOS_ID] + pieces + [EOS_ID, 7], pieces], dtype=tf.int32)
    assert decoded(tokenizer.detokenize(dense)) == expected * 2
    assert decoded(tokenizer.detokenize(ragged)) == expected * 2
    assert decoded(tokenizer.detokenize(tf.constant([[EOS_ID, 5]]))) == [""]


def test_word_tokenizer_exact_ids_and_detokenize():
    tokenizer = WordTokenizer(list(SPECIAL_PIECES) + ["hello", ",", "world", "!", "don", "'", "t"])
    ids = tokenizer.tokenize(["Hello,   WORLD!", "don't panic", ""])
    assert as_lists(ids) == [[4, 5, 6, 7], [8, 9, 10, UNK_ID], []]
    assert decoded(tokenizer.detokenize(ids)) == ["hello , world !", "don ' t <unk>", ""]
    assert decoded(tokenizer.id_to_piece(tf.constant([4, 0, 99]))) == ["hello", "<pad>", "<unk>"]
    assert tokenizer.vocab_size == 11


def test_word_tokenizer_rejects_bad_vocabularies():
    with pytest.raises(ValueError, match="first pieces"):
        WordTokenizer(["hello", "<pad>", "<unk>", "<s>", "</s>"])
    with pytest.raises(ValueError, match="repeated"):
        WordTokenizer(list(SPECIAL_PIECES) + ["a", "a"])


def test_split_words_separates_punctuation():
    words = split_words(tf.constant(["¿Dónde  está?", "Es 5€, ¡ya!"]), lowercase=True)
    assert [[word.decode("utf-8") for word in row] for row in words.to_list()] == [
        ["¿", "dónde", "está", "?"],
        ["es", "5", "€", ",", "¡", "ya", "!"],
    ]


def test_train_word_vocabulary_orders_by_count_then_piece(tmp_path):
    sentences = ["b a.", "A c!", "b d", "a"]
    tokenizer = train_word_vocabulary(sentences, tmp_path, "w", max_size=7, min_count=1)
    assert tokenizer.pieces == SPECIAL_PIECES + ("a", "b", "!")
    frequent = train_word_vocabulary(sentences, tmp_path, "w2", max_size=100, min_count=2)
    assert frequent.pieces == SPECIAL_PIECES + ("a", "b")
    cased = train_word_vocabulary(sentences, tmp_path, "w3", max_size=100, lowercase=False)
    assert cased.pieces == SPECIAL_PIECES + ("a", "b", "!", ".", "A", "c", "d")
    with pytest.raises(ValueError, match="max_size"):
        train_word_vocabulary(sentences, tmp_path, "w4", max_size=4)


def test_save_and_load_give_same_ids(tokenizer, tmp_path):
    tokenizer.save(tmp_path)
    loaded = load_tokenizer(tmp_path, tokenizer.basename)
    assert type(loaded) is type(tokenizer)
    assert loaded.vocab_size == tokenizer.vocab_size and loaded.lowercase == tokenizer.lowercase
    assert as_lists(loaded.tokenize(TEXTS)) == as_lists(tokenizer.tokenize(TEXTS))
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp")]
    with open(tmp_path / f"{tokenizer.basename}.json", encoding="utf-8") as file:
        assert json.load(file)["type"] in ("sentencepiece", "word")


def test_trained_files_are_written(sp_dir, sentencepiece_tokenizer):
    assert sorted(name for name in os.listdir(sp_dir) if name.startswith("spa.")) == ["spa.json", "spa.model"]
    assert isinstance(load_tokenizer(sp_dir, "spa"), SentencePieceTokenizer)


def test_load_unknown_type_raises(tmp_path):
    (tmp_path / "x.json").write_text('{"type": "bytes", "lowercase": false}', encoding="utf-8")
    with pytest.raises(ValueError, match="Unknown tokenizer type"):
        load_tokenizer(tmp_path, "x")


class _Exported(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        ids = self.tokenizer.tokenize(texts)
        return ids.to_tensor(default_value=PAD_ID), self.tokenizer.detokenize(ids)


def test_inside_tf_function_and_saved_model_round_trip(tokenizer, tmp_path):
    eager_ids = tokenizer.tokenize(TEXTS)
    eager_text = tokenizer.detokenize(eager_ids)
    module = _Exported(tokenizer)
    ids, text = module(tf.constant(TEXTS))
    assert ids.numpy().tolist() == eager_ids.to_tensor().numpy().tolist()
    assert decoded(text) == decoded(eager_text)

    tf.saved_model.save(module, str(tmp_path / "wrapped"))
    loaded_ids, loaded_text = tf.saved_model.load(str(tmp_path / "wrapped"))(tf.constant(TEXTS))
    assert loaded_ids.numpy().tolist() == ids.numpy().tolist()
    assert decoded(loaded_text) == decoded(text)

    tf.saved_model.save(tokenizer, str(tmp_path / "bare"))
    bare = tf.saved_model.load(str(tmp_path / "bare"))
    assert as_lists(bare.tokenize(tf.constant(TEXTS))) == as_lists(eager_ids)
