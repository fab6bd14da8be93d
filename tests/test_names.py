"""Property tests over file names and ids (hypothesis): distinct inputs never share an output file,
no id writes outside OUT, and every name prints as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_extract.cli.exits import fail
from edge_extract.output import output_path

OUT = Path("/records")

# A file name on Linux: any characters but `/` and NUL, not `.` or `..` (hidden names are skipped
# by the folder walk, but a file given by name may still start with a dot).
file_names = st.text(st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]), min_size=1).filter(
    lambda name: name not in (".", "..")
)
paths = st.lists(file_names, min_size=1, max_size=3).map("/".join)
# A report id: a relative path, or `<dataset path>#<record id>` where the record id is any text.
report_ids = st.one_of(paths, st.tuples(paths, st.text()).map("#".join))


@given(report_ids, report_ids)
def test_distinct_ids_get_distinct_output_files(first: str, second: str):
    if first != second:
        assert output_path(OUT, first) != output_path(OUT, second)


@given(paths, st.text())
def test_a_record_id_stays_one_file_name_inside_out(path: str, record: str):
    written = output_path(OUT, f"{path}#{record}")
    assert written.parent == output_path(OUT, path).parent  # the record id adds no folder, never `..`
    assert written.is_relative_to(OUT)


@pytest.mark.parametrize(
    ("first", "second"),
    [("a#b.txt", "a.b.txt"), ("set.jsonl#p 1", "set.jsonl#p_1"), ("set.jsonl#../x", "set.jsonl#.._x")],
    ids=["hash-vs-dot", "space-vs-underscore", "slash-vs-underscore"],
)
def test_names_the_old_scheme_merged_stay_apart(first: str, second: str):
    assert output_path(OUT, first) != output_path(OUT, second)


printable_names = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(name=printable_names)
@example(name="report [draft].txt")  # printed as "report .txt" when read as markup
@example(name="sub[/]y.txt")  # a folder `sub[` holding `]y.txt`: a closing tag with nothing open
@example(name="a :thumbs_up: b.txt")  # an emoji code
@example(name="ends with a backslash\\")  # would escape the markup that follows it
@example(name="\\[")  # markup escaping would print it as "["
def test_every_name_prints_as_written(name: str, capsys: pytest.CaptureFixture[str]):
    capsys.readouterr()
    fail(f"{name}: empty file", 3)
    assert capsys.readouterr().err == f"error: {name}: empty file\n"
