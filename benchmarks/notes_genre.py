"""Does a model trained on case reports hold up on clinical notes? mtsamples-weak, test split.

    .venv/bin/python -m benchmarks.notes_genre --models old-default gemma-3-270m-elmtex --notes 30

The notes (discharge summaries, consults, SOAP notes, with section headers) carry weak labels: each
ELMTEX field holds the body of the section whose header maps to it, null where none does. A section
body is not an item list, so item F1 means nothing here; what the table shows per model, over the
fields that have a section:
- found: the share of those fields the model filled (not N/A);
- ROUGE-L: against the section body (low by construction: a section is long prose);
- grounded: the share of predicted item words that occur in the note (copied, not invented);
- age / gender: accuracy where the note's header block gives them;
- loop/cap and invalid: records with a `loop:`/`capped:` flag, records that are not valid.
Both models read the same notes in the same run. Not a test: a genre check, measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from edge_extract import api
from edge_extract.metrics import EXACT_FIELDS, is_absent, item_tokens, rouge
from edge_extract.schema import items

NOTES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mtsamples-weak"


def test_notes(count: int) -> list[dict]:
    """The first `count` notes of the test split, in file order."""
    test_ids = set(json.loads((NOTES / "split_ids.json").read_text(encoding="utf-8"))["test"])
    rows = (json.loads(line) for line in (NOTES / "mtsamples_weakgold.jsonl").open(encoding="utf-8"))
    return [row for row in rows if row["id"] in test_ids][:count]


def score(record: dict[str, str], note: dict) -> dict[str, list[float]]:
    """Per-measure values for one note (pooled over notes by the caller)."""
    gold = {name: value for name, value in note["gold_elmtex"].items() if value is not None}
    words = set(item_tokens(note["text"]))
    out: dict[str, list[float]] = {"found": [], "ROUGE-L": [], "grounded": [], "age": [], "gender": []}
    for name, section in gold.items():
        if name in EXACT_FIELDS:
            # The weak labels write "female"; the schema's choices are capitalised.
            gold_value = section.capitalize() if name == "gender" else section
            out[name].append(float(EXACT_FIELDS[name](record[name], gold_value)))
            continue
        out["found"].append(float(not is_absent(record[name])))
        out["ROUGE-L"].append(rouge(record[name], section)["rougeL"])
    predicted = [
        token
        for name in record
        if name not in EXACT_FIELDS
        for item in items(record[name])
        for token in item_tokens(item)
    ]
    out["grounded"].extend(float(token in words) for token in predicted)
    return out


def run(model: str, notes: list[dict], threads: int) -> dict[str, float]:
    extractor = api.load_model(model, threads=threads)
    pooled: dict[str, list[float]] = {}
    seconds, loops, invalid = [], 0, 0
    for note in notes:
        start = time.perf_counter()
        result = api.extract(note["text"], extractor=extractor, report_id=note["id"])
        seconds.append(time.perf_counter() - start)
        loops += any(flag.startswith(("loop:", "capped:")) for flag in result.flags)
        if result.summary is None:
            invalid += 1
            continue
        for measure, values in score(result.summary.model_dump(), note).items():
            pooled.setdefault(measure, []).extend(values)
    extractor.runtime.close()
    row = {measure: statistics.fmean(values) for measure, values in pooled.items() if values}
    return row | {"loop/cap": loops, "invalid": invalid, "s/note": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="registered model names")
    parser.add_argument("--notes", type=int, default=30, help="test-split notes to read")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    notes = test_notes(args.notes)
    table = {model: run(model, notes, args.threads) for model in args.models}
    measures = list(next(iter(table.values())))
    print(f"{len(notes)} mtsamples-weak test notes, {args.threads} threads")
    print(f"| model | {' | '.join(measures)} |")
    print(f"|---|{'---|' * len(measures)}")
    for model, row in table.items():
        cells = (f"{row[m]:.3g}" if isinstance(row[m], float) else str(row[m]) for m in measures)
        print(f"| {model} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
