"""The watched inbox with the real default model: a file is read only once it has finished copying,
processed inputs move to done/, bad ones get an error line, and a restart resumes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_extract.batch import Listener, RunStats
from edge_extract.cli.watch import _LineListener
from edge_extract.errors import ConfigError
from edge_extract.inbox import Inbox
from edge_extract.output import output_path
from edge_extract.pipeline import Extractor, Result
from edge_extract.reading import Report, text_sha256

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Callable[[], bool], *, clock: ManualClock | None = None, timeout: float = 90.0) -> None:
    """Wait for the inbox thread; with `clock`, let inbox time pass meanwhile (so files settle)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the inbox")
        if clock is not None:
            clock.advance(SETTLE / 4)
        time.sleep(0.05)


class ManualClock:
    """Inbox time that moves only when the test moves it, so whether a file has settled never
    depends on how fast this machine runs the inbox thread."""

    def __init__(self) -> None:
        self._now = 0.0
        self._reads = 0
        self._changed = threading.Condition()

    def __call__(self) -> float:
        with self._changed:
            self._reads += 1
            self._changed.notify_all()
            return self._now

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds

    def wait_for_polls(self, polls: int = 2) -> None:
        """Until the inbox has read the time `polls` more times: it has looked at the files since."""
        with self._changed:
            target = self._reads + polls
            if not self._changed.wait_for(lambda: self._reads >= target, timeout=30):
                pytest.fail("the inbox stopped polling")


SETTLE = 1.0
"""The inbox's settle time, in manual-clock seconds."""


