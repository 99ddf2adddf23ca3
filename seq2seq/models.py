"""The encoder–decoder model: encoder + bridge + decoder, built from a config."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from seq2seq.bridge import Bridge
from seq2seq.config import Config, ModelConfig
from seq2seq.decoder import RecurrentDecoder
from seq2seq.encoders import RecurrentEncoder


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
      doubly_stochastic: float ≥ 0, weight λ of the attention regulariser λ Σ_i (1 − Σ_t α_ti)²
        (Xu et al., 2015, eq. 14); 0 disables it.

    Call:
      inputs: (source, target_in): source int32 [batch, source_time] (or images float32 [batch, H, W, 3] /
        features float32 [batch, regions, channels]); target_in int32 [batch, target_time].

    Returns:
      logits float32 [batch, target_time, target_vocab_size].
    """

    def __init__(self, model_config, target_vocab_size, source_vocab_size=None, inputs_are_features=False,
                 doubly_stochastic=0.0, **kwargs):
        super().__init__(**kwargs)
        cfg = _model_config_dict(model_config)
        self.model_config = cfg
        self.target_vocab_size = int(target_vocab_size)
        self.source_vocab_size = None if source_vocab_size is None else int(source_vocab_size)
        self.inputs_are_features = bool(inputs_are_features)
        self.doubly_stochastic = float(doubly_stochastic)
        emb, enc, dec = cfg["embedding"], cfg["encoder"], cfg["decoder"]
        if enc["type"] == "recurrent":
            if self.source_vocab_size is None:
                raise ValueError("a recurrent encoder needs source_vocab_size")
            self.encoder = RecurrentEncoder(
                self.source_vocab_size, emb["dim"], cell=enc["cell"], units=enc["units"], num_layers=enc["layers"],
                bidirectional=enc["bidirectional"], merge_mode=enc["merge_mode"], dropout=enc["dropout"],
                residual=enc["residual"], embedding_trainable=emb["trainable"] or not emb.get("source_pretrained"),
                name="encoder")
        else:
            from seq2seq.image_encoder import ImageEncoder  # only captioning needs Keras Applications

            self.encoder = ImageEncoder.from_model_config(enc, inputs_are_features=self.inputs_are_features,
                                                          name="encoder")
        self.decoder = RecurrentDecoder(
            self.target_vocab_size, emb["dim"], memory_dim=self.encoder.memory_dim, cell=dec["cell"],
            units=dec["units"], num_layers=dec["layers"], attention=dec["attention"],
            attention_units=dec["attention_units"], input_feeding=dec["input_feeding"], dropout=dec["dropout"],
            residual=dec["residual"], embedding_trainable=emb["trainable"] or not emb.get("pretrained"),
            tie_output=emb["tie_output"], name="decoder")
        if emb.get("share"):
            if self.source_vocab_size != self.target_vocab_size:
                raise ValueError(
                    f"model.embedding.share needs one vocabulary for both sides; got source "
                    f"{self.source_vocab_size} and target {self.target_vocab_size} (set tokenizer.shared: true)")
            self.decoder.embedding = self.encoder.embedding
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
        if self.doubly_stochastic > 0 and training:
            self.add_loss(self.doubly_stochastic * attention_coverage_penalty(attention, target_in))
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
            "name": self.name, "model_config": self.model_config, "target_vocab_size": self.target_vocab_size,
            "source_vocab_size": self.source_vocab_size, "inputs_are_features": self.inputs_are_features,
            "doubly_stochastic": self.doubly_stochastic,
        }


def attention_coverage_penalty(attention, target_in):
    """Doubly stochastic attention penalty mean_b Σ_i (1 − Σ_t α_bti)² over real target positions.

    Args:
      attention: float32 [batch, target_time, memory_time] attention weights.
      target_in: int32 [batch, target_time], 0 at padding (excluded from the sums).

    Returns:
      float32 scalar (Xu et al., 2015, sec. 4.2.1).
    """
    real = ops.cast(ops.not_equal(target_in, 0), attention.dtype)[:, :, None]
    coverage = ops.sum(attention * real, axis=1)
    return ops.mean(ops.sum(ops.square(1.0 - coverage), axis=-1))


def build_model(config: Config, source_vocab_size, target_vocab_size, inputs_are_features=False) -> Seq2Seq:
    """Build a Seq2Seq model from `config` and create its weights.

    Args:
      config: the experiment Config (its `model` and `train.doubly_stochastic` sections are used).
      source_vocab_size: int (translation) or None (captioning).
      target_vocab_size: int.
      inputs_are_features: captioning only: train on cached backbone features.

    With `train.mixed_precision` (mixed_float16 | mixed_bfloat16) the layers compute in 16-bit floats with
    float32 variables; attention and the output projection stay float32.

    Returns:
      a built, uncompiled `Seq2Seq`.
    """
    previous = keras.mixed_precision.global_policy()
    if config.train.mixed_precision:
        # Layers take their dtype policy when they are created; the global policy is restored right after.
        keras.mixed_precision.set_global_policy(config.train.mixed_precision)
    try:
        model = Seq2Seq(config.model, target_vocab_size, source_vocab_size=source_vocab_size,
                        inputs_are_features=inputs_are_features, doubly_stochastic=config.train.doubly_stochastic,
                        name="seq2seq")
        model.build_weights()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model
