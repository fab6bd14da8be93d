"""Shared fixtures: isolated user folders, the real default model loaded once, the shared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_extract.runtime import Runtime

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VAL = SHARED_DATA / "elmtex-open" / "val.jsonl"
TRAIN = SHARED_DATA / "elmtex-open" / "train.jsonl"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test run, so the default GGUF is assembled once, not per test."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the real user folders: EDGE_EXTRACT_HOME points at a fresh folder."""
    home = tmp_path / "edge-extract-home"
    monkeypatch.setenv("EDGE_EXTRACT_HOME", str(home))
    monkeypatch.setenv("EDGE_EXTRACT_CACHE", str(model_cache))
    monkeypatch.delenv("EDGE_EXTRACT_MODEL", raising=False)
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def model_marker_is_honest(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that loads a model in-process must say so, so that `-m "not model"` stays fast."""
    if request.node.get_closest_marker("model") is None:
        if "extractor" in request.fixturenames:  # set up already: session fixtures come first
            pytest.fail("this test uses the real model (the extractor fixture): mark it @pytest.mark.model")

        def refuse(*args: object, **kwargs: object) -> None:
            pytest.fail("this test loads a real model: mark it @pytest.mark.model")

        monkeypatch.setattr(Runtime, "__init__", refuse)


@pytest.fixture(scope="session")
def extractor(model_cache: Path):
    """The embedded default model, loaded once per run, 1 thread (2 threads collapse under load)."""
    os.environ["EDGE_EXTRACT_CACHE"] = str(model_cache)
    from edge_extract import load_model

    loaded = load_model(threads=1)
    yield loaded
    loaded.runtime.close()


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def val_rows() -> list[dict]:
    """The 55 annotated validation reports of elmtex-open."""
    return _rows(VAL)


@pytest.fixture(scope="session")
def train_rows() -> list[dict]:
    """The 585 annotated training reports of elmtex-open."""
    return _rows(TRAIN)
