"""Review pages: a batch's records shown on their report text, for a person to check and correct.

`edge-extract review OUT` writes OUT/review/index.html (the whole batch: a list with filters and
every record, edits kept while moving between records, one Save for all reviewed records) and
OUT/review/records/<id>.html (one record per file). Pages are self-contained: inline CSS and
script, a Content-Security-Policy that forbids every load from outside, no server. Saving
downloads ELMTEX JSONL (`{"id", "report", "summary"}` per line) that `edge-extract-convert
prepare` takes as training data.

    texts.py   the report text each record was made from: read again, checked by its sha256
    view.py    a Result and its text -> what a page shows (fields, marks over the text)
    page.py    the HTML: template, inline assets, the data as escaped JSON, the CSP
    site.py    the folder: index, one page per record, atomic writes
"""

from __future__ import annotations

from .site import ReviewSite, write_review

__all__ = ["ReviewSite", "write_review"]
