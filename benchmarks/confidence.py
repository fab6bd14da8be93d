"""Per-field confidence on an evaluation run: is it calibrated, and are low-confidence fields the
wrong ones? No model runs: it reads the confidences the run's records carry.

    .venv/bin/python -m benchmarks.confidence runs/eval/confidence --gold ../shared/data/elmtex-open/val.jsonl [--fit]

Reads the run's predictions.jsonl (from `edge-extract eval run`) and the gold file (paired by
report hash, as `edge-extract eval score` pairs them). A field is right when:
- both sides are N/A (one N/A and the other not is wrong);
- age: by `age_correct` (the same number and unit), gender: exactly;
- a text field: its item F1 against gold (the item metric's one-to-one matching, token F1 >=
  ITEM_THRESHOLD per pair) is at least 0.5.
Records alternate between a fitting half (even positions) and a held-out half (odd). It prints the
expected calibration error (10 equal-width bins, weighted by field count) of the decoder's score
(recovered from the recorded confidence) and of the calibrated confidence, the share of fields
right below and above each candidate threshold, and writes a reliability diagram; with --fit it
also fits the calibration map (Platt scaling per decision, N/A or written) on the fitting half.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_extract.confidence import CALIBRATION, CHECK_BELOW, uncalibrate
from edge_extract.evaluation import read_gold, read_predictions
from edge_extract.metrics import EXACT_FIELDS, is_absent, item_counts
from edge_extract.schema import FIELDS, NA, Record

FIELD_F1_RIGHT = 0.5
"""A text field with at least this item F1 against gold counts as right."""

BINS = 10
Bins = list[tuple[float, float, int]]
"""Per non-empty bin: mean confidence, share of fields right, count."""
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def field_right(name: str, predicted: str, gold: str) -> bool:
    if name in EXACT_FIELDS:
        return EXACT_FIELDS[name](predicted, gold)
    if is_absent(predicted) or is_absent(gold):
        return is_absent(predicted) == is_absent(gold)
    return (item_counts(predicted, gold).f1 or 0.0) >= FIELD_F1_RIGHT


def calibration(confidence: np.ndarray, right: np.ndarray) -> tuple[Bins, float]:
    """The bins of a reliability diagram and the expected calibration error."""
    edges = np.minimum((confidence * BINS).astype(int), BINS - 1)
    bins = []
    error = 0.0
    for index in range(BINS):
        inside = edges == index
        if inside.any():
            mean, accuracy, count = float(confidence[inside].mean()), float(right[inside].mean()), int(inside.sum())
            error += abs(mean - accuracy) * count / len(confidence)
            bins.append((mean, accuracy, count))
    return bins, error


def plot(curves: dict[str, tuple[Bins, float]], path: Path) -> None:
    """One reliability curve per group of fields (label -> bins, ECE), and the count per bin of
    the first."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    for label, (bins, error) in curves.items():
        means, accuracies, _ = zip(*bins)
        top.plot(means, accuracies, marker="o", label=f"{label} (ECE {error:.3f})")
    means, _, counts = zip(*next(iter(curves.values()))[0])
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


@dataclass
class Fields:
    """Every field of every scored record, as parallel arrays."""

    absent: np.ndarray
    """The predicted value is N/A."""
    confidence: np.ndarray
    """As recorded (calibrated)."""
    score: np.ndarray
    """The decoder's score, recovered from the confidence (`uncalibrate`)."""
    right: np.ndarray
    held_out: np.ndarray
    """The field's record is in the held-out half of val (odd position): the map is fitted on the other."""


def read_fields(run: Path, gold_path: Path) -> Fields:
    reports = {report.sha256: report for report in read_gold(gold_path)}
    rows = []
    position = 0
    for result in read_predictions(run):
        gold: Record | None = reports[result.provenance.input_sha256].gold
        if result.summary is None or result.confidence is None or gold is None:
            continue
        for name, value in result.summary.values().items():
            confidence, absent = result.confidence[name], value == NA
            right = field_right(name, value, getattr(gold, name))
            rows.append((absent, confidence, uncalibrate(confidence, absent=absent), right, position % 2 == 1))
        position += 1
    columns = [np.array(column) for column in zip(*rows)]
    return Fields(*columns[:3], columns[3].astype(float), columns[4])


