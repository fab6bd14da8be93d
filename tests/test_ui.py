"""What people see: rendered as plain text and compared."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from edge_extract.cli import app
from edge_extract.ui import THEME, record_table

from .test_cli import SAMPLE


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=70, color_system=None, theme=THEME)
    console.print(renderable)
    return console.file.getvalue()


def test_record_table_prints_values_as_written():
    summary = {"diagnosis": "pneumonia [right lower lobe]; sepsis", "age": "N/A", "gender": "[bold]Male"}
    text = render(record_table({"id": "ward [a]/report.txt", "summary": summary}))
    lines = [line.rstrip("│ ") for line in text.splitlines() if "│" in line]
    assert lines == [
        "│ diagnosis │ pneumonia [right lower lobe]; sepsis",
        "│ age       │ N/A",
        "│ gender    │ [bold]Male",
    ]
    assert "ward [a]/report.txt" in text


@pytest.mark.model
def test_terminal_shows_a_table_per_report():
    result = CliRunner().invoke(
        app, ["extract", "--threads", "1", str(SAMPLE)], env={"FORCE_COLOR": "1", "COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    assert "patient_outcome_assessment" in result.stdout
    assert "┏" in result.stdout and "field" in result.stdout
    assert not result.stdout.lstrip().startswith("{")
