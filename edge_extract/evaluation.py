"""Run a strategy over a gold set, score it, and write the run: predictions, metrics.json, summary.md, chart.

A run folder holds everything needed to compare it with others or to score it again:

    predictions.jsonl   one Result per record, appended as they come (in data order but with --concurrency)
    metrics.json        RunMetrics: what was run, and its scores
    summary.md          the tables of scores_markdown
    scores.png          per-field bars of plot_fields
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from statistics import fmean

from pydantic import BaseModel, ValidationError

from ._version import __version__
from .errors import ConfigError, InputError
from .files import atomic_write_text, sha256_file
from .metrics import ENCODER, ITEM_THRESHOLD, TEXT_FIELDS, PairScorer, Scores, score_records
from .output import append_jsonl
from .pipeline import Extractor, Result, extract_many
from .reading import Report, read_path
from .schema import FIELDS, Record

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
SCORES_MD = "summary.md"
CHART = "scores.png"


class RunInfo(BaseModel):
    """What was evaluated, and how."""

    name: str
    data: str
    data_sha256: str
    records: int
    model: str
    model_sha256: str
    strategy: str
    decoder: str
    prompt_version: str
    threads: int
    encoder: str = ENCODER
    item_threshold: float = ITEM_THRESHOLD
    edge_extract_version: str = __version__
    scored_at: str


class RunMetrics(BaseModel):
    """The content of metrics.json."""

    run: RunInfo
    seconds_per_report: float
    """Mean extraction time per report, from each result's provenance: with --concurrency N each
    report's own time, which grows with N while the reports per minute grow too."""
    failed: int
    """Records whose extraction failed (scored as all-N/A)."""
    cut: int = 0
    """Records with a value cut at a repetition loop or a length cap (flags loop:/capped:)."""
    peak_rss_mb: float | None = None
    """Peak resident memory of the extracting process; None where the platform or an older run has none."""
    scores: Scores


CUT_FLAGS = ("loop:", "capped:")


def read_gold(path: Path, *, limit: int | None = None) -> list[Report]:
    """The annotated reports of an ELMTEX-layout file; every record needs a gold summary."""
    reports = read_path(path)[:limit]
    missing = [report.id for report in reports if report.gold is None]
    if missing:
        raise InputError(f"{path}: {len(missing)} record(s) have no gold summary, e.g. {missing[0]}")
    if not reports:
        raise InputError(f"{path}: no record to evaluate")
    return reports


def run_extraction(
    extractor: Extractor,
    reports: Sequence[Report],
    *,
    out: Path,
    on_result: Callable[[Result], None] | None = None,
    concurrency: int = 1,
) -> list[Result]:
    """Extract every report, `concurrency` at a time, appending each Result to
    OUT/predictions.jsonl as it comes (scoring pairs them with the gold by report hash)."""
    path = out / PREDICTIONS
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")  # a new run starts a new file
    results = []
    for result in extract_many(extractor, reports, concurrency=concurrency):
        append_jsonl(path, result.model_dump(mode="json"))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def read_predictions(run: Path) -> list[Result]:
    path = run / PREDICTIONS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [Result.model_validate_json(line) for line in lines if line.strip()]
    except FileNotFoundError:
        raise ConfigError(f"{run} has no {PREDICTIONS}: not an evaluation run") from None
    except ValidationError as error:
        raise ConfigError(f"{path}: not a predictions file: {error.errors()[0]['msg']}") from None


def score_run(
    results: Sequence[Result],
    reports: Sequence[Report],
    *,
    semantic: PairScorer,
    info: RunInfo,
    peak_rss_mb: float | None = None,
) -> RunMetrics:
    """Pair results with gold reports by report hash (so a moved data file still matches) and score.

    A report without a result, like a failed one, is scored as an empty prediction.
    """
    by_hash = {result.provenance.input_sha256: result for result in results}
    predictions: list[Record | None] = []
    for report in reports:
        result = by_hash.get(report.sha256)
        predictions.append(result.summary if result is not None and result.status == "ok" else None)
    golds = [report.gold for report in reports if report.gold is not None]
    return RunMetrics(
        run=info,
        seconds_per_report=round(fmean(r.provenance.seconds for r in results), 3) if results else 0.0,
        failed=sum(p is None for p in predictions),
        cut=sum(any(flag.startswith(CUT_FLAGS) for flag in result.flags) for result in results),
        peak_rss_mb=peak_rss_mb,
        scores=score_records(predictions, golds, semantic=semantic),
    )


def run_info(*, name: str, data: Path, reports: Sequence[Report], results: Sequence[Result]) -> RunInfo:
    """RunInfo from the data and the provenance of the first result."""
    if not results:
        raise ConfigError("no prediction to score")
    first = results[0].provenance
    return RunInfo(
        name=name,
        data=str(data),
        data_sha256=sha256_file(data),
        records=len(reports),
        model=first.model,
        model_sha256=first.model_sha256,
        strategy=first.strategy,
        decoder=first.decoder,
        prompt_version=first.prompt_version,
        threads=first.settings.n_threads,
        scored_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def load_run(path: Path) -> RunMetrics:
    """metrics.json of a run folder (or the file itself)."""
    file = path / METRICS if path.is_dir() else path
    try:
        return RunMetrics.model_validate_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} has no {METRICS}: not an evaluation run") from None
    except ValidationError as error:
        raise ConfigError(f"{file}: not a metrics file: {error.errors()[0]['msg']}") from None


