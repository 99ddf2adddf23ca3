"""In-graph tokenizers (``tf.Module``s) for the whole toolkit: SentencePiece sub-words and words.

Both tokenizers share one interface and run entirely in TensorFlow ops, so they work in ``tf.data``
maps, inside any ``tf.function`` and inside exported SavedModels (attach them as an attribute of the
exported ``tf.Module`` so their resources are tracked, and call them from its ``tf.function``s;
``tokenize`` is itself a ``tf.function`` with input signature ``tf.string [None]``, so a bare tokenizer
passed to ``tf.saved_model.save`` exports it too, while ``detokenize``/``id_to_piece`` accept dense or
ragged ids and are exported through the caller's functions):

* ``tokenize(texts: tf.string [batch]) -> tf.RaggedTensor int32 [batch, (pieces)]`` (applies
  :func:`pipelines.text.normalize` first; adds no BOS/EOS),
* ``detokenize(ids: int32 [batch, time], dense or ragged) -> tf.string [batch]`` (stops at the first
  EOS of a row and drops PAD/BOS/EOS),
* ``id_to_piece(ids) -> tf.string`` (same shape), ``vocab_size`` (Python int), ``lowercase`` (bool),
* ``save(directory)``, and :func:`load_tokenizer` to read a saved tokenizer back.

Special ids are those of :mod:`pipelines.vocab`: PAD 0, UNK 1, BOS 2, EOS 3.

Files written by ``save(directory)`` for a tokenizer named ``name``: ``<name>.json`` (type and
options; for the word tokenizer also the pieces), plus ``<name>.model`` (the serialized SentencePiece
``ModelProto``, usable by the ``sentencepiece`` command-line tools) for SentencePiece.
"""

import hashlib
import io
import itertools
import json
import os
import re
from collections import Counter
from typing import Iterable, Iterator, Sequence

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text
from sentencepiece import sentencepiece_model_pb2

from pipelines.atomic import write_atomically
from pipelines.text import normalize
from pipelines.vocab import BOS_ID, BOS_PIECE, EOS_ID, EOS_PIECE, PAD_ID, PAD_PIECE, SPECIAL_PIECES, UNK_ID, UNK_PIECE

SENTENCEPIECE = "sentencepiece"
_SPACE_PIECE = "\u2581"  # SentencePiece's whitespace mark, alone as a piece
WORD = "word"
_CHUNK_SIZE = 1024
# Words are runs of characters other than whitespace, punctuation (\p{P}) and symbols (\p{S});
# every punctuation or symbol character is a token of its own.
_WORD_DELIMITER = r"\s+|[\p{P}\p{S}]"
_KEEP_DELIMITER = r"[\p{P}\p{S}]"
# SentencePiece's messages when vocab_size is impossible for the data; group 1 is the bound.
_VOCAB_TOO_HIGH = re.compile(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)")
_VOCAB_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


def _module_name(name: str) -> str:
    """A valid ``tf.Module`` name (a Python identifier) derived from any file stem."""
    identifier = re.sub(r"\W", "_", name)
    return identifier if identifier.isidentifier() else f"_{identifier}"


def _write_config(directory, name, config: dict):
    write_atomically(
        os.path.join(directory, f"{name}.json"), json.dumps(config, ensure_ascii=False, indent=1).encode("utf-8")
    )


def _strip_special(ids, drop=None) -> tf.RaggedTensor:
    """int32 [batch, time] dense or ragged -> ragged rows cut at their first EOS, without PAD/BOS/EOS.

    `drop`: optional bool [batch, time] (dense `ids` only), further positions to leave out.
    """
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor(default_value=PAD_ID)
    ids = tf.convert_to_tensor(ids, dtype=tf.int32)
    before_eos = tf.math.cumsum(tf.cast(ids == EOS_ID, tf.int32), axis=1) == 0
    keep = before_eos & (ids != PAD_ID) & (ids != BOS_ID)
    if drop is not None:
        keep &= tf.logical_not(drop)
    # A flat boolean mask and int32 row lengths rather than tf.ragged.boolean_mask: the same rows, built from
    # ops the LiteRT converter has (its SentencePiece detokenizer kernel also reads int32 row splits).
    row_lengths = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    return tf.RaggedTensor.from_row_lengths(tf.boolean_mask(ids, keep), row_lengths, validate=False)


