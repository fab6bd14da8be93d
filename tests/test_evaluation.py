"""Example retrieval, and real evaluation runs of the default model: files written, runs compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_extract import retrieval
from edge_extract.cli import app
from edge_extract.errors import ConfigError
from edge_extract.evaluation import (
    load_run,
    read_gold,
    read_predictions,
    run_extraction,
    run_info,
    score_run,
    scores_markdown,
    write_report,
)
from edge_extract.metrics import SemanticScorer
from edge_extract.models.registry import DEFAULT_MODEL, Registry
from edge_extract.pipeline import Extractor
from edge_extract.prompt import Strategy
from edge_extract.runtime import peak_rss_mb
from edge_extract.schema import Example, Record

from .conftest import TRAIN

runner = CliRunner()


def _example(report: str, diagnosis: str = "N/A") -> Example:
    return Example(report=report, summary=Record(diagnosis=diagnosis))


def test_bank_ranks_by_similarity_and_never_returns_the_query():
    bank = retrieval.ExampleBank(
        [
            _example("fractured femur after a fall from a ladder", "femur fracture"),
            _example("fever and productive cough, consolidation on chest x-ray", "pneumonia"),
            _example("fever, cough and wheeze in a child", "asthma"),
            Example(report="unannotated fever cough report"),  # no summary: cannot be an example
        ]
    )
    assert len(bank.examples) == 3
    found = bank("fever and productive cough, consolidation on chest x-ray", k=3)
    assert [e.summary.diagnosis for e in found] == ["asthma", "femur fracture"]
    assert [e.summary.diagnosis for e in bank("chest x-ray shows consolidation", k=1)] == ["pneumonia"]


def test_default_source_reads_the_train_split(train_rows, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(retrieval.EXAMPLES_ENV, str(TRAIN))
    source = retrieval.default_example_source(k=3)
    query = train_rows[0]["report"]
    found = source(query)
    assert len(found) == 3 and all(example.summary is not None for example in found)
    assert all(example.report != query for example in found)
    assert [e.id for e in source(query)] == [e.id for e in found]  # deterministic


def test_missing_example_bank_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(retrieval.EXAMPLES_ENV, str(tmp_path / "nope.jsonl"))
    with pytest.raises(ConfigError, match="nope.jsonl not found"):
        retrieval.default_example_source()
    monkeypatch.delenv(retrieval.EXAMPLES_ENV)
    monkeypatch.setattr(retrieval, "SHARED_EXAMPLES", tmp_path / "absent.jsonl")
    with pytest.raises(ConfigError, match="needs an example bank: set EDGE_EXTRACT_EXAMPLES"):
        retrieval.default_example_source()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no report key"}\n')
    with pytest.raises(ConfigError, match="example bank: .* not in the ELMTEX layout"):
        retrieval.default_example_source(bad)


@pytest.fixture(scope="module")
def gold_file(tmp_path_factory: pytest.TempPathFactory, val_rows) -> Path:
    path = tmp_path_factory.mktemp("gold") / "val3.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in val_rows[:3]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(extractor, gold_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both strategies over 2 validation reports with the real default model, written as run folders.

    One in-context example instead of three keeps the advanced prompt, and the test, short."""
    reports = read_gold(gold_file, limit=2)
    semantic = SemanticScorer(threads=1)
    advanced = Extractor(
        extractor.runtime,
        extractor.generator,
        manifest=extractor.manifest,
        strategy=Strategy.advanced,
        examples=retrieval.default_example_source(TRAIN),
        n_examples=1,
    )
    folders = {}
    for strategy, each in (("naive", extractor), ("advanced", advanced)):
        out = tmp_path_factory.mktemp(strategy)
        seen = []
        results = run_extraction(each, reports, out=out, on_result=seen.append)
        assert seen == results
        info = run_info(name=f"test-{strategy}", data=gold_file, reports=reports, results=results)
        metrics = score_run(results, reports, semantic=semantic, info=info, peak_rss_mb=peak_rss_mb())
        write_report([metrics], out)
        folders[strategy] = out
    return folders


