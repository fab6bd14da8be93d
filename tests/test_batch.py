"""Folder batches with the real default model: every bad input gets one error line, a killed batch resumes
without losing, duplicating or truncating a record, and the Linux drag-and-drop launcher works."""

from __future__ import annotations

import csv
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_extract import batch as batch_module
from edge_extract.batch import Inputs, collect, run_batch
from edge_extract.cli import app
from edge_extract.decoding import DecodingSettings
from edge_extract.files import TEMP_FILE, remove_temp_files, replacing, temp_path
from edge_extract.generation import SchemaGenerator
from edge_extract.output import output_path
from edge_extract.pipeline import Extractor, Result
from edge_extract.reading import text_sha256
from edge_extract.schema import FIELDS

from .test_formats import docx_with, encrypted_pdf, pdf_with_text, scanned_pdf

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def shortest(rows: list[dict], n: int) -> list[dict]:
    """The n shortest reports: the same code paths as long ones, a fraction of the model time."""
    return sorted(rows, key=lambda row: len(row["report"]))[:n]


def read_outputs(out: Path) -> tuple[list[Result], list[dict], list[dict]]:
    results = [Result.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()]
    with (out / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    return results, rows, errors


@pytest.mark.parametrize(
    ("report_id", "expected"),
    [
        ("a.txt", "a.txt.json"),
        ("ward a/b ü.md", "ward a/b ü.md.json"),
        ("set.jsonl#EN117869", "set.jsonl#EN117869.json"),
        ("set.jsonl#3", "set.jsonl#3.json"),
        ("set.jsonl#../../etc/passwd", "set.jsonl#..%2F..%2Fetc%2Fpasswd.json"),
        ("a#b.txt", "a#b.txt.json"),
    ],
    ids=["file", "tree", "record", "record-number", "record-id-escaping-out", "hash-in-a-file-name"],
)
def test_output_paths_mirror_the_input_tree_and_stay_inside(tmp_path: Path, report_id: str, expected: str):
    assert output_path(tmp_path, report_id) == tmp_path / expected


@pytest.mark.model
@pytest.mark.slow
def test_every_bad_input_gets_one_error_line_and_the_rest_is_done(
    tmp_path: Path, extractor: Extractor, val_rows, monkeypatch
):
    good_rows = shortest(val_rows, 3)
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    # A one-line PDF text layer: pypdf gives the line back as written, so its hash can be checked.
    good = {
        "Bericht für Frau Müller.txt": good_rows[0]["report"],
        "sub/discharge.pdf": " ".join(good_rows[2]["report"].split()),
        "sub/letter one.docx": good_rows[1]["report"],
    }
    (folder / "Bericht für Frau Müller.txt").write_text(good_rows[0]["report"], encoding="utf-8")
    (folder / "sub" / "letter one.docx").write_bytes(docx_with([good_rows[1]["report"]]))
    (folder / "sub" / "discharge.pdf").write_bytes(pdf_with_text(good["sub/discharge.pdf"]))
    bad = {
        "leer ä b.txt": "empty",
        "binary.txt": "binary",
        "latin1.txt": "encoding",
        "locked.docx": "password_protected",
        "broken.docx": "corrupted",
        "locked.pdf": "password_protected",
        "broken.pdf": "corrupted",
        "scan.pdf": "no_text_layer",
        "vanished.txt": "missing",
        "secret.txt": "permission",
        "huge.txt": "too_large",
        "loop.txt": "symlink_loop",
        "sub/up": "symlink_loop",
    }
    (folder / "leer ä b.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (folder / "latin1.txt").write_bytes("Patientin, 54 Jahre, Übelkeit.".encode("cp1252"))
    (folder / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))  # an encrypted Office file
    (folder / "broken.docx").write_bytes(docx_with(["x"])[:700])
    (folder / "locked.pdf").write_bytes(encrypted_pdf("secret"))
    (folder / "broken.pdf").write_bytes(pdf_with_text("x")[:60])
    (folder / "scan.pdf").write_bytes(scanned_pdf())
    (folder / "vanished.txt").write_text("listed, then deleted before it is read")
    (folder / "secret.txt").write_text("tests run as root, so permissions are simulated below")
    with (folder / "huge.txt").open("wb") as handle:
        handle.truncate(50 * 1000 * 1000)
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)

    # Root reads everything, so a permission error is raised where the OS would raise it; and the
    # vanishing file is deleted between the folder listing and its reading, as a sync client might.
    real_read_bytes, real_read_path = Path.read_bytes, batch_module.read_path

    def read_bytes(path: Path) -> bytes:
        if path.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_bytes(path)

    def read_path(path: Path, **kwargs):
        if path.name == "vanished.txt":
            path.unlink()
        return real_read_path(path, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(batch_module, "read_path", read_path)
    monkeypatch.setattr("edge_extract.cli._load.load_model", lambda *args, **kwargs: extractor)

    out = tmp_path / "out"
    result = runner.invoke(app, ["extract", str(folder), "--out", str(out)], catch_exceptions=False)

    assert result.exit_code == 1, result.output
    assert f"finished with {len(bad)} failure(s) of {len(bad) + len(good)}" in result.output
    assert "Traceback" not in result.output
    results, rows, errors = read_outputs(out)
    assert {line["id"]: line["kind"] for line in errors} == bad
    assert len(errors) == len(bad)
    for line in errors:
        assert "\n" not in line["message"] and line["message"]
    assert [r.id for r in results] == [row["id"] for row in rows] == list(good)  # folder order
    for report_id, text in good.items():
        written = Result.model_validate_json(output_path(out, report_id).read_text())
        assert written.status == "ok" and written.summary is not None
        assert written.provenance.input_sha256 == text_sha256(text)
    assert json.loads((out / "summary.json").read_text())["failed"] == len(bad)


@pytest.mark.model
@pytest.mark.slow
def test_resume_is_keyed_by_content_and_fingerprint(tmp_path: Path, extractor: Extractor, val_rows):
    rows = shortest(val_rows, 2)
    folder = tmp_path / "in"
    folder.mkdir()
    for n, row in enumerate(rows):
        (folder / f"r{n}.txt").write_text(row["report"], encoding="utf-8")
    out = tmp_path / "out"

    def run(with_extractor: Extractor = extractor, force: bool = False):
        return run_batch(collect([str(folder)]), extractor=with_extractor, out=out, force=force)

    first = run()
    assert (first.extracted, first.skipped, first.failed) == (2, 0, 0)
    assert (run().extracted, run().skipped) == (0, 2)  # nothing changed: nothing re-runs

    (folder / "r1.txt").write_text(rows[1]["report"] + "\nAddendum: afebrile on day 3.", encoding="utf-8")
    edited = run()
    assert (edited.extracted, edited.skipped) == (1, 1)

    generator = SchemaGenerator(extractor.runtime, settings=DecodingSettings(repeat_penalty=1.2))
    stricter = Extractor(extractor.runtime, generator, manifest=extractor.manifest)
    assert stricter.fingerprint != extractor.fingerprint
    assert run(stricter).extracted == 2  # other decoding settings may give other records
    assert run(stricter, force=True).extracted == 2

    results, rows_csv, _ = read_outputs(out)
    assert [r.id for r in results] == ["r0.txt", "r1.txt"] and len(rows_csv) == 2
    journal = (out / ".edge-extract" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 2  # compacted: one line per report


@pytest.mark.model
def test_stop_request_finishes_the_current_report_then_resumes(tmp_path: Path, extractor: Extractor, val_rows):
    folder = tmp_path / "in"
    folder.mkdir()
    for n, row in enumerate(shortest(val_rows, 2)):
        (folder / f"r{n}.txt").write_text(row["report"], encoding="utf-8")
    out = tmp_path / "out"
    asked = []

    def stop_after_first() -> bool:
        asked.append(True)
        return len(asked) > 1

    stopped = run_batch(collect([str(folder)]), extractor=extractor, out=out, should_stop=stop_after_first)
    assert stopped.interrupted and stopped.extracted == 1
    assert not (out / "summary.json").exists()  # no completion marker for an unfinished run
    results, _, _ = read_outputs(out)
    assert [r.id for r in results] == ["r0.txt"]
    resumed = run_batch(collect([str(folder)]), extractor=extractor, out=out)
    assert (resumed.extracted, resumed.skipped, resumed.interrupted) == (1, 1, False)
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def _journal_lines(out: Path) -> int:
    path = out / ".edge-extract" / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.model
def test_killed_batch_resumes_with_every_report_exactly_once(tmp_path: Path, val_rows, train_rows):
    rows = shortest(val_rows + train_rows, 20)
    folder = tmp_path / "reports"
    expected: dict[str, str] = {}
    for n, row in enumerate(rows[:14]):
        report_id = f"ward {'ab'[n % 2]}/report {n:02d}.txt"
        (folder / report_id).parent.mkdir(parents=True, exist_ok=True)
        (folder / report_id).write_text(row["report"], encoding="utf-8")
        expected[report_id] = row["report"]
    with (folder / "set.jsonl").open("w", encoding="utf-8") as handle:
        for row in rows[14:]:
            handle.write(json.dumps({"id": row["id"], "report": row["report"], "summary": row["summary"]}) + "\n")
            expected[f"set.jsonl#{row['id']}"] = row["report"]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "edge_extract", "extract", str(folder), "--out", str(out), "--threads", "1"]
    seed = int(os.environ.get("EDGE_EXTRACT_KILL_SEED", time.time()))
    rng = random.Random(seed)
    log = tmp_path / "stderr.log"

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=ROOT)

    for _ in range(3):  # SIGKILL at a random moment: model load, mid-report, mid-write
        process = start()
        time.sleep(rng.uniform(0.5, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()

    process = start()  # Ctrl-C: the current report is finished and written, then a clean exit
    before, deadline = _journal_lines(out), time.monotonic() + 120
    while _journal_lines(out) == before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) in (0, 130), f"seed {seed}: {log.read_text()}"
    if process.returncode == 130:
        assert "to resume, run again" in log.read_text()
    # What a power cut can leave besides: half a journal line, a temp file that was never renamed.
    with (out / ".edge-extract" / "journal.jsonl").open("a") as handle:
        handle.write('{"id": "ward a/report 01.txt", "input_sha')
    (out / "ward a").mkdir(exist_ok=True)
    (out / "ward a" / ".edge-extract-abcd1234.tmp").write_text('{"id": "half a fi')

    final = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert final.returncode == 0, f"seed {seed}: {final.stderr}"

    results, csv_rows, errors = read_outputs(out)
    assert errors == []
    assert sorted(r.id for r in results) == sorted(expected), f"seed {seed}"
    assert sorted(row["id"] for row in csv_rows) == sorted(expected)
    assert set(csv_rows[0]) >= set(FIELDS)
    for report_id, text in expected.items():
        written = Result.model_validate_json(output_path(out, report_id).read_text())
        assert written.id == report_id and written.status == "ok" and written.summary is not None
        assert written.provenance.input_sha256 == text_sha256(text)
    per_report = [p for p in out.rglob("*.json") if ".edge-extract" not in p.parts and p.name != "summary.json"]
    assert len(per_report) == len(expected)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    journal = [json.loads(line) for line in (out / ".edge-extract" / "journal.jsonl").read_text().splitlines()]
    assert sorted(entry["id"] for entry in journal) == sorted(expected)

    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert again.returncode == 0
    assert f"{len(expected)} report(s) already done" in again.stderr
    assert (out / "results.jsonl").read_text().count("\n") == len(expected)


@pytest.mark.integration
@pytest.mark.model
def test_desktop_launcher_runs_a_dropped_folder(tmp_path: Path, val_rows):
    entry = (ROOT / "packaging" / "edge-extract.desktop").read_text(encoding="utf-8")
    exec_line = next(line.split("=", 1)[1] for line in entry.splitlines() if line.startswith("Exec="))
    assert "%F" in exec_line
    dropped = tmp_path / "Befunde März"
    dropped.mkdir()
    text = shortest(val_rows, 1)[0]["report"]
    (dropped / "first report.txt").write_text(text, encoding="utf-8")
    # The desktop puts each dropped path in place of %F as its own argument, then runs the line.
    command = exec_line.replace("%F", shlex.quote(str(dropped)))
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "Befunde März-extracted"
    written = Result.model_validate_json((out / "first report.txt.json").read_text())
    assert written.status == "ok" and written.provenance.input_sha256 == text_sha256(text)
    assert (out / "summary.json").is_file()


def _batch_cli(monkeypatch, extractor: Extractor, *args: str):
    """`edge-extract extract ARGS` with the session's model (loading it again would only cost time)."""
    monkeypatch.setattr("edge_extract.cli._load.load_model", lambda *a, **k: extractor)
    return runner.invoke(app, ["extract", *args], catch_exceptions=False)


@pytest.mark.model
def test_a_record_that_cannot_be_written_fails_alone_and_the_batch_goes_on(
    tmp_path: Path, extractor: Extractor, val_rows, monkeypatch
):
    text = shortest(val_rows, 1)[0]["report"]
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    long_ok = "x" * 240 + ".txt"  # its record name fits 255 bytes; a temp name made from it did not
    too_long = "y" * 251 + ".txt"  # 255 bytes: its record name, with `.json`, cannot exist
    for name in (long_ok, too_long, "z.txt"):
        (folder / name).write_text(text, encoding="utf-8")

    result = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out))

    assert result.exit_code == 1, result.output
    assert "finished with 1 failure(s) of 3" in result.output
    results, rows, errors = read_outputs(out)
    assert [(r.id, r.status) for r in results] == [(long_ok, "ok"), (too_long, "failed"), ("z.txt", "ok")]
    assert [(e["id"], e["kind"]) for e in errors] == [(too_long, "write")]
    assert "File name too long" in errors[0]["message"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["complete"], summary["unwritten"]) == (False, 1)
    again = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out))  # the unwritten one is tried again
    assert "2 report(s) already done" in again.output and again.exit_code == 1