def _chunks(items: Iterable, size: int = _CHUNK_SIZE) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class _ObservedStream:
    """Iterates `items`, counting them and keeping the exception that ended them (SentencePiece's C++ trainer
    turns an exception raised by its sentence iterator into an opaque RuntimeError).
    """

    def __init__(self, items: Iterable[str]):
        self._items = iter(items)
        self.count = 0
        self.error = None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            item = next(self._items)
        except StopIteration:
            raise
        except Exception as error:
            self.error = error
            raise
        self.count += 1
        return item


def _normalized_sentences(sentences: Iterable[str], lowercase: bool) -> Iterator[str]:
    """Streams ``sentences`` through the in-graph :func:`normalize` (in chunks), as Python str."""
    for chunk in _chunks(sentences):
        for text in normalize(tf.constant(chunk, dtype=tf.string), lowercase=lowercase).numpy():
            yield text.decode("utf-8")


class SentencePieceTokenizer(tf.Module):
    """Sub-word tokenizer: a SentencePiece model (Kudo & Richardson 2018, "SentencePiece: A simple and
    language independent subword tokenizer and detokenizer for Neural Text Processing", EMNLP demo)
    run in-graph with ``tensorflow_text.SentencepieceTokenizer``.

    Args:
      model_proto: ``bytes``, a serialized SentencePiece ``ModelProto`` (as written by
        :func:`train_sentencepiece` or ``spm_train``) with PAD 0, UNK 1, BOS 2, EOS 3.
      lowercase: bool, default False; case-fold text before tokenising (must match training).
      name: str, default "sentencepiece"; file stem used by :meth:`save` (any string; the
        ``tf.Module`` name is derived from it).
    """

    def __init__(self, model_proto: bytes, lowercase: bool = False, name: str = SENTENCEPIECE):
        super().__init__(name=_module_name(name))
        self.basename = name
        self.model_proto = bytes(model_proto)
        self.lowercase = bool(lowercase)
        self.vocab_size = len(sentencepiece_model_pb2.ModelProto.FromString(self.model_proto).pieces)
        # The kernel resource is shared by op name when a SavedModel is loaded: without a name unique to the
        # model, a source and a target tokenizer exported together would both load the same model.
        resource_name = f"sentencepiece_{hashlib.sha256(self.model_proto).hexdigest()[:16]}"
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=self.model_proto, out_type=tf.int32, name=resource_name
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        """tf.string [batch] -> tf.RaggedTensor int32 [batch, (pieces)]; normalises first, no BOS/EOS."""
        return self._sentencepiece.tokenize(normalize(texts, lowercase=self.lowercase))

    def detokenize(self, ids):
        """int32 [batch, time] (dense or ragged) -> tf.string [batch]; stops at EOS, drops PAD/BOS/EOS."""
        return self._sentencepiece.detokenize(_strip_special(ids))

    def id_to_piece(self, ids):
        """int32 ids of any shape (dense or ragged) -> tf.string pieces of the same shape."""
        return self._sentencepiece.id_to_string(ids)

    def save(self, directory):
        """Writes ``<directory>/<basename>.model`` and ``<basename>.json``, each atomically."""
        write_atomically(os.path.join(directory, f"{self.basename}.model"), self.model_proto)
        _write_config(directory, self.basename, {"type": SENTENCEPIECE, "lowercase": self.lowercase})

    def on_device(self) -> "OnDeviceSentencePieceTokenizer":
        """The same model on tensorflow-text's LiteRT-compatible kernels (for `seq2seq export --format litert`)."""
        return OnDeviceSentencePieceTokenizer(self.model_proto, lowercase=self.lowercase, name=self.basename)


