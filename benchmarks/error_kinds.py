"""The kinds of error left in an evaluation run: what a clinician would have to clean up.

    .venv/bin/python -m benchmarks.error_kinds runs/eval/default ../shared/data/elmtex-open/val.jsonl

Reads the run's predictions.jsonl (from `edge-extract eval run`) and the gold file, and counts per
kind, pooled over records (the first column counts the gold itself, for scale):
- cross-field repeats: a predicted item also predicted in another field of the same record
  (a drug list repeated under interventional_therapy);
- near-duplicates: two items of one predicted value that match each other (token F1 >= 0.5, the
  item metric's own threshold), i.e. the same finding twice in other words;
- neighbour-field items: a predicted item without a partner in its own gold field that matches a
  gold item of another field of the record (the right text in the wrong field);
- invented N/A breaks: items written where the gold says N/A, and gold items left out as N/A;
- loops and caps: records with a `loop:` or `capped:` flag.
"""

from __future__ import annotations

import argparse
import json
from itertools import combinations
from pathlib import Path

from edge_extract.metrics import ITEM_THRESHOLD, item_tokens, token_f1
from edge_extract.schema import FIELDS, NA, items

LIST_FIELDS = tuple(name for name in FIELDS if name not in ("age", "gender"))


def _match(a: str, b: str) -> bool:
    return token_f1(item_tokens(a), item_tokens(b)) >= ITEM_THRESHOLD


def count(predictions: list[dict], golds: dict[str, dict]) -> dict[str, int]:
    kinds = dict.fromkeys(
        (
            "records",
            "predicted items",
            "cross-field repeats",
            "near-duplicates",
            "neighbour-field items",
            "items where gold is N/A",
            "gold items left N/A",
            "records with loop or cap",
        ),
        0,
    )
    for result in predictions:
        if result.get("summary") is None:
            continue
        kinds["records"] += 1
        predicted = {name: items(result["summary"][name]) for name in LIST_FIELDS}
        gold_id = result["id"].rpartition("#")[2]  # eval ids are FILE#ID
        gold = {name: items(golds[gold_id][name]) for name in LIST_FIELDS}
        kinds["predicted items"] += sum(map(len, predicted.values()))
        kinds["records with loop or cap"] += any(f.startswith(("loop:", "capped:")) for f in result["flags"])
        for name, mine in predicted.items():
            others = [item for other, values in predicted.items() if other != name for item in values]
            kinds["cross-field repeats"] += sum(any(_match(item, other) for other in others) for item in mine)
            kinds["near-duplicates"] += sum(_match(a, b) for a, b in combinations(mine, 2))
            if not gold[name]:
                kinds["items where gold is N/A"] += len(mine)
            elif not mine:
                kinds["gold items left N/A"] += len(gold[name])
            elsewhere = [item for other, values in gold.items() if other != name for item in values]
            kinds["neighbour-field items"] += sum(
                not any(_match(item, g) for g in gold[name]) and any(_match(item, g) for g in elsewhere)
                for item in mine
            )
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders of `edge-extract eval run`")
    parser.add_argument("--gold", type=Path, required=True, help="the ELMTEX-layout file they were run on")
    args = parser.parse_args()
    golds = {}
    for line in args.gold.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            golds[row["id"]] = {name: row["summary"].get(name, NA) for name in FIELDS}
    # The gold itself as a run: how often the annotators repeat an item across fields (which the
    # guidelines allow, e.g. a condition that is both history and comorbidity).
    table = {"gold": count([{"id": key, "summary": value, "flags": []} for key, value in golds.items()], golds)}
    for run in args.runs:
        lines = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        table[run.name] = count([json.loads(line) for line in lines if line.strip()], golds)
    names = list(table)
    print(f"{'kind':<26} " + " ".join(f"{name:>16}" for name in names))
    for kind in next(iter(table.values())):
        print(f"{kind:<26} " + " ".join(f"{table[name][kind]:>16}" for name in names))


if __name__ == "__main__":
    main()
