"""The version of edge-extract: recorded with every result, and read by the build (pyproject.toml)."""

__version__ = "0.1.0"
