"""Folder mode: walk the inputs, skip reports already done, run the pipeline, hand results to the writers.

What a batch leaves in OUT:

    <relative path>.json           one per report, written atomically (temp file + rename)
    results.jsonl, results.csv     one line / row per report, rewritten whole at the end of a run
    errors.jsonl                   one line per input without a record, and why
    summary.json                   the completion marker, written last when a run completes: its presence says
                                   the tables are final, its `complete` that every report's file was written
    .edge-extract/journal.jsonl    one line per finished report (id, input sha256, fingerprint), append + fsync
    .edge-extract/lock             held while a run writes into OUT

Resume: a report is done when the journal's last line for its id has the same input sha256 and
extractor fingerprint, and its per-report file is a valid result. Each report is written first,
then journaled, so a kill between the two only re-runs that report, and a kill inside either
leaves the previous state. The tables are rebuilt from the per-report files, so they hold each
report exactly once whatever happened before.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Literal

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, InputError, OutputError
from .files import STATE_DIR, atomic_write_text, remove_temp_files
from .output import (
    ErrorLine,
    append_jsonl,
    output_path,
    read_result,
    repair_jsonl,
    write_csv,
    write_jsonl,
    write_result,
)
from .pipeline import ErrorInfo, Extractor, Result, extract_many
from .reading import Report, list_folder, printable, read_path, read_stdin

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
ERRORS_JSONL = "errors.jsonl"
COMPLETION_MARKER = "summary.json"


class JournalEntry(BaseModel):
    """One finished report: what is needed to skip it next time, and nothing of its content."""

    id: str
    input_sha256: str
    fingerprint: str
    status: Literal["ok", "failed"]


@dataclass
class Inputs:
    """What the command line points at, read and ready for a run.

    Attributes:
        reports: every readable report, in input order, ids unique.
        failures: inputs that gave no report (unreadable, duplicate id), one line each.
        unsupported: files of types edge-extract does not read, skipped.
    """

    reports: list[Report] = field(default_factory=list)
    failures: list[ErrorLine] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)


def input_error(report_id: str, source: Path | str, error: InputError) -> ErrorLine:
    return ErrorLine(id=report_id, source=printable(str(source)), kind=error.reason, message=str(error))


def collect(paths: Sequence[str], *, encoding: str | None = None, out: Path | None = None) -> Inputs:
    """Read every input: files, folders (recursively) and `-` for stdin.

    Ids are paths relative to the folder when there is one folder; with several inputs each
    keeps its own name as the first part, so outputs of different inputs cannot collide.
    OUT, and any earlier output folder, is skipped when walking; OUT being an input folder is refused.
    """
    skip: Collection[Path] = [out] if out is not None else []
    for raw in paths:
        if out is not None and raw != "-" and Path(raw).is_dir() and os.path.realpath(raw) == os.path.realpath(out):
            raise ConfigError(f"--out {printable(str(out))} is an input folder; write the records to another folder")
    inputs = Inputs()
    one_folder = len(paths) == 1 and Path(paths[0]).is_dir()
    sources: list[tuple[Path | None, str]] = []
    for raw in paths:
        path = Path(raw)
        if raw == "-":
            sources.append((None, "stdin"))
        elif path.is_dir():
            listing = list_folder(path, skip=skip)
            prefix = "" if one_folder else f"{path.resolve().name}/"
            sources += [(file, prefix + file.relative_to(path).as_posix()) for file in listing.files]
            inputs.failures += [
                input_error(printable(prefix + bad.relative_to(path).as_posix()), bad, error)
                for bad, error in listing.problems
            ]
            inputs.unsupported += listing.unsupported
        else:
            sources.append((path, path.name))
    seen: dict[str, str] = {}
    for path, report_id in sources:
        try:
            reports = (
                [read_stdin(encoding=encoding)]
                if path is None
                else read_path(path, encoding=encoding, report_id=report_id)
            )
        except InputError as error:
            inputs.failures.append(input_error(printable(report_id), path or "-", error))
            continue
        for report in reports:
            if report.id in seen:
                message = f"{report.source}: {report.id} has the same output name as {seen[report.id]}"
                inputs.failures.append(ErrorLine(id=report.id, source=report.source, kind="duplicate", message=message))
                continue
            seen[report.id] = report.source
            inputs.reports.append(report)
    return inputs


class Listener:
    """What a run tells the outside world; the base class ignores it all (tests, library use)."""

    def started(self, *, to_do: int, skipped: int) -> None:
        """The run knows how many reports it will extract and how many it skips."""

    def report_started(self, report: Report) -> None:
        """A report goes to the model."""

    def report_finished(self, result: Result) -> None:
        """A report's result is on disk."""

    def input_failed(self, line: ErrorLine) -> None:
        """An input gave no report (inbox mode; a batch knows these before it starts)."""