# Columns shared by the terminal table and summary.md: (header, value).
OVERALL_COLUMNS: list[tuple[str, Callable[[RunMetrics], float | None]]] = [
    ("ROUGE-1", lambda m: m.scores.macro.rouge1),
    ("ROUGE-2", lambda m: m.scores.macro.rouge2),
    ("ROUGE-L", lambda m: m.scores.macro.rougeL),
    ("semantic F1", lambda m: m.scores.macro.semantic_f1),
    ("item P", lambda m: m.scores.macro.item_precision),
    ("item R", lambda m: m.scores.macro.item_recall),
    ("item F1", lambda m: m.scores.macro.item_f1),
    ("item F1 micro", lambda m: m.scores.micro.item_f1),
    ("ROUGE-L micro", lambda m: m.scores.micro.rougeL),
    ("N/A agree", lambda m: m.scores.na_agreement),
    ("valid", lambda m: m.scores.schema_valid_rate),
    ("age acc", lambda m: m.scores.age_accuracy),
    ("gender acc", lambda m: m.scores.gender_accuracy),
    ("loop/cap records", lambda m: m.cut),
    ("s/report", lambda m: m.seconds_per_report),
    ("peak MB", lambda m: None if m.peak_rss_mb is None else round(m.peak_rss_mb)),
]
FIELD_COLUMNS: list[tuple[str, str]] = [
    ("gold", "scored"),
    ("ROUGE-1", "rouge1"),
    ("ROUGE-2", "rouge2"),
    ("ROUGE-L", "rougeL"),
    ("semantic F1", "semantic_f1"),
    ("item P", "item_precision"),
    ("item R", "item_recall"),
    ("item F1", "item_f1"),
    ("N/A agree", "na_agreement"),
    ("accuracy", "accuracy"),
]


def cell(value: float | int | None) -> str:
    """A score as the tables show it: 3 decimals, counts as integers, "-" where not applicable."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def field_rows(metrics: RunMetrics) -> list[list[str]]:
    """One row of FIELD_COLUMNS cells per field, age and gender last."""
    return [[name, *(cell(getattr(metrics.scores.fields[name], attr)) for _, attr in FIELD_COLUMNS)] for name in FIELDS]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scores_markdown(runs: Sequence[RunMetrics]) -> str:
    """Overall scores (one row per run), then each run's per-field scores."""
    parts = [
        "# Evaluation",
        "",
        f'Text metrics are macro averages over the {len(TEXT_FIELDS)} narrative fields ("micro" pools all '
        f"fields); semantic F1 uses {ENCODER}; items match at token F1 >= {ITEM_THRESHOLD}. "
        "Failed extractions count as all-N/A predictions. See docs/evaluation.md.",
        "",
        _markdown_table(
            ["run", "model", "strategy", "records", *(h for h, _ in OVERALL_COLUMNS)],
            [
                [m.run.name, m.run.model, m.run.strategy, str(m.run.records), *(cell(f(m)) for _, f in OVERALL_COLUMNS)]
                for m in runs
            ],
        ),
    ]
    for metrics in runs:
        info = metrics.run
        parts += [
            "",
            f"## {info.name}",
            "",
            f"{info.records} records of `{info.data}` (sha256 {info.data_sha256[:12]}), model {info.model} "
            f"(sha256 {info.model_sha256[:12]}), strategy {info.strategy}, decoder {info.decoder}, "
            f"prompt v{info.prompt_version}, {info.threads} thread(s), {metrics.failed} failed, "
            f"edge-extract {info.edge_extract_version}, scored {info.scored_at}.",
            "",
            _markdown_table(["field", *(h for h, _ in FIELD_COLUMNS)], field_rows(metrics)),
        ]
    return "\n".join(parts) + "\n"


CHART_METRICS: list[tuple[str, str]] = [("ROUGE-L", "rougeL"), ("semantic F1", "semantic_f1"), ("item F1", "item_f1")]


def plot_fields(runs: Sequence[RunMetrics], path: Path) -> None:
    """Grouped bars per narrative field (plus the macro average), one panel per metric, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    labels = [*TEXT_FIELDS, "macro"]
    width = 0.8 / len(runs)
    fig, axes = plt.subplots(len(CHART_METRICS), 1, figsize=(max(10, 0.9 * len(labels)), 10), sharex=True)
    for ax, (title, attr) in zip(axes, CHART_METRICS):
        for n, metrics in enumerate(runs):
            values = [getattr(metrics.scores.fields[name], attr) or 0.0 for name in TEXT_FIELDS]
            values.append(getattr(metrics.scores.macro, attr) or 0.0)
            positions = [x + (n - (len(runs) - 1) / 2) * width for x in range(len(labels))]
            ax.bar(positions, values, width=width, label=metrics.run.name)
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xticks(range(len(labels)))
    axes[-1].set_xticklabels(labels, rotation=40, ha="right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(runs: Sequence[RunMetrics], out: Path, *, metrics: bool = True) -> list[Path]:
    """summary.md and scores.png (and metrics.json of a single run) into OUT; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if metrics:
        if len(runs) != 1:
            raise ValueError("metrics.json holds exactly one run")
        atomic_write_text(out / METRICS, runs[0].model_dump_json(indent=2) + "\n")
        written.append(out / METRICS)
    atomic_write_text(out / SCORES_MD, scores_markdown(runs))
    plot_fields(runs, out / CHART)
    return [*written, out / SCORES_MD, out / CHART]
