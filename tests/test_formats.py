"""Document formats -> report text, and a one-line reason for every kind of unreadable file (no model)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from edge_extract.errors import InputError
from edge_extract.reading import MAX_BYTES, list_folder, read_path

TEXT = "A 54-year-old woman presented with fever and cough. Chest X-ray showed pneumonia."


def pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF with a real text layer (Helvetica), offsets computed, as a writer would."""
    stream = f"BT /F1 11 Tf 50 750 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted_pdf(text: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_with_text(text))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A page with no text layer, as a scanner writes (the image itself does not matter here)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_with(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = (
    "<html><head><title>x</title><style>p {color: red}</style></head><body>"
    "<h1>Case</h1><p>A 54-year-old woman presented with <b>fever</b> and cough.</p>"
    "<script>var secret = 1;</script><table><tr><td>CRP</td><td>80 mg/L</td></tr></table></body></html>"
)
RTF = r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Arial;}}\f0\fs22 Patientin, 54 Jahre, \'dcbelkeit.\par Fieber.\par}"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("r.txt", TEXT.encode(), [TEXT]),
        ("r.md", f"# Case\n\n{TEXT}".encode(), ["# Case", TEXT]),
        ("r.html", HTML.encode(), ["Case\n", "presented with fever and cough.", "CRP 80 mg/L"]),
        ("r.htm", HTML.encode("utf-16"), ["presented with fever"]),
        ("r.rtf", RTF.encode("ascii"), ["Patientin, 54 Jahre, Übelkeit.", "Fieber."]),
        ("r.docx", docx_with([TEXT, "Second."], [["CRP", "80 mg/L"]]), [TEXT, "Second.", "CRP | 80 mg/L"]),
        ("r.pdf", pdf_with_text(TEXT), [TEXT]),
    ],
    ids=["txt", "md", "html", "htm-utf16", "rtf-cp1252-escape", "docx-with-table", "pdf-text-layer"],
)
def test_document_formats_give_their_text(tmp_path: Path, name: str, content: bytes, expected: list[str]):
    path = tmp_path / name
    path.write_bytes(content)
    [report] = read_path(path, root=tmp_path)
    for part in expected:
        assert part in report.text
    assert "secret" not in report.text and "color" not in report.text  # scripts and styles are not text
    assert report.id == name


def test_elmtex_dataset_formats(tmp_path: Path, val_rows):
    rows = val_rows[:3]
    jsonl = tmp_path / "set.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    as_list = tmp_path / "set.json"
    as_list.write_text(json.dumps(rows), encoding="utf-8")
    for path in (jsonl, as_list):
        reports = read_path(path, root=tmp_path)
        assert [r.id for r in reports] == [f"{path.name}#{row['id']}" for row in rows]
        assert [r.gold.values() for r in reports] == [row["summary"] for row in rows]


def test_legacy_encoding_when_asked(tmp_path: Path):
    path = tmp_path / "brief.txt"
    path.write_bytes("Patientin, 54 Jahre, Übelkeit seit drei Tagen, Fieber über 39 °C.".encode("cp1252"))
    with pytest.raises(InputError) as refused:
        read_path(path)
    assert refused.value.reason == "encoding"
    assert "Übelkeit" in read_path(path, encoding="cp1252")[0].text
    assert "Übelkeit" in read_path(path, encoding="auto")[0].text


BAD = [
    ("empty.txt", b"", "empty", "empty file"),
    ("blank.md", b"  \n\n ", "empty", "empty file"),
    ("binary.txt", bytes(range(256)) * 40, "binary", "binary file"),
    ("latin1.txt", "Übelkeit".encode("cp1252") * 3, "encoding", "not utf-8 text"),
    ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000), "password_protected", "password-protected"),
    ("broken.docx", b"PK\x03\x04 this zip was cut short", "corrupted", "corrupted Word document"),
    ("empty.docx", b"", "empty", "empty file"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "corrupted", "corrupted PDF"),
    ("scan.pdf", None, "no_text_layer", "no text layer"),
    ("locked.pdf", None, "password_protected", "password-protected PDF"),
    ("notrtf.rtf", b"just text", "corrupted", "not an RTF document"),
    ("bad.jsonl", b'{"report": "x"}\n{"summary": {}}\n', "not_elmtex", "not in the ELMTEX layout"),
    ("bad.json", b'"a string, not records"', "not_elmtex", "must be a list"),
    ("text.json", b'{\n  "text": "no report key"\n}', "not_elmtex", "not in the ELMTEX layout"),
]


@pytest.mark.parametrize(("name", "content", "reason", "message"), BAD, ids=[case[0] for case in BAD])
def test_unreadable_documents_say_why(tmp_path: Path, name: str, content: bytes | None, reason: str, message: str):
    if content is None:
        content = scanned_pdf() if name == "scan.pdf" else encrypted_pdf(TEXT)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as refused:
        read_path(path)
    assert refused.value.reason == reason
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_too_large_text_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:  # 50 MB, written sparse: the size check must not read it
        handle.truncate(50 * 1000 * 1000)
    with pytest.raises(InputError) as refused:
        read_path(path)
    assert refused.value.reason == "too_large"
    assert f"limit {MAX_BYTES // 2**20} MiB" in str(refused.value)