class Running:
    """An Inbox in a background thread (as the CLI runs it in the foreground), stopped on exit."""

    def __init__(
        self, inbox: Path, out: Path, extractor: Extractor, clock: ManualClock, listener: Listener | None = None
    ) -> None:
        self.stop = threading.Event()
        self.stats: RunStats | None = None
        self.watcher = Inbox(
            inbox,
            out,
            extractor=extractor,
            move_done=True,
            settle_seconds=SETTLE,
            poll_seconds=0.02,
            listener=listener,
            clock=clock,
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.stats = self.watcher.run(should_stop=self.stop.is_set)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()


def counts(stats: RunStats) -> tuple[int, int, int, int]:
    """extracted, skipped, failed, moved: what the watch command prints."""
    return stats.extracted, stats.skipped, stats.failed, stats.moved


def journal(out: Path) -> list[dict]:
    path = out / ".edge-extract" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_inbox_waits_for_copies_moves_done_files_and_resumes(tmp_path: Path, extractor: Extractor, val_rows):
    first, slow, late = (row["report"] for row in sorted(val_rows, key=lambda row: len(row["report"]))[:3])
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "already here.txt").write_text(first, encoding="utf-8")

    clock = ManualClock()
    with Running(inbox, out, extractor, clock) as running:
        wait_for(lambda: (inbox / "done" / "already here.txt").exists(), clock=clock)
        # A slow copy: the inbox looks at the file between chunks, and the clock moves half the
        # settle time from one chunk to the next: never long enough for a half copy to settle.
        target = inbox / "ward" / "slow copy.txt"
        target.parent.mkdir()
        data = slow.encode("utf-8")
        with target.open("wb") as handle:
            for start in range(0, len(data), len(data) // 5 + 1):
                handle.write(data[start : start + len(data) // 5 + 1])
                handle.flush()
                clock.wait_for_polls()
                clock.advance(SETTLE / 2)
        (inbox / "empty.txt").write_bytes(b"")
        wait_for(lambda: (inbox / "done" / "ward" / "slow copy.txt").exists(), clock=clock)
        wait_for(
            lambda: "empty.txt" in (out / "errors.jsonl").read_text() if (out / "errors.jsonl").exists() else False,
            clock=clock,
        )
    assert running.stats is not None
    assert counts(running.stats) == (2, 0, 1, 2)

    entries = journal(out)
    assert [e["id"] for e in entries] == ["already here.txt", "ward/slow copy.txt"]  # never read half-copied
    written = Result.model_validate_json(output_path(out, "ward/slow copy.txt").read_text())
    assert written.status == "ok" and written.provenance.input_sha256 == text_sha256(slow)
    assert (inbox / "empty.txt").exists()  # a bad file stays where the user can fix it
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["kind"]) for e in errors] == [("empty.txt", "empty")]

    # While it was down: a new report arrived, and one already done came back (as after a kill
    # between writing its record and moving it). The restart extracts only the new one.
    (inbox / "late.txt").write_text(late, encoding="utf-8")
    shutil.copy(inbox / "done" / "already here.txt", inbox / "already here.txt")
    (inbox / "empty.txt").unlink()
    with Running(inbox, out, extractor, clock) as running:
        wait_for(
            lambda: (inbox / "done" / "late.txt").exists() and (inbox / "done" / "already here (2).txt").exists(),
            clock=clock,
        )
    assert running.stats is not None
    assert counts(running.stats) == (1, 1, 0, 2)
    results = [Result.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r.id for r in results] == ["already here.txt", "late.txt", "ward/slow copy.txt"]
    assert (out / "results.csv").read_text(encoding="utf-8-sig").count("\n") == 4
    assert len(journal(out)) == 3


@pytest.mark.integration
def test_watch_command_runs_until_ctrl_c(tmp_path: Path, val_rows):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    command = [sys.executable, "-m", "edge_extract", "watch", str(inbox), "--out", str(out), "--threads", "1"]
    log = tmp_path / "stderr.log"
    process = subprocess.Popen([*command, "--settle", "0.5"], stderr=log.open("wb"), cwd=ROOT)
    try:
        wait_for(lambda: "watching" in log.read_text())
        text = sorted(val_rows, key=lambda row: len(row["report"]))[0]["report"]
        (inbox / "dropped.txt").write_text(text, encoding="utf-8")
        wait_for(lambda: (out / "results.jsonl").exists())
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()
    assert "done dropped.txt" in log.read_text() and "extracted" in log.read_text()
    assert text not in log.read_text()  # file names and timings only, never the report
    [result] = [Result.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert result.id == "dropped.txt" and result.status == "ok"
    assert (inbox / "dropped.txt").exists()  # no --move-done: inputs stay


class _Vanishing(_LineListener):
    """The watch command's own lines (where a name could be read as markup), and a file that is
    deleted while it is extracted, as a sync client or a colleague might."""

    def report_started(self, report: Report) -> None:
        super().report_started(report)
        if report.id == "vanishing.txt":
            Path(report.source).unlink()


def errors_by_id(out: Path) -> dict[str, str]:
    return {line["id"]: line["kind"] for line in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}


def test_inbox_survives_link_loops_vanishing_files_and_markup_in_names(tmp_path: Path, extractor: Extractor, val_rows):
    texts = [row["report"] for row in sorted(val_rows, key=lambda row: len(row["report"]))[:3]]
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "self.txt").symlink_to(inbox / "self.txt")  # a link to itself, there from the start
    (inbox / "sub[").mkdir()

    clock = ManualClock()
    with Running(inbox, out, extractor, clock, listener=_Vanishing()) as running:
        (inbox / "up").symlink_to(inbox, target_is_directory=True)  # dropped in: a folder link back to the inbox
        (inbox / "vanishing.txt").write_text(texts[0], encoding="utf-8")
        (inbox / "sub[" / "]y [draft].txt").write_text(texts[1], encoding="utf-8")  # shown as `sub[/]y [draft].txt`
        wait_for(lambda: (inbox / "done" / "sub[" / "]y [draft].txt").exists(), clock=clock)
        (inbox / "after.txt").write_text(texts[2], encoding="utf-8")
        wait_for(lambda: (inbox / "done" / "after.txt").exists(), clock=clock)
    assert running.stats is not None and running.stats.extracted == 3  # it kept watching to the end
    assert errors_by_id(out) == {"self.txt": "symlink_loop", "up": "symlink_loop", "vanishing.txt": "not_moved"}
    results = [Result.model_validate_json(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r.id for r in results] == ["after.txt", "sub[/]y [draft].txt", "vanishing.txt"]

    # A restart meets the same loops first thing, and still watches.
    with Running(inbox, out, extractor, clock, listener=_Vanishing()) as again:
        (inbox / "late.txt").write_text(texts[0], encoding="utf-8")
        wait_for(lambda: (inbox / "done" / "late.txt").exists(), clock=clock)
    assert again.stats is not None and (again.stats.extracted, again.stats.moved) == (1, 1)
    assert errors_by_id(out) == {"self.txt": "symlink_loop", "up": "symlink_loop"}


def test_the_inbox_cannot_be_its_own_output_folder(tmp_path: Path, extractor: Extractor):
    with pytest.raises(ConfigError, match="is the inbox itself"):
        Inbox(tmp_path, tmp_path, extractor=extractor)
