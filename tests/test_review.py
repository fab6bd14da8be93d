"""Review pages: marks over the report text, the page's data and escaping, finding each record's
report text (and refusing a changed one), the command. The pages in a real browser: test_review_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_extract.batch import collect, run_batch
from edge_extract.cli import app
from edge_extract.evidence import Evidence
from edge_extract.pipeline import Extractor
from edge_extract.review import write_review
from edge_extract.review.page import script_json
from edge_extract.review.view import Mark, RecordView, marks, utf16_offsets
from edge_extract.schema import FIELDS, NA

from .fakes import ScriptedGenerator, WordRuntime, fake_manifest

REPORT = (
    "A 58-year-old man \U0001f642 had fever and a productive cough.\n"
    "<script>window.pwned = 1</script><img src=x onerror=alert(1)> He was treated with amoxicillin.\n"
)
ANSWER = {
    **dict.fromkeys(FIELDS, NA),
    "signs_symptoms": "fever; productive cough",
    "diagnosis": "pneumonia",  # found nowhere: ungrounded
    "pharmacological_therapy": "amoxicillin",
    "age": "58 years",
    "gender": "Male",
}


def _span(start: int, end: int) -> Evidence:
    return Evidence(item="x", start=start, end=end, match="exact")


@pytest.mark.parametrize(
    ("text", "evidence", "expected"),
    [
        ("fever and cough", {"a": [_span(0, 5)]}, [Mark(start=0, end=5, items=["a:0"])]),
        (
            "fever and cough",
            {"a": [_span(0, 9)], "b": [_span(6, 15)]},
            [
                Mark(start=0, end=6, items=["a:0"]),
                Mark(start=6, end=9, items=["a:0", "b:0"]),
                Mark(start=9, end=15, items=["b:0"]),
            ],
        ),
        ("\U0001f642 fever", {"a": [_span(2, 7)]}, [Mark(start=3, end=8, items=["a:0"])]),
        ("fever", {"a": [_span(3, 9), Evidence(item="y", match="none")]}, []),
    ],
    ids=["one", "overlap-cut-at-every-bound", "utf16-after-an-emoji", "outside-or-not-found"],
)
def test_marks(text: str, evidence: dict[str, list[Evidence]], expected: list[Mark]) -> None:
    assert marks(text, evidence) == expected


def test_utf16_offsets_count_astral_characters_twice() -> None:
    assert utf16_offsets("a\U0001f642b") == [0, 1, 3, 4]


def test_script_json_cannot_end_its_script_block() -> None:
    view = RecordView(
        id="</script><!--",
        source="s",
        status="ok",
        page="p",
        model="m",
        flags=[],
        error=None,
        text="</script><script>alert(1)</script> & more",
        text_problem=None,
        marks=[],
        fields=[],
    )
    encoded = script_json(view)
    assert "<" not in encoded and ">" not in encoded and "&" not in encoded
    assert json.loads(encoded)["text"] == view.text


def _batch(tmp_path: Path, files: dict[str, str], *, answers: int) -> Path:
    folder = tmp_path / "reports"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    generator = ScriptedGenerator([json.dumps(ANSWER)] * answers)
    extractor = Extractor(WordRuntime(), generator, manifest=fake_manifest())
    out = tmp_path / "out"
    run_batch(collect([str(folder)]), extractor=extractor, out=out)
    return out


def page_data(page: Path) -> dict:
    """The JSON block a page's script reads."""
    html = page.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="review-data">(.*?)</script>', html, re.S)[1])


def test_pages_of_a_batch_carry_the_text_marks_and_fields(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT, "sub/b.txt": "Fever. Amoxicillin given.\n"}, answers=2)
    site = write_review(out)

    assert site.index == out / "review" / "index.html" and site.records == 2 and site.without_text == []
    record = out / "review" / "records" / "a.txt.html"
    data = page_data(record)
    assert data["mode"] == "record" and data["index"] == "../index.html"
    assert data["download"] == "corrections-a.txt.jsonl"
    (view,) = data["records"]
    assert view["text"] == REPORT
    assert [field["name"] for field in view["fields"]] == list(FIELDS)
    assert "ungrounded:diagnosis" in view["flags"]
    diagnosis = next(field for field in view["fields"] if field["name"] == "diagnosis")
    assert diagnosis["ungrounded"] and not diagnosis["check"] and diagnosis["confidence"] is None
    # every located item has its stretch of text, at UTF-16 offsets (the emoji counts twice)
    marked = {key for mark in view["marks"] for key in mark["items"]}
    assert marked == {"signs_symptoms:0", "signs_symptoms:1", "pharmacological_therapy:0", "age:0"}
    utf16 = REPORT.encode("utf-16-le")
    first = next(mark for mark in view["marks"] if mark["items"] == ["signs_symptoms:1"])
    assert utf16[2 * first["start"] : 2 * first["end"]].decode("utf-16-le") == "productive cough"

    index = page_data(site.index)
    assert index["mode"] == "index" and index["download"] == "corrections.jsonl"
    assert [r["page"] for r in index["records"]] == ["records/a.txt.html", "records/sub/b.txt.html"]
    assert page_data(out / "review" / "records" / "sub" / "b.txt.html")["index"] == "../../index.html"


