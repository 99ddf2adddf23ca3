#!/usr/bin/env bash
# System packages some features and tests use, installed from Debian's packages only when missing:
#   default-jre-headless  `java` for the coco-caption metrics (pycocoevalcap's PTB tokenizer and METEOR 1.5);
#   chromium, chromium-driver  the headless browser of tests/test_serve_browser.py (the `seq2seq serve` page).
# Needs root (or sudo). Without them the METEOR/coco-caption metrics report "skipped" with the reason and the
# browser test skips with the reason; nothing else depends on them.
set -uo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[system] no apt-get: not installing ${missing[*]} (the tests that need them skip with the reason)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "[system] not root and no sudo: not installing ${missing[*]}" >&2
    exit 0
  fi
fi
echo "[system] installing ${missing[*]}" >&2
{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"; } || echo "[system] could not install ${missing[*]}; the tests that need them will skip" >&2
exit 0
