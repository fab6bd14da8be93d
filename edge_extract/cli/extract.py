"""`edge-extract extract`: reports in, one JSON record per report out.

Without --out, records go to stdout: a Rich table in a terminal, JSON lines when piped or with --json.
With --out (or --next-to-input, as the drag-and-drop launchers do) the inputs run as a resumable
batch (batch.py): per-report files, results tables, errors.jsonl, skip what is already done.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text

from ..batch import Inputs, Listener, RunStats, check_out, collect, run_batch, stop_on_signals
from ..confidence import CHECK
from ..errors import BackendUnavailableError, ConfigError
from ..evidence import UNGROUNDED
from ..generation import Decoder
from ..pipeline import Extractor, Result, extract_many
from ..prompt import Strategy
from ..reading import Report
from ..ui import get_console, labelled, progress, record_table, stdout_console, totals_table
from ._app import BACKEND_OPTION, CONCURRENCY_OPTION, MODEL_OPTION, THREADS_OPTION, TIMEOUT_OPTION, app
from ._load import load_extractor
from .exits import fail, one_line_errors

OUT_SUFFIX = "-extracted"
"""--next-to-input writes `<input>-extracted/` beside a single dropped file or folder."""


@app.command()
@one_line_errors
def extract(
    paths: list[str] = typer.Argument(..., help="Report files, folders, or - for standard input."),
    model: str | None = MODEL_OPTION,
    threads: int | None = THREADS_OPTION,
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run as a resumable batch: one .json per report plus results tables in this folder."
    ),
    next_to_input: bool = typer.Option(
        False, "--next-to-input", help="Batch into <input>-extracted/ beside the input (for drag-and-drop launchers)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Re-run reports already done; write into an --out that holds other files."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print records as JSON lines (the default when piped)."),
    strategy: Strategy = typer.Option(Strategy.naive, "--strategy", help="How the model is asked."),
    decoder: Decoder | None = typer.Option(
        None, "--decoder", help="schema (default): fast schema-driven; grammar: stock; server: with --backend."
    ),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding of the reports (default UTF-8; 'auto' detects)."
    ),
    backend: str | None = BACKEND_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Extract the ELMTEX fields from clinical reports (files, folders or stdin)."""
    if out is None and next_to_input:
        out = next_to(paths)
    load = _loader(model, threads, strategy, decoder, backend=backend, concurrency=concurrency, timeout=timeout)
    if out is None:
        _stream(paths, load=load, as_json=as_json, encoding=encoding, concurrency=concurrency)
    else:
        # The same command minus --force, which would redo what is done.
        command = ["edge-extract", *(arg for arg in sys.argv[1:] if arg != "--force")]
        _batch(
            paths,
            out,
            force=force,
            encoding=encoding,
            resume_hint=shlex.join(command),
            load=load,
            concurrency=concurrency,
        )


def next_to(paths: list[str]) -> Path:
    """The output folder beside the input: `<input>-extracted` for one, `edge-extract-results` for several."""
    files = [Path(raw) for raw in paths if raw != "-"]
    if not files:
        raise ConfigError("--next-to-input needs a file or folder, not standard input")
    first = files[0].resolve()
    if len(paths) > 1:
        return first.parent / "edge-extract-results"
    name = first.name if first.is_dir() else first.stem
    return first.parent / f"{name}{OUT_SUFFIX}"


def _loader(
    model: str | None,
    threads: int | None,
    strategy: Strategy,
    decoder: Decoder | None,
    *,
    backend: str | None,
    concurrency: int,
    timeout: float | None,
) -> Callable[[], Extractor]:
    def load() -> Extractor:
        examples = None
        if strategy is Strategy.advanced:
            from ..retrieval import default_example_source

            examples = default_example_source()
        return load_extractor(
            model,
            threads=threads,
            strategy=strategy,
            decoder=decoder,
            examples=examples,
            backend=backend,
            concurrency=concurrency,
            timeout=timeout,
        )

    return load


def _print_failures(inputs: Inputs) -> None:
    console = get_console()
    for line in inputs.failures:
        console.print(labelled("error:", "error", line.message), soft_wrap=True)
    if inputs.unsupported:
        kinds = sorted({path.suffix.lower() or "(no suffix)" for path in inputs.unsupported})
        shown = ", ".join(kinds)
        console.print(Text(f"skipped {len(inputs.unsupported)} file(s) of other types: {shown}", style="muted"))