class OnDeviceSentencePieceTokenizer(tf.Module):
    """A SentencePiece model on ``tensorflow_text.FastSentencepieceTokenizer``, whose kernels exist in LiteRT.

    The graph of :class:`SentencePieceTokenizer` normalises with ``tensorflow_text.normalize_utf8`` and
    regular expressions, ops that LiteRT lacks. Here the normalisation moves into the SentencePiece model:
    a copy of it gets SentencePiece's own ``nmt_nfkc`` rule (``nmt_nfkc_cf`` when ``lowercase``): Unicode
    NFKC (plus case folding), whitespace runs collapsed and trimmed (the model's
    ``remove_extra_whitespaces``). On ordinary text the ids equal those of :class:`SentencePieceTokenizer`.
    They differ where the two normalisations differ (``nmt_nfkc`` also drops control and zero-width
    characters such as U+200B) and on characters the vocabulary lacks: the fast kernels have no byte
    fallback, so such a character becomes ``<unk>`` (id 1) instead of byte pieces, and byte pieces are
    dropped when detokenising. Only unigram models convert (tensorflow-text's converter has no BPE).

    Same interface as :class:`SentencePieceTokenizer` (``tokenize``, ``detokenize``, ``id_to_piece``,
    ``vocab_size``, ``lowercase``), with int32 row splits, which is what the LiteRT detokenizer kernel reads.

    Args:
      model_proto: bytes, the serialized SentencePiece ``ModelProto``.
      lowercase: bool, case-fold before tokenising (must match training).
      name: str, the tokenizer's file stem (for messages).
      detokenize_only: bool, default False; True for the model built from a word vocabulary
        (`WordTokenizer.on_device`), whose `tokenize` would not split text as `WordTokenizer` does.
      pieces: optional str per id for `id_to_piece` (default: the model's pieces).

    Raises:
      ValueError: the model is not a unigram model (the message names the tokenizer and its type).
    """

    def __init__(
        self,
        model_proto: bytes,
        lowercase: bool = False,
        name: str = SENTENCEPIECE,
        detokenize_only: bool = False,
        pieces: Sequence[str] | None = None,
    ):
        super().__init__(name=_module_name(f"{name}_on_device"))
        self.detokenize_only = bool(detokenize_only)
        model = sentencepiece_model_pb2.ModelProto.FromString(bytes(model_proto))
        model_type = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(model.trainer_spec.model_type)
        if model_type != "UNIGRAM":
            raise ValueError(
                f"tokenizer {name!r} is a SentencePiece {model_type.lower()} model; on-device (LiteRT) export "
                f"needs a unigram model (tokenizer.model_type: unigram)"
            )
        rule = "nmt_nfkc_cf" if lowercase else "nmt_nfkc"
        spec = sentencepiece_model_pb2.NormalizerSpec.FromString(
            sentencepiece.SentencePieceNormalizer(rule_name=rule).serialized_normalizer_spec()
        )
        model.normalizer_spec.name = spec.name
        model.normalizer_spec.precompiled_charsmap = spec.precompiled_charsmap
        model.normalizer_spec.remove_extra_whitespaces = True
        self.basename = name
        self.lowercase = bool(lowercase)
        self.vocab_size = len(model.pieces)
        self._sentencepiece = tf_text.FastSentencepieceTokenizer(model.SerializeToString())
        self._pieces = tf.constant(list(pieces or [piece.piece for piece in model.pieces]), tf.string)
        spaces = [i for i, piece in enumerate(model.pieces) if piece.piece == _SPACE_PIECE]
        self._space_id = spaces[0] if spaces else -1

    def tokenize(self, texts):
        """tf.string [batch] -> tf.RaggedTensor int32 [batch, (pieces)] (int32 row splits), no BOS/EOS.

        Raises:
          NotImplementedError: a `detokenize_only` twin (of a word vocabulary, see `WordTokenizer.on_device`).
        """
        if self.detokenize_only:
            raise NotImplementedError(f"{self.basename!r}: a word vocabulary's on-device twin only detokenises")
        return self._sentencepiece.tokenize(texts)

    def detokenize(self, ids):
        """int32 [batch, time] (dense or ragged) -> tf.string [batch]; stops at EOS, drops PAD/BOS/EOS.

        In LiteRT the detokenizer kernel writes as many strings as its output tensor was allocated with, so a
        LiteRT graph calls this with a batch whose size is fixed when the graph is traced.
        """
        ids = _strip_special(ids)
        # SentencePiece's decoder drops every whitespace piece at the start of the output; the fast kernel only the
        # first piece's leading space. Leaving out the leading bare "▁" pieces gives the same text.
        leading = tf.math.cumsum(tf.cast(tf.not_equal(ids.to_tensor(self._space_id), self._space_id), tf.int32), 1) == 0
        return self._sentencepiece.detokenize(_strip_special(ids.to_tensor(), drop=leading))

    def id_to_piece(self, ids):
        """int32 ids of any shape (dense or ragged) -> tf.string pieces of the same shape (a table lookup)."""
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(tf.gather(self._pieces, ids.flat_values))
        return tf.gather(self._pieces, ids)


