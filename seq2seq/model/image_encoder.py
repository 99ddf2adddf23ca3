"""Image encoder for captioning: a CNN backbone grid projected to attention memory.

The backbone turns an image into a grid of annotation vectors ``[h, w, C]``; flattened to
``regions = h * w`` vectors they are the memory a soft-attention decoder attends over, as in
Show, Attend and Tell (Xu et al., 2015, ICML). Their mean initialises the decoder state (Xu et al.
2015, Sec. 3.1.2); Show and Tell (Vinyals et al., 2015, CVPR) uses one pooled vector the same way.

Backbones are Keras Applications (ImageNet-pretrained, ``include_top=False``) with their own
``preprocess_input`` applied in-graph, so every model takes float32 images in [0, 255] as produced by
``pipelines.images.decode_image``; ``SmallCNN`` is a few conv blocks trained from scratch for when no
pretrained weights are available. Default backbone: MobileNetV2 (Sandler et al., 2018, CVPR,
"MobileNetV2: Inverted Residuals and Linear Bottlenecks"), 224x224 -> 7x7x1280.

Offline weights: pass ``weights=PATH`` to the Keras ``*_no_top.h5`` file, or put that file under
``$KERAS_HOME/models/`` (default ``~/.keras/models/``) and use ``weights="imagenet"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import keras
import numpy as np
from keras import ops

from seq2seq import compat
from seq2seq.model.encoders import ENCODERS

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "BackbonePreprocess",
    "BackboneWeightsUnavailableError",
    "build_backbone",
    "build_small_cnn",
    "ImageEncoder",
]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """One supported backbone.

    Attributes:
      application: name of the ``keras.applications`` constructor (None for ``SmallCNN``).
      module: ``keras.applications`` submodule whose ``preprocess_input`` the backbone needs.
      input_size: default square input size in pixels.
      min_input_size: smallest input side Keras accepts.
      has_alpha: the constructor takes a width multiplier ``alpha``.
    """

    application: str | None
    module: str | None
    input_size: int
    min_input_size: int
    has_alpha: bool = False


BACKBONES: dict[str, BackboneSpec] = {
    # Sandler et al. 2018; preprocess scales to [-1, 1]; 224 -> 7x7x1280.
    "MobileNetV2": BackboneSpec("MobileNetV2", "mobilenet_v2", 224, 32, True),
    # Howard et al. 2019; the model contains its own Rescaling (preprocess_input is the identity).
    "MobileNetV3Small": BackboneSpec("MobileNetV3Small", "mobilenet_v3", 224, 32, True),
    "MobileNetV3Large": BackboneSpec("MobileNetV3Large", "mobilenet_v3", 224, 32, True),
    # Tan & Le 2019; normalisation is inside the model; 224 -> 7x7x1280.
    "EfficientNetB0": BackboneSpec("EfficientNetB0", "efficientnet", 224, 32),
    # Szegedy et al. 2016; [-1, 1]; 299 -> 8x8x2048.
    "InceptionV3": BackboneSpec("InceptionV3", "inception_v3", 299, 75),
    # He et al. 2016; "caffe" mode (RGB->BGR, ImageNet mean subtraction); 224 -> 7x7x2048.
    "ResNet50": BackboneSpec("ResNet50", "resnet50", 224, 32),
    # Trained from scratch: Rescaling to [-1, 1] + 4 conv blocks (stride 16); 224 -> 14x14x256.
    "SmallCNN": BackboneSpec(None, None, 224, 16),
}


class BackboneWeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be downloaded (no network) and are not in ``$KERAS_HOME/models``."""


