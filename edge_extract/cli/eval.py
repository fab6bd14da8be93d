"""`edge-extract eval`: score a model and strategy on an annotated set, compare runs.

`edge-extract eval DATA.jsonl ...` is short for `edge-extract eval run DATA.jsonl ...`.
"""

from __future__ import annotations

from pathlib import Path

import click
import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ..evaluation import (
    FIELD_COLUMNS,
    METRICS,
    OVERALL_COLUMNS,
    RunMetrics,
    cell,
    field_rows,
    load_run,
    read_gold,
    read_predictions,
    run_extraction,
    run_info,
    score_run,
    write_report,
)
from ..metrics import ENCODER
from ..pipeline import Result
from ..prompt import Strategy
from ..reading import Report
from ..runtime import peak_rss_mb, physical_cores
from ..ui import get_console, progress
from ._app import BACKEND_OPTION, CONCURRENCY_OPTION, MODEL_OPTION, THREADS_OPTION, TIMEOUT_OPTION, app
from ._load import load_extractor
from .exits import one_line_errors


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it names no sub-command, starts `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_RunByDefault,
    help="Score extraction against gold summaries (ROUGE, semantic, items) and compare runs.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


def _overall_table(runs: list[RunMetrics]) -> Table:
    """Metrics down, runs across: narrow enough for any terminal with a few runs."""
    table = Table(title="overall (macro over the 13 narrative fields)", header_style="bold")
    table.add_column("metric", style="field", no_wrap=True)
    for metrics in runs:
        table.add_column(metrics.run.name, justify="right")
    for header, value in OVERALL_COLUMNS:
        table.add_row(header, *(cell(value(metrics)) for metrics in runs))
    return table


TERMINAL_FIELD_COLUMNS = ("gold", "ROUGE-L", "semantic F1", "item F1", "N/A agree", "accuracy")
"""The per-field columns that fit a terminal; summary.md has them all."""


def _field_table(metrics: RunMetrics) -> Table:
    table = Table(title=f"{metrics.run.name}: per field", header_style="bold")
    table.add_column("field", style="field", no_wrap=True)
    keep = [n for n, (header, _) in enumerate(FIELD_COLUMNS) if header in TERMINAL_FIELD_COLUMNS]
    for n in keep:
        table.add_column(FIELD_COLUMNS[n][0], justify="right")
    for name, *cells in field_rows(metrics):
        table.add_row(name, *(cells[n] for n in keep))
    return table


def _show(runs: list[RunMetrics], written: list[Path], *, fields: bool) -> None:
    console = get_console()
    if fields:
        for metrics in runs:
            console.print(_field_table(metrics))
    console.print(_overall_table(runs))
    console.print(f"[muted]semantic F1: token matching with {ENCODER}[/]")
    for path in written:
        console.print(Text(f"wrote {path}", style="muted"))


@eval_app.command("run")
@one_line_errors
def run(
    data: Path = typer.Argument(..., help="ELMTEX-layout JSONL/JSON file with gold summaries."),
    model: str | None = MODEL_OPTION,
    strategy: Strategy = typer.Option(Strategy.naive, "--strategy", help="How the model is asked."),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="Evaluate only the first N records."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run folder (default: eval-runs/<data>-<model>-<strategy>)."
    ),
    name: str | None = typer.Option(None, "--name", help="Run name in tables and charts (default: model-strategy)."),
    examples: Path | None = typer.Option(
        None,
        "--examples",
        help="Example bank for advanced (default: EDGE_EXTRACT_EXAMPLES or elmtex-open train).",
    ),
    threads: int | None = THREADS_OPTION,
    backend: str | None = BACKEND_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Extract every record of DATA with one model and strategy, score it, write the run folder."""
    reports = read_gold(data, limit=limit)
    source = None
    if strategy is Strategy.advanced:
        from ..retrieval import default_example_source

        source = default_example_source(examples)
    extractor = load_extractor(
        model,
        threads=threads,
        strategy=strategy,
        examples=source,
        backend=backend,
        concurrency=concurrency,
        timeout=timeout,
    )
    served = "-server" if backend else ""  # a server's own model name may be a path: not for a folder name
    name = name or f"{extractor.model_name}-{strategy.value}"
    out = out or Path("eval-runs") / f"{data.stem}-{extractor.manifest.name}{served}-{strategy.value}"
    try:
        with progress() as bar:
            task = bar.add_task(f"eval {name}", total=len(reports), current="")
            results = run_extraction(
                extractor,
                reports,
                out=out,
                on_result=lambda r: bar.update(task, advance=1, current=r.status),
                concurrency=concurrency,
            )
    finally:
        extractor.runtime.close()
    # Measured before scoring: the semantic scorer's encoder is not part of extraction.
    peak = peak_rss_mb()
    _score_and_show(results, reports, name=name, data=data, threads=threads, out=out, peak_rss_mb=peak)


@eval_app.command("score")
@one_line_errors
def score(
    run_dir: Path = typer.Argument(..., help="A run folder written by `eval run`."),
    data: Path = typer.Option(..., "--data", help="The gold file the run was made on."),
    name: str | None = typer.Option(None, "--name", help="New run name (default: keep the old one)."),
    threads: int | None = THREADS_OPTION,
) -> None:
    """Score a run's predictions.jsonl again (after a metric change or with other gold)."""

    results = read_predictions(run_dir)
    reports = read_gold(data)
    earlier = load_run(run_dir) if (run_dir / METRICS).is_file() else None
    if name is None:
        name = earlier.run.name if earlier else run_dir.name
    peak = earlier.peak_rss_mb if earlier else None  # extraction is not repeated: keep what it measured
    _score_and_show(results, reports, name=name, data=data, threads=threads, out=run_dir, peak_rss_mb=peak)


def _score_and_show(
    results: list[Result],
    reports: list[Report],
    *,
    name: str,
    data: Path,
    threads: int | None,
    out: Path,
    peak_rss_mb: float | None,
) -> None:
    """Score a run, write its metrics.json, summary.md and chart into `out`, show the table."""
    from ..metrics import SemanticScorer

    info = run_info(name=name, data=data, reports=reports, results=results)
    with get_console().status(f"scoring ({ENCODER})"):
        semantic = SemanticScorer(threads=threads or physical_cores())
        metrics = score_run(results, reports, semantic=semantic, info=info, peak_rss_mb=peak_rss_mb)
    _show([metrics], write_report([metrics], out), fields=True)


@eval_app.command("compare")
@one_line_errors
def compare(
    runs: list[Path] = typer.Argument(..., help="Run folders (or their metrics.json) to put side by side."),
    out: Path = typer.Option(Path("eval-runs/compare"), "--out", "-o", help="Where summary.md and scores.png go."),
) -> None:
    """One table and one chart of per-field scores for several runs."""
    loaded = [load_run(path) for path in runs]
    _show(loaded, write_report(loaded, out, metrics=False), fields=False)