@pytest.mark.parametrize("strategy", ["naive", "advanced"])
@pytest.mark.model
@pytest.mark.slow
def test_run_folder(runs, strategy: str):
    out = runs[strategy]
    results = read_predictions(out)
    assert len(results) == 2 and all(r.provenance.strategy == strategy for r in results)
    metrics = load_run(out)
    assert (metrics.run.name, metrics.run.strategy, metrics.run.records, metrics.run.threads) == (
        f"test-{strategy}",
        strategy,
        2,
        1,
    )
    assert metrics.failed == sum(r.status == "failed" for r in results)
    assert metrics.scores.schema_valid_rate == 1 - metrics.failed / 2
    assert metrics.seconds_per_report > 0
    assert metrics.cut == sum(any(f.startswith(("loop:", "capped:")) for f in r.flags) for r in results)
    assert metrics.peak_rss_mb is not None and metrics.peak_rss_mb > 200  # the model itself is 253 MB, mapped
    for value in metrics.scores.macro.model_dump().values():
        assert value is None or 0.0 <= value <= 1.0
    summary = (out / "summary.md").read_text()
    assert f"## test-{strategy}" in summary and "| diagnosis |" in summary
    assert (out / "scores.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.model
@pytest.mark.slow
def test_rescoring_a_run_against_other_gold(runs, gold_file: Path, tmp_path: Path):
    out = Path(shutil.copytree(runs["naive"], tmp_path / "run"))
    before = load_run(out)
    result = runner.invoke(
        app, ["eval", "score", str(out), "--data", str(gold_file), "--threads", "1"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    after = load_run(out)
    # the gold file holds 3 records and the run 2: the third is scored as an empty prediction
    assert (after.run.name, after.run.records, after.failed) == ("test-naive", 3, before.failed + 1)
    assert after.scores.fields["diagnosis"].scored == 3
    assert after.peak_rss_mb == before.peak_rss_mb  # extraction was not repeated


@pytest.mark.model
@pytest.mark.slow
def test_compare_writes_table_markdown_and_chart(runs, tmp_path: Path):
    out = tmp_path / "compare"
    result = runner.invoke(
        app, ["eval", "compare", str(runs["naive"]), str(runs["advanced"] / "metrics.json"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "test-naive" in result.output and "test-advanced" in result.output and "item F1 micro" in result.output
    summary = (out / "summary.md").read_text()
    assert summary == scores_markdown([load_run(runs["naive"]), load_run(runs["advanced"])])
    assert summary.count("| test-") == 2
    assert (out / "scores.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "metrics.json").exists()


def test_eval_without_subcommand_runs_and_errors_in_one_line(tmp_path: Path):
    result = runner.invoke(app, ["eval", str(tmp_path / "missing.jsonl"), "--threads", "1"])
    assert result.exit_code == 3
    assert result.output.startswith(f"error: {tmp_path / 'missing.jsonl'}: no such file")
    assert len(result.output.strip().splitlines()) == 1


def test_gold_without_summaries_is_refused(tmp_path: Path):
    data = tmp_path / "plain.jsonl"
    data.write_text('{"id": "a", "report": "A report without a summary."}\n')
    result = runner.invoke(app, ["eval", "run", str(data)])
    assert result.exit_code == 3
    assert "1 record(s) have no gold summary" in result.output


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path: Path):
    result = runner.invoke(app, ["eval", "compare", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path} has no metrics.json: not an evaluation run"


@pytest.mark.model
@pytest.mark.slow
def test_write_report_of_two_runs_has_no_metrics_file(runs, tmp_path: Path):
    both = [load_run(runs["naive"]), load_run(runs["advanced"])]
    with pytest.raises(ValueError, match="exactly one run"):
        write_report(both, tmp_path)


@pytest.mark.model
@pytest.mark.slow
def test_record_val_stores_the_scores_of_a_run_of_that_very_model(runs, tmp_path: Path, monkeypatch):
    from convert import register as registering
    from convert.errors import ConvertError

    metrics = load_run(runs["naive"])  # the default model, folded, on 2 val reports
    registry = Registry((Registry.default().folders[0], tmp_path))
    shipped, folder = registry.get(DEFAULT_MODEL)
    adapter = folder / shipped.adapter.file
    same = {"adapter": adapter, "fold": "Q8_0", "decoding": shipped.decoding, "registry": registry}
    registering.register(metrics.run.model, "gemma-3-270m", **same)
    registering.register("other", "gemma-3-270m", **same)
    with pytest.raises(ConvertError, match="scored .*val3.jsonl, not ELMTEX val.jsonl"):
        registering.record_val(metrics.run.model, runs["naive"], registry=registry)

    monkeypatch.setattr(registering, "ELMTEX_VAL_SHA256", metrics.run.data_sha256)  # 3 gold reports stand in
    with pytest.raises(ConvertError, match="scored 2 of the 55 val reports"):
        registering.record_val(metrics.run.model, runs["naive"], registry=registry)
    monkeypatch.setattr(registering, "ELMTEX_VAL_RECORDS", metrics.run.records)  # and 2 scored for 55
    with pytest.raises(ConvertError, match=f"an evaluation of {metrics.run.model}, not of other"):
        registering.record_val("other", runs["naive"], registry=registry)
    with pytest.raises(ConvertError, match="ran advanced prompting"):
        registering.record_val(metrics.run.model, runs["advanced"], registry=registry)
    manifest = registering.record_val(metrics.run.model, runs["naive"], registry=registry)
    assert manifest.val is not None
    assert manifest.val.item_f1 == pytest.approx(metrics.scores.micro.item_f1, abs=1e-4)
    assert manifest.val.rouge_l == pytest.approx(metrics.scores.macro.rougeL, abs=1e-4)
    assert (manifest.val.records, manifest.val.failed, manifest.val.threads) == (2, metrics.failed, 1)
    assert manifest.val.seconds_per_report == pytest.approx(metrics.seconds_per_report, abs=0.01)
    assert registry.get(metrics.run.model)[0] == manifest  # written, and read back, adapter and fold kept

    # Other decoding settings, or the same adapter applied at load (another build): not this run's numbers.
    registering.register(metrics.run.model, "gemma-3-270m", **(same | {"decoding": None}))
    with pytest.raises(ConvertError, match="other settings .* has now \\(absent_bias 3.0 against 0.0\\)"):
        registering.record_val(metrics.run.model, runs["naive"], registry=registry)
    registering.register(metrics.run.model, "gemma-3-270m", **(same | {"fold": None}))
    with pytest.raises(ConvertError, match="another build"):
        registering.record_val(metrics.run.model, runs["naive"], registry=registry)
