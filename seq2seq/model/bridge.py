"""Bridge: encoder final states -> decoder initial states.

The encoder returns a flat list of float32 ``[batch, n_k]`` tensors (any
structure: GRU or LSTM, any number of layers, uni- or bidirectional, or an
image encoder's ``[mean region feature]``); the decoder wants a flat list of
float32 ``[batch, m_j]`` tensors (``target_state_sizes``). Three strategies:

- ``"dense"`` — concatenate every encoder state and project it with one
  ``Dense(m_j, activation)`` per decoder state (the learned bridge of
  Cho et al. 2014 / Bahdanau et al. 2015, who initialise the decoder with
  ``tanh(W_s h)``);
- ``"copy"`` — pass states through unchanged (Sutskever et al. 2014);
  the structures must match exactly;
- ``"zero"`` — zeros of the decoder's sizes (the decoder relies on
  attention alone).
"""

from __future__ import annotations

import keras
from keras import ops

BRIDGES = ("dense", "copy", "zero")


def _sizes(shapes):
    return [None if s[-1] is None else int(s[-1]) for s in shapes]


@keras.saving.register_keras_serializable(package="seq2seq")
class Bridge(keras.layers.Layer):
    """Map a flat list of encoder states to the decoder's initial states.

    Args:
        kind: ``"dense"`` (default), ``"copy"`` or ``"zero"``.
        target_state_sizes: list of positive ints, the decoder's state sizes
            in its flat order (e.g. ``StackedRNN.state_sizes``).
        activation: activation of the ``dense`` projections (default
            ``"tanh"``, ignored by the other kinds).

    Call:
        ``bridge(encoder_states)`` with ``encoder_states`` a non-empty list of
        float32 ``[batch, n_k]`` tensors; returns a list of float32
        ``[batch, m_j]`` tensors, ``m_j = target_state_sizes[j]``. For
        ``zero`` the batch size is taken from ``encoder_states[0]``.

    Raises:
        ValueError: unknown ``kind``; empty ``target_state_sizes`` or empty
            ``encoder_states``; for ``copy``, a different number or sizes of
            states (the message lists both structures).
    """

    def __init__(self, kind="dense", target_state_sizes=(), activation="tanh", **kwargs):
        super().__init__(**kwargs)
        if kind not in BRIDGES:
            raise ValueError(f"Unknown bridge kind {kind!r}; allowed values are {', '.join(repr(k) for k in BRIDGES)}.")
        sizes = [int(n) for n in target_state_sizes]
        if not sizes or any(n <= 0 for n in sizes):
            raise ValueError(
                f"target_state_sizes must be a non-empty list of positive ints, got {list(target_state_sizes)!r}."
            )
        self.kind = kind
        self.target_state_sizes = sizes
        self.activation = keras.activations.get(activation)
        self.projections = []
        if kind == "dense":
            self.projections = [
                keras.layers.Dense(n, activation=activation, name=f"state_projection_{j}") for j, n in enumerate(sizes)
            ]

    def _check(self, sizes):
        if not sizes:
            raise ValueError("Bridge needs at least one encoder state.")
        if self.kind == "copy" and (
            len(sizes) != len(self.target_state_sizes)
            or any(a is not None and a != b for a, b in zip(sizes, self.target_state_sizes))
        ):
            raise ValueError(
                "Bridge(kind='copy') needs identical encoder and decoder "
                f"state structures: encoder state sizes {sizes} "
                f"({len(sizes)} states) vs decoder state sizes "
                f"{self.target_state_sizes} "
                f"({len(self.target_state_sizes)} states). Use "
                "kind='dense' to connect different structures."
            )

    def build(self, input_shape):
        shapes = list(input_shape)
        sizes = _sizes(shapes)
        self._check(sizes)
        if self.kind == "dense":
            if any(n is None for n in sizes):
                raise ValueError(f"Bridge(kind='dense') needs known encoder state sizes, got {sizes}.")
            total = sum(sizes)
            for dense in self.projections:
                dense.build((None, total))
        self.built = True

    def call(self, inputs):
        states = list(inputs)
        self._check(_sizes([s.shape for s in states]))
        if self.kind == "copy":
            return [ops.cast(s, self.compute_dtype) for s in states]
        if self.kind == "zero":
            batch = ops.shape(states[0])[0]
            return [ops.zeros((batch, n), dtype=self.compute_dtype) for n in self.target_state_sizes]
        joined = states[0] if len(states) == 1 else ops.concatenate(states, axis=-1)
        return [dense(joined) for dense in self.projections]

    def compute_output_shape(self, input_shape):
        batch = list(input_shape)[0][0]
        return [(batch, n) for n in self.target_state_sizes]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "target_state_sizes": list(self.target_state_sizes),
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
