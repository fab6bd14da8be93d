"""edge-extract doctor: each check on made-up machines, then the real one through the CLI."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from edge_extract.cli import app
from edge_extract.doctor import (
    Status,
    available_memory,
    build_features,
    check_cpu,
    check_disk,
    check_memory,
    check_model,
    check_output_folder,
    probe_build,
    run_checks,
)
from edge_extract.models.manifest import Manifest, Source
from edge_extract.models.registry import Registry
from edge_extract.runtime import system_info

PORTABLE_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
)
NATIVE_BUILD = PORTABLE_BUILD + "AVX512 = 1 | AVX512_VNNI = 1 | "
AVX2_CPU = "processor\t: 0\nflags\t\t: fpu pni ssse3 fma sse4_2 avx f16c bmi1 avx2 bmi2\n"
OLD_CPU = "processor\t: 0\nflags\t\t: fpu pni ssse3 sse4_2 avx\n"


@pytest.mark.parametrize(
    ("cpuinfo", "build", "status", "words"),
    [
        pytest.param(AVX2_CPU, PORTABLE_BUILD, Status.ok, ["CPU has SSE3", "build uses SSE3"], id="portable-on-avx2"),
        pytest.param(AVX2_CPU, NATIVE_BUILD, Status.fail, ["lacks AVX512 AVX512_VNNI", "illegal"], id="native-on-avx2"),
        pytest.param(OLD_CPU, PORTABLE_BUILD, Status.fail, ["lacks AVX2 F16C FMA BMI2"], id="portable-on-pre-2013"),
        pytest.param(None, PORTABLE_BUILD, Status.warn, ["cannot read", "AVX2"], id="no-proc-cpuinfo"),
        pytest.param(AVX2_CPU, None, Status.fail, ["crashed"], id="build-does-not-load"),
    ],
)
def test_cpu_check_compares_cpu_flags_with_the_build(cpuinfo, build, status, words):
    check = check_cpu(cpuinfo, build, build_error="llama.cpp crashed with 'illegal instruction'")
    assert check.status is status
    for word in words:
        assert word in check.detail
    assert bool(check.fix) == (status is Status.fail)


def test_installed_llama_cpp_is_the_portable_build():
    """scripts/setup.sh and the bundle install the AVX2 baseline, never a CPU-specific build."""
    features = build_features(system_info())
    assert {"AVX", "AVX2", "FMA", "F16C", "BMI2"} <= set(features)
    assert not [name for name in features if name.startswith("AVX512")]


def test_build_is_probed_in_a_child_process():
    info, error = probe_build()
    assert error == ""
    assert build_features(info) == build_features(system_info())


@pytest.mark.parametrize(
    ("meminfo", "expected"),
    [
        pytest.param("MemTotal:  16000000 kB\nMemAvailable:   8000000 kB\n", 8_192_000_000, id="linux"),
        pytest.param("MemTotal:  16000000 kB\nMemFree:  100 kB\n", None, id="old-kernel-without-available"),
        pytest.param("", None, id="empty"),
    ],
)
def test_available_memory(meminfo, expected):
    assert available_memory(meminfo) == expected


@pytest.mark.parametrize(
    ("available", "status"),
    [
        pytest.param(8 << 30, Status.ok, id="plenty"),
        pytest.param(600 << 20, Status.fail, id="too-little"),
        pytest.param(None, Status.warn, id="unknown"),
    ],
)
def test_memory_check(available, status):
    check = check_memory(available, model_bytes=253_113_024)
    assert check.status is status
    assert "1.3 GB" in check.detail


def test_disk_check_looks_at_the_nearest_existing_folder(tmp_path):
    check = check_disk("disk (output)", tmp_path / "not" / "yet", need=1)
    assert check.status is Status.ok
    assert f"free at {tmp_path}" in check.detail
    full = check_disk("disk (output)", tmp_path, need=10**18)
    assert full.status is Status.fail
    assert "needs 1000000000.0 GB" in full.detail


def test_output_folder_check(tmp_path):
    assert check_output_folder(tmp_path).status is Status.ok
    later = check_output_folder(tmp_path / "out" / "records")
    assert later.status is Status.ok
    assert "does not exist yet" in later.detail
    (tmp_path / "a-file").write_text("x")
    bad = check_output_folder(tmp_path / "a-file" / "out")
    assert bad.status is Status.fail
    assert bad.detail == f"cannot write to {tmp_path / 'a-file' / 'out'}: {tmp_path / 'a-file'} is not a folder"
    assert list(tmp_path.iterdir()) == [tmp_path / "a-file"], "the write probe leaves nothing behind"


@pytest.mark.model
def test_model_check_hashes_the_default_model():
    check = check_model(Registry.default(), None)
    assert check.status is Status.ok, check.detail
    folded = Registry.default().resolve()
    assert f"sha256 {folded.sha256[:12]}... matches, the fold of base a5fd3b62230a... and adapter" in check.detail


def test_model_check_names_a_corrupted_file(tmp_path):
    folder = tmp_path / "models"
    (folder / "broken").mkdir(parents=True)
    (folder / "broken" / "broken.gguf").write_bytes(b"GGUF not really a model")
    manifest = Manifest(
        name="broken", source=Source(kind="file"), file="broken/broken.gguf", sha256="0" * 64, prompt_format="gemma"
    )
    registry = Registry((folder,))
    registry.register(manifest)
    check = check_model(registry, "broken")
    assert check.status is Status.fail
    assert "broken.gguf is corrupted" in check.detail
    assert "reinstall" in check.fix


@pytest.mark.model
def test_checks_open_no_network_socket(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("doctor opened a network socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    checks = run_checks(out=tmp_path)
    assert [check.name for check in checks] == [
        "version",
        "model",
        "cpu",
        "threads",
        "memory",
        "disk (model cache)",
        "disk (output)",
        "output folder",
    ]
    assert all(check.status is not Status.fail for check in checks), checks


@pytest.mark.model
def test_cli_json_on_this_machine(tmp_path):
    result = CliRunner().invoke(app, ["doctor", "--out", str(tmp_path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {check["status"] for check in report["checks"]} <= {"ok", "warn"}


@pytest.mark.model
def test_cli_table_says_what_is_wrong_and_exits_non_zero(tmp_path):
    (tmp_path / "a-file").write_text("x")
    wide = {"COLUMNS": "300"}  # one line per check, however long tmp_path is
    result = CliRunner().invoke(app, ["doctor", "--out", str(tmp_path / "a-file")], env=wide, catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("edge-extract doctor")
    assert any(line.startswith("│ output folder") and "FAIL" in line for line in lines)
    assert f"cannot write to {tmp_path / 'a-file'}: {tmp_path / 'a-file'} is not a folder" in result.stdout
    assert "fix: choose another --out" in result.stdout
    assert lines[-1] == "1 problem(s): see fix"
