"""The WMT multimodal-task convention for BLEU: lowercase -> Moses punctuation normalisation -> Moses tokenizer.

Figures of the WMT16-18 multimodal translation task and of the papers on Multi30k (e.g. the LIUM-CVC nmtpy
systems, Caglayan et al. 2017) are BLEU on text that was lowercased, passed through Moses'
``normalize-punctuation.perl -l LANG`` and ``tokenizer.perl -l LANG``, then scored on those tokens without further
tokenisation. ``lc_norm_tok`` reproduces that preprocessing with sacremoses (the maintained Python port of the
Moses scripts); ``translation_metrics(..., wmt_convention=True)`` then scores with sacreBLEU ``tokenize='none'``.
Tokens are not XML-escaped (``tokenizer.perl -no-escape``): escaping maps tokens one-to-one, so BLEU is the same
either way.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Sequence

from sacremoses import MosesPunctNormalizer, MosesTokenizer

CONVENTION = "lc.norm.tok"


def lc_norm_tok(texts: Sequence[str], language: str) -> list[str]:
    """Lowercases, Moses-normalises punctuation and Moses-tokenises each text (space-separated tokens).

    Args:
      texts: sentences (str).
      language: ISO 639-1 code of their language (``'de'``, ``'en'``, ``'fr'``...): it selects Moses'
        non-breaking prefixes and language-specific rules.

    Returns:
      the preprocessed sentences, in order.
    """
    normalizer = MosesPunctNormalizer(lang=language)
    tokenizer = MosesTokenizer(lang=language)
    return [tokenizer.tokenize(normalizer.normalize(text.lower()), return_str=True, escape=False) for text in texts]


def describe(language: str) -> str:
    """Signature prefix naming the preprocessing, e.g. ``lc.norm.tok:sacremoses-0.2.0|lang:de``."""
    return f"{CONVENTION}:sacremoses-{version('sacremoses')}|lang:{language}"
