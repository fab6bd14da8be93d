"""Document formats -> plain text: HTML, RTF, DOCX and PDF, each parsed by a maintained library.

Every problem is an InputError with a reason (password_protected, corrupted, no_text_layer), so a
batch records it and goes on. The parsers are imported on first use: plain-text runs never pay for them.
"""

from __future__ import annotations

import io
import logging
import re
from html.parser import HTMLParser

from .errors import InputError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""Compound-file header: an encrypted Office file (or a legacy .doc renamed to .docx)."""

_SPACES = re.compile(r"[ \t\f\v]+")
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section", "article", "pre"}


class _TextCollector(HTMLParser):
    """Visible text of an HTML page; block elements become line breaks, scripts and styles vanish."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _tidy(text: str) -> str:
    """Collapse runs of spaces and tabs within lines (other characters, such as no-break spaces,
    stay as written) and runs of blank lines between them."""
    lines = [_SPACES.sub(" ", line).strip(" ") for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def html_text(markup: str) -> str:
    """The readable text of an HTML document (stdlib html.parser: tolerant of broken markup)."""
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return _tidy("".join(collector.parts))


def rtf_text(source: str, *, name: str) -> str:
    """The text of an RTF document (striprtf)."""
    if not source.lstrip().startswith("{\\rtf"):
        raise InputError(f"{name}: not an RTF document (no {{\\rtf header)", reason="corrupted")
    from striprtf.striprtf import rtf_to_text

    return _tidy(rtf_to_text(source, errors="replace"))


def docx_text(data: bytes, *, name: str) -> str:
    """Paragraphs and tables of a Word document, in reading order (python-docx)."""
    if data.startswith(OLE_MAGIC):
        raise InputError(
            f"{name}: password-protected (encrypted) Word file or an old .doc; save it unprotected as .docx",
            reason="password_protected",
        )
    from docx import Document
    from docx.table import Table

    try:
        document = Document(io.BytesIO(data))
        blocks = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                blocks += [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            else:
                blocks.append(block.text)
    except Exception as error:  # python-docx raises zip, KeyError, lxml and its own errors for broken files
        raise InputError(f"{name}: corrupted Word document ({type(error).__name__})", reason="corrupted") from None
    return _tidy("\n".join(blocks))


def pdf_text(data: bytes, *, name: str) -> str:
    """The text layer of a PDF (pypdf). A PDF without one is refused, never guessed: no OCR here."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    # pypdf logs every repaired cross-reference at WARNING; the outcome is reported here instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(f"{name}: password-protected PDF", reason="password_protected")
        pages = [page.extract_text() or "" for page in reader.pages]
    except InputError:
        raise
    except DependencyError:
        raise InputError(
            f"{name}: encrypted PDF that needs the 'cryptography' package to open", reason="password_protected"
        ) from None
    except Exception as error:  # pypdf raises PdfReadError, ValueError, KeyError, ... for broken files
        raise InputError(f"{name}: corrupted PDF ({type(error).__name__})", reason="corrupted") from None
    text = _tidy("\n\n".join(pages))
    if not text:
        raise InputError(
            f"{name}: PDF has no text layer (a scanned document?); run OCR on it first", reason="no_text_layer"
        )
    return text
