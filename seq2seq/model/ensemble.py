"""Ensemble decoding: several trained models searched as one, inside the one batched beam search.

`EnsembleModel` has the `encode` / `step` interface of `seq2seq.models.Seq2Seq` (the step contract of
docs/DESIGN.md), so `seq2seq.inference.decode_batch` and `TranslationModule` (hence `seq2seq export`: one
SavedModel holding every member) run on it unchanged. At every step each member scores the next token and
the ensemble returns the mean of the members' log-probabilities, log p(y | ·) = (1/K) Σ_k log p_k(y | ·)
(the log-linear combination of Nematus and Marian; the decoders renormalise it with their own softmax).
"""

from __future__ import annotations

import filecmp
import os

import tensorflow as tf

from seq2seq import model_dir as md


class EnsembleModel(tf.Module):
    """K models that share their vocabularies, decoded together.

    Args:
      members: list of built `Seq2Seq` models (K ≥ 1) with the same target vocabulary.

    Raises:
      ValueError: no members, or members whose target vocabulary sizes differ.
    """

    def __init__(self, members, name: str = "ensemble"):
        super().__init__(name=name)
        if not members:
            raise ValueError("an ensemble needs at least one model")
        sizes = sorted({int(m.target_vocab_size) for m in members})
        if len(sizes) > 1:
            raise ValueError(f"ensemble members have different target vocabulary sizes: {sizes}")
        self.members = list(members)
        self.target_vocab_size = sizes[0]

    def encode(self, source, training=False):
        """Every member's `encode(source)`.

        Returns:
          (state, constants): tuples with one entry per member, each that member's state / constants.
        """
        pairs = [member.encode(source, training=training) for member in self.members]
        return tuple(state for state, _ in pairs), tuple(constants for _, constants in pairs)

    def step(self, ids, state, constants):
        """The step contract over the members.

        Args:
          ids: int32 [batch], the previous target token.
          state, constants: tuples from `encode` (or a previous `step`), one entry per member.

        Returns:
          (logits float32 [batch, vocab]: the mean of the members' log-softmax outputs, new_state (tuple,
          one per member), attention float32 [batch, memory_time]: the mean of the members' attention).
        """
        log_probs, new_states, attentions = [], [], []
        for member, member_state, member_constants in zip(self.members, state, constants):
            logits, new_state, attention = member.step(ids, member_state, member_constants)
            log_probs.append(tf.nn.log_softmax(logits, axis=-1))
            new_states.append(new_state)
            attentions.append(tf.cast(attention, tf.float32))
        count = float(len(self.members))
        return tf.add_n(log_probs) / count, tuple(new_states), tf.add_n(attentions) / count


def _tokenizer_files(model_dir: str, side: str) -> list[str]:
    directory = os.path.join(model_dir, md.TOKENIZER_DIR)
    if not os.path.isdir(directory):
        raise md.ModelDirError(f"{model_dir!r} has no {md.TOKENIZER_DIR}/ (was training started?)")
    return sorted(name for name in os.listdir(directory) if name.startswith(side + "."))


def check_same_vocabularies(model_dirs: list[str]) -> None:
    """Raise ValueError unless every model directory has byte-identical source and target tokenizer files.

    The target side is what combining log-probabilities needs; the source side too, because the members
    read the one tokenised source of `TranslationModule`.

    Raises:
      ValueError: "<dir a> and <dir b> have different <side> vocabularies: <file> differs" (or a file
        present in only one of them).
    """
    first = model_dirs[0]
    for other in model_dirs[1:]:
        for side in ("target", "source"):
            names_a, names_b = _tokenizer_files(first, side), _tokenizer_files(other, side)
            if names_a != names_b:
                raise ValueError(
                    f"{first} and {other} have different {side} vocabularies: tokenizer files {names_a} vs {names_b}"
                )
            for name in names_a:
                a = os.path.join(first, md.TOKENIZER_DIR, name)
                b = os.path.join(other, md.TOKENIZER_DIR, name)
                if not filecmp.cmp(a, b, shallow=False):
                    raise ValueError(
                        f"{first} and {other} have different {side} vocabularies: "
                        f"{md.TOKENIZER_DIR}/{name} differs; an ensemble needs one shared vocabulary"
                    )
