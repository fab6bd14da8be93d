"""`edge-extract extract`: reports in, one JSON record per report out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from ..api import load_model
from ..errors import EdgeExtractError, InputError
from ..output import write_result
from ..pipeline import Decoder, Result
from ..prompt import Strategy
from ..reading import Report, list_folder, read_path, read_stdin
from ..ui import get_console, record_table
from ._app import MODEL_OPTION, THREADS_OPTION, app, fail, one_line_errors


def _collect(paths: list[str], encoding: str | None) -> tuple[list[Report], list[str]]:
    """Reports from files, folders and `-`; unreadable inputs become error lines, not a crash."""
    reports: list[Report] = []
    errors: list[str] = []
    for raw in paths:
        if raw == "-":
            sources: list[tuple[Path | None, Path | None]] = [(None, None)]
        elif Path(raw).is_dir():
            sources = [(file, Path(raw)) for file in list_folder(Path(raw))]
        else:
            sources = [(Path(raw), None)]
        for path, root in sources:
            try:
                reports += (
                    [read_stdin(encoding=encoding)] if path is None else read_path(path, root=root, encoding=encoding)
                )
            except InputError as error:
                errors.append(str(error))
    return reports, errors


@app.command()
@one_line_errors
def extract(
    paths: list[str] = typer.Argument(..., help="Report files, folders, or - for standard input."),
    model: str | None = MODEL_OPTION,
    threads: int | None = THREADS_OPTION,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write one .json per report into this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print records as JSON lines (the default when piped)."),
    strategy: Strategy = typer.Option(Strategy.naive, "--strategy", help="How the model is asked."),
    decoder: Decoder = typer.Option(Decoder.schema, "--decoder", help="schema: fast schema-driven; grammar: stock."),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding of the reports (default UTF-8; 'auto' detects)."
    ),
) -> None:
    """Extract the ELMTEX fields from clinical reports."""
    console = get_console()
    reports, errors = _collect(paths, encoding)
    for message in errors:
        console.print(f"[error]error:[/] {message}", soft_wrap=True)
    if not reports:
        raise fail("no report to extract" if not errors else f"{len(errors)} input(s) could not be read", 3)
    examples = None
    if strategy is Strategy.advanced:
        from ..retrieval import default_example_source

        examples = default_example_source()
    extractor = load_model(model, threads=threads, strategy=strategy, decoder=decoder, examples=examples)
    stdout = Console(highlight=False)
    show_tables = stdout.is_terminal and not as_json and out is None
    failed = len(errors)
    for report in reports:
        result = extractor.extract(report)
        failed += result.status == "failed"
        _emit(result, out=out, show_tables=show_tables, stdout=stdout)
    if failed:
        if len(reports) + len(errors) == 1:
            raise typer.Exit(5 if reports else 3)
        raise fail(f"finished with {failed} failure(s) of {len(reports) + len(errors)}", 1)


def _emit(result: Result, *, out: Path | None, show_tables: bool, stdout: Console) -> None:
    console = get_console()
    if result.status == "failed" and result.error is not None:
        console.print(f"[error]error:[/] {result.id}: {result.error.message}", soft_wrap=True)
    if out is not None:
        try:
            path = write_result(out, result)
        except OSError as error:
            raise EdgeExtractError(f"cannot write to {out}: {error.strerror}") from error
        console.print(f"[muted]{result.id} -> {path}[/]")
    elif show_tables:
        if result.summary is not None:
            stdout.print(record_table(result.model_dump(mode="json")))
        if result.flags:
            console.print(f"[flag]flags:[/] {', '.join(result.flags)}")
    else:
        sys.stdout.write(result.model_dump_json() + "\n")
        sys.stdout.flush()
