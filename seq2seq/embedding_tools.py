"""`seq2seq embeddings`: nearest neighbours in a trained model's embeddings and TensorBoard projector files."""

from __future__ import annotations

from typing import Iterator, Sequence

from seq2seq import model_dir as md
from seq2seq.word_vectors import SENTENCEPIECE_SPACE, export_projector, nearest_neighbours, tokenizer_pieces

SIDES = ("source", "target")


def load_embedding(model_dir: str, side: str):
    """(matrix float32 [vocab, dim], pieces list[str]) of one side of the trained model in `model_dir`.

    Args:
      model_dir: a trained translation or captioning model directory.
      side: "source" (translation only) or "target".

    Raises:
      ValueError: unknown `side`.
      ModelDirError: not a (trained) model directory, or "source" for a captioning model (no source words).
    """
    if side not in SIDES:
        raise ValueError(f"side: got {side!r}; allowed values: {', '.join(SIDES)}")
    from seq2seq.runner import load

    if side == "source" and md.read_config(model_dir).task == "captioning":
        raise md.ModelDirError(f"{model_dir!r} holds a captioning model: only --side target has word embeddings")
    loaded = load(model_dir)
    model = loaded.model
    tokenizer = loaded.tokenizers["source"] if side == "source" else loaded.task.target_tokenizer(loaded.tokenizers)
    layer = model.encoder.embedding if side == "source" else model.decoder.embedding
    return layer.embeddings.numpy(), tokenizer_pieces(tokenizer)


def _find(word: str, pieces: Sequence[str]) -> str | None:
    """The piece for `word`: SentencePiece's word-initial form '▁word' first (the whole word, not the
    suffix piece of the same spelling), else `word` itself (word vocabularies, or a piece given as is).
    """
    for candidate in (SENTENCEPIECE_SPACE + word, word):
        if candidate in pieces:
            return candidate
    return None


def inspect_embeddings(
    model_dir: str, side: str = "target", words: Sequence[str] = (), k: int = 10, projector_dir: str | None = None
) -> Iterator[str]:
    """Printable lines: the `k` nearest pieces (cosine similarity) of each word, then the projector files.

    Args:
      model_dir: a trained model directory (weights: best.weights.h5, else the newest checkpoint).
      side: "source" | "target" (default).
      words: words or pieces to look up; a word is matched as the SentencePiece piece '▁word' first,
        then as given. Words not in the vocabulary give one "not in the vocabulary" line (no error).
      k: int ≥ 1, neighbours per word (default 10).
      projector_dir: when given, write vectors.tsv and metadata.tsv there (atomically) for the TensorBoard
        projector (https://projector.tensorflow.org).

    Yields:
      str lines: "<word> (<side>, piece '<piece>'):" followed by "  <piece>\\t<cosine>" lines (cosine with
      4 decimals, best first), and finally "projector: <vectors.tsv> <metadata.tsv>".

    Raises:
      ValueError: k < 1 or a bad side (see `load_embedding`).
      ModelDirError: not a trained model directory.
    """
    if int(k) < 1:
        raise ValueError(f"k: got {k}; must be >= 1")
    matrix, pieces = load_embedding(model_dir, side)
    yield f"{side} embeddings: {matrix.shape[0]} pieces x {matrix.shape[1]} dimensions"
    for word in words:
        piece = _find(word, pieces)
        if piece is None:
            yield f"{word!r} is not in the {side} vocabulary"
            continue
        yield f"{word} ({side}, piece {piece!r}):"
        for neighbour, cosine in nearest_neighbours(matrix, pieces, piece, int(k)):
            yield f"  {neighbour}\t{cosine:.4f}"
    if projector_dir:
        vectors, metadata = export_projector(matrix, pieces, projector_dir)
        yield f"projector: {vectors} {metadata}"
