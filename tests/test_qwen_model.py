"""The optional Qwen 0.5B on a real report, where it is installed (skipped, saying how, where not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_extract import FIELDS, Record, extract, load_model
from edge_extract.models.registry import Registry
from edge_extract.paths import builtin_models_dir, user_models_dir

pytestmark = pytest.mark.model

NAME = "qwen2.5-coder-0.5b"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "case_report.txt"
INSTALLED = Registry((builtin_models_dir(), user_models_dir()))
"""The user's own models folder, read at import, before the isolated_home fixture hides it."""


def test_qwen_05b_extracts_the_sample_offline():
    manifest, folder = INSTALLED.get(NAME)
    if not INSTALLED.model_path(manifest, folder).is_file():
        pytest.skip(f"{NAME} not installed: edge-extract models install {NAME}")
    extractor = load_model(NAME, threads=1, registry=INSTALLED)
    try:
        result = extract(SAMPLE.read_text(encoding="utf-8"), extractor=extractor)
    finally:
        extractor.runtime.close()
    assert result.status == "ok", result.error
    assert list(result.summary.model_dump()) == list(FIELDS)
    Record.model_validate(result.summary.model_dump())
    assert (result.provenance.model, result.provenance.prompt_format) == (NAME, "chatml")
    assert result.provenance.model_sha256 == manifest.sha256
