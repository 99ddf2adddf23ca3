"""Pretrained word vectors: reading vector files, filling a model's embeddings, neighbours, projector export.

Reads word2vec text files (Mikolov et al. 2013, "Efficient Estimation of Word
Representations in Vector Space"; first line ``"N D"``) and GloVe files
(Pennington et al. 2014, no header): one ``word v_1 ... v_D`` per line,
separated by single spaces.
"""

from __future__ import annotations

import gzip
import logging
import os

import numpy as np
import tensorflow as tf

from pipelines.atomic import write_atomically
from pipelines.vocab import PAD_ID
from seq2seq.config import Config, ConfigError, resolve_path

log = logging.getLogger(__name__)


def _open_text(path):
    path = os.fspath(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "r", encoding="utf-8", errors="replace")


def _is_word2vec_header(parts):
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def load_pretrained_vectors(path, vocabulary, dim, seed=0):
    """Build an embedding matrix for ``vocabulary`` from a text vector file.

    The file is streamed line by line (only matching lines are parsed), so
    multi-gigabyte GloVe/word2vec files never have to fit in memory.
    ``.gz`` files are read transparently.

    Lookup order for each vocabulary entry ``w``: the exact form ``w``; then
    the lowercase form ``w.lower()`` (for cased vocabularies and uncased
    vector files). If a word appears twice in the file the first occurrence
    wins.

    Args:
        path: word2vec text (header line ``"N D"`` skipped) or GloVe file.
        vocabulary: list of str, index ``i`` -> token (``PAD_ID`` = 0 first).
        dim: int, the expected vector dimension.
        seed: int (default 0) for the random rows.

    Returns:
        ``(matrix, coverage)``: ``matrix`` float32 ``[len(vocabulary), dim]``
        where rows without a vector are drawn from ``N(0, σ²)`` with ``σ`` the
        standard deviation of the found vectors (``1/sqrt(dim)`` if none was
        found) and the ``PAD_ID`` row is zeros; ``coverage`` a dict
        ``{"found", "total", "fraction", "exact", "lowercase"}`` counted over
        the vocabulary without the PAD entry (``found = exact + lowercase``,
        ``fraction = found / total``).

    Raises:
        ValueError: ``dim <= 0``, empty vocabulary, a line with fewer than
            ``dim`` values (or, for the first vector line, a different
            number; later longer lines are read as tokens containing spaces,
            as in GloVe 840B), values that are not numbers, or a
            word2vec header announcing another dimension — the message names
            ``file:line``.
        OSError / FileNotFoundError: unreadable file.
    """
    dim = int(dim)
    vocabulary = list(vocabulary)
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}.")
    if not vocabulary:
        raise ValueError("vocabulary is empty.")

    exact_index, lower_index = {}, {}
    for i, word in enumerate(vocabulary):
        if i == PAD_ID:
            continue
        exact_index.setdefault(word, []).append(i)
        lower_index.setdefault(word.lower(), []).append(i)

    vocab_size = len(vocabulary)
    matrix = np.zeros((vocab_size, dim), dtype=np.float32)
    exact_found = np.zeros(vocab_size, dtype=bool)
    lower_found = np.zeros(vocab_size, dtype=bool)

    name = os.fspath(path)
    first_data_line = True
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip()
            if not line:
                continue
            if lineno == 1 and _is_word2vec_header(line.split()):
                header_dim = int(line.split()[1])
                if header_dim != dim:
                    raise ValueError(f"{name}:1: word2vec header announces dimension {header_dim}, expected {dim}.")
                continue
            word, _, rest = line.partition(" ")
            n = rest.count(" ") + 1 if rest else 0
            if n != dim:
                if n < dim or first_data_line:
                    raise ValueError(f"{name}:{lineno}: expected {dim} values after the word, found {n}.")
                # A token containing spaces (a few exist in GloVe 840B).
                word, rest = line.rsplit(" ", dim)[0], line.split(" ", n - dim + 1)[-1]
            first_data_line = False
            exact_rows = exact_index.get(word)
            lower_rows = lower_index.get(word)
            if exact_rows is None and lower_rows is None:
                continue
            try:
                vector = np.asarray(rest.split(" "), dtype=np.float32)
            except ValueError as err:
                raise ValueError(f"{name}:{lineno}: cannot parse the vector of {word!r}: {err}") from None
            for i in exact_rows or ():
                if not exact_found[i]:
                    matrix[i] = vector
                    exact_found[i] = True
            for i in lower_rows or ():
                if not exact_found[i] and not lower_found[i]:
                    matrix[i] = vector
                    lower_found[i] = True

    lower_found &= ~exact_found
    found = exact_found | lower_found
    if found.any():
        sigma = float(matrix[found].std()) or 1.0 / np.sqrt(dim)
    else:
        sigma = 1.0 / np.sqrt(dim)
    rng = np.random.default_rng(seed)
    missing = ~found
    missing[PAD_ID] = False
    matrix[missing] = rng.normal(0.0, sigma, size=(int(missing.sum()), dim))
    if PAD_ID < vocab_size:
        matrix[PAD_ID] = 0.0

    total = vocab_size - (1 if PAD_ID < vocab_size else 0)
    n_found = int(found.sum())
    coverage = {
        "found": n_found,
        "total": total,
        "fraction": (n_found / total) if total else 0.0,
        "exact": int(exact_found.sum()),
        "lowercase": int(lower_found.sum()),
    }
    return matrix, coverage