def test_confidence_and_check_marks_are_shown_where_records_have_them(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT}, answers=1)
    table = out / "results.jsonl"
    (row,) = [json.loads(line) for line in table.read_text().splitlines()]
    row["confidence"] = {name: 0.9 for name in FIELDS} | {"age": 0.42}
    row["flags"].append("check:age")
    table.write_text(json.dumps(row) + "\n")

    fields = {field["name"]: field for field in page_data(write_review(out).index)["records"][0]["fields"]}
    assert fields["age"]["confidence"] == 0.42 and fields["age"]["check"]
    assert fields["gender"]["confidence"] == 0.9 and not fields["gender"]["check"]


def test_records_of_dataset_files_html_and_odd_names_get_their_pages(tmp_path: Path) -> None:
    dataset = json.dumps({"id": "EN1", "report": REPORT}) + "\n"
    markup = "<html><body><p>A 58-year-old man had <b>fever</b> &amp; a productive cough.</p><script>x()</script>"
    out = _batch(tmp_path, {"set.jsonl": dataset, "a&<b>.txt": REPORT, "c.html": markup}, answers=3)
    site = write_review(out)
    assert site.without_text == []
    pages = [record["page"] for record in page_data(site.index)["records"]]
    assert pages == ["records/a%26%3Cb%3E.txt.html", "records/c.html.html", "records/set.jsonl%23EN1.html"]
    # an HTML report's offsets index the text extracted from it, which the page shows
    html_view = page_data(out / "review" / "records" / "c.html.html")["records"][0]
    assert html_view["text"] == "A 58-year-old man had fever & a productive cough."
    fever = next(mark for mark in html_view["marks"] if mark["items"] == ["signs_symptoms:0"])
    assert html_view["text"][fever["start"] : fever["end"]] == "fever"
    dataset_page = out / "review" / "records" / "set.jsonl#EN1.html"
    assert page_data(dataset_page)["records"][0]["text"] == REPORT
    assert "<title>a&amp;&lt;b&gt;.txt</title>" in (out / "review" / "records" / "a&<b>.txt.html").read_text()


def test_pages_load_nothing_from_outside_and_never_carry_report_markup(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT}, answers=1)
    html = write_review(out).index.read_text(encoding="utf-8")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1]
    assert "default-src &#x27;none&#x27;" in policy and "unsafe-inline" not in policy
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert html.count("<script") == 2  # the data block and the page's own script
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html), "a remote load in the page"
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "eval(" not in html


def test_a_changed_or_missing_report_is_shown_without_text(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT, "b.txt": "Fever.\n", "c.txt": "Cough.\n"}, answers=3)
    (tmp_path / "reports" / "a.txt").write_text(REPORT + "added later\n", encoding="utf-8")
    (tmp_path / "reports" / "b.txt").unlink()

    site = write_review(out)
    problems = dict(site.without_text)
    assert set(problems) == {"a.txt", "b.txt"}
    assert "has changed since it was extracted" in problems["a.txt"]
    assert "no such file" in problems["b.txt"]
    a_view = page_data(out / "review" / "records" / "a.txt.html")["records"][0]
    assert a_view["text"] is None and a_view["marks"] == [] and "has changed" in a_view["text_problem"]

    result = CliRunner().invoke(app, ["review", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "2 record(s) shown without their report text" in result.output
    assert REPORT.splitlines()[0] not in result.output  # ids and reasons, never report text


def test_reports_given_as_inputs_are_paired_by_their_text(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT}, answers=1)
    moved = tmp_path / "moved"
    (tmp_path / "reports").rename(moved)
    (moved / "renamed.txt").write_text(REPORT, encoding="utf-8")
    (moved / "a.txt").unlink()
    assert write_review(out).without_text != []

    result = CliRunner().invoke(app, ["review", str(out), str(moved), "--to", str(tmp_path / "pages")])
    assert result.exit_code == 0, result.output
    assert page_data(tmp_path / "pages" / "records" / "a.txt.html")["records"][0]["text"] == REPORT


def test_pages_of_records_no_longer_in_the_batch_are_removed(tmp_path: Path) -> None:
    out = _batch(tmp_path, {"a.txt": REPORT}, answers=1)
    stale = out / "review" / "records" / "old.txt.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("old", encoding="utf-8")
    write_review(out)
    assert not stale.exists() and (out / "review" / "records" / "a.txt.html").exists()


def test_review_of_a_folder_that_is_no_batch(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["review", str(tmp_path)])
    assert result.exit_code == 3
    assert "no results.jsonl" in result.output
