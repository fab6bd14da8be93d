"""The root typer app and the options several commands share."""

from __future__ import annotations

import typer

from .._version import __version__

app = typer.Typer(
    name="edge-extract",
    help="Offline extraction of the 15 ELMTEX fields from clinical reports.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"edge-extract {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version."),
) -> None:
    """Offline extraction of the 15 ELMTEX fields from clinical reports."""


MODEL_OPTION = typer.Option(
    None,
    "--model",
    "-m",
    envvar="EDGE_EXTRACT_MODEL",
    help="Registered model name or a path to a GGUF file (default: the embedded model).",
)
THREADS_OPTION = typer.Option(None, "--threads", "-t", min=1, help="CPU threads (default: physical cores).")
BACKEND_OPTION = typer.Option(
    None,
    "--backend",
    help="URL of an OpenAI-compatible server (llama.cpp, vLLM) that runs the model instead (docs/scale-out.md).",
)
CONCURRENCY_OPTION = typer.Option(
    1,
    "--concurrency",
    min=1,
    max=256,
    help="Reports at once: a local model decodes them in one batch, --backend sends them together (default 1).",
)
TIMEOUT_OPTION = typer.Option(
    None, "--timeout", min=1.0, help="Seconds one server request may take (with --backend; default 300)."
)
