"""The HTML of a review page: one template, the inline stylesheet and script, the page's data.

Nothing on the page comes from outside it, and its Content-Security-Policy says so to the
browser: no default source at all, and the only script and stylesheet allowed are the inline
ones whose sha256 it names. The report text and every value travel as JSON inside a
`<script type="application/json">` block (never run) with `<`, `>` and `&` escaped, so no text
can close the block; the script builds the page from it with `textContent` and never parses text
as HTML. A report holding `<script>` therefore shows as text, and even HTML slipped in some other
way could not run a script the policy does not name.
"""

from __future__ import annotations

import base64
import hashlib
import html
from functools import cache
from importlib.resources import files
from string import Template
from typing import Literal

from pydantic import BaseModel

from ..schema import FIELDS, GENDERS, NA
from .view import RecordView


class PageData(BaseModel):
    """Everything the script of one page reads."""

    mode: Literal["index", "record"]
    """index: the batch, a list and every record; record: one record alone."""
    title: str
    index: str | None
    """The index page, relative to a record page (None on the index itself)."""
    download: str
    """The file name Save gives the corrections."""
    fields: tuple[str, ...] = FIELDS
    genders: tuple[str, ...] = GENDERS
    na: str = NA
    records: list[RecordView]


@cache
def _asset(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _source_hash(text: str) -> str:
    """A CSP source expression allowing exactly this inline script or stylesheet."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def script_json(data: BaseModel) -> str:
    """JSON safe inside a `<script>` element: no `</script>` or `<!--` can appear in it."""
    text = data.model_dump_json()
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_page(data: PageData) -> str:
    """A whole self-contained HTML page."""
    style, script = _asset("review.css"), _asset("review.js")
    policy = (
        f"default-src 'none'; script-src {_source_hash(script)}; style-src {_source_hash(style)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return Template(_asset("page.html")).substitute(
        title=html.escape(data.title),
        policy=html.escape(policy),
        style=style,
        script=script,
        data=script_json(data),
    )
