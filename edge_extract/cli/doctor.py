"""`edge-extract doctor`: what a support person needs, and what is wrong, in one table."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ..doctor import Check, Status, run_checks
from ..ui import labelled, stdout_console
from ._app import MODEL_OPTION, app
from .exits import one_line_errors

STATUS_STYLE = {Status.ok: "[ok]ok[/]", Status.warn: "[flag]warn[/]", Status.fail: "[failed]FAIL[/]"}


def doctor_table(checks: list[Check]) -> Table:
    """One row per check: name, status, what was found and, when something is wrong, the fix."""
    table = Table(title="edge-extract doctor", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("details", overflow="fold")
    for check in checks:
        detail = Text(check.detail)
        if check.fix:
            detail.append("\n").append_text(labelled("fix:", "muted", check.fix))
        table.add_row(check.name, STATUS_STYLE[check.status], detail)
    return table


@app.command()
@one_line_errors
def doctor(
    out: Path = typer.Option(Path("."), "--out", "-o", help="Folder records will be written to (write access)."),
    model: str | None = MODEL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check this computer can run edge-extract; exits non-zero when something is wrong."""
    checks = run_checks(out=out, model=model)
    failed = [check for check in checks if check.status is Status.fail]
    if as_json:
        rows = [{**asdict(check), "status": check.status.value} for check in checks]
        typer.echo(json.dumps({"ok": not failed, "checks": rows}, indent=2))
    else:
        # stdout, not the message console: `edge-extract doctor > doctor.txt` is what support asks for.
        stdout = stdout_console()
        stdout.print(doctor_table(checks))
        stdout.print("[ok]all checks passed[/]" if not failed else f"[failed]{len(failed)} problem(s)[/]: see fix")
    if failed:
        raise typer.Exit(1)
