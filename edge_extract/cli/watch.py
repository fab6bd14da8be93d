"""`edge-extract watch`: a watched inbox folder; each dropped report is extracted once it has finished copying."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ..batch import Listener, stop_on_signals
from ..errors import ConfigError
from ..inbox import Inbox, check_folders
from ..output import ErrorLine
from ..pipeline import Result
from ..reading import Report
from ..ui import get_console, labelled, totals_table
from ._app import BACKEND_OPTION, MODEL_OPTION, THREADS_OPTION, TIMEOUT_OPTION, app
from ._load import load_extractor
from .exits import one_line_errors


class _LineListener(Listener):
    """One line per report: its name, outcome and time; never its content."""

    def report_started(self, report: Report) -> None:
        get_console().print(Text(f"extracting {report.id}", style="muted"))

    def report_finished(self, result: Result) -> None:
        if result.error is not None:
            message = f"{result.id}: {result.error.message}"
            get_console().print(labelled("failed:", "error", message), soft_wrap=True)
        else:
            get_console().print(labelled("done", "ok", f"{result.id} ({result.provenance.seconds:.1f} s)"))

    def input_failed(self, line: ErrorLine) -> None:
        get_console().print(labelled("error:", "error", line.message), soft_wrap=True)


@app.command()
@one_line_errors
def watch(
    inbox: Path = typer.Argument(..., help="Folder to watch; reports dropped here are extracted."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (same layout and resume rules as a batch)."),
    move_done: bool = typer.Option(False, "--move-done", help="Move each processed input to INBOX/done/."),
    settle: float = typer.Option(
        2.0, "--settle", min=0.0, help="Seconds a file must stay unchanged before it is read (copy finished)."
    ),
    model: str | None = MODEL_OPTION,
    threads: int | None = THREADS_OPTION,
    encoding: str | None = typer.Option(None, "--encoding", help="Text encoding of the reports (default UTF-8)."),
    backend: str | None = BACKEND_OPTION,
    timeout: float | None = TIMEOUT_OPTION,
) -> None:
    """Extract reports as they are dropped into INBOX, until Ctrl-C. Restarting resumes."""
    if not inbox.is_dir():
        raise ConfigError(f"{inbox}: not a folder")
    check_folders(inbox, out)  # before the model loads
    console = get_console()
    extractor = load_extractor(model, threads=threads, backend=backend, timeout=timeout)
    with stop_on_signals() as stop:
        stop.on_request = lambda: console.print("[flag]stopping after the current report[/]")
        console.print(Text(f"watching {inbox} -> {out}; press Ctrl-C to stop"))
        watcher = Inbox(
            inbox,
            out,
            extractor=extractor,
            encoding=encoding,
            move_done=move_done,
            settle_seconds=settle,
            listener=_LineListener(),
        )
        stats = watcher.run(should_stop=stop)
    rows = [
        ("extracted", str(stats.extracted)),
        ("skipped (already done)", str(stats.skipped)),
        ("failed", str(stats.failed)),
        ("moved to done/", str(stats.moved)),
    ]
    console.print(totals_table("inbox", rows))
