"""One base error, then one subclass per stage; each knows its exit code and error-record kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def problems(error: ValidationError, *, whole: str = "", limit: int | None = None) -> str:
    """A pydantic error on one line: `field.path: message; ...` (`whole` names an error of the
    object itself), the first `limit` of them."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in error.errors()[:limit])


class EdgeExtractError(Exception):
    """Base of every expected failure: the CLI prints its message on one line, no traceback."""

    exit_code = 1
    kind = "error"


class ConfigError(EdgeExtractError):
    """A setting, option or manifest is wrong."""

    exit_code = 2
    kind = "config"


class InputError(EdgeExtractError):
    """A report cannot be read: empty, binary, undecodable, too large or missing."""

    exit_code = 3
    kind = "input"

    def __init__(self, message: str, *, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason
        """One stable word for errors.jsonl and logs: empty, binary, encoding, too_large, missing, ..."""


class ModelError(EdgeExtractError):
    """A model is unknown, missing, corrupted or fails to load."""

    exit_code = 4
    kind = "model"


class GenerationError(EdgeExtractError):
    """The model could not produce an answer for a report."""

    exit_code = 5
    kind = "generation"


class OutputInvalidError(EdgeExtractError):
    """The model's answer is not a valid record (kept closed: never written as good)."""

    exit_code = 5
    kind = "invalid_output"


class BackendUnavailableError(EdgeExtractError):
    """An extraction server (--backend) cannot be reached, keeps failing or refuses us: not the
    report's fault, so it gets no record and the run stops; the same command resumes."""

    exit_code = 4
    kind = "backend"


class UnknownModelError(ModelError):
    """No model of that name is registered."""


class OutputError(EdgeExtractError):
    """A record or table cannot be written: a full disk, a name too long for the file system."""

    exit_code = 1
    kind = "write"