class WordTokenizer(tf.Module):
    """Word-level tokenizer: normalise, split off punctuation/symbols (one token per character of
    Unicode category P or S), split on whitespace, and look words up in a ``tf.lookup.StaticHashTable``
    (unknown words -> UNK_ID). ``detokenize`` joins pieces with single spaces.

    Args:
      pieces: sequence of str, the vocabulary in id order; ``pieces[:4]`` must be
        ``<pad> <unk> <s> </s>`` (see :mod:`pipelines.vocab`).
      lowercase: bool, default True; case-fold text before tokenising (must match training).
      name: str, default "word"; file stem used by :meth:`save` (any string; the ``tf.Module`` name
        is derived from it).

    Raises:
      ValueError: if the special pieces are missing/misplaced or a piece is repeated.
    """

    def __init__(self, pieces: Sequence[str], lowercase: bool = True, name: str = WORD):
        super().__init__(name=_module_name(name))
        self.basename = name
        pieces = list(pieces)
        if tuple(pieces[: len(SPECIAL_PIECES)]) != SPECIAL_PIECES:
            raise ValueError(f"The first pieces must be {SPECIAL_PIECES}, got {pieces[: len(SPECIAL_PIECES)]}")
        if len(set(pieces)) != len(pieces):
            raise ValueError("Word vocabulary has repeated pieces")
        self.pieces = tuple(pieces)
        self.lowercase = bool(lowercase)
        self.vocab_size = len(pieces)
        self._pieces = tf.constant(pieces, dtype=tf.string)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self._pieces, tf.range(self.vocab_size, dtype=tf.int32)),
            default_value=UNK_ID,
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        """tf.string [batch] -> tf.RaggedTensor int32 [batch, (words)]; normalises first, no BOS/EOS."""
        words = split_words(texts, lowercase=self.lowercase)
        return tf.ragged.map_flat_values(self._table.lookup, words)

    def detokenize(self, ids):
        """int32 [batch, time] (dense or ragged) -> tf.string [batch] (pieces joined by spaces);
        stops at EOS, drops PAD/BOS/EOS.
        """
        return tf.strings.reduce_join(self.id_to_piece(_strip_special(ids)), axis=-1, separator=" ")

    def id_to_piece(self, ids):
        """int32 ids of any shape (dense or ragged) -> tf.string pieces; out-of-range ids -> ``<unk>``."""

        def lookup(flat_ids):
            valid = (flat_ids >= 0) & (flat_ids < self.vocab_size)
            return tf.gather(self._pieces, tf.where(valid, flat_ids, UNK_ID))

        if isinstance(ids, tf.RaggedTensor):
            return tf.ragged.map_flat_values(lookup, ids)
        return lookup(tf.convert_to_tensor(ids, dtype=tf.int32))

    def save(self, directory):
        """Writes ``<directory>/<basename>.json`` (options and pieces) atomically."""
        _write_config(
            directory, self.basename, {"type": WORD, "lowercase": self.lowercase, "pieces": list(self.pieces)}
        )

    def on_device(self) -> OnDeviceSentencePieceTokenizer:
        """A LiteRT-compatible detokenizer of this vocabulary (for `seq2seq export --format litert` of captioning).

        LiteRT has no string-join kernel, but its SentencePiece detokenizer joins pieces and turns the
        whitespace mark into spaces: a SentencePiece model whose pieces are "▁" + each word (the special pieces
        as control / unknown symbols) detokenises any ids to the words joined by single spaces, as `detokenize`
        does, except that `<unk>` comes out as SentencePiece's " ⁇ " (the captioning configs set
        `decode.block_unk`, so it is never emitted). Only `detokenize` and `id_to_piece` are available on it.
        """
        model = sentencepiece_model_pb2.ModelProto()
        model.trainer_spec.model_type = sentencepiece_model_pb2.TrainerSpec.UNIGRAM
        types = {UNK_PIECE: model.SentencePiece.UNKNOWN}
        for index, piece in enumerate(self.pieces):
            entry = model.pieces.add()
            special = index < len(SPECIAL_PIECES)
            entry.piece = piece if special else _SPACE_PIECE + piece
            entry.type = types.get(piece, model.SentencePiece.CONTROL) if special else model.SentencePiece.NORMAL
            entry.score = 0.0 if special else -float(index)
        return OnDeviceSentencePieceTokenizer(
            model.SerializeToString(),
            lowercase=self.lowercase,
            name=self.basename,
            detokenize_only=True,
            pieces=self.pieces,
        )