@pytest.mark.model
def test_names_print_as_written(tmp_path: Path, extractor: Extractor, val_rows, monkeypatch):
    folder, out = tmp_path / "in", tmp_path / "records [x]"
    (folder / "sub[").mkdir(parents=True)
    (folder / "ward [a]").mkdir()
    (folder / "ward [a]" / "good [1].txt").write_text(shortest(val_rows, 1)[0]["report"], encoding="utf-8")
    bad = ["report [draft].txt", "sub[/]y.txt", "a :thumbs_up: b.txt", "[bold]x.txt"]
    for name in bad:
        (folder / name).write_bytes(b"")  # empty: each prints one error line with its name

    result = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out))

    assert result.exit_code == 1, result.output
    for name in bad:
        assert f"error: {folder / name}: empty file" in result.output
    assert f"see {out / 'errors.jsonl'}" in result.output
    results, _, errors = read_outputs(out)
    assert [r.id for r in results] == ["ward [a]/good [1].txt"]
    assert sorted(e["id"] for e in errors) == sorted(bad)


@pytest.mark.model
def test_distinct_inputs_get_distinct_records_and_csv_cells_cannot_run(tmp_path: Path, extractor: Extractor, val_rows):
    texts = [row["report"] for row in shortest(val_rows, 4)]
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / "a#b.txt").write_text(texts[0], encoding="utf-8")
    (folder / "a.b.txt").write_text(texts[1], encoding="utf-8")
    rows = [{"id": "p 1", "report": texts[2]}, {"id": "p_1", "report": texts[3]}]
    (folder / "=set.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    ids = ["=set.jsonl#p 1", "=set.jsonl#p_1", "a#b.txt", "a.b.txt"]

    first = run_batch(collect([str(folder)]), extractor=extractor, out=out)

    assert (first.extracted, first.failed) == (4, 0)
    for report_id, text in zip(ids, [texts[2], texts[3], texts[0], texts[1]]):
        written = Result.model_validate_json(output_path(out, report_id).read_text())
        assert written.id == report_id and written.provenance.input_sha256 == text_sha256(text)
    results, csv_rows, _ = read_outputs(out)
    assert [r.id for r in results] == ids  # JSON: exact
    assert [row["id"] for row in csv_rows] == ["'=set.jsonl#p 1", "'=set.jsonl#p_1", "a#b.txt", "a.b.txt"]
    for row in csv_rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    again = run_batch(collect([str(folder)]), extractor=extractor, out=out)
    assert (again.extracted, again.skipped) == (0, 4)  # each record found again: nothing re-runs


@pytest.mark.model
def test_cleanup_removes_only_its_own_temp_files(tmp_path: Path, extractor: Extractor):
    out = tmp_path / "out"
    run_batch(Inputs(), extractor=extractor, out=out)
    (out / "docs").mkdir()
    user_file = out / "docs" / ".thesis.docx.a1b2c3d4.tmp"  # someone's editor backup, kept in OUT
    user_file.write_text("a user's file")
    leftover = out / "docs" / ".edge-extract-abcd1234.tmp"  # what a kill mid-write leaves
    leftover.write_text('{"id": "half a fi')
    run_batch(Inputs(), extractor=extractor, out=out)
    assert user_file.read_text() == "a user's file"
    assert not leftover.exists()


@pytest.mark.model
def test_output_folders_are_never_read_as_inputs(tmp_path: Path, extractor: Extractor, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")  # one input, no model time: it cannot be read
    first = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(folder / "records"))
    assert first.exit_code == 3, first.output
    # The earlier records (summary.json, results.jsonl, ...) inside the folder are not reports.
    later = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(tmp_path / "elsewhere"))
    assert later.exit_code == 3, later.output
    _, _, errors = read_outputs(tmp_path / "elsewhere")
    assert [e["id"] for e in errors] == ["empty.txt"]
    same = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(folder), "--force")
    assert same.exit_code == 2
    assert f"error: --out {folder} is an input folder; write the records to another folder" in same.output


