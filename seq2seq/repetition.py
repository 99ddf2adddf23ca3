"""Back-to-back repetition in outputs ("am strand am strand"): a failure mode of attentional decoders
(Tu et al., 2016, "Modeling Coverage for Neural Machine Translation", over-translation).
"""

from __future__ import annotations


def repeats_back_to_back(tokens: list[str], max_n: int = 3) -> bool:
    """True when some n-gram (1 ≤ n ≤ `max_n`) is immediately followed by itself.

    Args:
      tokens: the whitespace tokens of one output.
      max_n: longest n-gram checked (default 3).

    Returns:
      bool, e.g. True for "am strand am strand" (n = 2) and "ein ein hund" (n = 1).
    """
    for n in range(1, max_n + 1):
        for start in range(len(tokens) - 2 * n + 1):
            if tokens[start : start + n] == tokens[start + n : start + 2 * n]:
                return True
    return False


def repetition_rate(hypotheses: list[str], max_n: int = 3) -> float:
    """Fraction of `hypotheses` that repeat a 1–`max_n`-gram of whitespace tokens back to back.

    Args:
      hypotheses: output sentences (str).
      max_n: longest n-gram checked (default 3).

    Returns:
      float in [0, 1]; 0.0 for no hypotheses.
    """
    if not hypotheses:
        return 0.0
    return sum(repeats_back_to_back(h.split(), max_n) for h in hypotheses) / len(hypotheses)
