"""The house rules that tools can check: lint, formatting and the import contracts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists() and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return str(path if path.exists() else shutil.which(name))


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["lint-imports"]],
    ids=["ruff-check", "ruff-format", "import-contracts"],
)
def test_tool_passes(command):
    result = subprocess.run([_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_does_not_import_torch_or_transformers():
    heavy = ("torch", "transformers", "peft", "llama_cpp", "huggingface_hub", "urllib3")  # urllib3: --backend only
    code = f"import sys, edge_extract.cli, edge_extract.api; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_version_lives_once_and_the_build_reads_it():
    tomllib = pytest.importorskip("tomllib")
    from typer.testing import CliRunner

    from edge_extract import __version__
    from edge_extract.cli import app

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    source = ROOT / project["tool"]["hatch"]["version"]["path"]
    assert re.search(r'(?m)^__version__ = "([^"]+)"$', source.read_text()).group(1) == __version__  # hatch's pattern
    assert CliRunner().invoke(app, ["--version"]).stdout == f"edge-extract {__version__}\n"
