"""Document formats -> plain text: HTML, RTF, DOCX and PDF, each parsed by a maintained library.

Every problem is an InputError with a reason (password_protected, corrupted, no_text_layer,
missing_extra), so a batch records it and goes on. The parsers are imported on first use:
plain-text runs never pay for them.
"""

from __future__ import annotations

import importlib
import io
import logging
import re
from types import ModuleType
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from lxml.html import HtmlElement

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""Compound-file header: an encrypted Office file (or a legacy .doc renamed to .docx)."""

_SPACES = re.compile(r"[ \t\f\v]+")
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section", "article", "pre"}
_HIDDEN_TAGS = {"head", "script", "style", "template", "noscript"}
"""Never shown as text by a browser (noscript: browsers run scripts, so they skip it)."""
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\b", re.IGNORECASE)

EXTRA_HINT = "pip install 'edge-extract[formats]'"


def require(module: str, *, name: str, what: str) -> ModuleType:
    """Import an optional reader; on a base install, the file's error names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{name}: {what} needs the formats extra: {EXTRA_HINT}", reason="missing_extra") from None


def _hidden(element: HtmlElement) -> bool:
    """An element a browser does not show, so its text must not reach the model either."""
    return (
        element.tag in _HIDDEN_TAGS
        or element.get("hidden") is not None
        or bool(_HIDDEN_STYLE.search(element.get("style") or ""))
    )


def _tidy(text: str) -> str:
    """Collapse runs of spaces and tabs within lines (other characters, such as no-break spaces,
    stay as written) and runs of blank lines between them."""
    lines = [_SPACES.sub(" ", line).strip(" ") for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def html_text(markup: str, *, name: str) -> str:
    """The text a browser shows for an HTML document (lxml's HTML parser: tolerant of broken and
    partial markup); block elements become line breaks, hidden content is dropped."""
    from lxml import etree, html

    # Bytes, so an XHTML encoding declaration is not refused; huge_tree, so deep nesting is not cut short.
    parser = html.HTMLParser(encoding="utf-8", huge_tree=True)
    try:
        root = html.document_fromstring(markup.encode("utf-8"), parser=parser)
    except etree.ParserError:  # "Document is empty": nothing but comments or whitespace
        return ""
    fatal = [error.message for error in parser.error_log if error.level_name == "FATAL"]
    if fatal:  # the parser stopped early (nesting past 2048 levels): the rest of the text would be lost
        raise InputError(f"{name}: cannot read this HTML: {fatal[0]}", reason="corrupted")
    parts: list[str] = []
    # Depth-first with an explicit stack (no recursion limit): an item is an element or text to emit.
    stack: list[HtmlElement | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        tail = item.tail or ""
        if not isinstance(item.tag, str) or _hidden(item):  # a comment, or hidden: only the text after it
            stack.append(tail)
            continue
        block = "\n" if item.tag in _BLOCK_TAGS else ""
        cell = " " if item.tag in ("td", "th") else ""
        stack.append(block + tail)
        stack.extend(reversed(list(item)))
        stack.append(block + cell + (item.text or ""))
    return _tidy("".join(parts))


def rtf_text(source: str, *, name: str) -> str:
    """The text of an RTF document (striprtf)."""
    if not source.lstrip().startswith("{\\rtf"):
        raise InputError(f"{name}: not an RTF document (no {{\\rtf header)", reason="corrupted")
    striprtf = require("striprtf.striprtf", name=name, what="reading RTF")
    return _tidy(striprtf.rtf_to_text(source, errors="replace"))


def docx_text(data: bytes, *, name: str) -> str:
    """Paragraphs and tables of a Word document, in reading order (python-docx)."""
    if data.startswith(OLE_MAGIC):
        raise InputError(
            f"{name}: password-protected (encrypted) Word file or an old .doc; save it unprotected as .docx",
            reason="password_protected",
        )
    docx = require("docx", name=name, what="reading Word files")
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
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
    pypdf = require("pypdf", name=name, what="reading PDF")
    from pypdf.errors import DependencyError

    # pypdf logs every repaired cross-reference at WARNING; the outcome is reported here instead.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
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
