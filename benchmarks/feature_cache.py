"""Benchmark: one training epoch on Flickr8k with the backbone feature cache vs. without it, per backbone.

For each backbone, both runs train the same captioning model (frozen backbone) for one epoch over the
same (image, caption) examples:
  * cached:   the model is fed backbone features read from `pipelines.feature_cache.FeatureCache`
              (the features are computed once first; that one-off cost is reported separately);
  * uncached: every step decodes the JPEGs, resizes them and runs the CNN (what training would do
              without the cache).
Each run first trains two batches untimed (tracing), then times one full epoch.

The speed-up depends on how much of an uncached step the CNN is, i.e. on the backbone. The config's own
backbone (default: ImageNet MobileNetV2 alpha 0.35) is measured with its weights; the other
backbones listed with --backbones are timing-only: `weights: null` (random initialisation has exactly the
cost of ImageNet weights, and needs no download). Prints a table; the last line is JSON with one entry per
backbone and `speedup` = the config backbone's ratio.

    SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/feature_cache.py --quick     # 48 images, < 5 min
    SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/feature_cache.py --images 200
    SEQ2SEQ_DATA_DIR=../shared/data python benchmarks/feature_cache.py --backbones config   # config's only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "captioning", "flickr8k_mobilenet.yaml"
)


def _epoch_seconds(model, dataset) -> float:
    """Untimed warm-up on two batches (tracing), then the wall time of one full epoch over `dataset`."""
    model.fit(dataset.take(2), epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - started


DEFAULT_BACKBONES = "config,MobileNetV2:1.0,ResNet50,InceptionV3"


def _backbone_overrides(spec: str) -> list:
    """`--backbones` entry -> config overrides: "config" (none), "Name" or "Name:alpha" (weights null)."""
    if spec == "config":
        return []
    name, _, alpha = spec.partition(":")
    return [f"model.encoder.backbone={name}", "model.encoder.weights=null", f"model.encoder.alpha={alpha or 1.0}"]


def measure(config, items, tokenizer, work: str) -> dict:
    """Cached and uncached epoch seconds (and the one-off cache build) for one config's backbone."""
    from pipelines.captioning import make_captioning_dataset
    from pipelines.feature_cache import FeatureCache
    from seq2seq.model.seq2seq import build_model
    from seq2seq.tasks import captioning
    from seq2seq.training.fit import compile_model

    build_config = captioning._build_config(config, for_training=True)
    result = {}
    for cached in (True, False):
        model = build_model(build_config, None, tokenizer.vocab_size, inputs_are_features=cached)
        compile_model(model, config.train)
        encoder = model.encoder
        cache = None
        if cached:
            cache = FeatureCache(os.path.join(work, "cache"), encoder.backbone_key)
            started = time.perf_counter()
            cache.features_for(list(items), encoder.feature_fn, progress=False)
            result["cache_build_seconds"] = round(time.perf_counter() - started, 2)
        stats: dict = {}
        dataset = make_captioning_dataset(
            items,
            tokenizer,
            config.train.batch_size,
            config.data.max_target_length,
            training=True,
            image_size=encoder.image_size,
            features=cache,
            feature_fn=encoder.feature_fn,
            seed=config.train.seed,
            stats=stats,
        )
        result["examples"] = stats["examples"]
        result["cached_epoch_seconds" if cached else "uncached_epoch_seconds"] = round(
            _epoch_seconds(model, dataset), 2
        )
    result["speedup"] = round(result["uncached_epoch_seconds"] / result["cached_epoch_seconds"], 2)
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="captioning config with a frozen backbone")
    parser.add_argument("--quick", action="store_true", help="48 training images instead of all (< 5 min)")
    parser.add_argument("--images", type=int, help="number of training images (default: all, 48 with --quick)")
    parser.add_argument(
        "--backbones",
        default=None,
        help=f"comma-separated: config | Name | Name:alpha (default {DEFAULT_BACKBONES!r}; "
        "with --quick: 'config,ResNet50')",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    import keras

    from pipelines.captioning import caption_texts
    from pipelines.tokenizers import train_word_vocabulary
    from seq2seq.config import load_config
    from seq2seq.tasks import captioning

    images = args.images or (48 if args.quick else None)
    overrides = list(args.overrides) + ([f"data.limit={images}"] if images else [])
    backbones = (args.backbones or ("config,ResNet50" if args.quick else DEFAULT_BACKBONES)).split(",")
    config = load_config(args.config, overrides)
    if not captioning.uses_feature_cache(config):
        parser.error("the config must have a frozen backbone and data.feature_cache: true")
    items = captioning.read_split(config, "train")
    results = {
        "config": os.path.relpath(args.config),
        "images": len(items),
        "batch_size": config.train.batch_size,
        "backbones": [],
    }
    with tempfile.TemporaryDirectory(prefix="feature-cache-bench-") as work:
        tokenizer = train_word_vocabulary(caption_texts(items), work, "caption", config.tokenizer.target_vocab_size)
        print(
            f"{'backbone':<24} {'cached s/epoch':>15} {'uncached s/epoch':>17} {'speed-up':>9} {'cache build s':>14}",
            flush=True,
        )
        for spec in backbones:
            backbone_config = load_config(args.config, overrides + _backbone_overrides(spec))
            keras.utils.set_random_seed(backbone_config.train.seed)
            encoder = backbone_config.model.encoder
            label = encoder.backbone + (f" a{encoder.alpha:g}" if encoder.backbone.startswith("MobileNet") else "")
            label += "" if spec != "config" else " (config)"
            row = {"backbone": label, "weights": encoder.weights, **measure(backbone_config, items, tokenizer, work)}
            results["backbones"].append(row)
            print(
                f"{label:<24} {row['cached_epoch_seconds']:>15.2f} {row['uncached_epoch_seconds']:>17.2f} "
                f"{row['speedup']:>8.1f}x {row['cache_build_seconds']:>14.2f}",
                flush=True,
            )
            keras.backend.clear_session()
        results["examples"] = results["backbones"][0]["examples"]
        results["speedup"] = results["backbones"][0]["speedup"]
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
