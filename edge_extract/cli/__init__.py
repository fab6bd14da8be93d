"""The edge-extract command: one root app, one sub-module per noun.

Expected failures exit with a one-line message and the error's exit code, never a traceback.
"""

from __future__ import annotations

# Each command module registers itself on `app` when imported.
from . import doctor as _doctor  # noqa: F401
from . import eval as _eval  # noqa: F401
from . import extract as _extract  # noqa: F401
from . import models as _models  # noqa: F401
from . import review as _review  # noqa: F401
from . import watch as _watch  # noqa: F401
from ._app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