def split_words(texts, lowercase: bool):
    """In-graph word splitting used by :class:`WordTokenizer` and :func:`train_word_vocabulary`.

    Args:
      texts: tf.string [batch].
      lowercase: bool, passed to :func:`pipelines.text.normalize`.

    Returns:
      tf.RaggedTensor tf.string [batch, (words)]: whitespace-separated words with every punctuation
      or symbol character (Unicode P*/S*) as a separate token, e.g. "Hi, you!" -> [Hi , you !].
    """
    return tf_text.regex_split(normalize(texts, lowercase=lowercase), _WORD_DELIMITER, _KEEP_DELIMITER)


def _raise_vocab_size_error(error: RuntimeError, vocab_size: int, name: str):
    """Re-raises SentencePiece's vocabulary-size failures as a ValueError naming both sizes."""
    for pattern, problem, bound in (
        (_VOCAB_TOO_HIGH, "too large", "maximum"),
        (_VOCAB_TOO_LOW, "too small", "minimum"),
    ):
        match = pattern.search(str(error))
        if match:
            raise ValueError(
                f"vocab_size={vocab_size} is {problem} for the training data of {name!r} "
                f"(with these options): the {bound} possible size is {match.group(1)}"
            ) from error


def train_sentencepiece(
    sentences: Iterable[str],
    directory,
    name: str,
    vocab_size: int,
    model_type: str = "unigram",
    byte_fallback: bool = True,
    character_coverage: float = 1.0,
    lowercase: bool = False,
    input_sentence_size: int = 1_000_000,
) -> SentencePieceTokenizer:
    """Trains a SentencePiece model (Kudo & Richardson 2018; unigram LM: Kudo 2018, BPE: Sennrich et
    al. 2016) on a stream of sentences and saves it with :meth:`SentencePieceTokenizer.save`.

    Sentences are normalised with :func:`pipelines.text.normalize` (the normalisation used at
    tokenisation time) and fed through ``sentence_iterator`` (no temporary text file); SentencePiece's
    own normaliser is set to ``identity``. Ids: PAD 0, UNK 1, BOS 2, EOS 3.

    Args:
      sentences: iterable of str (streamed once).
      directory: output directory (created if missing).
      name: str, file stem of the saved files (e.g. "spa").
      vocab_size: int, total pieces including the 4 specials (and the 256 byte pieces when
        ``byte_fallback``).
      model_type: ``'unigram'`` (default) or ``'bpe'``.
      byte_fallback: bool, default True; unknown characters become UTF-8 byte pieces, so any text
        round-trips through tokenize/detokenize unchanged (after normalisation).
      character_coverage: float, default 1.0; fraction of characters covered by the vocabulary.
      lowercase: bool, default False; case-fold text (stored with the model, applied at tokenisation).
      input_sentence_size: int, default 1,000,000; at most this many sentences are sampled for training.

    Returns:
      The trained :class:`SentencePieceTokenizer`.

    Raises:
      ValueError: if ``model_type`` is unknown, or ``vocab_size`` is larger than the data allows
        (the message names the requested and the maximum possible size) or smaller than the
        specials + byte pieces + required characters (names the minimum possible size).
      RuntimeError: other SentencePiece training failures.
    """
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"model_type must be 'unigram' or 'bpe', got {model_type!r}")
    model = io.BytesIO()
    stream = _ObservedStream(_normalized_sentences(sentences, lowercase))
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=stream,
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            byte_fallback=byte_fallback,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            normalization_rule_name="identity",
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=PAD_PIECE,
            unk_piece=UNK_PIECE,
            bos_piece=BOS_PIECE,
            eos_piece=EOS_PIECE,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as error:
        if stream.error is not None:  # SentencePiece wraps the reader's own error (e.g. a DataError): re-raise it
            raise stream.error from None
        if stream.count == 0:
            raise ValueError(f"no training sentences for the {name!r} tokenizer: the training data is empty") from None
        _raise_vocab_size_error(error, vocab_size, name)
        raise
    tokenizer = SentencePieceTokenizer(model.getvalue(), lowercase=lowercase, name=name)
    tokenizer.save(directory)
    return tokenizer


