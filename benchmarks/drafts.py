"""Prompt-lookup drafts (issue 15, item 1) and flash attention: do they pay on this machine?
Neither is shipped: on the development CPU drafts made extraction slower and flash attention
gained nothing (docs/performance.md); this measures them again.

    .venv/bin/python -m benchmarks.drafts                        # 8 val reports, drafts of 1, 3, 7
    .venv/bin/python -m benchmarks.drafts --reports 24 --sizes 1 3

Most of a value is copied from the report, so its next tokens can often be read off the prompt
and checked in one call instead of one call each. `Drafting` stands between the schema decoder
and the Runtime (a decoding.TokenModel): when the decoder feeds one token and the last tokens of
the context, that one included, also occur in the prompt, the tokens that follow them there are
scored along with it in one llama.cpp call. The decoder still picks every token itself, from the
logits of its own position, with its repeat penalty, bars and stops: a drafted token it picks
costs no call, the first one it does not pick ends the draft, and the rest leave the cache. So
the record is the one plain greedy decoding writes, as long as a row of a batch is the row one
token alone gets: with flash attention on this build (`benchmarks.batch_rows`).

Rows, each in a fresh process, 1 thread, the default model, reports in order with prefix reuse:
as shipped, then flash attention on, without and with drafts of each size; seconds per report
(prompt and answer), drafted and accepted tokens, and how many records are those of the shipped
row (with drafts: of the row with flash attention and no drafts).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice

import numpy as np

from benchmarks.batch_rows import feed
from benchmarks.decoding import VAL, _fresh
from edge_extract.decoding import TokenModel

NGRAM_SIZES = (3, 2)
"""Context tokens that must match the prompt, longest tried first: a 1-token match drafts too
often to pay on this CPU (scoring 2 rows in one call costs about 3 one-token steps)."""


class PromptLookup:
    """Where each short token run of a prompt first occurs, to propose what followed it."""

    def __init__(self, prompt: Sequence[int]) -> None:
        self._prompt = list(prompt)
        self._after: dict[tuple[int, ...], int] = {}
        for size in NGRAM_SIZES:
            for end in range(size, len(prompt)):
                self._after.setdefault(tuple(prompt[end - size : end]), end)

    def propose(self, context: Sequence[int], limit: int) -> list[int]:
        """Up to `limit` prompt tokens that followed the context's last tokens in the prompt.

        Example:
            >>> PromptLookup([5, 6, 7, 8, 9]).propose([1, 6, 7], 2)
            [8, 9]
            >>> PromptLookup([5, 6, 7, 8, 9]).propose([1, 7], 2)
            []
        """
        for size in NGRAM_SIZES:
            end = self._after.get(tuple(context[-size:])) if len(context) >= size else None
            if end is not None:
                return self._prompt[end : end + limit]
        return []


class Drafting:
    """A model whose one-token feeds read ahead from the prompt (module docstring); `score`
    appends tokens in one call and returns the logits after each.

    Attributes:
        drafted, accepted: draft tokens scored and draft tokens the decoder picked.
    """

    def __init__(self, runtime: TokenModel, *, score: Callable[[Sequence[int]], np.ndarray], size: int) -> None:
        self._runtime = runtime
        self._score = score
        self._size = size
        self._lookup = PromptLookup([])
        self._recent: list[int] = []  # the context's last tokens, for the lookup
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # drafted tokens in the cache, with their rows
        self.tokenize = runtime.tokenize
        self.piece = runtime.piece
        self.is_end_of_generation = runtime.is_end_of_generation
        self.drafted = self.accepted = 0

    @property
    def n_ctx(self) -> int:
        return self._runtime.n_ctx

    @property
    def n_past(self) -> int:
        return self._runtime.n_past - len(self._pending)

    def start(self, tokens: Sequence[int]) -> np.ndarray:
        self._drop()
        self._lookup = PromptLookup(tokens)
        self._remember(tokens)
        return self._runtime.start(tokens)

    def truncate(self, n_tokens: int) -> None:
        self._drop()
        self._runtime.truncate(n_tokens)
        self._recent = []  # what precedes the cut is not known here: the next lookups start afresh

    def feed(self, tokens: Sequence[int]) -> np.ndarray:
        if len(tokens) == 1 and self._pending and self._pending[0][0] == tokens[0]:
            self.accepted += 1
            self._remember(tokens)
            return self._pending.popleft()[1]
        self._drop()
        self._remember(tokens)
        draft = self._lookup.propose(self._recent, self._size) if len(tokens) == 1 else []
        draft = draft[: max(0, self.n_ctx - self._runtime.n_past - 1)]
        if not draft:
            return self._runtime.feed(tokens)
        rows = self._score([*tokens, *draft])
        self.drafted += len(draft)
        self._pending.extend(zip(draft, rows[1:]))
        return rows[0]

    def _remember(self, tokens: Sequence[int]) -> None:
        self._recent = [*self._recent, *tokens][-max(NGRAM_SIZES) :]

    def _drop(self) -> None:
        """Take the drafted tokens the decoder did not pick out of the cache."""
        if self._pending:
            self._runtime.truncate(self._runtime.n_past - len(self._pending))
            self._pending.clear()


def _run(reports: list[str], flash: bool, size: int) -> dict:
    """One row in a fresh process: the reports in order, as the pipeline decodes them."""
    from edge_extract.decoding import SchemaDecoder
    from edge_extract.models.registry import Registry
    from edge_extract.prompt import render_prompt
    from edge_extract.runtime import LoadSettings, Runtime

    model = Registry.default().resolve(None, verify=False)
    settings = LoadSettings(n_ctx=model.manifest.context_size, n_threads=1, flash_attention=flash)
    runtime = Runtime(model, settings=settings)
    drafting = None
    if size:
        drafting = Drafting(runtime, score=lambda tokens: feed(runtime._llm, list(tokens), all_rows=True), size=size)
    decoder = SchemaDecoder(drafting or runtime, settings=model.manifest.decoding)
    chat = model.manifest.prompt_format
    records = []
    started = time.perf_counter()
    for text in reports:
        records.append(decoder.decode(runtime.tokenize_prompt(render_prompt(text, chat=chat)))[0])
    seconds = (time.perf_counter() - started) / len(reports)
    runtime.close()
    counts = {"drafted": drafting.drafted, "accepted": drafting.accepted} if drafting else {"drafted": 0, "accepted": 0}
    return {"s": seconds, "records": records, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 7])
    args = parser.parse_args()
    with VAL.open(encoding="utf-8") as handle:
        reports = [json.loads(line)["report"] for line in islice(handle, args.reports)]
    rows = [(False, 0), (True, 0), *((True, size) for size in args.sizes)]
    runs = {row: _fresh(_run, reports, *row) for row in rows}
    shipped = runs[(False, 0)]
    print(f"{len(reports)} val reports, 1 thread, the default model\n")
    print("| flash attention | draft tokens | s/report | vs shipped | drafted | accepted | same records |")
    print("|---|---|---|---|---|---|---|")
    for (flash, size), run in runs.items():
        like = runs[(flash, 0)] if size else shipped
        same = sum(a == b for a, b in zip(run["records"], like["records"]))
        accepted = f"{run['accepted']} ({run['accepted'] / run['drafted']:.0%})" if run["drafted"] else "-"
        print(
            f"| {'on' if flash else 'off'} | {size or '-'} | {run['s']:.2f} | {shipped['s'] / run['s']:.2f}x "
            f"| {run['drafted'] or '-'} | {accepted} | {same}/{len(reports)} |"
        )


if __name__ == "__main__":
    main()
