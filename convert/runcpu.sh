#!/usr/bin/env bash
# The whole conversion pipeline at smoke-test size on a CPU: the embedded Gemma 3 270M, a handful
# of examples and steps, registered as gemma-3-270m-smoke, then one extraction through it.
# Checks a machine end to end in minutes; the loss will not have moved much.
#
#   convert/runcpu.sh [ELMTEX_DIR] [REPORT]     (ELMTEX_DIR holds train.jsonl and val.jsonl)
set -euo pipefail
data="${1:-data/elmtex-open}"
report="${2:-samples/case_report.txt}"
out="${RUN_DIR:-runs/gemma-3-270m-smoke}"

python -m convert pipeline --preset gemma-270m \
  --set name=gemma-3-270m-smoke \
  --set "train_file=$data/train.jsonl" --set "val_file=$data/val.jsonl" \
  --set "out_dir=$out" \
  --set steps=4 --set grad_accum=2 --set max_examples=16 --set eval_examples=4 --set max_length=2048
python -m edge_extract extract --model gemma-3-270m-smoke "$report"
