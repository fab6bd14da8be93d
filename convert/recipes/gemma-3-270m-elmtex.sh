#!/usr/bin/env bash
# Reproduce the shipped default adapter (models/gemma-3-270m-elmtex/) from the repository root:
#
#   convert/recipes/gemma-3-270m-elmtex.sh
#
# One pipeline run of gemma-3-270m-elmtex.toml: 350 steps of 16 examples (5,600 passes). On one H200
# the steps took 495 s beside three other runs; on a CPU with bf16 autocast, about 6.5 s per example
# with one thread (docs/performance.md, measured at r16), so plan most of a day and a night: it resumes
# where it stopped when run again. The result is registered in the user models folder; copy it into models/ with
# `edge-extract-convert register ... --models-dir models` to ship it. On a CUDA machine pass
# EDGE_EXTRACT_TRAIN_ARGS="--set batch_size=4 --set grad_accum=4" (the same 16 examples per step).
set -euo pipefail
convert="${EDGE_EXTRACT_CONVERT:-.venv/bin/edge-extract-convert}"
# shellcheck disable=SC2086
"$convert" pipeline --config convert/recipes/gemma-3-270m-elmtex.toml ${EDGE_EXTRACT_TRAIN_ARGS:-}
