"""edge-extract: offline extraction of the 15 ELMTEX fields from clinical reports.

Example:
    >>> from edge_extract import load_model, extract
    >>> extractor = load_model()            # the embedded default model
    >>> result = extract("A 45-year-old man ...", extractor=extractor)
    >>> result.summary.age
"""

from __future__ import annotations

from ._version import __version__
from .api import connect_backend, extract, load_model
from .pipeline import Extractor, Result
from .schema import FIELDS, Record

__all__ = ["FIELDS", "Extractor", "Record", "Result", "__version__", "connect_backend", "extract", "load_model"]
