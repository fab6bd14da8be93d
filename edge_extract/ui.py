"""The single Rich console (on stderr, so stdout carries only records), theme, tables, progress."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.theme import Theme

from .schema import NA

THEME = Theme(
    {
        "field": "bold cyan",
        "absent": "dim",
        "ok": "green",
        "failed": "bold red",
        "flag": "yellow",
        "muted": "dim",
        "error": "bold red",
    }
)


@lru_cache(maxsize=1)
def get_console() -> Console:
    """Messages, progress and tables for people; built on first use."""
    return Console(stderr=True, theme=THEME, highlight=False)


def progress(console: Console | None = None) -> Progress:
    """A progress bar with count, rate-based ETA and the current item."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("[muted]{task.fields[current]}"),
        console=console or get_console(),
        transient=False,
    )


def record_table(result_dict: dict) -> Table:
    """One result as a two-column table: field, value (absent fields dimmed)."""
    table = Table(title=result_dict["id"], show_header=True, header_style="bold", expand=True)
    table.add_column("field", style="field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in (result_dict.get("summary") or {}).items():
        table.add_row(name, f"[absent]{value}[/]" if value == NA else value)
    return table
