"""Rich output: the message console (on stderr, so stdout carries only records), the stdout console
for what a command is run for, the theme, tables and progress bars."""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
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
    """Messages, progress and tables for people; built on first use.

    Without emoji codes: a file name such as `a :ok: b.txt` prints as written (callers pass names
    and messages as Text, see `labelled`).
    """
    return Console(stderr=True, theme=THEME, highlight=False, emoji=False)


def labelled(label: str, style: str, message: str) -> Text:
    """`label message`, the label styled. The message (file names, report ids, errors) is Text,
    never parsed as markup: escaping cannot keep a backslash before a bracket (`a\\[b].txt`)."""
    return Text.assemble((label, style), " ", message)


def stdout_console() -> Console:
    """Output a command is run for (a record table, a doctor report), on stdout with the theme."""
    return Console(theme=THEME, highlight=False, emoji=False)


class RateColumn(ProgressColumn):
    """Items per minute, from Rich's moving speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed * 60:.1f}/min" if speed else "-/min", style="muted")


def progress(console: Console | None = None) -> Progress:
    """A progress bar with count, rate, rate-based ETA and the current item."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="progress.description", markup=False),  # may hold a run name
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}", style="muted", markup=False),  # a report id, printed as written
        console=console or get_console(),
        transient=False,
    )


CHECK_MARK, UNGROUNDED_MARK = "?", "!"
"""Marks after a field's name in the record table: low confidence (`check:`), ungrounded."""

LEGEND = f"{CHECK_MARK} low confidence: check it   {UNGROUNDED_MARK} an item not found in the report"
"""The one-line legend under a record table that has marks."""


def record_table(result_dict: dict, *, check: Collection[str] = (), ungrounded: Collection[str] = ()) -> Table:
    """One result as a two-column table: field, value (absent fields dimmed); the fields in
    `check` (low confidence) and `ungrounded` get their mark after the name, the table a legend."""
    table = Table(title=Text(result_dict["id"]), show_header=True, header_style="bold", expand=True)
    table.add_column("field", style="field", no_wrap=True)
    table.add_column("value", overflow="fold", ratio=1)
    for name, value in (result_dict.get("summary") or {}).items():
        marks = (CHECK_MARK if name in check else "") + (UNGROUNDED_MARK if name in ungrounded else "")
        # Text, not markup: an extracted value such as "[1]" must print as written.
        table.add_row(
            Text.assemble(name, (f" {marks}" if marks else "", "flag")),
            Text(value, style="absent" if value == NA else ""),
        )
    if check or ungrounded:
        table.caption = Text(LEGEND, style="muted")
    return table


def totals_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A short two-column table of counts and timings, e.g. at the end of a batch."""
    table = Table(title=title, show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, Text(value))  # values may be paths: text, not markup
    return table
