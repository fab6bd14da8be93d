#!/usr/bin/env bash
# The shipped default's training runs on one CUDA GPU, all at once: the recipe
# (gemma-3-270m-elmtex.toml) and the variants its numbers are compared with, each a `train` of
# edge-extract-convert in its own process (a 270M model leaves most of an H200 idle).
#
#   convert/recipes/gemma-3-270m-elmtex-gpu.sh BASE_DIR DATA_ROOT OUT [SECONDS]
#
# BASE_DIR: the from-gguf checkpoint of the embedded GGUF; DATA_ROOT: folders main/ noinj/ s1500/
# s585/ made by `prepare` (docs/convert.md, "Training on a GPU machine without network"); OUT: one .tgz per run
# (adapter in float16, train_config.json, metrics.json, loss.png). SECONDS bounds all runs
# (default 420): a run stopped by it leaves its latest checkpoint, packed instead (its adapter only:
# the optimizer state would not fit what a lent GPU machine sends back).
set -uo pipefail
base=$1 data=$2 out=$3 limit=${4:-420}
python=${PYTHON:-python3}
convert="$python -m convert"
extra=${EDGE_EXTRACT_TRAIN_ARGS:-}  # e.g. a smoke test: --set epochs=null --set steps=1
recipe=convert/recipes/gemma-3-270m-elmtex.toml
# Same recipe, GPU micro-batches: 4 examples x 4 accumulation = the recipe's 16 per step.
gpu=(--set batch_size=4 --set grad_accum=4 --set threads=2 --set checkpoint_every=50 --set log_every=25)
deadline=$((SECONDS + limit))
train() {  # NAME ARGS...: one run, stopped at the deadline
  local name=$1; shift
  mkdir -p "$data/$name" && ln -sfn "$base" "$data/$name/base"
  # shellcheck disable=SC2086
  timeout $((deadline - SECONDS)) $convert train --config "$recipe" "${gpu[@]}" --set out_dir="$data/$name" "$@" $extra \
    >"$out/$name.log" 2>&1
}
# The shipped recipe and the data-scaling points at equal epochs; the run without injected copies
# (the injection ablation) starts when the smallest one is done.
train main &
scaling=(--set injection_fraction=0 --set stop_at=null)
train s1500 "${scaling[@]}" --set max_examples=1500 &
(train s585 "${scaling[@]}" --set max_examples=585; train noinj "${scaling[@]}") &
wait
"$python" - "$data" "$out" <<'PY'
import json, sys, tarfile, pathlib
from safetensors.torch import load_file, save_file
data, out = map(pathlib.Path, sys.argv[1:])
for run in sorted(p for p in data.iterdir() if p.is_dir()):
    folder = next((f for f in (run / "adapter", run / "checkpoint") if (f / "adapter_model.safetensors").is_file()), None)
    metrics = json.loads((folder / "metrics.json").read_text()) if folder and (folder / "metrics.json").is_file() else {}
    losses = metrics.get("losses", [])
    print(f"{run.name}: {folder.name if folder else 'nothing'} steps {len(losses)} "
          f"last loss {losses[-1] if losses else None} val {metrics.get('val_losses')} {metrics.get('seconds')}s")
    if folder is None:
        continue
    weights = load_file(folder / "adapter_model.safetensors")
    save_file({k: v.half() for k, v in weights.items()}, folder / "adapter_model.safetensors")
    with tarfile.open(out / f"{run.name}.tgz", "w:gz") as tar:
        for f in folder.iterdir():
            if f.name != "trainer_state.pt":
                tar.add(f, arcname=f"{run.name}/{folder.name}/{f.name}")
with tarfile.open(out / "logs.tgz", "w:gz") as tar:
    for log in out.glob("*.log"):
        tar.add(log, arcname=log.name)
        log.unlink()
PY