@dataclass
class RunStats:
    """How a batch run or an inbox session went.

    Attributes:
        extracted: reports extracted by this run (ok or failed).
        skipped: reports already done by an earlier run (or dropped into an inbox again).
        failed: inputs without a record: unreadable inputs plus failed extractions of this run.
        unwritten: reports of this run whose file could not be written (also counted in failed).
        moved: inbox inputs moved to done/ (a batch moves none).
        interrupted: the run stopped before the last report (Ctrl-C, SIGTERM).
        extraction_seconds: model time of the reports extracted by this run.
        elapsed_seconds: wall time of the run.
        flagged: records in OUT per flag kind (`loop`, `capped`, `suspected_injection`, ...), this
            run's and earlier ones': what a person should look at (counted at the end of a batch).
    """

    extracted: int = 0
    skipped: int = 0
    failed: int = 0
    unwritten: int = 0
    moved: int = 0
    interrupted: bool = False
    extraction_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    flagged: dict[str, int] = field(default_factory=dict)

    @property
    def seconds_per_report(self) -> float:
        return self.extraction_seconds / self.extracted if self.extracted else 0.0

    @property
    def reports_per_minute(self) -> float:
        """Throughput: reports extracted per minute of wall time (with --concurrency, more than
        60 / seconds_per_report)."""
        return 60 * self.extracted / self.elapsed_seconds if self.elapsed_seconds else 0.0


def check_out(out: Path, *, force: bool = False) -> None:
    """Refuse an OUT that holds files edge-extract did not write (they would be overwritten), unless `force`."""
    if force or not out.exists() or (out / STATE_DIR).is_dir():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {printable(str(out))} is a file, not a folder")
    if any(out.iterdir()):
        raise ConfigError(
            f"--out {printable(str(out))} holds files edge-extract did not write; "
            "pick a new or empty folder, or pass --force to write into it anyway"
        )


class OutputFolder:
    """OUT as a resumable store: per-report files, the journal, the tables."""

    def __init__(self, root: Path, *, fingerprint: str, force: bool = False) -> None:
        self.root = root
        self.fingerprint = fingerprint
        self.force = force
        self.state = root / STATE_DIR
        self.journal_path = self.state / "journal.jsonl"
        self.journal: dict[str, JournalEntry] = {}

    @contextmanager
    def locked(self) -> Iterator[OutputFolder]:
        """Hold OUT for this process: a second batch or inbox on the same OUT is refused, not interleaved."""
        from filelock import FileLock, Timeout

        check_out(self.root, force=self.force)
        try:
            self.state.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot write to {self.root}: {error.strerror}") from None
        lock = FileLock(self.state / "lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(
                f"another edge-extract is writing to {self.root}; wait for it or pick another --out"
            ) from None
        try:
            self._load()
            yield self
        finally:
            lock.release()

    def _load(self) -> None:
        """Read the journal (repairing a torn last line) and clear temp files a kill left behind."""
        for row in repair_jsonl(self.journal_path):
            try:
                entry = JournalEntry.model_validate(row)
            except ValidationError:
                continue
            self.journal[entry.id] = entry
        remove_temp_files(self.root)

    def earlier_result(self, report: Report) -> Result | None:
        """The earlier result of this very report with this very extractor, if one is on disk."""
        entry = self.journal.get(report.id)
        if entry is None or entry.input_sha256 != report.sha256 or entry.fingerprint != self.fingerprint:
            return None
        result = read_result(output_path(self.root, report.id))
        if result is None or result.provenance.input_sha256 != report.sha256:
            return None
        return result

    def known(self) -> dict[str, Result]:
        """Every journaled result still on disk, by id (an inbox's whole history)."""
        results = {}
        for report_id, entry in self.journal.items():
            result = read_result(output_path(self.root, report_id))
            if result is not None and result.provenance.input_sha256 == entry.input_sha256:
                results[report_id] = result
        return results

    def record(self, result: Result) -> Result:
        """The per-report file first, then the journal line: the journal never points at nothing.

        Returns what was recorded: `result`, or, when it cannot be written (a name too long for the
        file system, a full disk), the report failed with kind `write` and no journal line, so the
        next run tries it again.
        """
        entry = JournalEntry(
            id=result.id,
            input_sha256=result.provenance.input_sha256,
            fingerprint=self.fingerprint,
            status=result.status,
        )
        try:
            write_result(self.root, result)
            append_jsonl(self.journal_path, entry.model_dump())
        except OSError as error:
            message = f"{result.id}: cannot write its record: {error.strerror}"
            unwritten = ErrorInfo(kind=OutputError.kind, message=message)
            return result.model_copy(update={"status": "failed", "summary": None, "error": unwritten})
        self.journal[result.id] = entry
        return result

    def write_tables(self, results: Sequence[Result], failures: Sequence[ErrorLine]) -> None:
        """results.jsonl, results.csv and errors.jsonl, each whole and atomic."""
        failed = [
            ErrorLine(id=result.id, source=result.source, kind=result.error.kind, message=result.error.message)
            for result in results
            if result.error is not None
        ]
        try:
            write_jsonl(self.root / RESULTS_JSONL, results)
            write_csv(self.root / RESULTS_CSV, results)
            write_jsonl(self.root / ERRORS_JSONL, [*failures, *failed])
        except OSError as error:
            where = printable(str(self.root))
            raise OutputError(f"cannot write the results tables in {where}: {error.strerror}") from None

    def compact(self) -> None:
        """Rewrite the journal with one line per id (reruns and --force append more)."""
        write_jsonl(self.journal_path, self.journal.values())

    def clear_completion_marker(self) -> None:
        (self.root / COMPLETION_MARKER).unlink(missing_ok=True)

    def write_completion_marker(self, stats: RunStats, *, total: int) -> None:
        """summary.json, written last: the run's counts, and that it completed."""
        body = {
            "complete": stats.unwritten == 0,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reports": total,
            "extracted": stats.extracted,
            "skipped": stats.skipped,
            "failed": stats.failed,
            "unwritten": stats.unwritten,
            "seconds_per_report": round(stats.seconds_per_report, 3),
            "reports_per_minute": round(stats.reports_per_minute, 2),
            "elapsed_seconds": round(stats.elapsed_seconds, 3),
            "flagged": stats.flagged,
            "fingerprint": self.fingerprint,
        }
        try:
            atomic_write_text(self.root / COMPLETION_MARKER, json.dumps(body, indent=2) + "\n")
        except OSError as error:
            raise OutputError(
                f"cannot write {COMPLETION_MARKER} in {printable(str(self.root))}: {error.strerror}"
            ) from None


