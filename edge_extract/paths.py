"""Where edge-extract keeps its files: platformdirs locations, all movable with EDGE_EXTRACT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "edge-extract"


def home() -> Path | None:
    """EDGE_EXTRACT_HOME, when set: one folder for data and cache (portable installs, tests)."""
    value = os.environ.get("EDGE_EXTRACT_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """User data: imported and pulled models, their manifests."""
    root = home()
    return root / "data" if root else Path(platformdirs.user_data_dir(APP, appauthor=False))


def cache_dir() -> Path:
    """Rebuildable files, such as the default GGUF assembled from its PyPI chunks.

    EDGE_EXTRACT_CACHE moves only this folder, so tests can share one assembled model.
    """
    value = os.environ.get("EDGE_EXTRACT_CACHE")
    if value:
        return Path(value).expanduser()
    root = home()
    return root / "cache" if root else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def user_models_dir() -> Path:
    """Manifests and files of models the user added (import, pull, convert register)."""
    return data_dir() / "models"


def builtin_models_dir() -> Path:
    """Manifests shipped with edge-extract: `models/` in a checkout, inside the package in a wheel."""
    packaged = Path(__file__).parent / "_models"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "models"
