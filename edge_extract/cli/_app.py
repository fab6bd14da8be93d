"""The root typer app, shared options and the error-to-exit-code boundary."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.markup import escape

from .._version import __version__
from ..errors import EdgeExtractError
from ..ui import get_console

app = typer.Typer(
    name="edge-extract",
    help="Offline extraction of the 15 ELMTEX fields from clinical reports.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"edge-extract {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Show the version."),
) -> None:
    """Offline extraction of the 15 ELMTEX fields from clinical reports."""


def fail(message: str, code: int) -> typer.Exit:
    """Print a one-line error and return the Exit to raise; the message is text, never markup
    (it names files, and a name such as `report [draft].txt` must print as written)."""
    get_console().print(f"[error]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(func: F) -> F:
    """Turn an EdgeExtractError escaping a command into its one-line message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EdgeExtractError as error:
            raise fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


MODEL_OPTION = typer.Option(
    None,
    "--model",
    "-m",
    envvar="EDGE_EXTRACT_MODEL",
    help="Registered model name or a path to a GGUF file (default: the embedded model).",
)
THREADS_OPTION = typer.Option(None, "--threads", "-t", min=1, help="CPU threads (default: physical cores).")
