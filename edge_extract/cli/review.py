"""`edge-extract review`: the records of a batch as pages a person checks and corrects in a browser."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ..review import write_review
from ..ui import get_console, labelled
from ._app import app
from .exits import fail, one_line_errors


@app.command()
@one_line_errors
def review(
    out: Path = typer.Argument(
        ..., metavar="OUT", help="The --out folder of a batch (`edge-extract extract ... --out OUT`)."
    ),
    inputs: list[str] | None = typer.Argument(
        None,
        metavar="[INPUT]...",
        help="The reports the batch was made from, when they are no longer where the records say.",
    ),
    to: Path | None = typer.Option(None, "--to", help="Write the pages here instead of OUT/review."),
    encoding: str | None = typer.Option(
        None, "--encoding", help="Text encoding the reports were read with at extraction (default UTF-8)."
    ),
) -> None:
    """Write review pages: each record on its report text, fields editable, corrections saved as JSONL."""
    site = write_review(out, to=to, inputs=inputs or (), encoding=encoding)
    console = get_console()
    for record_id, problem in site.without_text:
        console.print(labelled("no text:", "flag", f"{record_id}: {problem}"), soft_wrap=True)
    console.print(Text(f"{site.records} record page(s) and the index: open {site.index} in a browser"))
    if site.without_text:
        raise fail(f"{len(site.without_text)} record(s) shown without their report text (see above)", 1)
