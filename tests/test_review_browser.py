"""The review pages in a real browser (Debian's headless Chromium driven by Playwright): real
records of the default model, every located item marked, no network request, a `<script>` in a
report never run, a correction saved and taken by `edge-extract-convert prepare` as training data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convert.__main__ import app as convert_app
from edge_extract.batch import collect, run_batch
from edge_extract.pipeline import Result
from edge_extract.review import write_review
from edge_extract.schema import FIELDS

from .tiny_tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INJECTED = '<script>window.injected = true</script><img src="x" onerror="window.injected = true">'
SHORT_REPORT = (
    "A 45-year-old woman reported two weeks of dry cough and night sweats. "
    f"{INJECTED} Chest X-ray showed a right upper lobe cavity. She was started on isoniazid and rifampicin.\n"
)


def _browser_or_skip() -> None:
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Chromium is not installed (apt-get install chromium); the review pages are not checked in a browser"
        )


@pytest.mark.model
def test_review_page_in_chromium_round_trips_a_correction_into_prepare(tmp_path: Path, extractor) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(ROOT / "samples" / "case_report.txt", reports / "case_report.txt")
    (reports / "short.txt").write_text(SHORT_REPORT, encoding="utf-8")
    out = tmp_path / "out"
    run_batch(collect([str(reports)]), extractor=extractor, out=out)
    site = write_review(out)
    results = [Result.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert site.without_text == [] and all(result.status == "ok" for result in results)

    downloaded = tmp_path / "corrections.jsonl"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(accept_downloads=True)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        errors: list[str] = []  # script errors, and what the page's policy refused (it logs each)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        url = site.index.as_uri()
        page.goto(url)
        assert page.locator("tbody tr").count() == 2
        page.check("#only-ungrounded")
        with_ungrounded = sum(any(flag.startswith("ungrounded:") for flag in result.flags) for result in results)
        assert page.locator("tbody tr:visible").count() == with_ungrounded

        for number, result in enumerate(results):
            page.goto(f"{url}#{number}")
            assert page.locator("[data-field]").count() == len(FIELDS)
            assert page.locator("#report-text").text_content() == (reports / result.id).read_text(encoding="utf-8")
            located = [
                f"{name}:{n}"
                for name, entries in result.evidence.items()
                for n, e in enumerate(entries)
                if e.start is not None
            ]
            assert located, "the model's record has no located item"
            for key in located:
                assert page.locator(f'mark[data-items~="{key}"]').count() >= 1, key
            page.check("#only-ungrounded-fields")
            ungrounded = [flag for flag in result.flags if flag.startswith("ungrounded:")]
            assert page.locator("[data-field]:visible").count() == len(ungrounded)
            page.uncheck("#only-ungrounded-fields")
            page.check("#reviewed")

        assert page.evaluate("() => window.injected") is None, "markup in the report ran"
        assert INJECTED in page.locator("#report-text").text_content()

        page.goto(f"{url}#0")
        assert page.is_checked("#reviewed")  # moving between records keeps the review
        page.fill("#value-diagnosis", "community-acquired pneumonia (corrected)")
        with page.expect_download() as download:
            page.click("#save")
        assert download.value.suggested_filename == "corrections.jsonl"
        download.value.save_as(downloaded)
        assert "Saved 2 reviewed record(s)" in page.locator(".save-status").first.text_content()
        browser.close()

    assert errors == []
    assert [u for u in requests if u.split("#")[0] != url and not u.startswith("blob:")] == [], "a network request"
    lines = [json.loads(line) for line in downloaded.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [result.id for result in results]
    assert list(lines[0]["summary"]) == list(FIELDS)
    assert lines[0]["summary"]["diagnosis"] == "community-acquired pneumonia (corrected)"
    assert lines[1]["summary"] == results[1].summary.values()
    assert lines[1]["report"] == SHORT_REPORT

    # The saved file is training data: `prepare` reads it (one example held out for validation).
    for module in ("transformers", "sentencepiece"):
        pytest.importorskip(module, reason=f"the convert extra ({module}) is not installed: prepare not checked")
    base = tmp_path / "base"
    build_tokenizer(base, [line["report"] + json.dumps(line["summary"]) for line in lines])
    config = tmp_path / "run.json"
    settings = {
        "preset": "tiny-cpu",
        "base": str(base),
        "train_file": str(downloaded),
        "out_dir": str(tmp_path / "run"),
    }
    config.write_text(json.dumps(settings))
    prepared = CliRunner().invoke(convert_app, ["prepare", "--config", str(config)], catch_exceptions=False)
    assert prepared.exit_code == 0, prepared.output
    data = tmp_path / "run" / "data"
    assert (
        json.loads((data / "prepare.json").read_text())["train"]
        + json.loads((data / "prepare.json").read_text())["val"]
        == 2
    )
    rows = [json.loads(line) for name in ("train", "val") for line in (data / f"{name}.jsonl").read_text().splitlines()]
    corrected = next(row for row in rows if row["id"] == results[0].id)
    assert "community-acquired pneumonia (corrected)" in corrected["completion"]