def record_result(extracted: Result, *, folder: OutputFolder, listener: Listener, stats: RunStats) -> Result:
    """Write a report's file and journal line, count it, tell the listener. Returns what was recorded."""
    result = folder.record(extracted)
    stats.extracted += 1
    stats.failed += result.status == "failed"
    stats.unwritten += result is not extracted  # record() gives a failed copy when it cannot write
    stats.extraction_seconds += result.provenance.seconds
    listener.report_finished(result)
    return result


def extract_report(
    report: Report, *, extractor: Extractor, folder: OutputFolder, listener: Listener, stats: RunStats
) -> Result:
    """The step an inbox takes for each report to do: extract it, then record it."""
    listener.report_started(report)
    return record_result(extractor.extract(report), folder=folder, listener=listener, stats=stats)


def run_batch(
    inputs: Inputs,
    *,
    extractor: Extractor,
    out: Path,
    force: bool = False,
    listener: Listener | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    concurrency: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> RunStats:
    """Extract every report of `inputs` into OUT, skipping those already done (unless `force`),
    `concurrency` at a time (pipeline.extract_many); each is recorded as it finishes.

    Stops between reports when `should_stop()` says so; a KeyboardInterrupt inside a report, or a
    server gone (BackendUnavailableError, raised once the reports in flight are recorded), still
    leaves valid tables for what was done, and no completion marker. A report whose file cannot
    be written is failed, and the run goes on. Raises ConfigError when OUT is in use, unwritable or holds files
    edge-extract did not write (allowed with `force`), OutputError when the tables cannot be written.
    """
    listener = listener or Listener()
    started = clock()
    stats = RunStats(failed=len(inputs.failures))
    with OutputFolder(out, fingerprint=extractor.fingerprint, force=force).locked() as folder:
        folder.clear_completion_marker()
        results: dict[str, Result] = {}
        to_do = []
        for report in inputs.reports:
            earlier = None if force else folder.earlier_result(report)
            if earlier is None:
                to_do.append(report)
            else:
                results[report.id] = earlier
        stats.skipped = len(results)
        listener.started(to_do=len(to_do), skipped=stats.skipped)
        try:
            extracted = extract_many(
                extractor, to_do, concurrency=concurrency, should_stop=should_stop, on_start=listener.report_started
            )
            for result in extracted:
                results[result.id] = record_result(result, folder=folder, listener=listener, stats=stats)
            stats.interrupted = len(results) < len(inputs.reports)
        except BaseException:  # Ctrl-C, a server gone: the tables are written, the marker is not
            stats.interrupted = True
            raise
        finally:
            ordered = [results[report.id] for report in inputs.reports if report.id in results]
            folder.write_tables(ordered, inputs.failures)
            kinds = Counter(kind for r in ordered for kind in {flag.partition(":")[0] for flag in r.flags})
            stats.flagged = dict(sorted(kinds.items()))
            stats.elapsed_seconds = clock() - started
            if not stats.interrupted:
                folder.compact()
                folder.write_completion_marker(stats, total=len(inputs.reports) + len(inputs.failures))
    return stats


class StopFlag:
    """Set by the first Ctrl-C (or SIGTERM, as at shutdown): finish the current report, then stop."""

    def __init__(self) -> None:
        self.requested = False
        self.on_request: Callable[[], None] = lambda: None

    def __call__(self) -> bool:
        return self.requested


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """While inside, SIGINT and SIGTERM ask for a clean stop; a second SIGINT stops at once.

    Only the main thread may install handlers; elsewhere the flag is returned unarmed.
    """
    flag = StopFlag()

    def handle(signum: int, frame: FrameType | None) -> None:
        if flag.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.requested = True
        flag.on_request()

    try:
        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
