"""Load pretrained word vectors into a built Seq2Seq model's embeddings (`model.embedding.*` keys).

`model.embedding.pretrained` fills the target (decoder) embedding, `model.embedding.source_pretrained` the
source (encoder) one, from word2vec text (Mikolov et al., 2013) or GloVe (Pennington et al., 2014) files,
read by `seq2seq.layers.embeddings.load_pretrained_vectors`. With `model.embedding.share` the two sides
are one layer over one vocabulary (`tokenizer.shared`), filled once. Whether the vectors are then frozen
or fine-tuned (`model.embedding.trainable`) is decided when the model is built (`seq2seq.models`).
"""

from __future__ import annotations

import logging

import tensorflow as tf

from seq2seq.config import Config, ConfigError, resolve_path
from seq2seq.layers.embeddings import load_pretrained_vectors

log = logging.getLogger(__name__)

SENTENCEPIECE_SPACE = "\u2581"  # "▁", SentencePiece's word-start marker


def tokenizer_pieces(tokenizer) -> list[str]:
    """Every piece of `tokenizer` in id order (ids 0 .. vocab_size-1), as str."""
    ids = tf.range(tokenizer.vocab_size, dtype=tf.int32)
    return [piece.decode("utf-8") for piece in tokenizer.id_to_piece(ids).numpy()]


def lookup_words(pieces) -> list[str]:
    """The word to look up in a vector file for each piece: the piece without SentencePiece's leading '▁'."""
    return [p[len(SENTENCEPIECE_SPACE):] if p.startswith(SENTENCEPIECE_SPACE) else p for p in pieces]


def _plan(model, config: Config, source_tok, target_tok):
    """[(config key, vector file, embedding layer, tokenizer)] for each embedding that gets vectors."""
    emb = config.model.embedding
    if emb.share:
        if emb.pretrained and emb.source_pretrained and emb.pretrained != emb.source_pretrained:
            raise ConfigError("model.embedding.share: one shared embedding cannot load two vector files "
                              f"(pretrained {emb.pretrained!r}, source_pretrained {emb.source_pretrained!r})")
        key = "model.embedding.pretrained" if emb.pretrained else "model.embedding.source_pretrained"
        return [(key, emb.pretrained or emb.source_pretrained, model.decoder.embedding, target_tok)]
    plan = [("model.embedding.pretrained", emb.pretrained, model.decoder.embedding, target_tok)]
    if emb.source_pretrained:
        if source_tok is None or not hasattr(model.encoder, "embedding"):
            raise ConfigError("model.embedding.source_pretrained: this model has no source text embedding "
                              "(image encoder); remove the key")
        plan.append(("model.embedding.source_pretrained", emb.source_pretrained, model.encoder.embedding,
                     source_tok))
    return plan


def apply_pretrained_embeddings(model, config: Config, source_tok, target_tok) -> dict:
    """Copy pretrained vectors into `model`'s embedding matrices for the tokenizers' vocabularies.

    Each piece is looked up without SentencePiece's '▁' marker, exactly and then lowercased; rows without
    a vector are random N(0, σ²) with σ the spread of the found vectors; the padding row is zeros. The
    coverage (found / total, PAD excluded) is logged for each file.

    Args:
      model: a built `seq2seq.models.Seq2Seq` (before training; a later checkpoint restore overrides it).
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
            matrix, found = load_pretrained_vectors(resolved, lookup_words(tokenizer_pieces(tokenizer)),
                                                    config.model.embedding.dim, seed=config.train.seed)
        except FileNotFoundError:
            raise FileNotFoundError(f"{key}: vector file {resolved!r} not found") from None
        except ValueError as err:
            raise ConfigError(f"{key}: {err} (model.embedding.dim is {config.model.embedding.dim})") from None
        layer.embeddings.assign(matrix)
        log.info("%s: %d/%d vocabulary entries found in %s (%.1f%%; %d exact, %d lowercased)", key,
                 found["found"], found["total"], resolved, 100.0 * found["fraction"], found["exact"],
                 found["lowercase"])
        coverage[key] = {**found, "path": resolved}
    return coverage
