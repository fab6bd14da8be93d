"""`edge-extract models`: list, verify, import and pull models."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ..errors import ModelError
from ..models.manifest import DEFAULT_CONTEXT_SIZE, MIN_CONTEXT_SIZE
from ..models.registry import Registry
from ..ui import get_console, labelled
from ._app import app
from .exits import one_line_errors

models_app = typer.Typer(help="List, check and add models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

PROMPT_FORMAT_OPTION = typer.Option(
    None, "--prompt-format", help="gemma, llama3 or chatml (default: from the GGUF's architecture)."
)


@models_app.command("list")
@one_line_errors
def list_models(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Registered models, and whether their files are in place."""
    registry = Registry.default()
    default = registry.default_name()
    rows = []
    for name, (manifest, folder) in sorted(registry.manifests().items()):
        path = registry.model_path(manifest, folder)
        present = path.is_file() or manifest.source.kind == "pypi"
        rows.append(
            {
                "name": name,
                "default": name == default,
                "source": manifest.source.kind,
                "prompt_format": manifest.prompt_format,
                "size": manifest.size,
                "adapter": manifest.adapter.file if manifest.adapter else None,
                "present": present,
                "path": str(path),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "source", "format", "size", "adapter", "status")
    for row in rows:
        size = f"{row['size'] / 1e6:.0f} MB" if row["size"] else "?"
        status = "[ok]ready[/]" if row["present"] else "[failed]missing[/]"
        name = f"{row['name']} [muted](default)[/]" if row["default"] else row["name"]
        table.add_row(name, row["source"], row["prompt_format"], size, row["adapter"] or "", status)
    get_console().print(table)


@models_app.command("verify")
@one_line_errors
def verify(name: str | None = typer.Argument(None, help="Model to check (default: all registered).")) -> None:
    """Re-hash model files and compare with their manifests; refuses a corrupted copy."""
    registry = Registry.default()
    console = get_console()
    names = [name] if name else sorted(registry.manifests())
    bad = 0
    for each in names:
        try:
            resolved = registry.resolve(each)
            line = f"     {each}  sha256 {resolved.manifest.sha256[:16]}...  {resolved.path}"
            console.print(labelled("ok", "ok", line))
        except ModelError as error:
            bad += 1
            console.print(labelled("failed", "failed", f" {each}: {error}"), soft_wrap=True)
    if bad:
        raise typer.Exit(4)


@models_app.command("import")
@one_line_errors
def import_model(
    path: Path = typer.Argument(..., help="A GGUF file, e.g. copied from a USB stick."),
    name: str | None = typer.Option(None, "--name", help="Name to register it under (default: file stem)."),
    prompt_format: str | None = PROMPT_FORMAT_OPTION,
    context_size: int = typer.Option(DEFAULT_CONTEXT_SIZE, "--context-size", min=MIN_CONTEXT_SIZE),
) -> None:
    """Copy a GGUF into the models folder and register it."""
    manifest = Registry.default().import_file(
        path, name=name or path.stem, prompt_format=prompt_format, context_size=context_size
    )
    get_console().print(f"registered [field]{manifest.name}[/] (sha256 {manifest.sha256[:16]}...)")


@models_app.command("pull")
@one_line_errors
def pull(
    repo: str = typer.Argument(..., help="Hub repository id, e.g. bartowski/Llama-3.2-3B-Instruct-GGUF."),
    filename: str = typer.Argument(..., help="GGUF file in that repository."),
    name: str | None = typer.Option(None, "--name", help="Name to register it under (default: file stem)."),
    prompt_format: str | None = PROMPT_FORMAT_OPTION,
    revision: str | None = typer.Option(None, "--revision", help="Branch, tag or commit."),
) -> None:
    """Download a GGUF once from a model hub (a connected machine), then register it."""
    manifest = Registry.default().pull(
        repo, filename, name=name or Path(filename).stem, prompt_format=prompt_format, revision=revision
    )
    get_console().print(f"registered [field]{manifest.name}[/] (sha256 {manifest.sha256[:16]}...)")
