"""The edge-extract command as a user meets it: exit codes, one-line errors, exact outputs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_extract.cli import app
from edge_extract.files import sha256_file
from edge_extract.models.registry import Registry
from edge_extract.pipeline import Result

from .fake_hub import fake_hub

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "case_report.txt"
runner = CliRunner()


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["extract", "--threads", "1", *args] if args[0] != "models" else list(args), input=input)


@pytest.fixture
def default_gguf(model_cache: Path) -> Path:
    """The embedded base GGUF (the default runs it with its adapter folded in, a file of its own)."""
    return Registry.default().resolve("gemma-3-270m").path


@pytest.mark.model
def test_extract_sample_prints_a_valid_record():
    result = runner.invoke(app, ["extract", "--threads", "1", str(SAMPLE)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = Result.model_validate_json(result.stdout.strip())
    assert record.status == "ok"
    assert record.source == str(SAMPLE)


@pytest.mark.model
def test_extract_from_stdin_and_out_folder(tmp_path: Path, val_rows):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["extract", "--threads", "1", "-", "--out", str(out)], input=val_rows[0]["report"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    written = Result.model_validate_json((out / "stdin.json").read_text())
    assert written.status == "ok"
    assert stat.S_IMODE((out / "stdin.json").stat().st_mode) == 0o600  # extracted values: the owner's only
    assert not list(out.glob(".*tmp"))  # no temp files left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "binary file"),
        ("Patientin, 54 Jahre, Übelkeit".encode("cp1252"), "not utf-8 text"),
    ],
    ids=["empty", "blank", "binary", "not-utf8"],
)
def test_bad_input_is_a_one_line_error(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "report.txt"
    path.write_bytes(content)
    result = runner.invoke(app, ["extract", str(path)], catch_exceptions=False)
    assert result.exit_code == 3
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.model
def test_legacy_encoding_reads_when_asked(tmp_path: Path):
    path = tmp_path / "brief.txt"
    path.write_bytes("Patientin, 54 Jahre, Übelkeit seit drei Tagen.".encode("cp1252"))
    result = runner.invoke(app, ["extract", "--threads", "1", "--encoding", "cp1252", str(path)])
    assert result.exit_code == 0, result.output


def test_missing_report_file(tmp_path: Path):
    result = runner.invoke(app, ["extract", str(tmp_path / "nope.txt")])
    assert result.exit_code == 3
    assert "no such file" in result.output


def _cached_copy(default_gguf: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the default GGUF in a cache folder of its own, which edge-extract then uses."""
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    copy = cache / "models" / default_gguf.name
    shutil.copyfile(default_gguf, copy)
    monkeypatch.setenv("EDGE_EXTRACT_CACHE", str(cache))
    return copy


@pytest.mark.model
def test_corrupted_model_is_refused_by_extract_and_verify(default_gguf: Path, tmp_path: Path, monkeypatch):
    broken = _cached_copy(default_gguf, tmp_path, monkeypatch)
    with broken.open("r+b") as handle:  # flip bytes in the middle of the weights
        handle.seek(100_000_000)
        handle.write(b"\x00" * 64)
    verify = runner.invoke(app, ["models", "verify"])
    assert verify.exit_code == 4
    assert "corrupted" in verify.output
    result = runner.invoke(app, ["extract", str(SAMPLE)])
    assert result.exit_code == 4
    assert "corrupted" in result.output and "Traceback" not in result.output


@pytest.mark.model
def test_bit_rot_after_a_good_check_is_refused_at_load(default_gguf: Path, tmp_path: Path, monkeypatch):
    model = _cached_copy(default_gguf, tmp_path, monkeypatch)
    good = invoke(str(SAMPLE), "--json", "-m", "gemma-3-270m")  # a load that checked the file
    assert good.exit_code == 0, good.output
    assert Result.model_validate_json(good.stdout).provenance.model_sha256 == sha256_file(model)
    before = model.stat()
    with model.open("r+b") as handle:  # bit rot: bytes flip in place, the size and mtime stay
        handle.seek(before.st_size - 4096)
        handle.write(bytes(64))
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    try:
        result = invoke(str(SAMPLE), "--json", "-m", "gemma-3-270m")
        assert result.exit_code == 4, result.output
        assert "is corrupted or not the expected file" in result.output and result.stdout == ""
    finally:
        model.unlink()  # 253 MB: not left for pytest to keep


@pytest.mark.model
def test_verify_accepts_the_real_default(default_gguf: Path):
    result = runner.invoke(app, ["models", "verify", "gemma-3-270m"])
    assert result.exit_code == 0, result.output
    assert "a5fd3b62230aa5ec" in result.output


