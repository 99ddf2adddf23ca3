"""Benchmark: one training epoch on Flickr8k with the backbone feature cache vs. without it.

Both runs train the same captioning model (a frozen backbone, from the config) for one epoch over the
same (image, caption) examples:
  * cached:   the model is fed backbone features read from `pipelines.feature_cache.FeatureCache`
              (the features are computed once first; that one-off cost is reported separately);
  * uncached: every step decodes the JPEGs, resizes them and runs the CNN (what training would do
              without the cache).
Each run first trains two batches untimed (tracing), then times one full epoch. Prints both epoch
times and their ratio; the last line is JSON.

    SEQ2SEQ_DATA_DIR=/work/shared/data python benchmarks/feature_cache.py --quick     # 48 images, < 5 min
    SEQ2SEQ_DATA_DIR=/work/shared/data python benchmarks/feature_cache.py             # all 753 train images
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "captioning",
                              "flickr8k_mobilenet.yaml")


def _epoch_seconds(model, dataset) -> float:
    """Untimed warm-up on two batches (tracing), then the wall time of one full epoch over `dataset`."""
    model.fit(dataset.take(2), epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - started


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="captioning config with a frozen backbone")
    parser.add_argument("--quick", action="store_true", help="48 training images instead of all (< 5 min)")
    parser.add_argument("--images", type=int, help="number of training images (default: all, 48 with --quick)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    import keras

    from pipelines.captioning import caption_texts, make_captioning_dataset
    from pipelines.feature_cache import FeatureCache
    from pipelines.tokenizers import train_word_vocabulary
    from seq2seq import captioning
    from seq2seq.config import load_config
    from seq2seq.models import build_model
    from seq2seq.training import compile_model

    images = args.images or (48 if args.quick else None)
    overrides = list(args.overrides) + ([f"data.limit={images}"] if images else [])
    config = load_config(args.config, overrides)
    if not captioning.uses_feature_cache(config):
        parser.error("the config must have a frozen backbone and data.feature_cache: true")
    keras.utils.set_random_seed(config.train.seed)
    items = captioning.read_split(config, "train")
    build_config = captioning._build_config(config, for_training=True)
    with tempfile.TemporaryDirectory(prefix="feature-cache-bench-") as work:
        tokenizer = train_word_vocabulary(caption_texts(items), work, "caption", config.tokenizer.target_vocab_size)
        results = {"config": os.path.relpath(args.config), "images": len(items),
                   "backbone": config.model.encoder.backbone, "batch_size": config.train.batch_size}
        for cached in (True, False):
            model = build_model(build_config, None, tokenizer.vocab_size, inputs_are_features=cached)
            compile_model(model, config.train)
            encoder = model.encoder
            cache = None
            if cached:
                cache = FeatureCache(os.path.join(work, "cache"), encoder.backbone_key)
                started = time.perf_counter()
                cache.features_for(list(items), encoder.feature_fn, progress=False)
                results["cache_build_seconds"] = round(time.perf_counter() - started, 2)
            stats: dict = {}
            dataset = make_captioning_dataset(items, tokenizer, config.train.batch_size, config.data.max_target_length,
                                              training=True, image_size=encoder.image_size, features=cache,
                                              feature_fn=encoder.feature_fn, seed=config.train.seed, stats=stats)
            results["examples"] = stats["examples"]
            key = "cached_epoch_seconds" if cached else "uncached_epoch_seconds"
            results[key] = round(_epoch_seconds(model, dataset), 2)
            print(f"{'with' if cached else 'without'} feature cache: {results[key]:.2f} s per epoch "
                  f"({stats['examples']} examples, {len(items)} images)", flush=True)
        results["speedup"] = round(results["uncached_epoch_seconds"] / results["cached_epoch_seconds"], 2)
        print(f"feature cache speed-up: {results['speedup']:.2f}x (one-off cache build: "
              f"{results['cache_build_seconds']:.2f} s)")
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
