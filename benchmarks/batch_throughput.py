"""Batch throughput: reports per minute for a folder of real reports, end to end through the CLI.

    .venv/bin/python -m benchmarks.batch_throughput                    # 50 val reports, 1 and 2 threads
    .venv/bin/python -m benchmarks.batch_throughput --reports 10 --threads 1

Each run is the command a user types, `edge-extract extract FOLDER --out OUT --threads N`, in a
fresh process with a fresh OUT: model load, reading, extraction, per-report files, the tables and
the completion marker are all in the wall time. "model s/report" is the pipeline's own time per
report (from summary.json); the rest of the wall time is start-up and writing.
Not a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "elmtex-open" / "val.jsonl"


def make_folder(folder: Path, n: int) -> int:
    """The first n val reports (file order: their natural mix of lengths) as .txt files; returns total chars."""
    rows = [json.loads(line) for line in VAL.read_text(encoding="utf-8").splitlines() if line.strip()][:n]
    for row in rows:
        (folder / f"{row['id']}.txt").write_text(row["report"], encoding="utf-8")
    return sum(len(row["report"]) for row in rows)


def run(folder: Path, out: Path, threads: int) -> dict:
    command = [sys.executable, "-m", "edge_extract", "extract", str(folder), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run([*command, "--threads", str(threads)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"batch failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "threads": threads,
        "reports": summary["reports"],
        "failed": summary["failed"],
        "wall_seconds": round(wall, 1),
        "reports_per_minute": round(summary["reports"] / wall * 60, 1),
        "model_seconds_per_report": summary["seconds_per_report"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=50, help="reports in the folder (val has 55)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to try")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-extract-bench-") as tmp:
        folder = Path(tmp) / "reports"
        folder.mkdir()
        chars = make_folder(folder, args.reports)
        print(f"{args.reports} reports, {chars / args.reports:.0f} characters on average; {os.cpu_count()} CPUs")
        for threads in args.threads:
            rows.append(run(folder, Path(tmp) / f"out-{threads}", threads))
            print(f"  {threads} thread(s): done in {rows[-1]['wall_seconds']} s", flush=True)

    print()
    print(f"{'threads':>7}  {'reports':>7}  {'failed':>6}  {'wall s':>7}  {'reports/min':>11}  {'model s/report':>14}")
    for row in rows:
        print(
            f"{row['threads']:>7}  {row['reports']:>7}  {row['failed']:>6}  {row['wall_seconds']:>7.1f}"
            f"  {row['reports_per_minute']:>11.1f}  {row['model_seconds_per_report']:>14.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
