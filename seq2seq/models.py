"""The encoder–decoder model: encoder + bridge + decoder, built from a config."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from pipelines.vocab import PAD_ID
from seq2seq import losses  # noqa: F401  (registers the loss and metric a compiled model.keras names)
from seq2seq import optimizers  # noqa: F401  (registers the optimizer a compiled model.keras names)
from seq2seq.bridge import Bridge
from seq2seq.config import Config, ModelConfig
from seq2seq.decoder import build_decoder
from seq2seq.encoders import RecurrentEncoder
from seq2seq.tbptt import window_loop


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
      tbptt_steps: int ≥ 1 or None (default): train with truncated BPTT over windows of this many target
        positions (Williams & Peng, 1990), see `train_step`. None trains on the whole target sequence.

    Raises:
      ValueError: a recurrent encoder without `source_vocab_size`; `tbptt_steps` < 1, or combined with
        `doubly_stochastic` (its penalty sums attention over the whole target, not per window).

    Call:
      inputs: (source, target_in): source int32 [batch, source_time] (or images float32 [batch, H, W, 3] /
        features float32 [batch, regions, channels]); target_in int32 [batch, target_time].

    Returns:
      logits float32 [batch, target_time, target_vocab_size].
    """

    def __init__(self, model_config, target_vocab_size, source_vocab_size=None, inputs_are_features=False,
                 doubly_stochastic=0.0, tbptt_steps=None, **kwargs):
        super().__init__(**kwargs)
        if tbptt_steps is not None and (int(tbptt_steps) < 1 or doubly_stochastic > 0):
            raise ValueError(f"train.tbptt_steps: got {tbptt_steps}; must be >= 1 and cannot be combined with "
                             f"train.doubly_stochastic (got {doubly_stochastic})")
        self.tbptt_steps = None if tbptt_steps is None else int(tbptt_steps)
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
                embedding_dropout=emb.get("dropout"), output_dropout=enc.get("output_dropout", 0.0), name="encoder")
        else:
            from seq2seq.image_encoder import ImageEncoder  # only captioning needs Keras Applications

            self.encoder = ImageEncoder.from_model_config(enc, inputs_are_features=self.inputs_are_features,
                                                          name="encoder")
        self.decoder = build_decoder(cfg, self.target_vocab_size, self.encoder.memory_dim,
                                     embedding_trainable=emb["trainable"] or not emb.get("pretrained"))
        if emb.get("share"):
            if self.source_vocab_size != self.target_vocab_size:
                raise ValueError(
                    f"model.embedding.share needs one vocabulary for both sides; got source "
                    f"{self.source_vocab_size} and target {self.target_vocab_size} (set tokenizer.shared: true)")
            self.decoder.embedding = self.encoder.embedding
            self.decoder.embedding.trainable = emb["trainable"] or not (emb.get("pretrained")
                                                                        or emb.get("source_pretrained"))
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

    def train_step(self, data):
        """One `fit` batch (see `_train_step`), its logs shaped for the strategy's reduction."""
        return _logs_for_reduction(self._train_step(data))

    def test_step(self, data):
        """One validation batch (Keras' own `test_step`), its logs shaped for the strategy's reduction."""
        return _logs_for_reduction(super().test_step(data))

    def _train_step(self, data):
        """One `fit` batch; with `tbptt_steps` = k, truncated BPTT over the target (Williams & Peng, 1990).

        The target is cut into windows of k positions. For each window, under its own gradient tape, the
        encoder and the attention keys are computed from the source, the decoder runs over the window from
        the previous window's final state (`tf.stop_gradient`: no gradient crosses a window boundary; the
        first window starts from the bridge, so the state is reset between batches), the masked loss of the
        window is differentiated and the optimizer takes one step. A batch of target length T therefore
        makes ceil(T / k) updates (`optimizer.iterations` counts them). Re-running the encoder in every
        window lets each window's loss train the encoder with the current parameters. The reported loss is
        the mean over windows weighted by their real (non-padding) target tokens; metrics use the
        concatenated window logits. Without `tbptt_steps` this is Keras' own `train_step`.

        Args:
          data: ((source, target_in int32 [batch, T]), target_out int32 [batch, T]).

        Returns:
          dict of metric results, as `keras.Model.train_step`.
        """
        if not self.tbptt_steps:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("train.tbptt_steps does not support sample weights")
        source, target_in = x
        target_in = tf.convert_to_tensor(target_in)
        y = tf.convert_to_tensor(y)
        loss_metric = next(m for m in self.metrics if m.name == "loss")
        batch = tf.shape(target_in)[0]
        dtype = self.decoder.compute_dtype
        start_state = self.decoder.initial_state([tf.zeros((batch, n), dtype) for n in self.decoder.state_sizes])

        def window_step(start, stop, carried):
            with tf.GradientTape() as tape:
                first_state, constants = self.encode(source, training=True)
                state = tf.nest.map_structure(lambda new, old: tf.where(start == 0, new, tf.cast(old, new.dtype)),
                                              first_state, carried)
                logits, _, final = self.decoder(target_in[:, start:stop], constants, state, training=True,
                                                return_state=True)
                y_window = y[:, start:stop]
                loss = self.compute_loss(x=x, y=y_window, y_pred=logits, training=True)
                scaled = self.optimizer.scale_loss(loss)
            variables = self.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
            loss_metric.update_state(loss, sample_weight=tf.math.count_nonzero(y_window != PAD_ID, dtype=tf.float32))
            return loss, final, logits

        _, _, logits = window_loop(window_step, tf.shape(target_in)[1], self.tbptt_steps, start_state)
        return self.compute_metrics(x, y, logits, sample_weight=None)

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

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Create the weights, metrics and optimizer state before `fit` traces its step, under a strategy.

        Keras 3's TensorFlow trainer does this by reducing the first distributed batch with
        `strategy.reduce("MEAN", ...)`, which fails under `MultiWorkerMirroredStrategy` for integer token
        batches ("unsupported type PerReplica", keras-team/keras#20585). Only the batch's structure and
        dtypes matter for building, so this override uses this worker's first local replica batch instead.
        Without a strategy, Keras's own behaviour (build at trace time) is kept.
        """
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            first = next(batches)
            break
        else:
            return None
        local = tf.nest.map_structure(
            lambda value: strategy.experimental_local_results(value)[0]
            if isinstance(value, tf.distribute.DistributedValues) else value, first)
        with strategy.scope():
            self._symbolic_build(data_batch=local)
        return None

    def get_build_config(self):
        return {"dummy": True}

    def get_config(self):
        return {
            "name": self.name, "model_config": self.model_config, "target_vocab_size": self.target_vocab_size,
            "source_vocab_size": self.source_vocab_size, "inputs_are_features": self.inputs_are_features,
            "doubly_stochastic": self.doubly_stochastic, "tbptt_steps": self.tbptt_steps,
        }


def _logs_for_reduction(logs: dict) -> dict:
    """Scalar step logs as shape-[1] tensors when several workers train under `MultiWorkerMirroredStrategy`.

    Keras 3 (3.15) reduces each replica's logs with `strategy.reduce("MEAN", value, axis=0)` only in that
    mode, and a scalar has no axis 0 ("Invalid reduction dimension 0"); a [1] value reduces to the scalar
    mean over replicas, which is what the logs would be on one device. Every other strategy gets the logs
    unchanged. Called in replica context (inside `train_step` / `test_step`).
    """
    strategy = tf.distribute.get_strategy()
    multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and multi_worker()):
        return logs
    return {name: tf.reshape(value, [1]) if tf.is_tensor(value) and value.shape.rank == 0 else value
            for name, value in logs.items()}


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
      config: the experiment Config (its `model` section, `train.doubly_stochastic` and `train.tbptt_steps`).
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
                        tbptt_steps=config.train.tbptt_steps, name="seq2seq")
        model.build_weights()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model
