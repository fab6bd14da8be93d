"""The folded default against the same adapter applied at load, in one process, report by report.

    .venv/bin/python -m benchmarks.fold --baseline default-at-load --reports 6

Register the baseline first (the shipped adapter over the embedded base, applied at load):

    edge-extract-convert register default-at-load gemma-3-270m \
        --adapter models/gemma-3-270m-elmtex/gemma-3-270m-elmtex-adapter-f16.gguf --decoding absent_bias=3

Both models are loaded once and take turns (ABBA order) on each val report, so a machine whose
speed drifts (other jobs, a busy host) slows both alike; a benchmark that runs one model after the
other measured 0.93x where this one measures the fold's real gain. Generated tokens per second is
the comparable number: the two write slightly different answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elmtex-open" / "val.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="a registered model: the adapter applied at load")
    parser.add_argument("--model", default=None, help="the model to measure (default: the default model)")
    parser.add_argument("--reports", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from edge_extract.api import extract, load_model

    rows = [json.loads(line) for line in VAL.read_text().splitlines()[: args.reports]]
    models = {
        "measured": load_model(args.model, threads=args.threads),
        "baseline": load_model(args.baseline, threads=args.threads),
    }
    names = {"measured": models["measured"].manifest.name, "baseline": args.baseline}
    runs: dict[str, list[tuple[float, int]]] = {key: [] for key in models}
    for index, row in enumerate(rows):
        for key in list(models) if index % 2 == 0 else list(models)[::-1]:
            provenance = extract(row["report"], extractor=models[key]).provenance
            runs[key].append((provenance.seconds, provenance.generated_tokens))
    speed = {key: sum(t for _, t in run) / sum(s for s, _ in run) for key, run in runs.items()}
    table = Table(title=f"{len(rows)} val reports, {args.threads} thread(s), models taking turns")
    for column in ("model", "median s/report", "generated tokens", "generated tok/s", "speed vs baseline"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for key, run in runs.items():
        table.add_row(
            names[key],
            f"{statistics.median(s for s, _ in run):.2f}",
            str(sum(t for _, t in run)),
            f"{speed[key]:.1f}",
            f"{speed[key] / speed['baseline']:.2f}x",
        )
    Console(width=120).print(table)
    for extractor in models.values():
        extractor.runtime.close()


if __name__ == "__main__":
    main()
