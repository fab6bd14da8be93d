"""Expected failures of the conversion pipeline, printed on one line by the convert CLI."""

from __future__ import annotations

from edge_extract.errors import EdgeExtractError


class ConvertError(EdgeExtractError):
    """A conversion step cannot go on: bad config or data, a failed converter, a missing tool."""

    exit_code = 6
    kind = "convert"


class NonFiniteError(ConvertError):
    """Training produced a NaN or infinite loss, gradient or adapter weight."""
