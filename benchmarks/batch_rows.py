"""Are llama.cpp's batched logits the logits of one token at a time? What drafts and several
reports at once depend on (docs/performance.md), checked on this machine's build.

    .venv/bin/python -m benchmarks.batch_rows                  # the default model, folded
    .venv/bin/python -m benchmarks.batch_rows --fold no        # its adapter applied at load

Three probes, each without and with flash attention, 1 thread, val reports as text:
  rows:      a prompt, then 8 tokens scored in one call against fed one at a time, for 7 prompt
             lengths and 2 continuations (JSON, prose): how many of the 14 match bit for bit;
  splits:    a prompt processed whole against split in two at 7 points, for 3 lengths: how many
             of the 21 give the same last logits (what prefix reuse across reports needs);
  sequences: N reports as N sequences of one context (a KV stream each), 20 one-token steps
             together against each report alone, N = 2, 4, 8: the largest difference.
Not a test: the answers belong to the llama.cpp build and the CPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elmtex-open"
LENGTHS = (203, 240, 250, 260, 300, 400, 1000)
SPLITS = (1, 7, 50, 150, 151, 200, 299)


def _load(path: str, adapter: str | None, *, flash: bool, n_ctx: int = 8192):
    from llama_cpp import Llama

    return Llama(
        path,
        lora_path=adapter,
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_threads=1,
        n_threads_batch=1,
        swa_full=True,
        flash_attn=flash,
        verbose=False,
    )


def feed(llm, tokens: list[int], *, all_rows: bool) -> np.ndarray:
    """Append tokens to a llama_cpp.Llama in one llama_decode call, keeping its own token record
    (what prefix reuse compares); the logits after each token (`all_rows`) or the last, copied."""
    n_past = llm.n_tokens
    llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=all_rows)
    llm._ctx.decode(llm._batch)
    llm.input_ids[n_past : n_past + len(tokens)] = tokens
    llm.n_tokens = n_past + len(tokens)
    rows = len(tokens) if all_rows else 1
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(rows, llm.n_vocab())).copy()


def _cut(llm, n: int) -> None:
    llm._ctx.kv_cache_seq_rm(-1, n, -1)
    llm.n_tokens = n


def rows_probe(llm, text: list[int], continuations: list[list[int]]) -> int:
    exact = 0
    for length in LENGTHS:
        for answer in continuations:
            _cut(llm, 0)
            llm.eval(text[:length])
            one = np.concatenate([feed(llm, [token], all_rows=True) for token in answer])
            _cut(llm, length)
            exact += np.array_equal(feed(llm, answer, all_rows=True), one)
    return exact


def splits_probe(llm, text: list[int]) -> int:
    def last_logits(length: int, split: int | None) -> np.ndarray:
        _cut(llm, 0)
        for start, end in ((0, split), (split, length)) if split else ((0, length),):
            llm.eval(text[start:end])
        return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).copy()

    same = 0
    for length in (300, 700, 1100):
        whole = last_logits(length, None)
        same += sum(np.array_equal(whole, last_logits(length, split)) for split in SPLITS)
    return same


def sequences_probe(llm, prompts: list[list[int]]) -> float:
    """The prompts as sequences of the runtime's SharedContext (its settings copied from `llm`,
    flash attention included), 20 one-token steps together against each prompt alone."""
    import llama_cpp

    from edge_extract.runtime import LoadSettings, SharedContext

    alone = []
    for prompt in prompts:
        _cut(llm, 0)
        llm.eval(prompt[:600])
        alone.append(np.concatenate([feed(llm, [token], all_rows=True) for token in prompt[600:620]]))
    context = SharedContext(llm, llama_cpp, LoadSettings(n_ctx=2048, sequences=len(prompts)))
    for seq, prompt in enumerate(prompts):
        for start in (0, 300):
            context.decode([(seq, prompt[start : start + 300], start)])
    worst = 0.0
    for step in range(20):
        rows = context.decode([(seq, [prompt[600 + step]], 600 + step) for seq, prompt in enumerate(prompts)])
        worst = max(worst, *(float(np.abs(row - alone[seq][step]).max()) for seq, row in enumerate(rows)))
    context.close()
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fold", choices=("yes", "no"), default="yes")
    args = parser.parse_args()

    from edge_extract.models.registry import DEFAULT_MODEL, Registry

    model = Registry.default().resolve(DEFAULT_MODEL, fold=args.fold == "yes")
    adapter = str(model.adapter_path) if model.adapter_path else None
    val = [json.loads(line)["report"] for line in (VAL / "val.jsonl").read_text().splitlines()]
    train = [json.loads(line)["report"] for line in (VAL / "train.jsonl").read_text().splitlines()[:200]]
    for flash in (False, True):
        llm = _load(str(model.path), adapter, flash=flash)
        text = llm.tokenize(" ".join(val[:6]).encode(), add_bos=True)
        continuations = [
            llm.tokenize(b'{"life_style": "N/A", "family_history": "N/A", "signs_symptoms": "fever')[:8],
            text[1500:1508],
        ]
        long_ones = [t for t in (llm.tokenize(r.encode(), add_bos=True) for r in train) if len(t) >= 640]
        print(
            f"flash attention {'on' if flash else 'off'} ({model.path.name}{', adapter at load' if adapter else ''}):"
        )
        print(f"  rows: {rows_probe(llm, text, continuations)}/14 batches of 8 equal one-token logits")
        print(f"  splits: {splits_probe(llm, text)}/21 split prompts give the whole prompt's logits")
        for n in (2, 4, 8):
            worst = sequences_probe(llm, long_ones[:n])
            print(f"  sequences: N = {n}, largest difference from alone over 20 steps: {worst:.3g}")
        llm.close()


if __name__ == "__main__":
    main()
