"""Per-field confidence on an evaluation run: is it calibrated, and are low-confidence fields the
wrong ones? No model runs: it reads the confidences the run's records carry.

    .venv/bin/python -m benchmarks.confidence runs/eval/confidence --gold ../shared/data/elmtex-open/val.jsonl

Reads the run's predictions.jsonl (from `edge-extract eval run`) and the gold file (paired by
report hash, as `edge-extract eval score` pairs them). A field is right when:
- both sides are N/A (one N/A and the other not is wrong);
- age: by `age_correct` (the same number and unit), gender: exactly;
- a text field: its item F1 against gold (the item metric's one-to-one matching, token F1 >=
  ITEM_THRESHOLD per pair) is at least 0.5.
It prints the expected calibration error (10 equal-width bins, weighted by field count), the
accuracy of fields below and above each candidate threshold, and writes a reliability diagram.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_extract.confidence import CHECK_BELOW
from edge_extract.evaluation import read_gold, read_predictions
from edge_extract.metrics import EXACT_FIELDS, is_absent, item_counts
from edge_extract.schema import FIELDS, Record

FIELD_F1_RIGHT = 0.5
"""A text field with at least this item F1 against gold counts as right."""

BINS = 10
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def field_right(name: str, predicted: str, gold: str) -> bool:
    if name in EXACT_FIELDS:
        return EXACT_FIELDS[name](predicted, gold)
    if is_absent(predicted) or is_absent(gold):
        return is_absent(predicted) == is_absent(gold)
    return (item_counts(predicted, gold).f1 or 0.0) >= FIELD_F1_RIGHT


def calibration_error(confidence: np.ndarray, right: np.ndarray) -> tuple[float, list[tuple[float, float, int]]]:
    """Expected calibration error and, per non-empty bin, (mean confidence, accuracy, count)."""
    edges = np.minimum((confidence * BINS).astype(int), BINS - 1)
    bins = []
    error = 0.0
    for index in range(BINS):
        inside = edges == index
        if inside.any():
            mean, accuracy, count = float(confidence[inside].mean()), float(right[inside].mean()), int(inside.sum())
            error += abs(mean - accuracy) * count / len(confidence)
            bins.append((mean, accuracy, count))
    return error, bins


def plot(bins: list[tuple[float, float, int]], error: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    means, accuracies, counts = zip(*bins)
    top.plot(means, accuracies, marker="o", label=f"val fields (ECE {error:.3f})")
    top.axvline(CHECK_BELOW, color="tab:red", ls=":", label=f"check below {CHECK_BELOW:g}")
    top.set_ylabel("share of fields right")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize="small")
    top.grid(alpha=0.3)
    bottom.bar(
        [(i + 0.5) / BINS for i in range(BINS)],
        np.histogram(means, bins=BINS, range=(0, 1), weights=counts)[0],
        width=0.9 / BINS,
    )
    bottom.set_xlabel("confidence (10 bins)")
    bottom.set_ylabel("fields")
    bottom.set_xlim(0, 1)
    fig.suptitle("Per-field confidence on elmtex-open val")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `edge-extract eval run`")
    parser.add_argument("--gold", type=Path, required=True, help="the ELMTEX-layout file it was run on")
    parser.add_argument("--plot", type=Path, default=Path("docs/confidence-reliability.png"))
    args = parser.parse_args()
    reports = {report.sha256: report for report in read_gold(args.gold)}
    rows: list[tuple[str, bool, float, bool]] = []  # field, predicted N/A, confidence, right
    for result in read_predictions(args.run):
        gold: Record | None = reports[result.provenance.input_sha256].gold
        if result.summary is None or result.confidence is None or gold is None:
            continue
        for name, value in result.summary.values().items():
            right = field_right(name, value, getattr(gold, name))
            rows.append((name, is_absent(value), result.confidence[name], right))
    confidence = np.array([row[2] for row in rows])
    right = np.array([row[3] for row in rows], dtype=float)
    absent = np.array([row[1] for row in rows])
    error, bins = calibration_error(confidence, right)
    print(f"{len(rows)} fields of {len(rows) // len(FIELDS)} records; {right.mean():.1%} right")
    print(
        f"ECE {error:.3f} (N/A fields {calibration_error(confidence[absent], right[absent])[0]:.3f}, "
        f"written fields {calibration_error(confidence[~absent], right[~absent])[0]:.3f})"
    )
    print("| bin mean confidence | share right | fields |")
    print("|---|---|---|")
    for mean, accuracy, count in bins:
        print(f"| {mean:.2f} | {accuracy:.2f} | {count} |")
    print(
        "| check below | fields flagged | right below | right at or above"
        " | written fields flagged | right below (written) | right above (written) |"
    )
    print("|---|---|---|---|---|---|---|")
    for threshold in THRESHOLDS:
        below = confidence < threshold
        written_below, written_above = below & ~absent, ~below & ~absent
        cells = [
            f"{below.mean():.1%}",
            _share(right, below),
            _share(right, ~below),
            f"{written_below.sum() / max((~absent).sum(), 1):.1%}",
            _share(right, written_below),
            _share(right, written_above),
        ]
        print(f"| {threshold:g}{' (chosen)' if threshold == CHECK_BELOW else ''} | " + " | ".join(cells) + " |")
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(bins, error, args.plot)
    print(f"wrote {args.plot}")


def _share(right: np.ndarray, where: np.ndarray) -> str:
    return f"{right[where].mean():.1%} of {int(where.sum())}" if where.any() else "-"


if __name__ == "__main__":
    main()
