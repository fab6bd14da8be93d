#!/usr/bin/env bash
# The default's GPU training, all at once on one CUDA GPU: each run a `train` of edge-extract-convert
# in its own process (a 270M model leaves most of an H200 idle), on the data `prepare` made for
# gemma-3-270m-elmtex.toml.
#
#   convert/recipes/gemma-3-270m-elmtex-gpu.sh BASE_DIR DATA_DIR START_ADAPTER OUT [SECONDS]
#
# BASE_DIR: the from-gguf checkpoint of the embedded GGUF; DATA_DIR: the prepared data folder
# (docs/convert.md, "Training on a GPU machine without network"); START_ADAPTER: the PEFT folder of the
# previous default (LoRA r16, 300 steps at lr 2e-4), which two runs continue; OUT: one .tgz per run
# (adapter in float16, train_config.json, metrics.json, loss.png; split in 15 MB pieces where larger).
# SECONDS bounds all runs (default 420): a run stopped by it leaves its latest checkpoint, packed
# instead (its adapter only: the optimizer state would not fit what a lent GPU machine sends back).
set -uo pipefail
base=$1 data=$2 start=$3 out=$4 limit=${5:-420}
python=${PYTHON:-python3}
convert="$python -m convert"
extra=${EDGE_EXTRACT_TRAIN_ARGS:-}  # e.g. a smoke test: --set epochs=null --set steps=1
recipe=convert/recipes/gemma-3-270m-elmtex.toml
# The recipe with GPU micro-batches: 4 examples x 4 accumulation = the recipe's 16 per step.
gpu=(--set batch_size=4 --set grad_accum=4 --set threads=2 --set checkpoint_every=25 --set log_every=25)
runs=$(mktemp -d)
deadline=$((SECONDS + limit))
train() {  # NAME ARGS...: one run, stopped at the deadline
  local name=$1; shift
  mkdir -p "$runs/$name" && ln -sfn "$base" "$runs/$name/base" && ln -sfn "$data" "$runs/$name/data"
  # shellcheck disable=SC2086
  timeout $((deadline - SECONDS)) $convert train --config "$recipe" "${gpu[@]}" --set out_dir="$runs/$name" "$@" $extra \
    >"$out/$name.log" 2>&1
}
# The recipe (LoRA r64, lr 3e-4, 1.5 epochs: the shipped default); the same at r16 and lr 5e-4; the
# previous default continued: its schedule's last 190 steps (lr 7e-5 down to 0), and one more epoch
# (lr 1.5e-4 down to 0).
continue=(--set init_adapter="$start" --set warmup_steps=10 --set stop_at=null)
train r64 &
train lr5e-4 --set lora_r=16 --set lora_alpha=32 --set learning_rate=5e-4 &
train anneal "${continue[@]}" --set epochs=null --set steps=190 --set learning_rate=7e-5 &
train more "${continue[@]}" --set epochs=1 --set learning_rate=1.5e-4 &
wait
"$python" - "$runs" "$out" <<'PY'
import json, sys, tarfile, pathlib
from safetensors.torch import load_file, save_file
runs, out = map(pathlib.Path, sys.argv[1:])
for run in sorted(runs.iterdir()):
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
for f in "$out"/*.tgz; do  # what a lent machine sends back: files of at most 16 MiB
  if [ "$(stat -c %s "$f")" -gt 15000000 ]; then split -b 15000000 "$f" "$f." && rm "$f"; fi
done