@pytest.mark.model
def test_a_folder_of_other_files_is_not_written_into_without_force(tmp_path: Path, extractor: Extractor, monkeypatch):
    folder, out = tmp_path / "in", tmp_path / "mine"
    folder.mkdir()
    out.mkdir()
    (folder / "summary.txt").write_bytes(b"")
    (out / "results.csv").write_text("the user's own table\n")
    refused = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out))
    assert refused.exit_code == 2
    assert "holds files edge-extract did not write" in refused.output and "--force" in refused.output
    assert (out / "results.csv").read_text() == "the user's own table\n"
    forced = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out), "--force")
    assert forced.exit_code == 3, forced.output
    again = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(out))  # now it is edge-extract's
    assert again.exit_code == 3, again.output


@pytest.mark.model
def test_a_base_install_fails_only_the_files_that_need_an_extra(
    tmp_path: Path, extractor: Extractor, val_rows, monkeypatch
):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "letter.docx").write_bytes(docx_with(["Fever and cough."]))
    (folder / "note.txt").write_text(shortest(val_rows, 1)[0]["report"], encoding="utf-8")
    monkeypatch.setitem(sys.modules, "docx", None)  # what `import docx` finds without the [formats] extra
    result = _batch_cli(monkeypatch, extractor, str(folder), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "letter.docx: reading Word files needs the formats extra: pip install 'edge-extract[formats]'" in (
        result.output
    )
    results, _, errors = read_outputs(tmp_path / "out")
    assert [r.id for r in results] == ["note.txt"] and results[0].status == "ok"
    assert [(e["id"], e["kind"]) for e in errors] == [("letter.docx", "missing_extra")]


def test_replacing_is_all_or_nothing_and_its_temp_files_are_swept(tmp_path: Path):
    target = tmp_path / "models" / "m.gguf"
    with replacing(target) as tmp:
        assert TEMP_FILE.match(tmp.name)  # the name the sweep of the next run looks for
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the converter failed")
    assert target.read_bytes() == b"new" and list(target.parent.iterdir()) == [target]

    leftover = temp_path(target)
    leftover.write_bytes(b"half")  # what a kill inside the block leaves
    kept = target.parent / ".m.gguf.a1b2c3d4.tmp"  # not ours
    kept.write_bytes(b"")
    remove_temp_files(tmp_path)
    assert sorted(path.name for path in target.parent.iterdir()) == [kept.name, "m.gguf"]
