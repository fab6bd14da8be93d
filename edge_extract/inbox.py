"""Inbox mode: extract each file dropped into a folder once it has finished copying.

watchdog reports new and changed files; a file is read only after its size and modification time
have stayed the same for `settle_seconds` (a copy in progress keeps changing them). Each report
goes through the batch's own per-report step (batch.extract_report) into a batch.OutputFolder,
so the resume rules are the batch's: a restart skips what is done, and a kill loses at most the
report being extracted. A file that cannot be read or moved (a link
loop, a file deleted while it was extracted) is one error line; the inbox keeps watching.
"""

from __future__ import annotations

import os
import queue
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .batch import Listener, OutputFolder, RunStats, check_out, extract_report, input_error
from .errors import ConfigError, InputError
from .output import ErrorLine
from .pipeline import Extractor, Result
from .reading import SUPPORTED_SUFFIXES, list_folder, printable, read_path

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

DONE_DIR = "done"
"""With move_done, processed inputs go to INBOX/done/, keeping their relative paths."""


@dataclass
class _Pending:
    signature: tuple[int, int]
    since: float


def _unique(path: Path) -> Path:
    """`path`, or `name (2).ext`, `name (3).ext`, ... when it is taken."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def check_folders(inbox: Path, out: Path) -> None:
    """Refuse OUT being the inbox (every file would be skipped as output) or a folder of other files."""
    if out.resolve() == inbox.resolve():
        raise ConfigError(f"--out {printable(str(out))} is the inbox itself; write the records to another folder")
    check_out(out)


class Inbox:
    """Watch INBOX, extract into OUT; call `run` until `should_stop()` says so."""

    def __init__(
        self,
        inbox: Path,
        out: Path,
        *,
        extractor: Extractor,
        encoding: str | None = None,
        move_done: bool = False,
        settle_seconds: float = 2.0,
        poll_seconds: float = 0.5,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_folders(inbox, out)
        self.inbox = inbox.resolve()
        self.out = out
        self.extractor = extractor
        self.encoding = encoding
        self.move_done = move_done
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self.listener = listener or Listener()
        self.clock = clock
        self.skip = [self.inbox / DONE_DIR, out]
        self.stats = RunStats()
        self._events: queue.Queue[Path] = queue.Queue()
        self._pending: dict[Path, _Pending] = {}

    def _wanted(self, path: Path) -> bool:
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            return False
        # realpath, not Path.resolve: it names a link loop instead of raising.
        real = Path(os.path.realpath(path))
        skipped = any(real.is_relative_to(os.path.realpath(folder)) for folder in self.skip)
        return not skipped and not any(part.startswith(".") for part in parts)

    def _watch(self) -> BaseObserver:
        """Start watching; watchdog is imported here, as only inbox mode needs it."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        events = self._events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("created", "modified", "moved", "closed"):
                    target = event.dest_path if event.event_type == "moved" else event.src_path
                    events.put(Path(target.decode() if isinstance(target, bytes) else target))

        observer = Observer()
        observer.schedule(Handler(), str(self.inbox), recursive=True)
        observer.start()
        return observer

    def _enqueue(self, path: Path, failures: dict[str, ErrorLine]) -> None:
        """Track a file (or every file of a folder moved in at once) until it settles."""
        if not self._wanted(path):
            return
        if path.is_dir():
            if Path(os.path.realpath(path.parent)).is_relative_to(os.path.realpath(path)):
                loop = InputError(f"{printable(str(path))}: symbolic link loop", reason="symlink_loop")
                self._fail(path, loop, failures)
                return
            listing = list_folder(path, skip=self.skip)
            files = listing.files
            for bad, error in listing.problems:
                self._fail(bad, error, failures)
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            files = [path]
        else:
            return
        for file in files:
            self._pending.setdefault(file, _Pending(signature=(-1, -1), since=self.clock()))

    def _settled(self) -> list[Path]:
        """Files whose size and mtime held still for settle_seconds; vanished ones are dropped."""
        ready = []
        now = self.clock()
        for path, pending in list(self._pending.items()):
            try:
                info = path.stat()
            except OSError:
                del self._pending[path]  # moved away or deleted before it settled: nothing to do
                continue
            signature = (info.st_size, info.st_mtime_ns)
            if signature != pending.signature:
                self._pending[path] = _Pending(signature=signature, since=now)
            elif now - pending.since >= self.settle_seconds:
                del self._pending[path]
                ready.append(path)
        return sorted(ready)

    def _fail(self, path: Path, error: InputError, failures: dict[str, ErrorLine]) -> None:
        line = input_error(printable(path.relative_to(self.inbox).as_posix()), path, error)
        failures[line.id] = line
        self.stats.failed += 1
        self.listener.input_failed(line)

    def _process(
        self, path: Path, folder: OutputFolder, results: dict[str, Result], failures: dict[str, ErrorLine]
    ) -> None:
        rel = path.relative_to(self.inbox).as_posix()
        try:
            reports = read_path(path, encoding=self.encoding, report_id=rel)
        except InputError as error:
            self._fail(path, error, failures)
            return  # left in place: once fixed (a change event), it is tried again
        for report in reports:
            result = folder.earlier_result(report)
            if result is None:
                result = extract_report(
                    report, extractor=self.extractor, folder=folder, listener=self.listener, stats=self.stats
                )
            else:
                self.stats.skipped += 1
            results[report.id] = result
            failures.pop(report.id, None)
        failures.pop(printable(rel), None)
        if self.move_done:
            target = _unique(self.inbox / DONE_DIR / rel)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, target)
            except OSError as error:  # deleted or moved away while it was extracted, done/ unwritable
                message = f"{printable(rel)}: extracted, but could not move it to {DONE_DIR}/: {error.strerror}"
                self._fail(path, InputError(message, reason="not_moved"), failures)
                return
            self.stats.moved += 1

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> RunStats:
        """Process what is in the inbox now, then whatever arrives, until `should_stop()`."""
        with OutputFolder(self.out, fingerprint=self.extractor.fingerprint).locked() as folder:
            results = folder.known()
            failures: dict[str, ErrorLine] = {}
            observer = self._watch()  # before the scan: nothing dropped in between is missed
            try:
                self._enqueue(self.inbox, failures)
                while not should_stop():
                    while not self._events.empty():
                        self._enqueue(self._events.get(), failures)
                    changed = False
                    for path in self._settled():
                        if should_stop():
                            break
                        self._process(path, folder, results, failures)
                        changed = True
                    if changed:
                        folder.write_tables(sorted(results.values(), key=lambda r: r.id), list(failures.values()))
                    time.sleep(self.poll_seconds)
            finally:
                observer.stop()
                observer.join()
                folder.write_tables(sorted(results.values(), key=lambda r: r.id), list(failures.values()))
                folder.compact()
        return self.stats
