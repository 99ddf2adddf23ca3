import unicodedata

import tensorflow as tf

from pipelines.text import normalize


def decoded(tensor):
    return [text.decode("utf-8") for text in tensor.numpy().reshape(-1)]


def test_composed_and_decomposed_unicode_normalise_identically():
    word = "Canción añeja für Müller"
    nfc, nfd = unicodedata.normalize("NFC", word), unicodedata.normalize("NFD", word)
    assert nfc != nfd
    assert decoded(normalize([nfc, nfd])) == [nfc, nfc]


def test_bom_carriage_return_and_whitespace_runs():
    texts = ["\ufeffHello \t world\r", "  a\r\nb  ", "", " \t\r\n ", "x\u00a0?\u202f!\u3000y\u2028z"]
    assert decoded(normalize(texts)) == ["Hello world", "a b", "", "", "x ? ! y z"]


def test_nfkc_compatibility_forms():
    assert decoded(normalize(["ﬁne ＡＢＣ ½"])) == ["fine ABC 1⁄2"]


def test_lowercase_uses_unicode_case_folding():
    texts = ["ÉCOLE Straße ΣΟΦΊΑ", "Hello"]
    assert decoded(normalize(texts, lowercase=True)) == ["école strasse σοφία", "hello"]
    assert decoded(normalize(texts)) == ["ÉCOLE Straße ΣΟΦΊΑ", "Hello"]


def test_shape_is_preserved():
    assert normalize("  a  b ").shape == ()
    assert normalize("  a  b ").numpy() == b"a b"
    assert normalize(tf.constant([["A  b"], ["c "]])).shape == (2, 1)


def test_runs_inside_tf_function():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def run(texts):
        return normalize(texts, lowercase=True)

    assert decoded(run(tf.constant(["  Ça   VA\r"]))) == ["ça va"]
