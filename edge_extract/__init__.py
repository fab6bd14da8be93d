"""edge-extract: offline extraction of the 15 ELMTEX fields from clinical reports.

Example:
    >>> from edge_extract import load_model, extract
    >>> extractor = load_model()            # the embedded default model
    >>> result = extract("A 45-year-old man ...", extractor=extractor)
    >>> result.summary.age
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import extract, load_model  # noqa: E402
from .pipeline import Extractor, Result  # noqa: E402
from .schema import FIELDS, Record  # noqa: E402

__all__ = ["FIELDS", "Extractor", "Record", "Result", "__version__", "extract", "load_model"]