def _stream(
    paths: list[str], *, load: Callable[[], Extractor], as_json: bool, encoding: str | None, concurrency: int
) -> None:
    """Records to stdout as they come; nothing is written to disk."""
    inputs = collect(paths, encoding=encoding)
    _print_failures(inputs)
    failures = len(inputs.failures)
    if not inputs.reports:
        raise fail("no report to extract" if not failures else f"{failures} input(s) could not be read", 3)
    extractor = load()
    stdout = stdout_console()
    show_tables = stdout.is_terminal and not as_json
    failed = failures
    for result in extract_many(extractor, inputs.reports, concurrency=concurrency):
        failed += result.status == "failed"
        _emit(result, show_tables=show_tables, stdout=stdout)
    if failed:
        total = len(inputs.reports) + failures
        if total == 1:
            raise typer.Exit(5 if inputs.reports else 3)
        raise fail(f"finished with {failed} failure(s) of {total}", 1)


def _emit(result: Result, *, show_tables: bool, stdout: Console) -> None:
    console = get_console()
    if result.status == "failed" and result.error is not None:
        console.print(labelled("error:", "error", f"{result.id}: {result.error.message}"), soft_wrap=True)
    if show_tables:
        if result.summary is not None:
            marked = {
                prefix: {flag.removeprefix(prefix) for flag in result.flags if flag.startswith(prefix)}
                for prefix in (CHECK, UNGROUNDED)
            }
            stdout.print(
                record_table(result.model_dump(mode="json"), check=marked[CHECK], ungrounded=marked[UNGROUNDED])
            )
        if result.flags:
            console.print(f"[flag]flags:[/] {', '.join(result.flags)}")
    else:
        sys.stdout.write(result.model_dump_json() + "\n")
        sys.stdout.flush()


class _BarListener(Listener):
    """Drives a Rich progress bar; prints one line per failed report (id and reason, no content)."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: TaskID | None = None

    def started(self, *, to_do: int, skipped: int) -> None:
        if skipped:
            self.bar.console.print(f"[muted]{skipped} report(s) already done with this model and prompt: skipped[/]")
        if to_do:
            self.task = self.bar.add_task("extracting", total=to_do, current="")

    def report_started(self, report: Report) -> None:
        if self.task is not None:
            self.bar.update(self.task, current=report.id)

    def report_finished(self, result: Result) -> None:
        if result.error is not None:
            message = f"{result.id}: {result.error.message}"
            self.bar.console.print(labelled("failed:", "error", message), soft_wrap=True)
        if self.task is not None:
            self.bar.advance(self.task)


def _batch(
    paths: list[str],
    out: Path,
    *,
    force: bool,
    encoding: str | None,
    resume_hint: str,
    load: Callable[[], Extractor],
    concurrency: int,
) -> None:
    """A resumable batch into OUT, with progress, a table of totals and a resume hint on Ctrl-C."""
    console = get_console()
    check_out(out, force=force)  # before the inputs are read and the model loads
    with console.status("reading inputs"):
        inputs = collect(paths, encoding=encoding, out=out)
    _print_failures(inputs)
    total = len(inputs.reports) + len(inputs.failures)
    if total == 0:
        raise fail("no report to extract", 3)
    extractor = load()
    with stop_on_signals() as stop:
        current = "the reports in flight" if concurrency > 1 else "the current report"
        stop.on_request = lambda: console.print(f"[flag]stopping after {current}[/] (Ctrl-C again to stop now)")
        try:
            with progress(console) as bar:
                stats = run_batch(
                    inputs,
                    extractor=extractor,
                    out=out,
                    force=force,
                    listener=_BarListener(bar),
                    should_stop=stop,
                    concurrency=concurrency,
                )
        except KeyboardInterrupt:
            raise fail(f"interrupted; to resume, run again: {resume_hint}", 130) from None
        except BackendUnavailableError as error:
            raise fail(f"{error}; the run stopped; to resume, run again: {resume_hint}", error.exit_code) from None
    console.print(_totals_table(stats, out))
    if stats.interrupted:
        raise fail(f"stopped after {stats.extracted} report(s); to resume, run again: {resume_hint}", 130)
    if stats.failed:
        if total == 1:
            raise typer.Exit(3 if inputs.failures else 5)
        raise fail(f"finished with {stats.failed} failure(s) of {total}; see {out / 'errors.jsonl'}", 1)


def _totals_table(stats: RunStats, out: Path) -> Table:
    rows = [
        ("extracted", str(stats.extracted)),
        ("skipped (already done)", str(stats.skipped)),
        ("failed", str(stats.failed)),
        ("flagged records", ", ".join(f"{kind} {n}" for kind, n in stats.flagged.items()) or "none"),
        ("seconds per report", f"{stats.seconds_per_report:.1f}" if stats.extracted else "-"),
        ("throughput", f"{stats.reports_per_minute:.1f} reports/min" if stats.extracted else "-"),
        ("total time", f"{stats.elapsed_seconds:.0f} s"),
        ("output", str(out)),
    ]
    return totals_table("batch", rows)