def fit(fields: Fields) -> dict[bool, tuple[float, float]]:
    """Platt scaling per decision on the fitting half: a logistic regression of right on logit(score)."""
    from sklearn.linear_model import LogisticRegression

    score = np.clip(fields.score, 1e-4, 1 - 1e-4)
    logit = np.log(score / (1 - score))
    fitted = {}
    for absent in (True, False):
        rows = (fields.absent == absent) & ~fields.held_out
        model = LogisticRegression(C=1e6).fit(logit[rows, None], fields.right[rows])
        fitted[absent] = (round(float(model.coef_[0, 0]), 3), round(float(model.intercept_[0]), 3))
    return fitted


def print_thresholds(fields: Fields, rows: np.ndarray, label: str) -> None:
    print(f"\n{label}:")
    print(
        "| check below | fields flagged | right below | right at or above"
        " | written fields flagged | right below (written) | right above (written) |"
    )
    print("|---|---|---|---|---|---|---|")
    right, written = fields.right[rows], ~fields.absent[rows]
    for threshold in THRESHOLDS:
        below = fields.confidence[rows] < threshold
        cells = [
            f"{below.mean():.1%}",
            _share(right, below),
            _share(right, ~below),
            f"{(below & written).sum() / max(written.sum(), 1):.1%}",
            _share(right, below & written),
            _share(right, ~below & written),
        ]
        print(f"| {threshold:g}{' (chosen)' if threshold == CHECK_BELOW else ''} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder of `edge-extract eval run`")
    parser.add_argument("--gold", type=Path, required=True, help="the ELMTEX-layout file it was run on")
    parser.add_argument("--plot", type=Path, default=Path("docs/confidence-reliability.png"))
    parser.add_argument("--fit", action="store_true", help="also fit the calibration map on the fitting half")
    args = parser.parse_args()
    fields = read_fields(args.run, args.gold)
    every = np.ones_like(fields.held_out)
    print(f"{len(fields.right)} fields of {len(fields.right) // len(FIELDS)} records; {fields.right.mean():.1%} right")
    if args.fit:
        print(f"CALIBRATION fitted on the fitting half (even records): {fit(fields)}")
    print(f"CALIBRATION in use: {CALIBRATION}\n")
    print("| ECE | all val | fitting half | held-out half | held-out N/A fields | held-out written fields |")
    print("|---|---|---|---|---|---|")
    groups = [
        every,
        ~fields.held_out,
        fields.held_out,
        fields.held_out & fields.absent,
        fields.held_out & ~fields.absent,
    ]
    for label, values in (("decoder score", fields.score), ("calibrated confidence", fields.confidence)):
        errors = [calibration(values[rows], fields.right[rows])[1] for rows in groups]
        print(f"| {label} | " + " | ".join(f"{error:.3f}" for error in errors) + " |")
    print("\n| bin mean confidence (held-out half) | share right | fields |")
    print("|---|---|---|")
    for mean, accuracy, count in calibration(fields.confidence[fields.held_out], fields.right[fields.held_out])[0]:
        print(f"| {mean:.2f} | {accuracy:.2f} | {count} |")
    print_thresholds(fields, fields.held_out, "held-out half")
    print_thresholds(fields, every, "all val")
    curves = {
        "confidence, all val": calibration(fields.confidence, fields.right),
        "confidence, held-out half": calibration(fields.confidence[fields.held_out], fields.right[fields.held_out]),
        "decoder score, all val": calibration(fields.score, fields.right),
    }
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, args.plot)
    print(f"wrote {args.plot}")


def _share(right: np.ndarray, where: np.ndarray) -> str:
    return f"{right[where].mean():.1%} of {int(where.sum())}" if where.any() else "-"


if __name__ == "__main__":
    main()