@keras.saving.register_keras_serializable(package="seq2seq")
class BackbonePreprocess(keras.layers.Layer):
    """Applies ``keras.applications.<module>.preprocess_input`` in-graph to float32 [0, 255] images.

    Args:
      module: ``keras.applications`` submodule name, e.g. ``"mobilenet_v2"`` or ``"resnet50"``.
    """

    def __init__(self, module: str, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(keras.applications, module):
            raise ValueError(f"keras.applications has no module {module!r}")
        self.module = module

    def call(self, images):
        return getattr(keras.applications, self.module).preprocess_input(images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "module": self.module}


def _input_hw(name: str, input_size) -> tuple[int, int]:
    if name not in BACKBONES:
        raise ValueError(f"model.encoder.backbone: unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    if input_size is None:
        input_size = spec.input_size
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    height, width = (int(s) for s in input_size)
    if min(height, width) < spec.min_input_size:
        raise ValueError(
            f"{name} needs inputs of at least {spec.min_input_size}x{spec.min_input_size}, got {height}x{width}"
        )
    return height, width


def build_small_cnn(input_size=224, filters=(32, 64, 128, 256), name="SmallCNN") -> keras.Model:
    """Small from-scratch CNN: Rescaling to [-1, 1], then per block Conv3x3 -> BatchNorm -> ReLU -> MaxPool2.

    Args:
      input_size: int or (height, width); the grid side is ``input_size / 2**len(filters)``.
      filters: channels per block (default (32, 64, 128, 256): 224 -> 14x14x256).

    Returns:
      keras.Model float32 ``[b, H, W, 3]`` in [0, 255] -> ``[b, H/16, W/16, filters[-1]]``.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    images = keras.Input((height, width, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(images)
    for index, channels in enumerate(filters):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"block{index}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{index}_bn")(x)
        x = keras.layers.ReLU(name=f"block{index}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{index}_pool")(x)
    return keras.Model(images, x, name=name)


def _set_trainable(model: keras.Model, trainable) -> None:
    """``False``: frozen; ``True``: all layers; int N: only the top N layers (the rest frozen)."""
    if isinstance(trainable, bool):
        model.trainable = trainable
        return
    if not isinstance(trainable, int) or trainable < 0:
        raise ValueError(f"trainable must be False, True or a non-negative int, got {trainable!r}")
    model.trainable = True
    layers = model.layers
    cut = max(len(layers) - trainable, 0)
    for layer in layers[:cut]:
        layer.trainable = False
    for layer in layers[cut:]:
        layer.trainable = True


def build_backbone(
    name: str = "MobileNetV2", weights="imagenet", trainable=False, input_size=None, alpha: float = 1.0
) -> keras.Model:
    """Backbone model: float32 images ``[b, H, W, 3]`` in [0, 255] -> grid ``[b, h, w, C]``.

    The backbone's ``preprocess_input`` runs in-graph first (``BackbonePreprocess``), then the
    ``keras.applications`` model with ``include_top=False`` (or ``build_small_cnn``).

    Args:
      name: a key of ``BACKBONES`` (MobileNetV2, MobileNetV3Small, MobileNetV3Large, EfficientNetB0,
        InceptionV3, ResNet50, SmallCNN).
      weights: ``"imagenet"`` (Keras download, or the file already in ``$KERAS_HOME/models/``),
        a path to a no-top ``.h5`` weights file, or None (random init). ``SmallCNN`` accepts None or
        a path to weights saved with ``save_weights``.
      trainable: False (frozen, default), True (all layers), or int N (only the top N layers of the
        backbone are trainable).
      input_size: int or (height, width); default the backbone's native size (224, InceptionV3 299).
      alpha: width multiplier for MobileNet backbones (default 1.0; the local files offer 0.35, 0.5, 1.0).

    Returns:
      ``keras.Model`` named ``"<name>_backbone"``.

    Raises:
      ValueError: unknown name, bad trainable/input size, alpha for a backbone without it,
        ``"imagenet"`` for SmallCNN, or a weights file that does not fit the architecture.
      FileNotFoundError: ``weights`` looks like a path but the file does not exist.
      BackboneWeightsUnavailableError: ``"imagenet"`` weights are not cached and cannot be downloaded.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    height, width = _input_hw(name, input_size)
    if alpha != 1.0 and not spec.has_alpha:
        raise ValueError(f"{name} has no width multiplier; alpha must be 1.0, got {alpha}")
    if weights is not None and weights != "imagenet":
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"backbone weights file not found: {weights}")

    if spec.application is None:
        if weights == "imagenet":
            raise ValueError("SmallCNN is trained from scratch: use weights=None (or a path to saved SmallCNN weights)")
        core = build_small_cnn((height, width))
        if weights is not None:
            core.load_weights(weights)
        images = core.inputs[0]
        outputs = core.outputs[0]
        model = keras.Model(images, outputs, name=f"{name}_backbone")
        _set_trainable(model, trainable)
        return model

    constructor = getattr(keras.applications, spec.application)
    kwargs = dict(include_top=False, weights=weights, input_shape=(height, width, 3))
    if spec.has_alpha:
        kwargs["alpha"] = alpha
    try:
        core = constructor(**kwargs)
    except Exception as err:  # noqa: BLE001 - re-raised with context below
        message = str(err)
        if weights == "imagenet" and ("URL fetch failure" in message or isinstance(err, OSError)):
            raise BackboneWeightsUnavailableError(
                f"could not download ImageNet weights for {name} (alpha={alpha}, {height}x{width}): {message}\n"
                f"No network? Pass weights=<path to the no-top .h5 file> (e.g. from ../shared/weights), or put "
                f"that file in $KERAS_HOME/models/ (now {os.path.join(compat.keras_home(), 'models')}) and keep "
                f"weights='imagenet'."
            ) from err
        if weights not in (None, "imagenet"):
            raise ValueError(
                f"could not load backbone weights {weights} into {name} (alpha={alpha}, include_top=False): {message}. "
                "The file must be the no-top weights of the same architecture and width multiplier."
            ) from err
        raise
    images = keras.Input((height, width, 3), name="images")
    grid = core(BackbonePreprocess(spec.module, name="preprocess")(images))
    _set_trainable(core, trainable)
    return keras.Model(images, grid, name=f"{name}_backbone")


class _FeatureFn:
    """Callable ``images float32 [b, H, W, 3] in [0, 255] -> float32 [b, regions, C]`` with ``image_size``."""

    def __init__(self, encoder: "ImageEncoder"):
        self._encoder = encoder
        self.image_size = encoder.image_size

    def __call__(self, images):
        return self._encoder.backbone_regions(images, training=False)


@keras.saving.register_keras_serializable(package="seq2seq")
class ImageEncoder(keras.layers.Layer):
    """Encoder (DESIGN.md Encoder contract) over a CNN backbone grid.

    ``call(inputs, training=False) -> (memory, memory_mask, final_states)``:
      - ``inputs``: float32 images ``[batch, H, W, 3]`` in [0, 255] (export path), or cached backbone
        features ``[batch, regions, C]`` (training path with ``pipelines.feature_cache``). The rank
        decides, so an encoder trained on features also encodes images, with identical results.
      - ``memory``: float32 ``[batch, regions, units]`` = ``Dropout(activation(Dense(units)(regions)))``,
        ``regions = h * w`` of the backbone grid.
      - ``memory_mask``: bool ``[batch, regions]``, all True.
      - ``final_states``: ``[mean region feature]``, float32 ``[batch, units]`` (``final_state="projected"``,
        default: mean of ``memory``) or ``[batch, C]`` (``final_state="backbone"``: mean backbone feature,
        the ``a``-mean of Xu et al. 2015).

    Args:
      units: memory width.
      backbone: a ``BACKBONES`` key (default ``"MobileNetV2"``).
      backbone_weights: ``"imagenet"``, a ``.h5`` path, or None (see ``build_backbone``).
      backbone_trainable: False (default), True, or int N (top N layers).
      input_size: int or (height, width); default the backbone's native size.
      alpha: MobileNet width multiplier (default 1.0).
      activation: projection activation (default ``"relu"``).
      dropout: dropout rate on the memory (default 0.0).
      inputs_are_features: the model is fed cached features (True) or images (False, default); see
        ``model_input_shape``. Requires a frozen backbone.
      final_state: ``"projected"`` (default) or ``"backbone"``.
      load_backbone_weights: load ``backbone_weights`` now (default True). ``from_config`` passes
        False because a saved model restores every weight itself (no ImageNet file needed to load).

    Raises:
      ValueError: bad arguments (see ``build_backbone``), ``inputs_are_features`` with a trainable
        backbone, or features whose channel count differs from the backbone's.
    """

    def __init__(
        self,
        units: int,
        backbone: str = "MobileNetV2",
        backbone_weights="imagenet",
        backbone_trainable=False,
        input_size=None,
        alpha: float = 1.0,
        activation="relu",
        dropout: float = 0.0,
        inputs_are_features: bool = False,
        final_state: str = "projected",
        load_backbone_weights: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"units must be positive, got {units}")
        if final_state not in ("projected", "backbone"):
            raise ValueError(f"final_state must be 'projected' or 'backbone', got {final_state!r}")
        if inputs_are_features and backbone_trainable is not False and backbone_trainable != 0:
            raise ValueError(
                "inputs_are_features=True (cached features) needs a frozen backbone (backbone_trainable=False)"
            )
        self.units = int(units)
        self.backbone_name = backbone
        self.backbone_weights = (
            None
            if backbone_weights is None
            else (backbone_weights if backbone_weights == "imagenet" else os.fspath(backbone_weights))
        )
        self.backbone_trainable = backbone_trainable
        self.image_size = _input_hw(backbone, input_size)
        self.alpha = float(alpha)
        self.activation = keras.activations.get(activation)
        self._activation_config = (
            activation if isinstance(activation, str) else keras.activations.serialize(self.activation)
        )
        self.dropout_rate = float(dropout)
        self.inputs_are_features = bool(inputs_are_features)
        self.final_state = final_state
        self.backbone = build_backbone(
            backbone,
            weights=self.backbone_weights if load_backbone_weights else None,
            trainable=backbone_trainable,
            input_size=self.image_size,
            alpha=self.alpha,
        )
        grid = self.backbone.output_shape  # (None, h, w, C)
        self.num_regions = int(grid[1]) * int(grid[2])
        self.feature_channels = int(grid[3])
        self.projection = keras.layers.Dense(self.units, name="projection")
        self.memory_dropout = keras.layers.Dropout(self.dropout_rate, name="memory_dropout")

    @classmethod
    def from_model_config(cls, encoder_config: dict, inputs_are_features: bool = False, **kwargs) -> "ImageEncoder":
        """Build from the ``model.encoder`` config section (``seq2seq.config.EncoderConfig`` as a dict).

        Keys used: ``units``, ``backbone``, ``weights`` (``"imagenet"``, an ``.h5`` path already
        resolved by the caller, or None), ``trainable``, ``image_size`` (None: the backbone's native
        size), ``alpha`` (default 1.0), ``dropout``. ``kwargs`` go to the constructor (e.g. ``name``,
        ``load_backbone_weights``).

        Raises:
          KeyError: a required key is missing; ValueError: see the constructor.
        """
        return cls(
            units=encoder_config["units"],
            backbone=encoder_config["backbone"],
            backbone_weights=encoder_config["weights"],
            backbone_trainable=encoder_config["trainable"],
            input_size=encoder_config.get("image_size"),
            alpha=encoder_config.get("alpha", 1.0),
            dropout=encoder_config.get("dropout", 0.0),
            inputs_are_features=inputs_are_features,
            **kwargs,
        )

    @property
    def memory_dim(self) -> int:
        """Width of the memory vectors attention reads (= ``units``)."""
        return self.units

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the backbone grid; ``regions = h * w`` in row-major order."""
        grid = self.backbone.output_shape
        return int(grid[1]), int(grid[2])

    def dummy_input(self, inputs_are_features: bool | None = None) -> np.ndarray:
        """Zeros float32 ``[1, H, W, 3]`` (images) or ``[1, regions, C]`` (features), to create weights.

        Args:
          inputs_are_features: which input kind; default ``self.inputs_are_features``.
        """
        features = self.inputs_are_features if inputs_are_features is None else inputs_are_features
        shape = (self.num_regions, self.feature_channels) if features else (*self.image_size, 3)
        return np.zeros((1, *shape), dtype="float32")

    # -- shapes and helpers --------------------------------------------------------------------
    @property
    def model_input_shape(self) -> tuple[int, int, int] | tuple[int, int]:
        """Per-example input shape for ``keras.Input``: ``(H, W, 3)`` or ``(regions, C)`` with features."""
        if self.inputs_are_features:
            return (self.num_regions, self.feature_channels)
        return (*self.image_size, 3)

    @property
    def backbone_key(self) -> str:
        """String identifying the backbone configuration, for ``pipelines.feature_cache.FeatureCache``.

        Contains the name, width multiplier, input size, trainable setting, where the weights came
        from, and the sha256 of the backbone's current weight values (so random init, other files or
        fine-tuned weights never share cache entries), plus the Keras version.
        """
        digest = hashlib.sha256()
        for variable in self.backbone.weights:
            digest.update(variable.path.encode("utf-8"))
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable.value)).tobytes())
        source = self.backbone_weights
        if source not in (None, "imagenet"):
            source = os.path.basename(source)
        return (
            f"backbone={self.backbone_name};alpha={self.alpha};input={self.image_size[0]}x{self.image_size[1]};"
            f"trainable={self.backbone_trainable};weights={source};weights_sha256={digest.hexdigest()};"
            f"keras={keras.__version__}"
        )

    @property
    def feature_fn(self) -> _FeatureFn:
        """Callable images float32 ``[b, H, W, 3]`` in [0, 255] -> backbone features float32
        ``[b, regions, C]`` (inference mode), with attribute ``image_size``; for ``FeatureCache``.
        """
        return _FeatureFn(self)

    def backbone_regions(self, images, training=False):
        """Run the backbone: images ``[b, H, W, 3]`` -> flattened grid float32 ``[b, h*w, C]``.

        Pretrained backbones always run BatchNorm in inference mode (the usual fine-tuning recipe);
        ``SmallCNN`` trains its BatchNorm statistics when ``training`` and the backbone is trainable.
        """
        bn_training = (
            bool(training)
            and BACKBONES[self.backbone_name].application is None
            and self.backbone_trainable is not False
        )
        grid = self.backbone(ops.cast(images, "float32"), training=bn_training)
        return ops.reshape(grid, (-1, self.num_regions, self.feature_channels))

    # -- keras ---------------------------------------------------------------------------------
    def build(self, input_shape):
        self.projection.build((None, None, self.feature_channels))
        super().build(input_shape)

    def call(self, inputs, training=False):
        rank = len(inputs.shape)
        if rank == 4:
            regions = self.backbone_regions(inputs, training=training)
        elif rank == 3:
            if inputs.shape[-1] is not None and int(inputs.shape[-1]) != self.feature_channels:
                raise ValueError(
                    f"features have {inputs.shape[-1]} channels, the {self.backbone_name} backbone gives "
                    f"{self.feature_channels}"
                )
            regions = ops.cast(inputs, "float32")
        else:
            raise ValueError(
                f"ImageEncoder takes images [b, H, W, 3] or features [b, regions, C], got shape {inputs.shape}"
            )
        memory = self.memory_dropout(self.activation(self.projection(regions)), training=training)
        mask = ops.ones(ops.shape(memory)[:2], dtype="bool")
        pooled = ops.mean(memory if self.final_state == "projected" else regions, axis=1)
        return memory, mask, [pooled]

    def compute_output_spec(self, inputs, training=False):
        batch = inputs.shape[0]
        state_width = self.units if self.final_state == "projected" else self.feature_channels
        return (
            keras.KerasTensor((batch, self.num_regions, self.units), dtype="float32"),
            keras.KerasTensor((batch, self.num_regions), dtype="bool"),
            [keras.KerasTensor((batch, state_width), dtype="float32")],
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            backbone=self.backbone_name,
            backbone_weights=self.backbone_weights,
            backbone_trainable=self.backbone_trainable,
            input_size=list(self.image_size),
            alpha=self.alpha,
            activation=self._activation_config,
            dropout=self.dropout_rate,
            inputs_are_features=self.inputs_are_features,
            final_state=self.final_state,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("load_backbone_weights", None)
        return cls(**config, load_backbone_weights=False)


@ENCODERS.register("image")
def image_encoder(encoder: dict, embedding: dict, source_vocab_size=None, inputs_are_features=False, name="encoder"):
    """An `ImageEncoder` from the `model.encoder` config section (a plain dict; `embedding` is unused)."""
    return ImageEncoder.from_model_config(encoder, inputs_are_features=inputs_are_features, name=name)
