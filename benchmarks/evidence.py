"""Evidence spans on an evaluation run: how many predicted items are found in their report, and
whether the ones not found are the wrong ones. No model runs: it aligns the run's records again.

    .venv/bin/python -m benchmarks.evidence runs/eval/default --gold ../shared/data/elmtex-open/val.jsonl

Reads the run's predictions.jsonl (from `edge-extract eval run`) and the gold file (reports and
summaries, by id). For each fuzzy threshold it prints the share of predicted items found exactly,
fuzzily and not at all, and the precision of found and not-found items: the share that match a
gold item of their field (token F1 >= ITEM_THRESHOLD, the item metric's own rule; age by
`age_correct`). It also checks that every span's text matches its item and times the alignment.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from rapidfuzz import fuzz

from edge_extract.evaluation import read_gold, read_predictions
from edge_extract.evidence import FUZZY_MIN, Evidence, align, normalise
from edge_extract.metrics import ITEM_THRESHOLD, age_correct, item_tokens, token_f1
from edge_extract.schema import Record, items

THRESHOLDS = (50.0, 60.0, 65.0, 70.0, 75.0, 80.0, 90.0, 100.0)


def _right(name: str, item: str, gold: Record) -> bool:
    if name == "age":
        return age_correct(item, gold.age)
    tokens = item_tokens(item)
    return any(token_f1(tokens, item_tokens(other)) >= ITEM_THRESHOLD for other in items(getattr(gold, name)))


def _span_matches(entry: Evidence, text: str, threshold: float) -> bool:
    if entry.start is None or entry.end is None:
        return True
    span = normalise(text[entry.start : entry.end])
    if entry.match == "exact":
        return span == normalise(entry.item)
    return fuzz.ratio(normalise(entry.item), span) >= threshold


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def measure(records: list[tuple[Record, str, Record]], threshold: float) -> tuple[Counter[str], float]:
    """Counts of (match kind, right or wrong) and of bad spans; seconds per record.
    `records`: (predicted record, report text, gold record)."""
    counts: Counter[str] = Counter()
    seconds = 0.0
    for record, text, gold in records:
        started = time.perf_counter()
        evidence = align(text, record, threshold=threshold)
        seconds += time.perf_counter() - started
        for name, entries in evidence.items():
            for entry in entries:
                grounded = "unfound" if entry.match == "none" else "found"
                counts[entry.match] += 1
                counts[f"{grounded} right"] += _right(name, entry.item, gold)
                counts[grounded] += 1
                counts["bad spans"] += not _span_matches(entry, text, threshold)
    return counts, seconds / max(len(records), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `edge-extract eval run`")
    parser.add_argument("--gold", type=Path, required=True, help="the ELMTEX-layout file it was run on")
    args = parser.parse_args()
    # Paired by report hash, as `edge-extract eval score` pairs them.
    reports = {report.sha256: report for report in read_gold(args.gold)}
    records = []
    for result in read_predictions(args.run):
        report = reports[result.provenance.input_sha256]
        if result.summary is not None and report.gold is not None:
            records.append((result.summary, report.text, report.gold))
    print(f"{len(records)} records; default threshold {FUZZY_MIN:g}")
    # The gold items themselves, for scale: how much annotators paraphrase their report.
    gold = [(gold, text, gold) for _, text, gold in records]
    print("| fuzzy min | items | exact | fuzzy | not found | precision found | precision not found | ms/record |")
    print("|---|---|---|---|---|---|---|---|")
    runs = [*((f"{t:g}", t, records) for t in THRESHOLDS), (f"gold, {FUZZY_MIN:g}", FUZZY_MIN, gold)]
    for label, threshold, pairs in runs:
        counts, seconds = measure(pairs, threshold)
        if counts["bad spans"]:
            raise SystemExit(f"{counts['bad spans']} spans do not match their item at {label}")
        total = counts["exact"] + counts["fuzzy"] + counts["none"]
        cells = [
            _share(counts["exact"], total),
            _share(counts["fuzzy"], total),
            _share(counts["none"], total),
            _share(counts["found right"], counts["found"]),
            _share(counts["unfound right"], counts["unfound"]),
        ]
        print(f"| {label} | {total} | " + " | ".join(cells) + f" | {seconds * 1000:.1f} |")


if __name__ == "__main__":
    main()