def train_word_vocabulary(
    sentences: Iterable[str], directory, name: str, max_size: int, min_count: int = 1, lowercase: bool = True
) -> WordTokenizer:
    """Builds a word vocabulary from a stream of sentences and saves it with :meth:`WordTokenizer.save`.

    Words come from :func:`split_words` (the tokenizer's own in-graph splitting, run in chunks).
    Pieces are the 4 specials followed by the words seen at least ``min_count`` times, most frequent
    first (ties broken by the piece, so the result is deterministic), up to ``max_size`` pieces in all.

    Args:
      sentences: iterable of str (streamed once).
      directory: output directory (created if missing).
      name: str, file stem of the saved files (e.g. "spa").
      max_size: int, maximum vocabulary size including the 4 special pieces (must be > 4).
      min_count: int, default 1.
      lowercase: bool, default True.

    Returns:
      The :class:`WordTokenizer`.

    Raises:
      ValueError: if ``max_size`` <= 4 or ``min_count`` < 1.
    """
    if max_size <= len(SPECIAL_PIECES) or min_count < 1:
        raise ValueError(
            f"Need max_size > {len(SPECIAL_PIECES)} and min_count >= 1, got max_size={max_size}, min_count={min_count}"
        )
    counts = Counter()
    for chunk in _chunks(sentences):
        counts.update(split_words(tf.constant(chunk, dtype=tf.string), lowercase).flat_values.numpy())
    for special in SPECIAL_PIECES:
        counts.pop(special.encode("utf-8"), None)
    frequent = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
    words = [word.decode("utf-8") for word, _ in frequent[: max_size - len(SPECIAL_PIECES)]]
    tokenizer = WordTokenizer(list(SPECIAL_PIECES) + words, lowercase=lowercase, name=name)
    tokenizer.save(directory)
    return tokenizer


def load_tokenizer(directory, name: str):
    """Loads a tokenizer saved by ``save(directory)`` / ``train_*``.

    Args:
      directory: the directory passed to ``save``.
      name: the tokenizer's name (file stem).

    Returns:
      :class:`SentencePieceTokenizer` or :class:`WordTokenizer`.

    Raises:
      FileNotFoundError: if ``<name>.json`` (or ``<name>.model``) is missing.
      ValueError: if the stored type is unknown.
    """
    with open(os.path.join(directory, f"{name}.json"), encoding="utf-8") as file:
        config = json.load(file)
    if config["type"] == SENTENCEPIECE:
        with open(os.path.join(directory, f"{name}.model"), "rb") as file:
            return SentencePieceTokenizer(file.read(), lowercase=config["lowercase"], name=name)
    if config["type"] == WORD:
        return WordTokenizer(config["pieces"], lowercase=config["lowercase"], name=name)
    raise ValueError(f"Unknown tokenizer type {config['type']!r} in {directory}/{name}.json")
