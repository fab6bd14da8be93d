"""Issue 15's one table: how fast the default model turns reports into records, every path side by side.

    .venv/bin/python -m benchmarks.speed                       # all 55 val reports, grammar on 10
    .venv/bin/python -m benchmarks.speed --reports 24 --grammar-reports 6 --concurrency 1 2 4 8

Rows, each in a fresh process (peak RSS is its own), 1 thread unless told, the fine-tuned default:
  (a) unconstrained greedy decoding, as many tokens as (c) writes: the old speed limit;
  (b) llama-cpp-python's stock JSON-schema grammar (the first --grammar-reports reports: slow);
  (c) schema decoding with the adapter applied at load: the default as the issue found it;
  (e) the same with the adapter folded into a Q8_0 file: the default now;
  (f) the whole pipeline (prefix reuse, validation, evidence) with N reports decoded at once
      (`--concurrency N`), throughput over the run, records compared with N = 1.
(a)-(e) process each prompt from an empty cache and time prompt and answer per report; "s/report"
is their median sum. For (f) it is the run's wall time over its reports. Ratios are against (c),
measured in the same run. There is no row (d): prompt-lookup drafts are not shipped;
benchmarks.drafts measures them (docs/performance.md says why).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.decoding import VAL, _fresh, _run


def _batch(threads: int, reports: list[str], concurrency: int) -> dict:
    """The pipeline over the reports, `concurrency` decoded at once: wall time and the records."""
    from edge_extract.api import load_model
    from edge_extract.pipeline import extract_many
    from edge_extract.reading import Report
    from edge_extract.runtime import peak_rss_mb

    extractor = load_model(threads=threads, concurrency=concurrency)
    batch = [Report(id=str(i), text=text, source="-", sha256=str(i)) for i, text in enumerate(reports)]
    started = time.perf_counter()
    results = {r.id: r for r in extract_many(extractor, batch, concurrency=concurrency)}
    wall = time.perf_counter() - started
    sequences = extractor.generator.sequences
    shared = sequences.step_batches if sequences else {}
    steps = sum(shared.values())
    return {
        "wall_s": wall,
        "generated": sum(r.provenance.generated_tokens for r in results.values()),
        "records": [results[r.id].model_dump(include={"summary", "flags"}) for r in batch],
        "peak_rss_mb": peak_rss_mb(),
        "mean_batch": sum(n * k for n, k in shared.items()) / steps if steps else 1.0,
    }


def _per_report(run: dict) -> tuple[float, float]:
    """Median seconds per report (prompt + answer) and sampled tokens per second."""
    rows = run["rows"]
    seconds = statistics.median(r["prompt_s"] + r["generation_s"] for r in rows)
    return seconds, sum(r["sampled_tokens"] for r in rows) / sum(r["generation_s"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=55, help="how many val reports (from the first)")
    parser.add_argument("--grammar-reports", type=int, default=10, help="how many of them for (b)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8], help="N for (f)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=VAL)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    reports = [json.loads(line)["report"] for line in args.data.read_text().splitlines()[: args.reports]]
    t = args.threads
    runs = {"c": _fresh(_run, "c", t, reports, [], None, False), "e": _fresh(_run, "c", t, reports, [], None)}
    lengths = [r["answer_tokens"] for r in runs["e"]["rows"]]
    runs["a"] = _fresh(_run, "a", t, reports, lengths, None)
    few = args.grammar_reports
    runs["b"] = _fresh(_run, "b", t, reports[:few], lengths[:few], None)
    batches = {n: _fresh(_batch, t, reports, n) for n in args.concurrency}

    names = {
        "a": "(a) unconstrained greedy, the old limit",
        "b": f"(b) stock JSON grammar ({few} reports)",
        "c": "(c) schema decoding, adapter at load",
        "e": "(e) schema decoding, folded Q8_0 (default)",
    }
    base_s, _ = _per_report(runs["c"])
    table = Table(title=f"The default model on {len(reports)} elmtex-open val reports, {t} thread(s)")
    for column in ("path", "s/report", "sampled tok/s", "peak RSS MB", "speed vs (c)", "records as N=1"):
        table.add_column(column, justify="left" if column == "path" else "right")
    rows = []
    for key in "abce":
        seconds, rate = _per_report(runs[key])
        if key == "b":  # fewer reports: compare (c) on the same ones
            base_few = statistics.median(r["prompt_s"] + r["generation_s"] for r in runs["c"]["rows"][:few])
            ratio = base_few / seconds
        else:
            ratio = base_s / seconds
        row = (names[key], f"{seconds:.2f}", f"{rate:.1f}", f"{runs[key]['peak_rss_mb']:.0f}", f"{ratio:.2f}x", "")
        rows.append(dict(zip(("path", "s", "rate", "rss", "ratio"), row)))
        table.add_row(*row)
    first = batches[min(batches)]["records"]
    for n, run in batches.items():
        seconds = run["wall_s"] / len(reports)
        same = sum(a == b for a, b in zip(run["records"], first))
        row = (
            f"(f) pipeline, N = {n} at once (mean batch {run['mean_batch']:.1f})",
            f"{seconds:.2f} ({60 / seconds:.1f}/min)",
            f"{run['generated'] / run['wall_s']:.1f}",
            f"{run['peak_rss_mb']:.0f}",
            f"{base_s / seconds:.2f}x",
            f"{same}/{len(first)}",
        )
        rows.append(dict(zip(("path", "s", "rate", "rss", "ratio", "same"), row)))
        table.add_row(*row)
    Console(width=150).print(table)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": runs, "batches": batches}, indent=2, default=str))


if __name__ == "__main__":
    main()
