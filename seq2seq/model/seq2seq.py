"""The encoder–decoder model: encoder + bridge + decoder, built from a config.

The model is what serves: `encode` (once per source), `step` (the decoder step contract of docs/DESIGN.md)
and the teacher-forced `call`. How it is trained (loss, optimizer, truncated BPTT, the attention
regulariser, multi-worker set-up) lives in `seq2seq.training`; loading a trained model for translation,
captioning or export builds this class and loads weights, with no optimizer.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from seq2seq.config import Config, ModelConfig
from seq2seq.model import (
    conditional_decoder,  # noqa: F401  (registers the "conditional" decoder)
    image_encoder,  # noqa: F401  (registers the "image" encoder)
)
from seq2seq.model.bridge import Bridge
from seq2seq.model.decoder import build_decoder
from seq2seq.model.encoders import ENCODERS


def _model_config_dict(model_config) -> dict:
    if isinstance(model_config, ModelConfig):
        return dataclasses.asdict(model_config)
    return dict(model_config)


@keras.saving.register_keras_serializable(package="seq2seq")
class Seq2Seq(keras.Model):
    """Encoder–decoder with attention (Sutskever et al., 2014; Bahdanau et al., 2015; Luong et al., 2015).

    Args:
      model_config: the `model` section of a Config (dataclass or plain dict).
      target_vocab_size: int, decoder vocabulary size.
      source_vocab_size: int or None, encoder vocabulary size (translation; None for images).
      inputs_are_features: bool, image encoders only: inputs are cached backbone features
        [batch, regions, channels] rather than images.

    Raises:
      ValueError: a recurrent encoder without `source_vocab_size`; a shared embedding over two vocabularies.

    Call:
      inputs: (source, target_in): source int32 [batch, source_time] (or images float32 [batch, H, W, 3] /
        features float32 [batch, regions, channels]); target_in int32 [batch, target_time].
      return_attention: also return the attention weights float32 [batch, target_time, memory_time].

    Returns:
      logits float32 [batch, target_time, target_vocab_size] (and the attention weights).
    """

    def __init__(self, model_config, target_vocab_size, source_vocab_size=None, inputs_are_features=False, **kwargs):
        super().__init__(**kwargs)
        cfg = _model_config_dict(model_config)
        self.model_config = cfg
        self.target_vocab_size = int(target_vocab_size)
        self.source_vocab_size = None if source_vocab_size is None else int(source_vocab_size)
        self.inputs_are_features = bool(inputs_are_features)
        emb, enc = cfg["embedding"], cfg["encoder"]
        self.encoder = ENCODERS.get(enc["type"], "model.encoder.type")(
            enc, emb, self.source_vocab_size, inputs_are_features=self.inputs_are_features, name="encoder"
        )
        self.decoder = build_decoder(
            cfg,
            self.target_vocab_size,
            self.encoder.memory_dim,
            embedding_trainable=emb["trainable"] or not emb.get("pretrained"),
        )
        if emb.get("share"):
            if self.source_vocab_size != self.target_vocab_size:
                raise ValueError(
                    f"model.embedding.share needs one vocabulary for both sides; got source "
                    f"{self.source_vocab_size} and target {self.target_vocab_size} (set tokenizer.shared: true)"
                )
            self.decoder.embedding = self.encoder.embedding
            self.decoder.embedding.trainable = emb["trainable"] or not (
                emb.get("pretrained") or emb.get("source_pretrained")
            )
        self.bridge = Bridge(cfg["bridge"], self.decoder.state_sizes, name="bridge")

    # ----------------------------------------------------------------------------------------------

    def encode(self, source, training=False):
        """Run the encoder and bridge once per source.

        Returns:
          (state, constants) for `step` / `seq2seq.decoding`: state = {"rnn": [float32 [batch, size], ...]
          (, "feed": ...)}, constants = {"memory", "mask", "keys"} with leading dimension batch.
        """
        memory, mask, final_states = self.encoder(source, training=training)
        constants = self.decoder.prepare_memory(memory, mask)
        state = self.decoder.initial_state(self.bridge(final_states))
        return state, constants

    def step(self, ids, state, constants):
        """The decoder step contract (docs/DESIGN.md), in inference mode."""
        return self.decoder.step(ids, state, constants, training=False)

    def call(self, inputs, training=None, return_attention=False):
        source, target_in = inputs
        state, constants = self.encode(source, training=training)
        logits, attention = self.decoder(target_in, constants, state, training=training)
        if return_attention:
            return logits, attention
        return logits

    # ----------------------------------------------------------------------------------------------
    # Building and serialisation

    def dummy_inputs(self):
        """A batch of one example with the input structure of this model (used to create the weights)."""
        target = np.array([[2, 4]], dtype="int32")
        if self.source_vocab_size is not None:
            return np.array([[4, 3]], dtype="int32"), target
        return self.encoder.dummy_input(self.inputs_are_features), target

    def build_weights(self):
        """Create every weight by running one teacher-forced batch and one decoding step eagerly."""
        source, target = self.dummy_inputs()
        self((source, target), training=False)
        state, constants = self.encode(source)
        self.step(ops.convert_to_tensor(target[:, 0]), state, constants)

    def build_from_config(self, config):
        self.build_weights()

    def get_build_config(self):
        return {"dummy": True}

    def get_config(self):
        return {
            "name": self.name,
            "model_config": self.model_config,
            "target_vocab_size": self.target_vocab_size,
            "source_vocab_size": self.source_vocab_size,
            "inputs_are_features": self.inputs_are_features,
        }

    @classmethod
    def from_config(cls, config):
        # Files written before training options left the model class carry them: they do not change the model.
        config = {k: v for k, v in config.items() if k not in ("doubly_stochastic", "tbptt_steps")}
        return cls(**config)


def build_model(
    config: Config,
    source_vocab_size,
    target_vocab_size,
    inputs_are_features=False,
    model_class: type | None = None,
    **kwargs,
) -> Seq2Seq:
    """Build a Seq2Seq model from `config` and create its weights.

    Args:
      config: the experiment Config (its `model` section, and `train.mixed_precision`).
      source_vocab_size: int (translation) or None (captioning).
      target_vocab_size: int.
      inputs_are_features: captioning only: train on cached backbone features.
      model_class: `Seq2Seq` (default) or a subclass, e.g. the trainer's `seq2seq.training.TrainingSeq2Seq`;
        `kwargs` go to its constructor.

    With `train.mixed_precision` (mixed_float16 | mixed_bfloat16) the layers compute in 16-bit floats with
    float32 variables; attention and the output projection stay float32.

    Returns:
      a built, uncompiled model.
    """
    previous = keras.mixed_precision.global_policy()
    if config.train.mixed_precision:
        # Layers take their dtype policy when they are created; the global policy is restored right after.
        keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    try:
        model = (model_class or Seq2Seq)(
            config.model,
            target_vocab_size,
            source_vocab_size=source_vocab_size,
            inputs_are_features=inputs_are_features,
            name="seq2seq",
            **kwargs,
        )
        model.build_weights()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model
