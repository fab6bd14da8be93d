"""The optional Qwen models on a real report, where installed (skipped, saying how to install, where not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_extract import FIELDS, Record, extract, load_model
from edge_extract.models.registry import Registry
from edge_extract.paths import builtin_models_dir, user_models_dir

pytestmark = pytest.mark.model

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "case_report.txt"
INSTALLED = Registry((builtin_models_dir(), user_models_dir()))
"""The user's own models folder, read at import, before the isolated_home fixture hides it."""


@pytest.mark.parametrize(
    "name",
    ["qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-elmtex", pytest.param("qwen2.5-coder-1.5b", marks=pytest.mark.slow)],
)
def test_qwen_extracts_the_sample_offline(name: str):
    manifest, folder = INSTALLED.get(name)
    if not INSTALLED.model_path(manifest, folder).is_file():
        pytest.skip(f"{name} not installed: edge-extract models install {name}")
    resolved = INSTALLED.resolve(name)  # a fine-tune's adapter folded into its base, as the runtime runs it
    extractor = load_model(name, threads=1, registry=INSTALLED)
    try:
        result = extract(SAMPLE.read_text(encoding="utf-8"), extractor=extractor)
    finally:
        extractor.runtime.close()
    assert result.status == "ok", result.error
    assert list(result.summary.model_dump()) == list(FIELDS)
    Record.model_validate(result.summary.model_dump())
    assert (result.provenance.model, result.provenance.prompt_format) == (name, "chatml")
    assert result.provenance.model_sha256 == resolved.sha256
    assert (resolved.sha256 != manifest.sha256) == (manifest.adapter is not None)  # a fine-tune runs its fold
