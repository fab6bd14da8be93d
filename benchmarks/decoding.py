"""Decoding speed of edge-extract against its limits, on real reports.

    .venv/bin/python -m benchmarks.decoding                 # 10 val reports, 1 and 2 threads
    .venv/bin/python -m benchmarks.decoding --reports 55 --threads 1 --json out.json
    .venv/bin/python -m benchmarks.decoding --skip-grammar --model gemma-3-270m   # another registered model

For each report the prompt is processed once from an empty cache (the same cost for every path),
then the answer is generated three ways:
  (a) unconstrained greedy decoding of as many tokens as (c)'s answer has: the speed limit;
  (b) llama-cpp-python's stock JSON-schema grammar (what peers do);
  (c) edge-extract's schema-driven decoding (skeleton fed, values generated).
"answer tok/s" counts every token of the JSON answer; "sampled tok/s" only those the model chose
(for (c) the skeleton is fed as a batch, not sampled). Ratios use answer tokens/s.
Every configuration runs in a fresh process, so peak RSS is its own. A last pass runs the real
pipeline (prefix reuse across reports) and prints the median seconds per report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elmtex-open" / "val.jsonl"
PATHS = {"a": "unconstrained (limit)", "b": "stock JSON grammar", "c": "edge-extract schema"}


def _run(path: str, threads: int, reports: list[str], lengths: list[int], model: str | None, fold: bool = True) -> dict:
    """One configuration in a fresh process: per-report prompt/generation seconds and tokens
    (`fold=False`: a folded model's adapter applied at load instead)."""
    from edge_extract.api import load_model
    from edge_extract.decoding import SchemaDecoder
    from edge_extract.errors import OutputInvalidError
    from edge_extract.prompt import render_prompt
    from edge_extract.runtime import peak_rss_mb
    from edge_extract.schema import record_json_schema
    from edge_extract.validate import parse_record

    extractor = load_model(model, threads=threads, fold=fold)
    runtime = extractor.runtime
    decoder = SchemaDecoder(runtime, settings=extractor.generator.settings)
    chat = extractor.manifest.prompt_format
    rows = []
    for index, text in enumerate(reports):
        tokens = runtime.tokenize_prompt(render_prompt(text, chat=chat))
        runtime.truncate(0)
        started = time.perf_counter()
        logits = runtime.start(tokens)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        if path == "a":
            for _ in range(lengths[index]):
                logits = runtime.feed([int(np.argmax(logits))])
            answer_tokens, raw = lengths[index], None
            sampled = answer_tokens
        elif path == "b":
            raw, answer_tokens = runtime.complete(tokens, max_tokens=6000, grammar_schema=record_json_schema())
            sampled = answer_tokens
        else:
            values, stats = decoder.decode(tokens)
            raw, answer_tokens = json.dumps(values), stats.generated_tokens + stats.fed_tokens
            sampled = stats.generated_tokens
        generation_s = time.perf_counter() - started
        valid = None
        if raw is not None:
            try:
                parse_record(raw)
                valid = True
            except OutputInvalidError:
                valid = False
        rows.append(
            {
                "prompt_tokens": len(tokens),
                "prompt_s": prompt_s,
                "answer_tokens": answer_tokens,
                "sampled_tokens": sampled,
                "generation_s": generation_s,
                "valid": valid,
            }
        )
    runtime.close()
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


def _pipeline(threads: int, reports: list[str], model: str | None) -> dict:
    """The real pipeline over the reports in order (prefix reuse on): seconds per report."""
    from edge_extract.api import extract, load_model
    from edge_extract.runtime import peak_rss_mb

    extractor = load_model(model, threads=threads)
    seconds, ok = [], 0
    for text in reports:
        result = extract(text, extractor=extractor)
        seconds.append(result.provenance.seconds)
        ok += result.status == "ok"
    return {
        "median_s": statistics.median(seconds),
        "valid": ok / len(reports),
        "peak_rss_mb": peak_rss_mb(),
    }


def _fresh(function, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _summary(name: str, run: dict) -> dict:
    rows = run["rows"]
    tokens = sum(r["answer_tokens"] for r in rows)
    generation = sum(r["generation_s"] for r in rows)
    valid = [r["valid"] for r in rows if r["valid"] is not None]
    return {
        "path": name,
        "tokens_per_s": tokens / generation,
        "sampled_per_s": sum(r["sampled_tokens"] for r in rows) / generation,
        "prompt_s": statistics.median(r["prompt_s"] for r in rows),
        "generation_s": statistics.median(r["generation_s"] for r in rows),
        "answer_tokens": statistics.median(r["answer_tokens"] for r in rows),
        "peak_rss_mb": run["peak_rss_mb"],
        "valid": sum(valid) / len(valid) if valid else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=10, help="how many val reports")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data", type=Path, default=VAL)
    parser.add_argument("--skip-grammar", action="store_true", help="skip the slow stock grammar path (b)")
    parser.add_argument("--model", help="a registered model (default: the default model)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    reports = [json.loads(line)["report"] for line in args.data.read_text().splitlines()[: args.reports]]
    results = []
    for threads in args.threads:
        c = _fresh(_run, "c", threads, reports, [], args.model)
        lengths = [r["answer_tokens"] for r in c["rows"]]
        a = _fresh(_run, "a", threads, reports, lengths, args.model)
        runs = {"a": a, "c": c}
        if not args.skip_grammar:
            runs["b"] = _fresh(_run, "b", threads, reports, lengths, args.model)
        summary = {key: _summary(PATHS[key], run) for key, run in sorted(runs.items())}
        pipeline = _fresh(_pipeline, threads, reports, args.model)
        results.append({"threads": threads, "paths": summary, "pipeline": pipeline})

    model = args.model or "the default model"
    table = Table(title=f"Decoding on {len(reports)} elmtex-open val reports ({model}, greedy)")
    columns = ("threads", "path", "answer tok/s", "sampled tok/s", "prompt s", "gen s", "answer tok", "RSS MB", "valid")
    for column in columns:
        table.add_column(column, justify="right" if column not in ("path",) else "left")
    table.add_column("c/a", justify="right")
    table.add_column("c/b", justify="right")
    for result in results:
        paths = result["paths"]
        for key, row in paths.items():
            ratio_a = ratio_b = ""
            if key == "c":
                ratio_a = f"{row['tokens_per_s'] / paths['a']['tokens_per_s']:.2f}x"
                ratio_b = f"{row['tokens_per_s'] / paths['b']['tokens_per_s']:.2f}x" if "b" in paths else "-"
            table.add_row(
                str(result["threads"]),
                f"({key}) {row['path']}",
                f"{row['tokens_per_s']:.1f}",
                f"{row['sampled_per_s']:.1f}",
                f"{row['prompt_s']:.2f}",
                f"{row['generation_s']:.2f}",
                f"{row['answer_tokens']:.0f}",
                f"{row['peak_rss_mb']:.0f}",
                "-" if row["valid"] is None else f"{row['valid']:.0%}",
                ratio_a,
                ratio_b,
            )
    console = Console(width=150)
    console.print(table)
    for result in results:
        pipe = result["pipeline"]
        console.print(
            f"pipeline, {result['threads']} thread(s): median {pipe['median_s']:.2f} s per report "
            f"(prefix reuse on), {pipe['valid']:.0%} schema-valid, peak RSS {pipe['peak_rss_mb']:.0f} MB"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
