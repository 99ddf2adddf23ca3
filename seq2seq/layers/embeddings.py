"""Pretrained word vectors, embedding layers, neighbours and projector export.

Reads word2vec text files (Mikolov et al. 2013, "Efficient Estimation of Word
Representations in Vector Space"; first line ``"N D"``) and GloVe files
(Pennington et al. 2014, no header): one ``word v_1 ... v_D`` per line,
separated by single spaces.
"""

from __future__ import annotations

import gzip
import os

import keras
import numpy as np

from pipelines.atomic import write_atomically
from pipelines.vocab import PAD_ID


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
                    raise ValueError(
                        f"{name}:1: word2vec header announces dimension "
                        f"{header_dim}, expected {dim}.")
                continue
            word, _, rest = line.partition(" ")
            n = rest.count(" ") + 1 if rest else 0
            if n != dim:
                if n < dim or first_data_line:
                    raise ValueError(
                        f"{name}:{lineno}: expected {dim} values after the "
                        f"word, found {n}.")
                # A token containing spaces (a few exist in GloVe 840B).
                word, rest = line.rsplit(" ", dim)[0], line.split(
                    " ", n - dim + 1)[-1]
            first_data_line = False
            exact_rows = exact_index.get(word)
            lower_rows = lower_index.get(word)
            if exact_rows is None and lower_rows is None:
                continue
            try:
                vector = np.asarray(rest.split(" "), dtype=np.float32)
            except ValueError as err:
                raise ValueError(
                    f"{name}:{lineno}: cannot parse the vector of {word!r}: "
                    f"{err}") from None
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


def make_embedding(vocab_size, dim, pretrained_matrix=None, trainable=True,
                   mask_zero=True, name=None):
    """Create a ``keras.layers.Embedding`` optionally set to pretrained vectors.

    Args:
        vocab_size: int, number of ids.
        dim: int, vector size.
        pretrained_matrix: optional float ``[vocab_size, dim]`` (e.g. from
            :func:`load_pretrained_vectors`); it is loaded as the initial
            weights (not stored in the layer config, so ``.keras`` files stay
            small and round-trip through the saved weights).
        trainable: bool (default True); False freezes the vectors.
        mask_zero: bool (default True), ``PAD_ID = 0`` produces a mask.
        name: optional layer name.

    Returns:
        ``keras.layers.Embedding``: int ``[batch, time]`` -> float32
        ``[batch, time, dim]``.

    Raises:
        ValueError: ``pretrained_matrix`` of the wrong shape.
    """
    weights = None
    if pretrained_matrix is not None:
        weights = np.asarray(pretrained_matrix, dtype=np.float32)
        if weights.shape != (vocab_size, dim):
            raise ValueError(
                f"pretrained_matrix has shape {weights.shape}, expected "
                f"({vocab_size}, {dim}).")
    return keras.layers.Embedding(vocab_size, dim, mask_zero=mask_zero,
                                  weights=weights, trainable=trainable,
                                  name=name)


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
        raise KeyError(
            f"{word!r} is not in the vocabulary ({len(vocabulary)} "
            "entries).") from None
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
    write_atomically(metadata_path,
                  "".join(_clean_label(w) + "\n" for w in vocabulary))
    return vectors_path, metadata_path
