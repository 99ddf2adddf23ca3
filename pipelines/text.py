"""In-graph text normalisation shared by training-data preparation and exported SavedModels.

Only TensorFlow / TensorFlow Text ops are used, so :func:`normalize` runs inside ``tf.data`` maps and
``tf.function`` graphs (and therefore inside a SavedModel) with no Python per example.
"""

import tensorflow as tf
import tensorflow_text as tf_text

# U+FEFF (byte-order mark / zero-width no-break space) anywhere in the string.
_BOM_PATTERN = "\ufeff"
# RE2: \s is ASCII whitespace; \p{Z} adds Unicode separators (U+00A0, U+202F, U+2028, U+3000, ...);
# \x{0B} (vertical tab) and \x{85} (next line) are whitespace controls outside both classes.
_WHITESPACE_RUN = r"[\s\p{Z}\x{0B}\x{85}]+"
_EDGE_SPACE = r"^ | $"


def normalize(texts, lowercase=False):
    """Normalise UTF-8 text in-graph: the single normalisation used for training data and export.

    Steps, in order: remove every U+FEFF (UTF-8 BOM); Unicode NFKC normalisation
    (``tensorflow_text.normalize_utf8``, Unicode Standard Annex #15), so composed (NFC) and
    decomposed (NFD) spellings, full-width forms and no-break spaces become identical; optionally
    Unicode case folding (``tensorflow_text.case_fold_utf8``, NFKC_Casefold of Unicode 3.13), which
    lower-cases beyond ASCII (e.g. "Ä" -> "ä", "ß" -> "ss"); every run of whitespace (ASCII
    whitespace including ``\\r``/``\\n``/``\\t``, and Unicode separators) becomes one ASCII space;
    leading and trailing spaces are removed.

    Args:
      texts: ``tf.string`` tensor of any shape (typically scalar or ``[batch]``), or anything
        convertible to one (Python ``str``/``bytes`` or a list of them). Must be valid UTF-8.
      lowercase: Python bool, default False; apply Unicode case folding.

    Returns:
      ``tf.string`` tensor with the same shape as ``texts``.

    Raises:
      tf.errors.InvalidArgumentError: (at run time) if a string is not valid UTF-8.
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = tf.strings.regex_replace(texts, _BOM_PATTERN, "")
    texts = tf_text.normalize_utf8(texts, "NFKC")
    if lowercase:
        texts = tf_text.case_fold_utf8(texts)
    texts = tf.strings.regex_replace(texts, _WHITESPACE_RUN, " ")
    return tf.strings.regex_replace(texts, _EDGE_SPACE, "")
