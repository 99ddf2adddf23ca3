#!/usr/bin/env bash
# The main job, from a fresh clone: set up .venv, train the Spanish->English demo on the Tatoeba pairs,
# evaluate it on the held-out test split (sacreBLEU + nltk BLEU), export a SavedModel, translate new
# sentences with the export; then train, evaluate and export the small Flickr8k captioning model and
# caption a few test images.
#
# Data: $SEQ2SEQ_DATA_DIR (default ../shared/data) must hold anki/spa-eng.txt (and flickr8k/ for captioning);
# without it the translation data is downloaded (needs internet). Outputs go to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export SEQ2SEQ_DATA_DIR="${SEQ2SEQ_DATA_DIR:-$(cd .. && pwd)/shared/data}"
RUNS="${RUNS:-runs}"
started=$(date +%s)

extra=()
if [ ! -f "$SEQ2SEQ_DATA_DIR/anki/spa-eng.txt" ]; then
  echo "[demo] $SEQ2SEQ_DATA_DIR/anki/spa-eng.txt not found: downloading the Tatoeba pairs" >&2
  extra+=(--set data.download=true --set "data.cache_dir=$PWD/$RUNS/downloads")
fi

echo "[demo] translation: training configs/translation/spa_en_demo.yaml (about 20 minutes on 2 CPU cores)" >&2
seq2seq train configs/translation/spa_en_demo.yaml --model-dir "$RUNS/spa_en" "${extra[@]}"
seq2seq export --model-dir "$RUNS/spa_en" --output "$RUNS/spa_en/export"
echo "[demo] translations of new sentences by the exported SavedModel:" >&2
printf '%s\n' "Mañana vamos a la playa con mis primos." "¿Por qué no me llamaste anoche?" \
  "El tren sale a las ocho." "Me gustaría aprender a tocar la guitarra." "Mi hermana trabaja en un hospital." \
  | seq2seq translate --saved-model "$RUNS/spa_en/export"

if [ -d "$SEQ2SEQ_DATA_DIR/flickr8k/images" ]; then
  echo "[demo] captioning: training configs/captioning/flickr8k_mobilenet.yaml" >&2
  seq2seq train configs/captioning/flickr8k_mobilenet.yaml --model-dir "$RUNS/flickr8k"
  seq2seq export --model-dir "$RUNS/flickr8k" --output "$RUNS/flickr8k/export"
  mapfile -t images < <(head -n 5 "$SEQ2SEQ_DATA_DIR/flickr8k/subset_testImages.txt" | sed "s#^#$SEQ2SEQ_DATA_DIR/flickr8k/images/#")
  seq2seq caption --model-dir "$RUNS/flickr8k" "${images[@]}" --attention-plot "$RUNS/flickr8k/attention.png"
else
  echo "[demo] $SEQ2SEQ_DATA_DIR/flickr8k/images not found: skipping the captioning demo" >&2
fi
echo "[demo] done in $(( ($(date +%s) - started) / 60 )) minutes; metrics in $RUNS/*/metrics.json" >&2
