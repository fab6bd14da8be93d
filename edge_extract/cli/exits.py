"""The error-to-exit-code boundary every command shares, edge-extract's and edge-extract-convert's:
expected failures exit with a one-line message and their error's exit code, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..errors import EdgeExtractError
from ..ui import get_console, labelled

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> typer.Exit:
    """Print a one-line error and return the Exit to raise; the message is text, never markup
    (it names files, and a name such as `report [draft].txt` or `a\\[b` must print as written)."""
    get_console().print(labelled("error:", "error", message), soft_wrap=True)
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
