"""Solved examples for the advanced strategy: BM25 over a local ELMTEX-layout example bank.

The bank is never shipped with the package: it is any annotated file named by `eval --examples`
or EDGE_EXTRACT_EXAMPLES, else, in a development checkout only, the `elmtex-open` train split
beside the repository.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, InputError
from .pipeline import ExampleSource
from .reading import read_path
from .schema import Example

EXAMPLES_ENV = "EDGE_EXTRACT_EXAMPLES"
SHARED_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "elmtex-open" / "train.jsonl"
"""The train split beside a development checkout (../shared/data relative to the repository). Found
only when running from a checkout: in an installed package this path points into the Python library
folder, where it never is."""

_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class ExampleBank:
    """Annotated reports ranked by BM25 (Okapi) similarity to a query report.

    Example:
        bank = ExampleBank(load_examples(Path("train.jsonl")))
        bank("A 45-year-old man with fever ...", k=3)  # most similar first
    """

    def __init__(self, examples: Sequence[Example]) -> None:
        from rank_bm25 import BM25Okapi

        self.examples = [example for example in examples if example.summary is not None]
        if not self.examples:
            raise ConfigError("the example bank has no annotated record (each needs a summary)")
        self._index = BM25Okapi([_words(example.report) for example in self.examples])
        digest = hashlib.sha256()
        for example in self.examples:
            digest.update(example.model_dump_json(include={"report", "summary"}).encode())
        self.fingerprint = digest.hexdigest()
        """sha256 of the annotated examples: another bank gives other prompts, hence other records."""

    def __call__(self, report: str, *, k: int = 3) -> list[Example]:
        """The k most similar examples; the report itself is never its own example."""
        scores = self._index.get_scores(_words(report))
        ranked = sorted(range(len(scores)), key=lambda n: (-scores[n], n))
        query = report.strip()
        return [self.examples[n] for n in ranked if self.examples[n].report.strip() != query][:k]


def load_examples(path: Path) -> list[Example]:
    """The records of an ELMTEX-layout JSONL or JSON file, read and checked like any dataset."""
    try:
        reports = read_path(path)
    except InputError as error:
        raise ConfigError(f"example bank: {error}") from None
    return [Example(report=report.text, summary=report.gold, id=report.id) for report in reports]


def examples_path(path: Path | None = None) -> Path:
    """The example bank to use: `path`, else EDGE_EXTRACT_EXAMPLES, else the shared train split."""
    chosen = path or (Path(os.environ[EXAMPLES_ENV]) if os.environ.get(EXAMPLES_ENV) else None)
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(f"example bank {chosen} not found")
        return chosen
    if SHARED_EXAMPLES.is_file():
        return SHARED_EXAMPLES
    raise ConfigError(
        f"the advanced strategy needs an example bank: set {EXAMPLES_ENV} to an annotated ELMTEX-layout "
        "JSONL file (report + summary), e.g. the elmtex-open train split"
    )


@dataclass(frozen=True)
class Retriever:
    """Report text -> the k most similar solved examples of a bank, most similar first (an ExampleSource)."""

    bank: ExampleBank
    k: int = 3

    @property
    def fingerprint(self) -> str:
        return f"{self.bank.fingerprint}:{self.k}"

    def __call__(self, report: str) -> list[Example]:
        return self.bank(report, k=self.k)


def default_example_source(path: Path | None = None, *, k: int = 3) -> ExampleSource:
    """Report text -> the k most similar solved examples, most similar first."""
    return Retriever(ExampleBank(load_examples(examples_path(path))), k=k)
