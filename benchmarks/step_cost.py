"""What one llama.cpp call costs by how many tokens it feeds and how many rows of logits it returns:
the number that decides whether prompt-lookup drafts can pay (docs/performance.md). A draft of k
tokens is checked in one call that returns k+1 rows; it saves time only where that call costs
less than the one-token calls it replaces, times the share of drafted tokens the model accepts.

    .venv/bin/python -m benchmarks.step_cost
    PYTHONPATH=/tmp/native-llama .venv/bin/python -m benchmarks.step_cost   # another llama.cpp build

The folded default, 1 thread, the first val report in the cache (up to 600 tokens; it has 203);
each call is timed `--calls` times from that same cache (the tokens it added are removed after each) and the
median is shown, against one token in the same run. The first line names the llama_cpp package
loaded, so a run on another build (installed with `pip install --target DIR`) says which it was.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from benchmarks.batch_rows import VAL, _cut, _load, feed

CALLS = [
    ("1 token", 1, False),
    ("2 tokens, logits of the last", 2, False),
    ("8 tokens, logits of the last", 8, False),
    ("2 tokens, logits of both", 2, True),
    ("4 tokens, logits of all", 4, True),
    ("8 tokens, logits of all", 8, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()

    import llama_cpp

    from edge_extract.models.registry import DEFAULT_MODEL, Registry

    model = Registry.default().resolve(DEFAULT_MODEL)
    llm = _load(str(model.path), None, flash=False)
    report = json.loads((VAL / "val.jsonl").read_text().splitlines()[0])["report"]
    tokens = llm.tokenize(report.encode(), add_bos=True)[:600]
    feed(llm, tokens, all_rows=False)
    cached = llm.n_tokens
    print(f"llama_cpp from {llama_cpp.__file__}, {model.path.name}, 1 thread, {cached} tokens cached\n")
    print("| call | median ms | vs 1 token | ms per token fed |")
    print("|---|---|---|---|")
    baseline = None
    for label, size, all_rows in CALLS:
        times = []
        for _ in range(args.calls):
            started = time.perf_counter()
            feed(llm, tokens[100 : 100 + size], all_rows=all_rows)
            times.append(time.perf_counter() - started)
            _cut(llm, cached)
        ms = 1000 * statistics.median(times)
        baseline = baseline or ms
        print(f"| {label} | {ms:.1f} | {ms / baseline:.2f}x | {ms / size:.1f} |")


if __name__ == "__main__":
    main()
