"""Train (or reload) a task's tokenizer from the `tokenizer` config section.

Shared by the translation task (a source and a target tokenizer) and the captioning task (one
caption tokenizer). Tokenizers are trained on the training split only, saved in the model
directory's `tokenizers/` folder (atomically, by `pipelines.tokenizers`) and reloaded on resume.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable

from pipelines.tokenizers import load_tokenizer, train_sentencepiece, train_word_vocabulary
from seq2seq.config import TokenizerConfig

log = logging.getLogger(__name__)


def train_or_load_tokenizer(
    tokenizer: TokenizerConfig,
    directory: str,
    name: str,
    vocab_size: int,
    sentences: Callable[[], Iterable[str]],
    lowercase: bool,
):
    """Load `<directory>/<name>.json` when present, else train a tokenizer on `sentences()` and save it.

    Args:
      tokenizer: the `tokenizer` config section (kind: "sentencepiece" (Kudo & Richardson 2018) or
        "word"; model_type, byte_fallback, character_coverage, input_sentence_size, min_count).
      directory: the tokenizer folder (created if needed).
      name: file stem, e.g. "source", "target", "caption".
      vocab_size: total pieces including the 4 specials (a maximum for word vocabularies).
      sentences: zero-argument callable returning the training sentences (str); called only when training.
      lowercase: case-fold text (stored with the tokenizer, applied at tokenisation time).

    Returns:
      a `pipelines.tokenizers` SentencePieceTokenizer or WordTokenizer.

    Raises:
      ValueError: impossible vocab_size for the data (see `pipelines.tokenizers`).
    """
    if os.path.exists(os.path.join(directory, f"{name}.json")):
        return load_tokenizer(directory, name)
    if tokenizer.kind == "sentencepiece":
        result = train_sentencepiece(
            sentences(),
            directory,
            name,
            vocab_size,
            model_type=tokenizer.model_type,
            byte_fallback=tokenizer.byte_fallback,
            character_coverage=tokenizer.character_coverage,
            lowercase=lowercase,
            input_sentence_size=tokenizer.input_sentence_size,
        )
    else:
        result = train_word_vocabulary(
            sentences(), directory, name, vocab_size, min_count=tokenizer.min_count, lowercase=lowercase
        )
    log.info("%s tokenizer: %d pieces", name, result.vocab_size)
    return result