def test_model_path_that_is_not_a_gguf(tmp_path: Path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all" * 100)
    result = runner.invoke(app, ["extract", "--model", str(fake), str(SAMPLE)])
    assert result.exit_code == 4
    assert "not a GGUF" in result.output


@pytest.mark.model
def test_truncated_gguf_is_refused_on_import(default_gguf: Path, tmp_path: Path, isolated_home: Path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_gguf.read_bytes()[:5_000_000])
    result = runner.invoke(app, ["models", "import", str(cut), "--name", "cut"])
    assert result.exit_code == 4
    assert "cannot read" in result.output
    assert "cut" not in {row["name"] for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    assert not (isolated_home / "data" / "models" / "cut").exists()


@pytest.mark.model
def test_import_then_extract_by_name(default_gguf: Path, tmp_path: Path):
    stick = tmp_path / "usb" / "clinic-model.gguf"
    stick.parent.mkdir()
    shutil.copyfile(default_gguf, stick)
    imported = runner.invoke(app, ["models", "import", str(stick), "--name", "clinic"])
    assert imported.exit_code == 0, imported.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {"clinic", "gemma-3-270m"} <= {row["name"] for row in listed}
    clinic = next(row for row in listed if row["name"] == "clinic")
    assert clinic["prompt_format"] == "gemma"  # from the GGUF's architecture
    result = runner.invoke(app, ["extract", "--threads", "1", "--model", "clinic", "--json", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["provenance"]["model"] == "clinic"


@pytest.mark.model
def test_a_manifest_with_an_integer_decoding_setting_extracts(isolated_home: Path):
    """Written as 32.0, as a float-typed manifest wrote it; it used to end in a TypeError traceback."""
    base, _ = Registry.default().get("gemma-3-270m")
    manifest = {**base.model_dump(exclude_none=True), "name": "short-window", "decoding": {"repeat_last_n": 32.0}}
    folder = isolated_home / "data" / "models"
    folder.mkdir(parents=True)
    (folder / "short-window.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = runner.invoke(app, ["extract", "--threads", "1", "--model", "short-window", "--json", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert '"repeat_last_n":32,' in result.stdout.replace(" ", "")  # recorded as the int it is


def test_unknown_model_name():
    result = runner.invoke(app, ["extract", "--model", "nope", str(SAMPLE)])
    assert result.exit_code == 4
    assert "unknown model 'nope'" in result.output


@pytest.mark.model
def test_pull_from_a_loopback_hub(default_gguf: Path, isolated_home: Path):
    """`models pull` through huggingface-hub against a local server, never the internet."""
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(isolated_home / "hf")}
    env.pop("HF_HUB_OFFLINE", None)  # extraction earlier in this process set it
    with fake_hub({"acme/clinic-GGUF/model-q4.gguf": default_gguf}) as (endpoint, log):
        env["HF_ENDPOINT"] = endpoint
        pulled = subprocess.run(
            [sys.executable, "-m", "edge_extract", "models", "pull", "acme/clinic-GGUF", "model-q4.gguf"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert pulled.returncode == 0, pulled.stderr
    assert any(line.startswith("GET /acme/clinic-GGUF/resolve/main/model-q4.gguf") for line in log)
    manifest = json.loads((isolated_home / "data" / "models" / "model-q4.json").read_text())
    assert manifest["source"] == {"kind": "hub", "repo": "acme/clinic-GGUF"}
    assert manifest["sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


@pytest.mark.model
def test_extraction_opens_no_socket(monkeypatch, val_rows):
    """Offline by construction: any attempt to open a network socket fails the test."""
    attempts: list[tuple] = []
    real_socket = socket.socket

    class NoNetwork(real_socket):
        def __init__(self, family=-1, *args, **kwargs):
            if family in (socket.AF_INET, socket.AF_INET6):
                attempts.append((family, args))
                raise OSError("network access during extraction")
            super().__init__(family, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", NoNetwork)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a) or NoNetwork())
    result = runner.invoke(app, ["extract", "--threads", "1", "--json", "-"], input=val_rows[1]["report"])
    assert result.exit_code == 0, result.output
    assert attempts == []
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_models_list_offers_a_model_with_its_measured_val_scores_and_speed():
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    val = rows["gemma-3-270m-elmtex"]["val"]
    assert (round(val["item_f1"], 3), round(val["rouge_l"], 3), val["records"]) == (0.605, 0.55, 55)  # README's
    assert rows["gemma-3-270m"]["val"] is None  # never evaluated: nothing shown rather than a guess
    table = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"}).output
    assert "0.605 / 0.550" in table and "6.8" in table
    assert "on all 55 ELMTEX val reports, 1 thread" in table


def test_an_unreadable_user_manifest_is_left_out_with_a_warning_not_every_model(isolated_home: Path):
    folder = isolated_home / "data" / "models"
    folder.mkdir(parents=True)
    newer = {"name": "newer", "source": {"kind": "file"}, "file": "x.gguf", "sha256": "0" * 64}
    (folder / "newer.json").write_text(json.dumps(newer | {"prompt_format": "gemma", "from_the_future": 1}))
    (folder / "broken.json").write_text("{not json")
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    assert "gemma-3-270m-elmtex" in {row["name"] for row in json.loads(result.stdout)}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2  # once each, though the registry is read more than once
    assert any("newer.json: from_the_future: Extra inputs are not permitted (left out)" in w for w in warnings)
    named = runner.invoke(app, ["extract", "--model", "newer", str(SAMPLE)])
    assert named.exit_code == 4 and "unknown model 'newer'" in named.output


def test_a_manifest_with_a_byte_order_mark_reads_and_one_not_utf8_is_left_out(isolated_home: Path):
    folder = isolated_home / "data" / "models"
    folder.mkdir(parents=True)
    shipped = (Path(__file__).parent.parent / "models" / "gemma-3-270m.json").read_text(encoding="utf-8")
    notepad = json.loads(shipped) | {"name": "notepad"}
    (folder / "notepad.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(notepad).encode())
    (folder / "utf16.json").write_bytes(b"\xff\xfe{\x00")
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    assert "notepad" in {row["name"] for row in json.loads(result.stdout)}
    assert "utf16.json: not UTF-8 text (left out)" in result.stderr


def test_a_model_whose_adapter_file_is_gone_is_listed_missing(isolated_home: Path):
    folder = isolated_home / "data" / "models"
    folder.mkdir(parents=True)
    shipped = json.loads((Path(__file__).parent.parent / "models" / "gemma-3-270m.json").read_text(encoding="utf-8"))
    tuned = shipped | {"name": "tuned", "adapter": {"file": "tuned/adapter.gguf", "sha256": "0" * 64}}
    (folder / "tuned.json").write_text(json.dumps(tuned))
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    assert rows["gemma-3-270m"]["present"] and not rows["tuned"]["present"]