def _matrix_and_vocabulary(matrix, vocabulary, dtype):
    """(matrix as a 2-D array of `dtype`, vocabulary as a list); ValueError when their row counts differ."""
    matrix = np.asarray(matrix, dtype=dtype)
    vocabulary = list(vocabulary)
    if matrix.ndim != 2 or matrix.shape[0] != len(vocabulary):
        raise ValueError(f"matrix has shape {matrix.shape} but vocabulary has {len(vocabulary)} entries.")
    return matrix, vocabulary


def nearest_neighbours(matrix, vocabulary, word, k=10):
    """The ``k`` vocabulary entries closest to ``word`` by cosine similarity.

    Args:
        matrix: float ``[vocab, dim]`` (e.g. ``embedding.embeddings``).
        vocabulary: list of str aligned with the rows.
        word: the query token (exact match).
        k: int (default 10).

    Returns:
        list of ``(word, cosine)`` (Python str, float), best first, without
        the query itself; zero rows (PAD) get cosine 0. Ties keep vocabulary
        order.

    Raises:
        KeyError: ``word`` not in ``vocabulary``.
        ValueError: ``matrix`` rows do not match ``vocabulary``.
    """
    matrix, vocabulary = _matrix_and_vocabulary(matrix, vocabulary, np.float64)
    try:
        query = vocabulary.index(word)
    except ValueError:
        raise KeyError(f"{word!r} is not in the vocabulary ({len(vocabulary)} entries).") from None
    norms = np.linalg.norm(matrix, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    unit = matrix / safe[:, None]
    sims = unit @ unit[query]
    sims[query] = -np.inf
    order = np.argsort(-sims, kind="stable")[: max(0, min(k, len(vocabulary) - 1))]
    return [(vocabulary[i], float(sims[i])) for i in order]


def _clean_label(word):
    label = word.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return label if label.strip() else repr(word)


def export_projector(matrix, vocabulary, directory):
    """Write ``vectors.tsv`` and ``metadata.tsv`` for the TensorBoard projector.

    ``vectors.tsv``: one row per token, tab-separated floats.
    ``metadata.tsv``: one token per line (single column, so no header, as
    the projector expects); tabs/newlines in tokens become spaces and blank
    tokens are written as their ``repr``. Each file is written to a temporary
    file in ``directory`` and renamed, so readers never see partial files.
    Load both at https://projector.tensorflow.org or in TensorBoard.

    Args:
        matrix: float ``[vocab, dim]``.
        vocabulary: list of str aligned with the rows.
        directory: created if missing.

    Returns:
        ``(vectors_path, metadata_path)``.

    Raises:
        ValueError: ``matrix`` rows do not match ``vocabulary``.
    """
    matrix, vocabulary = _matrix_and_vocabulary(matrix, vocabulary, np.float32)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    vectors_path = os.path.join(directory, "vectors.tsv")
    metadata_path = os.path.join(directory, "metadata.tsv")
    rows = ("\t".join(f"{v:.7g}" for v in row) for row in matrix)
    write_atomically(vectors_path, "".join(r + "\n" for r in rows))
    write_atomically(metadata_path, "".join(_clean_label(w) + "\n" for w in vocabulary))
    return vectors_path, metadata_path


SENTENCEPIECE_SPACE = "\u2581"  # "▁", SentencePiece's word-start marker


def tokenizer_pieces(tokenizer) -> list[str]:
    """Every piece of `tokenizer` in id order (ids 0 .. vocab_size-1), as str."""
    ids = tf.range(tokenizer.vocab_size, dtype=tf.int32)
    return [piece.decode("utf-8") for piece in tokenizer.id_to_piece(ids).numpy()]


def lookup_words(pieces) -> list[str]:
    """The word to look up in a vector file for each piece: the piece without SentencePiece's leading '▁'."""
    return [p[len(SENTENCEPIECE_SPACE) :] if p.startswith(SENTENCEPIECE_SPACE) else p for p in pieces]


def _plan(model, config: Config, source_tok, target_tok):
    """[(config key, vector file, embedding layer, tokenizer)] for each embedding that gets vectors."""
    emb = config.model.embedding
    if emb.share:
        if emb.pretrained and emb.source_pretrained and emb.pretrained != emb.source_pretrained:
            raise ConfigError(
                "model.embedding.share: one shared embedding cannot load two vector files "
                f"(pretrained {emb.pretrained!r}, source_pretrained {emb.source_pretrained!r})"
            )
        key = "model.embedding.pretrained" if emb.pretrained else "model.embedding.source_pretrained"
        return [(key, emb.pretrained or emb.source_pretrained, model.decoder.embedding, target_tok)]
    plan = [("model.embedding.pretrained", emb.pretrained, model.decoder.embedding, target_tok)]
    if emb.source_pretrained:
        if source_tok is None or not hasattr(model.encoder, "embedding"):
            raise ConfigError(
                "model.embedding.source_pretrained: this model has no source text embedding "
                "(image encoder); remove the key"
            )
        plan.append(("model.embedding.source_pretrained", emb.source_pretrained, model.encoder.embedding, source_tok))
    return plan


def apply_pretrained_embeddings(model, config: Config, source_tok, target_tok) -> dict:
    """Copy pretrained vectors into `model`'s embedding matrices for the tokenizers' vocabularies.

    Each piece is looked up without SentencePiece's '▁' marker, exactly and then lowercased; rows without
    a vector are random N(0, σ²) with σ the spread of the found vectors; the padding row is zeros. The
    coverage (found / total, PAD excluded) is logged for each file.

    Args:
      model: a built `seq2seq.model.seq2seq.Seq2Seq` (before training; a later checkpoint restore overrides it).
      config: the experiment Config (`model.embedding.*`; relative paths resolve against the data folder).
      source_tok, target_tok: the tokenizers (`id_to_piece`, `vocab_size`); source_tok may be None for
        captioning.

    Returns:
      dict config key -> coverage dict {"found", "total", "fraction", "exact", "lowercase", "path"};
      empty when no pretrained file is configured.

    Raises:
      ConfigError: the file's vectors do not have `model.embedding.dim` values, a malformed line (the
        message names the key and file:line), or impossible combinations (see `_plan`).
      FileNotFoundError: a configured vector file does not exist (named with its key).
    """
    coverage = {}
    for key, path, layer, tokenizer in _plan(model, config, source_tok, target_tok):
        if not path:
            continue
        resolved = resolve_path(config, path)
        try:
            matrix, found = load_pretrained_vectors(
                resolved, lookup_words(tokenizer_pieces(tokenizer)), config.model.embedding.dim, seed=config.train.seed
            )
        except FileNotFoundError:
            raise FileNotFoundError(f"{key}: vector file {resolved!r} not found") from None
        except ValueError as err:
            raise ConfigError(f"{key}: {err} (model.embedding.dim is {config.model.embedding.dim})") from None
        layer.embeddings.assign(matrix)
        log.info(
            "%s: %d/%d vocabulary entries found in %s (%.1f%%; %d exact, %d lowercased)",
            key,
            found["found"],
            found["total"],
            resolved,
            100.0 * found["fraction"],
            found["exact"],
            found["lowercase"],
        )
        coverage[key] = {**found, "path": resolved}
    return coverage