def test_listing_reports_loops_and_links_and_skips_the_rest(tmp_path: Path):
    (tmp_path / "a b ü.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.pdf").write_bytes(b"%PDF")
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)  # loops back to the root
    (tmp_path / "self.txt").symlink_to(tmp_path / "self.txt")  # a link to itself
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    os.mkfifo(tmp_path / "pipe.txt")  # reading a FIFO would block forever
    (tmp_path / ".hidden.txt").write_text(TEXT)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.json").write_text("{}")
    listing = list_folder(tmp_path, skip=[tmp_path / "out"])
    assert [p.relative_to(tmp_path).as_posix() for p in listing.files] == ["a b ü.txt", "sub/c.pdf"]
    reasons = {p.relative_to(tmp_path).as_posix(): e.reason for p, e in listing.problems}
    assert reasons == {
        "gone.txt": "missing",
        "pipe.txt": "not_a_file",
        "self.txt": "symlink_loop",
        "sub/up": "symlink_loop",
    }
    assert [p.name for p in listing.unsupported] == ["photo.png"]


def test_names_that_are_not_utf8_still_give_writable_ids(tmp_path: Path):
    raw = os.fsencode(tmp_path) + b"/Gr\xfc\xdfe.txt"  # Latin-1 bytes, as from an old file share
    with open(raw, "wb") as handle:
        handle.write(TEXT.encode())
    [path] = list_folder(tmp_path).files
    [report] = read_path(path, root=tmp_path)
    assert report.id == "Gr\ufffd\ufffde.txt"
    report.id.encode("utf-8")  # would raise on a lone surrogate
    report.source.encode("utf-8")


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<html><head><title>Befund</title><p>Fever and cough.</p>", "Fever and cough."),  # </head> is optional
        ("<p>Fever and cough.</p>", "Fever and cough."),
        ("<?xml version='1.0' encoding='utf-8'?><html><body><p>Fever and cough.</p></body></html>", "Fever and cough."),
        ("<p>Fever <!-- a note -->and cough.</p>", "Fever and cough."),
    ],
    ids=["no-head-end-tag", "fragment", "xhtml-declaration", "comment"],
)
def test_html_without_optional_tags_gives_its_text(tmp_path: Path, markup: str, expected: str):
    path = tmp_path / "r.html"
    path.write_text(markup, encoding="utf-8")
    [report] = read_path(path)
    assert report.text == expected


def test_hidden_html_never_reaches_the_report(tmp_path: Path):
    hidden = [
        '<div style="display:none">HIDDEN-1</div>',
        '<p style="color: red; DISPLAY : none">HIDDEN-2</p>',
        '<span style="visibility:hidden">HIDDEN-3</span>',
        "<p hidden>HIDDEN-4</p>",
        "<template><p>HIDDEN-5</p></template>",
        "<noscript>HIDDEN-6</noscript>",
        "<script>HIDDEN-7</script><style>HIDDEN-8 {}</style>",
    ]
    path = tmp_path / "r.html"
    path.write_text(f"<html><body><p>Fever and cough.</p>{''.join(hidden)}<p>CRP 80 mg/L.</p></body></html>")
    [report] = read_path(path)
    assert report.text == "Fever and cough.\n\nCRP 80 mg/L."


def test_a_report_inside_a_dataset_obeys_the_report_limit(tmp_path: Path):
    path = tmp_path / "set.jsonl"
    small = json.dumps({"id": "ok", "report": TEXT})
    large = json.dumps({"id": "huge", "report": "Fever. " * (6 * 2**20 // 7)})  # 6 MiB in one record
    path.write_text(f"{small}\n{large}\n", encoding="utf-8")
    with pytest.raises(InputError) as refused:
        read_path(path)
    assert refused.value.reason == "too_large"
    assert "set.jsonl: record 2: 6.3 MB is too large" in str(refused.value)
    assert f"limit {MAX_BYTES // 2**20} MiB" in str(refused.value)


@pytest.mark.parametrize(
    ("name", "module", "content"),
    [
        ("r.docx", "docx", lambda: docx_with([TEXT])),
        ("r.pdf", "pypdf", lambda: pdf_with_text(TEXT)),
        ("r.rtf", "striprtf.striprtf", lambda: RTF.encode("ascii")),
    ],
    ids=["docx", "pdf", "rtf"],
)
def test_a_base_install_names_the_extra_a_format_needs(tmp_path: Path, monkeypatch, name: str, module: str, content):
    path = tmp_path / name
    path.write_bytes(content())
    monkeypatch.setitem(sys.modules, module, None)  # what `import` finds on an install without [formats]
    with pytest.raises(InputError) as refused:
        read_path(path)
    assert refused.value.reason == "missing_extra"
    assert "pip install 'edge-extract[formats]'" in str(refused.value)
