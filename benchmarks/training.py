"""CPU training speed: float32 against bf16 autocast (and threads), same examples, same start.

    .venv/bin/edge-extract-convert from-gguf gemma-3-270m runs/base      # once: the base checkpoint
    .venv/bin/python -m benchmarks.training --base runs/base             # 6 steps x 2 examples, 1 and 2 threads

Each mode (float32 or bf16 autocast, at each thread count) is a real `train` run of the shipped
recipe (convert/recipes/gemma-3-270m-elmtex.toml) on the same first training examples with the
same seed, so the loss curves must agree and the seconds per example compare like with like. The
first row is the baseline of the ratios.
Not a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from convert import prepare, train_lora
from convert.presets import load_config

RECIPE = Path(__file__).resolve().parents[1] / "convert" / "recipes" / "gemma-3-270m-elmtex.toml"
PRECISIONS = {"float32": "autocast=off", "bf16 autocast": "autocast=bfloat16"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="from-gguf checkpoint of the embedded GGUF")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--per-step", type=int, default=2, help="examples per optimizer step")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to try")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-extract-train-bench-") as tmp:
        common = [
            f"steps={args.steps}",
            "epochs=null",
            "batch_size=1",
            f"grad_accum={args.per_step}",
            f"max_examples={args.steps * args.per_step}",
            "injection_fraction=0",
            "eval_examples=2",
            "checkpoint_every=0",
            "log_every=1",
            "warmup_steps=1",
        ]
        data_run = load_config(RECIPE, overrides=[*common, f"out_dir={tmp}/data-run"])
        (Path(tmp) / "data-run" / "base").parent.mkdir(parents=True)
        (Path(tmp) / "data-run" / "base").symlink_to(args.base.resolve())
        prepare.main(data_run)
        modes = {
            f"{precision}, {threads} thread(s)": [setting, f"threads={threads}"]
            for threads in args.threads
            for precision, setting in PRECISIONS.items()
        }
        for number, (mode, settings) in enumerate(modes.items()):
            run = Path(tmp) / f"run-{number}"
            run.mkdir()
            (run / "base").symlink_to(args.base.resolve())
            (run / "data").symlink_to(Path(tmp) / "data-run" / "data")
            config = load_config(RECIPE, overrides=[*common, *settings, f"out_dir={run}"])
            result = train_lora.train(config)
            metrics = json.loads((result.adapter_dir / "metrics.json").read_text())
            # The first step pays for warm-up (allocations, kernel selection): the median of the rest.
            seconds = statistics.median(metrics["step_seconds"][1:]) / args.per_step
            rows.append({"mode": mode, "seconds_per_example": seconds, "losses": result.losses})

    base = rows[0]  # float32 at the first thread count
    print(f"\n{args.steps} steps x {args.per_step} examples, recipe {RECIPE.name}")
    print(f"{'mode':<26} {'s/example':>9} {'speed-up':>8} {'max |loss - fp32|':>17}  losses")
    for row in rows:
        gap = max(abs(a - b) for a, b in zip(row["losses"], base["losses"]))
        losses = " ".join(f"{loss:.3f}" for loss in row["losses"])
        speedup = base["seconds_per_example"] / row["seconds_per_example"]
        print(f"{row['mode']:<26} {row['seconds_per_example']:>9.2f} {speedup:>7.2f}x {gap:>17.4f}  {losses}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
